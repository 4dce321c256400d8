//! The search itself: the job that lists the provider's tasks around each unknown submit and
//! queries the candidates within the run's query budget, then reports one [`Verdict`] per shot
//! to the dispatcher. The decision it feeds ([`decide`]) is the parent module's, pure and free
//! of jobs, so the job's event type can carry a verdict without a circle.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::job::{Event, JobContext};
use super::super::poll::PollSchedule;
use super::{
    Candidate, MAX_CANDIDATES, MAX_TRIES, Seen, Sought, Target, Verdict, decide, key_id_of,
    plausible_id, same_key,
};
use crate::api::ApiError;
use crate::api::task_list::{ListQuery, ListedTask, MAX_PAGE_SIZE, MAX_PAGES, TaskList, now_ms};

/// Searches for every target and reports each one's [`Verdict`] (`known`: task ids the
/// journal already names; `wait`: see [`DEFAULT_WAIT`]).
pub async fn run(
    ctx: Arc<JobContext>,
    targets: Vec<Target>,
    known: HashSet<String>,
    wait: Duration,
) {
    let verdicts = match ctx.client.task_list() {
        Some(tasks) => search(&ctx, tasks, &targets, &known, wait).await,
        None => vec![
            Verdict::Error {
                message: "this provider has no task list".into(),
                passing: false,
            };
            targets.len()
        ],
    };
    for (t, verdict) in targets.iter().zip(verdicts) {
        let _ = ctx.tx.send(Event::Reconciled {
            idx: t.idx,
            verdict,
        });
    }
}

async fn search(
    ctx: &JobContext,
    listing: &dyn TaskList,
    targets: &[Target],
    known: &HashSet<String>,
    wait: Duration,
) -> Vec<Verdict> {
    let deadline = Instant::now() + wait;
    let ttl = ctx.client.provider().timing.task_ttl;
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut relisted = false;
    loop {
        let listed_at = now_ms();
        let windows: Vec<(u64, u64)> = targets.iter().map(|t| t.window(listed_at, ttl)).collect();
        let listed = match list(ctx, listing, targets, &windows, deadline).await {
            Ok(listed) => listed,
            Err(e) => return vec![Verdict::error(&e); targets.len()],
        };
        let mut verdicts: Vec<Option<Verdict>> = vec![None; targets.len()];
        let key_ids: Vec<Option<&str>> = (targets.iter())
            .map(|t| key_id_of(&listed, &t.same_key))
            .collect();
        let mut wanted: HashMap<&str, &ListedTask> = HashMap::new();
        for (k, t) in targets.iter().enumerate() {
            let (start, end) = windows[k];
            let inside: Vec<&ListedTask> = (listed.iter())
                .filter(|l| l.model == t.signature.model)
                .filter(|l| !known.contains(&l.task_id))
                .filter(|l| same_key(key_ids[k], l.api_key_id.as_deref()))
                .filter(|l| l.created_ms.is_some_and(|c| (start..=end).contains(&c)))
                .collect();
            if inside.len() > MAX_CANDIDATES {
                verdicts[k] = Some(Verdict::TooMany {
                    count: inside.len(),
                });
                continue;
            }
            for l in inside {
                wanted.insert(&l.task_id, l);
            }
        }
        if let Err(e) = settle(ctx, listing, &wanted, &mut seen, deadline).await {
            return vec![Verdict::error(&e); targets.len()];
        }
        let candidates: Vec<Candidate> = (wanted.iter())
            .map(|(id, l)| Candidate {
                task_id: (*id).to_owned(),
                created_ms: l.created_ms.unwrap_or_default(),
                key_id: l.api_key_id.clone(),
                seen: seen.get(*id).cloned().unwrap_or(Seen::Unfinished),
            })
            .collect();
        let open: Vec<usize> = (0..targets.len())
            .filter(|&k| verdicts[k].is_none())
            .collect();
        let shots: Vec<Sought> = (open.iter())
            .map(|&k| (&targets[k].signature, windows[k], key_ids[k]))
            .collect();
        for (k, v) in open.iter().zip(decide(&shots, &candidates)) {
            verdicts[*k] = Some(v);
        }
        // A window still open when listed may yet show a task created on a clock ahead of ours:
        // an empty search is repeated once it has closed, if the wait allows.
        let closes = (targets.iter().zip(&verdicts))
            .filter(|(_, v)| matches!(v, Some(Verdict::NoMatch { .. })))
            .map(|(t, _)| t.window_end())
            .filter(|&end| end > listed_at)
            .max();
        match closes {
            Some(end) if !relisted => {
                let at = Instant::now() + Duration::from_millis(end - listed_at + 1000);
                if at > deadline {
                    return verdicts.into_iter().flatten().collect();
                }
                tokio::time::sleep_until(at.into()).await;
                relisted = true;
            }
            _ => return verdicts.into_iter().flatten().collect(),
        }
    }
}

