//! Provider limits: the shared query budget against the simulator's own requests-per-second
//! counter, 429 storms that must not turn into a flood of POSTs, the simulator's per-key rate
//! limit, and `Retry-After` values a hostile server might send.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use shotlist::api::{ApiError, RETRY_AFTER_CAP};
use shotlist::exec::{Backoff, RunOptions};
use shotlist::sim::SimConfig;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_stay_within_the_query_budget_and_each_task_is_created_once_under_429s() {
    let sim = start_sim(SimConfig {
        gen_time: Duration::from_millis(800),
        p429: 0.3,
        seed: 7,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 60, "budget");
    let outcome = execute(
        &p,
        &sim,
        RunOptions {
            queries_per_second: 18,
            ..opts(60)
        },
    )
    .await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);

    let stats = stats_of(&sim).await;
    assert!(count(&stats, "submit", "429") > 0, "{stats}");
    assert_eq!(stats["tasks_created"], 60);
    assert!(created_per_prompt(&stats).values().all(|&n| n == 1));
    // 60 tasks polled every 100 ms would be 600 queries a second; a budget of 18 keeps them within
    // a provider limit of 20. The simulator counts arrivals, and on a busy machine (its handlers
    // share this test's two threads) a query may arrive later than the budget's 5 % allows for;
    // the budget's own window is pinned by its unit tests.
    let busiest = stats["requests_per_second"]["query"].as_u64().unwrap();
    assert!(
        (1..=20).contains(&busiest),
        "{}",
        stats["requests_per_second"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_429s_pauses_submits_instead_of_flooding() {
    let sim = start_sim(SimConfig {
        p429: 1.0,
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let p = flat_plan(&dir.path().join("out"), 4, "storm");
    let run = shotlist::exec::execute(
        &p,
        client(&sim, KEY),
        RunOptions {
            poll: Some(Duration::ZERO),
            retry_backoff: Backoff::PROVIDER,
            ..opts(4)
        },
    );
    // The run never ends (every submit is refused); three seconds of it are enough to count.
    let _ = tokio::time::timeout(Duration::from_secs(3), run).await;
    let stats = stats_of(&sim).await;
    let submits = count(&stats, "submit", "429");
    assert!(
        (4..=12).contains(&submits),
        "{submits} submits in 3 s: {stats}"
    );
    assert_eq!(stats["tasks_created"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_refuses_past_its_per_key_rate_and_counts_the_busiest_second() {
    let sim = start_sim(SimConfig {
        rps_limit: Some(5),
        ..sim_config()
    })
    .await;
    let c = client(&sim, KEY);
    let answers = futures::future::join_all((0..12).map(|_| c.query("video_missing"))).await;
    let limited = answers
        .iter()
        .filter(|a| matches!(a, Err(ApiError::RateLimited { retry_after: Some(d) }) if *d == Duration::from_secs(1)))
        .count();
    let stats = stats_of(&sim).await;
    // Twelve at once fall in one second (or two, at a boundary): at most ten get through.
    assert!(limited >= 2, "{answers:?}");
    assert_eq!(count(&stats, "query", "429") as usize, limited);
    assert_eq!(stats["requests_per_second"]["query"], 12, "{stats}");
    assert!(stats["requests_per_second"]["max"].as_u64().unwrap() >= 12);
}

/// An axum stand-in for the provider whose first submits are refused with the given
/// `Retry-After` values, in order; after that it accepts, succeeds at once and serves the clip.
async fn refusing_fake(retry_after: &'static [&'static str]) -> (String, Arc<AtomicUsize>) {
    let posts = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let counter = posts.clone();
    let files = base.clone();
    let app = axum::Router::new()
        .route(
            "/v1/video/generations",
            axum::routing::post(move || {
                let k = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    match retry_after.get(k) {
                        Some(v) => {
                            let mut r = StatusCode::TOO_MANY_REQUESTS.into_response();
                            r.headers_mut()
                                .insert(header::RETRY_AFTER, HeaderValue::from_static(v));
                            r
                        }
                        None => axum::Json(
                            json!({"task_id": format!("video_{k}"), "status": "submitted"}),
                        )
                        .into_response(),
                    }
                }
            }),
        )
        .route(
            "/v1/video/generations/{id}",
            axum::routing::get(
                move |axum::extract::Path(id): axum::extract::Path<String>| {
                    let url = format!("{files}/files/{id}.mp4");
                    async move {
                        axum::Json(json!({"task_id": id, "status": "succeeded", "url": url}))
                            .into_response()
                    }
                },
            ),
        )
        .route(
            "/files/{file}",
            axum::routing::get(|| async {
                (
                    [(header::CONTENT_TYPE, "video/mp4")],
                    shotlist::sim::video::CLIP,
                )
                    .into_response()
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, posts)
}

fn client_for(base: &str) -> shotlist::api::Client {
    shotlist::api::Client::new(shotlist::api::ClientConfig {
        base_url: base.to_owned(),
        api_key: shotlist::api::ApiKey::new(KEY),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

/// A client of `sim`'s DashScope protocol.
fn dashscope_client(sim: &SimHandle) -> Client {
    Client::for_provider(
        shotlist::api::dashscope::PROVIDER,
        shotlist::api::ClientConfig {
            base_url: format!("{}/api/v1", sim.base_url()),
            api_key: shotlist::api::ApiKey::new(KEY),
            timeout: Duration::from_secs(20),
        },
    )
    .expect("client")
}

fn events(out: &std::path::Path, kind: &str) -> Vec<serde_json::Value> {
    journal_events(out)
        .into_iter()
        .filter(|e| e["event"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_retry_after_values_are_waited_out_and_the_shot_still_succeeds() {
    const ODD: &[&str] = &[
        "garbage",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "0.2",
        "-5",
        "NaN",
    ];
    let (base, posts) = refusing_fake(ODD).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 1, "odd");
    let run = shotlist::exec::execute(&p, client_for(&base), opts(1));
    let outcome = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("run ends")
        .expect("run");
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);
    assert_eq!(posts.load(Ordering::SeqCst), ODD.len() + 1);
    assert_eq!(events(&out, "refused").len(), ODD.len());
    assert!(events(&out, "unknown").is_empty());
    assert_eq!(statuses(&out), ["succeeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_retry_after_values_are_capped_and_the_refusal_is_journalled() {
    const HUGE: &[&str] = &["1e300", "18446744073709551615"];
    let (base, posts) = refusing_fake(HUGE).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 2, "huge");
    let run = shotlist::exec::execute(&p, client_for(&base), opts(2));
    // Both shots now wait out the cap (minutes); before, these values panicked the run.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .is_err()
    );
    assert_eq!(posts.load(Ordering::SeqCst), 2);
    let refused = events(&out, "refused");
    assert_eq!(refused.len(), 2, "{refused:?}");
    let cap = format!("{RETRY_AFTER_CAP:?}");
    for e in &refused {
        assert!(e["error"].as_str().unwrap().contains(&cap), "{e}");
    }
    assert!(events(&out, "unknown").is_empty());
}

/// A 502 on a submit created nothing, so once another submit is accepted the refused shot goes
/// again at once instead of sleeping out its backoff (10 s here); every shot is still created
/// once and its retries stay counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_refused_by_a_5xx_goes_again_once_another_is_accepted_and_is_created_once() {
    let sim = start_sim(SimConfig {
        gen_time: Duration::from_millis(50),
        p502: 0.15,
        seed: 11,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 40, "early");
    let slow = Backoff {
        base: Duration::from_secs(10),
        cap: Duration::from_secs(10),
    };
    let outcome = execute(
        &p,
        &sim,
        RunOptions {
            retry_backoff: slow,
            ..opts(8)
        },
    )
    .await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);

    let stats = stats_of(&sim).await;
    assert!(count(&stats, "submit", "502") > 0, "{stats}");
    assert_eq!(stats["tasks_created"], 40);
    assert!(created_per_prompt(&stats).values().all(|&n| n == 1));
    // For each refusal, how long until that shot's next `submitting`.
    let mut refused_at = std::collections::HashMap::new();
    let mut gaps = Vec::new();
    for e in journal_events(&out) {
        let id = e["id"].as_str().unwrap().to_owned();
        let ts = humantime::parse_rfc3339(e["ts"].as_str().unwrap()).unwrap();
        match e["event"].as_str() {
            Some("refused") => {
                refused_at.insert(id, ts);
            }
            Some("submitting") => {
                if let Some(at) = refused_at.remove(&id) {
                    gaps.push(ts.duration_since(at).unwrap_or_default());
                }
            }
            _ => {}
        }
    }
    assert!(!gaps.is_empty());
    let early = gaps.iter().filter(|&&g| g < slow.base.mul_f64(0.8)).count();
    assert!(
        early > 0,
        "no 5xx-refused shot went before its backoff: {gaps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_queries_are_counted_and_each_task_is_created_once() {
    let sim = start_sim(SimConfig {
        gen_time: Duration::from_millis(600),
        p429_query: 0.4,
        seed: 11,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let p = flat_plan(&dir.path().join("out"), 20, "query-429");
    let outcome = execute(&p, &sim, opts(20)).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 20, "{stats}");
    assert!(created_per_prompt(&stats).values().all(|&n| n == 1));
    assert_eq!(
        count(&stats, "submit", "429"),
        0,
        "--p429-query spares submits"
    );
    let refused = count(&stats, "query", "429");
    assert!(refused > 0, "{stats}");
    assert_eq!(outcome.queries.refused, refused, "every refusal is counted");
    assert_eq!(outcome.queries.failed, 0);
}

/// A refused query without `Retry-After` says nothing about its task, which may be done: it is
/// retried a quarter of the interval later, not after a whole one. Tasks done long before their
/// first query (at 2 s) make each refusal's cost visible in the journal: a quarter interval
/// (0.5 s) each, where a whole interval would cost 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_query_is_retried_within_a_fraction_of_the_interval() {
    let sim = start_sim(SimConfig {
        gen_time: Duration::from_millis(100),
        p429_query: 0.4,
        p_retry_after: 0.0,
        seed: 21,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 12, "quick-retry");
    let poll = Duration::from_secs(2);
    let outcome = execute(
        &p,
        &sim,
        RunOptions {
            poll: Some(poll),
            ..opts(12)
        },
    )
    .await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 12, "{stats}");
    let refused = count(&stats, "query", "429");
    assert!(refused >= 2, "{stats}");
    let at = |e: &serde_json::Value| {
        let t = humantime::parse_rfc3339(e["ts"].as_str().expect("ts")).expect("ts");
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
    };
    let submitted: std::collections::HashMap<String, i64> = events(&out, "submitted")
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_owned(), at(e)))
        .collect();
    // Each shot's wait past its first query, in total: about 0.5 s a refusal.
    let late_ms: i64 = events(&out, "succeeded")
        .iter()
        .map(|e| at(e) - submitted[e["id"].as_str().unwrap()] - poll.as_millis() as i64)
        .sum();
    let whole_intervals = refused as i64 * poll.as_millis() as i64;
    assert!(
        late_ms < whole_intervals / 2,
        "{refused} refusals cost {late_ms} ms in all (a whole interval each: {whole_intervals} ms)"
    );
    assert!(
        late_ms >= refused as i64 * 400,
        "{late_ms} ms for {refused} refusals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dashscope_submits_and_queries_share_the_accounts_rate() {
    let sim = start_sim(SimConfig {
        provider: shotlist::sim::SimProvider::Dashscope,
        gen_time: Duration::from_millis(500),
        rps_limit: Some(6),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let p = flat_plan(&dir.path().join("out"), 12, "shared");
    let client = dashscope_client(&sim);
    // Twelve submits at once and twelve tasks polled every 100 ms would be well past 6 a
    // second; a budget of 5 covering both keeps the account within it.
    let run = shotlist::exec::execute(
        &p,
        client,
        RunOptions {
            queries_per_second: 5,
            ..opts(12)
        },
    );
    let outcome = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("run finished within a minute")
        .expect("run");
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 12, "{stats}");
    assert_eq!(count(&stats, "submit", "429"), 0, "{stats}");
    assert_eq!(count(&stats, "query", "429"), 0, "{stats}");
    assert_eq!(outcome.queries.refused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_held_back_for_a_short_budget_lose_no_task_and_send_none_twice() {
    // Six tasks polled every 100 ms ask for 60 queries/s of an account allowed 6: once a
    // task has finished, polls of younger tasks wait for spare room. Task times vary by half,
    // so some tasks finish younger than the first one seen to: they are still found.
    let sim = start_sim(SimConfig {
        provider: shotlist::sim::SimProvider::Dashscope,
        gen_time: Duration::from_millis(900),
        jitter: 0.5,
        rps_limit: Some(6),
        seed: 21,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let p = flat_plan(&dir.path().join("out"), 24, "held-back");
    let client = dashscope_client(&sim);
    let run = shotlist::exec::execute(
        &p,
        client,
        RunOptions {
            queries_per_second: 6,
            ..opts(6)
        },
    );
    let outcome = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("run finished")
        .expect("run");
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);
    assert!(outcome.all_succeeded, "{:?}", outcome.counts);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 24, "{stats}");
    assert!(created_per_prompt(&stats).values().all(|&n| n == 1));
    assert_eq!(count(&stats, "submit", "429"), 0, "{stats}");
    assert_eq!(count(&stats, "query", "429"), 0, "{stats}");
    assert!(
        outcome.queries.skipped > 0,
        "no poll was held back: {:?}",
        outcome.queries
    );
    let downloaded = std::fs::read_dir(dir.path().join("out/videos"))
        .unwrap()
        .count();
    assert_eq!(downloaded, 24);
}
