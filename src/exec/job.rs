//! The per-shot tasks: one submit, the polling of one task id, one download. They report to the
//! dispatcher over a channel and never touch run state, the journal or the results.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc};

use super::backoff::Backoff;
use super::budget::QueryBudget;
use super::poll::PollSchedule;
use crate::api::{ApiError, Client, Downloaded, TaskExtras, TaskStatus};

/// Consecutive query errors or `unknown` answers before a task is given up for this run.
pub const MAX_QUERY_TROUBLES: u32 = 20;
/// Queries answered 4xx (`task_not_exist`: a young task may not be indexed yet) retried with
/// backoff (2 s doubling to 60 s: about 2 minutes) before the task is left `unknown`.
pub const MAX_QUERY_REFUSALS: u32 = 6;
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
    pub videos_dir: PathBuf,
    pub downloads: Semaphore,
}

impl JobContext {
    fn send(&self, event: Event) {
        // The dispatcher outlives its jobs; a closed channel means the run is over.
        let _ = self.tx.send(event);
    }
}

/// POSTs `body` once; on acceptance polls the task and downloads its video.
pub async fn submit(ctx: Arc<JobContext>, idx: usize, body: serde_json::Value, file: String) {
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
pub async fn poll(
    ctx: Arc<JobContext>,
    idx: usize,
    task_id: String,
    submitted: SystemTime,
    file: String,
) {
    let mut schedule = PollSchedule::new(ctx.poll, &ctx.client.provider().timing);
    let mut troubles = 0u32;
    let mut refusals = 0u32;
    let mut last_trouble = String::new();
    loop {
        tokio::time::sleep(schedule.next_wait()).await;
        ctx.budget.acquire().await;
        match ctx.client.query(&task_id).await {
            Ok(state) => match state.status {
                TaskStatus::Succeeded => match state.url {
                    Some(url) => {
                        ctx.send(Event::Succeeded {
                            idx,
                            url: url.clone(),
                            extras: state.extras,
                        });
                        download(ctx, idx, url, file).await;
                        return;
                    }
                    None => {
                        troubles += 1;
                        last_trouble = "task succeeded without a result URL".into();
                    }
                },
                TaskStatus::Failed => {
                    let error = state
                        .error
                        .unwrap_or_else(|| "the provider reports the task failed".into());
                    ctx.send(Event::Failed { idx, error });
                    return;
                }
                TaskStatus::Waiting | TaskStatus::Running => {
                    troubles = 0;
                    refusals = 0;
                }
                TaskStatus::Unknown => {
                    troubles += 1;
                    last_trouble = "the provider reports the task status as unknown".into();
                }
            },
            Err(ApiError::Auth { status, message }) => {
                let error = format!("not authorised (HTTP {status}): {message}");
                ctx.send(Event::AuthLost { idx, error });
                return;
            }
            Err(ApiError::Permanent { status, message }) => {
                let young = submitted
                    .elapsed()
                    .map_or(true, |age| age < ctx.client.provider().timing.task_ttl);
                if !young {
                    let error = format!("query refused (HTTP {status}): {message}");
                    ctx.send(Event::Failed { idx, error });
                    return;
                }
                // A task younger than a day exists: the gateway may not have indexed it yet.
                if refusals >= MAX_QUERY_REFUSALS {
                    let error = format!(
                        "the provider answered {} queries for task {task_id} with HTTP {status} \
                         ({message}) although it is younger than 24 h; it may still be running",
                        refusals + 1
                    );
                    ctx.send(Event::GaveUp { idx, error });
                    return;
                }
                tokio::time::sleep(ctx.backoff.wait(refusals)).await;
                refusals += 1;
                continue;
            }
            Err(ApiError::RateLimited { retry_after }) => {
                let wait = retry_after.unwrap_or_else(|| ctx.backoff.wait(troubles.min(5)));
                tokio::time::sleep(wait).await;
            }
            Err(other) => {
                troubles += 1;
                last_trouble = other.to_string();
            }
        }
        if troubles >= MAX_QUERY_TROUBLES {
            let error = format!(
                "gave up polling task {task_id} after {troubles} answers without news ({last_trouble})"
            );
            ctx.send(Event::GaveUp { idx, error });
            return;
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
