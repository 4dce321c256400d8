//! What the run does with an outcome: pure decisions, apart from the dispatcher that applies
//! them (journal lines, status, queues, the stop), so every arm is tested without tokio or HTTP.

use crate::api::ApiError;
use crate::exec::state::Status;

/// Bounded retries of a submit answered with 5xx.
pub const MAX_SERVER_RETRIES: u32 = 5;

/// The next step after a submit that did not return a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterSubmit {
    /// 429: nothing was created; back to the ready queue, and the limiter slows down.
    Requeue,
    /// 5xx with retries left: submit again after the backoff of retry `server_errors - 1`.
    Retry { server_errors: u32 },
    /// 5xx once too often: the shot failed.
    GiveUp { server_errors: u32, error: String },
    /// The provider refused the body (400 and other 4xx): the shot failed.
    Refused,
    /// 401/403, or a wrong base URL: bad for every shot; the shot stays pending and the run
    /// stops.
    StopRun { message: String },
    /// The request may have created a paid task: held as unknown, never resent on its own.
    Unknown { error: String },
}

impl AfterSubmit {
    /// The provider surely created no task (so nothing was spent); only `Unknown` may have one.
    pub fn created_nothing(&self) -> bool {
        !matches!(self, AfterSubmit::Unknown { .. })
    }
}

/// Decides after a submit error; `server_errors` counts the earlier 5xx answers of this shot.
pub fn after_submit(error: &ApiError, server_errors: u32) -> AfterSubmit {
    let msg = error.to_string();
    match error {
        ApiError::RateLimited { .. } => AfterSubmit::Requeue,
        ApiError::Transient { .. } => {
            let server_errors = server_errors + 1;
            if server_errors > MAX_SERVER_RETRIES {
                AfterSubmit::GiveUp {
                    server_errors,
                    error: format!("gave up after {MAX_SERVER_RETRIES} retries: {msg}"),
                }
            } else {
                AfterSubmit::Retry { server_errors }
            }
        }
        ApiError::Permanent { .. } => AfterSubmit::Refused,
        ApiError::Auth { .. } => AfterSubmit::StopRun {
            message: format!("the provider refused the API key: {msg}"),
        },
        ApiError::Endpoint { .. } => AfterSubmit::StopRun { message: msg },
        ApiError::Ambiguous { .. }
        | ApiError::Gone { .. }
        | ApiError::Io { .. }
        | ApiError::Unusable { .. } => AfterSubmit::Unknown {
            error: format!(
                "submit sent but its outcome is unknown ({msg}); a task may exist and be \
                 billed, so it is not resent: --resubmit-unknown sends it again"
            ),
        },
    }
}

/// The next step after a download that did not end in a kept video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterDownload {
    /// The result URL is gone: the video can no longer be had (journalled as expired).
    Expired { error: String },
    /// Local disk trouble: the shot failed and the run stops (`stop` is the run's message).
    FailAndStop { error: String, stop: String },
    /// Anything else: the shot failed; running again downloads it again.
    Fail { error: String },
}

const DOWNLOAD_AGAIN: &str = "running again downloads it again (nothing is resubmitted)";

pub fn after_download(error: &ApiError) -> AfterDownload {
    match error {
        ApiError::Gone { .. } => AfterDownload::Expired {
            error: format!("download failed, the result URL expired: {error}"),
        },
        ApiError::Io { .. } => {
            let stop = format!("download failed: {error}");
            AfterDownload::FailAndStop {
                error: format!("{stop}; {DOWNLOAD_AGAIN}"),
                stop,
            }
        }
        other => AfterDownload::Fail {
            error: format!("download failed: {other}; {DOWNLOAD_AGAIN}"),
        },
    }
}

/// What one upstream's state means for a shot waiting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// Its result URL is there.
    Feeds,
    /// Not yet.
    Wait,
    /// It will never have a URL in this run: the waiting shot is skipped.
    Blocks,
}

