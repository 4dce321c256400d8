//! What the run does with an outcome: pure decisions, apart from the dispatcher that applies
//! them (journal lines, status, queues, the stop), so every arm is tested without tokio or HTTP.

use std::time::Duration;

use crate::api::{ApiError, TaskExtras, TaskState, TaskStatus};
use crate::exec::backoff::Backoff;
use crate::exec::state::Status;

/// Bounded retries of a submit answered with 5xx.
pub const MAX_SERVER_RETRIES: u32 = 5;
/// Consecutive query errors or `unknown` answers before a task is given up for this run.
pub const MAX_QUERY_TROUBLES: u32 = 20;
/// Queries answered 4xx (`task_not_exist`: a young task may not be indexed yet) retried with
/// backoff (2 s doubling to 60 s: about 2 minutes) before the task is left `unknown`.
pub const MAX_QUERY_REFUSALS: u32 = 6;

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
        ApiError::Endpoint { .. } | ApiError::Unreachable { .. } => {
            AfterSubmit::StopRun { message: msg }
        }
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

/// One task's polling so far: what [`after_query`] counts between answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polling {
    pub task_id: String,
    /// The provider's task lifetime: a refused query of a younger task is retried.
    pub task_ttl: Duration,
    /// Waits after a refused (4xx) query of a young task.
    pub backoff: Backoff,
    /// Answers in a row without news (errors, `unknown`, success without a URL).
    troubles: u32,
    /// Refused queries of a young task in a row.
    refusals: u32,
}

impl Polling {
    pub fn new(task_id: String, task_ttl: Duration, backoff: Backoff) -> Polling {
        Polling {
            task_id,
            task_ttl,
            backoff,
            troubles: 0,
            refusals: 0,
        }
    }
}

/// The next step after a query answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterQuery {
    /// Poll again on schedule.
    Continue,
    /// Poll again on schedule, but not before this long from now: a 429's `Retry-After` (zero
    /// without one: queries are free and idempotent, [`super::poll`] says when), or the
    /// backoff of a refused query of a young task.
    Wait(Duration),
    /// The task has its result URL: download it.
    Succeeded { url: String, extras: TaskExtras },
    /// The task failed (or its query is refused for good): the shot failed.
    Failed(String),
    /// Polling stops without an answer; the task may still finish (a rerun polls it again).
    GaveUp(String),
    /// 401/403: the key no longer works.
    AuthLost(String),
}

