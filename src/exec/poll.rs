//! When to query a task next: 5 s, then ×1.5 up to 15 s with ±20 % jitter, or a fixed interval.
//!
//! The gateway refreshes task state about every 15 s, so polling faster gains nothing. A fixed
//! interval is never below [`MIN_POLL`].

use std::time::Duration;

use super::backoff::jitter;

const FIRST: Duration = Duration::from_secs(5);
/// The longest interval of the growing schedule.
pub const MAX: Duration = Duration::from_secs(15);
/// The shortest fixed interval (`--poll`) honoured.
pub const MIN_POLL: Duration = Duration::from_millis(100);

/// The poll intervals of one task.
#[derive(Debug, Clone)]
pub struct PollSchedule {
    fixed: Option<Duration>,
    next: Duration,
}

impl PollSchedule {
    /// `fixed` (from `--poll`) replaces the growing schedule and its jitter.
    pub fn new(fixed: Option<Duration>) -> PollSchedule {
        PollSchedule {
            fixed: fixed.map(|d| d.max(MIN_POLL)),
            next: FIRST,
        }
    }

    /// The interval before the next query, without jitter; advances the schedule.
    pub fn next_nominal(&mut self) -> Duration {
        if let Some(fixed) = self.fixed {
            return fixed;
        }
        let now = self.next;
        self.next = self.next.mul_f64(1.5).min(MAX);
        now
    }

    /// The interval before the next query; advances the schedule.
    pub fn next_wait(&mut self) -> Duration {
        let fixed = self.fixed.is_some();
        let d = self.next_nominal();
        if fixed { d } else { jitter(d, 0.2) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_half_up_to_fifteen_seconds() {
        let mut p = PollSchedule::new(None);
        let got: Vec<u128> = (0..6).map(|_| p.next_nominal().as_millis()).collect();
        assert_eq!(got, [5000, 7500, 11250, 15000, 15000, 15000]);
    }

    #[test]
    fn jittered_waits_stay_within_bounds() {
        let mut p = PollSchedule::new(None);
        let first = p.next_wait();
        assert!(first >= Duration::from_secs(4) && first <= Duration::from_secs(6));
    }

    #[test]
    fn fixed_interval_has_no_jitter() {
        let mut p = PollSchedule::new(Some(Duration::from_millis(250)));
        for _ in 0..5 {
            assert_eq!(p.next_wait(), Duration::from_millis(250));
        }
    }

    #[test]
    fn a_fixed_interval_has_a_floor() {
        let mut p = PollSchedule::new(Some(Duration::ZERO));
        assert_eq!(p.next_wait(), MIN_POLL);
    }
}
