//! The protocol: status progression, the three response shapes, auth, unknown tasks and routes.

use std::time::{Duration, Instant};

use serde_json::Value;
use shotlist::sim::{Shape, SimConfig};

use super::{KEY, client, config, query, start, stats, submit, submit_ok, t2v};

async fn query_json(client: &reqwest::Client, sim: &shotlist::sim::SimHandle, id: &str) -> Value {
    let response = query(client, sim, id).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("query JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_moves_from_queued_to_in_progress_to_succeeded() {
    let sim = start(SimConfig {
        gen_time: Duration::from_secs(3),
        ..config()
    })
    .await;
    let client = client();
    let id = submit_ok(&client, &sim, &t2v("a slow sunrise")).await;
    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(20) {
        last = query_json(&client, &sim, &id).await;
        let status = last["status"].as_str().expect("status").to_owned();
        if status != "succeeded" {
            assert!(last.get("url").is_none(), "url before success: {last}");
        }
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "succeeded" || status == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, ["queued", "in_progress", "succeeded"]);
    assert!(
        started.elapsed() >= Duration::from_millis(2800),
        "finished after {:?}, gen-time is 3 s",
        started.elapsed()
    );
    let url = last["url"].as_str().expect("url on success");
    assert_eq!(url, format!("{}/files/{id}.mp4", sim.base_url()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doc_shape_is_flat() {
    let sim = start(config()).await;
    let client = client();
    let submitted: Value = submit(&client, &sim, &t2v("doc"))
        .await
        .json()
        .await
        .unwrap();
    let id = submitted["task_id"].as_str().unwrap();
    assert!(id.starts_with("video_"), "{submitted}");
    assert_eq!(submitted["status"], "submitted");
    assert_eq!(submitted["format"], "mp4");
    assert_eq!(submitted.as_object().unwrap().len(), 3, "{submitted}");

    let done = query_json(&client, &sim, id).await;
    assert_eq!(done["task_id"], id);
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["format"], "mp4");
    assert!(done["url"].as_str().unwrap().ends_with(".mp4"));
    assert!(done.get("error").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_shape_has_no_task_id_on_submit_and_wraps_queries() {
    let sim = start(SimConfig {
        shape: Shape::Envelope,
        ..config()
    })
    .await;
    let client = client();
    let submitted: Value = submit(&client, &sim, &t2v("envelope"))
        .await
        .json()
        .await
        .unwrap();
    assert!(submitted.get("task_id").is_none(), "{submitted}");
    let id = submitted["id"].as_str().expect("id").to_owned();
    assert_eq!(submitted["object"], "video");
    assert_eq!(submitted["model"], "wan2.7-t2v-2026-04-25");
    assert_eq!(submitted["status"], "queued");
    assert_eq!(submitted["progress"], 0);
    assert!(submitted["created_at"].as_u64().unwrap() > 1_700_000_000);

    let done = query_json(&client, &sim, &id).await;
    assert_eq!(done["code"], "success");
    assert_eq!(done["message"], "");
    let data = &done["data"];
    assert_eq!(data["id"], id);
    assert_eq!(data["task_id"], id);
    assert_eq!(data["status"], "completed");
    assert_eq!(data["progress"], 100);
    assert_eq!(data["url"], data["video_url"]);
    assert!(
        data["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_shape_reports_progress_and_empty_urls_while_running() {
    let sim = start(SimConfig {
        shape: Shape::Envelope,
        gen_time: Duration::from_secs(60),
        ..config()
    })
    .await;
    let client = client();
    let id = submit_ok(&client, &sim, &t2v("long")).await;
    let running = query_json(&client, &sim, &id).await;
    assert_eq!(running["data"]["status"], "queued");
    assert_eq!(running["data"]["url"], "");
    assert!(running["data"]["progress"].as_u64().unwrap() < 34);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_shape_uses_upper_case_and_fail_reason_for_the_url() {
    let sim = start(SimConfig {
        shape: Shape::Legacy,
        ..config()
    })
    .await;
    let client = client();
    let submitted: Value = submit(&client, &sim, &t2v("legacy"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(submitted["status"], "queued");
    let id = submitted["task_id"].as_str().unwrap();

    let done = query_json(&client, &sim, id).await;
    assert_eq!(done["code"], "success");
    let data = &done["data"];
    assert_eq!(data["task_id"], id);
    assert_eq!(data["status"], "SUCCESS");
    assert_eq!(data["progress"], "100%");
    assert_eq!(
        data["fail_reason"],
        format!("{}/files/{id}.mp4", sim.base_url())
    );
    assert!(data.get("url").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_shape_starts_not_started() {
    let sim = start(SimConfig {
        shape: Shape::Legacy,
        gen_time: Duration::from_secs(60),
        ..config()
    })
    .await;
    let client = client();
    let id = submit_ok(&client, &sim, &t2v("long")).await;
    let data = query_json(&client, &sim, &id).await["data"].clone();
    assert_eq!(data["status"], "NOT_START");
    assert_eq!(data["fail_reason"], "");
    assert_eq!(data["progress"], "0%");
}

async fn send_with_auth(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let mut request = match body {
        Some(body) => client.post(url).json(body),
        None => client.get(url),
    };
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_malformed_keys_get_401_and_create_nothing() {
    let sim = start(config()).await;
    let client = client();
    let id = submit_ok(&client, &sim, &t2v("mine")).await;
    let submit_url = format!("{}/v1/video/generations", sim.base_url());
    let query_url = format!("{submit_url}/{id}");
    let body = t2v("not mine");
    for auth in [
        None,
        Some(""),
        Some("Bearer "),
        Some("Bearer    "),
        Some("Basic c2stYQ=="),
        Some(KEY),
    ] {
        for (url, body) in [(&submit_url, Some(&body)), (&query_url, None)] {
            let (status, text) = send_with_auth(&client, url, auth, body).await;
            assert_eq!(status, 401, "{auth:?} on {url}: {text}");
            let json: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json["error"]["message"], "Invalid token");
            assert!(json["error"]["type"].is_string() && json["error"]["code"].is_string());
        }
    }
    let stats = stats(&client, &sim, true).await;
    assert_eq!(stats["tasks_created"], 1);
    assert_eq!(stats["requests"]["submit"]["401"], 6);
    assert_eq!(stats["requests"]["query"]["401"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_only_that_key_is_accepted() {
    let sim = start(SimConfig {
        key: Some("sk-the-one".into()),
        ..config()
    })
    .await;
    let client = client();
    let url = format!("{}/v1/video/generations", sim.base_url());
    let body = t2v("keyed");
    let (status, text) =
        send_with_auth(&client, &url, Some(&format!("Bearer {KEY}")), Some(&body)).await;
    assert_eq!(status, 401, "{text}");
    assert!(
        !text.contains(KEY) && !text.contains("sk-the-one"),
        "keys are never echoed: {text}"
    );
    let (status, text) =
        send_with_auth(&client, &url, Some("Bearer sk-the-one"), Some(&body)).await;
    assert_eq!(status, 200, "{text}");
    let id = serde_json::from_str::<Value>(&text).unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = send_with_auth(
        &client,
        &format!("{url}/{id}"),
        Some("Bearer sk-other"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, text) = send_with_auth(
        &client,
        &format!("{url}/{id}"),
        Some("Bearer sk-the-one"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tasks_and_other_keys_tasks_do_not_exist() {
    let sim = start(config()).await;
    let client = client();
    let id = submit_ok(&client, &sim, &t2v("private")).await;
    let forged = format!(
        "{}{}",
        &id[..id.len() - 1],
        if id.ends_with('0') { '1' } else { '0' }
    );
    for missing in [
        "video_00000000",
        "nope",
        forged.as_str(),
        "video_ffffffff0000000000000000",
    ] {
        let response = query(&client, &sim, missing).await;
        assert_eq!(response.status(), 400, "{missing}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "task_not_exist", "{body}");
    }
    let other = client
        .get(format!("{}/v1/video/generations/{id}", sim.base_url()))
        .bearer_auth("sk-someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    assert_eq!(
        other.json::<Value>().await.unwrap()["code"],
        "task_not_exist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_404_and_counted() {
    let sim = start(config()).await;
    let client = client();
    let response = client
        .post(format!("{}/v1/videos", sim.base_url()))
        .bearer_auth(KEY)
        .json(&t2v("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/videos")
    );
    assert_eq!(
        stats(&client, &sim, true).await["requests"]["other"]["404"],
        1
    );
}
