//! Replaying the journal into the latest known state of each request key.
//!
//! Keys, not ids, carry identity: a shot whose request changed has a new key and so no history.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use super::{Entry, EventKind};

/// What the journal says about one request key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The last shot id seen with this key.
    pub id: String,
    /// How many times a submit was started.
    pub attempts: u32,
    /// A `submitting` with no answer recorded after it.
    pub submit_open: bool,
    pub unknown: bool,
    pub task_id: Option<String>,
    pub submitted_at: Option<String>,
    pub url: Option<String>,
    /// When the task finished (succeeded or failed).
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub failed: bool,
    pub expired: bool,
    pub file: Option<String>,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
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
                    attempts: self.attempts + 1,
                    submit_open: true,
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
            EventKind::Unknown => {
                self.submit_open = false;
                self.unknown = true;
                if e.error.is_some() {
                    self.error.clone_from(&e.error);
                }
            }
            EventKind::Expired => {
                self.expired = true;
                self.error.clone_from(&e.error);
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

/// Folds entries into a map from key to history.
pub fn replay<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> HashMap<String, History> {
    let mut map: HashMap<String, History> = HashMap::new();
    for e in entries {
        map.entry(e.key.clone()).or_default().apply(e);
    }
    map
}

/// Replays `path`; a missing file is an empty journal. Lines that do not parse (a line torn by
/// a crash) are skipped and counted in the second value.
pub fn replay_file(path: &Path) -> std::io::Result<(HashMap<String, History>, usize)> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((HashMap::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut map: HashMap<String, History> = HashMap::new();
    let mut bad = 0;
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(&line) {
            Ok(e) => map.entry(e.key.clone()).or_default().apply(&e),
            Err(_) => bad += 1,
        }
    }
    Ok((map, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(event: EventKind) -> Entry {
        Entry::new(event, "a", "k1")
    }

    fn phase(events: &[Entry]) -> Phase {
        replay(events)
            .get("k1")
            .map_or(Phase::NotStarted, History::phase)
    }

    #[test]
    fn submitting_without_answer_is_unknown() {
        assert_eq!(phase(&[e(EventKind::Submitting)]), Phase::Unknown);
    }

    #[test]
    fn refused_submit_is_not_started_but_counts_an_attempt() {
        let h = replay(&[e(EventKind::Submitting), e(EventKind::Refused)]);
        assert_eq!(h["k1"].phase(), Phase::NotStarted);
        assert_eq!(h["k1"].attempts, 1);
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
        assert_eq!(h["k1"].phase(), Phase::Downloaded);
        assert_eq!(h["k1"].task_id.as_deref(), Some("t1"));
        assert_eq!(h["k1"].bytes, Some(3));
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
        assert_eq!(h["k1"].phase(), Phase::InFlight);
        assert_eq!(h["k1"].attempts, 2);
        assert_eq!(h["k1"].error, None);
        assert_eq!(h["k1"].task_id.as_deref(), Some("t2"));
    }

    #[test]
    fn keys_are_independent() {
        let mut other = Entry::new(EventKind::Submitting, "b", "k2");
        other.attempt = Some(1);
        let h = replay(&[e(EventKind::Unknown), other]);
        assert_eq!(h["k1"].phase(), Phase::Unknown);
        assert_eq!(h["k2"].phase(), Phase::Unknown);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn torn_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut j = super::super::Journal::open(&path).unwrap();
        j.append(&e(EventKind::Submitting)).unwrap();
        drop(j);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"ts\":\"2026");
        std::fs::write(&path, text).unwrap();
        let mut j = super::super::Journal::open(&path).unwrap();
        j.append(&e(EventKind::Submitted).task_id("t9")).unwrap();
        let (h, bad) = replay_file(&path).unwrap();
        assert_eq!(bad, 1);
        assert_eq!(h["k1"].phase(), Phase::InFlight);
    }
}
