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
    /// Opens (creating) `path` for appending. A torn last line from a crash (its fsync never
    /// returned, so nothing was acted on) is cut off, so a torn line is only ever the last one
    /// and any bad line before it means damage.
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
            let keep = complete_len(&mut file, len).map_err(err)?;
            if keep < len {
                file.set_len(keep).map_err(err)?;
                file.sync_data().map_err(err)?;
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

/// The length of `file` up to and including its last newline (scanning back from `len`).
fn complete_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut end = len;
    let mut buf = vec![0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + pos as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}
