//! Appending to the journal: whole lines, flushed and fsync'd before the caller acts.
//!
//! Callers batch: [`Journal::append_all`] writes several lines with one fsync, which is what
//! lets the executor keep thousands of tasks moving without a disk sync per event.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Entry;

#[derive(Debug, thiserror::Error)]
#[error("cannot write the journal {path}: {source}")]
pub struct JournalError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// An open journal file, appended to only.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl Journal {
    /// Opens (creating) `path` for appending. A torn last line from a crash is terminated so
    /// the next entry starts on its own line.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let err = |source| JournalError {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        if len > 0 {
            use std::io::{Read, Seek, SeekFrom};
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1)).map_err(err)?;
            file.read_exact(&mut last).map_err(err)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(err)?;
            }
        }
        Ok(Journal {
            path: path.to_owned(),
            file,
            buf: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, entry: &Entry) -> Result<(), JournalError> {
        self.append_all(std::slice::from_ref(entry))
    }

    /// Writes every entry as one line each, then flushes and syncs once.
    pub fn append_all(&mut self, entries: &[Entry]) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        for entry in entries {
            serde_json::to_writer(&mut self.buf, entry).map_err(|e| JournalError {
                path: self.path.clone(),
                source: std::io::Error::other(e),
            })?;
            self.buf.push(b'\n');
        }
        let err = |source| JournalError {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&self.buf).map_err(err)?;
        self.file.flush().map_err(err)?;
        self.file.sync_data().map_err(err)
    }
}
