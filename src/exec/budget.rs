//! The query budget: every task's polls share `[run] queries_per_second`.
//!
//! Providers limit requests per account, not per task, so a run of 1,000 tasks must not poll
//! 1,000 times as often as a run of one. Each query reserves the next free slot on one timeline
//! with slots `1/qps` apart (plus 2 %): queries leave first come, first served, and when many
//! tasks are in flight each task's interval stretches to what the budget allows instead of the
//! budget being exceeded. A timer that fires late would let two slots leave together, so a query
//! also waits until the `qps`-th query before it left more than a second (plus 5 %) ago: the
//! provider's clock never sees one extra in a second.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct QueryBudget {
    qps: u32,
    spacing: Duration,
    next: Mutex<Option<Instant>>,
    /// When the last `qps` queries actually left.
    sent: Mutex<VecDeque<Instant>>,
}

/// The window in which at most `qps` queries leave: a second with room for a late timer.
const WINDOW: Duration = Duration::from_millis(1050);

impl QueryBudget {
    /// `qps` queries per second at most (0 is taken as 1).
    pub fn new(qps: u32) -> QueryBudget {
        let qps = qps.max(1);
        QueryBudget {
            qps,
            spacing: (Duration::from_secs(1) / qps).mul_f64(1.02),
            next: Mutex::new(None),
            sent: Mutex::new(VecDeque::new()),
        }
    }

    pub fn qps(&self) -> u32 {
        self.qps
    }

    /// Reserves the next slot at or after `now` and returns it.
    pub fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + self.spacing);
        slot
    }

    /// Records a query leaving at `now` unless `qps` others left within the window before it;
    /// then returns when it may leave instead.
    pub fn admit(&self, now: Instant) -> Result<(), Instant> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        while sent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= WINDOW)
        {
            sent.pop_front();
        }
        match sent.front() {
            Some(&first) if sent.len() >= self.qps as usize => Err(first + WINDOW),
            _ => {
                sent.push_back(now);
                Ok(())
            }
        }
    }

    /// Waits for this query's slot, and for room in the window.
    pub async fn acquire(&self) {
        let slot = self.reserve(Instant::now());
        tokio::time::sleep_until(slot.into()).await;
        while let Err(at) = self.admit(Instant::now()) {
            tokio::time::sleep_until(at.into()).await;
        }
    }

    /// How often each of `tasks` polling tasks is queried when each would like `nominal`.
    pub fn effective_interval(&self, tasks: usize, nominal: Duration) -> Duration {
        let tasks = u32::try_from(tasks).unwrap_or(u32::MAX);
        nominal.max(self.spacing.saturating_mul(tasks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_and_never_more_than_qps_in_any_second() {
        let budget = QueryBudget::new(10);
        let now = Instant::now();
        let slots: Vec<Instant> = (0..100).map(|_| budget.reserve(now)).collect();
        assert_eq!(slots[0], now);
        for w in slots.windows(11) {
            assert!(
                w[10] - w[0] > Duration::from_secs(1),
                "11 slots within a second"
            );
        }
    }

    #[test]
    fn late_timers_never_let_more_than_qps_leave_within_the_window() {
        let budget = QueryBudget::new(3);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(budget.admit(now), Ok(()));
        }
        assert_eq!(
            budget.admit(now + Duration::from_millis(900)),
            Err(now + WINDOW)
        );
        assert_eq!(budget.admit(now + WINDOW), Ok(()));
    }

    #[test]
    fn an_idle_budget_does_not_bank_slots() {
        let budget = QueryBudget::new(5);
        let now = Instant::now();
        budget.reserve(now);
        let later = now + Duration::from_secs(60);
        assert_eq!(budget.reserve(later), later);
        assert!(budget.reserve(later) > later);
    }

    #[test]
    fn intervals_stretch_when_many_tasks_share_the_budget() {
        let budget = QueryBudget::new(10);
        let nominal = Duration::from_secs(15);
        assert_eq!(budget.effective_interval(4, nominal), nominal);
        let stretched = budget.effective_interval(1000, nominal);
        assert!(stretched >= Duration::from_secs(100), "{stretched:?}");
    }
}
