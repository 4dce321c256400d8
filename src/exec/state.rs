//! Each shot's run state, as the run core alone keeps it, and its results row.

use crate::api::TaskExtras;
use crate::cost::Money;
use crate::journal::History;
use crate::plan::PlannedShot;
use crate::report::{ResultRow, ResultStatus, elapsed_between, prompt_of, video_path};

use super::reason::Reason;
use std::time::{Duration, UNIX_EPOCH};

/// Where a shot is in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Not acted on in this run (not selected, or stopped before its turn).
    Pending,
    /// Waiting for upstreams.
    Waiting,
    /// Upstreams done; queued for a submit slot.
    Ready,
    /// Waiting out a backoff before its next submit.
    Delayed,
    /// POST in progress.
    Submitting,
    /// Submitted, not finished: being polled.
    InFlight,
    /// Succeeded; video being downloaded.
    Downloading,
    /// An `unknown` submit being looked for in DashScope's task list; what needs it waits.
    Reconciling,
    Succeeded,
    Failed,
    Skipped,
    Unknown,
    Expired,
}

impl Status {
    pub const ALL: [Status; 13] = [
        Status::Pending,
        Status::Waiting,
        Status::Ready,
        Status::Delayed,
        Status::Submitting,
        Status::InFlight,
        Status::Downloading,
        Status::Reconciling,
        Status::Succeeded,
        Status::Failed,
        Status::Skipped,
        Status::Unknown,
        Status::Expired,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Finished for this run, one way or another.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Succeeded
                | Status::Failed
                | Status::Skipped
                | Status::Unknown
                | Status::Expired
        )
    }

    pub fn result(self) -> ResultStatus {
        match self {
            Status::Succeeded => ResultStatus::Succeeded,
            Status::Failed => ResultStatus::Failed,
            Status::Skipped => ResultStatus::Skipped,
            Status::Unknown | Status::Reconciling => ResultStatus::Unknown,
            Status::Expired => ResultStatus::Expired,
            _ => ResultStatus::Pending,
        }
    }
}

/// What is known about one shot: from the journal, then from this run.
#[derive(Debug, Clone)]
pub struct ShotRecord {
    pub status: Status,
    // Text fields are `Box<str>` (16 B, no spare capacity), timestamps and the digest held as
    // values when they round-trip exactly: a record is kept for every shot of the run.
    pub task_id: Option<Box<str>>,
    pub url: Option<Box<str>>,
    /// When the task finished (stamps the URL's age).
    pub finished_at: Option<Stamp>,
    pub submitted_at: Option<Stamp>,
    /// When the last submit started (its `submitting` line).
    pub submitting_at: Option<Stamp>,
    pub file: Option<Box<str>>,
    pub sha256: Option<Digest>,
    pub bytes: Option<u64>,
    pub attempts: u32,
    /// Boxed, like `extras`: rare, and a shot's record is kept for every shot of the run.
    pub error: Option<Box<Reason>>,
    /// Said in the results' `error` column of a succeeded shot: why its video is kept as it is.
    pub note: Option<Box<str>>,
    /// 5xx answers to this run's submits.
    pub server_errors: u32,
    /// 429s in a row to this run's submits.
    pub rate_limited: u32,
    /// The journal ends with a `submitting` that has no answer (a crash mid-POST).
    pub submit_open: bool,
    /// What the provider added when the task succeeded.
    pub extras: Option<Box<TaskExtras>>,
    /// Every task of this shot id the folder's ledger holds, estimated (every attempt).
    pub spent: Money,
}

