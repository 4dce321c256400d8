//! The task table on disk, for the simulator `run --sim` starts inside the run.
//!
//! That simulator lives only as long as its run; the resume command a cut-off demo prints
//! starts a new one. So it appends every task it creates (and the port it listens on) to a
//! file in the output folder and reloads it: the resumed run polls the same task ids, and its
//! old result URLs point at the same port when it is free again. The file holds the in-process
//! demo key only, never a provider key.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::rules::Model;
use super::task::{Failure, NewTask, Task, TaskBook};

/// One line of the state file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Port { port: u16 },
    Task(Record),
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    id: String,
    key: String,
    model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<u32>,
    prompt: String,
    gen_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    created_ms: u64,
    /// What a protocol keeps beside the shared table (the native simulator's `Native`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    protocol: Option<serde_json::Value>,
}

/// What an earlier process left beside the tasks it put back in the book.
#[derive(Debug, Default)]
pub struct Saved {
    /// The port it last listened on.
    pub port: Option<u16>,
    /// Per task id, the protocol's own record ([`append`]'s `protocol`).
    pub protocol: Vec<(String, serde_json::Value)>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What an earlier process left: its tasks go into `book`. Unreadable lines (a torn last line)
/// are skipped: this is the simulator's own scratch file.
pub fn load(path: &Path, book: &mut TaskBook) -> Saved {
    let mut saved = Saved::default();
    let Ok(text) = std::fs::read(path) else {
        return saved;
    };
    let (now, now_ms) = (Instant::now(), unix_ms(SystemTime::now()));
    for line in text.split(|&b| b == b'\n') {
        match serde_json::from_slice::<Line>(line) {
            Ok(Line::Port { port: p }) => saved.port = Some(p),
            Ok(Line::Task(r)) => {
                let Some(model) = Model::from_id(&r.model) else {
                    continue;
                };
                let failure = match r.failure.as_deref() {
                    Some(code) if code == Failure::Moderation.code() => Some(Failure::Moderation),
                    Some(_) => Some(Failure::Random),
                    None => None,
                };
                let age = Duration::from_millis(now_ms.saturating_sub(r.created_ms));
                let created = now.checked_sub(age).unwrap_or(now);
                let new = NewTask {
                    key: r.key,
                    model,
                    seed: r.seed,
                    prompt: r.prompt,
                    gen_time: Duration::from_millis(r.gen_ms)
                        .saturating_sub(age.saturating_sub(now - created)),
                    failure,
                    token: 0,
                    created_unix: r.created_ms / 1000,
                };
                if let Some(protocol) = r.protocol {
                    saved.protocol.push((r.id.clone(), protocol));
                }
                book.import(r.id, new, created);
            }
            Err(_) => {}
        }
    }
    saved
}

/// Opens `path` for appending and records `port`.
pub fn open(path: &Path, port: u16) -> std::io::Result<File> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(file, "{}", serde_json::json!({ "port": port }))?;
    Ok(file)
}

/// Appends task `id` of `book` to `file` when there is one, with what its protocol keeps
/// beside it; a failure to write is logged (the simulator goes on).
pub fn record(
    file: Option<&mut File>,
    book: &TaskBook,
    id: &str,
    key: &str,
    protocol: Option<serde_json::Value>,
) {
    if let Some(file) = file
        && let Some(task) = book.get(id)
        && let Err(e) = append(file, id, key, task, protocol)
    {
        tracing::warn!("simulator: cannot record task {id}: {e}");
    }
}

/// Appends one created task.
pub fn append(
    file: &mut File,
    id: &str,
    key: &str,
    task: &Task,
    protocol: Option<serde_json::Value>,
) -> std::io::Result<()> {
    let age = Instant::now().saturating_duration_since(task.created);
    let record = Record {
        id: id.to_owned(),
        key: key.to_owned(),
        model: task.model.id().to_owned(),
        seed: task.seed,
        prompt: task.prompt.to_string(),
        gen_ms: task.gen_time.as_millis() as u64,
        failure: task.failure.map(|f| f.code().to_owned()),
        created_ms: unix_ms(SystemTime::now() - age),
        protocol,
    };
    let mut text = serde_json::to_string(&record).map_err(std::io::Error::other)?;
    text.push('\n');
    file.write_all(text.as_bytes())
}