pub fn upstream(status: Status, has_url: bool) -> Upstream {
    match status {
        Status::Succeeded | Status::Downloading if has_url => Upstream::Feeds,
        Status::Failed | Status::Skipped | Status::Unknown | Status::Expired => Upstream::Blocks,
        _ => Upstream::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> ApiError {
        ApiError::Transient {
            status: Some(502),
            message: "bad gateway".into(),
        }
    }

    #[test]
    fn a_429_requeues() {
        let e = ApiError::RateLimited { retry_after: None };
        assert_eq!(after_submit(&e, 0), AfterSubmit::Requeue);
        assert_eq!(after_submit(&e, 9), AfterSubmit::Requeue);
        assert!(after_submit(&e, 0).created_nothing());
    }

    #[test]
    fn a_5xx_retries_until_the_retries_are_spent() {
        assert_eq!(
            after_submit(&transient(), 0),
            AfterSubmit::Retry { server_errors: 1 }
        );
        assert_eq!(
            after_submit(&transient(), MAX_SERVER_RETRIES - 1),
            AfterSubmit::Retry {
                server_errors: MAX_SERVER_RETRIES
            }
        );
        match after_submit(&transient(), MAX_SERVER_RETRIES) {
            AfterSubmit::GiveUp {
                server_errors,
                error,
            } => {
                assert_eq!(server_errors, MAX_SERVER_RETRIES + 1);
                assert!(error.contains("gave up after 5 retries"), "{error}");
                assert!(error.contains("bad gateway"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_4xx_fails_the_shot_and_an_auth_error_stops_the_run() {
        let refused = ApiError::Permanent {
            status: 400,
            message: "bad duration".into(),
        };
        assert_eq!(after_submit(&refused, 0), AfterSubmit::Refused);
        for status in [401, 403] {
            let auth = ApiError::Auth {
                status,
                message: "bad key".into(),
            };
            match after_submit(&auth, 0) {
                AfterSubmit::StopRun { message } => {
                    assert!(message.contains("refused the API key"), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_ambiguous_submit_is_unknown_and_never_resent() {
        for e in [
            ApiError::Ambiguous {
                message: "connection reset after sending".into(),
            },
            ApiError::Io {
                path: "x".into(),
                message: "y".into(),
            },
        ] {
            let next = after_submit(&e, 0);
            assert!(!next.created_nothing());
            match next {
                AfterSubmit::Unknown { error } => {
                    assert!(error.contains("--resubmit-unknown"), "{error}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_gone_download_expires_disk_trouble_stops_and_the_rest_fails() {
        assert!(matches!(
            after_download(&ApiError::Gone { status: 403 }),
            AfterDownload::Expired { .. }
        ));
        match after_download(&ApiError::Io {
            path: "videos/a.mp4".into(),
            message: "disk full".into(),
        }) {
            AfterDownload::FailAndStop { error, stop } => {
                assert!(stop.contains("disk full"), "{stop}");
                assert!(error.contains("nothing is resubmitted"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        let unusable = ApiError::Unusable {
            message: "not a video".into(),
            retry: true,
        };
        assert!(matches!(
            after_download(&unusable),
            AfterDownload::Fail { .. }
        ));
    }

    #[test]
    fn a_failed_upstream_blocks_its_dependants() {
        for s in [
            Status::Failed,
            Status::Skipped,
            Status::Unknown,
            Status::Expired,
        ] {
            assert_eq!(upstream(s, false), Upstream::Blocks);
        }
        assert_eq!(upstream(Status::Succeeded, true), Upstream::Feeds);
        assert_eq!(upstream(Status::Downloading, true), Upstream::Feeds);
        assert_eq!(upstream(Status::Succeeded, false), Upstream::Wait);
        assert_eq!(upstream(Status::InFlight, false), Upstream::Wait);
        assert_eq!(upstream(Status::Reconciling, false), Upstream::Wait);
    }
}
