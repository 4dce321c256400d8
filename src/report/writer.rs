//! The results files' own writer: a thread that rewrites both files, so the dispatcher never
//! waits on a rewrite (20,000 rows cost ~100 ms) and only hands over the rows that changed;
//! the rest are copied from the files written last (see [`Table`]).
//!
//! At most one rewrite is under way; changes that arrive meanwhile are merged (the latest row
//! wins) into the next one, which starts no sooner than max(1 s, 10 × the last one's cost)
//! after it. A caller that asks [`ResultsWriter::ready`] first hands rows over only when a
//! rewrite would take them at once, so none wait out that pause in memory (at 100,000 shots
//! they were tens of MB): it keeps their plan indices meanwhile. [`ResultsWriter::finish`] writes everything handed over and waits for it, so the
//! files a command leaves are its full, final state.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{ReportError, ResultRow, Table};

pub struct ResultsWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    /// Rows changed since the last rewrite took them, by plan index: in increasing order, each
    /// index once.
    changes: Vec<(usize, ResultRow)>,
    /// A rewrite is under way.
    writing: bool,
    /// When the pause after the last rewrite ends.
    next: Instant,
    /// No more changes come: write what is left now, then stop.
    closing: bool,
    /// The first rewrite that failed, until [`ResultsWriter::error`] takes it.
    error: Option<ReportError>,
    /// The files written last were changed from outside: the next rewrite needs every row.
    wants_all: bool,
}

impl Default for State {
    fn default() -> State {
        State {
            changes: Vec::new(),
            writing: false,
            next: Instant::now(),
            closing: false,
            error: None,
            wants_all: false,
        }
    }
}

/// Adds `newer` to `changes`, keeping both in increasing index order with each index once (the
/// newer row wins).
fn merge(
    changes: &mut Vec<(usize, ResultRow)>,
    newer: impl IntoIterator<Item = (usize, ResultRow)>,
) {
    let before = changes.len();
    changes.extend(newer);
    let sorted = changes.windows(2).all(|w| w[0].0 < w[1].0);
    if before > 0 || !sorted {
        // Stable: of one index, the row handed over last comes last, and is the one kept.
        changes.sort_by_key(|(i, _)| *i);
        changes.reverse();
        changes.dedup_by_key(|(i, _)| *i);
        changes.reverse();
    }
}

