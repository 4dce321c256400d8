//! The HTTP side of the client: one pooled `reqwest::Client` (rustls with the ring provider),
//! bearer auth on the API only, and the mapping of transport failures onto [`ApiError`]. The
//! line that matters is whether the request may have reached the provider: a connect failure
//! means nothing was sent (transient), anything after that on a submit may have created a paid
//! task (ambiguous).

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{AUTHORIZATION, HeaderValue, LOCATION, RETRY_AFTER};
use serde_json::Value;

use super::error_body::{classify, json_reason, reason, shorten};
use super::provider::{Protocol, Provider, gravitex};
use super::response::{submit_task_id, task_state};
use super::{ApiError, ApiKey, ClientConfig, DownloadLimits, Submitted, TaskState};

/// Everything but RFC 3986 unreserved characters is escaped, so an id is always one segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Redirects a download may follow.
pub(super) const MAX_REDIRECTS: usize = 10;

/// Longest API answer read (submit, query, error bodies; the provider's are under 2 KiB). A
/// longer one is cut off there, so an endless body costs bounded memory.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The HTTP client. Cheap to clone; connections are reused.
#[derive(Clone)]
pub struct Client {
    pub(super) http: reqwest::Client,
    /// `{base}{tasks_path}`, no trailing slash.
    generations: String,
    /// The `Authorization` value, marked sensitive (kept out of reqwest's debug output).
    auth: HeaderValue,
    provider: Provider,
    /// Set for [`Protocol::DashScope`]: submits and queries go through it.
    native: Option<std::sync::Arc<super::dashscope::DashScopeClient>>,
    pub(super) key: ApiKey,
    timeout: Duration,
    pub(super) download: DownloadLimits,
    /// Added to a 401's message ([`Client::with_auth_hint`]).
    auth_hint: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("generations", &self.generations)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .field("download", &self.download)
            .finish()
    }
}

/// Whether a failure can have happened after the provider got the request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    /// Not idempotent: a lost answer may hide a created task.
    Submit,
    /// Idempotent reads: asking again is harmless.
    Read,
}