impl ShotRecord {
    pub fn from_history(h: Option<&History>) -> ShotRecord {
        let h = h.cloned().unwrap_or_default();
        ShotRecord {
            status: Status::Pending,
            task_id: h.task_id.map(String::into_boxed_str),
            url: h.url.map(String::into_boxed_str),
            finished_at: h.finished_at.as_deref().map(Stamp::new),
            submitted_at: h.submitted_at.as_deref().map(Stamp::new),
            submitting_at: h.submitting_at.as_deref().map(Stamp::new),
            file: h.file.map(String::into_boxed_str),
            sha256: h.sha256.as_deref().map(Digest::new),
            bytes: h.bytes,
            attempts: h.attempts,
            error: h.error.map(|e| Box::new(Reason::Said(e))),
            note: None,
            server_errors: 0,
            rate_limited: 0,
            submit_open: h.submit_open,
            extras: h.extras.map(Box::new),
            spent: Money::ZERO,
        }
    }

    /// A task exists, or may: the shot is billed (the budget and the `cost` column count it).
    pub fn task_created(&self) -> bool {
        self.task_id.is_some()
            || self.submit_open
            || matches!(
                self.status,
                Status::Submitting | Status::Unknown | Status::Reconciling
            )
    }

    /// The results row for `shot`, whose task is estimated to bill `cost`.
    pub fn row(&self, shot: &PlannedShot, cost: Option<Money>) -> ResultRow {
        let status = self.status.result();
        let done = status == ResultStatus::Succeeded;
        let extras = self.extras.as_deref().cloned().unwrap_or_default();
        ResultRow {
            id: shot.id.clone(),
            status,
            model: shot.model.clone(),
            duration: shot.duration,
            resolution: shot.resolution.clone(),
            ratio: shot.ratio.clone(),
            seed: shot.seed,
            task_id: self.task_id.as_deref().map(str::to_owned),
            url: self.url.as_deref().map(str::to_owned),
            file: if done {
                self.file.as_deref().map(video_path)
            } else {
                None
            },
            sha256: if done {
                self.sha256.as_ref().map(Digest::text)
            } else {
                None
            },
            bytes: if done { self.bytes } else { None },
            attempts: self.attempts,
            submitted_at: self.submitted_at.as_ref().map(Stamp::text),
            finished_at: self.finished_at.as_ref().map(Stamp::text),
            elapsed_s: elapsed_between(
                self.submitted_at.as_ref().map(Stamp::text).as_deref(),
                self.finished_at.as_ref().map(Stamp::text).as_deref(),
            ),
            error: if done {
                self.note.as_deref().map(str::to_owned)
            } else {
                self.error.as_deref().map(Reason::to_string)
            },
            source: shot.source.clone(),
            row: shot.row,
            take: shot.take,
            prompt: prompt_of(shot),
            cost: cost.filter(|_| self.task_created()),
            spent: self.spent,
            orig_prompt: extras.orig_prompt,
            actual_prompt: extras.actual_prompt,
            usage_s: extras.usage_s,
            input_s: extras.input_s,
            output_s: extras.output_s,
            matrix: shot.matrix.clone(),
        }
    }
}

/// A journal timestamp: one in the form this program writes (RFC 3339, UTC, milliseconds, as
/// [`crate::journal::now_rfc3339`]) held as its milliseconds, any other text as it is; either
/// gives back the same text, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    Millis(u64),
    Text(Box<str>),
}

impl Stamp {
    pub fn new(text: &str) -> Stamp {
        let ms = humantime::parse_rfc3339(text).ok().and_then(|t| {
            let ms = u64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
            (Stamp::Millis(ms).text() == text).then_some(ms)
        });
        ms.map_or_else(|| Stamp::Text(text.into()), Stamp::Millis)
    }

    /// The text it was made from.
    pub fn text(&self) -> String {
        match self {
            Stamp::Millis(ms) => {
                let t = UNIX_EPOCH + Duration::from_millis(*ms);
                humantime::format_rfc3339_millis(t).to_string()
            }
            Stamp::Text(text) => text.to_string(),
        }
    }
}

impl From<&str> for Stamp {
    fn from(text: &str) -> Stamp {
        Stamp::new(text)
    }
}