impl ResultsWriter {
    /// Writes the table of `rows` into `dir` before returning (so an unwritable folder shows
    /// before anything is sent), then starts the thread that rewrites it as rows change.
    pub fn start(
        dir: PathBuf,
        matrix_keys: Vec<String>,
        rows: impl ExactSizeIterator<Item = ResultRow>,
    ) -> Result<ResultsWriter, ReportError> {
        let mut rows = rows;
        let mut table = Table::new(matrix_keys, rows.len());
        let started = Instant::now();
        table.write(&dir, |_| rows.next())?;
        let next = started + pause_after(started.elapsed());
        let shared = Arc::new(Shared::default());
        shared.lock().next = next;
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("shotlist-results".into())
                .spawn(move || rewrite_loop(&shared, table, &dir, next))
                .map_err(|source| ReportError {
                    path: PathBuf::from("results writer thread"),
                    source,
                })?
        };
        Ok(ResultsWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands over changed rows (plan index, row); they are in a later rewrite.
    pub fn send(&self, rows: impl IntoIterator<Item = (usize, ResultRow)>) {
        let mut state = self.shared.lock();
        let before = state.changes.len();
        merge(&mut state.changes, rows);
        if before == 0 && !state.changes.is_empty() {
            self.shared.wake.notify_one();
        }
    }

    /// Whether rows handed over now would be written at once: none are waiting, no rewrite is
    /// under way and the pause after the last one is over.
    pub fn ready(&self) -> bool {
        let state = self.shared.lock();
        state.changes.is_empty() && !state.writing && Instant::now() >= state.next
    }

    /// Whether the next rows handed over must be every row (rarely: the files were changed
    /// from outside).
    pub fn wants_all(&self) -> bool {
        self.shared.lock().wants_all
    }

    /// A rewrite that failed since the last call, if any.
    pub fn error(&self) -> Option<ReportError> {
        self.shared.lock().error.take()
    }

    /// Writes every row handed over (and `rows`) and returns once the files hold them, with
    /// the first rewrite error not taken yet.
    pub fn finish(
        mut self,
        rows: impl IntoIterator<Item = (usize, ResultRow)>,
    ) -> Result<(), ReportError> {
        self.send(rows);
        self.close();
        self.shared.lock().error.take().map_or(Ok(()), Err)
    }

    fn close(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take()
            && let Err(panic) = thread.join()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Dropped without [`ResultsWriter::finish`] (a run ended by an error): what was handed over
/// is still written before the drop returns.
impl Drop for ResultsWriter {
    fn drop(&mut self) {
        if self.thread.is_some() && !std::thread::panicking() {
            self.close();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long to leave the files alone after a rewrite that took `cost`: a rewrite takes at most
/// a tenth of one core, and readers see a file change at most once a second.
fn pause_after(cost: Duration) -> Duration {
    Duration::from_secs(1).max(cost * 10)
}

fn rewrite_loop(shared: &Shared, mut table: Table, dir: &std::path::Path, mut next: Instant) {
    loop {
        let (mut changes, closing) = {
            let mut state = shared.lock();
            loop {
                let now = Instant::now();
                let all = !state.wants_all || state.changes.len() == table.len();
                if state.closing || (!state.changes.is_empty() && now >= next && all) {
                    break;
                }
                state = if state.changes.is_empty() {
                    shared.wake.wait(state).unwrap_or_else(|e| e.into_inner())
                } else {
                    let timeout = shared.wake.wait_timeout(state, next - now);
                    timeout.unwrap_or_else(|e| e.into_inner()).0
                };
            }
            state.writing = true;
            (std::mem::take(&mut state.changes), state.closing)
        };
        if !changes.is_empty() && changes.len() < table.len() && !table.can_copy() {
            let mut state = shared.lock();
            state.wants_all = true;
            if !closing {
                merge(&mut changes, std::mem::take(&mut state.changes));
                state.changes = changes;
                state.writing = false;
                continue;
            }
        }
        if !changes.is_empty() {
            let started = Instant::now();
            shared.lock().wants_all = false;
            let mut rows = std::mem::take(&mut changes).into_iter().peekable();
            let written = table.write(dir, |i| rows.next_if(|(j, _)| *j == i).map(|(_, r)| r));
            drop(rows);
            next = started + pause_after(started.elapsed());
            let mut state = shared.lock();
            state.next = next;
            if let Err(e) = written {
                state.error.get_or_insert(e);
            }
        }
        shared.lock().writing = false;
        if closing {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::row;
    use crate::report::{CSV_FILE, JSON_FILE, ResultStatus, write};

    fn files(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
        let read = |f| std::fs::read(dir.join(f)).unwrap();
        (read(CSV_FILE), read(JSON_FILE))
    }

    #[test]
    fn changed_rows_end_up_byte_identical_to_a_whole_rewrite() {
        let keys = vec!["ratio".to_owned()];
        let mut rows: Vec<ResultRow> = (0..5).map(|i| row(&format!("s{i}"))).collect();
        let live = tempfile::tempdir().unwrap();
        let writer = ResultsWriter::start(
            live.path().to_owned(),
            keys.clone(),
            rows.clone().into_iter(),
        )
        .unwrap();
        for (i, status) in [(1, ResultStatus::Succeeded), (3, ResultStatus::Unknown)] {
            rows[i].status = status;
            writer.send([(i, rows[i].clone())]);
        }
        rows[1].error = None;
        rows[4].matrix.clear();
        writer
            .finish([(1, rows[1].clone()), (4, rows[4].clone())])
            .unwrap();
        let whole = tempfile::tempdir().unwrap();
        write(whole.path(), &keys, &rows).unwrap();
        assert_eq!(files(live.path()), files(whole.path()));
    }

    #[test]
    fn rows_are_asked_for_only_once_the_pause_is_over_and_merge_in_index_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows: Vec<ResultRow> = (0..4).map(|i| row(&format!("s{i}"))).collect();
        let writer =
            ResultsWriter::start(dir.path().to_owned(), Vec::new(), rows.clone().into_iter())
                .unwrap();
        // The pause after the first write is at least 1 s.
        assert!(!writer.ready());
        rows[3].status = ResultStatus::Failed;
        rows[0].status = ResultStatus::Unknown;
        writer.send([(3, row("old")), (0, rows[0].clone())]);
        assert!(!writer.ready());
        rows[2].status = ResultStatus::Succeeded;
        writer
            .finish([(3, rows[3].clone()), (2, rows[2].clone())])
            .unwrap();
        let whole = tempfile::tempdir().unwrap();
        write(whole.path(), &[], &rows).unwrap();
        assert_eq!(files(dir.path()), files(whole.path()));
    }

    #[test]
    fn a_rewrite_that_fails_is_reported_by_finish() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let writer = ResultsWriter::start(out.clone(), Vec::new(), [row("a")].into_iter()).unwrap();
        std::fs::remove_dir_all(&out).unwrap();
        let err = writer.finish([(0, row("b"))]).unwrap_err();
        assert_eq!(err.path, out.join(CSV_FILE));
    }

    #[test]
    fn files_changed_from_outside_are_rewritten_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows: Vec<ResultRow> = (0..3).map(|i| row(&format!("s{i}"))).collect();
        let writer =
            ResultsWriter::start(dir.path().to_owned(), Vec::new(), rows.clone().into_iter())
                .unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(dir.path().join(CSV_FILE))
            .unwrap();
        rows[0].status = ResultStatus::Succeeded;
        writer.send([(0, rows[0].clone())]);
        for _ in 0..1000 {
            if writer.wants_all() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(writer.wants_all());
        writer.finish(rows.iter().cloned().enumerate()).unwrap();
        let whole = tempfile::tempdir().unwrap();
        write(whole.path(), &[], &rows).unwrap();
        assert_eq!(files(dir.path()), files(whole.path()));
    }
}
