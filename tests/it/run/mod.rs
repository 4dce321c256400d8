//! Integration tests of the executor: real runs over loopback HTTP against the simulator.
//!
//! `lib` runs hand-built plans through `shotlist::exec::execute` against an in-test simulator,
//! so every fault can be injected exactly; `cli` drives the real binary (plan, run, status,
//! SIGKILL). Every test asserts on the results files and on the simulator's own stats.

mod attach;
mod budget;
mod cli;
mod dashscope;
mod events;
mod faults;
mod hostile_net;
mod progress;
mod provider;
mod resume;
mod throughput;
mod trust;
mod videoedit;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use shotlist::api::{ApiKey, Client, ClientConfig};
use shotlist::exec::{Backoff, Outcome, ProgressMode, ResumeFlags, RunOptions};
use shotlist::plan::{Plan, PlannedShot};
use shotlist::sim::{SimConfig, SimHandle};

pub const KEY: &str = "sk-run-test-0123456789";
pub const POLL: Duration = Duration::from_millis(100);

/// Simulator defaults for these tests: quick tasks.
pub fn sim_config() -> SimConfig {
    SimConfig {
        gen_time: Duration::from_millis(150),
        ..SimConfig::default()
    }
}

pub async fn start_sim(config: SimConfig) -> SimHandle {
    shotlist::sim::start(config, 0).await.expect("start sim")
}

pub use crate::support::t2v_body;

pub fn i2v_after_body(prompt: &str, upstream: &str) -> Value {
    json!({
        "model": "wan2.7-i2v-2026-04-25",
        "prompt": prompt,
        "duration": 5,
        "metadata": {
            "input": {"prompt": prompt, "media": [{"type": "first_clip", "shot": upstream}]},
            "parameters": {"resolution": "720P", "duration": 5,
                           "prompt_extend": false, "watermark": false}
        }
    })
}

/// A shot; `upstream` makes it an i2v continuation of that shot.
pub fn shot(id: &str, prompt: &str, upstream: Option<&str>) -> PlannedShot {
    let body = match upstream {
        Some(up) => i2v_after_body(prompt, up),
        None => t2v_body(prompt),
    };
    let key = blake3::hash(body.to_string().as_bytes())
        .to_hex()
        .to_string();
    PlannedShot {
        id: id.into(),
        key,
        model: body["model"].as_str().unwrap_or_default().into(),
        duration: 5,
        input_video: None,
        resolution: "720P".into(),
        ratio: upstream.is_none().then(|| "16:9".into()),
        seed: None,
        source: Some("table".into()),
        row: Some(1),
        take: 1,
        matrix: Vec::new(),
        depends_on: Vec::new(),
        group: 0,
        file: format!("{id}.mp4"),
        body: body.into(),
    }
}

/// A t2v shot asking 50 s, which the simulator refuses with a 400 (nothing created).
pub fn refused_shot(id: &str, prompt: &str) -> PlannedShot {
    let mut bad = shot(id, prompt, None);
    let mut body = bad.body.value();
    body["duration"] = json!(50);
    body["metadata"]["parameters"]["duration"] = json!(50);
    bad.body = body.into();
    bad
}

/// `n` independent t2v shots `s0..s{n-1}` with distinct prompts.
pub fn flat_plan(out: &Path, n: usize, tag: &str) -> Plan {
    plan(
        out,
        (0..n)
            .map(|i| shot(&format!("s{i}"), &format!("{tag} shot {i}"), None))
            .collect(),
    )
}

/// A plan of `shots`, each depending on the shots its body's `shot:` media name.
pub fn plan(out: &Path, mut shots: Vec<PlannedShot>) -> Plan {
    let ids: Vec<String> = shots.iter().map(|s| s.id.clone()).collect();
    for shot in &mut shots {
        let body = shot.body.value();
        let media = body["metadata"]["input"]["media"].as_array().cloned();
        shot.depends_on = media
            .unwrap_or_default()
            .iter()
            .filter_map(|m| ids.iter().position(|id| m["shot"] == id.as_str()))
            .collect();
    }
    Plan {
        name: "test".into(),
        manifest: "test.yaml".into(),
        out_dir: out.to_owned(),
        shots,
        batch_seed: None,
    }
}

/// A client of the simulator, which never stalls an answer: the timeout only has to outlast a
/// busy CI machine (a timed-out submit is `unknown`, which would change what a test counts).
pub fn client(sim: &SimHandle, key: &str) -> Client {
    Client::new(ClientConfig {
        base_url: sim.base_url(),
        api_key: ApiKey::new(key),
        timeout: Duration::from_secs(20),
    })
    .expect("client")
}

/// Retry waits of these tests: the provider's schedule scaled down 20 times.
pub const FAST_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(3),
};

pub fn opts(concurrency: usize) -> RunOptions {
    RunOptions {
        concurrency,
        poll: Some(POLL),
        queries_per_second: 1000,
        retry_backoff: FAST_BACKOFF,
        progress: ProgressMode::Quiet,
        ..RunOptions::default()
    }
}

pub fn flags(retry_failed: bool, resubmit_unknown: bool) -> ResumeFlags {
    ResumeFlags {
        retry_failed,
        resubmit_unknown,
    }
}

pub async fn execute(plan: &Plan, sim: &SimHandle, opts: RunOptions) -> Outcome {
    tokio::time::timeout(
        Duration::from_secs(60),
        shotlist::exec::execute(plan, client(sim, KEY), opts),
    )
    .await
    .expect("run finished within a minute")
    .expect("run")
}

pub async fn stats_of(sim: &SimHandle) -> Value {
    let url = sim.base_url();
    tokio::task::spawn_blocking(move || crate::support::sim_stats(&url))
        .await
        .expect("stats task")
}

/// How many sim tasks were created for each prompt.
pub fn created_per_prompt(stats: &Value) -> std::collections::BTreeMap<String, usize> {
    let mut map = std::collections::BTreeMap::new();
    for t in stats["tasks"].as_array().expect("tasks list in stats") {
        *map.entry(t["prompt"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    map
}

pub fn count(stats: &Value, route: &str, status: &str) -> u64 {
    stats["requests"][route][status].as_u64().unwrap_or(0)
}

pub fn results_json(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results JSON")
}

pub fn results_csv(out: &Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(out.join("results.csv")).expect("results.csv");
    r.records().map(|r| r.expect("csv row")).collect()
}

pub fn status_of(rows: &[Value], id: &str) -> String {
    rows.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row {id}"))["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn journal_events(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line"))
        .collect()
}

/// The statuses of the results table, in plan order.
pub fn statuses(out: &Path) -> Vec<String> {
    results_json(out)
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}
