//! How many tasks may be in flight right now, when the next submit may leave, and how long a
//! refused shot waits. Pure decisions over the answers seen; no clock of its own, no I/O.
//!
//! A 429 means one of two things. A provider that caps tasks in flight keeps refusing at the
//! same level while it accepts only below it; one that refuses at random or by request rate
//! accepts at that level too. So a refusal while `n > 0` tasks are confirmed in flight makes `n`
//! a suspect level; an accept at that level or above clears it. The [`CAP_REFUSALS`]-th refusal
//! at or above an uncleared suspect level, and every one after it, is a concurrency refusal (one
//! below the level counts too, and lowers it: an accept may still be on its way); any other is
//! a rate refusal (nothing in flight cannot be a concurrency cap). Two are not enough:
//! at hundreds in flight the confirmed count wanders around the suspect level, so a random
//! refusal rate `p` would confirm a false cap at `p` of the suspects, three only at `p²`. Only
//! a concurrency refusal lowers the bound (to `n`, at least 1); every accept while the bound is
//! full (submits on the wire count) raises it by one, so it recovers within a few submits and a
//! cap is probed again, never past `-j`.
//!
//! A shot refused for concurrency waits for a free slot; one refused by rate or at random waits
//! its own backoff (a step of 2 s doubling to 60 s with refusals in a row, the wait drawn from a
//! tenth of the step to the step) but is released early as soon as another submit
//! is accepted: the provider is taking work again. `Retry-After` is honoured as the earliest
//! retry of the refused shot. All submits pause only in a storm ([`STORM`] rate refusals in a row
//! with no accept), for the backoff schedule or `Retry-After`, whichever is longer; concurrency
//! refusals need no pause, the bound already holds submits back.

use std::time::{Duration, Instant};

use super::backoff::Backoff;

/// Refusals in a row, with no accept between, that pause every submit.
pub const STORM: u32 = 4;

/// Refusals at or above a suspect level, with no accept there between, that prove a cap.
pub const CAP_REFUSALS: u32 = 3;

/// What a 429 said about the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It holds no more tasks for us: the bound drops.
    Concurrency,
    /// At random or past a request rate: the bound stays, the shot backs off.
    Rate,
}

/// When a refused shot goes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShotWait {
    /// Never before this (`Retry-After`).
    pub earliest: Duration,
    /// At the latest after this; sooner when another submit is accepted (not before `earliest`).
    pub latest: Duration,
}

