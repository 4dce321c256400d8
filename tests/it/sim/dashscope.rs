//! `--provider dashscope`: the native routes over real HTTP with plain reqwest calls.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shotlist::sim::{SimConfig, SimHandle, SimProvider};

use super::{KEY, client, start, stats};

const CREATE: &str = "/api/v1/services/aigc/video-generation/video-synthesis";

fn native(gen_ms: u64) -> SimConfig {
    SimConfig {
        provider: SimProvider::Dashscope,
        gen_time: Duration::from_millis(gen_ms),
        ..SimConfig::default()
    }
}

fn t2v(prompt: &str) -> Value {
    json!({"model": "wan2.7-t2v",
           "input": {"prompt": prompt},
           "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 6,
                          "prompt_extend": false, "watermark": false, "seed": 0}})
}

async fn create(c: &reqwest::Client, sim: &SimHandle, body: &Value) -> (u16, Value) {
    create_as(c, sim, KEY, body).await
}

async fn create_as(c: &reqwest::Client, sim: &SimHandle, key: &str, body: &Value) -> (u16, Value) {
    let response = c
        .post(format!("{}{CREATE}", sim.base_url()))
        .bearer_auth(key)
        .header("X-DashScope-Async", "enable")
        .json(body)
        .send()
        .await
        .expect("create sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("create JSON"))
}

async fn create_ok(c: &reqwest::Client, sim: &SimHandle, body: &Value) -> String {
    let (status, answer) = create(c, sim, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["output"]["task_status"], "PENDING");
    assert!(answer["request_id"].is_string());
    answer["output"]["task_id"]
        .as_str()
        .expect("task_id")
        .to_owned()
}

async fn get(c: &reqwest::Client, sim: &SimHandle, path: &str) -> (u16, Value) {
    get_as(c, sim, KEY, path).await
}

async fn get_as(c: &reqwest::Client, sim: &SimHandle, key: &str, path: &str) -> (u16, Value) {
    let response = c
        .get(format!("{}{path}", sim.base_url()))
        .bearer_auth(key)
        .send()
        .await
        .expect("get sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_goes_pending_running_succeeded_with_usage_and_a_video() {
    let sim = start(native(1500)).await;
    let c = client();
    let id = create_ok(&c, &sim, &t2v("a slow sunrise")).await;
    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(20) {
        let (status, body) = get(&c, &sim, &format!("/api/v1/tasks/{id}")).await;
        assert_eq!(status, 200);
        let word = body["output"]["task_status"].as_str().unwrap().to_owned();
        assert!(body["output"]["submit_time"].is_string());
        if word != "SUCCEEDED" {
            assert!(body.get("usage").is_none() && body["output"].get("video_url").is_none());
        }
        if seen.last() != Some(&word) {
            seen.push(word.clone());
        }
        last = body;
        if word == "SUCCEEDED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, ["PENDING", "RUNNING", "SUCCEEDED"]);
    let output = &last["output"];
    assert_eq!(output["orig_prompt"], "a slow sunrise");
    let submit = output["submit_time"].as_str().unwrap();
    assert_eq!(submit.len(), "2025-09-25 11:07:28.590".len(), "{submit}");
    assert!(output["scheduled_time"].is_string() && output["end_time"].is_string());
    assert_eq!(
        last["usage"],
        json!({"duration": 6.0, "input_video_duration": 0.0, "output_video_duration": 6.0,
               "video_count": 1, "SR": 720})
    );
    let url = output["video_url"].as_str().unwrap();
    let video = reqwest::get(url).await.unwrap();
    assert_eq!(video.status(), 200);
    assert_eq!(
        video.bytes().await.unwrap().as_ref(),
        shotlist::sim::video::CLIP
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_in_dashscope_shape_and_create_nothing() {
    let sim = start(SimConfig {
        key: Some(KEY.into()),
        ..native(0)
    })
    .await;
    let c = client();
    let url = format!("{}{CREATE}", sim.base_url());
    let sync = c
        .post(&url)
        .bearer_auth(KEY)
        .json(&t2v("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), 403);
    let body: Value = sync.json().await.unwrap();
    assert_eq!(body["code"], "AccessDenied");
    assert!(body["message"].as_str().unwrap().contains("synchronous"));

    let wrong_key = c
        .post(&url)
        .bearer_auth("sk-other-region")
        .header("X-DashScope-Async", "enable")
        .json(&t2v("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), 401);
    let body: Value = wrong_key.json().await.unwrap();
    assert_eq!(body["code"], "InvalidApiKey");

    let mut dated = t2v("a");
    dated["model"] = json!("wan2.7-t2v-2026-04-25");
    let (status, body) = create(&c, &sim, &dated).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidParameter"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("wan2.7-t2v-2026-04-25")
    );
    let (status, body) = create(&c, &sim, &json!({"model": "wan2.7-t2v"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("BadRequest.EmptyInput"))
    );

    let (status, body) = get(&c, &sim, "/v1/video/generations").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("InvalidURL")));
    let (status, body) = get(&c, &sim, "/api/v1/tasks/no-such-task").await;
    assert_eq!(status, 200);
    assert_eq!(body["output"]["task_status"], "UNKNOWN");
    assert_eq!(stats(&c, &sim, true).await["tasks_created"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videoedit_r2v_and_i2v_bodies_are_accepted_by_their_own_rules() {
    let sim = start(native(0)).await;
    let c = client();
    let edit = json!({"model": "wan2.7-videoedit",
        "input": {"prompt": "make Video 1 a watercolour",
                  "media": [{"type": "video", "url": "https://example.com/in.mp4"},
                            {"type": "reference_image", "url": "https://example.com/style.png"}]},
        "parameters": {"resolution": "1080P", "duration": 0, "audio_setting": "origin"}});
    let id = create_ok(&c, &sim, &edit).await;
    let (_, done) = get(&c, &sim, &format!("/api/v1/tasks/{id}")).await;
    assert_eq!(done["usage"]["input_video_duration"], 5.02);
    assert_eq!(done["usage"]["duration"], 10.04);
    assert_eq!(done["usage"]["SR"], 1080);
    let r2v = json!({"model": "wan2.7-r2v",
        "input": {"prompt": "Image 1 waves",
                  "media": [{"type": "reference_image", "url": "https://example.com/a.png",
                             "reference_voice": "https://example.com/a.mp3"}]},
        "parameters": {"resolution": "720P", "ratio": "9:16", "duration": 12}});
    let id = create_ok(&c, &sim, &r2v).await;
    let (_, done) = get(&c, &sim, &format!("/api/v1/tasks/{id}")).await;
    assert_eq!(done["usage"]["ratio"], "9:16");
    let i2v_with_ratio = json!({"model": "wan2.7-i2v",
        "input": {"media": [{"type": "first_frame", "url": "https://example.com/a.png"}]},
        "parameters": {"ratio": "16:9"}});
    let (status, body) = create(&c, &sim, &i2v_with_ratio).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(stats(&c, &sim, true).await["tasks_created"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_pages_and_refuses_wide_windows() {
    let sim = start(native(0)).await;
    let c = client();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create_ok(&c, &sim, &t2v(&format!("take {i}"))).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let edit = json!({"model": "wan2.7-videoedit", "input": {"prompt": "p",
        "media": [{"type": "video", "url": "https://example.com/in.mp4"}]}});
    create_ok(&c, &sim, &edit).await;

    let (status, page) = get(&c, &sim, "/api/v1/tasks?model_name=wan2.7-t2v&page_size=2").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (page["total"].as_u64(), page["total_page"].as_u64()),
        (Some(3), Some(2))
    );
    let first: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(first, [ids[2].as_str(), ids[1].as_str()], "newest first");
    let item = &page["data"][0];
    assert_eq!(item["status"], "SUCCEEDED");
    assert!(item["gmt_create"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(item["end_time"].is_u64() && item["api_key_id"].is_string());
    let (_, second) = get(
        &c,
        &sim,
        "/api/v1/tasks/?model_name=wan2.7-t2v&page_size=2&page_no=2",
    )
    .await;
    assert_eq!(second["data"][0]["task_id"], ids[0].as_str());
    let (_, all) = get(&c, &sim, "/api/v1/tasks/").await;
    assert_eq!(all["total"], 4);
    let (_, none) = get(
        &c,
        &sim,
        "/api/v1/tasks?start_time=20200101000000&end_time=20200101120000",
    )
    .await;
    assert_eq!(none["total"], 0);
    let (status, wide) = get(
        &c,
        &sim,
        "/api/v1/tasks?start_time=20200101000000&end_time=20200103000000",
    )
    .await;
    assert_eq!(
        (status, wide["code"].as_str()),
        (400, Some("InvalidParameter"))
    );
    let (status, _) = get(&c, &sim, "/api/v1/tasks?start_time=2020-01-01").await;
    assert_eq!(status, 400);
    assert_eq!(stats(&c, &sim, true).await["requests"]["list"]["200"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_leaves_a_task_the_list_can_find() {
    let sim = start(SimConfig {
        p_lost: 1.0,
        ..native(0)
    })
    .await;
    let c = client();
    let sent = c
        .post(format!("{}{CREATE}", sim.base_url()))
        .bearer_auth(KEY)
        .header("X-DashScope-Async", "enable")
        .json(&t2v("lost in transit"))
        .send()
        .await;
    let lost = match sent {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(lost, "the answer should never arrive");
    let summary = stats(&c, &sim, true).await;
    assert_eq!(
        (
            summary["tasks_created"].as_u64(),
            summary["lost_responses"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let (_, list) = get(&c, &sim, "/api/v1/tasks?model_name=wan2.7-t2v").await;
    let id = list["data"][0]["task_id"].as_str().unwrap();
    let (_, found) = get(&c, &sim, &format!("/api/v1/tasks/{id}")).await;
    assert_eq!(found["output"]["orig_prompt"], "lost in transit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_failures_cancel_and_expiry() {
    let throttled = start(SimConfig {
        p429: 1.0,
        ..native(0)
    })
    .await;
    let c = client();
    for _ in 0..6 {
        let (status, body) = create(&c, &throttled, &t2v("busy")).await;
        assert_eq!(status, 429);
        assert!(
            body["code"].as_str().unwrap().starts_with("Throttling"),
            "{body}"
        );
    }
    assert_eq!(stats(&c, &throttled, true).await["tasks_created"], 0);

    let limited = start(SimConfig {
        rate_limit: Some(1),
        ..native(10_000)
    })
    .await;
    let first = create_ok(&c, &limited, &t2v("one")).await;
    assert_eq!(create(&c, &limited, &t2v("two")).await.0, 429);
    let cancel = |id: String| {
        let c = c.clone();
        let url = format!("{}/api/v1/tasks/{id}/cancel", limited.base_url());
        async move { c.post(url).bearer_auth(KEY).send().await.unwrap() }
    };
    assert_eq!(cancel(first.clone()).await.status(), 200);
    let again = cancel(first.clone()).await;
    assert_eq!(again.status(), 400);
    assert_eq!(
        again.json::<Value>().await.unwrap()["code"],
        "UnsupportedOperation"
    );
    let (_, body) = get(&c, &limited, &format!("/api/v1/tasks/{first}")).await;
    assert_eq!(body["output"]["task_status"], "CANCELED");

    let failing = start(SimConfig {
        url_ttl: Duration::from_millis(200),
        ..native(0)
    })
    .await;
    let bad = create_ok(&c, &failing, &t2v("[sim:fail] blocked")).await;
    let (_, body) = get(&c, &failing, &format!("/api/v1/tasks/{bad}")).await;
    assert_eq!(body["output"]["task_status"], "FAILED");
    assert_eq!(body["output"]["code"], "DataInspectionFailed");
    let ok = create_ok(&c, &failing, &t2v("fine")).await;
    let (_, body) = get(&c, &failing, &format!("/api/v1/tasks/{ok}")).await;
    let url = body["output"]["video_url"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(reqwest::get(url).await.unwrap().status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shotlist_sim_provider_dashscope_serves_the_native_routes() {
    let sim =
        super::super::support::SimProcess::start(&["--provider", "dashscope", "--gen-time", "0s"]);
    let c = client();
    let answer: Value = c
        .post(format!("{}{CREATE}", sim.url))
        .bearer_auth(KEY)
        .header("X-DashScope-Async", "enable")
        .json(&t2v("from the binary"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["output"]["task_status"], "PENDING", "{answer}");
    let gateway = c
        .post(format!("{}/v1/video/generations", sim.url))
        .bearer_auth(KEY)
        .json(&t2v("wrong protocol"))
        .send()
        .await
        .unwrap();
    assert_eq!(gateway.status(), 404);
    assert_eq!(sim.stats()["tasks_created"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rps_limit_throttles_queries_and_lists_per_key() {
    let sim = start(SimConfig {
        rps_limit: Some(3),
        ..native(0)
    })
    .await;
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(get(&c, &sim, "/api/v1/tasks/x").await.0);
    }
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(throttled >= 2, "{statuses:?}");
    let (status, body) = get(&c, &sim, "/api/v1/tasks").await;
    if status == 429 {
        assert_eq!(body["code"], "Throttling.RateQuota");
    }
    assert_eq!(stats(&c, &sim, true).await["tasks_created"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_keys_see_each_others_tasks_each_with_its_own_key_id() {
    const COLLEAGUE: &str = "sk-sim-colleague";
    let sim = start(SimConfig {
        key: Some(KEY.into()),
        account_keys: vec![COLLEAGUE.into()],
        ..native(0)
    })
    .await;
    let c = client();
    let ours = create_ok(&c, &sim, &t2v("ours")).await;
    let (status, theirs) = create_as(&c, &sim, COLLEAGUE, &t2v("theirs")).await;
    assert_eq!(status, 200, "{theirs}");
    let theirs = theirs["output"]["task_id"].as_str().unwrap().to_owned();
    let (status, _) = create_as(&c, &sim, "sk-sim-stranger", &t2v("x")).await;
    assert_eq!(status, 401, "a key of no account is refused");

    let key_ids = |list: &Value| -> Vec<(String, String)> {
        let mut items: Vec<(String, String)> = (list["data"].as_array().unwrap().iter())
            .map(|i| {
                (
                    i["task_id"].as_str().unwrap().into(),
                    i["api_key_id"].as_str().unwrap().into(),
                )
            })
            .collect();
        items.sort();
        items
    };
    let (_, mine) = get(&c, &sim, "/api/v1/tasks").await;
    let (_, colleagues) = get_as(&c, &sim, COLLEAGUE, "/api/v1/tasks").await;
    let seen = key_ids(&mine);
    assert_eq!(seen, key_ids(&colleagues), "the list is the account's");
    assert_eq!(seen.len(), 2);
    let id_of = |task: &str| seen.iter().find(|(t, _)| t == task).unwrap().1.clone();
    assert_ne!(id_of(&ours), id_of(&theirs), "each key has its own id");
    for (_, id) in &seen {
        assert!(!id.contains(KEY) && !id.contains(COLLEAGUE), "{id}");
    }
    let (_, found) = get(&c, &sim, &format!("/api/v1/tasks/{theirs}")).await;
    assert_eq!(found["output"]["orig_prompt"], "theirs");

    let alone = start(native(0)).await;
    create_ok(&c, &alone, &t2v("ours")).await;
    let (_, other) = get_as(&c, &alone, "sk-sim-stranger", "/api/v1/tasks").await;
    assert_eq!(
        other["total"], 0,
        "without account_keys each key is its own account"
    );
}

/// Creates as Alibaba's Python SDK (`dashscope` 2.0.2) sends them, byte for byte:
/// `VideoSynthesis.async_call` puts `parameters` before `input` and always adds
/// `input.extend_prompt` (the deprecated spelling of `prompt_extend`, `true` unless given) and
/// `input.function`, with the SDK's headers. The simulator accepts each, `prompt_extend: false`
/// wins over the SDK's default `extend_prompt: true`, and the SDK's query path answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_requests_are_accepted() {
    let sim = start(native(0)).await;
    let c = client();
    // VideoSynthesis.async_call(model="wan2.7-t2v", prompt=..., duration=5, seed=7,
    //   prompt_extend=False, watermark=False, resolution="720P", ratio="16:9")
    let t2v = r#"{"model": "wan2.7-t2v", "parameters": {"duration": 5, "seed": 7, "prompt_extend": false, "watermark": false, "resolution": "720P", "ratio": "16:9"}, "input": {"prompt": "a kitten in the snow", "extend_prompt": true, "function": "video-synthesis"}}"#;
    // VideoSynthesis.async_call(model="wan2.7-i2v", prompt=..., media=[first_frame])
    let i2v = r#"{"model": "wan2.7-i2v", "parameters": {}, "input": {"prompt": "the kitten jumps", "extend_prompt": true, "function": "video-synthesis", "media": [{"type": "first_frame", "url": "https://example.com/kitten.png"}]}}"#;
    // VideoSynthesis.async_call(model="wan2.7-videoedit", prompt=..., media=[video],
    //   audio_setting="origin", extend_prompt=False)
    let edit = r#"{"model": "wan2.7-videoedit", "parameters": {"audio_setting": "origin"}, "input": {"prompt": "make Video 1 a watercolour", "extend_prompt": false, "function": "video-synthesis", "media": [{"type": "video", "url": "https://example.com/in.mp4"}]}}"#;
    let mut ids = Vec::new();
    for body in [t2v, i2v, edit] {
        let response = c
            .post(format!("{}{CREATE}", sim.base_url()))
            .header(
                "user-agent",
                "dashscope/2.0.2; python/3.12.3; platform/Linux",
            )
            .header("x-dashscope-sdk-client", "python/2.0.2")
            .header(
                "x-dashscope-sdk-session-id",
                "5b0e0c52-4d8e-4a8e-9f63-1d1b9c1f2f00",
            )
            .header("Authorization", format!("Bearer {KEY}"))
            .header("Accept", "application/json; charset=utf-8")
            .header("X-DashScope-Async", "enable")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}\n{answer}");
        ids.push(answer["output"]["task_id"].as_str().unwrap().to_owned());
    }
    let mut prompts = Vec::new();
    for id in &ids {
        let (status, done) = get(&c, &sim, &format!("/api/v1/tasks/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(done["output"]["task_status"], "SUCCEEDED", "{done}");
        prompts.push(done["output"].get("actual_prompt").is_some());
    }
    assert_eq!(
        prompts,
        [false, true, false],
        "rewritten: only where prompt_extend was not turned off"
    );
    assert_eq!(stats(&c, &sim, true).await["tasks_created"], 3);

    let wrong = t2v.replace(r#""extend_prompt": true"#, r#""extend_prompt": "yes""#);
    let (status, body) = create(&c, &sim, &serde_json::from_str(&wrong).unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("input.extend_prompt")
    );
}
