//! HTTP plumbing every provider shares: one pooled `reqwest::Client` (rustls with the ring
//! provider), the checks made before anything is sent, size-capped reads, and the mapping of
//! transport failures onto [`ApiError`]. The line that matters is whether the request may have
//! reached the provider: a connect failure means nothing was sent (transient), anything after
//! that on a submit may have created a paid task (ambiguous).

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{HeaderValue, LOCATION, RETRY_AFTER};

use super::error_body::{reason, shorten};
use super::provider::Provider;
pub(crate) use super::provider::{Call, Refusal};
use super::{ApiError, ApiKey};

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

/// What every provider client checks before anything is sent.
pub(super) struct Endpoint {
    /// The base URL, without a trailing `/` or the provider's `base_suffix`.
    pub base: String,
    /// The key, trimmed.
    pub key: ApiKey,
    /// The `Authorization` value, marked sensitive (kept out of reqwest's debug output).
    pub auth: HeaderValue,
}

impl Endpoint {
    /// A bad base URL (a trailing `/` or `base_suffix` is tolerated), a key that cannot go in a
    /// header (surrounding whitespace is trimmed) or a zero timeout is `Permanent { status: 0 }`.
    pub fn new(
        provider: &Provider,
        base_url: &str,
        key: &ApiKey,
        timeout: Duration,
    ) -> Result<Endpoint, ApiError> {
        let base = base_url.trim().trim_end_matches('/');
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
        let key = ApiKey::new(key.expose().trim());
        let Ok(mut auth) = HeaderValue::from_str(&provider.auth_header(key.expose())) else {
            return Err(setup(
                "the API key has characters that cannot be sent in an HTTP header".into(),
            ));
        };
        auth.set_sensitive(true);
        if timeout.is_zero() {
            return Err(setup("the request timeout must be more than 0s".into()));
        }
        Ok(Endpoint {
            base: base.to_owned(),
            key,
            auth,
        })
    }
}

/// One pool for an API and its result downloads. Result links may redirect (CDNs); the API
/// (every URL under `api`) must not: a redirected POST can turn into a GET, and a redirect
/// usually means a wrong base URL the user should fix.
pub(super) fn pooled(timeout: Duration, api: String) -> Result<reqwest::Client, ApiError> {
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
    http_client(timeout, redirects)
}

impl Refusal {
    /// A submit answered by something that is not the API: 404/405, or another 4xx as a web
    /// page (no provider refuses a body in HTML). Nothing was created there.
    fn wrong_endpoint(&self, call: Call, provider: &Provider, key: &ApiKey) -> Option<ApiError> {
        let page = self.body.trim_ascii_start().starts_with(b"<");
        let wrong = match self.status {
            // 501: the server has no such method there; nothing was created.
            404 | 405 | 501 => true,
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

/// A transport failure: a request that could not be built is permanent; a submit that could not
/// connect is unreachable (nothing left: [`super::Client`] decides whether the API was ever
/// reached) and a read transient; after the request left, a submit is ambiguous and a read is
/// transient.
pub(super) fn transport(key: &ApiKey, e: &reqwest::Error, call: Call) -> ApiError {
    let message = key.scrub(describe(e));
    if e.is_builder() {
        return setup(message);
    }
    if e.is_connect() && call == Call::Submit {
        return ApiError::Unreachable { message };
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

/// How long an idle pooled connection is kept. Servers and load balancers close idle
/// connections after their own time (often 15–75 s); a submit sent on one just as it is closed
/// is reset after sending, and its outcome is unknown. Dropping ours first avoids that race.
const POOL_IDLE: Duration = Duration::from_secs(10);

/// The API's HTTP client: rustls, the request timeout on connect and each read, `redirects`.
pub(super) fn http_client(
    timeout: Duration,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::Client, ApiError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_backend_rustls()
        .redirect(redirects)
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .pool_idle_timeout(POOL_IDLE)
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
pub(super) fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

pub(super) fn setup(message: String) -> ApiError {
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
