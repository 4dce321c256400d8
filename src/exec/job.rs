//! The per-shot tasks: one submit, the polling of one task id, one download. They report to the
//! dispatcher over a channel and never touch run state, the journal or the results; what an
//! answer means is [`super::policy`]'s to decide.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc};

use super::backoff::Backoff;
use super::budget::{Change, QueryBudget};
use super::policy::{AfterQuery, Polling, after_query};
use super::poll::PollSchedule;
use crate::api::{ApiError, Client, Downloaded, TaskExtras, TaskStatus};

/// Retries of a download that failed for a transient reason.
pub const MAX_DOWNLOAD_RETRIES: u32 = 3;

/// What a job reports.
#[derive(Debug)]
pub enum Event {
    Submitted {
        idx: usize,
        task_id: String,
    },
    SubmitError {
        idx: usize,
        error: ApiError,
    },
    Succeeded {
        idx: usize,
        url: String,
        extras: TaskExtras,
    },
    Failed {
        idx: usize,
        error: String,
    },
    /// Polling stopped without an answer; the task may still finish.
    GaveUp {
        idx: usize,
        error: String,
    },
    /// 401/403 while polling.
    AuthLost {
        idx: usize,
        error: String,
    },
    Downloaded {
        idx: usize,
        done: Downloaded,
    },
    DownloadError {
        idx: usize,
        error: ApiError,
    },
    /// What the task list says about an `unknown` submit ([`super::reconcile`]).
    Reconciled {
        idx: usize,
        verdict: super::reconcile::Verdict,
    },
}

impl Event {
    /// The shot it is about.
    pub fn idx(&self) -> usize {
        match self {
            Event::Submitted { idx, .. }
            | Event::SubmitError { idx, .. }
            | Event::Succeeded { idx, .. }
            | Event::Failed { idx, .. }
            | Event::GaveUp { idx, .. }
            | Event::AuthLost { idx, .. }
            | Event::Downloaded { idx, .. }
            | Event::DownloadError { idx, .. }
            | Event::Reconciled { idx, .. } => *idx,
        }
    }
}

/// What every job shares.
pub struct JobContext {
    pub client: Client,
    pub tx: mpsc::UnboundedSender<Event>,
    pub poll: Option<Duration>,
    pub backoff: Backoff,
    /// Shared by every task's queries.
    pub budget: QueryBudget,
    /// The budget covers submits too: DashScope counts both against one per-account rate.
    pub submits_share_budget: bool,
    pub videos_dir: PathBuf,
    pub downloads: Semaphore,
}

impl JobContext {
    fn send(&self, event: Event) {
        // The dispatcher outlives its jobs; a closed channel means the run is over.
        let _ = self.tx.send(event);
    }

    /// Counts a query's answer in the budget, which adapts its rate to 429s (said with `-v`);
    /// whether it was a 429.
    fn counted<T>(&self, task_id: &str, answer: &Result<T, ApiError>) -> bool {
        let refused = matches!(answer, Err(ApiError::RateLimited { .. }));
        match answer {
            Err(ApiError::RateLimited { retry_after }) => {
                tracing::debug!(
                    "query of task {task_id} refused (429, Retry-After {retry_after:?})"
                )
            }
            Err(
                e @ (ApiError::Transient { .. }
                | ApiError::Ambiguous { .. }
                | ApiError::Unusable { .. }),
            ) => {
                self.budget.on_failed();
                tracing::debug!("query of task {task_id} failed: {e}");
            }
            _ => {}
        }
        let change = self.budget.on_answer(std::time::Instant::now(), refused);
        match change {
            Some(Change::Lowered {
                to,
                refused,
                answers,
            }) => tracing::info!(
                "the provider refused {refused} of {answers} queries (429) in the last second: \
                 query rate lowered to {to:.1}/s ({} refused so far)",
                self.budget.refused()
            ),
            Some(Change::Restored { to, noise }) => tracing::info!(
                "refusals did not follow the query rate (about {:.0} % at any rate): back to \
                 {to:.1}/s",
                100.0 * noise
            ),
            Some(Change::Raised { to }) => {
                tracing::debug!("no query refused in the last second: query rate {to:.1}/s")
            }
            None => {}
        }
        refused
    }
}

/// POSTs `body` once; on acceptance polls the task and downloads its video.
pub async fn submit(ctx: Arc<JobContext>, idx: usize, body: serde_json::Value, file: String) {
    if ctx.submits_share_budget {
        ctx.budget.acquire_first().await;
    }
    match ctx.client.submit(&body).await {
        Ok(s) => {
            ctx.send(Event::Submitted {
                idx,
                task_id: s.task_id.clone(),
            });
            poll(ctx, idx, s.task_id, SystemTime::now(), file).await;
        }
        Err(error) => ctx.send(Event::SubmitError { idx, error }),
    }
}

