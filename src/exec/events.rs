//! `run --events FILE|-`: what the run decides and what the provider answers, as JSON Lines,
//! for dashboards, chat notifications and the next pipeline step.
//!
//! The stream is one more writer of the run's events, beside the journal, the results and
//! the progress: every journal line becomes an event (so the stream says no more and no less
//! than what was paid), plus what only a reader needs: each shot's plan at the start, budget
//! holds, the cost and the end. Each line is flushed as it is written, so `tail -f` and a pipe
//! see it live. A reader that goes away (`| head -3`) stops the stream, never the run. The
//! API key is never in an event: no event carries a header or a request body.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use crate::cost::Money;
use crate::journal::{Entry, EventKind};

/// The `v` of every line; a reader checks it before trusting the fields.
pub const SCHEMA_VERSION: u32 = 1;

/// Where the stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsTo {
    Stdout,
    /// Appended to (a resumed run continues the same file).
    File(PathBuf),
}

impl EventsTo {
    /// `-` is standard output, anything else a file.
    pub fn parse(text: &str) -> EventsTo {
        if text == "-" {
            EventsTo::Stdout
        } else {
            EventsTo::File(PathBuf::from(text))
        }
    }
}

/// What an event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// At the start, one per shot the run acts on: `status` is what it will do first
    /// (`waiting`, `in_flight`, `downloading`, `succeeded`, `reconciling`, or a held state
    /// with its `reason`).
    Planned,
    /// About to submit (journalled before the request leaves); `cost` is its estimate.
    Submitting,
    /// The provider created task `task_id`.
    Submitted,
    /// The submit was answered 429 or 5xx: no task was created; it is tried again.
    Refused,
    /// The submit's outcome cannot be known (counted as paid until shown otherwise).
    Unknown,
    /// An unknown submit's task was found again (`by: user` for `--attach`).
    Reattached,
    /// The task succeeded; `url` is its result.
    Succeeded,
    /// The video is on disk at `file`.
    Downloaded,
    /// The task (or its submit) failed for good; `error` says why.
    Failed,
    /// Not run: an upstream gave no usable video; `error` says why.
    Skipped,
    /// The result URL expired before the download.
    Expired,
    /// An earlier video was moved aside to `file`.
    Superseded,
    /// Not sent by this run (`--max-cost`), with `reason`.
    Held,
    /// At the end: what this run and the whole batch are estimated to have spent.
    Cost,
    /// The last line: `status` is `finished`, `interrupted` or `fatal`; `counts` per results
    /// status.
    RunEnd,
}

