//! How many tasks may be in flight right now, and when the next submit may leave.
//!
//! A 429 means the provider holds fewer tasks for us than `-j`: the effective bound drops to
//! what was in flight when it said so, submits pause for the wait, and the bound creeps back up
//! by about one per bound's worth of accepted submits (additive increase, multiplicative-ish
//! decrease), never past `-j`.

use std::time::{Duration, Instant};

use super::backoff::Backoff;

#[derive(Debug, Clone)]
pub struct Limiter {
    max: usize,
    limit: f64,
    backoff: Backoff,
    consecutive_429: u32,
    paused_until: Option<Instant>,
    spacing: Option<Duration>,
    last_submit: Option<Instant>,
}

impl Limiter {
    /// `max` from `-j`; `submits_per_minute` spaces submits evenly when set.
    pub fn new(max: usize, backoff: Backoff, submits_per_minute: Option<u32>) -> Limiter {
        let max = max.max(1);
        Limiter {
            max,
            limit: max as f64,
            backoff,
            consecutive_429: 0,
            paused_until: None,
            spacing: submits_per_minute
                .filter(|&n| n > 0)
                .map(|n| Duration::from_secs(60) / n),
            last_submit: None,
        }
    }

    /// The effective bound on tasks in flight.
    pub fn limit(&self) -> usize {
        (self.limit.floor() as usize).clamp(1, self.max)
    }

    /// The earliest time the next submit may leave; `None` means now.
    pub fn next_submit_at(&self) -> Option<Instant> {
        let spaced = match (self.spacing, self.last_submit) {
            (Some(s), Some(last)) => Some(last + s),
            _ => None,
        };
        match (self.paused_until, spaced) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn may_submit(&self, now: Instant) -> bool {
        self.next_submit_at().is_none_or(|t| t <= now)
    }

    pub fn on_submit(&mut self, now: Instant) {
        self.last_submit = Some(now);
    }

    /// A 429 arrived while `others_in_flight` other tasks were in flight; returns the pause.
    pub fn on_rate_limited(
        &mut self,
        others_in_flight: usize,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Duration {
        self.limit = self.limit.min(others_in_flight.max(1) as f64);
        let wait = retry_after.unwrap_or_else(|| self.backoff.wait(self.consecutive_429));
        self.consecutive_429 = self.consecutive_429.saturating_add(1);
        let until = now + wait;
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        wait
    }

    /// A submit was accepted: the bound grows back slowly.
    pub fn on_accepted(&mut self) {
        self.consecutive_429 = 0;
        self.limit = (self.limit + 1.0 / self.limit.max(1.0)).min(self.max as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: usize) -> Limiter {
        Limiter::new(
            max,
            Backoff {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(60),
            },
            None,
        )
    }

    #[test]
    fn a_429_lowers_the_bound_to_what_was_in_flight_and_pauses() {
        let mut l = limiter(8);
        let now = Instant::now();
        let wait = l.on_rate_limited(3, None, now);
        assert_eq!(l.limit(), 3);
        assert!(wait >= Duration::from_millis(1600) && wait <= Duration::from_millis(2400));
        assert!(!l.may_submit(now));
        assert!(l.may_submit(now + wait));
    }

    #[test]
    fn retry_after_is_honoured_and_backoff_grows() {
        let mut l = limiter(8);
        let now = Instant::now();
        assert_eq!(
            l.on_rate_limited(2, Some(Duration::from_secs(7)), now),
            Duration::from_secs(7)
        );
        let second = l.on_rate_limited(2, None, now);
        assert!(second >= Duration::from_millis(3200), "{second:?}");
    }

    #[test]
    fn the_bound_recovers_slowly_and_never_passes_max() {
        let mut l = limiter(4);
        l.on_rate_limited(0, None, Instant::now());
        assert_eq!(l.limit(), 1);
        l.on_accepted();
        assert_eq!(l.limit(), 2);
        l.on_accepted();
        assert_eq!(l.limit(), 2);
        for _ in 0..100 {
            l.on_accepted();
        }
        assert_eq!(l.limit(), 4);
    }

    #[test]
    fn submits_per_minute_spaces_submits() {
        let mut l = Limiter::new(4, Backoff::PROVIDER, Some(120));
        let now = Instant::now();
        assert!(l.may_submit(now));
        l.on_submit(now);
        assert!(!l.may_submit(now + Duration::from_millis(400)));
        assert!(l.may_submit(now + Duration::from_millis(500)));
    }
}
