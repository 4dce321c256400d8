//! The DashScope native client against `sim --provider dashscope` over loopback HTTP: the
//! provider page's five examples planned, encoded (snapshots of the native bodies), generated
//! and downloaded; every failure class; a lost answer found again through the task list. Each
//! test also reads `/__sim/stats`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shotlist::api::dashscope::{self, DashScopeClient, DashScopeConfig, ListQuery, Region};
use shotlist::api::{ApiError, ApiKey, TaskState, TaskStatus};
use shotlist::sim::{SimConfig, SimHandle, SimProvider};

use super::super::api::fake::{Fake, json as reply_json};
use super::{KEY, assert_is_the_clip, count, start, stats};

fn native(gen_ms: u64) -> SimConfig {
    SimConfig {
        provider: SimProvider::Dashscope,
        gen_time: Duration::from_millis(gen_ms),
        ..SimConfig::default()
    }
}

fn client_at(base: &str, key: &str, workspace: Option<&str>) -> DashScopeClient {
    DashScopeClient::new(DashScopeConfig {
        region: Region::Singapore,
        base_url: Some(base.to_owned()),
        api_key: ApiKey::new(key),
        workspace: workspace.map(str::to_owned),
        timeout: Duration::from_secs(10),
    })
    .expect("client builds")
}

fn client(sim: &SimHandle) -> DashScopeClient {
    client_at(&sim.base_url(), KEY, None)
}

fn planned(manifest: &str) -> Value {
    let p = shotlist::plan::load_and_plan(Path::new(&format!("manifests/{manifest}.yaml")))
        .unwrap_or_else(|_| panic!("{manifest} plans"));
    p.plan.shots[0].body.value()
}

fn t2v(prompt: &str) -> Value {
    json!({"model": "wan2.7-t2v-2026-04-25", "prompt": prompt, "duration": 5,
           "metadata": {"input": {"prompt": prompt},
                        "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 5,
                                       "prompt_extend": false, "watermark": false, "seed": 0}}})
}

