//! The append-only journal of a run, written before the fact.
//!
//! Every generation is paid work, so the journal is the source of truth for what was sent:
//! `submitting` is on disk before the POST leaves, `submitted` as soon as the task id is known.
//! A rerun replays it ([`replay`]) to decide, per shot (id and key), what must not be sent again.

mod entry;
pub mod ledger;
mod replay;
mod writer;

pub use entry::{Entry, EventKind};
pub use ledger::{Ledger, Spent};
pub use replay::{
    History, Phase, ReadError, Replayed, ShotId, replay, replay_file, superseded_file,
};
pub use writer::{Journal, JournalError};

/// The journal's file name inside the output folder.
pub const FILE_NAME: &str = "journal.jsonl";

/// Now, as the RFC 3339 text the journal stores.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
