//! Replaying the journal into the latest known state of each shot.
//!
//! A shot is the pair (id, key): two shots with identical request bodies (takes without a seed)
//! are still two shots with two histories, and a shot whose request changed has a new key and
//! so no history. Reading is strict: a line torn by a crash at the very end is expected, but any
//! other unreadable line stops the run before anything is sent, since guessing past it could
//! resend paid work.

use std::collections::HashMap;
use std::io::{BufRead, Read as _};
use std::path::{Path, PathBuf};

use super::{Entry, EventKind};

/// What the journal says about one shot (id and key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The shot id these lines carry.
    pub id: String,
    /// The 1-based journal line applied last (the most recent history wins a tie).
    pub line: usize,
    /// How many times a submit was started.
    pub attempts: u32,
    /// A `submitting` with no answer recorded after it.
    pub submit_open: bool,
    pub unknown: bool,
    pub task_id: Option<String>,
    pub submitted_at: Option<String>,
    /// When the last submit started (its `submitting` line).
    pub submitting_at: Option<String>,
    /// That `submitting` line (1-based).
    pub submitting_line: Option<usize>,
    /// When that submit was declared `unknown`.
    pub unknown_at: Option<String>,
    pub url: Option<String>,
    /// When the task finished (succeeded or failed).
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub failed: bool,
    pub expired: bool,
    pub file: Option<String>,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    /// What the provider added when the task succeeded.
    pub extras: Option<crate::api::TaskExtras>,
}

/// A key's state as the journal leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    NotStarted,
    /// Submitted, not finished: poll by task id.
    InFlight,
    /// Outcome of a submit cannot be known.
    Unknown,
    Succeeded,
    Downloaded,
    Failed,
    Expired,
}

impl History {
    pub fn apply(&mut self, e: &Entry) {
        self.id.clone_from(&e.id);
        match e.event {
            EventKind::Submitting => {
                *self = History {
                    id: e.id.clone(),
                    line: self.line,
                    attempts: self.attempts + 1,
                    submit_open: true,
                    submitting_at: Some(e.ts.clone()),
                    ..History::default()
                };
            }
            EventKind::Submitted => {
                self.submit_open = false;
                self.task_id.clone_from(&e.task_id);
                self.submitted_at = Some(e.ts.clone());
            }
            EventKind::Refused => self.submit_open = false,
            EventKind::Succeeded => {
                self.url.clone_from(&e.url);
                self.extras.clone_from(&e.extras);
                self.finished_at = Some(e.ts.clone());
                if e.task_id.is_some() {
                    self.task_id.clone_from(&e.task_id);
                }
            }
            EventKind::Failed => {
                self.submit_open = false;
                self.failed = true;
                self.error.clone_from(&e.error);
                self.finished_at = Some(e.ts.clone());
            }
            EventKind::Downloaded => {
                self.file.clone_from(&e.file);
                self.sha256.clone_from(&e.sha256);
                self.bytes = e.bytes;
                self.expired = false;
            }
            // A re-attachment undone: what the task brought goes with it.
            EventKind::Unknown if e.task_id.is_some() => {
                *self = History {
                    id: e.id.clone(),
                    line: self.line,
                    attempts: self.attempts,
                    unknown: true,
                    submitting_at: self.submitting_at.take(),
                    submitting_line: self.submitting_line,
                    unknown_at: self.unknown_at.take().or_else(|| Some(e.ts.clone())),
                    error: e.error.clone(),
                    ..History::default()
                };
            }
            EventKind::Unknown => {
                self.submit_open = false;
                self.unknown = true;
                if self.unknown_at.is_none() {
                    self.unknown_at = Some(e.ts.clone());
                }
                if e.error.is_some() {
                    self.error.clone_from(&e.error);
                }
            }
            EventKind::Reattached => {
                self.submit_open = false;
                self.unknown = false;
                self.error = None;
                self.task_id.clone_from(&e.task_id);
                self.submitted_at = self.submitting_at.clone().or_else(|| Some(e.ts.clone()));
            }
            EventKind::Expired => {
                self.expired = true;
                self.error.clone_from(&e.error);
            }
            EventKind::Superseded => {
                if e.sha256.is_some() && e.sha256 == self.sha256 {
                    self.file.clone_from(&e.file);
                }
            }
            EventKind::Skipped => {}
        }
    }