async fn poll(client: &DashScopeClient, id: &str) -> TaskState {
    let started = Instant::now();
    loop {
        let state = client.query(id).await.expect("query");
        if matches!(state.status, TaskStatus::Succeeded | TaskStatus::Failed) {
            return state;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{id} never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const EXAMPLES: [&str; 5] = [
    "t2v-multishot",
    "i2v-first-frame-audio",
    "i2v-first-last-frame",
    "i2v-continuation",
    "r2v-references",
];

#[test]
fn the_five_examples_encode_to_native_bodies() {
    for manifest in EXAMPLES {
        let planned = planned(manifest);
        let native = dashscope::encode(&planned).expect("encodes");
        assert_eq!(native["input"], planned["metadata"]["input"], "{manifest}");
        assert_eq!(
            native["parameters"], planned["metadata"]["parameters"],
            "{manifest}"
        );
        insta::assert_json_snapshot!(format!("dashscope_{manifest}"), native);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_five_examples_are_accepted_generated_and_downloaded() {
    let sim = start(native(100)).await;
    let client = client(&sim);
    let out = tempfile::tempdir().unwrap();
    for manifest in EXAMPLES {
        let body = planned(manifest);
        let id = client
            .submit(&body)
            .await
            .unwrap_or_else(|e| panic!("{manifest}: {e}"))
            .task_id;
        let state = poll(&client, &id).await;
        assert_eq!(state.status, TaskStatus::Succeeded, "{manifest}: {state:?}");
        let detail = client.query_native(&id).await.unwrap();
        assert_eq!(
            detail.orig_prompt.as_deref(),
            body["metadata"]["input"]["prompt"].as_str(),
            "{manifest}"
        );
        assert_eq!(detail.resolution, Some(720));
        let dest = out.path().join(format!("{manifest}.mp4"));
        let downloaded = client
            .download(state.url.as_deref().unwrap(), &dest)
            .await
            .unwrap();
        assert_is_the_clip(&dest, &downloaded);
    }
    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], EXAMPLES.len());
    assert_eq!(count(&stats, "submit", "400"), 0, "{stats:#}");
    assert_eq!(count(&stats, "download", "200"), EXAMPLES.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_the_native_headers_paths_and_workspace() {
    let fake = Fake::start(|seen| {
        if seen.method == "POST" {
            reply_json(
                200,
                json!({"request_id": "r1", "output": {"task_id": "t-1", "task_status": "PENDING"}}),
            )
        } else if seen.path.starts_with("/api/v1/tasks?") {
            reply_json(
                200,
                json!({"total": 1, "total_page": 1, "page_no": 1, "page_size": 100,
                "data": [{"task_id": "t-1", "status": "RUNNING", "model_name": "wan2.7-t2v",
                          "gmt_create": 1_745_568_428_109_u64}]}),
            )
        } else {
            reply_json(
                200,
                json!({"output": {"task_id": "t-1", "task_status": "SUSPENDED"}}),
            )
        }
    })
    .await;
    let client = client_at(&format!("{}/api/v1/", fake.base), KEY, Some("ws-42"));
    assert_eq!(client.submit(&t2v("p")).await.unwrap().task_id, "t-1");
    assert_eq!(
        client.query("t-1").await.unwrap().status,
        TaskStatus::Waiting
    );
    let listed = client
        .list_all(&ListQuery {
            model: Some("wan2.7-t2v".into()),
            status: None,
            window_ms: Some((0, 3_600_000)),
        })
        .await
        .unwrap();
    assert_eq!(listed[0].created_ms, Some(1_745_568_428_109));
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0].path,
        "/api/v1/services/aigc/video-generation/video-synthesis"
    );
    assert_eq!(seen[0].header("x-dashscope-async"), Some("enable"));
    let sent: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(sent["model"], "wan2.7-t2v");
    assert_eq!(sent["parameters"]["seed"], 0);
    assert_eq!(sent["parameters"]["prompt_extend"], false);
    assert_eq!(seen[1].path, "/api/v1/tasks/t-1");
    assert_eq!(
        seen[2].path,
        "/api/v1/tasks?page_no=1&page_size=100&model_name=wan2.7-t2v&start_time=19700101080000&end_time=19700101090000"
    );
    for s in &seen {
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(s.header("x-dashscope-workspace"), Some("ws-42"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_classified_and_create_nothing_twice() {
    let guarded = start(SimConfig {
        key: Some(KEY.into()),
        ..native(0)
    })
    .await;
    let wrong = client_at(&guarded.base_url(), "sk-other-region-key", None);
    match wrong.submit(&t2v("p")).await {
        Err(ApiError::Auth {
            status: 401,
            message,
        }) => {
            assert!(message.contains("InvalidApiKey"), "{message}");
            assert!(!message.contains("sk-other-region-key"));
        }
        other => panic!("{other:?}"),
    }
    let right = client(&guarded);
    let mut i2v_ratio = planned("i2v-first-frame-audio");
    let mut native_body = dashscope::encode(&i2v_ratio).unwrap();
    native_body["parameters"]["ratio"] = json!("16:9");
    match right.submit_native(&native_body).await {
        Err(ApiError::Permanent {
            status: 400,
            message,
        }) => {
            assert!(message.starts_with("InvalidParameter"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    i2v_ratio["model"] = json!("wan2.6-i2v");
    assert!(matches!(
        right.submit(&i2v_ratio).await,
        Err(ApiError::Permanent { status: 0, .. })
    ));
    let failing = right
        .submit(&t2v("[sim:fail] blocked"))
        .await
        .unwrap()
        .task_id;
    let state = poll(&right, &failing).await;
    assert!(state.error.unwrap().starts_with("DataInspectionFailed: "));
    assert_eq!(stats(&guarded).await["tasks_created"], 1);

    let throttled = start(SimConfig {
        p429: 1.0,
        ..native(0)
    })
    .await;
    assert!(matches!(
        client(&throttled).submit(&t2v("p")).await,
        Err(ApiError::RateLimited { .. })
    ));
    assert_eq!(stats(&throttled).await["tasks_created"], 0);

    let broken = start(SimConfig {
        p502: 1.0,
        ..native(0)
    })
    .await;
    let c = client(&broken);
    assert!(matches!(
        c.submit(&t2v("p")).await,
        Err(ApiError::Ambiguous { .. })
    ));
    assert!(matches!(
        c.query("some-task").await,
        Err(ApiError::Transient {
            status: Some(502),
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_is_found_again_through_the_list() {
    let sim = start(SimConfig {
        p_lost: 1.0,
        ..native(0)
    })
    .await;
    let client = client(&sim);
    let t0 = dashscope::now_ms();
    let lost = client.submit(&t2v("the lost take")).await;
    let t1 = dashscope::now_ms();
    assert!(matches!(lost, Err(ApiError::Ambiguous { .. })), "{lost:?}");
    let skew = 120_000;
    let candidates = client
        .list_all(&ListQuery {
            model: Some("wan2.7-t2v".into()),
            status: None,
            window_ms: Some((t0 - skew, t1 + skew)),
        })
        .await
        .unwrap();
    assert_eq!(candidates.len(), 1, "{candidates:?}");
    let created = candidates[0].created_ms.unwrap();
    assert!(created >= t0 - 1000 && created <= t1 + 1000);
    let detail = client.query_native(&candidates[0].task_id).await.unwrap();
    assert_eq!(detail.orig_prompt.as_deref(), Some("the lost take"));
    let stats = stats(&sim).await;
    assert_eq!(
        (
            stats["tasks_created"].as_u64(),
            count(&stats, "submit", "lost")
        ),
        (Some(1), 1)
    );
}

#[tokio::test]
async fn echoed_prompts_are_scrubbed_and_bounded_and_odd_seconds_dropped() {
    let key = "sk-echoed-in-a-prompt-0123";
    let long = "x".repeat(100_000);
    let answer = json!({"request_id": "r", "output": {"task_id": "t1", "task_status": "SUCCEEDED",
        "video_url": "http://cdn.example/t1.mp4", "orig_prompt": format!("a cat {key}"),
        "actual_prompt": long},
        "usage": {"duration": -3, "input_video_duration": "5", "output_video_duration": 5.02}});
    let fake = Fake::always(move || reply_json(200, answer.clone())).await;
    let state = client_at(&fake.base, key, None).query("t1").await.unwrap();
    let extras = state.extras;
    assert_eq!(extras.orig_prompt.as_deref(), Some("a cat ***"));
    let actual = extras.actual_prompt.unwrap();
    assert!(
        actual.len() <= shotlist::api::TaskExtras::MAX_PROMPT_BYTES + 3,
        "{}",
        actual.len()
    );
    assert!(actual.ends_with('…'));
    assert_eq!(
        (extras.usage_s, extras.input_s, extras.output_s),
        (None, None, Some(5.02))
    );
}

#[tokio::test]
async fn a_web_page_answering_a_create_is_ambiguous_and_says_to_check_the_base_url() {
    let page = Fake::always(|| {
        super::super::api::fake::raw(200, "<!doctype html><html><body>Welcome</body></html>")
    })
    .await;
    for e in [
        client_at(&page.base, KEY, None)
            .submit(&t2v("p"))
            .await
            .unwrap_err(),
        page.client().submit(&t2v("p")).await.unwrap_err(),
    ] {
        let ApiError::Ambiguous { message } = &e else {
            panic!("{e:?}");
        };
        assert!(message.contains("not JSON"), "{message}");
        assert!(message.contains("check the base URL"), "{message}");
    }
}
