//! The run's shell: the async half of the dispatcher. It owns what the run core must not
//! touch: the channel jobs report on, the task set, the journal, the progress, the results
//! writer and the `--events` stream.
//!
//! Each turn it feeds the events that arrived to the [`Core`], asks it to choose, and applies
//! the [`Effect`]s it pushed: every journal line of the turn is written with one fsync, and
//! only then are the turn's jobs spawned, so a `submitting` line is always on disk before its
//! POST leaves, without one disk sync per request. The writers are fed from the same effects
//! and journal lines (as nextest's reporter fans one event out), never from decision code.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustc_hash::FxHashMap;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::budget::QueryBudget;
use super::core::{Core, Effect, Job, Setup, epoch_ms, system_ms};
use super::events::{EventWriter, Kind, StreamEvent};
use super::job::{self, Event, JobContext};
use super::limiter::Limiter;
use super::progress::Progress;
use super::reason::Reason;
use super::reconcile::{self, Signature, Target};
use super::resume::{Start, decide, histories, keep_approved, video_intact};
use super::select::{Selection, select};
use super::state::ShotRecord;
use super::{ExecError, Outcome, RunOptions, Stop};
use crate::api::Client;
use crate::cost::Money;
use crate::journal::{Entry, EventKind, History, Journal, Replayed, ShotId};
use crate::plan::Plan;
use crate::report;

pub(super) struct Dispatcher<'a> {
    plan: &'a Plan,
    out_dir: PathBuf,
    core: Core<'a>,
    journal: Journal,
    /// This turn's journal lines, written (one fsync) before [`Dispatcher::spawns`] start.
    batch: Vec<Entry>,
    spawns: Vec<Job>,
    ctx: Arc<JobContext>,
    rx: mpsc::UnboundedReceiver<Event>,
    jobs: JoinSet<()>,
    progress: Progress,
    /// Started once the run starts; taken by its end (or by a drop on an error).
    results: Option<report::ResultsWriter>,
    /// The effective poll interval last shown with `-v`.
    poll_shown: Duration,
    /// An explicit `--poll` the request budget cannot honour was said.
    poll_warned: bool,
    reconcile_wait: Duration,
    /// `--events`: the stream every journal line and decision is also written to.
    events: Option<EventWriter>,
}

impl<'a> Dispatcher<'a> {
    pub(super) fn new(
        plan: &'a Plan,
        client: Client,
        opts: &RunOptions,
        replayed: &Replayed,
        journal: Journal,
    ) -> Result<(Dispatcher<'a>, Vec<Start>, Vec<String>), ExecError> {
        let out_dir = plan.out_dir.clone();
        let videos_dir = out_dir.join("videos");
        let now = SystemTime::now();
        let provider = *client.provider();
        let history = histories(plan, replayed);
        let (mut starts, selection) = starts_and_selection(plan, &provider, opts, &history, now)?;
        let searches = client.searches();
        let first_search = if searches {
            first_searches(plan, replayed, &history, &mut starts, &client, now)
        } else {
            vec![None; plan.shots.len()]
        };
        let mut batch = Vec::new();
        let mut recorded: FxHashMap<&str, Vec<(&ShotId, &History)>> = FxHashMap::default();
        for (shot, h) in &replayed.shots {
            if let Some(file) = h.file.as_deref() {
                recorded.entry(file).or_default().push((shot, h));
            }
        }
        for (i, shot) in plan.shots.iter().enumerate() {
            let may_download = first_search[i].is_some()
                || matches!(
                    starts[i],
                    Start::Download { .. } | Start::Poll { .. } | Start::Submit
                );
            if selection.selected[i] && may_download {
                let owners = recorded
                    .get(shot.file.as_str())
                    .map_or(&[][..], Vec::as_slice);
                let shot_id = (shot.id.as_str(), shot.key.as_str());
                batch.extend(super::outdir::supersede_recorded(
                    &videos_dir,
                    &shot.file,
                    shot_id,
                    owners,
                )?);
            }
        }
        let events = match &opts.events {
            Some(to) => Some(EventWriter::open(to).map_err(|source| ExecError::Io {
                context: format!("cannot write the event stream {to:?}"),
                source,
            })?),
            None => None,
        };
        let backoff = opts.retry_backoff;
        let (tx, rx) = mpsc::unbounded_channel();
        let ctx = Arc::new(JobContext {
            submits_share_budget: client.provider().requests.submits_share,
            client,
            tx,
            poll: opts.poll,
            backoff,
            budget: QueryBudget::new(opts.queries_per_second),
            videos_dir,
            downloads: tokio::sync::Semaphore::new(opts.concurrency.max(4)),
        });
        let mut records: Vec<ShotRecord> = history
            .iter()
            .map(|h| ShotRecord::from_history(*h))
            .collect();
        for (r, note) in records.iter_mut().zip(&opts.notes) {
            r.note = note.as_deref().map(Box::from);
        }
        let per_shot = opts.prices.per_shot(plan, &replayed.ledger);
        for (r, shot) in records.iter_mut().zip(&plan.shots) {
            r.spent = per_shot.get(shot.id.as_str()).map_or(Money::ZERO, |p| p.1);
        }
        drop(per_shot);
        let core = Core::new(
            plan,
            Setup {
                records,
                selected: selection.selected,
                first_search,
                limiter: Limiter::new(opts.concurrency, backoff, opts.submits_per_minute),
                backoff,
                provider,
                resubmit_unknown: opts.flags.resubmit_unknown,
                prices: opts.prices.clone(),
                max_cost: opts.max_cost,
                spent_before: opts.prices.spent(plan, &replayed.ledger).amount,
                shard: opts.shard.map(|s| s.to_string()),
                known_tasks: if searches {
                    let mut known = replayed.task_ids.clone();
                    known.extend(opts.siblings.tasks.keys().cloned());
                    known
                } else {
                    Default::default()
                },
                started: now,
            },
        );
        let d = Dispatcher {
            plan,
            out_dir,
            core,
            journal,
            batch,
            spawns: Vec::new(),
            ctx,
            rx,
            jobs: JoinSet::new(),
            progress: Progress::new(opts.progress),
            results: None,
            poll_shown: Duration::ZERO,
            poll_warned: false,
            reconcile_wait: opts.reconcile_wait,
            events,
        };
        if !selection.came_along.is_empty() {
            d.progress.log(&format!(
                "--only: also running the upstreams these shots need: {}",
                selection.came_along.join(", ")
            ));
        }
        Ok((d, starts, selection.came_along))
    }

