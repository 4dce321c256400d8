//! What a provider is to the rest of shotlist: a row of data and one trait.
//!
//! The row ([`Provider`]) says where its endpoints are, how the key is sent and where users set
//! it, where media sit inside a request body, its clock (how fast task state refreshes, how long
//! tasks and result URLs live), its request budget, the currency a region bills in, the model id
//! it is sent for each alias and how a planner body is encoded for it. The trait ([`Speaker`]) is
//! its connected client: submit, query, classify a refusal, and optional capabilities such as
//! a [`TaskList`]. Each provider's module (`api::gravitex`, `api::dashscope`) holds its row as
//! `PROVIDER` beside its client; `api::registry` names the rows. The executor, the settings and
//! the config read only the row and the [`Client`](super::Client)'s capabilities, never a
//! provider's own type, so adding a provider is its module and one registry row.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use super::task_list::TaskList;
use super::{ApiError, ApiKey, Submitted, TaskState};

/// One provider's particulars: its registry row.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    /// The name `--provider`, `[api] provider` and the output folder's `provider` file use.
    pub id: &'static str,
    /// Shown in messages.
    pub name: &'static str,
    /// The base URL when neither flag, environment nor config gives one.
    pub default_base_url: &'static str,
    /// Where users set the base URL and what it should be, for the message of a wrong one.
    pub base_url_help: &'static str,
    /// The environment variable a base URL is read from, if any (read for this provider only,
    /// so an exported simulator URL cannot take another provider's key elsewhere).
    pub base_url_env: Option<&'static str>,
    /// `[api] region`'s base URL for a region name; `None`: the provider has no regions (the
    /// setting is not read) and [`Provider::default_base_url`] is used.
    pub region_url: Option<fn(&str) -> Option<&'static str>>,
    /// The environment variable the key is read from by default.
    pub key_env: &'static str,
    /// What to add to a refused key's message ([`KeyPlace`]: where the key came from); `None`
    /// keeps the provider's own message.
    pub key_hint: Option<fn(&KeyPlace) -> String>,
    /// Below the base URL: `POST` submits there, `GET {path}/{task_id}` queries.
    pub tasks_path: &'static str,
    /// A trailing segment users often paste with the base URL; it is dropped.
    pub base_suffix: &'static str,
    pub auth: Auth,
    /// JSON pointer of the media list inside a request body (`shot:` items are filled there).
    pub media_pointer: &'static str,
    pub timing: Timing,
    pub requests: Requests,
    /// The currency the account is billed in for `[api] region` (`None`: not known, the list's).
    pub billed_in: fn(Option<&str>) -> Option<&'static str>,
    /// The model id this provider is sent for a planner model id (`None`: the planner's own).
    pub model_id: fn(&str) -> Option<&'static str>,
    /// The planner body (the gateway form, which the journal and shot keys hash) in this
    /// provider's wire form; `None`: sent as it is.
    pub encode: Option<Encode>,
    /// What the provider's client can do beyond submit and query.
    pub capabilities: Capabilities,
    /// Builds the provider's client ([`Speaker`]).
    pub connect: Connector,
}

/// [`Provider::encode`]: a planner body in a provider's wire form.
pub type Encode = fn(&Value) -> Result<Value, ApiError>;

/// [`Provider::connect`]: a provider's client on a checked endpoint.
pub type Connector = fn(&Provider, Connect) -> Result<Arc<dyn Speaker>, ApiError>;

/// Where the key of a run came from, for [`Provider::key_hint`]. Never the key.
#[derive(Debug, Clone, Copy)]
pub struct KeyPlace<'a> {
    /// e.g. "the DASHSCOPE_API_KEY environment variable".
    pub key_from: &'a str,
    /// `[api] region`, by name.
    pub region: Option<&'a str>,
    /// The base URL came from `--base-url` or `[api] base_url`, not from a region.
    pub base_given: bool,
}

/// A provider's request budget: the default `[run] queries_per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requests {
    /// Requests per second when the config sets none.
    pub per_second: u32,
    /// The rate is the account's (all keys and shards together), so `--shard K/N` takes 1/N.
    pub per_account: bool,
    /// Submits spend the same budget as polls (and a task-list search).
    pub submits_share: bool,
}

/// What a provider's client can do beyond submit and query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// It lists an account's tasks ([`TaskList`]): a run looks for unknown submits there.
    pub task_list: bool,
}

/// What [`Provider::connect`] is given: a checked base URL and key, and the connection pool
/// the client shares with downloads.
pub struct Connect {
    /// The base URL, without a trailing `/` or the provider's `base_suffix`.
    pub(crate) base: String,
    /// The key, trimmed.
    pub(crate) key: ApiKey,
    pub(crate) http: reqwest::Client,
    pub(crate) timeout: Duration,
    /// `[api] workspace`, for a provider that has workspaces (others ignore it).
    pub(crate) workspace: Option<String>,
}

/// A provider's connected client: the one trait a provider module implements. The executor
/// reaches it through [`Client`](super::Client), which adds downloads, hints and logging.
pub trait Speaker: Send + Sync + std::fmt::Debug {
    /// Creates one task from a body already in the wire form ([`Provider::encode`]). A 2xx
    /// whose body names no task id is `Ambiguous`: a task may exist.
    fn submit<'a>(&'a self, wire: &'a Value) -> BoxFuture<'a, Result<Submitted, ApiError>>;

    /// One task's state, normalised. An unreadable 200 is `Transient`.
    fn query<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskState, ApiError>>;

    /// A non-2xx answer as the class the executor's policy reads (`call`: whether a task may
    /// have been created).
    fn classify(&self, refusal: &Refusal, call: Call) -> ApiError;

    /// The account's task list, when the provider has one ([`Capabilities::task_list`]).
    fn task_list(&self) -> Option<&dyn TaskList> {
        None
    }
}

/// Whether a failure can have happened after the provider got the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Not idempotent: a lost answer may hide a created task.
    Submit,
    /// Idempotent reads: asking again is harmless.
    Read,
}

/// A non-2xx answer of the API, read (up to the cap) for its provider to classify.
pub struct Refusal {
    pub status: u16,
    pub retry_after: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
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

impl PartialEq for Provider {
    /// One row per id (a row holds functions, which do not compare).
    fn eq(&self, other: &Provider) -> bool {
        self.id == other.id
    }
}

impl Eq for Provider {}

impl Provider {
    /// The model id sent for planner model id `alias`.
    pub fn model_sent<'a>(&self, alias: &'a str) -> &'a str {
        (self.model_id)(alias).unwrap_or(alias)
    }

    /// The full header value for `key`.
    pub fn auth_header(&self, key: &str) -> String {
        match self.auth {
            Auth::Bearer => format!("Bearer {key}"),
        }
    }
}
