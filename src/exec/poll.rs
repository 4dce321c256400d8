//! When to query a task next: the provider's first interval (5 s on GravitexAI), then ×1.5 up
//! to its maximum (15 s) with ±20 % jitter, or a fixed interval.
//!
//! The gateway refreshes task state about as often as the maximum, so polling faster gains
//! nothing.

use std::time::Duration;

use super::backoff::jitter;
use crate::api::Timing;

/// The poll intervals of one task.
#[derive(Debug, Clone)]
pub struct PollSchedule {
    fixed: Option<Duration>,
    next: Duration,
    max: Duration,
}

impl PollSchedule {
    /// `fixed` (from `--poll`) replaces the growing schedule and its jitter.
    pub fn new(fixed: Option<Duration>, timing: &Timing) -> PollSchedule {
        PollSchedule {
            fixed,
            next: timing.poll_first,
            max: timing.poll_max,
        }
    }

    /// The interval before the next query, without jitter; advances the schedule.
    pub fn next_nominal(&mut self) -> Duration {
        if let Some(fixed) = self.fixed {
            return fixed;
        }
        let now = self.next;
        self.next = self.next.mul_f64(1.5).min(self.max);
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
        let mut p = PollSchedule::new(None, &crate::api::gravitex::PROVIDER.timing);
        let got: Vec<u128> = (0..6).map(|_| p.next_nominal().as_millis()).collect();
        assert_eq!(got, [5000, 7500, 11250, 15000, 15000, 15000]);
    }

    #[test]
    fn jittered_waits_stay_within_bounds() {
        let mut p = PollSchedule::new(None, &crate::api::gravitex::PROVIDER.timing);
        let first = p.next_wait();
        assert!(first >= Duration::from_secs(4) && first <= Duration::from_secs(6));
    }

    #[test]
    fn fixed_interval_has_no_jitter() {
        let mut p = PollSchedule::new(
            Some(Duration::from_millis(50)),
            &crate::api::gravitex::PROVIDER.timing,
        );
        for _ in 0..5 {
            assert_eq!(p.next_wait(), Duration::from_millis(50));
        }
    }
}