#[derive(Debug, Clone)]
pub struct Limiter {
    max: usize,
    bound: usize,
    /// The lowest level refused and not cleared by an accept at or above it since, and how
    /// many refusals came at or above it.
    suspect: Option<(usize, u32)>,
    refused_in_row: u32,
    storms: u32,
    backoff: Backoff,
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
            bound: max,
            suspect: None,
            refused_in_row: 0,
            storms: 0,
            backoff,
            paused_until: None,
            spacing: submits_per_minute
                .filter(|&n| n > 0)
                .map(|n| Duration::from_secs(60) / n),
            last_submit: None,
        }
    }

    /// The effective bound on tasks in flight.
    pub fn limit(&self) -> usize {
        self.bound
    }

    /// The earliest time the next submit may leave; `None` means now.
    pub fn next_submit_at(&self) -> Option<Instant> {
        let spaced = self.spacing.zip(self.last_submit).map(|(s, last)| last + s);
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

    /// A submit was accepted while `held` other tasks were confirmed in flight; `in_flight`
    /// counts what the bound holds now (confirmed and on the wire, this one included).
    pub fn on_accepted(&mut self, held: usize, in_flight: usize) {
        self.refused_in_row = 0;
        self.storms = 0;
        if self.suspect.is_some_and(|(s, _)| s <= held) {
            self.suspect = None;
        }
        if in_flight.max(held + 1) >= self.bound {
            self.bound = (self.bound + 1).min(self.max);
        }
    }

    /// A submit was refused (429) while `held` tasks were confirmed in flight.
    pub fn on_rate_limited(
        &mut self,
        held: usize,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Refusal {
        if held > 0 {
            self.suspect = Some(match self.suspect {
                Some((s, n)) if held + 1 >= s => (s.min(held), n.saturating_add(1)),
                _ => (held, 1),
            });
        }
        if held > 0 && self.suspect.is_some_and(|(_, n)| n >= CAP_REFUSALS) {
            self.bound = self.bound.min(held).max(1);
            return Refusal::Concurrency;
        }
        self.refused_in_row = self.refused_in_row.saturating_add(1);
        let paused = self.paused_until.is_some_and(|p| p > now);
        if self.refused_in_row >= STORM && !paused {
            let wait = self
                .backoff
                .wait(self.storms)
                .max(retry_after.unwrap_or_default());
            self.storms = self.storms.saturating_add(1);
            self.paused_until = Some(now + wait);
        }
        Refusal::Rate
    }

    /// How long a shot refused for the `refusals`-th time waits, after [`Limiter::on_rate_limited`]
    /// counted the refusal. Its backoff step counts only the refusals the provider gave in a row,
    /// with no accept between: one since its last refusal shows the provider takes work, so the
    /// shot starts again from the first step. Counted over the shot's whole life, three unlucky
    /// draws among accepts sent the last shot of a run to the 8 s step, all other slots idle.
    pub fn shot_wait(
        &self,
        kind: Refusal,
        refusals: u32,
        retry_after: Option<Duration>,
    ) -> ShotWait {
        let earliest = retry_after.unwrap_or_default();
        let latest = match kind {
            Refusal::Concurrency => earliest,
            Refusal::Rate => retry_after.unwrap_or_else(|| {
                let step = refusals.min(self.refused_in_row).saturating_sub(1);
                self.backoff.spread(step)
            }),
        };
        ShotWait { earliest, latest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: usize) -> Limiter {
        Limiter::new(max, Backoff::PROVIDER, None)
    }

    #[test]
    fn refusals_at_a_level_never_accepted_lower_the_bound_to_it() {
        let mut l = limiter(10);
        let now = Instant::now();
        for held in 0..6 {
            l.on_accepted(held, held + 1);
        }
        assert_eq!(
            l.on_rate_limited(6, None, now),
            Refusal::Rate,
            "one refusal proves nothing"
        );
        assert_eq!(l.on_rate_limited(7, None, now), Refusal::Rate, "nor do two");
        assert_eq!(l.limit(), 10);
        assert_eq!(l.on_rate_limited(7, None, now), Refusal::Concurrency);
        assert_eq!(l.limit(), 7);
        for _ in 0..STORM + 2 {
            assert_eq!(l.on_rate_limited(6, None, now), Refusal::Concurrency);
        }
        assert_eq!(l.limit(), 6);
        assert!(l.may_submit(now), "concurrency refusals pause nothing");
        l.on_accepted(5, 6);
        assert_eq!(l.limit(), 7, "probe one more");
        assert_eq!(l.on_rate_limited(6, None, now), Refusal::Concurrency);
        assert_eq!(l.limit(), 6);
    }

    #[test]
    fn an_accept_at_the_bound_raises_it_by_one_up_to_max() {
        let mut l = limiter(8);
        l.on_accepted(2, 3);
        for _ in 0..CAP_REFUSALS {
            l.on_rate_limited(3, None, Instant::now());
        }
        assert_eq!(l.limit(), 3);
        l.on_accepted(1, 2);
        assert_eq!(
            l.limit(),
            3,
            "an accept below the bound says nothing about it"
        );
        l.on_accepted(2, 3);
        assert_eq!(l.limit(), 4, "the bound was full: probe one more");
        l.on_accepted(1, 4);
        assert_eq!(l.limit(), 5, "submits on the wire fill the bound too");
        for held in 3..20 {
            l.on_accepted(held, held + 1);
        }
        assert_eq!(l.limit(), 8);
    }

    #[test]
    fn random_refusals_among_accepts_at_the_same_level_keep_the_bound() {
        let mut l = limiter(10);
        let now = Instant::now();
        // A random 429 at every fifth answer, at levels going up and down, with accepts between.
        for round in 0..50 {
            for held in [3 + round % 7, 9, 4, 6] {
                l.on_accepted(held, held + 1);
            }
            let held = 5 + round % 5;
            assert_eq!(l.on_rate_limited(held, None, now), Refusal::Rate);
            assert_eq!(l.limit(), 10);
        }
        assert!(l.may_submit(now));
    }

    #[test]
    fn a_level_wandering_back_to_a_refusal_proves_no_cap() {
        let mut l = limiter(512);
        let now = Instant::now();
        // Hundreds in flight: refused at 300, the count drifts down and climbs back through
        // accepts below 300, and the next random refusal lands at 300 again.
        for _ in 0..20 {
            assert_eq!(l.on_rate_limited(300, None, now), Refusal::Rate);
            for held in (280..300).rev().chain(280..300) {
                l.on_accepted(held, held + 100);
            }
            assert_eq!(l.on_rate_limited(300, None, now), Refusal::Rate);
            l.on_accepted(300, 400);
        }
        assert_eq!(l.limit(), 512);
    }

    #[test]
    fn a_refusal_one_below_the_level_counts_towards_the_cap() {
        let mut l = limiter(10);
        let now = Instant::now();
        l.on_accepted(5, 6);
        assert_eq!(l.on_rate_limited(6, None, now), Refusal::Rate);
        assert_eq!(l.on_rate_limited(5, None, now), Refusal::Rate);
        assert_eq!(l.on_rate_limited(6, None, now), Refusal::Concurrency);
        assert_eq!(l.limit(), 6);
        let mut l = limiter(10);
        l.on_accepted(5, 6);
        l.on_rate_limited(6, None, now);
        l.on_rate_limited(4, None, now);
        assert_eq!(
            l.on_rate_limited(6, None, now),
            Refusal::Rate,
            "two below starts again"
        );
    }

    #[test]
    fn a_third_refusal_without_an_accept_at_that_level_is_a_concurrency_refusal() {
        let mut l = limiter(10);
        let now = Instant::now();
        l.on_accepted(9, 10);
        assert_eq!(l.on_rate_limited(7, None, now), Refusal::Rate);
        l.on_accepted(6, 7);
        assert_eq!(
            l.on_rate_limited(5, None, now),
            Refusal::Rate,
            "below the suspect: it starts again there"
        );
        l.on_accepted(4, 5);
        assert_eq!(l.on_rate_limited(7, None, now), Refusal::Rate);
        l.on_accepted(4, 5);
        assert_eq!(l.on_rate_limited(6, None, now), Refusal::Concurrency);
        assert_eq!(l.limit(), 6);
        l.on_accepted(5, 6);
        assert_eq!(l.limit(), 7);
    }

    #[test]
    fn nothing_in_flight_is_never_a_concurrency_cap() {
        let mut l = limiter(4);
        assert_eq!(l.on_rate_limited(0, None, Instant::now()), Refusal::Rate);
        assert_eq!(l.limit(), 4);
    }

    #[test]
    fn a_storm_pauses_every_submit_on_the_backoff_schedule() {
        let mut l = limiter(4);
        let now = Instant::now();
        for _ in 0..STORM - 1 {
            l.on_rate_limited(0, None, now);
            assert!(l.may_submit(now));
        }
        l.on_rate_limited(0, None, now);
        assert!(!l.may_submit(now));
        let first = l.next_submit_at().unwrap() - now;
        assert!(first >= Duration::from_millis(1600) && first <= Duration::from_millis(2400));
        // Refusals of submits already on the wire do not stretch the pause.
        l.on_rate_limited(0, None, now + Duration::from_millis(100));
        assert_eq!(l.next_submit_at().unwrap() - now, first);
        let later = now + first;
        l.on_rate_limited(0, None, later);
        let second = l.next_submit_at().unwrap() - later;
        assert!(second >= Duration::from_millis(3200), "{second:?}");
        l.on_accepted(0, 1);
        for _ in 0..STORM - 1 {
            l.on_rate_limited(0, None, later + second);
        }
        assert!(l.may_submit(later + second), "an accept ends the storm");
    }

    #[test]
    fn a_storm_pause_honours_a_longer_retry_after() {
        let mut l = limiter(4);
        let now = Instant::now();
        for _ in 0..STORM {
            l.on_rate_limited(0, Some(Duration::from_secs(30)), now);
        }
        assert_eq!(l.next_submit_at(), Some(now + Duration::from_secs(30)));
    }

    #[test]
    fn refused_shots_wait_by_kind_and_honour_retry_after() {
        let mut l = limiter(4);
        let conc = l.shot_wait(Refusal::Concurrency, 3, None);
        assert_eq!(
            conc.latest,
            Duration::ZERO,
            "the bound gates it, not a timer"
        );
        let rate = l.shot_wait(Refusal::Rate, 1, None);
        assert_eq!(rate.earliest, Duration::ZERO, "released early by an accept");
        assert!(
            rate.latest >= Duration::from_millis(200) && rate.latest <= Duration::from_secs(2),
            "{rate:?}"
        );
        for _ in 0..3 {
            l.on_rate_limited(0, None, Instant::now());
        }
        let third = l.shot_wait(Refusal::Rate, 3, None);
        assert!(
            third.latest >= Duration::from_millis(800) && third.latest <= Duration::from_secs(8),
            "{third:?}"
        );
        for _ in 0..40 {
            l.on_rate_limited(0, None, Instant::now());
        }
        let capped = l.shot_wait(Refusal::Rate, 40, None);
        assert!(capped.latest <= Duration::from_secs(60), "{capped:?}");
        let told = l.shot_wait(Refusal::Rate, 2, Some(Duration::from_secs(7)));
        assert_eq!(
            told,
            ShotWait {
                earliest: Duration::from_secs(7),
                latest: Duration::from_secs(7)
            }
        );
    }

    #[test]
    fn a_shots_step_counts_only_refusals_with_no_accept_between() {
        let mut l = limiter(4);
        let now = Instant::now();
        let first_step = |w: ShotWait| w.latest <= Duration::from_secs(2);
        // Refused three times, another submit accepted after each: the first step every time.
        for refusals in 1..=3 {
            assert_eq!(l.on_rate_limited(0, None, now), Refusal::Rate);
            let wait = l.shot_wait(Refusal::Rate, refusals, None);
            assert!(first_step(wait), "refusal {refusals}: {wait:?}");
            l.on_accepted(0, 1);
        }
        // Refused again with nothing accepted since: the steps grow.
        for (refusals, step) in [(4, 0), (5, 1), (6, 2)] {
            l.on_rate_limited(0, None, now);
            let wait = l.shot_wait(Refusal::Rate, refusals, None).latest;
            let nominal = Backoff::PROVIDER.nominal(step);
            assert!(
                wait >= nominal / 10 && wait <= nominal,
                "refusal {refusals}: {wait:?}"
            );
        }
        // Other shots refused in a row do not push a shot refused for the first time past the
        // first step.
        assert!(first_step(l.shot_wait(Refusal::Rate, 1, None)));
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