/// Every task of each target's model created within the targets' windows (overlapping windows
/// are listed once), at most [`MAX_PAGES`] pages of at most [`MAX_PAGE_SIZE`] each (memory is
/// bounded whatever the answers): each task once (pages shift while an account creates tasks),
/// and only those of the model with a [`plausible_id`].
async fn list(
    ctx: &JobContext,
    listing: &dyn TaskList,
    targets: &[Target],
    windows: &[(u64, u64)],
    deadline: Instant,
) -> Result<Vec<ListedTask>, ApiError> {
    let mut by_model: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    for (t, w) in targets.iter().zip(windows) {
        by_model.entry(t.signature.model).or_default().push(*w);
    }
    let mut tasks = Vec::new();
    for (model, mut spans) in by_model {
        spans.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        for window in merged {
            let query = ListQuery {
                model: Some(model.to_owned()),
                status: None,
                window_ms: Some(window),
            };
            for page_no in 1..=MAX_PAGES {
                let page = read(ctx, deadline, || {
                    listing.list(&query, page_no, MAX_PAGE_SIZE)
                })
                .await?;
                let last = page.tasks.is_empty() || u64::from(page_no) >= page.total_page;
                if page.tasks.len() > MAX_PAGE_SIZE as usize {
                    return Err(ApiError::Permanent {
                        status: 0,
                        message: format!(
                            "the task list answered {} tasks for a page of {MAX_PAGE_SIZE}",
                            page.tasks.len()
                        ),
                    });
                }
                let ours = |t: &ListedTask| t.model == model && plausible_id(&t.task_id);
                tasks.extend(page.tasks.into_iter().filter(ours));
                if last {
                    break;
                }
                if page_no == MAX_PAGES {
                    return Err(ApiError::Permanent {
                        status: 0,
                        message: format!(
                            "{model} lists more than {} tasks around the submit",
                            MAX_PAGES * MAX_PAGE_SIZE
                        ),
                    });
                }
            }
        }
    }
    let mut ids = HashSet::new();
    tasks.retain(|t| ids.insert(t.task_id.clone()));
    Ok(tasks)
}

/// Queries each wanted candidate not yet finished, again on the provider's poll schedule while
/// any is still running, until `deadline`. Only a refused key is an error: a query that fails
/// otherwise leaves its candidate unfinished (so it cannot be taken for a sure match).
async fn settle(
    ctx: &JobContext,
    listing: &dyn TaskList,
    wanted: &HashMap<&str, &ListedTask>,
    seen: &mut HashMap<String, Seen>,
    deadline: Instant,
) -> Result<(), ApiError> {
    let mut schedule = PollSchedule::new(ctx.poll, &ctx.client.provider().timing);
    loop {
        for id in wanted.keys() {
            if seen.get(*id).is_some_and(|s| *s != Seen::Unfinished) {
                continue;
            }
            let now = match read(ctx, deadline, || listing.detail(id)).await {
                Ok(task) => Seen::of(&task),
                Err(e @ ApiError::Auth { .. }) => return Err(e),
                Err(ApiError::Permanent { .. }) => Seen::NoPrompt,
                Err(_) => Seen::Unfinished,
            };
            seen.insert((*id).to_owned(), now);
        }
        let running = wanted
            .keys()
            .any(|id| seen.get(*id) == Some(&Seen::Unfinished));
        let next = schedule.next_wait();
        if !running || Instant::now() + next > deadline {
            return Ok(());
        }
        tokio::time::sleep(next).await;
    }
}

/// One list page or query within the query budget, retried on 429 and 5xx while `deadline`
/// allows: a search ends within its wait plus one request, whatever the answers.
async fn read<T, F: Future<Output = Result<T, ApiError>>>(
    ctx: &JobContext,
    deadline: Instant,
    call: impl Fn() -> F,
) -> Result<T, ApiError> {
    let out_of_time = || ApiError::Transient {
        status: None,
        message: "the search ran out of time".into(),
    };
    let mut tries = 0;
    loop {
        if Instant::now() >= deadline {
            return Err(out_of_time());
        }
        ctx.budget.acquire().await;
        let wait = match call().await {
            Err(ApiError::RateLimited { retry_after }) if tries < MAX_TRIES => {
                retry_after.unwrap_or_else(|| ctx.backoff.wait(tries))
            }
            Err(ApiError::Transient { .. }) if tries < MAX_TRIES => ctx.backoff.wait(tries),
            other => return other,
        };
        if Instant::now() + wait > deadline {
            return Err(out_of_time());
        }
        tokio::time::sleep(wait).await;
        tries += 1;
    }
}
