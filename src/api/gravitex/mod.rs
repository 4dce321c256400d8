//! The GravitexAI unified video API (its protocol as the client sees it: `docs/client.md`): its
//! [`PROVIDER`] particulars, and [`GravitexClient`], which submits and queries over the gateway
//! paths, folds the gateway's answer shapes (`response`) and classifies its refusals. Any
//! gateway of the same family is this client with another [`Provider`].

mod response;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::Value;

use super::error_body::{classify, json_reason, shorten};
use super::http::{Call, Endpoint, Refusal, exchange, segment, setup, unreadable_submit};
use super::provider::{Auth, Capabilities, Connect, Provider, Requests, Speaker, Timing};
use super::{ApiError, ApiKey, Submitted, TaskState};
use response::{submit_task_id, task_state};

const HOUR: Duration = Duration::from_secs(3600);

/// Polls, queries and submits the gateway takes per second by default; it counts no account-wide
/// budget, so shards do not split it and submits do not spend it.
pub const QUERIES_PER_SECOND: u32 = 50;

pub const PROVIDER: Provider = Provider {
    id: "gravitex",
    name: "GravitexAI",
    default_base_url: "https://api.gravitex.ai",
    base_url_help: "`--base-url`, GRAVITEX_BASE_URL or `[api] base_url` should be the gateway's \
                    root, e.g. https://api.gravitex.ai",
    base_url_env: Some("GRAVITEX_BASE_URL"),
    region_url: None,
    key_env: "GRAVITEX_API_KEY",
    key_hint: None,
    tasks_path: "/v1/video/generations",
    base_suffix: "/v1",
    auth: Auth::Bearer,
    media_pointer: "/metadata/input/media",
    timing: Timing {
        poll_first: Duration::from_secs(5),
        poll_max: Duration::from_secs(15),
        task_ttl: HOUR.saturating_mul(24),
        url_ttl: HOUR.saturating_mul(24),
        feed_ttl: HOUR.saturating_mul(23),
    },
    requests: Requests {
        per_second: QUERIES_PER_SECOND,
        per_account: false,
        submits_share: false,
    },
    billed_in: |_| None,
    model_id: |_| None,
    encode: None,
    capabilities: Capabilities { task_list: false },
    connect,
};

/// [`Provider::connect`]: the gateway client on the pool it shares with downloads (no
/// workspaces: `[api] workspace` is ignored).
fn connect(provider: &Provider, c: Connect) -> Result<Arc<dyn Speaker>, ApiError> {
    let endpoint = Endpoint::new(provider, &c.base, &c.key, c.timeout)?;
    Ok(Arc::new(GravitexClient::new(
        *provider, &endpoint, c.http, c.timeout,
    )))
}

/// The gateway client. Cheap to clone; built by [`Client::for_provider`](super::Client::for_provider),
/// which shares its connection pool with downloads.
#[derive(Clone)]
pub struct GravitexClient {
    http: reqwest::Client,
    /// `{base}{tasks_path}`, no trailing slash.
    generations: String,
    auth: HeaderValue,
    provider: Provider,
    key: ApiKey,
    timeout: Duration,
}

impl std::fmt::Debug for GravitexClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GravitexClient")
            .field("generations", &self.generations)
            .field("key", &self.key)
            .finish()
    }
}

impl GravitexClient {
    pub(super) fn new(
        provider: Provider,
        endpoint: &Endpoint,
        http: reqwest::Client,
        timeout: Duration,
    ) -> GravitexClient {
        GravitexClient {
            http,
            generations: format!("{}{}", endpoint.base, provider.tasks_path),
            auth: endpoint.auth.clone(),
            provider,
            key: endpoint.key.clone(),
            timeout,
        }
    }