    /// An informational line on the run's progress output (hidden with `-q`).
    pub(super) fn log(&self, line: &str) {
        self.progress.log(line);
    }

    /// Applies each shot's first step; each selected shot is `planned` on the event stream as
    /// it stands then.
    pub(super) fn start(&mut self, starts: Vec<Start>) {
        self.core.start(starts, SystemTime::now());
        if let Some(events) = &mut self.events {
            for (i, shot) in self.plan.shots.iter().enumerate() {
                if !self.core.is_selected(i) {
                    continue;
                }
                let r = self.core.record(i);
                let mut e = StreamEvent::shot(Kind::Planned, &shot.id, &shot.key);
                e.status = Some(super::events::status_name(r.status).to_owned());
                e.task_id = r.task_id.as_deref().map(str::to_owned);
                e.cost = self.core.cost(i);
                e.reason = r.error.as_deref().map(Reason::to_string);
                events.emit(&e);
            }
        }
        self.apply();
    }

    /// Takes in what a job reported.
    fn handle(&mut self, event: Event) {
        if self.core.wants(&event) {
            self.progress
                .on_event(&self.plan.shots[event.idx()].id, &event);
            self.core.handle(event, Instant::now(), SystemTime::now());
        }
    }

    /// Applies the core's effects in order: journal lines and jobs wait for [`Self::commit`];
    /// notes, holds and file moves happen now.
    fn apply(&mut self) {
        for effect in self.core.take_effects() {
            match effect {
                Effect::Journal(e) => self.batch.push(*e),
                Effect::Spawn(job) => self.spawns.push(job),
                Effect::Held { idx, reason } => {
                    if let Some(events) = &mut self.events {
                        let shot = &self.plan.shots[idx];
                        let mut e = StreamEvent::shot(Kind::Held, &shot.id, &shot.key);
                        e.reason = Some(reason.to_string());
                        e.cost = self.core.cost(idx);
                        events.emit(&e);
                    }
                }
                Effect::Supersede {
                    idx,
                    file,
                    task_id,
                    sha256,
                    bytes,
                } => match super::outdir::supersede(&self.ctx.videos_dir, &file, &task_id) {
                    Ok(moved) => {
                        let shot = &self.plan.shots[idx];
                        let mut e = Entry::new(EventKind::Superseded, &shot.id, &shot.key);
                        e.file = Some(moved);
                        (e.sha256, e.bytes) = (sha256, bytes);
                        self.batch.push(e);
                    }
                    Err(e) => self.progress.error(&format!("error: {e}")),
                },
                Effect::Note(line) => self.progress.log(&line),
                Effect::Error(line) => self.progress.error(&line),
            }
        }
    }

