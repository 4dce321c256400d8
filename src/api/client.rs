//! The one type the executor holds: [`Client`] speaks through one provider's [`Speaker`] (built
//! by its row's `connect`) and keeps what does not depend on the provider: result downloads and
//! their caps, the request timeout, and the hint added to a refused key. What only some
//! providers can do is asked as a capability ([`Client::task_list`], [`Client::model_sent`]),
//! never by naming a provider's type.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::download::Downloader;
use super::gravitex;
use super::http::{Endpoint, pooled, setup};
use super::provider::{Connect, Provider, Speaker};
use super::task_list::TaskList;
use super::{ApiError, ClientConfig, DownloadLimits, Downloaded, Submitted, TaskState};

/// The provider client: submit, query, download. Cheap to clone; connections are reused.
#[derive(Clone)]
pub struct Client {
    speaker: Arc<dyn Speaker>,
    provider: Provider,
    /// The pool the speaker was built on, to build it again ([`Client::with_workspace`]).
    http: reqwest::Client,
    downloads: Downloader,
    timeout: Duration,
    /// Added to a 401's message ([`Client::with_auth_hint`]).
    auth_hint: Option<String>,
    /// The base URL requests go to, named when it cannot be reached.
    base: String,
    /// Where the base URL came from ([`Client::with_base_source`]).
    base_source: Option<String>,
    /// Whether the API has answered a submit or query of this client (or a clone of it).
    reached: Arc<AtomicBool>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("speaker", &self.speaker)
            .field("timeout", &self.timeout)
            .field("download", &self.downloads.limits)
            .finish()
    }
}

