//! The reporter: everything a run says about its progress, on stderr. The dispatcher only feeds
//! it counts and job events; the words live here so the progress line, the resume line, the
//! summary and `status` share one vocabulary (the results statuses, plus "in flight" for a
//! task that was submitted and is not finished, so is being paid for).
//!
//! Bars on a terminal, plain periodic lines otherwise (CI logs), nothing but errors with `-q`.
//! The ETA comes from task times observed in this run (submit to finish), so there is none
//! until a task has finished. With `-v` each job event is also a `tracing` line.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustc_hash::FxHashMap;

use super::job::Event;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    Plain,
    Quiet,
}

/// The selected shots by results status; shots outside `--only` are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub succeeded: usize,
    /// Submitted (or being submitted, or downloading) and not finished.
    pub in_flight: usize,
    /// Not sent yet (waiting for upstreams, a slot or a backoff).
    pub pending: usize,
    pub failed: usize,
    pub skipped: usize,
    pub unknown: usize,
    pub expired: usize,
}

impl Counts {
    /// Not settled yet.
    pub fn remaining(&self) -> usize {
        self.in_flight + self.pending
    }

    /// "3/10 succeeded, 2 in flight, 4 pending, 1 failed": zero held counts are left out.
    fn describe(&self) -> String {
        let mut parts = vec![
            format!("{}/{} succeeded", self.succeeded, self.total),
            format!("{} in flight", self.in_flight),
            format!("{} pending", self.pending),
        ];
        parts.extend(self.held_parts());
        parts.join(", ")
    }

    /// "1 failed", "2 skipped", … for the non-zero ones.
    fn held_parts(&self) -> Vec<String> {
        [
            (self.failed, "failed"),
            (self.skipped, "skipped"),
            (self.unknown, "unknown"),
            (self.expired, "expired"),
        ]
        .into_iter()
        .filter(|&(n, _)| n > 0)
        .map(|(n, word)| format!("{n} {word}"))
        .collect()
    }
}

/// What a resumed run found: "found in the journal: 9 succeeded, 4 in flight (polled, not
/// resent), 27 to send"; `None` for a run with nothing behind it.
pub fn resume_line(c: &Counts) -> Option<String> {
    if c.pending == c.total {
        return None;
    }
    let mut parts = vec![format!("{} succeeded", c.succeeded)];
    if c.in_flight > 0 {
        parts.push(format!("{} in flight (polled, not resent)", c.in_flight));
    }
    parts.extend(c.held_parts());
    parts.push(format!("{} to send", c.pending));
    Some(format!("found in the journal: {}", parts.join(", ")))
}

/// The end-of-run lines: the counts, then for held shots the flag that sends them again.
pub fn summary(c: &Counts, results: &std::path::Path) -> String {
    let mut parts = vec![format!("{} succeeded", c.succeeded)];
    if c.in_flight > 0 {
        parts.push(format!(
            "{} in flight (submitted and billed; running again polls them, never resends)",
            c.in_flight
        ));
    }
    if c.pending > 0 {
        parts.push(format!("{} pending (not sent)", c.pending));
    }
    parts.extend(c.held_parts());
    let mut text = format!("{}; results in {}", parts.join(", "), results.display());
    if c.failed + c.expired > 0 {
        let held = Counts {
            skipped: 0,
            unknown: 0,
            ..*c
        };
        text.push_str(&format!(
            "\n{}: held; `--retry-failed` sends them again (the `error` column says why each \
             one stopped)",
            held.held_parts().join(" and ")
        ));
    }
    if c.unknown > 0 {
        text.push_str(&format!(
            "\n{} unknown: held, a task may exist and be billed; see the `error` column, then \
             `--resubmit-unknown` sends them again, or `--attach ID=TASK` names a task the \
             provider's console shows",
            c.unknown
        ));
    }
    if c.skipped > 0 {
        text.push_str(&format!(
            "\n{} skipped: they run once the shots they follow succeed",
            c.skipped
        ));
    }
    text
}

/// Submit-to-finish times observed in this run.
#[derive(Debug, Default)]
struct TaskTimes {
    sent: FxHashMap<usize, Instant>,
    total: Duration,
    finished: u32,
}

impl TaskTimes {
    fn observe(&mut self, event: &Event, now: Instant) {
        match event {
            Event::Submitted { idx, .. } => {
                self.sent.insert(*idx, now);
            }
            Event::Succeeded { idx, .. } | Event::Failed { idx, .. } => {
                if let Some(at) = self.sent.remove(idx) {
                    self.total += now - at;
                    self.finished += 1;
                }
            }
            _ => {}
        }
    }

    /// Mean task time × remaining ÷ the tasks that can run at once; `None` before any finished.
    fn eta(&self, c: &Counts, slots: usize) -> Option<Duration> {
        if self.finished == 0 || c.remaining() == 0 {
            return None;
        }
        let mean = self.total / self.finished;
        let parallel = slots.clamp(1, c.remaining()) as u32;
        Some(mean * c.remaining() as u32 / parallel)
    }
}