impl Client {
    /// Builds the client. A bad base URL (a trailing `/` or `/v1` is tolerated), a key that
    /// cannot go in a header (surrounding whitespace is trimmed), a zero timeout or a TLS set-up
    /// failure is `Permanent { status: 0 }`: nothing was sent.
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        Client::for_provider(gravitex::PROVIDER, config)
    }

    /// [`Client::new`] for another gateway.
    pub fn for_provider(provider: Provider, config: ClientConfig) -> Result<Client, ApiError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = config.base_url.trim().trim_end_matches('/');
        let base = base.strip_suffix(provider.base_suffix).unwrap_or(base);
        let example = provider.default_base_url;
        let parsed = reqwest::Url::parse(base).map_err(|e| {
            setup(format!(
                "base URL {base:?} is not a URL ({e}); use e.g. {example}"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.cannot_be_a_base()
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(setup(format!(
                "base URL {base:?} must be a plain http(s) URL, e.g. {example}"
            )));
        }
        // Keys pasted from files often end in a newline; no key contains whitespace.
        let key = ApiKey::new(config.api_key.expose().trim());
        let Ok(mut auth) = HeaderValue::from_str(&provider.auth_header(key.expose())) else {
            return Err(setup(
                "the API key has characters that cannot be sent in an HTTP header".into(),
            ));
        };
        auth.set_sensitive(true);
        if config.timeout.is_zero() {
            return Err(setup("the request timeout must be more than 0s".into()));
        }
        let generations = format!("{base}{}", provider.tasks_path);
        let api = generations.clone();
        // Result links may redirect (CDNs); the API must not: a redirected POST can turn into a
        // GET, and a redirect usually means a wrong base URL the user should fix.
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let from_api = attempt
                .previous()
                .first()
                .is_some_and(|u| u.as_str().starts_with(&api));
            if from_api {
                attempt.stop()
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        });
        let http = http_client(config.timeout, redirects)?;
        let native = match provider.protocol {
            Protocol::Gateway => None,
            Protocol::DashScope => Some(std::sync::Arc::new(
                super::dashscope::DashScopeClient::new(super::dashscope::DashScopeConfig {
                    region: super::dashscope::Region::default(),
                    base_url: Some(base.to_owned()),
                    api_key: key.clone(),
                    workspace: None,
                    timeout: config.timeout,
                })?,
            )),
        };
        Ok(Client {
            http,
            generations,
            auth,
            provider,
            native,
            key,
            timeout: config.timeout,
            download: DownloadLimits::default(),
            auth_hint: None,
        })
    }

    /// The same client with other download caps; a zero cap is `Permanent { status: 0 }`.
    pub fn with_download_limits(mut self, limits: DownloadLimits) -> Result<Client, ApiError> {
        if limits.max_bytes == 0 || limits.timeout.is_zero() {
            return Err(setup(
                "[download] max_bytes and timeout must be more than 0".into(),
            ));
        }
        self.download = limits;
        Ok(self)
    }

    /// The same client sending DashScope's workspace header; an unusable id is
    /// `Permanent { status: 0 }`. The gateway has no workspaces: it is ignored there.
    pub fn with_workspace(mut self, workspace: Option<String>) -> Result<Client, ApiError> {
        if let (Some(native), Some(_)) = (&self.native, &workspace) {
            let rebuilt =
                super::dashscope::DashScopeClient::new(super::dashscope::DashScopeConfig {
                    region: super::dashscope::Region::default(),
                    base_url: Some(native.base_url().to_owned()),
                    api_key: self.key.clone(),
                    workspace,
                    timeout: self.timeout,
                })?;
            self.native = Some(std::sync::Arc::new(rebuilt));
        }
        Ok(self)
    }

    /// The same client adding `hint` to the message of a 401 (where the key came from, which
    /// region it must belong to). The hint must not hold the key.
    pub fn with_auth_hint(mut self, hint: Option<String>) -> Client {
        self.auth_hint = hint;
        self
    }

    /// The gateway this client speaks to.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The native DashScope client, for what only that protocol has (the task list).
    pub fn native(&self) -> Option<&std::sync::Arc<super::dashscope::DashScopeClient>> {
        self.native.as_ref()
    }

    /// The timeout of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `POST {base}{tasks_path}`.
    ///
    /// A 2xx whose body names no task id (or cannot be read or parsed) is `Ambiguous`: the
    /// provider may have created a task we cannot see.
    pub async fn submit(&self, body: &Value) -> Result<Submitted, ApiError> {
        let submitted = self.submit_unhinted(body).await;
        self.hinted(submitted)
    }

    async fn submit_unhinted(&self, body: &Value) -> Result<Submitted, ApiError> {
        if let Some(native) = &self.native {
            return native.submit(body).await;
        }
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
        let state = self.query_unhinted(task_id).await;
        self.hinted(state)
    }

    async fn query_unhinted(&self, task_id: &str) -> Result<TaskState, ApiError> {
        if let Some(native) = &self.native {
            return native.query(task_id).await;
        }
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
        let refusal = match exchange(request, call, &self.key, &self.provider).await? {
            Ok(body) => return Ok(body),
            Err(refusal) => refusal,
        };
        if (300..400).contains(&refusal.status) {
            let to = refusal.location.as_deref().unwrap_or("elsewhere");
            return Err(ApiError::Permanent {
                status: refusal.status,
                message: self.key.scrub(shorten(&format!(
                    "the API redirects to {to}; check the base URL"
                ))),
            });
        }
        Err(
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
            },
        )
    }

    /// `answer` with the auth hint ([`Client::with_auth_hint`]) added to a 401.
    fn hinted<T>(&self, answer: Result<T, ApiError>) -> Result<T, ApiError> {
        match (answer, &self.auth_hint) {
            (
                Err(ApiError::Auth {
                    status: 401,
                    message,
                }),
                Some(hint),
            ) => Err(ApiError::Auth {
                status: 401,
                message: format!("{message}; {hint}"),
            }),
            (answer, _) => answer,
        }
    }
}