    pub fn phase(&self) -> Phase {
        if self.sha256.is_some() {
            Phase::Downloaded
        } else if self.expired {
            Phase::Expired
        } else if self.url.is_some() {
            Phase::Succeeded
        } else if self.failed {
            Phase::Failed
        } else if self.unknown || self.submit_open {
            Phase::Unknown
        } else if self.task_id.is_some() {
            Phase::InFlight
        } else {
            Phase::NotStarted
        }
    }
}

/// A shot's identity in the journal: (id, key).
pub type ShotId = (String, String);

/// Everything a journal says.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    pub shots: HashMap<ShotId, History>,
    /// Every `superseded` line: where earlier videos went.
    pub superseded: Vec<Entry>,
    /// Every task id any line names: a task listed by the provider and named here is not an
    /// `unknown` submit's.
    pub task_ids: std::collections::HashSet<String>,
    /// Each submit answered with a task: its `submitting` and `submitted` lines and the task.
    pub submits: Vec<(usize, usize, String)>,
    /// Unreadable lines that were skipped because the caller asked (1-based).
    pub skipped: Vec<usize>,
    /// The last line was torn by a crash mid-write (expected; ignored).
    pub torn_tail: bool,
    /// Every attempt, for money and for who owns which task.
    pub ledger: super::Ledger,
}

impl Replayed {
    pub fn apply(&mut self, line: usize, e: &Entry) {
        self.ledger.apply(line, e);
        if e.event == EventKind::Superseded {
            self.superseded.push(e.clone());
        }
        if let Some(task) = &e.task_id
            && !self.task_ids.contains(task)
        {
            self.task_ids.insert(task.clone());
        }
        let h = self.shots.entry((e.id.clone(), e.key.clone())).or_default();
        if let (EventKind::Submitted, Some(from), Some(task), true) =
            (e.event, h.submitting_line, &e.task_id, h.submit_open)
        {
            self.submits.push((from, line, task.clone()));
        }
        h.apply(e);
        h.line = line;
        if e.event == EventKind::Submitting {
            h.submitting_line = Some(line);
        }
    }

    /// The tasks created (with an answer) by the run that wrote journal line `line`, as far as
    /// the journal shows: runs of a folder never overlap (its lock) and each writes its lines in
    /// one block, so a submit whose `submitting` and `submitted` lines enclose a line shares
    /// its run, and so does every submit overlapping that one. None when no submit encloses
    /// `line` (a run that sent one shot at a time).
    pub fn same_run_tasks(&self, line: usize) -> std::collections::HashSet<String> {
        let mut spans: Vec<&(usize, usize, String)> = self.submits.iter().collect();
        spans.sort_unstable();
        let mut block: Vec<&str> = Vec::new();
        let mut end = 0;
        let mut start = 0;
        for (from, to, task) in spans {
            if *from > end {
                if start < line && line < end {
                    break;
                }
                block.clear();
                start = *from;
            }
            end = end.max(*to);
            block.push(task);
        }
        if start < line && line < end {
            block.into_iter().map(str::to_owned).collect()
        } else {
            Default::default()
        }
    }

    pub fn get(&self, id: &str, key: &str) -> Option<&History> {
        self.shots.get(&(id.to_owned(), key.to_owned()))
    }
}

