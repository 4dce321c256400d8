//! When to query a task next: the provider's first interval (5 s on GravitexAI), then ×1.5 up
//! to its maximum (15 s) with ±20 % jitter, or a fixed interval.
//!
//! The gateway refreshes task state about as often as the maximum, so polling faster gains
//! nothing. A fixed interval is never below [`MIN_POLL`]. The jitter moves each query by up to
//! ±20 % of its interval around the nominal time (5, 12.5, 23.75, 38.75 s… by default) and does
//! not accumulate, so tasks submitted together spread out while a 60 s task still costs exactly
//! six queries. A query that brought no news (refused, failed) is retried after the interval it
//! waited (or its `Retry-After`), without jitter and without growing the schedule: it costs its
//! task one interval, never more.

use std::time::Duration;

use super::backoff::jitter;
use super::policy::AfterQuery;
use crate::api::Timing;

/// The shortest fixed interval (`--poll`) honoured.
pub const MIN_POLL: Duration = Duration::from_millis(100);

/// The poll intervals of one task.
#[derive(Debug, Clone)]
pub struct PollSchedule {
    fixed: Option<Duration>,
    next: Duration,
    max: Duration,
    /// The nominal interval last returned.
    last: Duration,
    /// How far the last jittered query was from its nominal time (after it: positive).
    drift: f64,
}

impl PollSchedule {
    /// `fixed` (from `--poll`) replaces the growing schedule and its jitter.
    pub fn new(fixed: Option<Duration>, timing: &Timing) -> PollSchedule {
        PollSchedule {
            fixed: fixed.map(|d| d.max(MIN_POLL)),
            next: timing.poll_first,
            max: timing.poll_max,
            last: timing.poll_first,
            drift: 0.0,
        }
    }

    /// The interval before the next query, without jitter; advances the schedule.
    pub fn next_nominal(&mut self) -> Duration {
        if let Some(fixed) = self.fixed {
            return fixed;
        }
        let now = self.next;
        self.next = self.next.mul_f64(1.5).min(self.max);
        self.last = now;
        now
    }

    /// The interval before the next query; advances the schedule.
    pub fn next_wait(&mut self) -> Duration {
        let fixed = self.fixed.is_some();
        let d = self.next_nominal();
        if fixed {
            return d;
        }
        let drift = jitter(d, 0.2).as_secs_f64() - d.as_secs_f64();
        let wait = d.as_secs_f64() + drift - self.drift;
        self.drift = drift;
        Duration::from_secs_f64(wait.max(0.0))
    }

    /// The wait before the query that follows an answer: the next interval, or longer when
    /// the answer asked for it ([`AfterQuery::Wait`]); a refused or failed query costs one
    /// interval.
    pub fn after(&mut self, answer: &AfterQuery) -> Duration {
        let at_least = match answer {
            AfterQuery::Wait(d) => *d,
            _ => Duration::ZERO,
        };
        self.next_wait().max(at_least)
    }

    /// The wait before retrying a query that brought no news (a 429, a 5xx, a transport
    /// error): the interval it waited again, or the answer's `Retry-After` when longer; the
    /// schedule does not advance.
    pub fn retry(&self, answer: &AfterQuery) -> Duration {
        let at_least = match answer {
            AfterQuery::Wait(d) => *d,
            _ => Duration::ZERO,
        };
        self.fixed.unwrap_or(self.last).max(at_least)
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
    fn jitter_moves_each_query_around_its_nominal_time_without_accumulating() {
        for _ in 0..200 {
            let mut p = PollSchedule::new(None, &crate::api::gravitex::PROVIDER.timing);
            let mut nominal = PollSchedule::new(None, &crate::api::gravitex::PROVIDER.timing);
            let (mut at, mut due) = (0.0, 0.0);
            for _ in 0..8 {
                let d = nominal.next_nominal().as_secs_f64();
                due += d;
                at += p.next_wait().as_secs_f64();
                assert!((at - due).abs() <= 0.2 * d + 1e-9, "{at} vs {due}");
            }
        }
    }

    #[test]
    fn fixed_interval_has_no_jitter() {
        let mut p = PollSchedule::new(
            Some(Duration::from_millis(250)),
            &crate::api::gravitex::PROVIDER.timing,
        );
        for _ in 0..5 {
            assert_eq!(p.next_wait(), Duration::from_millis(250));
        }
    }

    #[test]
    fn a_query_without_news_is_retried_after_the_same_interval_or_its_retry_after() {
        let timing = &crate::api::gravitex::PROVIDER.timing;
        let mut p = PollSchedule::new(None, timing);
        p.next_nominal();
        assert_eq!(p.next_nominal(), Duration::from_millis(7500));
        // Refused twice: the 7.5 s interval again, not 11.25 s plus jitter.
        assert_eq!(
            p.retry(&AfterQuery::Wait(Duration::ZERO)),
            Duration::from_millis(7500)
        );
        assert_eq!(p.retry(&AfterQuery::Continue), Duration::from_millis(7500));
        assert_eq!(
            p.retry(&AfterQuery::Wait(Duration::from_secs(9))),
            Duration::from_secs(9)
        );
        assert_eq!(p.next_nominal(), Duration::from_millis(11250));

        let fixed = PollSchedule::new(Some(Duration::from_millis(500)), timing);
        assert_eq!(
            fixed.retry(&AfterQuery::Wait(Duration::ZERO)),
            Duration::from_millis(500)
        );
        assert_eq!(
            fixed.retry(&AfterQuery::Wait(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_fixed_interval_has_a_floor() {
        let mut p = PollSchedule::new(Some(Duration::ZERO), &crate::api::gravitex::PROVIDER.timing);
        assert_eq!(p.next_wait(), MIN_POLL);
    }
}
