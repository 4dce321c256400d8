//! The run core: every decision of a run, synchronous, with no I/O and no clock of its own.
//!
//! It owns the run state (records, counts, the ready queue, budget holds, re-attachments) and
//! changes it only through its inputs: [`Core::start`] with each shot's first step,
//! [`Core::handle`] with a job's report, [`Core::choose`] each turn, [`Core::interrupt`] on a
//! signal; each carries the time it happens at. What follows from them is pushed as
//! [`Effect`]s for the shell ([`super::dispatcher`]) to apply: journal lines, jobs to spawn,
//! files to move, notes for the progress and the event stream. Keeping I/O out makes every
//! decision a plain function of events that a `#[test]` can feed (as nextest's dispatcher is
//! tested), and keeps "journal before spawn" the shell's one rule instead of every decision's.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use self::queue::{Delays, ReadyQueue};
use super::backoff::Backoff;
use super::job::Event;
use super::limiter::{Limiter, Refusal};
use super::policy::{self, AfterDownload, AfterSubmit, Upstream};
use super::progress::{self, Counts};
use super::reason::{Advice, Reason};
use super::reconcile::{self, Signature, Target, Verdict};
use super::resume::{Start, can_feed};
use super::state::{Digest, Records, ShotRecord, Stamp, Status};
use super::{RunCost, Stop};
use crate::api::{ApiError, Provider};
use crate::cost::{Money, PriceBook};
use crate::journal::{Entry, EventKind};
use crate::plan::{Plan, PlannedShot};
use crate::report;

/// What the core asks the shell to do, in the order it must happen.
#[derive(Debug)]
pub(crate) enum Effect {
    /// A journal line; the shell writes every line of a turn (one fsync) before any spawn.
    /// Boxed: an entry is ten times any other effect.
    Journal(Box<Entry>),
    Spawn(Job),
    /// `--max-cost` left shot `idx` unsent (said on the event stream).
    Held {
        idx: usize,
        reason: Reason,
    },
    /// `idx`'s video `file` is moved aside, tagged `task_id`; the shell journals a
    /// `superseded` line with `sha256` and `bytes` where it went.
    Supersede {
        idx: usize,
        file: String,
        task_id: String,
        sha256: Option<String>,
        bytes: Option<u64>,
    },
    /// An informational progress line (hidden with `-q`).
    Note(String),
    /// A progress line shown even with `-q`.
    Error(String),
}

/// A job the shell spawns.
#[derive(Debug, PartialEq)]
pub(crate) enum Job {
    /// POST `body` for shot `idx` (its `submitting` line is in the same turn's journal).
    Submit {
        idx: usize,
        body: serde_json::Value,
    },
    /// Poll `task_id`, submitted at `since`.
    Poll {
        idx: usize,
        task_id: String,
        since: SystemTime,
    },
    Download {
        idx: usize,
        url: String,
    },
    /// Look for `targets` in the task list; `known` tasks are never theirs.
    Search {
        targets: Vec<Target>,
        known: HashSet<String>,
    },
}

/// What the core is built from, besides the plan.
pub(crate) struct Setup {
    /// Each shot's record from the journal.
    pub records: Vec<ShotRecord>,
    /// The shots this run acts on.
    pub selected: Vec<bool>,
    /// By plan index: an earlier run's `unknown` submit to look for in the task list first.
    pub first_search: Vec<Option<Target>>,
    pub limiter: Limiter,
    pub backoff: Backoff,
    /// The provider's row: its timing and the model ids it is sent.
    pub provider: Provider,
    /// `--resubmit-unknown`.
    pub resubmit_unknown: bool,
    pub prices: PriceBook,
    pub max_cost: Option<Money>,
    /// What the folder's ledger says earlier runs spent.
    pub spent_before: Money,
    /// `K/N` of a shard run, written on each `submitting` line.
    pub shard: Option<String>,
    /// Every task id the journal (and sibling shards) name; read only when the provider has a
    /// task list.
    pub known_tasks: HashSet<String>,
    /// When the run started.
    pub started: SystemTime,
}