/// Folds entries into their shots' histories.
pub fn replay<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Replayed {
    let mut r = Replayed::default();
    for (i, e) in entries.into_iter().enumerate() {
        r.apply(i + 1, e);
    }
    r
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read the journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} line {line} is not a journal entry ({reason}); nothing was sent. A damaged journal \
         cannot say what was already paid for: restore that line (or delete it if you know what \
         it held), or run again with --skip-bad-journal-lines to ignore every unreadable line \
         (a skipped `submitting` line may lead to a paid resend)"
    )]
    BadLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Replays `path`; a missing file is an empty journal. A last line without its newline that
/// does not parse was torn by a crash and is ignored; any other bad line (unparsable, not
/// UTF-8) is an error naming it, unless `skip_bad`, which skips and lists them.
pub fn replay_file(path: &Path, skip_bad: bool) -> Result<Replayed, ReadError> {
    let mut r = Replayed::default();
    let (torn_tail, skipped) =
        each_entry(path, skip_bad, MAX_LINE, |number, e| r.apply(number, &e))?;
    r.torn_tail = torn_tail;
    r.skipped = skipped;
    Ok(r)
}

/// The `superseded` lines of `path`, in order, as [`replay_file`] with `skip_bad` lists them,
/// without the rest of the replayed state (~1 KB a shot).
pub fn superseded_file(path: &Path) -> Result<Vec<Entry>, ReadError> {
    let mut superseded = Vec::new();
    each_entry(path, true, MAX_LINE, |_, e| {
        if e.event == EventKind::Superseded {
            superseded.push(e);
        }
    })?;
    Ok(superseded)
}

/// The longest journal line read: above anything a run writes (an entry is about a kilobyte; its
/// text from the provider comes from one answer of at most 4 MiB, which JSON escaping at most
/// sextuples). A longer line is bad, and is never held in memory whole.
pub const MAX_LINE: usize = 32 << 20;

/// Reads `path` line by line (a 100,000-shot journal is ~100 MB), handing each entry and its
/// line number to `each`; returns whether the last line was torn and the lines skipped. Bad
/// lines as [`replay_file`] says; a line over `max_line` bytes is one.
fn each_entry(
    path: &Path,
    skip_bad: bool,
    max_line: usize,
    mut each: impl FnMut(usize, Entry),
) -> Result<(bool, Vec<usize>), ReadError> {
    let io_error = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let (mut torn_tail, mut skipped) = (false, Vec::new());
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((torn_tail, skipped)),
        Err(source) => return Err(io_error(source)),
    };
    let mut reader = std::io::BufReader::new(file);
    let mut raw = Vec::new();
    for number in 1.. {
        raw.clear();
        let limit = max_line as u64 + 1;
        if (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut raw)
            .map_err(io_error)?
            == 0
        {
            break;
        }
        let mut torn = raw.pop_if(|b| *b == b'\n').is_none();
        let parsed = if raw.len() > max_line {
            // Not a crash's torn tail, whether or not a newline ends it: nothing writes this much.
            skip_line(&mut reader).map_err(io_error)?;
            torn = false;
            Err(format!("longer than {max_line} bytes"))
        } else if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        } else {
            std::str::from_utf8(&raw)
                .map_err(|e| format!("not UTF-8: {e}"))
                .and_then(|text| serde_json::from_str::<Entry>(text).map_err(|e| e.to_string()))
        };
        match parsed {
            Ok(e) => each(number, e),
            Err(_) if torn => torn_tail = true,
            Err(_) if skip_bad => skipped.push(number),
            Err(reason) => {
                return Err(ReadError::BadLine {
                    path: path.to_owned(),
                    line: number,
                    reason,
                });
            }
        }
    }
    Ok((torn_tail, skipped))
}