    /// Writes the turn's journal lines (one fsync) and the events they are, then spawns the
    /// turn's jobs.
    fn commit(&mut self) -> Result<(), ExecError> {
        self.flush()?;
        for job in std::mem::take(&mut self.spawns) {
            let ctx = self.ctx.clone();
            let file = |idx: usize| self.plan.shots[idx].file.clone();
            match job {
                Job::Submit { idx, body } => {
                    self.jobs.spawn(job::submit(ctx, idx, body, file(idx)));
                }
                Job::Poll {
                    idx,
                    task_id,
                    since,
                } => {
                    self.jobs
                        .spawn(job::poll(ctx, idx, task_id, since, file(idx)));
                }
                Job::Download { idx, url } => {
                    self.jobs.spawn(job::download(ctx, idx, url, file(idx)));
                }
                Job::Search { targets, known } => {
                    self.jobs
                        .spawn(reconcile::run(ctx, targets, known, self.reconcile_wait));
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ExecError> {
        self.journal.append_all(&self.batch)?;
        if let Some(events) = &mut self.events {
            for e in &self.batch {
                events.emit(&StreamEvent::of_entry(e));
            }
        }
        self.batch.clear();
        Ok(())
    }

    /// Writes the results table whole, before anything is sent, and starts their writer.
    fn start_results(&mut self) -> Result<(), ExecError> {
        self.core.take_changed();
        let rows = (0..self.plan.shots.len()).map(|i| self.core.row(i));
        let keys = report::matrix_keys(&self.plan.shots);
        self.results = Some(report::ResultsWriter::start(
            self.out_dir.clone(),
            keys,
            rows,
        )?);
        Ok(())
    }

    /// Hands the rows changed since the writer last took some to the results writer, once it
    /// would write them at once (until then they are only marked changed in the core, and no
    /// row waits in memory); a rewrite that failed stops the run.
    fn send_results(&mut self) -> Result<(), ExecError> {
        let Some(results) = &self.results else {
            self.core.take_changed();
            return Ok(());
        };
        if results.wants_all() {
            self.core.take_changed();
            results.send((0..self.plan.shots.len()).map(|i| (i, self.core.row(i))));
        } else if results.ready() {
            let mut changed = self.core.take_changed();
            changed.sort_unstable();
            results.send(changed.into_iter().map(|i| (i, self.core.row(i))));
        }
        results.error().map_or(Ok(()), |e| Err(e.into()))
    }

    /// Every row changed and not handed over yet, in plan order.
    fn changed_rows(&mut self) -> Vec<(usize, report::ResultRow)> {
        let mut changed = self.core.take_changed();
        changed.sort_unstable();
        changed.into_iter().map(|i| (i, self.core.row(i))).collect()
    }

    /// Hands over the last changes and waits for the files to hold every row as it stands.
    fn finish_results(&mut self) -> Result<(), ExecError> {
        self.send_results()?;
        let rows = self.changed_rows();
        if let Some(results) = self.results.take() {
            results.finish(rows)?;
        }
        Ok(())
    }

    /// Runs until every selected shot is settled, `stop` turns true (a signal, in the CLI) or a
    /// fatal error stops it.
    pub(super) async fn run(
        mut self,
        mut stop: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<Outcome, ExecError> {
        self.commit()?;
        self.start_results()?;
        let mut interrupted = false;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Checked before choosing, so a stop asked for at any moment sends nothing more.
            if !interrupted && stop.as_ref().is_some_and(|rx| *rx.borrow()) {
                interrupted = true;
                self.core.interrupt();
            }
            self.core.choose(Instant::now(), SystemTime::now());
            self.apply();
            self.commit()?;
            // Finished jobs keep their task's memory (a few KB each) until joined, and the
            // biased select below rarely reaches `join_next` while events keep coming.
            while let Some(joined) = self.jobs.try_join_next() {
                self.joined(joined);
            }
            self.send_results()?;
            self.progress
                .update(self.core.progress_counts(), self.core.limit(), false);
            self.show_poll_interval();

            // Once stopped, submits already on the wire are waited for, so they are journalled
            // with their answer instead of becoming `unknown`.
            match self.core.stop() {
                Some(_) if self.core.submitting() == 0 => break,
                Some(_) => {}
                None => {
                    if self.jobs.is_empty() && self.core.nothing_to_send() {
                        let mut any = false;
                        while let Ok(ev) = self.rx.try_recv() {
                            self.handle(ev);
                            any = true;
                        }
                        if !any {
                            break;
                        }
                        continue;
                    }
                }
            }

            let wake = self.core.next_wake();
            tokio::select! {
                biased;
                Some(ev) = self.rx.recv() => {
                    self.handle(ev);
                    for _ in 0..4096 {
                        match self.rx.try_recv() {
                            Ok(ev) => self.handle(ev),
                            Err(_) => break,
                        }
                    }
                }
                Some(joined) = self.jobs.join_next(), if !self.jobs.is_empty() => {
                    self.joined(joined);
                }
                () = stop_requested(&mut stop), if !interrupted => {}
                () = sleep_until_opt(wake) => {}
                _ = tick.tick() => {}
            }
        }
        self.apply();
        self.flush()?;
        self.jobs.abort_all();
        self.finish_results()?;
        self.progress
            .update(self.core.progress_counts(), self.core.limit(), true);
        self.progress.finish();
        let stop = self.core.take_stop();
        let counts = self.core.result_counts();
        let cost = self.core.run_cost();
        let budget = &self.ctx.budget;
        let queries = super::QueryCounts {
            refused: budget.refused(),
            failed: budget.failed(),
            skipped: budget.skipped(),
            rate: budget.rate(),
            ceiling: budget.qps(),
        };
        if let Some(events) = &mut self.events {
            events.emit(&StreamEvent {
                spent: Some(cost.spent),
                batch_spent: Some(cost.billed),
                currency: Some(cost.currency.clone()),
                ..StreamEvent::new(Kind::Cost)
            });
            let status = match &stop {
                Stop::Finished => "finished",
                Stop::Interrupted => "interrupted",
                Stop::Fatal(_) => "fatal",
            };
            let reason = match &stop {
                Stop::Fatal(message) => Some(message.clone()),
                _ => None,
            };
            let counts = (counts.iter())
                .map(|(s, n)| (s.as_str().to_owned(), *n))
                .collect();
            events.emit(&StreamEvent {
                status: Some(status.to_owned()),
                reason,
                counts: Some(counts),
                queries: Some(queries),
                ..StreamEvent::new(Kind::RunEnd)
            });
        }
        Ok(Outcome {
            counts,
            tally: self.core.progress_counts(),
            stop,
            all_succeeded: self.core.all_succeeded(),
            came_along: Vec::new(),
            cost,
            queries,
        })
    }

    fn joined(&self, joined: Result<(), tokio::task::JoinError>) {
        if let Err(e) = joined
            && e.is_panic()
        {
            self.progress.error(&format!("error: a task panicked: {e}"));
        }
    }

    /// Logs (`-v`) how often each task is polled when that changes by a quarter or more: the
    /// schedule's interval, stretched when the query budget is shared by many tasks.
    fn show_poll_interval(&mut self) {
        let tasks = self.core.polling();
        if tasks == 0 {
            return;
        }
        let nominal = self
            .ctx
            .poll
            .map_or(self.ctx.client.provider().timing.poll_max, |p| {
                p.max(super::poll::MIN_POLL)
            });
        let every = self.ctx.budget.effective_interval(tasks, nominal);
        if let Some(poll) = self.ctx.poll
            && !self.poll_warned
            && every > nominal.mul_f64(1.25)
        {
            self.poll_warned = true;
            let shared = if self.ctx.submits_share_budget {
                ", shared with submits"
            } else {
                ""
            };
            self.progress.log(&format!(
                "--poll {}: {tasks} task(s) polled that often need {:.0} queries/s, more than \
                 the request budget of {:.1}/s ([run] queries_per_second{shared}); each task \
                 is polled about every {:.1} s instead",
                humantime::format_duration(poll),
                tasks as f64 / nominal.as_secs_f64(),
                self.ctx.budget.rate(),
                every.as_secs_f64()
            ));
        }
        let (a, b) = (every.as_secs_f64(), self.poll_shown.as_secs_f64());
        if (a - b).abs() >= 0.25 * b.max(f64::MIN_POSITIVE) {
            self.poll_shown = every;
            tracing::info!(
                "polling {tasks} task(s) within {:.1} queries/s: each about every {:.1} s",
                self.ctx.budget.rate(),
                a
            );
        }
    }
}

/// A run ended by an error still leaves the results as the run left its shots.
impl Drop for Dispatcher<'_> {
    fn drop(&mut self) {
        let _ = self.finish_results();
    }
}

/// The journal's `unknown` submits to look for in DashScope's task list first, by plan index.
/// One whose submit is over 24 h old cannot be found: held saying so (or sent again with
/// `--resubmit-unknown`, as `starts` already says).
fn first_searches(
    plan: &Plan,
    replayed: &Replayed,
    history: &[Option<&History>],
    starts: &mut [Start],
    client: &Client,
    now: SystemTime,
) -> Vec<Option<Target>> {
    let now_ms = system_ms(now);
    let ttl = client.provider().timing.task_ttl;
    let mut search = vec![None; plan.shots.len()];
    for (i, h) in history.iter().enumerate() {
        let Some(h) = h.filter(|h| h.phase() == crate::journal::Phase::Unknown) else {
            continue;
        };
        let unknown_hold = matches!(&starts[i], Start::Hold { status, .. } if *status == report::ResultStatus::Unknown);
        if !(unknown_hold || starts[i] == Start::Submit) {
            continue;
        }
        let (Some(signature), Some(t0_ms)) = (
            Signature::of(&plan.shots[i]),
            h.submitting_at.as_deref().and_then(epoch_ms),
        ) else {
            continue;
        };
        if reconcile::too_old(t0_ms, now_ms, ttl) {
            if unknown_hold {
                starts[i] = Start::Hold {
                    status: report::ResultStatus::Unknown,
                    reason: Reason::UnknownTooOld {
                        task_ttl: ttl,
                        task_list: client.provider().name,
                    },
                };
            }
            continue;
        }
        let unknown_ms = h.unknown_at.as_deref().and_then(epoch_ms);
        let same_key = (h.submitting_line).map(|line| replayed.same_run_tasks(line));
        search[i] = Some(Target {
            idx: i,
            signature,
            t0_ms,
            t1_ms: reconcile::submit_end(t0_ms, unknown_ms, client.timeout()),
            same_key: Arc::new(same_key.unwrap_or_default()),
            before_ms: Some(now_ms),
        });
    }
    search
}

/// Each shot's first step, and the shots the run acts on (`--only`, `--shard`).
pub(super) fn starts_and_selection(
    plan: &Plan,
    provider: &crate::api::Provider,
    opts: &RunOptions,
    history: &[Option<&History>],
    now: SystemTime,
) -> Result<(Vec<Start>, Selection), ExecError> {
    let mut starts: Vec<Start> = (0..plan.shots.len())
        .map(|i| start_of(plan, provider, opts, history, now, i))
        .collect();
    let selection = selection(plan, opts, |i| starts[i] == Start::Done)?;
    if !opts.siblings.paid.is_empty() {
        for (i, shot) in plan.shots.iter().enumerate() {
            let Some(dir) = opts.siblings.paid.get(&(shot.id.clone(), shot.key.clone())) else {
                continue;
            };
            // A shot this folder has its own history of follows this folder's rules (a merged
            // folder's failed shot is resent with --retry-failed); one it knows nothing of
            // is the sibling's.
            if selection.selected[i] && starts[i] == Start::Submit && history[i].is_none() {
                starts[i] = Start::Hold {
                    status: report::ResultStatus::Skipped,
                    reason: Reason::SentFromSibling { dir: dir.clone() },
                };
            }
        }
    }
    Ok((starts, selection))
}

/// Shot `i`'s first step; deciding it may hash the shot's video.
pub(super) fn start_of(
    plan: &Plan,
    provider: &crate::api::Provider,
    opts: &RunOptions,
    history: &[Option<&History>],
    now: SystemTime,
    i: usize,
) -> Start {
    let videos_dir = plan.out_dir.join("videos");
    let shot = &plan.shots[i];
    let start = decide(history[i], now, provider, opts.flags, |h| {
        super::resume::own_video(shot, h) && video_intact(&videos_dir, h)
    });
    keep_approved(start, opts.approved.get(i) == Some(&true))
}

/// The shots the run acts on (`--only`, `--shard`); `is_done(i)` is asked only of shots a
/// pattern drags along.
pub(super) fn selection(
    plan: &Plan,
    opts: &RunOptions,
    is_done: impl Fn(usize) -> bool,
) -> Result<Selection, ExecError> {
    let mut selection = select(plan, &opts.only, is_done)?;
    if let Some(shard) = opts.shard {
        selection.restrict(
            plan,
            &crate::plan::shard::partition(plan, shard.count).mask(shard.index),
        );
    }
    Ok(selection)
}

/// Resolves once `stop` holds true; never without a receiver or once its sender is gone.
async fn stop_requested(stop: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    if let Some(rx) = stop
        && rx.wait_for(|&v| v).await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Lower-case hex SHA-256 of a file, `None` when it cannot be read.
pub fn sha256_file(path: &std::path::Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}
