//! The output folder: one writer at a time, no path in it that leads elsewhere, no video lost.
//!
//! Two runs on one folder would each send every shot (paid twice), so a run holds an exclusive
//! OS lock on [`LOCK_FILE`] for as long as it writes. The OS drops the lock when its process
//! dies, however it dies, so a lock file left by a crash is simply taken over; the pid, host
//! and start time written into it only name the holder for the message.
//!
//! A video in the way of a new download is moved to `videos/superseded/`, never overwritten.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::journal::{Entry, EventKind, History, ShotId};

/// The lock file inside the output folder.
pub const LOCK_FILE: &str = ".shotlist.lock";
/// How often, and how long apart, a lock held under a lock file that names no holder is tried
/// again before the folder is reported in use: about a second in all.
const NAMELESS_TRIES: u32 = 20;
const NAMELESS_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
/// Where earlier videos go, inside `videos/`.
pub const SUPERSEDED_DIR: &str = "superseded";

#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    #[error(
        "{dir} is in use by another shotlist run ({holder}); nothing was sent. Wait for that \
         run to finish (or stop it), or give this one another folder with --out"
    )]
    Locked { dir: PathBuf, holder: String },
    #[error(
        "{path} is a symbolic link that leads out of the output folder {dir}; shotlist does not \
         follow it (nothing was sent): replace it with a real file or folder"
    )]
    Escapes { path: PathBuf, dir: PathBuf },
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A folder another run holds is exit 4; a link leading out is invalid input; a disk failure
/// is fatal. (Here, beside the error, so `error` need not know the executor.)
impl From<OutDirError> for crate::error::Error {
    fn from(e: OutDirError) -> Self {
        use crate::error::Error;
        match e {
            OutDirError::Locked { .. } => Error::Locked(e.to_string()),
            OutDirError::Escapes { .. } => Error::Usage(e.to_string()),
            OutDirError::Io { .. } => Error::Fatal(e.to_string()),
        }
    }
}

fn io(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OutDirError {
    let path = path.to_owned();
    move |source| OutDirError::Io {
        context,
        path,
        source,
    }
}

/// Who holds the lock, as written into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}, since {}", self.pid, self.host, self.since)
    }
}

/// The held lock of an output folder; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct OutputLock {
    file: File,
    dir: PathBuf,
    /// The holder named in a lock file left by a process that is gone.
    pub taken_over: Option<Holder>,
}

