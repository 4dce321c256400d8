//! The ledger: every task a folder's journal says was created, attempt by attempt.
//!
//! A shot's [`History`](super::History) keeps only its newest attempt, which is what a rerun
//! needs to decide; money needs every attempt. A refused submit (429, 5xx) and one the provider
//! rejected (400) created nothing; every other submit is paid, an `unknown` one until a
//! re-attachment shows which task it made. A task is one payment however many lines name it
//! (a merge restates a shot's task; a re-attachment names a task again), and belongs to one
//! shot: a second shot naming it is a [`Conflict`], which `merge` refuses and re-attachment
//! avoids.

use std::collections::HashMap;

use super::{Entry, EventKind};
use crate::cost::Money;

/// What became of one submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `submitting` with no answer yet (a crash mid-POST): paid until shown otherwise.
    Open,
    /// No task was created (429 or 5xx refused it): not paid.
    Refused,
    /// The provider rejected the request (400) before making a task: not paid.
    Rejected,
    /// Its outcome cannot be known: counted as paid.
    Unknown,
    /// A task was created (or found again): paid.
    Task,
    /// It named a task an earlier attempt of the same shot owns (a merge restating a shot's
    /// history): one task, paid once, under that attempt.
    Restated,
}

impl Outcome {
    pub fn paid(self) -> bool {
        matches!(self, Outcome::Open | Outcome::Unknown | Outcome::Task)
    }
}

/// One submit (or one task named by `run --attach` with no submit of its own).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Attempt {
    pub id: String,
    pub key: String,
    /// The journal line that started it (1-based).
    pub line: usize,
    pub ts: String,
    pub outcome: Outcome,
    pub task_id: Option<String>,
    /// What the submit was estimated to bill, as written on its `submitting` line (journals
    /// from before 0.2 carry none: see [`Ledger::spent`]).
    pub estimate: Option<Money>,
    pub currency: Option<String>,
    pub model: Option<String>,
    pub seed: Option<u32>,
    pub shard: Option<String>,
    /// The task's end: `succeeded`, `failed` or `expired`.
    pub finished: Option<&'static str>,
    pub file: Option<String>,
    pub sha256: Option<String>,
}

impl Attempt {
    /// Its estimate in `currency`: its line's, else `price(id, key)` (see [`Ledger::spent`]).
    fn estimate_in(
        &self,
        currency: &str,
        price: impl Fn(&str, &str) -> Option<Money>,
    ) -> Option<Money> {
        (self.estimate)
            .filter(|_| self.currency.as_deref().is_none_or(|c| c == currency))
            .or_else(|| price(&self.id, &self.key))
    }
}

/// A task that two shots claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub task_id: String,
    /// The shot that named it first, and the one that named it again.
    pub first: (String, String),
    pub second: (String, String),
}

/// Every attempt in journal order.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub attempts: Vec<Attempt>,
    /// By (id, key): its attempt a line about "the current submit" applies to.
    current: HashMap<(String, String), usize>,
    /// By task id: the attempt that owns it.
    owner: HashMap<String, usize>,
    pub conflicts: Vec<Conflict>,
}

impl Ledger {
    pub fn apply(&mut self, line: usize, e: &Entry) {
        let shot = (e.id.clone(), e.key.clone());
        match e.event {
            EventKind::Submitting => {
                let a = self.push(line, e, Outcome::Open);
                self.current.insert(shot, a);
            }
            EventKind::Submitted | EventKind::Reattached => {
                let Some(task) = e.task_id.as_deref() else {
                    return;
                };
                let open = self.current.get(&shot).copied().filter(|&a| {
                    let a = &self.attempts[a];
                    a.task_id.is_none() && matches!(a.outcome, Outcome::Open | Outcome::Unknown)
                });
                if let Some(&owner) = self.owner.get(task) {
                    let o = &self.attempts[owner];
                    if (o.id.as_str(), o.key.as_str()) != (e.id.as_str(), e.key.as_str()) {
                        self.conflicts.push(Conflict {
                            task_id: task.to_owned(),
                            first: (o.id.clone(), o.key.clone()),
                            second: shot.clone(),
                        });
                    }
                    // The same task again (a restatement): the submit that named it is that
                    // task, not a second payment.
                    if let Some(a) = open {
                        self.attempts[a].outcome = Outcome::Restated;
                        self.attempts[a].task_id = Some(task.to_owned());
                    }
                    self.current.insert(shot, owner);
                    return;
                }
                let a = open.unwrap_or_else(|| self.push(line, e, Outcome::Task));
                self.attempts[a].outcome = Outcome::Task;
                self.attempts[a].task_id = Some(task.to_owned());
                self.owner.insert(task.to_owned(), a);
                self.current.insert(shot, a);
            }
            EventKind::Refused => self.close(&shot, Outcome::Refused),
            EventKind::Unknown if e.task_id.is_some() => {
                // A re-attachment undone: the task goes back, the submit is unknown again.
                if let Some(&a) = self.current.get(&shot) {
                    let attempt = &mut self.attempts[a];
                    if let Some(task) = attempt.task_id.take() {
                        self.owner.remove(&task);
                    }
                    attempt.outcome = Outcome::Unknown;
                    attempt.finished = None;
                    attempt.file = None;
                    attempt.sha256 = None;
                }
            }
            EventKind::Unknown => self.close(&shot, Outcome::Unknown),
            EventKind::Failed => match self.current.get(&shot).copied() {
                Some(a) if self.attempts[a].outcome == Outcome::Open => {
                    self.attempts[a].outcome = Outcome::Rejected;
                }
                Some(a) => self.attempts[a].finished = Some("failed"),
                None => {}
            },
            EventKind::Succeeded | EventKind::Expired | EventKind::Downloaded => {
                let a = e
                    .task_id
                    .as_deref()
                    .and_then(|t| self.owner.get(t))
                    .or_else(|| self.current.get(&shot))
                    .copied();
                let Some(a) = a else { return };
                let attempt = &mut self.attempts[a];
                match e.event {
                    EventKind::Succeeded => attempt.finished = Some("succeeded"),
                    EventKind::Expired => attempt.finished = Some("expired"),
                    _ => {
                        attempt.file.clone_from(&e.file);
                        attempt.sha256.clone_from(&e.sha256);
                    }
                }
            }
            EventKind::Superseded | EventKind::Skipped => {}
        }
    }

