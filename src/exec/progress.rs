//! Progress on stderr: bars on a terminal, plain periodic lines otherwise (CI logs), or
//! nothing but errors with `-q`. Log lines go through the bars so they do not tear.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    Plain,
    Quiet,
}

/// The numbers a progress line shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub waiting: usize,
    pub in_flight: usize,
    pub done: usize,
    pub failed: usize,
}

pub struct Progress {
    view: View,
    started: Instant,
    last_line: Instant,
    every: Duration,
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
                    ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} done  {msg}  [{elapsed_precise}, ETA {eta}]",
                    )
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

    /// Refreshes the bar; plain mode prints a line at most every 10 s unless `force`.
    pub fn update(&mut self, c: Counts, force: bool) {
        match &self.view {
            View::Bars { bar, .. } => {
                bar.set_length(c.total as u64);
                bar.set_position((c.done + c.failed) as u64);
                bar.set_message(format!(
                    "{} in flight, {} waiting, {} failed",
                    c.in_flight, c.waiting, c.failed
                ));
            }
            View::Plain => {
                if force || self.last_line.elapsed() >= self.every {
                    self.last_line = Instant::now();
                    eprintln!(
                        "[{}s] {}/{} done, {} in flight, {} waiting, {} failed",
                        self.started.elapsed().as_secs(),
                        c.done,
                        c.total,
                        c.in_flight,
                        c.waiting,
                        c.failed
                    );
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
