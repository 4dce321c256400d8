//! The request budget: every task's polls (and on DashScope every submit too) share one rate.
//!
//! Providers limit requests per account, not per task, so a run of 1,000 tasks must not poll
//! 1,000 times as often as a run of one. Each request reserves the next free slot on one timeline
//! with slots `1/rate` apart (plus 2 %): requests leave first come, first served, and when many
//! tasks are in flight each task's interval stretches to what the budget allows instead of the
//! budget being exceeded. A timer that fires late would let two slots leave together, so a
//! request also waits until the `rate`-th request before it left more than a second (plus 5 %)
//! ago: the provider's clock never sees one extra in a second.
//!
//! The rate adapts to 429s, counted per one-second window of answers. Random refusals (a
//! gateway refusing one query in five whatever the rate) must not shrink it, a limit must: so a
//! window whose refused share is above the share known to be noise ([`NOISE_MARGIN`]) lowers
//! the rate to what the provider let through (by a tenth at least, by half at most), and the
//! window after the next (the one between still holds answers to requests sent at the old rate)
//! tells which it was. If the share fell by half, or as many got through as before, the
//! refusals tracked the rate and the lower rate stays; if not, they were noise: the old rate
//! comes back and that share is remembered as noise. A window refused no more than the noise
//! (none, while no noise is known) raises the rate by a tenth, up to the ceiling (`[run]
//! queries_per_second` or the provider's). A refused query itself costs its task one poll
//! interval (or its `Retry-After`), nothing more: queries are free and idempotent.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The window in which at most `rate` requests leave: a second with room for a late timer.
const WINDOW: Duration = Duration::from_millis(1050);
/// How long answers are counted before the rate is judged.
const JUDGE_EVERY: Duration = Duration::from_secs(1);
/// Answers a window needs before its refused share says anything.
const MIN_ANSWERS: u32 = 5;
/// How far above the known noise a window's refused share must be to lower the rate.
pub const NOISE_MARGIN: f64 = 0.1;
/// The rate never drops below this.
const FLOOR: f64 = 1.0;

#[derive(Debug)]
pub struct QueryBudget {
    ceiling: f64,
    state: Mutex<State>,
    refused: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug)]
struct State {
    rate: f64,
    next: Option<Instant>,
    /// When the last `rate` requests actually left.
    sent: VecDeque<Instant>,
    window: Window,
    /// The rate before the last decrease, the refused share that caused it and the rate let
    /// through then, until a later window tells whether the refusals tracked the rate.
    lowered: Option<(f64, f64, f64)>,
    /// A refused share that proved not to follow the rate.
    noise: f64,
    /// The rate just changed: the next window still holds answers sent at the old one.
    settling: bool,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Option<Instant>,
    answers: u32,
    refused: u32,
}

/// What a closed window did to the rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    Lowered {
        to: f64,
        refused: u32,
        answers: u32,
    },
    /// The refusals did not follow the rate: it is back.
    Restored {
        to: f64,
        noise: f64,
    },
    Raised {
        to: f64,
    },
}