/// Polls `task_id` (submitted at `submitted`) until it ends; on success downloads the video.
/// What each answer means is [`after_query`]'s to say.
pub async fn poll(
    ctx: Arc<JobContext>,
    idx: usize,
    task_id: String,
    submitted: SystemTime,
    file: String,
) {
    let timing = &ctx.client.provider().timing;
    let mut schedule = PollSchedule::new(ctx.poll, timing);
    let mut polling = Polling::new(task_id, timing.task_ttl, ctx.backoff);
    let age = || submitted.elapsed().unwrap_or_default();
    // The age at which the task was last seen unfinished: what its success teaches the budget.
    let mut unfinished_at = None;
    let mut wait = schedule.next_wait();
    let mut demand = ctx.budget.polling(wait);
    loop {
        tokio::time::sleep(wait).await;
        if ctx.budget.is_early(age()) && !ctx.budget.spare(std::time::Instant::now()) {
            // The budget is short and no task of this run finished this young: the room goes
            // to submits and to tasks that may be done; this one is asked one interval later.
            ctx.budget.on_skipped();
            if ctx.budget.skipped() == 1 {
                tracing::info!(
                    "the request budget ({:.1}/s) is short for {:.1} polls/s: tasks younger \
                     than {:.1} s (about the shortest task so far) are polled only when there \
                     is room to spare",
                    ctx.budget.rate(),
                    ctx.budget.demand(),
                    ctx.budget.earliest_done().unwrap_or_default().as_secs_f64()
                );
            }
            wait = schedule.after(&AfterQuery::Continue);
            demand.every(wait);
            continue;
        }
        ctx.budget.acquire().await;
        let sent_at = age();
        let answer = ctx.client.query(&polling.task_id).await;
        let refused = ctx.counted(&polling.task_id, &answer);
        let news = answer.is_ok();
        // Only a success right after an unfinished answer brackets the task's time closely
        // (a refusal between them would widen it and pull the midpoint early).
        unfinished_at = match &answer {
            Ok(s) if matches!(s.status, TaskStatus::Waiting | TaskStatus::Running) => Some(sent_at),
            Ok(_) => unfinished_at,
            Err(_) => None,
        };
        let next = after_query(&mut polling, answer, submitted.elapsed().ok());
        wait = if news {
            schedule.after(&next)
        } else {
            schedule.retry(&next, refused)
        };
        if !refused {
            demand.every(wait);
        }
        match next {
            AfterQuery::Continue | AfterQuery::Wait(_) => {}
            AfterQuery::Succeeded { url, extras } => {
                if let Some(at) = unfinished_at {
                    ctx.budget.note_done(at, sent_at);
                }
                ctx.send(Event::Succeeded {
                    idx,
                    url: url.clone(),
                    extras,
                });
                drop(demand);
                download(ctx, idx, url, file).await;
                return;
            }
            AfterQuery::Failed(error) => return ctx.send(Event::Failed { idx, error }),
            AfterQuery::GaveUp(error) => return ctx.send(Event::GaveUp { idx, error }),
            AfterQuery::AuthLost(error) => return ctx.send(Event::AuthLost { idx, error }),
        }
    }
}

/// Downloads `url` to `videos/<file>`, retrying transient failures a few times.
pub async fn download(ctx: Arc<JobContext>, idx: usize, url: String, file: String) {
    let Some(dest) = safe_dest(&ctx.videos_dir, &file) else {
        let error = ApiError::Io {
            path: file.clone(),
            message: "refusing a download name that is not a single file name".into(),
        };
        ctx.send(Event::DownloadError { idx, error });
        return;
    };
    let _permit = ctx.downloads.acquire().await;
    let mut attempt = 0;
    loop {
        match ctx.client.download(&url, &dest).await {
            Ok(done) => {
                ctx.send(Event::Downloaded { idx, done });
                return;
            }
            Err(
                error @ (ApiError::Transient { .. }
                | ApiError::Ambiguous { .. }
                | ApiError::Unusable { retry: true, .. }),
            ) if attempt < MAX_DOWNLOAD_RETRIES => {
                tracing::debug!("download of {file} failed, retrying: {error}");
                tokio::time::sleep(ctx.backoff.wait(attempt)).await;
                attempt += 1;
            }
            Err(error) => {
                ctx.send(Event::DownloadError { idx, error });
                return;
            }
        }
    }
}

/// Where the video `file` (as the journal names it) lives under `videos`: one plain file name,
/// or one under `superseded/`.
pub fn video_path(videos: &Path, file: &str) -> Option<PathBuf> {
    match file.strip_prefix("superseded/") {
        Some(name) => safe_dest(&videos.join(super::outdir::SUPERSEDED_DIR), name),
        None => safe_dest(videos, file),
    }
}

/// `dir/file` when `file` is one plain path component.
pub fn safe_dest(dir: &Path, file: &str) -> Option<PathBuf> {
    let mut parts = Path::new(file).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(name)), None) if name == std::ffi::OsStr::new(file) => {
            Some(dir.join(name))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_components_are_safe() {
        let dir = Path::new("/out/videos");
        assert_eq!(safe_dest(dir, "a.mp4"), Some(dir.join("a.mp4")));
        for bad in [
            "",
            "..",
            ".",
            "../a.mp4",
            "x/a.mp4",
            "/etc/passwd",
            "a.mp4/",
        ] {
            assert_eq!(safe_dest(dir, bad), None, "{bad}");
        }
    }
}