impl Client {
    /// Builds the gateway client. A bad base URL (a trailing `/` or `/v1` is tolerated), a key
    /// that cannot go in a header (surrounding whitespace is trimmed), a zero timeout or a TLS
    /// set-up failure is `Permanent { status: 0 }`: nothing was sent.
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        Client::for_provider(gravitex::PROVIDER, config)
    }

    /// [`Client::new`] for another provider (`api::dashscope::PROVIDER`, or another gateway of
    /// the GravitexAI family).
    pub fn for_provider(provider: Provider, config: ClientConfig) -> Result<Client, ApiError> {
        let endpoint = Endpoint::new(&provider, &config.base_url, &config.api_key, config.timeout)?;
        let http = pooled(
            config.timeout,
            format!("{}{}", endpoint.base, provider.tasks_path),
        )?;
        let speaker = (provider.connect)(
            &provider,
            Connect {
                base: endpoint.base.clone(),
                key: endpoint.key.clone(),
                http: http.clone(),
                timeout: config.timeout,
                workspace: None,
            },
        )?;
        Ok(Client {
            speaker,
            provider,
            http: http.clone(),
            downloads: Downloader {
                http,
                key: endpoint.key.clone(),
                limits: DownloadLimits::default(),
            },
            timeout: config.timeout,
            auth_hint: None,
            base: endpoint.base,
            base_source: None,
            reached: Arc::default(),
        })
    }

    /// The same client with other download caps; a zero cap is `Permanent { status: 0 }`.
    pub fn with_download_limits(mut self, limits: DownloadLimits) -> Result<Client, ApiError> {
        if limits.max_bytes == 0 || limits.timeout.is_zero() {
            return Err(setup(
                "[download] max_bytes and timeout must be more than 0".into(),
            ));
        }
        self.downloads.limits = limits;
        Ok(self)
    }

    /// The same client sending a workspace id (DashScope's workspace header); an unusable id
    /// is `Permanent { status: 0 }`. A provider without workspaces (the gateway) ignores it.
    pub fn with_workspace(mut self, workspace: Option<String>) -> Result<Client, ApiError> {
        if workspace.is_some() {
            self.speaker = (self.provider.connect)(
                &self.provider,
                Connect {
                    base: self.base.clone(),
                    key: self.downloads.key.clone(),
                    http: self.http.clone(),
                    timeout: self.timeout,
                    workspace,
                },
            )?;
        }
        Ok(self)
    }

    /// The same client adding `hint` to the message of a 401 (where the key came from, which
    /// region it must belong to). The hint must not hold the key.
    pub fn with_auth_hint(mut self, hint: Option<String>) -> Client {
        self.auth_hint = hint;
        self
    }

    /// The same client naming `source` (e.g. "`--base-url`") beside the base URL when a submit
    /// cannot reach it.
    pub fn with_base_source(mut self, source: Option<String>) -> Client {
        self.base_source = source;
        self
    }

    /// The provider this client speaks to.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// The provider's task list, when it has one: where a run looks for the task of a submit
    /// whose answer was lost, and checks a task `--attach` names.
    pub fn task_list(&self) -> Option<&dyn TaskList> {
        self.speaker.task_list()
    }

    /// Whether a run searches the provider's task list for unknown submits.
    pub fn searches(&self) -> bool {
        self.task_list().is_some()
    }

    /// The model id this provider is sent for planner model id `alias` (DashScope's native id
    /// there; the planner's own on the gateway).
    pub fn model_sent<'a>(&self, alias: &'a str) -> &'a str {
        self.provider.model_sent(alias)
    }

    /// The timeout of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one planner body; the provider encodes it.
    ///
    /// A 2xx whose body names no task id (or cannot be read or parsed) is `Ambiguous`: the
    /// provider may have created a task we cannot see.
    pub async fn submit(&self, body: &Value) -> Result<Submitted, ApiError> {
        let submitted = match self.provider.encode {
            Some(encode) => match encode(body) {
                Ok(wire) => self.speaker.submit(&wire).await,
                Err(e) => Err(e),
            },
            None => self.speaker.submit(body).await,
        };
        if let Err(e) = &submitted {
            tracing::debug!("submit to {}: {e}", self.base);
        }
        self.hinted(submitted)
    }

    /// One task's state, normalised.
    ///
    /// An unreadable 200 is `Transient`: asking again is harmless. An id that could reach
    /// another path is refused as `Permanent { status: 0 }` without a request.
    pub async fn query(&self, task_id: &str) -> Result<TaskState, ApiError> {
        let state = self.speaker.query(task_id).await;
        // `-vv`: every poll's answer (a task id and a status; no URL, which may be signed).
        match &state {
            Ok(s) => tracing::debug!(
                "query {task_id}: {:?}{}",
                s.status,
                s.progress.map(|p| format!(" {p}%")).unwrap_or_default()
            ),
            Err(e) => tracing::debug!("query {task_id}: {e}"),
        }
        self.hinted(state)
    }

    /// Streams `url` to a temporary file beside `dest`, then renames it to `dest`.
    /// Sends no API key (result URLs are storage links).
    ///
    /// 403/404/410 are `Gone` (the URL expired). A body that is not a video, is over
    /// [`DownloadLimits::max_bytes`] or takes longer than its timeout is `Unusable`. Every
    /// failure leaves no file behind.
    pub async fn download(&self, url: &str, dest: &Path) -> Result<Downloaded, ApiError> {
        self.downloads.download(url, dest).await
    }

    /// `answer` with the auth hint ([`Client::with_auth_hint`]) added to a 401, and a failed
    /// connect named by its URL and source, or `Transient` once the API has answered before.
    fn hinted<T>(&self, answer: Result<T, ApiError>) -> Result<T, ApiError> {
        let answered = match &answer {
            Ok(_) => true,
            Err(e) => matches!(
                e,
                ApiError::RateLimited { .. }
                    | ApiError::Transient {
                        status: Some(_),
                        ..
                    }
                    | ApiError::Permanent { status: 1.., .. }
                    | ApiError::Auth { .. }
                    | ApiError::Endpoint { .. }
            ),
        };
        if answered {
            self.reached.store(true, Ordering::Relaxed);
        }
        if let Err(ApiError::Unreachable { message }) = &answer {
            if self.reached.load(Ordering::Relaxed) {
                return Err(ApiError::Transient {
                    status: None,
                    message: message.clone(),
                });
            }
            let from = (self.base_source.as_deref())
                .map_or_else(String::new, |s| format!(" (the base URL from {s})"));
            return Err(ApiError::Unreachable {
                message: format!(
                    "{} at {}{from}: {message}; nothing was sent: check the URL, and that the \
                     provider (or `shotlist sim`) is running there",
                    self.provider.name, self.base
                ),
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new(ClientConfig {
            base_url: "http://127.0.0.1:9".into(),
            api_key: super::super::ApiKey::new("sk-test"),
            timeout: Duration::from_secs(1),
        })
        .unwrap()
        .with_base_source(Some("`--base-url`".into()))
    }

    fn unreachable() -> Result<(), ApiError> {
        Err(ApiError::Unreachable {
            message: "cannot connect: Connection refused".into(),
        })
    }

    #[test]
    fn a_failed_connect_before_any_answer_names_the_url_and_its_source() {
        let Err(ApiError::Unreachable { message }) = client().hinted(unreachable()) else {
            panic!("stays unreachable");
        };
        assert!(message.contains("http://127.0.0.1:9 (the base URL from `--base-url`)"));
        assert!(message.contains("nothing was sent"), "{message}");
    }

    #[test]
    fn a_failed_connect_after_the_api_answered_is_transient_in_every_clone() {
        let client = client();
        let clone = client.clone();
        let answered: Result<(), ApiError> = Err(ApiError::RateLimited { retry_after: None });
        let _ = client.hinted(answered);
        assert!(matches!(
            clone.hinted(unreachable()),
            Err(ApiError::Transient { status: None, .. })
        ));
    }

    #[test]
    fn a_failed_connect_does_not_count_as_an_answer() {
        let client = client();
        let _ = client.hinted(unreachable());
        let transient: Result<(), ApiError> = Err(ApiError::Transient {
            status: None,
            message: "timed out".into(),
        });
        let _ = client.hinted(transient);
        assert!(matches!(
            client.hinted(unreachable()),
            Err(ApiError::Unreachable { .. })
        ));
    }
}
