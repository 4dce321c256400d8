//! Generate, then restyle: a t2v shot and a `wan2.7-videoedit` of its video, planned from a
//! manifest and run on both providers against their simulators. A recording proxy in front of
//! each simulator keeps the create bodies, so the test sees that the edit carried the upstream's
//! result URL as its `video`; the simulator's own stats count the tasks paid for.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use shotlist::api::dashscope;
use shotlist::cost::Money;
use shotlist::sim::SimProvider;

use super::*;

const CHAIN: &str = r#"version: 1
shots:
  - id: harbour
    model: t2v
    prompt: A fishing harbour at dawn.
    duration: 5
  - id: watercolour
    model: edit
    prompt: Repaint 视频1 as a watercolour.
    audio_setting: origin
    media:
      - { type: video, shot: harbour }
"#;

struct Recorder {
    sim: String,
    http: reqwest::Client,
    creates: Mutex<Vec<Value>>,
}

/// Starts a proxy that forwards everything to `sim` and keeps each POST body.
async fn recorder(sim: &SimHandle) -> (String, Arc<Recorder>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let state = Arc::new(Recorder {
        sim: sim.base_url(),
        http: reqwest::Client::new(),
        creates: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(Arc::clone(&state));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), state)
}

async fn forward(
    State(rec): State<Arc<Recorder>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST {
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        rec.creates.lock().unwrap().push(value);
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = rec
        .http
        .request(method, format!("{}{path}", rec.sim))
        .body(body);
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "content-length") {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.expect("the simulator answers");
    let status = StatusCode::from_u16(answer.status().as_u16()).expect("status");
    let kind = answer.headers().get("content-type").cloned();
    let mut response = (status, answer.bytes().await.expect("body")).into_response();
    if let Some(kind) = kind {
        response.headers_mut().insert("content-type", kind);
    }
    response
}

/// Runs the chain through a recorder in front of `sim`; returns the output folder's parent,
/// the create bodies seen and the simulator's stats.
async fn run_chain(sim: &SimHandle, provider: SimProvider) -> (tempfile::TempDir, Vec<Value>) {
    let (dir, planned) = crate::plan::plan_in_temp(CHAIN, &[]);
    let mut plan = planned.expect("the chain plans").plan;
    plan.out_dir = dir.path().join("out");
    let (base, rec) = recorder(sim).await;
    let client = client_at(&base, provider);
    for _ in 0..2 {
        let outcome = tokio::time::timeout(
            Duration::from_secs(60),
            shotlist::exec::execute(&plan, client.clone(), opts(2)),
        )
        .await
        .expect("run finished within a minute")
        .expect("run");
        assert_eq!(outcome.exit_code(), 0);
    }
    let creates = rec.creates.lock().unwrap().clone();
    (dir, creates)
}

/// A client of `provider` at `base` (a simulator or a recorder in front of one).
fn client_at(base: &str, provider: SimProvider) -> Client {
    let config = |base_url: String| ClientConfig {
        base_url,
        api_key: ApiKey::new(KEY),
        timeout: Duration::from_secs(5),
    };
    match provider {
        SimProvider::Gravitex => Client::new(config(base.to_owned())),
        SimProvider::Dashscope => {
            Client::for_provider(dashscope::PROVIDER, config(format!("{base}/api/v1")))
        }
    }
    .expect("client")
}

/// The media of the create body for `model`.
fn media_of<'a>(creates: &'a [Value], pointer: &str, model: &str) -> &'a Value {
    let edit: Vec<&Value> = creates.iter().filter(|b| b["model"] == model).collect();
    assert_eq!(edit.len(), 1, "one create of {model}: {creates:#?}");
    edit[0].pointer(pointer).expect("media")
}