impl OutputLock {
    /// Creates `dir` if needed and locks it, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<OutputLock, OutDirError> {
        std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
        let path = dir.join(LOCK_FILE);
        check_inside(dir, &path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("cannot open", &path))?;
        wait_for(&mut file, dir)?;
        let taken_over = read_holder(&mut file);
        let me = Holder {
            pid: std::process::id(),
            host: host_name(),
            since: crate::journal::now_rfc3339(),
        };
        let text = serde_json::to_string(&me).unwrap_or_default() + "\n";
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(io("cannot write", &path))?;
        Ok(OutputLock {
            file,
            dir: dir.to_owned(),
            taken_over,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for OutputLock {
    /// A clean end empties the lock file, so only a crashed holder's name is left behind.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// Takes the lock of `file` (the lock file of `dir`), or says who holds it.
fn wait_for(file: &mut File, dir: &Path) -> Result<(), OutDirError> {
    let path = dir.join(LOCK_FILE);
    let mut tries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => match read_holder(file) {
                // A run that ended cleanly emptied the file, but a process forked (in the
                // same program) before its exec may briefly keep the lock alive; a run
                // just starting has not written its name yet. Both pass within moments.
                None if tries < NAMELESS_TRIES => {
                    tries += 1;
                    std::thread::sleep(NAMELESS_WAIT);
                }
                holder => {
                    return Err(OutDirError::Locked {
                        dir: dir.to_owned(),
                        holder: holder.map_or_else(
                            || "its lock file names no holder".to_owned(),
                            |h| h.to_string(),
                        ),
                    });
                }
            },
            Err(TryLockError::Error(e)) => return Err(io("cannot lock", &path)(e)),
        }
    }
}

/// The lock of a folder another command only reads (a shard folder `merge` joins): held while
/// it is read, so no run starts writing there meanwhile, and refused, naming the holder, when
/// a run holds it. A folder with no lock file has never been run in (nothing to wait for), and
/// one on a read-only disk is read as it is.
#[derive(Debug)]
pub struct ReadLock {
    _file: Option<File>,
}

impl ReadLock {
    pub fn acquire(dir: &Path) -> Result<ReadLock, OutDirError> {
        let path = dir.join(LOCK_FILE);
        check_inside(dir, &path)?;
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => File::open(&path).ok(),
        };
        let Some(mut file) = file else {
            return Ok(ReadLock { _file: None });
        };
        wait_for(&mut file, dir)?;
        Ok(ReadLock { _file: Some(file) })
    }
}

/// What the other shard folders of a batch hold: for a shard run, the other `shard-*` folders
/// (any N) beside its own; for an unsharded run, the `shard-*` folders inside its folder (the
/// default place of a batch's shards), each with a `shard.json`. A run must not send what one
/// of them already paid for (a shot that moved between shards, a folder of an earlier N, a
/// batch run whole after its shards), nor take one of their tasks for its own shot.
#[derive(Debug, Clone, Default)]
pub struct Siblings {
    /// By (id, key): the sibling folder that created (or may have created) a task for it.
    pub paid: std::collections::HashMap<(String, String), PathBuf>,
    /// By task id: the shot id that owns it there, and the folder.
    pub tasks: std::collections::HashMap<String, (String, PathBuf)>,
}

/// A sibling's journal larger than this is not read (a merge refuses it too).
const MAX_SIBLING_JOURNAL: u64 = 256 * 1024 * 1024;

impl Siblings {
    /// Reads the shard folders beside `dir` (a shard run's) or inside it (`sharded` false).
    /// Journals that are links, too large or unreadable are refused, naming them: guessing
    /// past them could pay twice.
    pub fn read(dir: &Path, sharded: bool) -> Result<Siblings, OutDirError> {
        let mut out = Siblings::default();
        let parent = if sharded { dir.parent() } else { Some(dir) };
        let Some(parent) = parent else {
            return Ok(out);
        };
        let Ok(entries) = std::fs::read_dir(parent) else {
            return Ok(out);
        };
        let own = dir.file_name();
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("shard-"))
            .filter(|e| Some(e.file_name().as_os_str()) != own)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .filter(|p| p.join("shard.json").is_file())
            .collect();
        dirs.sort();
        for sibling in dirs {
            let path = sibling.join(crate::journal::FILE_NAME);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let unread = io("cannot read the sibling shard journal", &path);
            if !meta.is_file() || meta.len() > MAX_SIBLING_JOURNAL {
                return Err(unread(std::io::Error::other(format!(
                    "not a regular file of at most {MAX_SIBLING_JOURNAL} bytes"
                ))));
            }
            let replayed = crate::journal::replay_file(&path, true)
                .map_err(|e| unread(std::io::Error::other(e.to_string())))?;
            for a in replayed.ledger.paid() {
                out.paid
                    .entry((a.id.clone(), a.key.clone()))
                    .or_insert_with(|| sibling.clone());
            }
            for (task, id) in replayed.ledger.owned_tasks() {
                out.tasks
                    .entry(task.to_owned())
                    .or_insert_with(|| (id.to_owned(), sibling.clone()));
            }
        }
        Ok(out)
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into())
}

/// Refuses `path` (inside `dir`) when it is a symbolic link that resolves outside `dir`, or
/// does not resolve at all. Links that stay inside are fine.
pub fn check_inside(dir: &Path, path: &Path) -> Result<(), OutDirError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_symlink() {
        return Ok(());
    }
    let escapes = || OutDirError::Escapes {
        path: path.to_owned(),
        dir: dir.to_owned(),
    };
    let root = dir.canonicalize().map_err(io("cannot resolve", dir))?;
    match path.canonicalize() {
        Ok(target) if target.starts_with(&root) && target != root => Ok(()),
        _ => Err(escapes()),
    }
}

/// Checks every path a run writes in `dir`, before anything is written or sent.
pub fn check_paths(dir: &Path, extra: &[&str]) -> Result<(), OutDirError> {
    let videos = dir.join("videos");
    let fixed = [
        crate::journal::FILE_NAME,
        crate::report::CSV_FILE,
        crate::report::JSON_FILE,
        "plan.json",
        "videos",
    ];
    for name in fixed.iter().chain(extra) {
        check_inside(dir, &dir.join(name))?;
    }
    check_inside(dir, &videos.join(SUPERSEDED_DIR))
}

/// Moves `videos/<file>` to `videos/superseded/<stem>.<tag>.<ext>` (never over another file)
/// and returns its new name relative to `videos/`. `tag` tells the versions apart.
pub fn supersede(videos: &Path, file: &str, tag: &str) -> Result<String, OutDirError> {
    let from = videos.join(file);
    let to_dir = videos.join(SUPERSEDED_DIR);
    std::fs::create_dir_all(&to_dir).map_err(io("cannot create", &to_dir))?;
    let name = Path::new(file);
    let stem = name
        .file_stem()
        .map_or_else(|| file.to_owned(), |s| s.to_string_lossy().into_owned());
    let ext = name
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    for n in 1u32.. {
        let candidate = if n == 1 {
            format!("{stem}.{tag}{ext}")
        } else {
            format!("{stem}.{tag}-{n}{ext}")
        };
        let to = to_dir.join(&candidate);
        if std::fs::symlink_metadata(&to).is_ok() {
            continue;
        }
        // A hard link then an unlink: unlike rename, linking never replaces a file that
        // appeared in between.
        match std::fs::hard_link(&from, &to) {
            Ok(()) => {
                std::fs::remove_file(&from).map_err(io("cannot move", &from))?;
                return Ok(format!("{SUPERSEDED_DIR}/{candidate}"));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) => {
                std::fs::rename(&from, &to).map_err(io("cannot move", &from))?;
                return Ok(format!("{SUPERSEDED_DIR}/{candidate}"));
            }
        }
    }
    unreachable!("u32 names run out before a folder does")
}