    /// `POST {base}{tasks_path}`.
    ///
    /// A 2xx whose body names no task id (or cannot be read or parsed) is `Ambiguous`: the
    /// provider may have created a task we cannot see.
    pub async fn submit(&self, body: &Value) -> Result<Submitted, ApiError> {
        let request = self
            .http
            .post(&self.generations)
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(self.timeout)
            .json(body);
        let answer = self.call(request, Call::Submit).await?;
        let ambiguous = |why: String| ApiError::Ambiguous {
            message: self.key.scrub(why),
        };
        let json: Value = serde_json::from_slice(&answer)
            .map_err(|e| ambiguous(unreadable_submit(&self.provider, &e)))?;
        match submit_task_id(&json) {
            // Scrubbing would make the id useless, and keeping it would write the key out.
            Some(task_id) if self.key.appears_in(&task_id) => Err(ambiguous(
                "the submit was accepted but its task id contains the API key, so it is not kept"
                    .into(),
            )),
            Some(task_id) => Ok(Submitted { task_id }),
            None => {
                let said = json_reason(&json)
                    .map(|r| format!(": {}", shorten(&r)))
                    .unwrap_or_default();
                Err(ambiguous(format!(
                    "the submit was accepted but its answer names no task id{said}"
                )))
            }
        }
    }

    /// `GET {base}{tasks_path}/{task_id}` (task id percent-encoded).
    ///
    /// An unreadable 200 is `Transient`: asking again is harmless. An empty, `.` or `..` id is
    /// refused as `Permanent { status: 0 }` without a request.
    pub async fn query(&self, task_id: &str) -> Result<TaskState, ApiError> {
        if matches!(task_id, "" | "." | "..") {
            // URL rules resolve dot segments even when encoded: this could reach another path.
            return Err(setup(format!("task id {task_id:?} cannot be queried")));
        }
        let url = format!("{}/{}", self.generations, segment(task_id));
        let request = self
            .http
            .get(url)
            .header(AUTHORIZATION, self.auth.clone())
            .timeout(self.timeout);
        let answer = self.call(request, Call::Read).await?;
        let transient = |why: String| ApiError::Transient {
            status: Some(200),
            message: self.key.scrub(why),
        };
        let json: Value = serde_json::from_slice(&answer)
            .map_err(|e| transient(format!("the query answer is not JSON ({e})")))?;
        let mut state = task_state(&json).map_err(transient)?;
        state.url = state.url.map(|u| self.key.scrub(u));
        state.error = state.error.map(|e| self.key.scrub(e));
        Ok(state)
    }

    /// Sends one API request and returns the body of a 2xx answer; anything else is classified.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        call: Call,
    ) -> Result<Vec<u8>, ApiError> {
        match exchange(request, call, &self.key, &self.provider).await? {
            Ok(body) => Ok(body),
            Err(refusal) => Err(Speaker::classify(self, &refusal, call)),
        }
    }
}

impl Speaker for GravitexClient {
    fn submit<'a>(&'a self, wire: &'a Value) -> BoxFuture<'a, Result<Submitted, ApiError>> {
        Box::pin(GravitexClient::submit(self, wire))
    }

    fn query<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskState, ApiError>> {
        Box::pin(GravitexClient::query(self, task_id))
    }

    /// A redirect names its target; the rest by the gateway's table (`error_body::classify`),
    /// with the key scrubbed from every message.
    fn classify(&self, refusal: &Refusal, _: Call) -> ApiError {
        if (300..400).contains(&refusal.status) {
            let to = refusal.location.as_deref().unwrap_or("elsewhere");
            return ApiError::Permanent {
                status: refusal.status,
                message: self.key.scrub(shorten(&format!(
                    "the API redirects to {to}; check the base URL"
                ))),
            };
        }
        match classify(
            refusal.status,
            refusal.retry_after.as_deref(),
            &refusal.body,
        ) {
            ApiError::Transient { status, message } => ApiError::Transient {
                status,
                message: self.key.scrub(message),
            },
            ApiError::Permanent { status, message } => ApiError::Permanent {
                status,
                message: self.key.scrub(message),
            },
            ApiError::Auth { status, message } => ApiError::Auth {
                status,
                message: self.key.scrub(message),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gravitex_sends_a_bearer_key_and_feeds_urls_younger_than_their_ttl() {
        let p = PROVIDER;
        assert_eq!(p.auth_header("sk-1"), "Bearer sk-1");
        assert!(p.timing.feed_ttl < p.timing.url_ttl);
        assert!(p.timing.poll_first <= p.timing.poll_max);
    }
}