async fn chain_on(provider: SimProvider, model: &str, media: &str) {
    let sim = start_sim(SimConfig {
        provider,
        ..sim_config()
    })
    .await;
    let (dir, creates) = run_chain(&sim, provider).await;
    let out = dir.path().join("out");
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 2, "each shot paid once: {stats:#}");
    assert_eq!(count(&stats, "submit", "400"), 0, "{stats:#}");
    assert_eq!(creates.len(), 2, "a rerun sends nothing: {creates:#?}");
    let rows = results_json(&out);
    assert_eq!(statuses(&out), ["succeeded", "succeeded"]);
    let upstream_url = rows
        .iter()
        .find(|r| r["id"] == "harbour")
        .and_then(|r| r["url"].as_str())
        .expect("the t2v shot's result URL")
        .to_owned();
    assert_eq!(
        *media_of(&creates, media, model),
        json!([{"type": "video", "url": upstream_url}]),
        "the edit restyles the upstream's video"
    );
    for id in ["harbour", "watercolour"] {
        assert_eq!(
            std::fs::read(out.join(format!("videos/{id}.mp4"))).unwrap(),
            shotlist::sim::video::CLIP
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_then_restyle_on_the_gateway() {
    chain_on(
        SimProvider::Gravitex,
        "wan2.7-videoedit",
        "/metadata/input/media",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_then_restyle_on_dashscope() {
    chain_on(SimProvider::Dashscope, "wan2.7-videoedit", "/input/media").await;
}

const BUDGET: &str = r#"version: 1
shots:
  - { id: base, model: t2v, prompt: A harbour., duration: 5 }
  - { id: keep, model: edit, prompt: Snow on 视频1., media: [{ type: video, shot: base }] }
  - { id: url, model: edit, prompt: Rain on 视频1., media: [{ type: video, url: "https://example.com/in.mp4" }] }
"#;

/// `--max-cost` prices an edit at its input plus output seconds, and an edit of a URL at its
/// upper bound (10 s in, 10 s out): a cap a cent below either holds it back unsent.
async fn cap_counts_edit_input_on(provider: SimProvider) {
    let sim = start_sim(SimConfig {
        provider,
        ..sim_config()
    })
    .await;
    let (dir, planned) = crate::plan::plan_in_temp(BUDGET, &[]);
    let mut plan = planned.expect("plans").plan;
    plan.out_dir = dir.path().join("out");
    let client = client_at(&sim.base_url(), provider);
    let run = |cap: &str| {
        let o = RunOptions {
            max_cost: Some(Money::parse(cap).unwrap()),
            ..opts(1)
        };
        tokio::time::timeout(
            Duration::from_secs(60),
            shotlist::exec::execute(&plan, client.clone(), o),
        )
    };
    // base 0.50, keep 5 + 5 s = 1.00, url at most 10 + 10 s = 2.00.
    let outcome = run("1.49").await.expect("in time").expect("run");
    assert_eq!(stats_of(&sim).await["tasks_created"], 1);
    assert_eq!(outcome.cost.spent, Money::parse("0.5").unwrap());
    assert_eq!(outcome.cost.unsent, 2);
    assert_eq!(outcome.cost.unsent_cost, Money::parse("3").unwrap());
    let outcome = run("2.99").await.expect("in time").expect("run");
    assert_eq!(stats_of(&sim).await["tasks_created"], 2, "only `keep` fits");
    assert_eq!(outcome.cost.spent, Money::parse("1").unwrap());
    assert_eq!(
        statuses(&plan.out_dir),
        ["succeeded", "succeeded", "pending"]
    );
    let outcome = run("1.99").await.expect("in time").expect("run");
    assert_eq!(
        stats_of(&sim).await["tasks_created"],
        2,
        "the URL edit's bound is 2.00"
    );
    assert_eq!(outcome.cost.unsent_cost, Money::parse("2").unwrap());
    let outcome = run("2.00").await.expect("in time").expect("run");
    assert_eq!(outcome.exit_code(), 0);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 3, "{stats:#}");
    assert_eq!(count(&stats, "submit", "400"), 0, "{stats:#}");
    let rows = results_json(&plan.out_dir);
    let costs: Vec<&str> = rows.iter().map(|r| r["cost"].as_str().unwrap()).collect();
    assert_eq!(costs, ["0.50", "1.00", "2.00"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cost_counts_an_edits_input_seconds_on_the_gateway() {
    cap_counts_edit_input_on(SimProvider::Gravitex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cost_counts_an_edits_input_seconds_on_dashscope() {
    cap_counts_edit_input_on(SimProvider::Dashscope).await;
}
