//! The real client against the real simulator over loopback HTTP (issue 3): the provider's own
//! request bodies, every response shape, every failure class the simulator can produce, and
//! many tasks at once. Each test checks what the client returned *and* what the simulator says
//! happened (`GET /__sim/stats`), so a client that "succeeds" by skipping work still fails.

mod base_url;
mod bodies;
mod classification;
mod concurrency;
mod dashscope;
mod provider_requests;
mod shapes;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;
use shotlist::api::{ApiKey, Client, ClientConfig, Downloaded, TaskState, TaskStatus};
use shotlist::sim::{SimConfig, SimHandle};

/// A distinctive key, so a leak into any error text is found by a plain `contains`.
pub const KEY: &str = "sk-CLIENTSIM-5e1f0a77-DO-NOT-LEAK";

/// The clip the simulator serves, read from the fixture here rather than from the simulator.
pub const CLIP: &[u8] = include_bytes!("../../fixtures/sim/clip.mp4");

/// Longest a test waits for one task to end.
const TASK_DEADLINE: Duration = Duration::from_secs(30);

/// How often tests poll: far faster than the executor, to keep the module quick.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// A simulator whose tasks take `gen_ms` milliseconds, everything else at its defaults.
pub fn config(gen_ms: u64) -> SimConfig {
    SimConfig {
        gen_time: Duration::from_millis(gen_ms),
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> SimHandle {
    shotlist::sim::start(config, 0).await.expect("start sim")
}

/// The project's client for `sim`, sending [`KEY`].
pub fn client(sim: &SimHandle) -> Client {
    client_for(&sim.base_url(), KEY)
}

pub fn client_for(base_url: &str, key: &str) -> Client {
    Client::new(ClientConfig {
        base_url: base_url.to_owned(),
        api_key: ApiKey::new(key),
        timeout: Duration::from_secs(10),
    })
    .expect("client builds")
}

/// The simulator's `GET /__sim/stats` document with the task list, fetched over HTTP.
pub async fn stats(sim: &SimHandle) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
        .get(format!("{}/__sim/stats", sim.base_url()))
        .send()
        .await
        .expect("stats sent")
        .error_for_status()
        .expect("stats 200")
        .json()
        .await
        .expect("stats JSON")
}

/// How many `route` requests the simulator answered with `outcome` (`"200"`, `"lost"`, …).
pub fn count(stats: &Value, route: &str, outcome: &str) -> u64 {
    stats["requests"][route][outcome].as_u64().unwrap_or(0)
}

/// Everything one task went through, as the client saw it.
#[derive(Debug)]
pub struct Polled {
    pub last: TaskState,
    /// Every answer before the last one.
    pub before: Vec<TaskState>,
}

/// Queries `task_id` until the task succeeds or fails. Panics on any query error or on
/// `Unknown`, which the simulator never answers.
pub async fn poll_to_end(client: &Client, task_id: &str) -> Polled {
    let started = Instant::now();
    let mut before = Vec::new();
    loop {
        let state = client
            .query(task_id)
            .await
            .unwrap_or_else(|e| panic!("query {task_id}: {e}"));
        match state.status {
            TaskStatus::Succeeded | TaskStatus::Failed => {
                return Polled {
                    last: state,
                    before,
                };
            }
            TaskStatus::Unknown => panic!("{task_id}: the simulator never says unknown: {state:?}"),
            TaskStatus::Waiting | TaskStatus::Running => before.push(state),
        }
        assert!(
            started.elapsed() < TASK_DEADLINE,
            "{task_id} did not finish in {TASK_DEADLINE:?}: {before:?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Submits `body`, polls it to success and returns its task id and result URL.
pub async fn run_to_success(client: &Client, body: &Value) -> (String, String) {
    let task_id = client
        .submit(body)
        .await
        .unwrap_or_else(|e| panic!("submit refused: {e}\nbody: {body:#}"))
        .task_id;
    let polled = poll_to_end(client, &task_id).await;
    assert_eq!(
        polled.last.status,
        TaskStatus::Succeeded,
        "{task_id}: {polled:?}"
    );
    assert_eq!(polled.last.error, None, "{task_id}");
    let url = polled.last.url.expect("a succeeded task has a URL");
    (task_id, url)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// The file at `path` is the simulator's clip, byte for byte, as `downloaded` reports, and is a
/// real MP4 (an `ftyp` box first).
pub fn assert_is_the_clip(path: &Path, downloaded: &Downloaded) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        bytes.get(4..8),
        Some(&b"ftyp"[..]),
        "{} is no MP4",
        path.display()
    );
    assert_eq!(bytes, CLIP, "{} is not the served clip", path.display());
    assert_eq!(downloaded.bytes, CLIP.len() as u64);
    assert_eq!(downloaded.sha256, sha256_hex(CLIP));
    assert_eq!(downloaded.sha256, sha256_hex(&bytes));
}

/// The names in `dir`: a failed download must leave nothing, not even a partial file.
pub fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}