    fn push(&mut self, line: usize, e: &Entry, outcome: Outcome) -> usize {
        self.attempts.push(Attempt {
            id: e.id.clone(),
            key: e.key.clone(),
            line,
            ts: e.ts.clone(),
            outcome,
            task_id: None,
            estimate: e.cost,
            currency: e.currency.clone(),
            model: e.model.clone(),
            seed: e.seed,
            shard: e.shard.clone(),
            finished: None,
            file: None,
            sha256: None,
        });
        self.attempts.len() - 1
    }

    fn close(&mut self, shot: &(String, String), outcome: Outcome) {
        if let Some(&a) = self.current.get(shot)
            && self.attempts[a].outcome == Outcome::Open
        {
            self.attempts[a].outcome = outcome;
        }
    }

    /// The attempts that were (or may have been) paid for.
    pub fn paid(&self) -> impl Iterator<Item = &Attempt> {
        self.attempts.iter().filter(|a| a.outcome.paid())
    }

    /// How many tasks were (or may have been) created.
    pub fn tasks(&self) -> usize {
        self.paid().count()
    }

    /// The shot that owns `task`, if any line names it.
    pub fn owner_of(&self, task: &str) -> Option<(&str, &str)> {
        let a = &self.attempts[*self.owner.get(task)?];
        Some((&a.id, &a.key))
    }

    /// Every task id a line assigns to a shot, with that shot's id.
    pub fn owned_tasks(&self) -> impl Iterator<Item = (&str, &str)> {
        self.owner
            .iter()
            .map(|(t, &a)| (t.as_str(), self.attempts[a].id.as_str()))
    }

    /// What every paid attempt is estimated to have billed, in `currency`: its own estimate
    /// when its line carries one in that currency, else `price(id, key)` (today's estimate of
    /// that request; for journals written before estimates were recorded). Attempts with
    /// neither are counted in [`Spent::unpriced`].
    pub fn spent(&self, currency: &str, price: impl Fn(&str, &str) -> Option<Money>) -> Spent {
        let mut s = Spent::default();
        for a in self.paid() {
            match a.estimate_in(currency, &price) {
                Some(m) => s.amount += m,
                None => s.unpriced += 1,
            }
            s.tasks += 1;
        }
        s
    }

    /// Per shot id: (paid attempts, their estimate).
    pub fn per_shot(
        &self,
        currency: &str,
        price: impl Fn(&str, &str) -> Option<Money>,
    ) -> HashMap<&str, (u32, Money)> {
        let mut out: HashMap<&str, (u32, Money)> = HashMap::new();
        for a in self.paid() {
            let slot = out.entry(a.id.as_str()).or_default();
            slot.0 += 1;
            slot.1 += a.estimate_in(currency, &price).unwrap_or_default();
        }
        out
    }
}