/// Consumes the rest of a line, its newline included, without keeping it.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(at) = buf.iter().position(|b| *b == b'\n') {
            reader.consume(at + 1);
            return Ok(());
        }
        let n = buf.len();
        reader.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(event: EventKind) -> Entry {
        Entry::new(event, "a", "k1")
    }

    fn phase(events: &[Entry]) -> Phase {
        replay(events)
            .get("a", "k1")
            .map_or(Phase::NotStarted, History::phase)
    }

    #[test]
    fn submitting_without_answer_is_unknown() {
        assert_eq!(phase(&[e(EventKind::Submitting)]), Phase::Unknown);
    }

    #[test]
    fn refused_submit_is_not_started_but_counts_an_attempt() {
        let h = replay(&[e(EventKind::Submitting), e(EventKind::Refused)]);
        assert_eq!(h.get("a", "k1").unwrap().phase(), Phase::NotStarted);
        assert_eq!(h.get("a", "k1").unwrap().attempts, 1);
    }

    #[test]
    fn submitted_is_in_flight_then_done() {
        let mut events = vec![
            e(EventKind::Submitting).attempt(1),
            e(EventKind::Submitted).task_id("t1"),
        ];
        assert_eq!(phase(&events), Phase::InFlight);
        events.push(e(EventKind::Succeeded).url("http://x/v.mp4"));
        assert_eq!(phase(&events), Phase::Succeeded);
        events.push(e(EventKind::Downloaded).file("a.mp4", "abc", 3));
        let h = replay(&events);
        assert_eq!(h.get("a", "k1").unwrap().phase(), Phase::Downloaded);
        assert_eq!(h.get("a", "k1").unwrap().task_id.as_deref(), Some("t1"));
        assert_eq!(h.get("a", "k1").unwrap().bytes, Some(3));
    }

    #[test]
    fn a_new_submit_forgets_the_old_outcome() {
        let events = [
            e(EventKind::Submitting),
            e(EventKind::Submitted).task_id("t1"),
            e(EventKind::Failed).error("moderation"),
            e(EventKind::Submitting),
            e(EventKind::Submitted).task_id("t2"),
        ];
        let h = replay(&events);
        assert_eq!(h.get("a", "k1").unwrap().phase(), Phase::InFlight);
        assert_eq!(h.get("a", "k1").unwrap().attempts, 2);
        assert_eq!(h.get("a", "k1").unwrap().error, None);
        assert_eq!(h.get("a", "k1").unwrap().task_id.as_deref(), Some("t2"));
    }

    #[test]
    fn a_runs_tasks_are_the_submits_overlapping_a_line() {
        let at = |event: EventKind, id: &str| Entry::new(event, id, "k");
        let events = [
            at(EventKind::Submitting, "old"),
            at(EventKind::Submitted, "old").task_id("t-old"),
            at(EventKind::Submitting, "a"),
            at(EventKind::Submitting, "lost"),
            at(EventKind::Submitting, "b"),
            at(EventKind::Submitted, "a").task_id("ta"),
            at(EventKind::Submitting, "c"),
            at(EventKind::Submitted, "b").task_id("tb"),
            at(EventKind::Submitted, "c").task_id("tc"),
            at(EventKind::Unknown, "lost"),
            at(EventKind::Submitting, "later"),
            at(EventKind::Submitted, "later").task_id("t-later"),
        ];
        let r = replay(&events);
        let lost = r.get("lost", "k").unwrap().submitting_line.unwrap();
        assert_eq!(lost, 4);
        let mut same: Vec<String> = r.same_run_tasks(lost).into_iter().collect();
        same.sort();
        assert_eq!(same, ["ta", "tb", "tc"]);
        assert!(r.same_run_tasks(2).is_empty(), "no submit encloses line 2");
        assert!(r.same_run_tasks(11).is_empty());
    }

    #[test]
    fn keys_are_independent() {
        let mut other = Entry::new(EventKind::Submitting, "b", "k2");
        other.attempt = Some(1);
        let h = replay(&[e(EventKind::Unknown), other]);
        assert_eq!(h.get("a", "k1").unwrap().phase(), Phase::Unknown);
        assert_eq!(h.get("b", "k2").unwrap().phase(), Phase::Unknown);
        assert_eq!(h.shots.len(), 2);
    }

    #[test]
    fn same_key_different_ids_are_different_shots() {
        let take1 = Entry::new(EventKind::Submitting, "hero-take1", "k");
        let take2 = Entry::new(EventKind::Submitting, "hero-take2", "k");
        let h = replay(&[take1.clone(), take1, take2]);
        assert_eq!(h.get("hero-take1", "k").unwrap().attempts, 2);
        assert_eq!(h.get("hero-take2", "k").unwrap().attempts, 1);
        assert_eq!(h.get("hero-take3", "k"), None);
    }

    #[test]
    fn a_reattached_unknown_is_in_flight_with_its_submit_time() {
        let mut submitting = e(EventKind::Submitting).attempt(1);
        submitting.ts = "2026-11-24T02:00:00Z".into();
        let mut unknown = e(EventKind::Unknown).error("timeout");
        unknown.ts = "2026-11-24T02:05:00Z".into();
        let mut events = vec![submitting, unknown];
        let h = replay(&events);
        let h = h.get("a", "k1").unwrap();
        assert_eq!(h.phase(), Phase::Unknown);
        assert_eq!(h.submitting_at.as_deref(), Some("2026-11-24T02:00:00Z"));
        assert_eq!(h.unknown_at.as_deref(), Some("2026-11-24T02:05:00Z"));
        events.push(e(EventKind::Reattached).task_id("t5"));
        let r = replay(&events);
        let h = r.get("a", "k1").unwrap();
        assert_eq!(h.phase(), Phase::InFlight);
        assert_eq!(h.task_id.as_deref(), Some("t5"));
        assert_eq!(h.error, None);
        assert_eq!(h.submitted_at.as_deref(), Some("2026-11-24T02:00:00Z"));
        assert!(r.task_ids.contains("t5"));

        events.push(e(EventKind::Succeeded).url("https://v/t5.mp4"));
        events.push(e(EventKind::Downloaded).file("a.mp4", "abc", 3));
        events.push(e(EventKind::Unknown).task_id("t5").error("undone"));
        let r = replay(&events);
        let h = r.get("a", "k1").unwrap();
        assert_eq!(h.phase(), Phase::Unknown, "an undone re-attachment: {h:?}");
        assert_eq!((&h.task_id, &h.url, &h.sha256), (&None, &None, &None));
        assert_eq!(h.unknown_at.as_deref(), Some("2026-11-24T02:05:00Z"));
        assert_eq!(h.submitting_at.as_deref(), Some("2026-11-24T02:00:00Z"));
        assert_eq!(h.error.as_deref(), Some("undone"));
        assert!(r.task_ids.contains("t5"), "never a candidate again");
    }

    #[test]
    fn a_journal_from_before_reattached_replays_as_it_did() {
        let text = "{\"ts\":\"2026-11-24T02:00:00Z\",\"event\":\"submitting\",\"id\":\"a\",\"key\":\"k1\",\"attempt\":1}\n\
                    {\"ts\":\"2026-11-24T02:00:09Z\",\"event\":\"unknown\",\"id\":\"a\",\"key\":\"k1\",\"error\":\"timeout\"}\n\
                    {\"ts\":\"2026-11-24T02:00:00Z\",\"event\":\"submitting\",\"id\":\"b\",\"key\":\"k2\",\"attempt\":1}\n\
                    {\"ts\":\"2026-11-24T02:00:01Z\",\"event\":\"submitted\",\"id\":\"b\",\"key\":\"k2\",\"task_id\":\"t1\"}\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, text).unwrap();
        let r = replay_file(&path, false).unwrap();
        assert_eq!(r.get("a", "k1").unwrap().phase(), Phase::Unknown);
        assert_eq!(r.get("b", "k2").unwrap().phase(), Phase::InFlight);
        assert_eq!(r.task_ids.len(), 1);
    }

    fn journal_with(text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut j = super::super::Journal::open(&path).unwrap();
        j.append(&e(EventKind::Submitting)).unwrap();
        j.append(&e(EventKind::Submitted).task_id("t9")).unwrap();
        drop(j);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(text);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_cut_off_by_the_next_writer() {
        let (_dir, path) = journal_with(b"{\"ts\":\"2026");
        let r = replay_file(&path, false).unwrap();
        assert!(r.torn_tail);
        assert_eq!(r.get("a", "k1").unwrap().phase(), Phase::InFlight);
        let mut j = super::super::Journal::open(&path).unwrap();
        j.append(&e(EventKind::Failed).error("x")).unwrap();
        let r = replay_file(&path, false).unwrap();
        assert!(!r.torn_tail);
        assert_eq!(r.get("a", "k1").unwrap().phase(), Phase::Failed);
    }

    #[test]
    fn a_bad_line_inside_is_an_error_naming_it_unless_skipped() {
        let (_dir, path) = journal_with(b"garbage\n\xff\xfe\n");
        let err = replay_file(&path, false).unwrap_err();
        assert!(matches!(err, ReadError::BadLine { line: 3, .. }), "{err}");
        assert!(err.to_string().contains("--skip-bad-journal-lines"));
        let r = replay_file(&path, true).unwrap();
        assert_eq!(r.skipped, [3, 4]);
        assert_eq!(r.get("a", "k1").unwrap().phase(), Phase::InFlight);
    }

    #[test]
    fn superseded_lines_read_alone_are_the_replayed_ones() {
        let mut tail = Vec::new();
        for (id, name) in [("a", "superseded/a.1.mp4"), ("b", "superseded/b.1.mp4")] {
            let line = serde_json::to_string(
                &Entry::new(EventKind::Superseded, id, "k0").file(name, "00", 1),
            );
            tail.extend_from_slice(line.unwrap().as_bytes());
            tail.extend_from_slice(b"\ngarbage\n\n");
        }
        tail.extend_from_slice(b"{\"ts\":\"2026");
        let (_dir, path) = journal_with(&tail);
        let replayed = replay_file(&path, true).unwrap();
        assert_eq!(replayed.superseded.len(), 2);
        assert_eq!(superseded_file(&path).unwrap(), replayed.superseded);
        let missing = path.with_file_name("none.jsonl");
        assert_eq!(superseded_file(&missing).unwrap(), []);
    }

    #[test]
    fn an_overlong_line_is_a_bad_line_read_no_further_than_the_cap() {
        let long = format!("{{\"ts\":\"{}\"}}", "x".repeat(5000));
        for (tail, torn) in [(format!("{long}\n"), false), (long.clone(), true)] {
            let mut text = tail.into_bytes();
            if !torn {
                let next = serde_json::to_string(&e(EventKind::Failed).error("x")).unwrap();
                text.extend_from_slice(next.as_bytes());
                text.push(b'\n');
            }
            let (_dir, path) = journal_with(&text);
            let mut lines = Vec::new();
            let err = each_entry(&path, false, 1000, |n, _| lines.push(n)).unwrap_err();
            match err {
                ReadError::BadLine { line, reason, .. } => {
                    assert_eq!(line, 3);
                    assert_eq!(reason, "longer than 1000 bytes");
                }
                other => panic!("{other:?}"),
            }
            lines.clear();
            let (torn_tail, skipped) = each_entry(&path, true, 1000, |n, _| lines.push(n)).unwrap();
            assert!(!torn_tail, "a line over the cap is not a crash's tear");
            assert_eq!(skipped, [3]);
            let after: &[usize] = if torn { &[] } else { &[4] };
            assert_eq!(lines, [[1, 2].as_slice(), after].concat());
        }
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_line() {
        let (_dir, path) = journal_with(b"{\"ts\":\"\xff\"}\n");
        match replay_file(&path, false) {
            Err(ReadError::BadLine { line, reason, .. }) => {
                assert_eq!(line, 3);
                assert!(reason.contains("UTF-8"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
