//! What is particular to one provider, as data: where its endpoints are, how the key is sent,
//! where media sit inside a request body, and its clock (how fast task state refreshes, how long
//! tasks and result URLs live). Each provider's module (`api::gravitex`, `api::dashscope`) holds
//! its [`Provider`] as `PROVIDER` beside its client; the executor reads it from the
//! [`Client`](super::Client) it holds, so a provider is one module, not edits to the executor.

use std::time::Duration;

/// One provider's particulars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    /// Shown in messages.
    pub name: &'static str,
    /// The base URL when neither flag, environment nor config gives one.
    pub default_base_url: &'static str,
    /// Where users set the base URL and what it should be, for the message of a wrong one.
    pub base_url_help: &'static str,
    /// The environment variable the key is read from by default.
    pub key_env: &'static str,
    /// Below the base URL: `POST` submits there, `GET {path}/{task_id}` queries.
    pub tasks_path: &'static str,
    /// A trailing segment users often paste with the base URL; it is dropped.
    pub base_suffix: &'static str,
    pub auth: Auth,
    /// JSON pointer of the media list inside a request body (`shot:` items are filled there).
    pub media_pointer: &'static str,
    pub timing: Timing,
    pub protocol: Protocol,
}

/// The providers `--provider` and `[api] provider` name; recorded in the output folder because
/// a shot sent to another provider is another paid task.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    /// The GravitexAI gateway (`/v1/video/generations`).
    #[default]
    Gravitex,
    /// Alibaba DashScope's native API (`/api/v1/...`).
    Dashscope,
}

impl ProviderId {
    /// The name used on the command line, in the config and in the output folder.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::Gravitex => "gravitex",
            ProviderId::Dashscope => "dashscope",
        }
    }

    pub fn from_name(name: &str) -> Option<ProviderId> {
        match name.trim() {
            "gravitex" => Some(ProviderId::Gravitex),
            "dashscope" => Some(ProviderId::Dashscope),
            _ => None,
        }
    }

    pub fn provider(self) -> Provider {
        match self {
            ProviderId::Gravitex => super::gravitex::PROVIDER,
            ProviderId::Dashscope => super::dashscope::PROVIDER,
        }
    }
}

impl std::fmt::Display for ProviderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How requests and answers are written. The planner's body is always the gateway form; a
/// native protocol encodes it on the way out (`api::dashscope::encode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The gateway's `{model, prompt, duration, metadata}` and its answer shapes.
    Gateway,
    /// Alibaba DashScope's native `{model, input, parameters}` (`api::dashscope`).
    DashScope,
}

/// How the key travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>`.
    Bearer,
}

/// A provider's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// First poll interval of the growing schedule.
    pub poll_first: Duration,
    /// The schedule grows up to this (the gateway refreshes task state about this often).
    pub poll_max: Duration,
    /// The gateway fails unfinished tasks after this long.
    pub task_ttl: Duration,
    /// Result URLs stay downloadable about this long.
    pub url_ttl: Duration,
    /// An upstream URL older than this cannot feed a dependant (it may expire before use).
    pub feed_ttl: Duration,
}

impl Provider {
    /// The full header value for `key`.
    pub fn auth_header(&self, key: &str) -> String {
        match self.auth {
            Auth::Bearer => format!("Bearer {key}"),
        }
    }
}
