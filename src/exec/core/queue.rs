//! The core's two waiting lines, as plain structures (cargo's `DependencyQueue` is the model):
//! shots ready to submit, by priority, and shots waiting out a backoff before they are ready
//! again. Neither knows about shots beyond their index.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Shots ready to submit: the one heading the longest remaining chain first, so long chains
/// start early; then plan order.
#[derive(Debug, Default)]
pub(super) struct ReadyQueue(BinaryHeap<(usize, Reverse<usize>)>);

impl ReadyQueue {
    /// Queues shot `i`, which heads a chain of `chain` shots.
    pub(super) fn push(&mut self, chain: usize, i: usize) {
        self.0.push((chain, Reverse(i)));
    }

    pub(super) fn pop(&mut self) -> Option<usize> {
        self.0.pop().map(|(_, Reverse(i))| i)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Shots refused (429, 5xx) waiting to be sent again.
#[derive(Debug, Default)]
pub(super) struct Delays(Vec<Delayed>);

#[derive(Debug)]
struct Delayed {
    at: Instant,
    /// Refused by rate or a 5xx: may go early once this has passed and another submit is
    /// accepted.
    earliest: Option<Instant>,
    idx: usize,
}

impl Delays {
    /// Shot `i` goes again at `at`, or as soon as `earliest` has passed and a submit is
    /// accepted.
    pub(super) fn push(&mut self, i: usize, at: Instant, earliest: Option<Instant>) {
        self.0.push(Delayed {
            at,
            earliest,
            idx: i,
        });
    }

    /// Takes out the shots due at `now`.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        let mut k = 0;
        while k < self.0.len() {
            if self.0[k].at <= now {
                due.push(self.0.swap_remove(k).idx);
            } else {
                k += 1;
            }
        }
        due
    }

    /// A submit was accepted: the shot whose early release has come and that is due first
    /// becomes due now.
    pub(super) fn release_one(&mut self, now: Instant) {
        let first = (self.0.iter_mut())
            .filter(|d| d.earliest.is_some_and(|e| e <= now))
            .min_by_key(|d| d.at);
        if let Some(d) = first {
            d.at = now;
        }
    }

    /// When the next shot is due.
    pub(super) fn next_at(&self) -> Option<Instant> {
        self.0.iter().map(|d| d.at).min()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_longest_chain_goes_first_then_plan_order() {
        let mut q = ReadyQueue::default();
        for (chain, i) in [(1, 0), (3, 4), (1, 2), (3, 1), (2, 3)] {
            q.push(chain, i);
        }
        let order: Vec<usize> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [1, 4, 3, 0, 2]);
        assert!(q.is_empty());
    }

    #[test]
    fn delays_come_due_at_their_time() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = Delays::default();
        d.push(0, t + 3 * s, None);
        d.push(1, t + s, None);
        d.push(2, t + 2 * s, None);
        assert_eq!(d.next_at(), Some(t + s));
        assert!(d.take_due(t).is_empty());
        let mut due = d.take_due(t + 2 * s);
        due.sort_unstable();
        assert_eq!(due, [1, 2]);
        assert_eq!(d.next_at(), Some(t + 3 * s));
        assert_eq!(d.take_due(t + 3 * s), [0]);
        assert!(d.is_empty());
        assert_eq!(d.next_at(), None);
    }

    #[test]
    fn an_accept_releases_only_the_first_due_whose_early_time_has_come() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = Delays::default();
        d.push(0, t + 9 * s, Some(t));
        d.push(1, t + 5 * s, Some(t + 4 * s));
        d.push(2, t + 7 * s, Some(t));
        d.push(3, t + 2 * s, None);
        d.release_one(t + s);
        assert_eq!(
            d.take_due(t + s),
            [2],
            "1 may not go before t+4, 3 waits its time"
        );
        d.release_one(t + s);
        assert_eq!(d.take_due(t + s), [0]);
        d.release_one(t + s);
        assert!(d.take_due(t + s).is_empty());
    }
}