impl QueryBudget {
    /// `qps` requests per second at most (0 is taken as 1).
    pub fn new(qps: u32) -> QueryBudget {
        let ceiling = f64::from(qps.max(1));
        QueryBudget {
            ceiling,
            state: Mutex::new(State {
                rate: ceiling,
                next: None,
                sent: VecDeque::new(),
                window: Window {
                    start: None,
                    answers: 0,
                    refused: 0,
                },
                lowered: None,
                noise: 0.0,
                settling: false,
            }),
            refused: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ceiling: the configured or the provider's rate.
    pub fn qps(&self) -> u32 {
        self.ceiling as u32
    }

    /// The rate now, after adapting to 429s.
    pub fn rate(&self) -> f64 {
        self.state().rate
    }

    /// Requests answered 429 so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Queries answered with a server or transport error so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// A query failed for another reason than a 429 (5xx, transport).
    pub fn on_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Reserves the next slot at or after `now` and returns it.
    pub fn reserve(&self, now: Instant) -> Instant {
        let mut s = self.state();
        let spacing = Duration::from_secs_f64(1.02 / s.rate);
        let slot = s.next.map_or(now, |n| n.max(now));
        s.next = Some(slot + spacing);
        slot
    }

    /// Records a request leaving at `now` unless `rate` others left within the window before
    /// it; then returns when it may leave instead.
    pub fn admit(&self, now: Instant) -> Result<(), Instant> {
        let mut s = self.state();
        let allowed = (s.rate.floor() as usize).max(1);
        while s
            .sent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= WINDOW)
        {
            s.sent.pop_front();
        }
        match s.sent.front() {
            Some(&first) if s.sent.len() >= allowed => Err(first + WINDOW),
            _ => {
                s.sent.push_back(now);
                Ok(())
            }
        }
    }

    /// Waits for this request's slot, and for room in the window.
    pub async fn acquire(&self) {
        let slot = self.reserve(Instant::now());
        tokio::time::sleep_until(slot.into()).await;
        while let Err(at) = self.admit(Instant::now()) {
            tokio::time::sleep_until(at.into()).await;
        }
    }

    /// Waits only for room in the window, ahead of the requests queued on the timeline: a
    /// submit (DashScope) must not wait behind every task's next poll.
    pub async fn acquire_first(&self) {
        while let Err(at) = self.admit(Instant::now()) {
            tokio::time::sleep_until(at.into()).await;
        }
    }

    /// Counts an answer at `now` (`refused`: a 429); returns what judging the window that
    /// closed with it did to the rate.
    pub fn on_answer(&self, now: Instant, refused: bool) -> Option<Change> {
        if refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        let mut s = self.state();
        let start = *s.window.start.get_or_insert(now);
        let change = if now.duration_since(start) >= JUDGE_EVERY {
            let change = s.judge(now.duration_since(start), self.ceiling);
            s.window = Window {
                start: Some(now),
                answers: 0,
                refused: 0,
            };
            change
        } else {
            None
        };
        s.window.answers += 1;
        s.window.refused += u32::from(refused);
        change
    }

    /// How often each of `tasks` polling tasks is queried when each would like `nominal`.
    pub fn effective_interval(&self, tasks: usize, nominal: Duration) -> Duration {
        let tasks = u32::try_from(tasks).unwrap_or(u32::MAX);
        let spacing = Duration::from_secs_f64(1.02 / self.rate());
        nominal.max(spacing.saturating_mul(tasks))
    }
}

impl State {
    /// Judges the window that lasted `span`.
    fn judge(&mut self, span: Duration, ceiling: f64) -> Option<Change> {
        let Window {
            answers, refused, ..
        } = self.window;
        if answers < MIN_ANSWERS || std::mem::take(&mut self.settling) {
            return None;
        }
        let share = f64::from(refused) / f64::from(answers);
        let let_through = f64::from(answers - refused) / span.as_secs_f64().max(1.0);
        // A limit lets through as many at the lower rate; random refusals fewer, in proportion.
        if let Some((before, cause, through)) = self.lowered.take()
            && share >= 0.5 * cause
            && let_through < 0.9 * through
        {
            self.rate = before;
            self.settling = true;
            self.noise = self.noise.max((share + cause) / 2.0).min(0.9);
            return Some(Change::Restored {
                to: before,
                noise: self.noise,
            });
        }
        if refused >= 2 && share > self.noise + NOISE_MARGIN {
            let to = let_through
                .max(self.rate * 0.5)
                .min(self.rate * 0.9)
                .max(FLOOR);
            self.lowered = Some((self.rate, share, let_through));
            self.rate = to;
            self.settling = true;
            return Some(Change::Lowered {
                to,
                refused,
                answers,
            });
        }
        if share <= self.noise && self.rate < ceiling {
            self.rate = (self.rate * 1.1).max(self.rate + 1.0).min(ceiling);
            return Some(Change::Raised { to: self.rate });
        }
        None
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

    /// Sends at the budget's rate (at most `demand` a second) for `seconds` from `t`, answered
    /// by a provider that refuses past `limit` requests in a calendar second or, at random,
    /// with probability `p`; returns the time after.
    fn drive(
        budget: &QueryBudget,
        mut t: Instant,
        seconds: u32,
        demand: f64,
        limit: u32,
        p: f64,
        rng: &mut fastrand::Rng,
    ) -> Instant {
        let end = t + Duration::from_secs(u64::from(seconds));
        let (mut second, mut in_second) = (Duration::ZERO, 0);
        let origin = t;
        while t < end {
            let now_second = Duration::from_secs(t.duration_since(origin).as_secs());
            if now_second != second {
                (second, in_second) = (now_second, 0);
            }
            in_second += 1;
            let refused = in_second > limit || rng.f64() < p;
            budget.on_answer(t, refused);
            t += Duration::from_secs_f64(1.0 / budget.rate().min(demand));
        }
        t
    }

    #[test]
    fn a_rate_limit_lowers_the_rate_to_what_it_lets_through_and_keeps_it_there() {
        let budget = QueryBudget::new(50);
        let mut rng = fastrand::Rng::with_seed(1);
        let t = drive(&budget, Instant::now(), 20, 200.0, 20, 0.0, &mut rng);
        let rate = budget.rate();
        assert!((19.0..=24.0).contains(&rate), "{rate}");
        let refused_before = budget.refused();
        drive(&budget, t, 30, 200.0, 20, 0.0, &mut rng);
        let refused_share = (budget.refused() - refused_before) as f64 / (30.0 * rate);
        assert!(
            refused_share <= NOISE_MARGIN + 0.03,
            "{refused_share} of queries refused at a steady {}/s",
            budget.rate()
        );
    }

    #[test]
    fn random_refusals_at_any_rate_keep_the_rate() {
        let budget = QueryBudget::new(50);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut t = Instant::now();
        let (mut lowest, mut dipped) = (f64::MAX, 0);
        for _ in 0..120 {
            t = drive(&budget, t, 1, 20.0, u32::MAX, 0.2, &mut rng);
            lowest = lowest.min(budget.rate());
            dipped += u32::from(budget.rate() < 20.0);
        }
        assert!(
            budget.rate() >= 20.0,
            "one query in five refused at random brought the rate to {}",
            budget.rate()
        );
        // A share well above the noise so far is tried lower for two seconds, then restored.
        assert!(lowest >= 10.0, "{lowest}");
        assert!(dipped <= 12, "below the demand {dipped} of 120 s");
        assert!(budget.refused() > 300, "refusals are counted");
    }

    #[test]
    fn a_lowered_rate_climbs_back_once_the_refusals_stop() {
        let budget = QueryBudget::new(40);
        let mut rng = fastrand::Rng::with_seed(3);
        let t = drive(&budget, Instant::now(), 10, 100.0, 10, 0.0, &mut rng);
        assert!(budget.rate() <= 12.0, "{}", budget.rate());
        drive(&budget, t, 30, 100.0, u32::MAX, 0.0, &mut rng);
        assert_eq!(budget.rate(), 40.0);
    }

    #[test]
    fn too_few_answers_say_nothing() {
        let budget = QueryBudget::new(10);
        let t = Instant::now();
        for i in 0..30 {
            budget.on_answer(t + Duration::from_millis(400) * i, true);
        }
        assert_eq!(budget.rate(), 10.0);
        assert_eq!(budget.refused(), 30);
    }
}
