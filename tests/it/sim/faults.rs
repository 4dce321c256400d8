//! Injected faults: the concurrency limit, random 429s and 502s, lost responses, failed tasks,
//! and the seed that makes all of them repeatable.

use std::time::Duration;

use serde_json::Value;
use shotlist::sim::{Shape, SimConfig, SimHandle};

use super::{KEY, client, config, error_message, query, start, stats, submit, submit_ok, t2v};

fn submit_request(
    client: &reqwest::Client,
    sim: &SimHandle,
    key: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{}/v1/video/generations", sim.base_url()))
        .bearer_auth(key)
        .json(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_an_empty_body_and_creates_nothing() {
    let sim = start(SimConfig {
        rate_limit: Some(2),
        gen_time: Duration::from_millis(1500),
        ..config()
    })
    .await;
    let client = client();
    submit_ok(&client, &sim, &t2v("first")).await;
    submit_ok(&client, &sim, &t2v("second")).await;
    let refused = submit(&client, &sim, &t2v("third")).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_none());
    assert_eq!(refused.text().await.unwrap(), "");

    let other_key = submit_request(&client, &sim, "sk-another-team", &t2v("their own"))
        .send()
        .await
        .unwrap();
    assert_eq!(other_key.status(), 200, "the limit is per key");

    let summary = stats(&client, &sim, false).await;
    assert_eq!(summary["tasks_created"], 3);
    assert_eq!(summary["requests"]["submit"]["429"], 1);
    let prompts: Vec<&str> = summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts, ["first", "second", "their own"]);

    tokio::time::sleep(Duration::from_millis(1700)).await;
    submit_ok(&client, &sim, &t2v("third, later")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p429_refuses_submits_in_every_429_form_and_creates_nothing() {
    let sim = start(SimConfig {
        p429: 1.0,
        seed: 7,
        ..config()
    })
    .await;
    let client = client();
    let (mut empty, mut json, mut retry_after) = (0, 0, 0);
    for n in 0..30 {
        let response = submit(&client, &sim, &t2v(&format!("try {n}"))).await;
        assert_eq!(response.status(), 429);
        if let Some(value) = response.headers().get("retry-after") {
            assert_eq!(value, "1");
            retry_after += 1;
        }
        let text = response.text().await.unwrap();
        if text.is_empty() {
            empty += 1;
        } else {
            let body: Value = serde_json::from_str(&text).unwrap();
            assert!(
                error_message(&body).to_lowercase().contains("rate limit"),
                "{body}"
            );
            json += 1;
        }
    }
    assert!(
        empty > 0 && json > 0 && retry_after > 0 && retry_after < 30,
        "{empty} {json} {retry_after}"
    );
    let summary = stats(&client, &sim, true).await;
    assert_eq!(summary["tasks_created"], 0);
    assert_eq!(summary["requests"]["submit"]["429"], 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p502_fails_api_routes_before_anything_else() {
    let sim = start(SimConfig {
        p502: 1.0,
        ..config()
    })
    .await;
    let client = client();
    let (mut html, mut json) = (0, 0);
    for n in 0..20 {
        let key = if n % 2 == 0 { KEY } else { "" };
        let submit = submit_request(&client, &sim, key, &t2v("x"))
            .send()
            .await
            .unwrap();
        assert_eq!(submit.status(), 502, "even before auth");
        let query = query(&client, &sim, "video_0000000000000000000000000").await;
        assert_eq!(query.status(), 502);
        for response in [submit, query] {
            let text = response.text().await.unwrap();
            if text.contains("<html>") {
                html += 1;
            } else {
                serde_json::from_str::<Value>(&text).expect("JSON 502 body");
                json += 1;
            }
        }
    }
    assert!(html > 0 && json > 0);
    let summary = stats(&client, &sim, true).await;
    assert_eq!(summary["tasks_created"], 0);
    assert_eq!(summary["requests"]["submit"]["502"], 20);
    assert_eq!(summary["requests"]["query"]["502"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p502_at_half_creates_exactly_the_tasks_it_answered() {
    let sim = start(SimConfig {
        p502: 0.5,
        seed: 3,
        ..config()
    })
    .await;
    let client = client();
    let mut accepted = 0;
    for n in 0..40 {
        let status = submit(&client, &sim, &t2v(&format!("shot {n}")))
            .await
            .status();
        match status.as_u16() {
            200 => accepted += 1,
            502 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(accepted > 5 && accepted < 35, "{accepted} of 40");
    let summary = stats(&client, &sim, true).await;
    assert_eq!(summary["tasks_created"], accepted);
    assert_eq!(summary["requests"]["submit"]["200"], accepted);
    assert_eq!(summary["requests"]["submit"]["502"], 40 - accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p_lost_creates_the_task_but_never_delivers_the_answer() {
    let sim = start(SimConfig {
        p_lost: 1.0,
        ..config()
    })
    .await;
    let client = client();
    let error = submit_request(&client, &sim, KEY, &t2v("lost in transit"))
        .send()
        .await
        .expect_err("no status line may arrive: the connection is dropped");
    assert!(!error.is_timeout(), "dropped, not timed out: {error}");
    assert!(error.status().is_none());

    let summary = stats(&client, &sim, false).await;
    assert_eq!(summary["tasks_created"], 1);
    assert_eq!(summary["lost_responses"], 1);
    assert_eq!(summary["requests"]["submit"]["lost"], 1);
    assert!(summary["requests"]["submit"].get("200").is_none());
    assert_eq!(summary["tasks"][0]["prompt"], "lost in transit");
    assert_eq!(summary["tasks"][0]["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p_lost_at_half_loses_exactly_what_it_counts() {
    let sim = start(SimConfig {
        p_lost: 0.5,
        seed: 11,
        ..config()
    })
    .await;
    let client = client();
    let mut lost = 0;
    for n in 0..30 {
        let sent = submit_request(&client, &sim, KEY, &t2v(&format!("shot {n}")));
        if sent.send().await.is_err() {
            lost += 1;
        }
    }
    assert!(lost > 3 && lost < 27, "{lost} of 30");
    let summary = stats(&client, &sim, true).await;
    assert_eq!(summary["tasks_created"], 30);
    assert_eq!(summary["lost_responses"], lost);
    assert_eq!(summary["requests"]["submit"]["200"], 30 - lost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fail_marker_fails_the_task_with_a_moderation_error_in_every_shape() {
    let client = client();
    for shape in [Shape::Doc, Shape::Envelope, Shape::Legacy] {
        let sim = start(SimConfig { shape, ..config() }).await;
        let id = submit_ok(&client, &sim, &t2v("a scene [sim:fail] with trouble")).await;
        let ok = submit_ok(&client, &sim, &t2v("a calm scene")).await;
        let body: Value = query(&client, &sim, &id).await.json().await.unwrap();
        let (status, message) = match shape {
            Shape::Doc => {
                assert!(body["error"]["code"].is_u64(), "{body}");
                (&body["status"], body["error"]["message"].as_str())
            }
            Shape::Envelope => {
                assert_eq!(body["data"]["error"]["code"], "DataInspectionFailed");
                assert_eq!(body["data"]["url"], "");
                (
                    &body["data"]["status"],
                    body["data"]["error"]["message"].as_str(),
                )
            }
            Shape::Legacy => (
                &body["data"]["status"],
                body["data"]["fail_reason"].as_str(),
            ),
        };
        let expected = if shape == Shape::Legacy {
            "FAILURE"
        } else {
            "failed"
        };
        assert_eq!(status, expected, "{shape:?}: {body}");
        assert!(message.unwrap().contains("DataInspectionFailed"), "{body}");
        assert!(body.to_string().contains("video_"));
        let fine: Value = query(&client, &sim, &ok).await.json().await.unwrap();
        assert!(!fine.to_string().contains("DataInspectionFailed"), "{fine}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_rate_fails_some_tasks_at_random() {
    let sim = start(SimConfig {
        fail_rate: 0.5,
        seed: 5,
        ..config()
    })
    .await;
    let client = client();
    for n in 0..40 {
        submit_ok(&client, &sim, &t2v(&format!("shot {n}"))).await;
    }
    let summary = stats(&client, &sim, false).await;
    let failed = summary["by_status"]["failed"].as_u64().unwrap();
    let succeeded = summary["by_status"]["succeeded"].as_u64().unwrap();
    assert_eq!(failed + succeeded, 40);
    assert!(failed > 5 && succeeded > 5, "{failed} failed");
    let first_failed = summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "failed")
        .unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body: Value = query(&client, &sim, &first_failed)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("InternalError"),
        "{body}"
    );
}

/// Every decision a noisy simulator makes for the same sequential requests.
async fn decisions(seed: u64) -> Vec<String> {
    let sim = start(SimConfig {
        p502: 0.2,
        p429: 0.2,
        fail_rate: 0.3,
        seed,
        ..config()
    })
    .await;
    let client = client();
    let mut seen = Vec::new();
    for n in 0..30 {
        let response = submit(&client, &sim, &t2v(&format!("shot {n}"))).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        seen.push(format!("{status} {text}"));
        if status == 200 {
            let id = serde_json::from_str::<Value>(&text).unwrap()["task_id"]
                .as_str()
                .unwrap()
                .to_owned();
            let response = query(&client, &sim, &id).await;
            seen.push(
                format!("{} {}", response.status(), response.text().await.unwrap())
                    .replace(&sim.base_url(), "BASE"),
            );
        }
    }
    // Task ids start with a per-process instance number (unique across simulators).
    let instance = instance_of(&seen);
    seen.iter()
        .map(|s| s.replace(&instance, "INSTANCE"))
        .collect()
}

fn instance_of(seen: &[String]) -> String {
    seen.iter()
        .find_map(|s| s.split_once("video_").map(|(_, rest)| rest[..8].to_owned()))
        .expect("a task id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_makes_the_same_decisions() {
    let first = decisions(42).await;
    let again = decisions(42).await;
    let other = decisions(43).await;
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert!(
        first.iter().any(|d| d.starts_with("200")) && first.iter().any(|d| !d.starts_with("200"))
    );
}
