//! Integration tests of the simulator over real loopback HTTP, with plain reqwest calls (never
//! the project's own client), so the simulator is checked against the reference by itself.

mod cli;
mod dashscope;
mod download;
mod edit_agreement;
mod faults;
mod load;
mod protocol;
mod rules;

use std::time::Duration;

use serde_json::{Value, json};
use shotlist::sim::{SimConfig, SimHandle};

pub const KEY: &str = "sk-sim-test";

/// A plain HTTP client (the crate builds reqwest without a default TLS provider).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// Defaults for tests: instant tasks unless a test says otherwise.
pub fn config() -> SimConfig {
    SimConfig {
        gen_time: Duration::ZERO,
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> SimHandle {
    shotlist::sim::start(config, 0).await.expect("start sim")
}

/// A valid t2v body with a seed.
pub fn t2v(prompt: &str) -> Value {
    let mut body = crate::support::t2v_body(prompt);
    body["metadata"]["parameters"]["seed"] = json!(42);
    body
}

pub async fn submit(client: &reqwest::Client, sim: &SimHandle, body: &Value) -> reqwest::Response {
    client
        .post(format!("{}/v1/video/generations", sim.base_url()))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .expect("submit sent")
}

pub async fn query(client: &reqwest::Client, sim: &SimHandle, task_id: &str) -> reqwest::Response {
    client
        .get(format!("{}/v1/video/generations/{task_id}", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("query sent")
}

/// Submits `body`, expects 200, and returns the task id (doc or legacy shape).
pub async fn submit_ok(client: &reqwest::Client, sim: &SimHandle, body: &Value) -> String {
    let response = submit(client, sim, body).await;
    let status = response.status();
    let text = response.text().await.expect("submit body");
    assert_eq!(status, 200, "submit refused: {text}");
    let json: Value = serde_json::from_str(&text).expect("submit JSON");
    json["task_id"]
        .as_str()
        .or(json["id"].as_str())
        .unwrap_or_else(|| panic!("no task id in {json}"))
        .to_owned()
}

pub async fn stats(client: &reqwest::Client, sim: &SimHandle, summary: bool) -> Value {
    let suffix = if summary { "?summary=1" } else { "" };
    client
        .get(format!("{}/__sim/stats{suffix}", sim.base_url()))
        .send()
        .await
        .expect("stats sent")
        .json()
        .await
        .expect("stats JSON")
}

/// The reason inside any error body shape, nested `fail_to_fetch_task` JSON unwrapped.
pub fn error_message(body: &Value) -> String {
    if let Some(m) = body["error"]["message"].as_str() {
        return m.to_owned();
    }
    let message = body["message"].as_str().unwrap_or_default();
    if body["code"] == "fail_to_fetch_task" {
        let inner: Value = serde_json::from_str(message).expect("nested error JSON");
        return inner["message"].as_str().unwrap_or_default().to_owned();
    }
    message.to_owned()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