/// One line of the stream.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StreamEvent {
    /// [`SCHEMA_VERSION`].
    pub v: u32,
    /// RFC 3339 time.
    pub ts: String,
    pub event: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The shot's request key (with `id`, its identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Relative to the output folder's `videos/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A submit's estimate (exact, as a decimal string).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub cost: Option<Money>,
    /// On `cost`: what this run's submits are estimated to bill.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub spent: Option<Money>,
    /// On `cost`: every task the batch has created, this run's and earlier ones'.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub batch_spent: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<BTreeMap<String, usize>>,
    /// On `run_end`: task queries refused (429) or failed, polls held back for a short
    /// budget, and the request rate at the end and its ceiling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queries: Option<super::QueryCounts>,
}

impl StreamEvent {
    /// An event stamped now with no optional fields.
    pub fn new(event: Kind) -> StreamEvent {
        StreamEvent {
            v: SCHEMA_VERSION,
            ts: crate::journal::now_rfc3339(),
            event,
            id: None,
            key: None,
            task_id: None,
            attempt: None,
            url: None,
            file: None,
            sha256: None,
            bytes: None,
            error: None,
            by: None,
            status: None,
            reason: None,
            cost: None,
            spent: None,
            batch_spent: None,
            currency: None,
            counts: None,
            queries: None,
        }
    }

    /// The event of a shot.
    pub fn shot(event: Kind, id: &str, key: &str) -> StreamEvent {
        StreamEvent {
            id: Some(id.to_owned()),
            key: Some(key.to_owned()),
            ..StreamEvent::new(event)
        }
    }

    /// The event a journal line is.
    pub fn of_entry(e: &Entry) -> StreamEvent {
        let event = match e.event {
            EventKind::Submitting => Kind::Submitting,
            EventKind::Submitted => Kind::Submitted,
            EventKind::Refused => Kind::Refused,
            EventKind::Succeeded => Kind::Succeeded,
            EventKind::Failed => Kind::Failed,
            EventKind::Downloaded => Kind::Downloaded,
            EventKind::Unknown => Kind::Unknown,
            EventKind::Reattached => Kind::Reattached,
            EventKind::Skipped => Kind::Skipped,
            EventKind::Expired => Kind::Expired,
            EventKind::Superseded => Kind::Superseded,
        };
        StreamEvent {
            ts: e.ts.clone(),
            task_id: e.task_id.clone(),
            attempt: e.attempt,
            url: e.url.clone(),
            file: e.file.clone(),
            sha256: e.sha256.clone(),
            bytes: e.bytes,
            error: e.error.clone(),
            by: e.by.clone(),
            cost: e.cost,
            currency: e.currency.clone(),
            ..StreamEvent::shot(event, &e.id, &e.key)
        }
    }
}

/// A run state's name in `planned` events.
pub fn status_name(status: super::state::Status) -> &'static str {
    use super::state::Status;
    match status {
        Status::Pending => "pending",
        Status::Waiting | Status::Ready | Status::Delayed | Status::Submitting => "waiting",
        Status::InFlight => "in_flight",
        Status::Downloading => "downloading",
        Status::Reconciling => "reconciling",
        Status::Succeeded => "succeeded",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
        Status::Unknown => "unknown",
        Status::Expired => "expired",
    }
}

/// The stream's writer.
pub struct EventWriter {
    out: Box<dyn Write + Send>,
    /// The reader went away or the file failed: nothing more is written.
    closed: bool,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWriter")
            .field("closed", &self.closed)
            .finish()
    }
}

impl EventWriter {
    pub fn open(to: &EventsTo) -> std::io::Result<EventWriter> {
        let out: Box<dyn Write + Send> = match to {
            EventsTo::Stdout => Box::new(std::io::stdout()),
            EventsTo::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        Ok(EventWriter { out, closed: false })
    }

    /// Writes one line and flushes it. A failure closes the stream (a reader gone away is
    /// expected; anything else is said once on stderr): the run goes on.
    pub fn emit(&mut self, e: &StreamEvent) {
        if self.closed {
            return;
        }
        let mut line = serde_json::to_vec(e).expect("an event serialises");
        line.push(b'\n');
        if let Err(err) = self.out.write_all(&line).and_then(|()| self.out.flush()) {
            self.closed = true;
            if err.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::warn!("the event stream stopped: {err}");
            }
        }
    }
}

/// The stream's JSON Schema (what `schemas/events.schema.json` holds).
pub fn schema_text() -> String {
    let schema = schemars::schema_for!(StreamEvent);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_line_is_an_event_with_the_same_facts() {
        let mut e = Entry::new(EventKind::Submitting, "a", "k").attempt(2);
        e.cost = Some(Money::from_micros(400_000));
        e.currency = Some("USD".into());
        let line = serde_json::to_value(StreamEvent::of_entry(&e)).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"v": 1, "ts": e.ts, "event": "submitting", "id": "a", "key": "k",
                               "attempt": 2, "cost": "0.40", "currency": "USD"})
        );
    }

    /// A writer whose reader has gone: every write fails.
    struct Gone;
    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_reader_gone_closes_the_stream_quietly() {
        let mut w = EventWriter {
            out: Box::new(Gone),
            closed: false,
        };
        w.emit(&StreamEvent::new(Kind::Cost));
        assert!(w.closed);
        w.emit(&StreamEvent::new(Kind::RunEnd));
    }
}