pub(crate) struct Core<'a> {
    plan: &'a Plan,
    rec: Records,
    counts: [usize; Status::ALL.len()],
    selected: Vec<bool>,
    total_selected: usize,
    downs: Vec<Vec<usize>>,
    chain: Vec<usize>,
    ready: ReadyQueue,
    delayed: Delays,
    limiter: Limiter,
    backoff: Backoff,
    provider: Provider,
    stop: Option<Stop>,
    effects: Vec<Effect>,
    /// The wall-clock time of the input being handled (stamps journal lines).
    wall: SystemTime,
    /// Each shot's estimated bill.
    costs: Vec<Option<Money>>,
    /// What this run's submits are estimated to bill (submits answered without a task are
    /// taken back off); `--max-cost` bounds it.
    spent: Money,
    spent_before: Money,
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
}

impl<'a> Core<'a> {
    pub(crate) fn new(plan: &'a Plan, setup: Setup) -> Core<'a> {
        let n = plan.shots.len();
        let total_selected = setup.selected.iter().filter(|&&s| s).count();
        let mut counts = [0; Status::ALL.len()];
        counts[Status::Pending.index()] = total_selected;
        let resend_unfound = (setup.first_search.iter())
            .map(|t| t.is_some() && setup.resubmit_unknown)
            .collect();
        let earlier = setup.first_search.iter().map(Option::is_some).collect();
        Core {
            plan,
            rec: Records::new(setup.records),
            counts,
            selected: setup.selected,
            total_selected,
            downs: plan.dependants(),
            chain: plan.chain_lengths(),
            ready: ReadyQueue::default(),
            delayed: Delays::default(),
            limiter: setup.limiter,
            backoff: setup.backoff,
            provider: setup.provider,
            stop: None,
            effects: Vec::new(),
            wall: setup.started,
            costs: plan.shots.iter().map(|s| setup.prices.shot(s)).collect(),
            spent: Money::ZERO,
            spent_before: setup.spent_before,
            shard: setup.shard,
            max_cost: setup.max_cost,
            over_budget: BTreeSet::new(),
            prices: setup.prices,
            known_tasks: if setup.provider.capabilities.task_list {
                setup.known_tasks
            } else {
                HashSet::new()
            },
            created_here: HashSet::new(),
            first_search: setup.first_search,
            search_later: Vec::new(),
            rivals: Vec::new(),
            searching: 0,
            resend_unfound,
            started_ms: system_ms(setup.started),
            open_here: vec![false; n],
            earlier,
            reattached: HashMap::new(),
            detached: vec![false; n],
        }
    }

    /// The effects pushed since the last call, in order.
    pub(crate) fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    pub(crate) fn record(&self, i: usize) -> &ShotRecord {
        &self.rec[i]
    }

    pub(crate) fn is_selected(&self, i: usize) -> bool {
        self.selected[i]
    }

    /// Shot `i`'s estimate.
    pub(crate) fn cost(&self, i: usize) -> Option<Money> {
        self.costs[i]
    }

    pub(crate) fn stop(&self) -> Option<&Stop> {
        self.stop.as_ref()
    }

    /// Tasks in flight at most right now.
    pub(crate) fn limit(&self) -> usize {
        self.limiter.limit()
    }

    /// Rows changed since the last call.
    pub(crate) fn take_changed(&mut self) -> Vec<usize> {
        self.rec.take_changed()
    }

    /// Submits on the wire.
    pub(crate) fn submitting(&self) -> usize {
        self.count(&[Status::Submitting])
    }

    /// Tasks being polled.
    pub(crate) fn polling(&self) -> usize {
        self.count(&[Status::InFlight])
    }

    /// Nothing is queued to send, now or later.
    pub(crate) fn nothing_to_send(&self) -> bool {
        self.ready.is_empty() && self.delayed.is_empty()
    }

    /// Whether `event` is still wanted: a detached shot's poll or download reports nothing.
    pub(crate) fn wants(&self, event: &Event) -> bool {
        !self.detached[event.idx()]
    }

    fn at(&mut self, wall: SystemTime) {
        self.wall = wall;
    }

    fn note(&mut self, line: String) {
        self.effects.push(Effect::Note(line));
    }

    fn journal(&mut self, e: Entry) {
        self.effects.push(Effect::Journal(Box::new(e)));
    }

    fn spawn(&mut self, job: Job) {
        self.effects.push(Effect::Spawn(job));
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

    pub(crate) fn progress_counts(&self) -> Counts {
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

    fn entry(&self, i: usize, kind: EventKind) -> Entry {
        let shot = &self.plan.shots[i];
        Entry::at(kind, &shot.id, &shot.key, self.wall)
    }

    /// Applies each shot's first step.
    pub(crate) fn start(&mut self, starts: Vec<Start>, wall: SystemTime) {
        self.at(wall);
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
                        self.journal(e);
                    }
                    self.rec[i].error = Some(Box::new(Reason::Searching {
                        task_list: self.provider.name,
                    }));
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
                    self.spawn(Job::Download { idx: i, url });
                }
                Start::Poll { task_id } => {
                    self.set(i, Status::InFlight);
                    let since = self.rec[i]
                        .submitted_at
                        .as_ref()
                        .and_then(|t| humantime::parse_rfc3339_weak(&t.text()).ok())
                        .unwrap_or(wall);
                    self.spawn(Job::Poll {
                        idx: i,
                        task_id,
                        since,
                    });
                }
                Start::Submit => self.set(i, Status::Waiting),
                Start::Hold { status, reason } => {
                    if status == report::ResultStatus::Unknown && self.rec[i].submit_open {
                        let e = self.entry(i, EventKind::Unknown).error(reason.to_string());
                        self.journal(e);
                    }
                    self.rec[i].error = Some(Box::new(reason));
                    self.set(i, hold_status(status));
                }
            }
        }
        for i in self.plan.topological_order() {
            if self.rec[i].status == Status::Waiting {
                self.check_ready(i);
            }
        }
        if let Some(line) = progress::resume_line(&self.progress_counts()) {
            self.note(line);
        }
        if !search.is_empty() {
            self.note(format!(
                "looking for {} unknown submit(s) in {}'s task list",
                search.len(),
                self.provider.name
            ));
            self.spawn_search(search);
        }
        self.say_sending();
    }

    /// Says what the run is about to send, and what it is estimated to cost.
    fn say_sending(&mut self) {
        let sending: Vec<usize> = (0..self.rec.len())
            .filter(|&i| matches!(self.rec[i].status, Status::Waiting | Status::Ready))
            .collect();
        if sending.is_empty() {
            return;
        }
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
        let line = format!(
            "sending {} shot(s), {long}{seconds} s of video, est. {dear}{}{cap}",
            sending.len(),
            self.prices.show(cost)
        );
        self.note(line);
    }

    /// Leaves `i` unsent (and what waits for it): its submit would take this run past
    /// `--max-cost`.
    fn hold_for_budget(&mut self, i: usize, cap: Money) {
        let reason = Reason::OverBudget {
            estimate: self.prices.show(self.costs[i].unwrap_or_default()),
            spent: self.prices.show(self.spent),
            cap: self.prices.show(cap),
        };
        self.effects.push(Effect::Held {
            idx: i,
            reason: reason.clone(),
        });
        self.rec[i].error = Some(Box::new(reason));
        self.set(i, Status::Pending);
        self.over_budget.insert(i);
        self.hold_below(self.downs[i].clone(), i);
    }

    /// Holds the shots of `stack` still waiting, and what waits below them, for `held`, which
    /// `--max-cost` left unsent.
    fn hold_below(&mut self, mut stack: Vec<usize>, held: usize) {
        let below = Reason::BudgetUpstream {
            upstream: self.plan.shots[held].id.clone(),
        };
        while let Some(d) = stack.pop() {
            if self.selected[d] && self.rec[d].status == Status::Waiting {
                self.effects.push(Effect::Held {
                    idx: d,
                    reason: below.clone(),
                });
                self.rec[d].error = Some(Box::new(below.clone()));
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
        let plan = self.plan;
        for &u in &plan.shots[i].depends_on {
            let up = &self.rec[u];
            match policy::upstream(up.status, up.url.is_some()) {
                Upstream::Feeds => {}
                Upstream::Blocks => {
                    let reason = Reason::Upstream {
                        upstream: plan.shots[u].id.clone(),
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
            self.ready.push(self.chain[i], i);
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
            self.journal(e);
            self.note(format!("skipped {}: {reason}", self.plan.shots[i].id));
            self.rec[i].error = Some(Box::new(reason));
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

    /// Chooses the submits that may leave now (a `submitting` line and a submit job each), and
    /// starts the search for this run's `unknown` submits once nothing is left to send.
    pub(crate) fn choose(&mut self, now: Instant, wall: SystemTime) {
        self.at(wall);
        for i in self.delayed.take_due(now) {
            self.set(i, Status::Ready);
            self.ready.push(self.chain[i], i);
        }
        while self.stop.is_none()
            && self.in_flight() < self.limiter.limit()
            && self.limiter.may_submit(now)
        {
            let Some(i) = self.ready.pop() else {
                break;
            };
            if self.rec[i].status != Status::Ready {
                continue;
            }
            let plan = self.plan;
            let ups = &plan.shots[i].depends_on;
            if let Some(&u) = (ups.iter()).find(|&&u| {
                !can_feed(
                    self.rec[u].finished_at.as_ref().map(Stamp::text).as_deref(),
                    wall,
                    &self.provider.timing,
                )
            }) {
                let reason = Reason::UpstreamStale {
                    upstream: plan.shots[u].id.clone(),
                    feed_ttl: self.provider.timing.feed_ttl,
                };
                self.skip(i, reason);
                continue;
            }
            let body = plan.shots[i].resolved_body(|id| {
                let u = ups.iter().find(|&&u| plan.shots[u].id == id)?;
                self.rec[*u].url.as_deref().map(str::to_owned)
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
            self.rec[i].submitting_at = Some(Stamp::new(&e.ts));
            self.journal(e);
            self.set(i, Status::Submitting);
            self.open_here[i] = true;
            self.earlier[i] = false;
            self.limiter.on_submit(now);
            self.spawn(Job::Submit { idx: i, body });
        }
        self.search_when_idle();
    }

    /// Takes in what a job reported.
    pub(crate) fn handle(&mut self, event: Event, now: Instant, wall: SystemTime) {
        if !self.wants(&event) {
            return;
        }
        self.at(wall);
        match event {
            Event::Submitted { idx, task_id } => {
                self.open_here[idx] = false;
                if let Some(&s) = self.reattached.get(&task_id) {
                    let by = format!("the submit of `{}` in this run", self.plan.shots[idx].id);
                    self.detach(s, &task_id, &by);
                }
                // Only a search reads them; a gateway run keeps no set of every task id.
                if self.provider.capabilities.task_list {
                    self.known_tasks.insert(task_id.clone());
                    self.created_here.insert(task_id.clone());
                }
                let e = self.entry(idx, EventKind::Submitted).task_id(&task_id);
                self.rec[idx].submitted_at = Some(Stamp::new(&e.ts));
                self.rec[idx].task_id = Some(task_id.into());
                self.journal(e);
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
                e.task_id = self.rec[idx].task_id.as_deref().map(str::to_owned);
                self.rec[idx].finished_at = Some(Stamp::new(&e.ts));
                self.rec[idx].url = Some(url.into());
                self.rec[idx].extras = e.extras.clone().map(Box::new);
                self.journal(e);
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
                self.rec[idx].finished_at = Some(Stamp::new(&e.ts));
                self.journal(e);
                self.fail(idx, Status::Failed, error, Some(Advice::RetryFailed));
            }
            Event::GaveUp { idx, error } => {
                let error = Reason::PollGaveUp { error }.to_string();
                self.fail(idx, Status::Unknown, error, None);
            }
            Event::AuthLost { idx, error } => {
                let line = format!("error: {}: {error}", self.plan.shots[idx].id);
                self.effects.push(Effect::Error(line));
                self.rec[idx].error = Some(Box::new(Reason::Said(error.clone())));
                self.set(idx, Status::Pending);
                self.stop_fatal(format!("the provider refused the API key: {error}"));
            }
            Event::Downloaded { idx, done } => {
                let file = self.plan.shots[idx].file.clone();
                let e =
                    self.entry(idx, EventKind::Downloaded)
                        .file(&file, &done.sha256, done.bytes);
                self.journal(e);
                let r = &mut self.rec[idx];
                r.file = Some(file.into());
                r.sha256 = Some(Digest::new(&done.sha256));
                r.bytes = Some(done.bytes);
                r.error = None;
                self.set(idx, Status::Succeeded);
                self.note(format!("done {}", self.plan.shots[idx].id));
            }
            Event::Reconciled { idx, verdict } => self.reconciled(idx, verdict),
            Event::DownloadError { idx, error } => match policy::after_download(&error) {
                AfterDownload::Expired { error } => {
                    let e = self.entry(idx, EventKind::Expired).error(&error);
                    self.journal(e);
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
                self.journal(e);
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
                    self.ready.push(self.chain[i], i);
                } else {
                    let earliest = (kind == Refusal::Rate).then_some(now + wait.earliest);
                    self.delayed.push(i, now + wait.latest, earliest);
                    self.set(i, Status::Delayed);
                }
            }
            AfterSubmit::Retry { server_errors } => {
                let e = self.entry(i, EventKind::Refused).error(&msg);
                self.journal(e);
                self.rec[i].server_errors = server_errors;
                let wait = self.backoff.wait(server_errors - 1);
                self.delayed.push(i, now + wait, Some(now));
                self.set(i, Status::Delayed);
            }
            AfterSubmit::GiveUp {
                server_errors,
                error,
            } => {
                let e = self.entry(i, EventKind::Refused).error(&msg);
                self.journal(e);
                self.rec[i].server_errors = server_errors;
                let e = self.entry(i, EventKind::Failed).error(&error);
                self.journal(e);
                self.fail(i, Status::Failed, error, Some(Advice::RetryFailed));
            }
            AfterSubmit::Refused => {
                let e = self.entry(i, EventKind::Failed).error(&msg);
                self.rec[i].finished_at = Some(Stamp::new(&e.ts));
                self.journal(e);
                self.fail(i, Status::Failed, msg, Some(Advice::RetryFailed));
            }
            AfterSubmit::StopRun { message } => {
                let e = self.entry(i, EventKind::Refused).error(&msg);
                self.journal(e);
                self.set(i, Status::Pending);
                self.stop_fatal(message);
            }
            AfterSubmit::Unknown { error } => {
                let e = self.entry(i, EventKind::Unknown).error(&error);
                let t1 = epoch_ms(&e.ts);
                self.journal(e);
                let t0 = self.rec[i]
                    .submitting_at
                    .as_ref()
                    .and_then(|t| epoch_ms(&t.text()));
                let signature = Signature::of(&self.plan.shots[i]);
                match (self.provider.capabilities.task_list, signature, t0, t1) {
                    (true, Some(signature), Some(t0_ms), Some(t1_ms)) => {
                        self.note(format!(
                            "unknown {}: {error}; its task is looked for in {}'s task list \
                             once nothing is left to send",
                            self.plan.shots[i].id, self.provider.name
                        ));
                        self.rec[i].error = Some(Box::new(Reason::explained(error)));
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
        self.delayed.release_one(now);
    }

    /// Searches for `targets`, the rivals along (whose verdicts are ignored: they are not
    /// `Reconciling`).
    fn spawn_search(&mut self, mut targets: Vec<Target>) {
        targets.extend(self.rivals.iter().cloned());
        self.searching += targets.len();
        let known = self.known_tasks.clone();
        self.spawn(Job::Search { targets, known });
    }

    /// Searches for this run's `unknown` submits once nothing is left to send (a search from
    /// the journal may still be going): their tasks are created by then, and a re-attached one
    /// is polled and downloaded in this run.
    fn search_when_idle(&mut self) {
        let idle = self.stop.is_none()
            && self.searching == 0
            && self.nothing_to_send()
            && self.submitting() == 0;
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
                self.journal(e);
                let r = &mut self.rec[i];
                r.submitted_at = r.submitting_at.clone();
                r.task_id = Some(task_id.as_str().into());
                r.submit_open = false;
                r.error = None;
                self.set(i, Status::InFlight);
                self.note(format!(
                    "found {shot}'s task {task_id} in {}'s task list: re-attached, not resent",
                    self.provider.name
                ));
                let since = std::time::UNIX_EPOCH + Duration::from_millis(created_ms);
                self.spawn(Job::Poll {
                    idx: i,
                    task_id,
                    since,
                });
                return;
            }
            other => other,
        };
        let reason = verdict.explain(&shot, self.provider.name, self.provider.timing.task_ttl);
        if self.resend_unfound[i] && verdict.allows_resend() {
            self.note(format!("{shot}: {reason}; sending it again as asked"));
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
        self.journal(e);
        let r = &mut self.rec[i];
        r.task_id = None;
        r.submitted_at = None;
        r.url = None;
        r.finished_at = None;
        r.extras = Default::default();
        let (sha256, bytes) = (r.sha256.take(), r.bytes.take());
        // A download still under way lands unrecorded: the next run moves it aside.
        if let Some(file) = r.file.take() {
            self.effects.push(Effect::Supersede {
                idx: i,
                file: file.into(),
                task_id: task_id.to_owned(),
                sha256: sha256.as_ref().map(Digest::text),
                bytes,
            });
        }
        self.fail(i, Status::Unknown, reason, Some(Advice::ResubmitUnknown));
    }

    /// Ends `i` as `status` (and skips what waits below it); `advice` is what sends it again
    /// when `error` does not say so itself. The progress line leaves the advice out.
    fn fail(&mut self, i: usize, status: Status, error: String, advice: Option<Advice>) {
        self.note(format!(
            "{} {}: {error}",
            status.result().as_str(),
            self.plan.shots[i].id
        ));
        self.rec[i].error = Some(Box::new(Reason::Failed { error, advice }));
        self.set(i, status);
        self.skip_below(i);
    }

    fn stop_fatal(&mut self, message: String) {
        if !matches!(self.stop, Some(Stop::Fatal(_))) {
            self.stop = Some(Stop::Fatal(message));
        }
    }

    /// A stop was asked for (a signal): nothing more is sent; submits on the wire are still
    /// waited for.
    pub(crate) fn interrupt(&mut self) {
        if self.stop.is_none() {
            self.stop = Some(Stop::Interrupted);
        }
        self.effects.push(Effect::Error(
            "interrupted: no new submits; waiting for submits already sent to answer \
             (interrupt again to quit at once)"
                .to_owned(),
        ));
    }

    /// When [`Core::choose`] has something to do next without an event: a delayed shot is
    /// due, or the submit rate lets the next ready one go.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let delayed = self.delayed.next_at();
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

    /// Shot `i`'s results row.
    pub(crate) fn row(&self, i: usize) -> report::ResultRow {
        let mut row = self.rec[i].row(&self.plan.shots[i], self.costs[i]);
        row.model = self.model_sent(i).to_owned();
        row
    }

    /// The model id this run's provider is sent for shot `i` (DashScope's native id there).
    fn model_sent(&self, i: usize) -> &str {
        self.provider.model_sent(&self.plan.shots[i].model)
    }

    /// How many shots ended in each results status.
    pub(crate) fn result_counts(&self) -> std::collections::BTreeMap<report::ResultStatus, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for r in &self.rec {
            *counts.entry(r.status.result()).or_insert(0) += 1;
        }
        counts
    }

    /// Every selected shot succeeded.
    pub(crate) fn all_succeeded(&self) -> bool {
        (self.selected.iter())
            .zip(&self.rec)
            .all(|(&s, r)| !s || r.status == Status::Succeeded)
    }

    /// What this run and the batch are estimated to have spent, and what `--max-cost` left.
    pub(crate) fn run_cost(&self) -> RunCost {
        RunCost {
            currency: self.prices.currency.clone(),
            spent: self.spent,
            billed: self.spent_before + self.spent,
            unsent: self.over_budget.len(),
            unsent_cost: self.over_budget.iter().filter_map(|&i| self.costs[i]).sum(),
        }
    }

    /// Ends the run: the stop that ended it.
    pub(crate) fn take_stop(&mut self) -> Stop {
        self.stop.take().unwrap_or(Stop::Finished)
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

pub(crate) fn system_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An RFC 3339 journal time in epoch milliseconds.
pub(crate) fn epoch_ms(ts: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(ts).ok().map(system_ms)
}

mod queue;
#[cfg(test)]
mod tests;