/// A non-2xx answer of the API, read (up to the cap) for its provider to classify.
pub(super) struct Refusal {
    pub status: u16,
    pub retry_after: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

impl Refusal {
    /// A submit answered by something that is not the API: 404/405, or another 4xx as a web
    /// page (no provider refuses a body in HTML). Nothing was created there.
    fn wrong_endpoint(&self, call: Call, provider: &Provider, key: &ApiKey) -> Option<ApiError> {
        let page = self.body.trim_ascii_start().starts_with(b"<");
        let wrong = match self.status {
            404 | 405 => true,
            401 | 403 | 408 | 429 => false,
            400..=499 => page,
            _ => false,
        };
        (call == Call::Submit && wrong).then(|| ApiError::Endpoint {
            status: self.status,
            message: key.scrub(format!(
                "{}; check the base URL: {}",
                reason(self.status, &self.body),
                provider.base_url_help
            )),
        })
    }
}

/// Sends one API request: the body of a 2xx answer, or the [`Refusal`] for `provider` to
/// classify. Transport failures, a 2xx over [`MAX_ANSWER_BYTES`] and a submit that reached no
/// API ([`Refusal::wrong_endpoint`]) are classified here, alike for every provider.
pub(super) async fn exchange(
    request: reqwest::RequestBuilder,
    call: Call,
    key: &ApiKey,
    provider: &Provider,
) -> Result<Result<Vec<u8>, Refusal>, ApiError> {
    let response = request.send().await.map_err(|e| transport(key, &e, call))?;
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (retry_after, location) = (header(RETRY_AFTER), header(LOCATION));
    let refusal = |body| Refusal {
        status: status.as_u16(),
        retry_after,
        location,
        body,
    };
    if status.is_redirection() {
        return Ok(Err(refusal(Vec::new())));
    }
    let body = read_capped(response, MAX_ANSWER_BYTES).await;
    if !status.is_success() {
        let refusal = refusal(body.map(Capped::into_bytes).unwrap_or_default());
        return match refusal.wrong_endpoint(call, provider, key) {
            Some(wrong) => Err(wrong),
            None => Ok(Err(refusal)),
        };
    }
    match body {
        Ok(Capped::Whole(bytes)) => Ok(Ok(bytes)),
        Ok(Capped::Cut(_)) => {
            let message = format!(
                "the answer was longer than {} MiB and was cut off there",
                MAX_ANSWER_BYTES >> 20
            );
            Err(match call {
                Call::Submit => ApiError::Ambiguous { message },
                Call::Read => ApiError::Transient {
                    status: Some(status.as_u16()),
                    message,
                },
            })
        }
        Err(e) => Err(transport(key, &e, call)),
    }
}

/// Why a submit answered 2xx without JSON is `Ambiguous`, and what to check when every submit
/// ends so (a web page at the base URL).
pub(super) fn unreadable_submit(provider: &Provider, e: &serde_json::Error) -> String {
    format!(
        "the submit was accepted but its answer is not JSON ({e}); if every submit ends so, \
         check the base URL: {}",
        provider.base_url_help
    )
}

/// A transport failure: a request that could not be built is permanent; before the request
/// left (connect) it is transient; after, a submit is ambiguous and a read is transient.
pub(super) fn transport(key: &ApiKey, e: &reqwest::Error, call: Call) -> ApiError {
    let message = key.scrub(describe(e));
    if e.is_builder() {
        return setup(message);
    }
    if e.is_connect() || call == Call::Read {
        ApiError::Transient {
            status: None,
            message,
        }
    } else {
        ApiError::Ambiguous { message }
    }
}

/// The API's HTTP client: rustls, the request timeout on connect and each read, `redirects`.
pub(super) fn http_client(
    timeout: Duration,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .tls_backend_rustls()
        .redirect(redirects)
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .user_agent(concat!("shotlist/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| setup(format!("cannot set up HTTP: {}", describe(&e))))
}

/// A body read up to a cap.
pub(super) enum Capped {
    Whole(Vec<u8>),
    /// The first `cap` bytes of a longer body; the rest was never read.
    Cut(Vec<u8>),
}

impl Capped {
    pub(super) fn into_bytes(self) -> Vec<u8> {
        match self {
            Capped::Whole(b) | Capped::Cut(b) => b,
        }
    }
}

/// Reads at most `cap` bytes of `response`: a longer (or endless) body stops at the cap, and a
/// `Content-Length` over it stops before reading anything.
pub(super) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Capped, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Ok(Capped::Cut(Vec::new()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            body.extend_from_slice(&chunk[..cap - body.len()]);
            return Ok(Capped::Cut(body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(body))
}

/// `text` as one URL path segment.
fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

fn setup(message: String) -> ApiError {
    ApiError::Permanent { status: 0, message }
}

/// A short description of a transport error: what happened and its root cause, without the URL
/// (result URLs carry storage signatures).
pub(super) fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the connection failed"
    };
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    if std::ptr::addr_eq(root, e as &dyn std::error::Error) {
        what.to_string()
    } else {
        shorten(&format!("{what}: {root}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_task_id_is_one_segment_that_decodes_back(id in "\\PC{0,40}") {
            let encoded = segment(&id);
            prop_assert!(encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            let decoded = percent_encoding::percent_decode_str(&encoded).decode_utf8().unwrap();
            prop_assert_eq!(decoded, id.as_str());
        }
    }
}