impl From<String> for Stamp {
    fn from(text: String) -> Stamp {
        Stamp::new(&text)
    }
}

/// A file's SHA-256 as the journal has it: 64 lower-case hex digits held as their 32 bytes, any
/// other text as it is; either gives back the same text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Digest {
    Bytes([u8; 32]),
    Text(Box<str>),
}

impl Digest {
    pub fn new(text: &str) -> Digest {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut bytes = [0u8; 32];
        let hex = text.as_bytes();
        let ok = hex.len() == 64
            && bytes.iter_mut().enumerate().all(|(i, b)| {
                match (digit(hex[2 * i]), digit(hex[2 * i + 1])) {
                    (Some(hi), Some(lo)) => {
                        *b = hi << 4 | lo;
                        true
                    }
                    _ => false,
                }
            });
        if ok {
            Digest::Bytes(bytes)
        } else {
            Digest::Text(text.into())
        }
    }

    /// The text it was made from.
    pub fn text(&self) -> String {
        match self {
            Digest::Bytes(bytes) => {
                use std::fmt::Write;
                let mut s = String::with_capacity(64);
                for b in bytes {
                    let _ = write!(s, "{b:02x}");
                }
                s
            }
            Digest::Text(text) => text.to_string(),
        }
    }
}

/// Every shot's record, noting which were changed since [`Records::take_changed`] last ran: a
/// mutable index (`records[i].x = ...`, `&mut records[i]`) marks row `i`, so the results
/// writer gets every changed row without each change saying so.
#[derive(Debug)]
pub struct Records {
    rows: Vec<ShotRecord>,
    changed: Vec<bool>,
    changed_list: Vec<usize>,
}

impl Records {
    pub fn new(rows: Vec<ShotRecord>) -> Records {
        Records {
            changed: vec![false; rows.len()],
            rows,
            changed_list: Vec::new(),
        }
    }

    /// The rows changed since the last call, in no particular order.
    pub fn take_changed(&mut self) -> Vec<usize> {
        for &i in &self.changed_list {
            self.changed[i] = false;
        }
        std::mem::take(&mut self.changed_list)
    }
}

impl std::ops::Deref for Records {
    type Target = [ShotRecord];

    fn deref(&self) -> &[ShotRecord] {
        &self.rows
    }
}

impl std::ops::Index<usize> for Records {
    type Output = ShotRecord;

    fn index(&self, i: usize) -> &ShotRecord {
        &self.rows[i]
    }
}

impl std::ops::IndexMut<usize> for Records {
    fn index_mut(&mut self, i: usize) -> &mut ShotRecord {
        if !self.changed[i] {
            self.changed[i] = true;
            self.changed_list.push(i);
        }
        &mut self.rows[i]
    }
}

impl<'r> IntoIterator for &'r Records {
    type Item = &'r ShotRecord;
    type IntoIter = std::slice::Iter<'r, ShotRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.rows.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_digests_give_back_their_text() {
        for t in [
            "2026-12-06T05:04:12.123Z",
            "2026-12-06T05:04:12.000Z",
            "1970-01-01T00:00:00.000Z",
            "2026-12-06T05:04:12Z",
            "2026-12-06T05:04:12.123456Z",
            "2026-12-06T05:04:12.123+01:00",
            "2026-12-06 05:04:12.123Z",
            "yesterday",
            "",
        ] {
            assert_eq!(Stamp::new(t).text(), t);
        }
        assert!(matches!(
            Stamp::new("2026-12-06T05:04:12.123Z"),
            Stamp::Millis(_)
        ));
        let hex = "0123456789abcdef".repeat(4);
        assert!(matches!(Digest::new(&hex), Digest::Bytes(_)));
        for d in [
            hex.clone(),
            hex.to_uppercase(),
            "ab".into(),
            "s".into(),
            "".into(),
        ] {
            assert_eq!(Digest::new(&d).text(), d);
        }
    }
}
