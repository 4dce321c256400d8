//! Exponential waits with jitter, for 429s, 5xx retries and flaky downloads.
//!
//! Jitter keeps many shots that were refused together from coming back together. The schedule
//! is the provider's own (2 s doubling to 60 s) and does not follow `--poll`: a fast poll for the
//! simulator must never turn a 429 storm into thousands of POSTs a second.
//!
//! Two draws under one step. [`Backoff::wait`] stays near the step (±20 %): a 5xx retry counts
//! towards giving up after about two minutes, and a storm pauses every submit. [`Backoff::spread`]
//! draws anywhere from a tenth of the step to the step ("full jitter"): a shot refused by rate or
//! at random spreads its retry over the whole step, and the last shot of a run, refused with slots
//! free and nothing else to send, does not hold the run for a whole 2 s.

use std::time::Duration;

/// `base × 2^n`, capped, then scaled by a random factor in [0.8, 1.2].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The provider's defaults: 2 s growing to 60 s.
    pub const PROVIDER: Backoff = Backoff {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(60),
    };

    /// The wait before retry number `n` (0-based), without jitter.
    pub fn nominal(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.min(20));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry number `n`, with jitter.
    pub fn wait(&self, n: u32) -> Duration {
        jitter(self.nominal(n), 0.2)
    }

    /// The wait before retry number `n`, drawn uniformly from a tenth of the step to the step.
    pub fn spread(&self, n: u32) -> Duration {
        self.nominal(n).mul_f64(0.1 + 0.9 * fastrand::f64())
    }
}

/// `d` scaled by a random factor in `[1 - frac, 1 + frac]`.
pub fn jitter(d: Duration, frac: f64) -> Duration {
    d.mul_f64(1.0 - frac + 2.0 * frac * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_from_two_seconds_to_a_minute() {
        let b = Backoff::PROVIDER;
        assert_eq!(b.nominal(0), Duration::from_secs(2));
        assert_eq!(b.nominal(1), Duration::from_secs(4));
        assert_eq!(b.nominal(4), Duration::from_secs(32));
        assert_eq!(b.nominal(5), Duration::from_secs(60));
        assert_eq!(b.nominal(1000), Duration::from_secs(60));
    }

    #[test]
    fn spread_covers_a_tenth_of_the_step_to_the_step() {
        let b = Backoff::PROVIDER;
        let waits: Vec<Duration> = (0..2000).map(|_| b.spread(0)).collect();
        assert!(waits.iter().all(|w| *w >= Duration::from_millis(200)));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(2)));
        let short = waits
            .iter()
            .filter(|w| **w < Duration::from_millis(600))
            .count();
        let long = waits
            .iter()
            .filter(|w| **w > Duration::from_millis(1600))
            .count();
        // Each band is two ninths of the range: about 444 of 2000.
        assert!((300..600).contains(&short), "{short} below 0.6 s");
        assert!((300..600).contains(&long), "{long} above 1.6 s");
        assert!(b.spread(30) <= Duration::from_secs(60));
        assert!(b.spread(30) >= Duration::from_secs(6));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for n in 0..50 {
            let w = Backoff::PROVIDER.wait(n % 4);
            let nominal = Backoff::PROVIDER.nominal(n % 4);
            assert!(
                w >= nominal.mul_f64(0.8) && w <= nominal.mul_f64(1.2),
                "{w:?}"
            );
        }
    }
}
