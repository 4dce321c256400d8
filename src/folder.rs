//! The output folder: what its files are called, who may write it, and one read of its journal.
//!
//! Every command reads and claims a folder through this module, so they agree on what a folder
//! holds: its layout (the names below, with the journal's, the results' and the marks' in their
//! own modules), its claims (the shard it holds, the provider its tasks went to), bounded reads
//! that never follow a link out of it, and [`replay`], the one replay of its journal into
//! histories and the ledger of what was paid. The lock and the paths a run checks are in
//! [`crate::exec::outdir`].

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::api::ProviderId;
use crate::error::Error;
use crate::journal::{self, Replayed};
use crate::plan::shard::ShardSpec;
use crate::report;

/// Marks a shard folder: which shard of how many it holds.
pub const SHARD_FILE: &str = "shard.json";
/// Written by a merge: what it merged, and the hash of the journal it wrote.
pub const MERGE_FILE: &str = "merge.json";
/// `shard.json` and `merge.json` are a few lines.
pub const MAX_SMALL_FILE: u64 = 64 * 1024;
/// `merge.json`: its `superseded` lines make it grow with the files merges moved aside.
pub const MAX_RECORD: u64 = 64 * 1024 * 1024;
/// A shard's journal: far above any real batch's, far below what would exhaust memory.
pub const MAX_JOURNAL: u64 = 256 * 1024 * 1024;

/// Where the in-process simulator of `--sim` keeps its tasks, inside the output folder.
pub const SIM_STATE_FILE: &str = ".sim-tasks.jsonl";
/// Names the provider an output folder's tasks were sent to.
pub const PROVIDER_FILE: &str = "provider";

/// A folder's file that cannot be trusted as it is.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{path} is {what}; output and shard folders are read without following links")]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("{path} is {size} bytes, more than the {max} shotlist reads there")]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("{path} is not valid: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("{dir} holds {what}: {fix}")]
    Taken {
        dir: PathBuf,
        what: String,
        fix: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<FolderError> for Error {
    fn from(e: FolderError) -> Self {
        match e {
            FolderError::Io { context, source } => Error::Io { context, source },
            other => Error::Usage(other.to_string()),
        }
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> FolderError {
    let context = context.into();
    move |source| FolderError::Io { context, source }
}

/// The folder's journal replayed (histories, ledger), refusing a journal that is a link
/// leading out of it. An unreadable line is an error naming it unless `skip_bad`, which skips
/// and lists it.
pub fn replay(dir: &Path, skip_bad: bool) -> Result<Replayed, Error> {
    let path = dir.join(journal::FILE_NAME);
    crate::exec::outdir::check_inside(dir, &path)?;
    journal::replay_file(&path, skip_bad).map_err(|e| Error::Usage(e.to_string()))
}

/// Reads `path` whole when it is a regular file (not a link) of at most `max` bytes; `None`
/// when it does not exist.
pub fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, FolderError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(format!("cannot read {}", path.display()))(e)),
    };
    regular_file(path, &meta)?;
    let too_large = |size| FolderError::TooLarge {
        path: path.to_owned(),
        size,
        max,
    };
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(io(format!("cannot read {}", path.display())))?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

pub fn regular_file(path: &Path, meta: &fs::Metadata) -> Result<(), FolderError> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    Err(FolderError::NotAFile {
        path: path.to_owned(),
        what: if kind.is_symlink() {
            "a symbolic link"
        } else {
            "not a regular file"
        },
    })
}

pub fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> Result<T, FolderError> {
    serde_json::from_slice(bytes).map_err(|e| FolderError::BadFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The shard `dir` holds, from its `shard.json`; `None` when it has none.
pub fn folder_shard(dir: &Path) -> Result<Option<ShardSpec>, FolderError> {
    let path = dir.join(SHARD_FILE);
    read_bounded(&path, MAX_SMALL_FILE)?
        .map(|bytes| {
            let spec: ShardSpec = parse_json(&path, &bytes)?;
            spec.to_string()
                .parse::<ShardSpec>()
                .map_err(|e| FolderError::BadFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })
        })
        .transpose()
}

/// Before a run writes into `dir`: a shard run claims it (writing `shard.json`), and a folder
/// holding one shard never receives another shard's (or an unsharded) run, so a merge can
/// trust that a shard folder's journal is that shard's.
pub fn claim_folder(dir: &Path, shard: Option<ShardSpec>) -> Result<(), Error> {
    let taken = |what: String, fix: String| FolderError::Taken {
        dir: dir.to_owned(),
        what,
        fix,
    };
    match (folder_shard(dir)?, shard) {
        (None, None) => Ok(()),
        (Some(held), Some(spec)) if held == spec => Ok(()),
        (Some(held), _) => Err(taken(
            format!("shard {held}"),
            format!("run it with --shard {held}, or give this run another --out"),
        )
        .into()),
        (None, Some(spec)) => {
            if fs::symlink_metadata(dir.join(journal::FILE_NAME)).is_ok() {
                return Err(taken(
                    "a run without --shard".into(),
                    "give the shard its own --out".into(),
                )
                .into());
            }
            fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
            let text = serde_json::to_vec(&spec).expect("a shard spec serialises");
            report::write_atomic(&dir.join(SHARD_FILE), &text)
                .map_err(|e| Error::io(format!("cannot write {}", e.path.display()), e.source))
        }
    }
}

/// Records `provider` in the folder, or refuses a folder whose tasks went to another one: the
/// same shot there is another paid task, and its task ids mean nothing here. Called under the
/// folder's lock.
pub fn claim_provider(dir: &Path, provider: ProviderId) -> Result<(), Error> {
    match folder_provider(dir)? {
        Some(held) if held != provider => Err(Error::Usage(format!(
            "{} holds tasks sent to {held}, and this run is for {provider}: the same shots there \
             would be new paid tasks; run it with --provider {held}, or give this run another \
             --out; nothing was sent",
            dir.display()
        ))),
        _ => record_provider(dir, provider),
    }
}

/// The provider `dir`'s tasks went to: its `provider` file, else gravitex when it has a journal
/// (written before providers could be chosen), else none yet.
pub fn folder_provider(dir: &Path) -> Result<Option<ProviderId>, Error> {
    let file = dir.join(PROVIDER_FILE);
    match read_bounded(&file, 64)? {
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let known = ProviderId::from_name(&text).ok_or_else(|| {
                Error::Usage(format!(
                    "{} names no known provider ({:?}): it must say gravitex or dashscope; \
                     nothing was sent",
                    file.display(),
                    text.trim()
                ))
            })?;
            Ok(Some(known))
        }
        None => Ok(dir
            .join(crate::journal::FILE_NAME)
            .exists()
            .then_some(ProviderId::Gravitex)),
    }
}

/// Writes `dir`'s `provider` file.
pub fn record_provider(dir: &Path, provider: ProviderId) -> Result<(), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    crate::report::write_atomic(&dir.join(PROVIDER_FILE), format!("{provider}\n").as_bytes())
        .map_err(|e| Error::io(format!("cannot write {}", e.path.display()), e.source))
}
