//! The provider client: submit, query, download over HTTP; normalises every response variant of
//! the reference and classifies every outcome. It decides no policy: the executor does.
//!
//! One module per provider holds everything particular to it (its `PROVIDER` row, paths,
//! headers, request encoding, answer shapes, status classification, its [`Speaker`] client):
//! [`gravitex`] and [`dashscope`]; [`registry`] names them. [`Client`] (`client.rs`) is the one
//! type the executor holds: it speaks through the row's [`Speaker`] and answers for its
//! capabilities (a [`TaskList`], the model id sent). `http.rs`, `error_body.rs` and
//! `download.rs` are the plumbing every provider shares.

mod client;
pub mod dashscope;
mod download;
mod error_body;
pub mod gravitex;
mod http;
pub mod provider;
pub mod registry;
pub mod task_list;

use std::time::Duration;

pub use client::Client;
pub use error_body::{RETRY_AFTER_CAP, parse_retry_after};
pub use http::MAX_ANSWER_BYTES;
pub use provider::{Capabilities, Provider, Requests, Speaker, Timing};
pub use registry::ProviderId;
pub use task_list::TaskList;

/// Caps on one download. Both end a hostile or broken storage link with a clear error instead
/// of a full disk or a worker held forever; `[download]` in the config changes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadLimits {
    /// Largest video kept, in bytes.
    pub max_bytes: u64,
    /// Longest one download may take, start to end (each read also has the request timeout).
    pub timeout: Duration,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        DownloadLimits {
            max_bytes: 1 << 30,
            timeout: Duration::from_secs(600),
        }
    }
}

/// The API key. Never printed: `Debug` and `Display` show a placeholder.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    /// The key itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `text` (from outside: an answer, a URL, a task id) holds the key.
    pub fn appears_in(&self, text: &str) -> bool {
        !self.0.is_empty() && text.contains(&self.0)
    }

    /// `text` with every occurrence of the key replaced by `***`.
    pub fn scrub(&self, text: String) -> String {
        if self.appears_in(&text) {
            text.replace(&self.0, "***")
        } else {
            text
        }
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// e.g. `https://api.gravitex.ai` (no trailing `/v1`).
    pub base_url: String,
    pub api_key: ApiKey,
    /// Per-request timeout (submit and query; downloads time out per chunk).
    pub timeout: Duration,
}

/// A submit the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub task_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Waiting,
    Running,
    Succeeded,
    Failed,
    /// Not terminal; the caller gives up after a bounded number.
    Unknown,
}

/// One query's answer, normalised over the flat, envelope and legacy shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    pub status: TaskStatus,
    /// Result URL on success.
    pub url: Option<String>,
    /// The provider's reason on failure.
    pub error: Option<String>,
    /// 0 to 100 when the provider says.
    pub progress: Option<u8>,
    /// What the provider adds about a finished task; empty when it says nothing (the gateway).
    pub extras: TaskExtras,
}

/// What a provider may report beside the result (DashScope on success: the prompt as sent and
/// as rewritten, billed seconds). Kept in the journal's `succeeded` line and the results.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskExtras {
    /// The prompt as the provider received it, before rewriting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orig_prompt: Option<String>,
    /// The prompt the model was given after the provider rewrote it (`prompt_extend`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_prompt: Option<String>,
    /// Billed seconds: input plus output video seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_s: Option<f64>,
    /// Seconds of input video billed (videoedit, r2v with reference videos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_s: Option<f64>,
    /// Seconds of video generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_s: Option<f64>,
}

impl TaskExtras {
    /// Longest prompt kept, in bytes: a provider echo is not trusted to be small. Well above
    /// any prompt DashScope accepts, so reconciling still compares whole prompts.
    pub const MAX_PROMPT_BYTES: usize = 64 << 10;

    pub fn is_empty(&self) -> bool {
        *self == TaskExtras::default()
    }
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    pub bytes: u64,
}

/// Every outcome that is not a success, classified for the executor's policy.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 429: no task was created.
    #[error("rate limited (HTTP 429){}", retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, or a network failure before the request was sent: safe to retry.
    #[error("transient error{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Transient {
        status: Option<u16>,
        message: String,
    },
    /// 400 and other refusals: retrying the same request will not help. `status` 0: refused
    /// before sending (bad base URL, unusable task id or result URL).
    #[error("refused{}: {message}", if *status == 0 { String::new() } else { format!(" (HTTP {status})") })]
    Permanent { status: u16, message: String },
    /// 401/403: the key is wrong or not allowed.
    #[error("not authorised (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    /// A submit reached something that is not the provider's API (404/405, or a web page):
    /// the base URL is wrong, nothing was created, and every other submit would end the same.
    #[error("the base URL does not lead to the API (HTTP {status}): {message}")]
    Endpoint { status: u16, message: String },
    /// A submit could not connect (refused, no such host, TLS set-up failed) before any request
    /// of this client got an answer: nothing was sent, and every other submit would end the same
    /// (a dead or mistyped base URL). Once the API has answered, a failed connect is
    /// `Transient` instead (a network blip mid-run is retried).
    #[error("cannot reach the API: {message}")]
    Unreachable { message: String },
    /// The request was sent but no answer came (timeout, dropped connection, unreadable body).
    #[error("no answer after the request was sent: {message}")]
    Ambiguous { message: String },
    /// A result URL answered 403/404/410: it has expired (downloads only).
    #[error("result URL is gone (HTTP {status})")]
    Gone { status: u16 },
    /// A download that arrived but is not kept: not a video (`retry`: storage may serve the
    /// video next time), or over a [`DownloadLimits`] cap or the redirect bound (no retry: it
    /// would end the same way).
    #[error("{message}")]
    Unusable { message: String, retry: bool },
    /// Local I/O while downloading.
    #[error("writing {path}: {message}")]
    Io { path: String, message: String },
}