/// Decides after a query of `polling`'s task answered `answer`; `age` is the task's (`None`
/// when the clock went back: counted young).
pub fn after_query(
    polling: &mut Polling,
    answer: Result<TaskState, ApiError>,
    age: Option<Duration>,
) -> AfterQuery {
    let trouble = match answer {
        Ok(state) => match state.status {
            TaskStatus::Succeeded => match state.url {
                Some(url) => {
                    return AfterQuery::Succeeded {
                        url,
                        extras: state.extras,
                    };
                }
                None => "task succeeded without a result URL".to_owned(),
            },
            TaskStatus::Failed => {
                return AfterQuery::Failed(
                    (state.error).unwrap_or_else(|| "the provider reports the task failed".into()),
                );
            }
            TaskStatus::Waiting | TaskStatus::Running => {
                polling.troubles = 0;
                polling.refusals = 0;
                return AfterQuery::Continue;
            }
            TaskStatus::Unknown => "the provider reports the task status as unknown".to_owned(),
        },
        Err(ApiError::Auth { status, message }) => {
            return AfterQuery::AuthLost(format!("not authorised (HTTP {status}): {message}"));
        }
        Err(ApiError::Permanent { status, message }) => {
            if age.is_some_and(|age| age >= polling.task_ttl) {
                return AfterQuery::Failed(format!("query refused (HTTP {status}): {message}"));
            }
            // A task younger than its lifetime exists: the gateway may not have indexed it yet.
            if polling.refusals >= MAX_QUERY_REFUSALS {
                return AfterQuery::GaveUp(format!(
                    "the provider answered {} queries for task {} with HTTP {status} \
                     ({message}) although it is younger than {}; it may still be running",
                    polling.refusals + 1,
                    polling.task_id,
                    super::reason::Span(polling.task_ttl)
                ));
            }
            let wait = polling.backoff.wait(polling.refusals);
            polling.refusals += 1;
            return AfterQuery::Wait(wait);
        }
        Err(ApiError::RateLimited { retry_after }) => {
            return AfterQuery::Wait(retry_after.unwrap_or_default());
        }
        Err(other) => other.to_string(),
    };
    polling.troubles += 1;
    if polling.troubles >= MAX_QUERY_TROUBLES {
        return AfterQuery::GaveUp(format!(
            "gave up polling task {} after {} answers without news ({trouble})",
            polling.task_id, polling.troubles
        ));
    }
    AfterQuery::Continue
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
    fn an_unreachable_api_stops_the_run_and_created_nothing() {
        let e = ApiError::Unreachable {
            message: "cannot connect".into(),
        };
        let next = after_submit(&e, 0);
        assert!(next.created_nothing());
        assert!(matches!(next, AfterSubmit::StopRun { .. }), "{next:?}");
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

    /// What is asked, the answer, the task's age and the step expected.
    type QueryCase = (
        &'static str,
        Result<TaskState, ApiError>,
        Option<Duration>,
        AfterQuery,
    );

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn polling() -> Polling {
        Polling::new("t-1".into(), DAY, Backoff::PROVIDER)
    }

    fn state(status: TaskStatus, url: Option<&str>, error: Option<&str>) -> TaskState {
        TaskState {
            status,
            url: url.map(Into::into),
            error: error.map(Into::into),
            progress: None,
            extras: TaskExtras::default(),
        }
    }

    fn refused() -> ApiError {
        ApiError::Permanent {
            status: 400,
            message: "task_not_exist".into(),
        }
    }

    /// A wait drawn from `backoff`'s retry `n`: its nominal length ±20 %.
    fn is_backoff(next: &AfterQuery, n: u32) -> bool {
        let nominal = Backoff::PROVIDER.nominal(n);
        matches!(next, AfterQuery::Wait(d) if *d >= nominal.mul_f64(0.8) && *d <= nominal.mul_f64(1.2))
    }

    #[test]
    fn each_query_answer_has_its_step() {
        let extras = TaskExtras::default();
        let young = Some(Duration::from_secs(60));
        let cases: Vec<QueryCase> = vec![
            (
                "succeeded with a URL",
                Ok(state(TaskStatus::Succeeded, Some("https://v/x.mp4"), None)),
                young,
                AfterQuery::Succeeded {
                    url: "https://v/x.mp4".into(),
                    extras: extras.clone(),
                },
            ),
            (
                "failed with the provider's reason",
                Ok(state(TaskStatus::Failed, None, Some("content policy"))),
                young,
                AfterQuery::Failed("content policy".into()),
            ),
            (
                "failed without a reason",
                Ok(state(TaskStatus::Failed, None, None)),
                young,
                AfterQuery::Failed("the provider reports the task failed".into()),
            ),
            (
                "running",
                Ok(state(TaskStatus::Running, None, None)),
                young,
                AfterQuery::Continue,
            ),
            (
                "waiting",
                Ok(state(TaskStatus::Waiting, None, None)),
                young,
                AfterQuery::Continue,
            ),
            (
                "unknown status, counted",
                Ok(state(TaskStatus::Unknown, None, None)),
                young,
                AfterQuery::Continue,
            ),
            (
                "succeeded without a URL, counted",
                Ok(state(TaskStatus::Succeeded, None, None)),
                young,
                AfterQuery::Continue,
            ),
            (
                "5xx, counted",
                Err(transient()),
                young,
                AfterQuery::Continue,
            ),
            (
                "401",
                Err(ApiError::Auth {
                    status: 401,
                    message: "bad key".into(),
                }),
                young,
                AfterQuery::AuthLost("not authorised (HTTP 401): bad key".into()),
            ),
            (
                "4xx of a task older than its TTL",
                Err(refused()),
                Some(DAY),
                AfterQuery::Failed("query refused (HTTP 400): task_not_exist".into()),
            ),
            (
                "429 with Retry-After",
                Err(ApiError::RateLimited {
                    retry_after: Some(Duration::from_secs(7)),
                }),
                young,
                AfterQuery::Wait(Duration::from_secs(7)),
            ),
        ];
        for (what, answer, age, expected) in cases {
            assert_eq!(after_query(&mut polling(), answer, age), expected, "{what}");
        }
    }

    #[test]
    fn a_young_task_refused_is_retried_with_backoff_then_given_up() {
        // A clock gone back counts as young, as a task inside its TTL does.
        for age in [None, Some(DAY - Duration::from_secs(1))] {
            let mut p = polling();
            for n in 0..MAX_QUERY_REFUSALS {
                let next = after_query(&mut p, Err(refused()), age);
                assert!(is_backoff(&next, n), "refusal {n}: {next:?}");
            }
            match after_query(&mut p, Err(refused()), age) {
                AfterQuery::GaveUp(error) => assert_eq!(
                    error,
                    "the provider answered 7 queries for task t-1 with HTTP 400 \
                     (task_not_exist) although it is younger than 24 h; it may still be running"
                ),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn news_resets_the_refusals_and_the_troubles() {
        let mut p = polling();
        for _ in 0..MAX_QUERY_REFUSALS {
            after_query(&mut p, Err(refused()), None);
        }
        for _ in 0..MAX_QUERY_TROUBLES - 1 {
            assert_eq!(
                after_query(&mut p, Err(transient()), None),
                AfterQuery::Continue
            );
        }
        let running = || Ok(state(TaskStatus::Running, None, None));
        assert_eq!(after_query(&mut p, running(), None), AfterQuery::Continue);
        assert!(is_backoff(&after_query(&mut p, Err(refused()), None), 0));
        for _ in 0..MAX_QUERY_TROUBLES - 1 {
            assert_eq!(
                after_query(&mut p, Err(transient()), None),
                AfterQuery::Continue
            );
        }
    }

    #[test]
    fn answers_without_news_give_up_at_the_limit_naming_the_last() {
        let mut p = polling();
        let unknown = || Ok(state(TaskStatus::Unknown, None, None));
        for _ in 0..MAX_QUERY_TROUBLES - 2 {
            assert_eq!(after_query(&mut p, unknown(), None), AfterQuery::Continue);
        }
        // A 429 neither counts nor resets, and without Retry-After asks for no wait of its own.
        let limited = || Err(ApiError::RateLimited { retry_after: None });
        assert_eq!(
            after_query(&mut p, limited(), None),
            AfterQuery::Wait(Duration::ZERO)
        );
        assert_eq!(after_query(&mut p, unknown(), None), AfterQuery::Continue);
        match after_query(&mut p, Err(transient()), None) {
            AfterQuery::GaveUp(error) => assert_eq!(
                error,
                "gave up polling task t-1 after 20 answers without news (transient error \
                 (HTTP 502): bad gateway)"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_or_failed_query_costs_one_poll_interval_however_many_came_before() {
        let poll = Duration::from_millis(500);
        let mut schedule = crate::exec::poll::PollSchedule::new(
            Some(poll),
            &crate::api::gravitex::PROVIDER.timing,
        );
        let mut p = polling();
        let limited = || Err(ApiError::RateLimited { retry_after: None });
        for n in 0..MAX_QUERY_TROUBLES * 3 {
            let answer = if n % 3 == 2 {
                Err(transient())
            } else {
                limited()
            };
            let next = after_query(&mut p, answer, None);
            assert_eq!(schedule.after(&next), poll, "answer {n}: {next:?}");
            if n % 3 == 2 {
                after_query(&mut p, Ok(state(TaskStatus::Running, None, None)), None);
            }
        }
    }

    #[test]
    fn a_429s_retry_after_is_honoured_when_longer_than_the_interval() {
        let timing = &crate::api::gravitex::PROVIDER.timing;
        let mut schedule =
            crate::exec::poll::PollSchedule::new(Some(Duration::from_millis(500)), timing);
        let told = after_query(
            &mut polling(),
            Err(ApiError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            }),
            None,
        );
        assert_eq!(schedule.after(&told), Duration::from_secs(3));
        let short = after_query(
            &mut polling(),
            Err(ApiError::RateLimited {
                retry_after: Some(Duration::from_millis(100)),
            }),
            None,
        );
        assert_eq!(schedule.after(&short), Duration::from_millis(500));
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
