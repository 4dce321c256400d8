//! Each shot's run state, as the run core alone keeps it, and its results row.

use crate::api::TaskExtras;
use crate::cost::Money;
use crate::journal::History;
use crate::plan::PlannedShot;
use crate::report::{ResultRow, ResultStatus, elapsed_between, prompt_of, video_path};

use super::reason::Reason;

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
    pub task_id: Option<String>,
    pub url: Option<String>,
    /// When the task finished (stamps the URL's age).
    pub finished_at: Option<String>,
    pub submitted_at: Option<String>,
    /// When the last submit started (its `submitting` line).
    pub submitting_at: Option<String>,
    pub file: Option<String>,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    pub attempts: u32,
    /// Boxed, like `extras`: rare, and a shot's record is kept for every shot of the run.
    pub error: Option<Box<Reason>>,
    /// Said in the results' `error` column of a succeeded shot: why its video is kept as it is.
    pub note: Option<String>,
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
            task_id: h.task_id,
            url: h.url,
            finished_at: h.finished_at,
            submitted_at: h.submitted_at,
            submitting_at: h.submitting_at,
            file: h.file,
            sha256: h.sha256,
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
            task_id: self.task_id.clone(),
            url: self.url.clone(),
            file: if done {
                self.file.as_deref().map(video_path)
            } else {
                None
            },
            sha256: if done { self.sha256.clone() } else { None },
            bytes: if done { self.bytes } else { None },
            attempts: self.attempts,
            submitted_at: self.submitted_at.clone(),
            finished_at: self.finished_at.clone(),
            elapsed_s: elapsed_between(self.submitted_at.as_deref(), self.finished_at.as_deref()),
            error: if done {
                self.note.clone()
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
