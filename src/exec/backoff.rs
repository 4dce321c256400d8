//! Exponential waits with ±20 % jitter, for 429s, 5xx retries and flaky downloads.
//!
//! Jitter keeps many shots that were refused together from coming back together. The schedule
//! is the provider's own (2 s doubling to 60 s) and does not follow `--poll`: a fast poll for the
//! simulator must never turn a 429 storm into thousands of POSTs a second.

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
