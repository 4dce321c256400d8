//! Runs against a hostile network: a proxy in front of the simulator forwards every request (so
//! the simulator really creates and counts the tasks) and then spoils chosen answers: an endless
//! submit answer, an HTML page for a video, a failure message that echoes the key, a refusal
//! whose body comes late.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use shotlist::exec::Stop;

use super::*;
use crate::support::Project;

/// One answer of the simulator, as the proxy got it.
struct Exchange {
    method: Method,
    path: String,
    auth: String,
    body: Vec<u8>,
}

/// What replaces an answer; `None` passes the simulator's on.
type Hook = dyn Fn(&Exchange) -> Option<Response> + Send + Sync;

struct ProxyState {
    sim: String,
    base: String,
    http: reqwest::Client,
    hook: Box<Hook>,
    seen: Mutex<Vec<(Method, String)>>,
}

struct Proxy {
    base: String,
    state: Arc<ProxyState>,
}

impl Proxy {
    async fn start(
        sim: &SimHandle,
        hook: impl Fn(&Exchange) -> Option<Response> + Send + Sync + 'static,
    ) -> Proxy {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let state = Arc::new(ProxyState {
            sim: sim.base_url(),
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            hook: Box::new(hook),
            seen: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Proxy {
            base: state.base.clone(),
            state,
        }
    }

    /// Requests the proxy got for paths starting with `prefix`.
    fn hits(&self, method: Method, prefix: &str) -> usize {
        let seen = self.state.seen.lock().unwrap();
        seen.iter()
            .filter(|(m, p)| *m == method && p.starts_with(prefix))
            .count()
    }

    /// Its timeout outlasts two hops on a busy CI machine, like the simulator's client.
    fn client(&self) -> Client {
        Client::new(ClientConfig {
            base_url: self.base.clone(),
            api_key: ApiKey::new(KEY),
            timeout: Duration::from_secs(20),
        })
        .expect("client")
    }
}

/// Forwards to the simulator, with result URLs pointing back at the proxy.
async fn forward(
    State(proxy): State<Arc<ProxyState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    proxy
        .seen
        .lock()
        .unwrap()
        .push((method.clone(), path.clone()));
    let mut request = proxy
        .http
        .request(method.clone(), format!("{}{path}", proxy.sim))
        .body(body);
    for name in ["authorization", "content-type"] {
        if let Some(v) = headers.get(name) {
            request = request.header(name, v);
        }
    }
    let answer = request.send().await.expect("the simulator answers");
    let status = answer.status();
    let kind = answer.headers().get("content-type").cloned();
    let body = answer.bytes().await.expect("the simulator's body").to_vec();
    let exchange = Exchange {
        method,
        path,
        auth: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: String::from_utf8_lossy(&body)
            .replace(&proxy.sim, &proxy.base)
            .into_bytes(),
    };
    if let Some(spoiled) = (proxy.hook)(&exchange) {
        return spoiled;
    }
    let mut response = (
        StatusCode::from_u16(status.as_u16()).expect("status"),
        if status.is_success() && exchange.path.starts_with("/files/") {
            body
        } else {
            exchange.body
        },
    )
        .into_response();
    if let Some(kind) = kind {
        response.headers_mut().insert("content-type", kind);
    }
    response
}

fn is_submit(x: &Exchange) -> bool {
    x.method == Method::POST && x.path == "/v1/video/generations"
}

/// A 200 whose JSON body starts well and never ends.
fn endless_json(start: Vec<u8>) -> Response {
    let filler = Bytes::from(vec![b'x'; 64 * 1024]);
    let stream = futures::stream::once(async move { Bytes::from(start) })
        .chain(futures::stream::repeat(filler))
        .map(Ok::<_, std::convert::Infallible>);
    (
        [("content-type", "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn run_through(proxy: &Proxy, plan: &Plan, opts: RunOptions) -> Outcome {
    tokio::time::timeout(
        Duration::from_secs(60),
        shotlist::exec::execute(plan, proxy.client(), opts),
    )
    .await
    .expect("run finished within a minute")
    .expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_answer_cut_off_at_the_cap_is_unknown_and_never_resent() {
    let sim = start_sim(sim_config()).await;
    let proxy = Proxy::start(&sim, |x| {
        // The real answer (with its task id) followed by megabytes that never end.
        is_submit(x).then(|| {
            let mut start = x.body.clone();
            start.pop();
            start.extend_from_slice(br#","pad":""#);
            endless_json(start)
        })
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 1, "cut off");
    for run in 1..=2 {
        let outcome = run_through(&proxy, &p, opts(2)).await;
        assert_eq!(outcome.stop, Stop::Finished);
        assert_eq!(outcome.exit_code(), 1, "run {run}");
        assert_eq!(statuses(&out), ["unknown"], "run {run}");
        assert_eq!(
            proxy.hits(Method::POST, "/v1/"),
            1,
            "run {run}: never resent"
        );
        let stats = stats_of(&sim).await;
        assert_eq!(stats["tasks_created"], 1, "run {run}");
        if run == 1 {
            let error = results_json(&out)[0]["error"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                error.contains("MiB") && error.contains("cut off"),
                "{error}"
            );
        }
    }
    assert!(
        journal_events(&out).iter().any(|e| e["event"] == "unknown"),
        "the journal holds the shot as unknown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_is_not_a_video_is_retried_then_failed_and_never_recorded() {
    let sim = start_sim(sim_config()).await;
    let spoil = Arc::new(AtomicBool::new(true));
    let spoiling = spoil.clone();
    let proxy = Proxy::start(&sim, move |x| {
        (x.path.starts_with("/files/") && spoiling.load(Ordering::Relaxed)).then(|| {
            (
                [("content-type", "text/html")],
                "<!DOCTYPE html><html><body>Service unavailable</body></html>",
            )
                .into_response()
        })
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 1, "html page");
    let outcome = run_through(&proxy, &p, opts(2)).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["failed"]);
    let row = &results_json(&out)[0];
    let error = row["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not a video")
            && error.contains("text/html")
            && error.contains("nothing is resubmitted"),
        "{error}"
    );
    assert!(row["file"].is_null() && row["sha256"].is_null(), "{row}");
    assert_eq!(
        proxy.hits(Method::GET, "/files/"),
        1 + shotlist::exec::job::MAX_DOWNLOAD_RETRIES as usize,
        "retried a few times"
    );
    assert!(!out.join("videos").join("s0.mp4").exists());
    assert!(
        !journal_events(&out)
            .iter()
            .any(|e| e["event"] == "downloaded"),
        "never recorded as downloaded"
    );

    // Once storage serves the video, running again downloads it without a new task.
    spoil.store(false, Ordering::Relaxed);
    let outcome = run_through(&proxy, &p, opts(2)).await;
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(statuses(&out), ["succeeded"]);
    let video = std::fs::read(out.join("videos").join("s0.mp4")).unwrap();
    assert_eq!(&video[4..8], b"ftyp");
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 1);
    assert_eq!(proxy.hits(Method::POST, "/v1/"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_message_echoing_the_key_leaves_no_trace_of_it_anywhere() {
    let sim = start_sim(sim_config()).await;
    // Every failed task's reason quotes the Authorization header; every result URL carries the
    // key as a query parameter.
    let proxy = Proxy::start(&sim, |x| {
        if x.method != Method::GET || !x.path.starts_with("/v1/video/generations/") {
            return None;
        }
        let mut v: Value = serde_json::from_slice(&x.body).ok()?;
        let key = x.auth.trim_start_matches("Bearer ");
        if v["status"] == "failed" {
            v["error"]["message"] =
                json!(format!("moderation refused the request from {}", x.auth));
        } else if let Some(url) = v["url"].as_str().filter(|u| !u.is_empty()) {
            v["url"] = json!(format!("{url}?sig={key}"));
        } else {
            return None;
        }
        Some(axum::Json(v).into_response())
    })
    .await;
    let project = Project::new();
    project.file(
        "m.yaml",
        "version: 1\nname: leak\ndefaults: { model: t2v }\nshots:\n  - id: bad\n    prompt: \"[sim:fail] a cat\"\n  - id: good\n    prompt: a dog\n",
    );
    let mut cmd = project.cmd(&[
        "run",
        "m.yaml",
        "--base-url",
        &proxy.base,
        "--poll",
        "100ms",
    ]);
    cmd.env("GRAVITEX_API_KEY", KEY);
    let run =
        tokio::task::spawn_blocking(move || crate::support::Run::from(cmd.output().expect("run")))
            .await
            .expect("run thread");
    run.code(1);

    let out = project.path("out/leak");
    let rows = results_json(&out);
    let bad = rows.iter().find(|r| r["id"] == "bad").expect("bad row");
    assert_eq!(bad["status"], "failed");
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or_default()
            .contains("from Bearer ***"),
        "the echo arrived, scrubbed: {bad}"
    );
    let good = rows.iter().find(|r| r["id"] == "good").expect("good row");
    assert!(
        good["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("?sig=***"),
        "{good}"
    );

    let mut checked = 0;
    let mut stack = vec![project.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                    "{} holds the key",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 5,
        "journal, results, plan and manifest: {checked} files"
    );
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(!text.contains(KEY), "{name} holds the key:\n{text}");
    }
}

#[test]
fn an_unquoted_key_in_a_broken_config_is_not_echoed() {
    let project = Project::new();
    project
        .file(
            "c.toml",
            &format!("[api]\nbase_url = \"http://127.0.0.1:9\"\napi_key = {KEY}\n"),
        )
        .file("m.yaml", "version: 1\nshots:\n  - id: a\n    prompt: hi\n");
    let run = project.run(&["--config", "c.toml", "run", "m.yaml"]);
    run.code(2);
    assert!(run.stderr.contains("c.toml:3:"), "{}", run.stderr);
    assert!(
        !run.stderr.contains(KEY) && !run.stdout.contains(KEY),
        "{}",
        run.stderr
    );
}

#[test]
fn a_zero_download_cap_in_the_config_is_refused_before_anything_is_sent() {
    let project = Project::new();
    project.file("c.toml", "[download]\nmax_bytes = 0\n").file(
        "m.yaml",
        "version: 1\ndefaults: { model: t2v }\nshots:\n  - id: a\n    prompt: hi\n",
    );
    let run = project.run(&["--config", "c.toml", "run", "m.yaml", "--sim"]);
    run.code(2);
    assert!(
        run.stderr.contains("[download] max_bytes"),
        "{}",
        run.stderr
    );
    assert!(!project.path("out").exists(), "nothing was run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_answered_after_an_interrupt_leaves_the_held_shots_held() {
    // `bad` and `a` take the whole cap and `b` is held; the run is interrupted as `bad`'s 400
    // starts to arrive and its body comes later, so `b` is sent by no one and stays held.
    let sim = start_sim(sim_config()).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let proxy = Proxy::start(&sim, move |x| {
        let refused = is_submit(x) && x.body.windows(16).any(|w| w == b"InvalidParameter");
        refused.then(|| {
            let _ = stop.send(true);
            let body = x.body.clone();
            let late = futures::stream::once(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok::<_, std::convert::Infallible>(Bytes::from(body))
            });
            let head = [("content-type", "application/json")];
            (StatusCode::BAD_REQUEST, head, Body::from_stream(late)).into_response()
        })
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let bad = refused_shot("bad", "fifty seconds is refused");
    let p = plan(
        &out,
        vec![bad, shot("a", "sent", None), shot("b", "held", None)],
    );
    let o = RunOptions {
        stop: Some(rx),
        max_cost: Some(shotlist::cost::Money::parse("1.00").unwrap()),
        ..opts(8)
    };
    let outcome = run_through(&proxy, &p, o).await;
    assert_eq!(outcome.stop, Stop::Interrupted);
    let stats = stats_of(&sim).await;
    assert_eq!(count(&stats, "submit", "400"), 1, "{stats:#}");
    assert_eq!(stats["tasks_created"], 1);
    assert_eq!(statuses(&out)[2], "pending");
    let error = results_json(&out)[2]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.starts_with("budget: "), "{error:?}");
    assert_eq!(outcome.cost.unsent, 1, "{outcome:?}");
}