/// What a ledger says was spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub amount: Money,
    /// Paid attempts counted.
    pub tasks: usize,
    /// Paid attempts with no price (not in `amount`).
    pub unpriced: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::replay;

    fn at(event: EventKind, id: &str) -> Entry {
        Entry::new(event, id, "k")
    }

    fn priced(e: Entry, micros: u64) -> Entry {
        let mut e = e;
        e.cost = Some(Money::from_micros(micros));
        e.currency = Some("USD".into());
        e
    }

    fn spent(events: &[Entry]) -> Spent {
        replay(events)
            .ledger
            .spent("USD", |_, _| Some(Money::from_micros(1)))
    }

    #[test]
    fn every_line_kind_and_every_attempt() {
        let events = [
            // a: refused, then a task that failed, then a retry that succeeded and downloaded.
            priced(at(EventKind::Submitting, "a"), 100),
            at(EventKind::Refused, "a"),
            priced(at(EventKind::Submitting, "a"), 100),
            at(EventKind::Submitted, "a").task_id("t1"),
            at(EventKind::Failed, "a").error("moderation"),
            priced(at(EventKind::Submitting, "a"), 100),
            at(EventKind::Submitted, "a").task_id("t2"),
            at(EventKind::Succeeded, "a").url("u"),
            at(EventKind::Downloaded, "a").file("a.mp4", "s", 1),
            // b: rejected by a 400 (no task), then a crash mid-POST (open).
            priced(at(EventKind::Submitting, "b"), 10),
            at(EventKind::Failed, "b").error("400"),
            priced(at(EventKind::Submitting, "b"), 10),
            // c: unknown, resent unknown, the first found again.
            priced(at(EventKind::Submitting, "c"), 1000),
            at(EventKind::Unknown, "c"),
            at(EventKind::Reattached, "c").task_id("t3"),
            at(EventKind::Skipped, "c"),
        ];
        let r = replay(&events);
        let l = &r.ledger;
        let outcomes: Vec<(&str, Outcome, Option<&str>)> = l
            .attempts
            .iter()
            .map(|a| (a.id.as_str(), a.outcome, a.task_id.as_deref()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("a", Outcome::Refused, None),
                ("a", Outcome::Task, Some("t1")),
                ("a", Outcome::Task, Some("t2")),
                ("b", Outcome::Rejected, None),
                ("b", Outcome::Open, None),
                ("c", Outcome::Task, Some("t3")),
            ]
        );
        assert_eq!(l.attempts[1].finished, Some("failed"));
        assert_eq!(l.attempts[2].finished, Some("succeeded"));
        assert_eq!(l.attempts[2].file.as_deref(), Some("a.mp4"));
        let s = spent(&events);
        assert_eq!((s.tasks, s.amount.micros(), s.unpriced), (4, 1210, 0));
        assert!(l.conflicts.is_empty());
    }

    #[test]
    fn an_unknown_is_paid_and_an_undone_reattachment_gives_the_task_back() {
        let events = [
            at(EventKind::Submitting, "a"),
            at(EventKind::Unknown, "a"),
            at(EventKind::Reattached, "a").task_id("t1"),
            at(EventKind::Unknown, "a").task_id("t1").error("undone"),
        ];
        let r = replay(&events);
        assert_eq!(r.ledger.attempts[0].outcome, Outcome::Unknown);
        assert_eq!(r.ledger.owner_of("t1"), None);
        assert_eq!(spent(&events).tasks, 1);
        // Then the task is the other shot's, without a conflict.
        let mut more = events.to_vec();
        more.push(at(EventKind::Reattached, "b").task_id("t1"));
        let r = replay(&more);
        assert!(r.ledger.conflicts.is_empty());
        assert_eq!(r.ledger.owner_of("t1"), Some(("b", "k")));
        assert_eq!(spent(&more).tasks, 2);
    }

    #[test]
    fn a_task_named_again_is_one_payment_and_two_shots_on_one_task_conflict() {
        let events = [
            at(EventKind::Submitting, "a"),
            at(EventKind::Submitted, "a").task_id("t1"),
            // A merge restating a's task.
            at(EventKind::Submitting, "a"),
            at(EventKind::Submitted, "a").task_id("t1"),
            at(EventKind::Succeeded, "a").url("u"),
        ];
        assert_eq!(spent(&events).tasks, 1);
        let mut two = events.to_vec();
        two.push(at(EventKind::Submitting, "b"));
        two.push(at(EventKind::Unknown, "b"));
        two.push(at(EventKind::Reattached, "b").task_id("t1"));
        let r = replay(&two);
        assert_eq!(
            r.ledger.conflicts,
            [Conflict {
                task_id: "t1".into(),
                first: ("a".into(), "k".into()),
                second: ("b".into(), "k".into()),
            }]
        );
        assert_eq!(r.ledger.owner_of("t1"), Some(("a", "k")));
    }

    #[test]
    fn a_user_attach_with_no_submit_is_a_task() {
        let events = [at(EventKind::Reattached, "a").task_id("t9").by("user")];
        let r = replay(&events);
        assert_eq!(r.ledger.attempts.len(), 1);
        assert_eq!(r.ledger.attempts[0].outcome, Outcome::Task);
        assert_eq!(spent(&events).tasks, 1);
    }

    #[test]
    fn estimates_in_another_currency_or_missing_fall_back_to_the_price() {
        let mut eur = priced(at(EventKind::Submitting, "a"), 500);
        eur.currency = Some("EUR".into());
        let events = [
            eur,
            at(EventKind::Submitted, "a").task_id("t1"),
            at(EventKind::Submitting, "b"),
            at(EventKind::Submitted, "b").task_id("t2"),
        ];
        let r = replay(&events);
        let s = r
            .ledger
            .spent("USD", |id, _| (id == "a").then(|| Money::from_micros(7)));
        assert_eq!((s.amount.micros(), s.tasks, s.unpriced), (7, 2, 1));
        let per = r.ledger.per_shot("USD", |_, _| Some(Money::from_micros(3)));
        assert_eq!(per["a"], (1, Money::from_micros(3)));
        assert_eq!(per["b"], (1, Money::from_micros(3)));
    }
}
