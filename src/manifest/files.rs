//! Reading the files a manifest names: regular files only, inside the manifest's folder, capped.
//!
//! A manifest may come from someone else (a pull request checked in CI), so `../secrets.csv`, an
//! absolute path or a symlink leading out must not be read, and a FIFO, `/dev/zero` or a huge file
//! must not hang or exhaust the process. The file type is checked before opening, and the read
//! stops one byte past the cap even if the file grows meanwhile. Errors never quote contents.

use std::io::Read;
use std::path::{Component, Path};

/// A file that was not read, and why.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("`{name}` is outside the manifest's folder")]
    Outside { name: String },
    #[error("`{name}` leads outside the manifest's folder")]
    LeadsOutside { name: String },
    #[error("`{name}` is not a regular file (it is a {kind})")]
    NotAFile { name: String, kind: &'static str },
    #[error("`{name}` is larger than {max_mb} MiB")]
    TooBig { name: String, max_mb: u64 },
    #[error("cannot read `{name}`: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// The environment variable that raises the file size cap, in MiB.
pub const MAX_FILE_ENV: &str = "SHOTLIST_MAX_FILE_MB";

impl FileError {
    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            FileError::Outside { .. } | FileError::LeadsOutside { .. } => {
                "files are read only next to the manifest or below it: no `..`, absolute paths or symlinks leading out".into()
            }
            FileError::NotAFile { .. } => "name a plain file, not a device, pipe or folder".into(),
            FileError::TooBig { .. } => {
                format!("split the file, or raise the cap with {MAX_FILE_ENV}=<MiB>")
            }
            FileError::Io { .. } => "paths are relative to the manifest's folder".into(),
        }
    }

    /// True when the file does not exist (templates report that their own way).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads `rel` below `root`, refusing anything that leaves `root`.
pub fn read_inside(root: &Path, rel: &str, max_bytes: u64) -> Result<Vec<u8>, FileError> {
    let name = rel.to_owned();
    let plain = !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain {
        return Err(FileError::Outside { name });
    }
    let io = |source| FileError::Io {
        name: rel.to_owned(),
        source,
    };
    let real = root.join(rel).canonicalize().map_err(io)?;
    let real_root = root.canonicalize().map_err(io)?;
    if !real.starts_with(&real_root) {
        return Err(FileError::LeadsOutside { name });
    }
    read_regular(&real, rel, max_bytes)
}

/// Reads `path` if it is a regular file of at most `max_bytes`; `name` is how errors call it.
pub fn read_regular(path: &Path, name: &str, max_bytes: u64) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io {
        name: name.to_owned(),
        source,
    };
    let too_big = || FileError::TooBig {
        name: name.to_owned(),
        max_mb: max_bytes.div_ceil(1 << 20),
    };
    check_type(name, &std::fs::metadata(path).map_err(io)?)?;
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_type(name, &meta)?;
    if meta.len() > max_bytes {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big());
    }
    Ok(bytes)
}

fn check_type(name: &str, meta: &std::fs::Metadata) -> Result<(), FileError> {
    if meta.is_file() {
        return Ok(());
    }
    let kind = if meta.is_dir() {
        "folder"
    } else {
        special_kind(meta)
    };
    Err(FileError::NotAFile {
        name: name.to_owned(),
        kind,
    })
}

#[cfg(unix)]
fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "named pipe"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::Metadata) -> &'static str {
    "special file"
}
