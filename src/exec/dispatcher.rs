//! The dispatcher: the one owner of run state. It alone decides what to submit, writes the
//! journal, the progress and the results; jobs only report events to it.
//!
//! Each turn it handles every event that has arrived, writes the journal lines they imply with
//! one fsync, and only then starts the submits it chose, so a `submitting` line is always on
//! disk before its POST leaves, without one disk sync per request.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustc_hash::FxHashMap;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::backoff::Backoff;
use super::budget::QueryBudget;
use super::job::{self, Event, JobContext};
use super::limiter::{Limiter, Refusal};
use super::policy::{self, AfterDownload, AfterSubmit, Upstream};
use super::progress::{self, Counts, Progress};
use super::reason::{Advice, Reason};
use super::reconcile::{self, Signature, Target, Verdict};
use super::resume::{Start, can_feed, decide, histories, keep_approved, video_intact};
use super::select::{Selection, select};
use super::state::{Records, ShotRecord, Status};
use super::{ExecError, Outcome, RunCost, RunOptions, Stop};
use crate::api::{ApiError, Client};
use crate::cost::{Money, PriceBook};
use crate::journal::{Entry, EventKind, History, Journal, Replayed, ShotId};
use crate::plan::{Plan, PlannedShot};
use crate::report;

pub(super) struct Dispatcher<'a> {
    plan: &'a Plan,
    out_dir: PathBuf,
    rec: Records,
    counts: [usize; Status::ALL.len()],
    selected: Vec<bool>,
    total_selected: usize,
    ups: Vec<Vec<usize>>,
    downs: Vec<Vec<usize>>,
    chain: Vec<usize>,
    ready: BinaryHeap<(usize, Reverse<usize>)>,
    delayed: Vec<Delayed>,
    limiter: Limiter,
    backoff: Backoff,
    journal: Journal,
    batch: Vec<Entry>,
    ctx: Arc<JobContext>,
    rx: mpsc::UnboundedReceiver<Event>,
    jobs: JoinSet<()>,
    progress: Progress,
    stop: Option<Stop>,
    /// Started once the run starts; taken by its end (or by a drop on an error).
    results: Option<report::ResultsWriter>,
    /// The effective poll interval last shown with `-v`.
    poll_shown: Duration,
    /// An explicit `--poll` the request budget cannot honour was said.
    poll_warned: bool,
    /// Each shot's estimated bill.
    costs: Vec<Option<Money>>,
    /// What this run's submits are estimated to bill (submits answered without a task are
    /// taken back off); `--max-cost` bounds it.
    spent: Money,
    /// What the folder's ledger says earlier runs spent (every attempt).
    spent_before: Money,
    /// `K/N` of a shard run, written on each `submitting` line.
    shard: Option<String>,
    max_cost: Option<Money>,
    /// Shots not sent because they would pass `--max-cost`, in plan order.
    over_budget: BTreeSet<usize>,
    prices: PriceBook,
    /// Every task id the journal names: never an `unknown` submit's.
    known_tasks: HashSet<String>,
    /// Tasks this run's submits created (with this run's key).
    created_here: HashSet<String>,
    /// By plan index: the journal's `unknown` submits to look for in the task list first.
    first_search: Vec<Option<Target>>,
    /// `unknown` submits of this run, looked for once no submit is left to send.
    search_later: Vec<Target>,
    /// The journal's `unknown` submits of shots out of the selection (`--only`, a shard): not
    /// searched for, but in every search, so that no selected shot takes a task that fits one
    /// of them too.
    rivals: Vec<Target>,
    /// Shots whose search has not reported yet.
    searching: usize,
    /// By plan index: `--resubmit-unknown` and the journal's unknown submit is not found
    /// (for sure) in the task list: it is sent again.
    resend_unfound: Vec<bool>,
    reconcile_wait: Duration,
    /// When this run started (epoch ms, our clock).
    started_ms: u64,
    /// By plan index: sent in this run with no answer naming its task (yet, or ever): its task
    /// may be in the list unnamed.
    open_here: Vec<bool>,
    /// By plan index: searched for as an earlier run's `unknown` submit (not sent since).
    earlier: Vec<bool>,
    /// Tasks re-attached in this run, and to which shot.
    reattached: HashMap<String, usize>,
    /// By plan index: a re-attachment undone; what its poll or download still reports is
    /// dropped.
    detached: Vec<bool>,
    /// `--events`: the stream every journal line and decision is also written to.
    events: Option<super::events::EventWriter>,
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
        let provider = client.provider();
        let history = histories(plan, replayed);
        let (mut starts, selection) = starts_and_selection(plan, provider, opts, &history, now)?;
        let searches = client.native().is_some();
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
            Some(to) => {
                Some(
                    super::events::EventWriter::open(to).map_err(|source| ExecError::Io {
                        context: format!("cannot write the event stream {to:?}"),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let ups: Vec<Vec<usize>> = plan.shots.iter().map(|s| s.depends_on.clone()).collect();
        let downs = plan.dependants();
        let backoff = opts.retry_backoff;
        let (tx, rx) = mpsc::unbounded_channel();
        let ctx = Arc::new(JobContext {
            submits_share_budget: searches,
            client,
            tx,
            poll: opts.poll,
            backoff,
            budget: QueryBudget::new(opts.queries_per_second),
            videos_dir,
            downloads: tokio::sync::Semaphore::new(opts.concurrency.max(4)),
        });
        let mut rec: Vec<ShotRecord> = history
            .iter()
            .map(|h| ShotRecord::from_history(*h))
            .collect();
        for (r, note) in rec.iter_mut().zip(&opts.notes) {
            r.note.clone_from(note);
        }
        let per_shot = opts.prices.per_shot(plan, &replayed.ledger);
        for (r, shot) in rec.iter_mut().zip(&plan.shots) {
            r.spent = per_shot.get(shot.id.as_str()).map_or(Money::ZERO, |p| p.1);
        }
        drop(per_shot);
        let total_selected = selection.selected.iter().filter(|&&s| s).count();
        let mut counts = [0; Status::ALL.len()];
        counts[Status::Pending.index()] = total_selected;
        let d = Dispatcher {
            plan,
            out_dir,
            rec: Records::new(rec),
            counts,
            total_selected,
            selected: selection.selected,
            ups,
            downs,
            chain: plan.chain_lengths(),
            ready: BinaryHeap::new(),
            delayed: Vec::new(),
            limiter: Limiter::new(opts.concurrency, backoff, opts.submits_per_minute),
            backoff,
            journal,
            batch,
            ctx,
            rx,
            jobs: JoinSet::new(),
            progress: Progress::new(opts.progress),
            stop: None,
            results: None,
            poll_shown: Duration::ZERO,
            poll_warned: false,
            costs: plan.shots.iter().map(|s| opts.prices.shot(s)).collect(),
            spent: Money::ZERO,
            spent_before: opts.prices.spent(plan, &replayed.ledger).amount,
            shard: opts.shard.map(|s| s.to_string()),
            max_cost: opts.max_cost,
            over_budget: BTreeSet::new(),
            prices: opts.prices.clone(),
            known_tasks: if searches {
                let mut known = replayed.task_ids.clone();
                known.extend(opts.siblings.tasks.keys().cloned());
                known
            } else {
                HashSet::new()
            },
            created_here: HashSet::new(),
            search_later: Vec::new(),
            rivals: Vec::new(),
            searching: 0,
            resend_unfound: (first_search.iter())
                .map(|t| t.is_some() && opts.flags.resubmit_unknown)
                .collect(),
            reconcile_wait: opts.reconcile_wait,
            started_ms: system_ms(now),
            open_here: vec![false; plan.shots.len()],
            earlier: first_search.iter().map(Option::is_some).collect(),
            reattached: HashMap::new(),
            detached: vec![false; plan.shots.len()],
            events,
            first_search,
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

    /// Changes `i`'s status; only selected shots are counted.
    fn set(&mut self, i: usize, status: Status) {
        if self.selected[i] {
            self.counts[self.rec[i].status.index()] -= 1;
            self.counts[status.index()] += 1;
        }
        self.rec[i].status = status;
    }

    fn count(&self, statuses: &[Status]) -> usize {
        statuses.iter().map(|s| self.counts[s.index()]).sum()
    }

    fn in_flight(&self) -> usize {
        self.count(&[Status::Submitting, Status::InFlight])
    }

    fn progress_counts(&self) -> Counts {
        Counts {
            total: self.total_selected,
            succeeded: self.count(&[Status::Succeeded]),
            in_flight: self.in_flight() + self.count(&[Status::Downloading]),
            pending: self.count(&[
                Status::Pending,
                Status::Waiting,
                Status::Ready,
                Status::Delayed,
            ]),
            failed: self.count(&[Status::Failed]),
            skipped: self.count(&[Status::Skipped]),
            unknown: self.count(&[Status::Unknown, Status::Reconciling]),
            expired: self.count(&[Status::Expired]),
        }
    }

    /// Writes `e` to the event stream, if there is one.
    fn emit(&mut self, e: impl FnOnce() -> super::events::StreamEvent) {
        if let Some(events) = &mut self.events {
            events.emit(&e());
        }
    }

    /// A shot's event for the stream.
    fn shot_event(&self, i: usize, kind: super::events::Kind) -> super::events::StreamEvent {
        let shot = &self.plan.shots[i];
        super::events::StreamEvent::shot(kind, &shot.id, &shot.key)
    }

    fn entry(&self, i: usize, kind: EventKind) -> Entry {
        let shot = &self.plan.shots[i];
        Entry::new(kind, &shot.id, &shot.key)
    }

    /// Applies each shot's first step.
    pub(super) fn start(&mut self, starts: Vec<Start>) {
        let mut search = Vec::new();
        // Taken whole: one slot per shot would otherwise stay allocated for the whole run.
        let first_search = std::mem::take(&mut self.first_search);
        for ((i, start), first) in starts.into_iter().enumerate().zip(first_search) {
            match first {
                Some(target) if !self.selected[i] => self.rivals.push(target),
                Some(target) => {
                    if self.rec[i].submit_open {
                        let e = self.entry(i, EventKind::Unknown).error(
                            "the run stopped while this submit was on the wire; its outcome \
                             is unknown",
                        );
                        self.batch.push(e);
                    }
                    self.rec[i].error = Some(Reason::Searching);
                    self.set(i, Status::Reconciling);
                    search.push(target);
                    continue;
                }
                None => {}
            }
            if !self.selected[i] {
                let status = match start {
                    Start::Done => Status::Succeeded,
                    Start::Hold { status, .. } => hold_status(status),
                    _ => Status::Pending,
                };
                self.set(i, status);
                continue;
            }
            match start {
                Start::Done => self.set(i, Status::Succeeded),
                Start::Download { url } => {
                    self.set(i, Status::Downloading);
                    let file = self.plan.shots[i].file.clone();
                    self.jobs
                        .spawn(job::download(self.ctx.clone(), i, url, file));
                }
                Start::Poll { task_id } => {
                    self.set(i, Status::InFlight);
                    let file = self.plan.shots[i].file.clone();
                    let submitted = self.rec[i]
                        .submitted_at
                        .as_deref()
                        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                        .unwrap_or_else(SystemTime::now);
                    self.jobs
                        .spawn(job::poll(self.ctx.clone(), i, task_id, submitted, file));
                }
                Start::Submit => self.set(i, Status::Waiting),
                Start::Hold { status, reason } => {
                    if status == report::ResultStatus::Unknown && self.rec[i].submit_open {
                        let e = self.entry(i, EventKind::Unknown).error(reason.to_string());
                        self.batch.push(e);
                    }
                    self.rec[i].error = Some(reason);
                    self.set(i, hold_status(status));
                }
            }
        }
        for i in self.plan.topological_order() {
            if self.rec[i].status == Status::Waiting {
                self.check_ready(i);
            }
        }
        if self.events.is_some() {
            for i in 0..self.rec.len() {
                if !self.selected[i] {
                    continue;
                }
                let mut e = self.shot_event(i, super::events::Kind::Planned);
                e.status = Some(super::events::status_name(self.rec[i].status).to_owned());
                e.task_id.clone_from(&self.rec[i].task_id);
                e.cost = self.costs[i];
                e.reason = self.rec[i].error.as_ref().map(Reason::to_string);
                self.emit(|| e);
            }
        }
        if let Some(line) = progress::resume_line(&self.progress_counts()) {
            self.progress.log(&line);
        }
        if !search.is_empty() {
            self.progress.log(&format!(
                "looking for {} unknown submit(s) in DashScope's task list",
                search.len()
            ));
            self.spawn_search(search);
        }
        let sending: Vec<usize> = (0..self.rec.len())
            .filter(|&i| matches!(self.rec[i].status, Status::Waiting | Status::Ready))
            .collect();
        if !sending.is_empty() {
            let seconds: u64 = (sending.iter())
                .map(|&i| u64::from(self.plan.shots[i].output_seconds()))
                .sum();
            let cost: Money = sending.iter().filter_map(|&i| self.costs[i]).sum();
            let cap = self
                .max_cost
                .map(|m| format!(" (--max-cost {})", self.prices.show(m)))
                .unwrap_or_default();
            // An edit of a URL: its input (and a kept length) counts as the longest taken.
            let at_most = |bound: fn(&PlannedShot) -> bool| {
                if sending.iter().any(|&i| bound(&self.plan.shots[i])) {
                    "at most "
                } else {
                    ""
                }
            };
            let (long, dear) = (
                at_most(PlannedShot::output_upper_bound),
                at_most(PlannedShot::upper_bound),
            );
            self.progress.log(&format!(
                "sending {} shot(s), {long}{seconds} s of video, est. {dear}{}{cap}",
                sending.len(),
                self.prices.show(cost)
            ));
        }
    }

    /// Leaves `i` unsent (and what waits for it): its submit would take this run past
    /// `--max-cost`.
    fn hold_for_budget(&mut self, i: usize, cap: Money) {
        let reason = Reason::OverBudget {
            estimate: self.prices.show(self.costs[i].unwrap_or_default()),
            spent: self.prices.show(self.spent),
            cap: self.prices.show(cap),
        };
        self.emit_held(i, &reason);
        self.rec[i].error = Some(reason);
        self.set(i, Status::Pending);
        self.over_budget.insert(i);
        self.hold_below(self.downs[i].clone(), i);
    }

    fn emit_held(&mut self, i: usize, reason: &Reason) {
        if self.events.is_some() {
            let mut e = self.shot_event(i, super::events::Kind::Held);
            e.reason = Some(reason.to_string());
            e.cost = self.costs[i];
            self.emit(|| e);
        }
    }

    /// Holds the shots of `stack` still waiting, and what waits below them, for `held`, which
    /// `--max-cost` left unsent.
    fn hold_below(&mut self, mut stack: Vec<usize>, held: usize) {
        let below = Reason::BudgetUpstream {
            upstream: self.plan.shots[held].id.clone(),
        };
        while let Some(d) = stack.pop() {
            if self.selected[d] && self.rec[d].status == Status::Waiting {
                self.emit_held(d, &below);
                self.rec[d].error = Some(below.clone());
                self.set(d, Status::Pending);
                self.over_budget.insert(d);
                stack.extend_from_slice(&self.downs[d]);
            }
        }
    }

    /// Decides again on the shots `--max-cost` held, after a submit that created nothing gave
    /// its estimate back: the cap counts what this run sends, so a refused shot's share goes to
    /// the next shot that fits, in plan order, as if the refused one had never been picked.
    /// A stopped run sends nothing more: they stay held, and counted as unsent.
    fn unhold_budget(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let held = std::mem::take(&mut self.over_budget);
        for &i in &held {
            if self.rec[i].status == Status::Pending {
                self.rec[i].error = None;
                self.set(i, Status::Waiting);
            }
        }
        for i in held {
            if self.rec[i].status == Status::Waiting {
                self.check_ready(i);
            }
        }
    }

    fn held_by_budget(&self, i: usize) -> bool {
        self.rec[i].status == Status::Pending && self.over_budget.contains(&i)
    }

    /// Queues `i` when every upstream has a URL; skips it when one never will; holds it when
    /// one is held by `--max-cost` (a shot that waited elsewhere, as for a search, when its
    /// upstream was held).
    fn check_ready(&mut self, i: usize) {
        let mut all = true;
        let mut held = None;
        for k in 0..self.ups[i].len() {
            let u = self.ups[i][k];
            let up = &self.rec[u];
            match policy::upstream(up.status, up.url.is_some()) {
                Upstream::Feeds => {}
                Upstream::Blocks => {
                    let reason = Reason::Upstream {
                        upstream: self.plan.shots[u].id.clone(),
                        status: up.status.result(),
                    };
                    self.skip(i, reason);
                    return;
                }
                Upstream::Wait if self.held_by_budget(u) => held = Some(u),
                Upstream::Wait => all = false,
            }
        }
        if let Some(u) = held {
            self.hold_below(vec![i], u);
        } else if all {
            self.set(i, Status::Ready);
            self.ready.push((self.chain[i], Reverse(i)));
        }
    }

    /// Marks `i` skipped (journalled) and everything waiting below it. A shot `--max-cost`
    /// held is skipped too, and no longer counted unsent: no cap would send it.
    fn skip(&mut self, i: usize, reason: Reason) {
        let mut stack = vec![(i, reason)];
        while let Some((i, reason)) = stack.pop() {
            if self.held_by_budget(i) {
                self.over_budget.remove(&i);
            } else if !matches!(
                self.rec[i].status,
                Status::Waiting | Status::Ready | Status::Delayed
            ) {
                continue;
            }
            let e = self.entry(i, EventKind::Skipped).error(reason.to_string());
            self.batch.push(e);
            self.progress
                .log(&format!("skipped {}: {reason}", self.plan.shots[i].id));
            self.rec[i].error = Some(reason);
            self.set(i, Status::Skipped);
            for &d in &self.downs[i] {
                if self.selected[d] {
                    let upstream = self.plan.shots[i].id.clone();
                    let status = report::ResultStatus::Skipped;
                    stack.push((d, Reason::Upstream { upstream, status }));
                }
            }
        }
    }

    fn skip_below(&mut self, i: usize) {
        let status = self.rec[i].status.result();
        for k in 0..self.downs[i].len() {
            let d = self.downs[i][k];
            if self.selected[d] {
                let upstream = self.plan.shots[i].id.clone();
                self.skip(d, Reason::Upstream { upstream, status });
            }
        }
    }

    /// Chooses the submits that may leave now; journals `submitting` for each.
    fn choose(&mut self, now: Instant) -> Vec<(usize, serde_json::Value)> {
        let mut k = 0;
        while k < self.delayed.len() {
            if self.delayed[k].at <= now {
                let i = self.delayed.swap_remove(k).idx;
                self.set(i, Status::Ready);
                self.ready.push((self.chain[i], Reverse(i)));
            } else {
                k += 1;
            }
        }
        let mut chosen = Vec::new();
        let wall = SystemTime::now();
        while self.stop.is_none()
            && self.in_flight() < self.limiter.limit()
            && self.limiter.may_submit(now)
        {
            let Some((_, Reverse(i))) = self.ready.pop() else {
                break;
            };
            if self.rec[i].status != Status::Ready {
                continue;
            }
            let timing = self.ctx.client.provider().timing;
            if let Some(&u) = (self.ups[i].iter())
                .find(|&&u| !can_feed(self.rec[u].finished_at.as_deref(), wall, &timing))
            {
                let reason = Reason::UpstreamStale {
                    upstream: self.plan.shots[u].id.clone(),
                    feed_ttl: timing.feed_ttl,
                };
                self.skip(i, reason);
                continue;
            }
            let body = self.plan.shots[i].resolved_body(|id| {
                let u = self.ups[i].iter().find(|&&u| self.plan.shots[u].id == id)?;
                self.rec[*u].url.clone()
            });
            let Some(body) = body else {
                self.skip(i, Reason::NoUpstreamUrl);
                continue;
            };
            let cost = self.costs[i].unwrap_or_default();
            if let Some(cap) = self.max_cost
                && self.spent + cost > cap
            {
                self.hold_for_budget(i, cap);
                continue;
            }
            self.spent += cost;
            self.rec[i].spent += cost;
            self.rec[i].attempts += 1;
            self.rec[i].error = None;
            let mut e = self
                .entry(i, EventKind::Submitting)
                .attempt(self.rec[i].attempts);
            e.cost = self.costs[i];
            e.currency = e.cost.map(|_| self.prices.currency.clone());
            e.model = Some(self.model_sent(i).to_owned());
            e.seed = self.plan.shots[i].seed;
            e.shard.clone_from(&self.shard);
            self.rec[i].submitting_at = Some(e.ts.clone());
            self.batch.push(e);
            self.set(i, Status::Submitting);
            self.open_here[i] = true;
            self.earlier[i] = false;
            self.limiter.on_submit(now);
            chosen.push((i, body));
        }
        chosen
    }

    fn handle(&mut self, event: Event) {
        let now = Instant::now();
        if self.detached[event.idx()] {
            return;
        }
        self.progress
            .on_event(&self.plan.shots[event.idx()].id, &event);
        match event {
            Event::Submitted { idx, task_id } => {
                self.open_here[idx] = false;
                if let Some(&s) = self.reattached.get(&task_id) {
                    let by = format!("the submit of `{}` in this run", self.plan.shots[idx].id);
                    self.detach(s, &task_id, &by);
                }
                // Only a search reads them; a gateway run keeps no set of every task id.
                if self.ctx.client.native().is_some() {
                    self.known_tasks.insert(task_id.clone());
                    self.created_here.insert(task_id.clone());
                }
                let e = self.entry(idx, EventKind::Submitted).task_id(&task_id);
                self.rec[idx].submitted_at = Some(e.ts.clone());
                self.rec[idx].task_id = Some(task_id);
                self.batch.push(e);
                let held = self.count(&[Status::InFlight]);
                self.set(idx, Status::InFlight);
                self.limiter.on_accepted(held, self.in_flight());
                self.release_one(now);
            }
            Event::SubmitError { idx, error } => self.submit_error(idx, error, now),
            Event::Succeeded { idx, url, extras } => {
                let mut e = self
                    .entry(idx, EventKind::Succeeded)
                    .url(&url)
                    .extras(&extras);
                e.task_id.clone_from(&self.rec[idx].task_id);
                self.rec[idx].finished_at = Some(e.ts.clone());
                self.rec[idx].url = Some(url);
                self.rec[idx].extras = e.extras.clone();
                self.batch.push(e);
                self.set(idx, Status::Downloading);
                for k in 0..self.downs[idx].len() {
                    let d = self.downs[idx][k];
                    if self.selected[d] && self.rec[d].status == Status::Waiting {
                        self.check_ready(d);
                    }
                }
            }
            Event::Failed { idx, error } => {
                let e = self.entry(idx, EventKind::Failed).error(&error);
                self.rec[idx].finished_at = Some(e.ts.clone());
                self.batch.push(e);
                self.fail(idx, Status::Failed, error, Some(Advice::RetryFailed));
            }
            Event::GaveUp { idx, error } => {
                let error = Reason::PollGaveUp { error }.to_string();
                self.fail(idx, Status::Unknown, error, None);
            }
            Event::AuthLost { idx, error } => {
                self.progress
                    .error(&format!("error: {}: {error}", self.plan.shots[idx].id));
                self.rec[idx].error = Some(Reason::Said(error.clone()));
                self.set(idx, Status::Pending);
                self.stop_fatal(format!("the provider refused the API key: {error}"));
            }
            Event::Downloaded { idx, done } => {
                let file = self.plan.shots[idx].file.clone();
                let e =
                    self.entry(idx, EventKind::Downloaded)
                        .file(&file, &done.sha256, done.bytes);
                self.batch.push(e);
                let r = &mut self.rec[idx];
                r.file = Some(file);
                r.sha256 = Some(done.sha256);
                r.bytes = Some(done.bytes);
                r.error = None;
                self.set(idx, Status::Succeeded);
                self.progress
                    .log(&format!("done {}", self.plan.shots[idx].id));
            }
            Event::Reconciled { idx, verdict } => self.reconciled(idx, verdict),
            Event::DownloadError { idx, error } => match policy::after_download(&error) {
                AfterDownload::Expired { error } => {
                    let e = self.entry(idx, EventKind::Expired).error(&error);
                    self.batch.push(e);
                    self.fail(idx, Status::Expired, error, Some(Advice::RetryFailed));
                }
                AfterDownload::FailAndStop { error, stop } => {
                    self.fail(idx, Status::Failed, error, None);
                    self.stop_fatal(stop);
                }
                AfterDownload::Fail { error } => self.fail(idx, Status::Failed, error, None),
            },
        }
    }

    fn submit_error(&mut self, i: usize, error: ApiError, now: Instant) {
        let msg = error.to_string();
        let next = policy::after_submit(&error, self.rec[i].server_errors);
        if next.created_nothing() {
            let cost = self.costs[i].unwrap_or_default();
            self.spent -= cost;
            self.rec[i].spent = self.rec[i].spent.saturating_sub(cost);
            self.open_here[i] = false;
            if matches!(next, AfterSubmit::GiveUp { .. } | AfterSubmit::Refused) {
                self.unhold_budget();
            }
        }
        match next {
            AfterSubmit::Requeue => {
                let e = self.entry(i, EventKind::Refused).error(&msg);
                self.batch.push(e);
                let retry_after = match &error {
                    ApiError::RateLimited { retry_after } => *retry_after,
                    _ => None,
                };
                let held = self.count(&[Status::InFlight]);
                let kind = self.limiter.on_rate_limited(held, retry_after, now);
                self.rec[i].rate_limited += 1;
                let wait = self
                    .limiter
                    .shot_wait(kind, self.rec[i].rate_limited, retry_after);
                tracing::debug!(
                    "429 ({kind:?}) for {}: retry within {:?}, in flight at most {}",
                    self.plan.shots[i].id,
                    wait.latest,
                    self.limiter.limit()
                );
                if wait.latest.is_zero() {
                    self.set(i, Status::Ready);
                    self.ready.push((self.chain[i], Reverse(i)));
                } else {
                    self.delayed.push(Delayed {
                        at: now + wait.latest,
                        earliest: (kind == Refusal::Rate).then_some(now + wait.earliest),
                        idx: i,
                    });
                    self.set(i, Status::Delayed);
                }
            }
            AfterSubmit::Retry { server_errors } => {
                let e = self.entry(i, EventKind::Refused).error(&msg);
                self.batch.push(e);
                self.rec[i].server_errors = server_errors;
                let wait = self.backoff.wait(server_errors - 1);
                self.delayed.push(Delayed {
                    at: now + wait,
                    earliest: Some(now),
                    idx: i,
                });
                self.set(i, Status::Delayed);
            }
            AfterSubmit::GiveUp {
                server_errors,
                error,
            } => {
                let e = self.entry(i, EventKind::Refused).error(&msg);
                self.batch.push(e);
                self.rec[i].server_errors = server_errors;
                let e = self.entry(i, EventKind::Failed).error(&error);
                self.batch.push(e);
                self.fail(i, Status::Failed, error, Some(Advice::RetryFailed));
            }
            AfterSubmit::Refused => {
                let e = self.entry(i, EventKind::Failed).error(&msg);
                self.rec[i].finished_at = Some(e.ts.clone());
                self.batch.push(e);
                self.fail(i, Status::Failed, msg, Some(Advice::RetryFailed));
            }
            AfterSubmit::StopRun { message } => {
                let e = self.entry(i, EventKind::Refused).error(&msg);
                self.batch.push(e);
                self.set(i, Status::Pending);
                self.stop_fatal(message);
            }
            AfterSubmit::Unknown { error } => {
                let e = self.entry(i, EventKind::Unknown).error(&error);
                let t1 = epoch_ms(&e.ts);
                self.batch.push(e);
                let t0 = self.rec[i].submitting_at.as_deref().and_then(epoch_ms);
                let signature = Signature::of(&self.plan.shots[i]);
                match (self.ctx.client.native(), signature, t0, t1) {
                    (Some(_), Some(signature), Some(t0_ms), Some(t1_ms)) => {
                        self.progress.log(&format!(
                            "unknown {}: {error}; its task is looked for in DashScope's task \
                             list once nothing is left to send",
                            self.plan.shots[i].id
                        ));
                        self.rec[i].error = Some(Reason::explained(error));
                        self.set(i, Status::Reconciling);
                        self.search_later.push(Target {
                            idx: i,
                            signature,
                            t0_ms,
                            t1_ms,
                            same_key: Arc::default(),
                            before_ms: None,
                        });
                    }
                    _ => self.fail(i, Status::Unknown, error, None),
                }
            }
        }
    }

    /// A submit was accepted: the provider takes work again, so the shot refused by rate or by
    /// a 5xx (a refused submit created no task, and its retries stay counted) that is due first
    /// goes now instead of sleeping out its backoff.
    fn release_one(&mut self, now: Instant) {
        let due = self
            .delayed
            .iter_mut()
            .filter(|d| d.earliest.is_some_and(|e| e <= now))
            .min_by_key(|d| d.at);
        if let Some(d) = due {
            d.at = now;
        }
    }

    /// Searches for `targets`, the rivals along (whose verdicts are ignored: they are not
    /// `Reconciling`).
    fn spawn_search(&mut self, mut targets: Vec<Target>) {
        targets.extend(self.rivals.iter().cloned());
        self.searching += targets.len();
        let known = self.known_tasks.clone();
        self.jobs.spawn(reconcile::run(
            self.ctx.clone(),
            targets,
            known,
            self.reconcile_wait,
        ));
    }

    /// Searches for this run's `unknown` submits once nothing is left to send (a search from
    /// the journal may still be going): their tasks are created by then, and a re-attached one
    /// is polled and downloaded in this run.
    fn search_when_idle(&mut self) {
        let idle = self.stop.is_none()
            && self.searching == 0
            && self.ready.is_empty()
            && self.delayed.is_empty()
            && self.count(&[Status::Submitting]) == 0;
        if idle && !self.search_later.is_empty() {
            let same_key = Arc::new(self.created_here.clone());
            let mut targets = std::mem::take(&mut self.search_later);
            for t in &mut targets {
                t.same_key = Arc::clone(&same_key);
            }
            self.spawn_search(targets);
        }
    }

    /// What the task list said about `i`'s unknown submit: one sure task is journalled as
    /// `reattached` and polled; otherwise the shot stays `unknown` saying why, or with
    /// `--resubmit-unknown` (for the journal's unknowns) is sent again.
    fn reconciled(&mut self, i: usize, verdict: Verdict) {
        self.searching = self.searching.saturating_sub(1);
        if self.rec[i].status != Status::Reconciling {
            return;
        }
        let shot = self.plan.shots[i].id.clone();
        let verdict = match verdict {
            Verdict::Matched { task_id, .. } if self.known_tasks.contains(&task_id) => {
                if let Some(&s) = self.reattached.get(&task_id) {
                    self.detach(s, &task_id, &format!("the search for `{shot}`"));
                }
                Verdict::Ambiguous {
                    candidates: vec![task_id],
                }
            }
            Verdict::Matched {
                task_id,
                created_ms,
            } if self.earlier[i]
                && reconcile::maybe_since(created_ms, self.started_ms)
                && self.same_prompt_open(i) =>
            {
                Verdict::MaybeOurs { task_id }
            }
            Verdict::Matched {
                task_id,
                created_ms,
            } => {
                self.known_tasks.insert(task_id.clone());
                self.reattached.insert(task_id.clone(), i);
                let e = self.entry(i, EventKind::Reattached).task_id(&task_id);
                self.batch.push(e);
                let r = &mut self.rec[i];
                r.submitted_at = r.submitting_at.clone();
                r.task_id = Some(task_id.clone());
                r.submit_open = false;
                r.error = None;
                self.set(i, Status::InFlight);
                self.progress.log(&format!(
                    "found {shot}'s task {task_id} in DashScope's task list: re-attached, not resent"
                ));
                let created = std::time::UNIX_EPOCH + Duration::from_millis(created_ms);
                let file = self.plan.shots[i].file.clone();
                self.jobs
                    .spawn(job::poll(self.ctx.clone(), i, task_id, created, file));
                return;
            }
            other => other,
        };
        let reason = verdict.explain(&shot);
        if self.resend_unfound[i] && verdict.allows_resend() {
            self.progress
                .log(&format!("{shot}: {reason}; sending it again as asked"));
            self.rec[i].error = None;
            self.set(i, Status::Waiting);
            self.check_ready(i);
        } else {
            self.fail(i, Status::Unknown, reason, None);
        }
    }

    /// Whether a submit of this run with `i`'s model and prompt has no answer naming its task:
    /// a task created near this run's start that fits `i` may be that one.
    fn same_prompt_open(&self, i: usize) -> bool {
        let Some(sig) = Signature::of(&self.plan.shots[i]) else {
            return true;
        };
        (0..self.plan.shots.len()).any(|j| {
            j != i
                && self.open_here[j]
                && Signature::of(&self.plan.shots[j])
                    .is_some_and(|o| o.model == sig.model && o.prompt == sig.prompt)
        })
    }

    /// Undoes `i`'s re-attachment to `task_id`, which `by` names as well: one task is one
    /// submit's, and a submit answer or a second sure match says the search was wrong. `i` goes
    /// back to `unknown`, journalled naming the task (a rerun replays it unknown, and never
    /// takes that task for it again); a video it downloaded from the task is moved aside.
    fn detach(&mut self, i: usize, task_id: &str, by: &str) {
        self.reattached.remove(task_id);
        self.detached[i] = true;
        let reason = Reason::Detached {
            task_id: task_id.to_owned(),
            by: by.to_owned(),
        }
        .to_string();
        let e = self
            .entry(i, EventKind::Unknown)
            .task_id(task_id)
            .error(&reason);
        self.batch.push(e);
        let r = &mut self.rec[i];
        r.task_id = None;
        r.submitted_at = None;
        r.url = None;
        r.finished_at = None;
        r.extras = Default::default();
        let (sha256, bytes) = (r.sha256.take(), r.bytes.take());
        // A download still under way lands unrecorded: the next run moves it aside.
        if let Some(file) = r.file.take() {
            match super::outdir::supersede(&self.ctx.videos_dir, &file, task_id) {
                Ok(moved) => {
                    let mut e = self.entry(i, EventKind::Superseded);
                    e.file = Some(moved);
                    (e.sha256, e.bytes) = (sha256, bytes);
                    self.batch.push(e);
                }
                Err(e) => self.progress.error(&format!("error: {e}")),
            }
        }
        self.fail(i, Status::Unknown, reason, Some(Advice::ResubmitUnknown));
    }

    /// Ends `i` as `status` (and skips what waits below it); `advice` is what sends it again
    /// when `error` does not say so itself. The progress line leaves the advice out.
    fn fail(&mut self, i: usize, status: Status, error: String, advice: Option<Advice>) {
        self.progress.log(&format!(
            "{} {}: {error}",
            status.result().as_str(),
            self.plan.shots[i].id
        ));
        self.rec[i].error = Some(Reason::Failed { error, advice });
        self.set(i, status);
        self.skip_below(i);
    }

    fn stop_fatal(&mut self, message: String) {
        if !matches!(self.stop, Some(Stop::Fatal(_))) {
            self.stop = Some(Stop::Fatal(message));
        }
    }

    fn flush(&mut self) -> Result<(), ExecError> {
        self.journal.append_all(&self.batch)?;
        if let Some(events) = &mut self.events {
            for e in &self.batch {
                events.emit(&super::events::StreamEvent::of_entry(e));
            }
        }
        self.batch.clear();
        Ok(())
    }

    fn row(&self, i: usize) -> report::ResultRow {
        let mut row = self.rec[i].row(&self.plan.shots[i], self.costs[i]);
        row.model = self.model_sent(i).to_owned();
        row
    }

    /// The model id this run's provider is sent for shot `i` (DashScope's native id there).
    fn model_sent(&self, i: usize) -> &str {
        let model = self.plan.shots[i].model.as_str();
        match self.ctx.client.native() {
            Some(_) => crate::api::dashscope::native_model(model).unwrap_or(model),
            None => model,
        }
    }

    /// Writes the results table whole, before anything is sent, and starts their writer.
    fn start_results(&mut self) -> Result<(), ExecError> {
        self.rec.take_changed();
        let rows = (0..self.rec.len()).map(|i| self.row(i));
        let keys = report::matrix_keys(&self.plan.shots);
        self.results = Some(report::ResultsWriter::start(
            self.out_dir.clone(),
            keys,
            rows,
        )?);
        Ok(())
    }

    /// Hands the rows changed since the last turn to the results writer; a rewrite that failed
    /// stops the run.
    fn send_results(&mut self) -> Result<(), ExecError> {
        let changed = self.rec.take_changed();
        let Some(results) = &self.results else {
            return Ok(());
        };
        if results.wants_all() {
            results.send((0..self.rec.len()).map(|i| (i, self.row(i))));
        } else {
            results.send(changed.into_iter().map(|i| (i, self.row(i))));
        }
        results.error().map_or(Ok(()), |e| Err(e.into()))
    }

    /// Hands over the last changes and waits for the files to hold every row as it stands.
    fn finish_results(&mut self) -> Result<(), ExecError> {
        self.send_results()?;
        if let Some(results) = self.results.take() {
            results.finish([])?;
        }
        Ok(())
    }

    /// Runs until every selected shot is settled, `stop` turns true (a signal, in the CLI) or a
    /// fatal error stops it.
    pub(super) async fn run(
        mut self,
        mut stop: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<Outcome, ExecError> {
        self.flush()?;
        self.start_results()?;
        let mut interrupted = false;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Checked before choosing, so a stop asked for at any moment sends nothing more.
            if !interrupted && stop.as_ref().is_some_and(|rx| *rx.borrow()) {
                interrupted = true;
                self.interrupt();
            }
            let now = Instant::now();
            let chosen = self.choose(now);
            self.flush()?;
            for (i, body) in chosen {
                let file = self.plan.shots[i].file.clone();
                self.jobs
                    .spawn(job::submit(self.ctx.clone(), i, body, file));
            }
            // Finished jobs keep their task's memory (a few KB each) until joined, and the
            // biased select below rarely reaches `join_next` while events keep coming.
            while let Some(joined) = self.jobs.try_join_next() {
                self.joined(joined);
            }
            self.search_when_idle();
            self.send_results()?;
            self.progress
                .update(self.progress_counts(), self.limiter.limit(), false);
            self.show_poll_interval();

            // Once stopped, submits already on the wire are waited for, so they are journalled
            // with their answer instead of becoming `unknown`.
            match &self.stop {
                Some(_) if self.count(&[Status::Submitting]) == 0 => break,
                Some(_) => {}
                None => {
                    if self.jobs.is_empty() && self.ready.is_empty() && self.delayed.is_empty() {
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

            let wake = self.next_wake();
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
        self.flush()?;
        self.jobs.abort_all();
        self.finish_results()?;
        self.progress
            .update(self.progress_counts(), self.limiter.limit(), true);
        self.progress.finish();
        let stop = self.stop.take().unwrap_or(Stop::Finished);
        let mut counts = std::collections::BTreeMap::new();
        for r in &self.rec {
            *counts.entry(r.status.result()).or_insert(0) += 1;
        }
        let all_succeeded = self
            .selected
            .iter()
            .zip(&self.rec)
            .all(|(&s, r)| !s || r.status == Status::Succeeded);
        let cost = RunCost {
            currency: self.prices.currency.clone(),
            spent: self.spent,
            billed: self.spent_before + self.spent,
            unsent: self.over_budget.len(),
            unsent_cost: self.over_budget.iter().filter_map(|&i| self.costs[i]).sum(),
        };
        if self.events.is_some() {
            use super::events::{Kind, StreamEvent};
            let currency = cost.currency.clone();
            self.emit(|| StreamEvent {
                spent: Some(cost.spent),
                batch_spent: Some(cost.billed),
                currency: Some(currency),
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
                .map(|(s, n): (&report::ResultStatus, &usize)| (s.as_str().to_owned(), *n))
                .collect();
            self.emit(|| StreamEvent {
                status: Some(status.to_owned()),
                reason,
                counts: Some(counts),
                ..StreamEvent::new(Kind::RunEnd)
            });
        }
        Ok(Outcome {
            counts,
            tally: self.progress_counts(),
            stop,
            all_succeeded,
            came_along: Vec::new(),
            cost,
            queries: super::QueryCounts {
                refused: self.ctx.budget.refused(),
                failed: self.ctx.budget.failed(),
                skipped: self.ctx.budget.skipped(),
                rate: self.ctx.budget.rate(),
                ceiling: self.ctx.budget.qps(),
            },
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
        let tasks = self.count(&[Status::InFlight]);
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

    fn interrupt(&mut self) {
        if self.stop.is_none() {
            self.stop = Some(Stop::Interrupted);
        }
        self.progress.error(
            "interrupted: no new submits; waiting for submits already sent to answer \
             (interrupt again to quit at once)",
        );
    }

    fn next_wake(&self) -> Option<Instant> {
        let delayed = self.delayed.iter().map(|d| d.at).min();
        let submit = if !self.ready.is_empty() && self.in_flight() < self.limiter.limit() {
            self.limiter.next_submit_at()
        } else {
            None
        };
        match (delayed, submit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A run ended by an error still leaves the results as the run left its shots.
impl Drop for Dispatcher<'_> {
    fn drop(&mut self) {
        let _ = self.finish_results();
    }
}

/// A shot waiting to be sent again.
struct Delayed {
    at: Instant,
    /// Refused by rate or a 5xx: may go early once this has passed and another submit is
    /// accepted.
    earliest: Option<Instant>,
    idx: usize,
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
                    reason: Reason::UnknownTooOld { task_ttl: ttl },
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

fn system_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An RFC 3339 journal time in epoch milliseconds.
fn epoch_ms(ts: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(ts).ok().map(system_ms)
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

/// The run state a results status stands for.
pub(crate) fn hold_status(status: report::ResultStatus) -> Status {
    match status {
        report::ResultStatus::Succeeded => Status::Succeeded,
        report::ResultStatus::Failed => Status::Failed,
        report::ResultStatus::Skipped => Status::Skipped,
        report::ResultStatus::Unknown => Status::Unknown,
        report::ResultStatus::Expired => Status::Expired,
        report::ResultStatus::Pending => Status::Pending,
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
