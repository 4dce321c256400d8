//! When to query a task next: the provider's first interval (5 s on GravitexAI), then ×1.5 up
//! to its maximum (15 s) with ±20 % jitter, or a fixed interval.
//!
//! The gateway refreshes task state about as often as the maximum, so polling faster gains
//! nothing. A fixed interval is never below [`MIN_POLL`]. The jitter moves each query by up to
//! ±20 % of its interval around the nominal time (5, 12.5, 23.75, 38.75 s… by default) and does
//! not accumulate, so tasks submitted together spread out while a 60 s task still costs exactly
//! six queries. A refused query (429) says nothing about the task, which may be done: it is
//! retried a quarter of the interval later (or after its `Retry-After`), and the query after
//! the retry's answer keeps to the time the refused one's successor was due, so random refusals
//! cost a task a fraction of an interval and do not shift its polls. A failed query (5xx,
//! transport) is retried after the interval it waited. Neither grows the schedule.

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
    /// Waited in quick retries of refused queries since the last answer with news.
    retried: Duration,
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
            retried: Duration::ZERO,
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
    /// the answer asked for it ([`AfterQuery::Wait`]); after quick retries of a refused query,
    /// what is left of the interval since the refused one, unless the retry came within a
    /// retry's wait of the time it was due, when it counts as that query.
    pub fn after(&mut self, answer: &AfterQuery) -> Duration {
        let at_least = match answer {
            AfterQuery::Wait(d) => *d,
            _ => Duration::ZERO,
        };
        let d = self.next_wait();
        let retried = std::mem::take(&mut self.retried);
        let d = if retried + self.soon() < d {
            d - retried
        } else {
            d
        };
        d.max(at_least)
    }

    /// The wait before retrying a query that brought no news: a quarter of the interval (at
    /// least [`MIN_POLL`]) after a 429, the interval it waited after a failure (5xx,
    /// transport), or the answer's `Retry-After` when longer; the schedule does not advance.
    pub fn retry(&mut self, answer: &AfterQuery, refused: bool) -> Duration {
        let at_least = match answer {
            AfterQuery::Wait(d) => *d,
            _ => Duration::ZERO,
        };
        if refused {
            let wait = self.soon().max(at_least);
            self.retried += wait;
            wait
        } else {
            self.interval().max(at_least)
        }
    }

    /// The interval last waited.
    fn interval(&self) -> Duration {
        self.fixed.unwrap_or(self.last)
    }

    fn soon(&self) -> Duration {
        (self.interval() / 4).max(MIN_POLL)
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
    fn a_failed_query_is_retried_after_the_same_interval_or_its_retry_after() {
        let timing = &crate::api::gravitex::PROVIDER.timing;
        let mut p = PollSchedule::new(None, timing);
        p.next_nominal();
        assert_eq!(p.next_nominal(), Duration::from_millis(7500));
        // Failed twice: the 7.5 s interval again, not 11.25 s plus jitter.
        assert_eq!(
            p.retry(&AfterQuery::Continue, false),
            Duration::from_millis(7500)
        );
        assert_eq!(
            p.retry(&AfterQuery::Wait(Duration::from_secs(9)), false),
            Duration::from_secs(9)
        );
        assert_eq!(p.next_nominal(), Duration::from_millis(11250));

        let mut fixed = PollSchedule::new(Some(Duration::from_millis(500)), timing);
        assert_eq!(
            fixed.retry(&AfterQuery::Continue, false),
            Duration::from_millis(500)
        );
        assert_eq!(
            fixed.after(&AfterQuery::Continue),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn a_refused_query_is_retried_soon_and_the_polls_keep_their_times() {
        let timing = &crate::api::gravitex::PROVIDER.timing;
        let ms = Duration::from_millis;
        let mut p = PollSchedule::new(Some(ms(500)), timing);
        let refused = AfterQuery::Wait(Duration::ZERO);
        // Refused at 0: retried at 125 ms, and (answered) the next query at 500 ms, not 625.
        assert_eq!(p.retry(&refused, true), ms(125));
        assert_eq!(p.after(&AfterQuery::Continue), ms(375));
        assert_eq!(p.after(&AfterQuery::Continue), ms(500));
        // Refused three times: the third retry (at 375 ms) is within a retry of 500 ms, so it
        // counts as that query and the next is a whole interval later.
        for _ in 0..3 {
            assert_eq!(p.retry(&refused, true), ms(125));
        }
        assert_eq!(p.after(&AfterQuery::Continue), ms(500));
        // A `Retry-After` is honoured, and its wait past the interval starts the grid anew.
        assert_eq!(p.retry(&AfterQuery::Wait(ms(1000)), true), ms(1000));
        assert_eq!(p.after(&AfterQuery::Continue), ms(500));
        // The floor: a quarter of a short interval is still MIN_POLL.
        let mut short = PollSchedule::new(Some(ms(200)), timing);
        assert_eq!(short.retry(&refused, true), MIN_POLL);
        // The growing schedule: a quarter of the interval waited, which does not grow.
        let mut growing = PollSchedule::new(None, timing);
        growing.next_nominal();
        assert_eq!(growing.retry(&refused, true), ms(1250));
        assert_eq!(growing.next_nominal(), ms(7500));
    }

    #[test]
    fn a_fixed_interval_has_a_floor() {
        let mut p = PollSchedule::new(Some(Duration::ZERO), &crate::api::gravitex::PROVIDER.timing);
        assert_eq!(p.next_wait(), MIN_POLL);
    }
}