/// "1m 10s": whole seconds, at least one.
fn short(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

pub struct Progress {
    view: View,
    started: Instant,
    last_line: Instant,
    every: Duration,
    times: TaskTimes,
}

enum View {
    Bars {
        multi: MultiProgress,
        bar: ProgressBar,
    },
    Plain,
    Quiet,
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Progress {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => None,
            ProgressMode::Auto => Some(ProgressMode::Plain),
            other => Some(other),
        };
        let view = match mode {
            None => {
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template("{bar:30} {msg}  [{elapsed_precise}]")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                View::Bars { multi, bar }
            }
            Some(ProgressMode::Quiet) => View::Quiet,
            Some(_) => View::Plain,
        };
        let now = Instant::now();
        Progress {
            view,
            started: now,
            last_line: now,
            every: Duration::from_secs(10),
            times: TaskTimes::default(),
        }
    }

    /// An informational line (hidden with `-q`).
    pub fn log(&self, line: &str) {
        match &self.view {
            View::Bars { multi, .. } => {
                let _ = multi.println(line);
            }
            View::Plain => eprintln!("{line}"),
            View::Quiet => {}
        }
    }

    /// An error line, shown even with `-q`.
    pub fn error(&self, line: &str) {
        match &self.view {
            View::Bars { multi, .. } => {
                let _ = multi.println(line);
            }
            _ => eprintln!("{line}"),
        }
    }

    /// A job's report about shot `id`: timed for the ETA and, with `-v`, logged.
    pub fn on_event(&mut self, id: &str, event: &Event) {
        self.times.observe(event, Instant::now());
        match event {
            Event::Submitted { task_id, .. } => tracing::info!("submitted {id}: task {task_id}"),
            Event::SubmitError { error, .. } => tracing::info!("submit of {id} refused: {error}"),
            Event::Succeeded { .. } => tracing::info!("task of {id} succeeded"),
            Event::Failed { error, .. } => tracing::info!("task of {id} failed: {error}"),
            Event::GaveUp { error, .. } => tracing::info!("stopped polling {id}: {error}"),
            Event::AuthLost { error, .. } => tracing::info!("polling {id} refused: {error}"),
            Event::Downloaded { done, .. } => {
                tracing::info!("downloaded {id}: {} bytes", done.bytes);
            }
            Event::DownloadError { error, .. } => {
                tracing::info!("download of {id} failed: {error}");
            }
            Event::Reconciled { verdict, .. } => {
                tracing::info!("task list searched for {id}: {verdict:?}");
            }
        }
    }

    /// Refreshes the bar; plain mode prints a line at most every 10 s unless `force`. `slots`
    /// is how many tasks may be in flight now.
    pub fn update(&mut self, c: Counts, slots: usize, force: bool) {
        let mut line = c.describe();
        if let Some(eta) = self.times.eta(&c, slots) {
            line.push_str(&format!(", ETA {}", short(eta)));
        }
        match &self.view {
            View::Bars { bar, .. } => {
                bar.set_length(c.total as u64);
                bar.set_position((c.total - c.remaining()) as u64);
                bar.set_message(line);
            }
            View::Plain => {
                if force || self.last_line.elapsed() >= self.every {
                    self.last_line = Instant::now();
                    eprintln!("[{}] {line}", short(self.started.elapsed()));
                }
            }
            View::Quiet => {}
        }
    }

    pub fn finish(&self) {
        if let View::Bars { bar, .. } = &self.view {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pending: usize, in_flight: usize, succeeded: usize) -> Counts {
        Counts {
            total: pending + in_flight + succeeded,
            succeeded,
            in_flight,
            pending,
            ..Counts::default()
        }
    }

    #[test]
    fn no_eta_until_a_task_has_finished() {
        let mut times = TaskTimes::default();
        let t0 = Instant::now();
        times.observe(
            &Event::Submitted {
                idx: 0,
                task_id: "t".into(),
            },
            t0,
        );
        assert_eq!(times.eta(&counts(10, 1, 0), 4), None);
        let finished = Event::Succeeded {
            idx: 0,
            url: "u".into(),
            extras: Default::default(),
        };
        times.observe(&finished, t0 + Duration::from_secs(20));
        // 8 left, 4 at a time, 20 s each: 40 s.
        assert_eq!(
            times.eta(&counts(6, 2, 1), 4),
            Some(Duration::from_secs(40))
        );
        // Fewer left than slots: one task time.
        assert_eq!(
            times.eta(&counts(0, 2, 1), 4),
            Some(Duration::from_secs(20))
        );
        assert_eq!(times.eta(&counts(0, 0, 3), 4), None);
    }

    #[test]
    fn a_task_polled_from_an_earlier_run_gives_no_time() {
        let mut times = TaskTimes::default();
        let finished = Event::Failed {
            idx: 3,
            error: "x".into(),
        };
        times.observe(&finished, Instant::now());
        assert_eq!(times.eta(&counts(5, 0, 0), 4), None);
    }

    #[test]
    fn a_fresh_run_has_no_resume_line() {
        assert_eq!(resume_line(&counts(5, 0, 0)), None);
        let c = Counts {
            failed: 1,
            ..counts(27, 4, 9)
        };
        assert_eq!(
            resume_line(&c).as_deref(),
            Some(
                "found in the journal: 9 succeeded, 4 in flight (polled, not resent), \
                 1 failed, 27 to send"
            )
        );
    }
}