/// Moves whatever sits at `videos/<file>` out of the way of the video `(id, key)` is about to
/// place there (a paid video is never overwritten) and returns the journal line that records
/// where it went: under the (id, key) whose video it is (among `owners`, the histories that
/// recorded this file name), else under `(id, key)` with an error saying it was not the
/// recorded video. `None` when nothing is there.
pub fn supersede_recorded(
    videos: &Path,
    file: &str,
    (id, key): (&str, &str),
    owners: &[(&ShotId, &History)],
) -> Result<Option<Entry>, OutDirError> {
    let path = videos.join(file);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return Ok(None);
    };
    let sha = meta.is_file().then(|| super::sha256_file(&path)).flatten();
    let owner = owners
        .iter()
        .filter(|(_, h)| sha.is_some() && h.sha256 == sha)
        .max_by_key(|(_, h)| h.line)
        .copied();
    let tag = match (owner, &sha) {
        (Some(((_, key), _)), _) => key.chars().take(12).collect(),
        (None, Some(sha)) => sha.chars().take(12).collect(),
        (None, None) => "link".to_owned(),
    };
    let moved = supersede(videos, file, &tag)?;
    let (id, key) = owner.map_or((id, key), |((id, key), _)| (id.as_str(), key.as_str()));
    let mut e = Entry::new(EventKind::Superseded, id, key);
    e.file = Some(moved);
    e.sha256 = sha;
    e.bytes = meta.is_file().then_some(meta.len());
    if owner.is_none() {
        e.error = Some(format!(
            "videos/{file} was not the video the journal recorded under that name (changed or \
             placed by hand); kept, not overwritten"
        ));
    }
    Ok(Some(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_dropped_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let first = OutputLock::acquire(dir.path()).unwrap();
        assert_eq!(first.taken_over, None);
        let err = OutputLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("--out"), "{err}");
        drop(first);
        let second = OutputLock::acquire(dir.path()).unwrap();
        assert_eq!(second.taken_over, None);
        drop(second);
        // What a process killed while holding the lock leaves: its name, no lock.
        let crashed = r#"{"pid":4242,"host":"h","since":"2026-11-24T00:00:00Z"}"#;
        std::fs::write(dir.path().join(LOCK_FILE), crashed).unwrap();
        let third = OutputLock::acquire(dir.path()).unwrap();
        assert_eq!(third.taken_over.as_ref().map(|h| h.pid), Some(4242));
    }

    #[test]
    fn a_lock_kept_a_moment_after_a_clean_end_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let first = OutputLock::acquire(dir.path()).unwrap();
        // What a child forked while `first` was held keeps until its exec: the same lock.
        let inherited = first.file.try_clone().unwrap();
        drop(first);
        let (taken, released) = std::sync::mpsc::channel();
        let releaser = std::thread::spawn(move || {
            let _ = released.recv_timeout(NAMELESS_WAIT * 3);
            drop(inherited);
        });
        let second = OutputLock::acquire(dir.path()).unwrap();
        let _ = taken.send(());
        releaser.join().unwrap();
        assert_eq!(second.taken_over, None);
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_folder_are_refused_links_inside_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real.jsonl"), "").unwrap();
        std::os::unix::fs::symlink("real.jsonl", dir.path().join("journal.jsonl")).unwrap();
        check_paths(dir.path(), &[]).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("videos")).unwrap();
        let err = check_paths(dir.path(), &[]).unwrap_err();
        assert!(matches!(err, OutDirError::Escapes { .. }), "{err}");
    }

    #[test]
    fn superseding_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let videos = dir.path();
        for (content, expect) in [
            ("one", "superseded/a.k1.mp4"),
            ("two", "superseded/a.k1-2.mp4"),
        ] {
            std::fs::write(videos.join("a.mp4"), content).unwrap();
            assert_eq!(supersede(videos, "a.mp4", "k1").unwrap(), expect);
            assert_eq!(
                std::fs::read_to_string(videos.join(expect)).unwrap(),
                content
            );
        }
        assert!(!videos.join("a.mp4").exists());
    }
}
