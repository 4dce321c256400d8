//! Result downloads: the served bytes are the committed clip, tied to their task, and result
//! URLs stop working once their lifetime is over.

use std::time::Duration;

use serde_json::Value;
use shotlist::sim::{SimConfig, TASK_ID_HEADER};

use super::{client, config, query, sha256_hex, start, stats, submit_ok, t2v};

fn fixture() -> Vec<u8> {
    std::fs::read(super::super::support::repo_root().join("tests/fixtures/sim/clip.mp4"))
        .expect("fixture clip")
}

async fn result_url(client: &reqwest::Client, sim: &shotlist::sim::SimHandle, id: &str) -> String {
    let body: Value = query(client, sim, id).await.json().await.unwrap();
    assert_eq!(body["status"], "succeeded", "{body}");
    body["url"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_are_the_fixture_clip_and_name_their_task() {
    let sim = start(config()).await;
    let client = client();
    let fixture = fixture();
    assert_eq!(&fixture[4..8], b"ftyp", "the fixture is an MP4");
    for prompt in ["one", "two"] {
        let id = submit_ok(&client, &sim, &t2v(prompt)).await;
        let url = result_url(&client, &sim, &id).await;
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "video/mp4");
        assert_eq!(response.headers()[TASK_ID_HEADER], id.as_str());
        assert_eq!(
            response.headers()["content-length"],
            fixture.len().to_string().as_str()
        );
        let bytes = response.bytes().await.unwrap();
        assert_eq!(sha256_hex(&bytes), sha256_hex(&fixture));
    }
    assert_eq!(
        stats(&client, &sim, true).await["requests"]["download"]["200"],
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_of_unfinished_failed_or_unknown_tasks_are_404() {
    let sim = start(SimConfig {
        gen_time: Duration::from_secs(60),
        ..config()
    })
    .await;
    let client = client();
    let running = submit_ok(&client, &sim, &t2v("still rendering")).await;
    let quick = start(config()).await;
    let failed = submit_ok(&client, &quick, &t2v("[sim:fail] nope")).await;
    for (base, id) in [
        (sim.base_url(), running.as_str()),
        (quick.base_url(), failed.as_str()),
        (sim.base_url(), "video_ffffffff0000000000000000"),
    ] {
        let response = client
            .get(format!("{base}/files/{id}.mp4"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{id}");
        assert!(response.headers().get(TASK_ID_HEADER).is_none());
        assert!(response.text().await.unwrap().contains("NoSuchKey"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_urls_expire_after_url_ttl() {
    let sim = start(SimConfig {
        url_ttl: Duration::from_secs(1),
        ..config()
    })
    .await;
    let client = client();
    let id = submit_ok(&client, &sim, &t2v("short-lived")).await;
    let url = result_url(&client, &sim, &id).await;
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = client.get(&url).send().await.unwrap();
    assert_eq!(expired.status(), 403);
    assert!(
        expired
            .text()
            .await
            .unwrap()
            .contains("Request has expired")
    );
    let requests = &stats(&client, &sim, true).await["requests"]["download"];
    assert_eq!(requests["200"], 1);
    assert_eq!(requests["403"], 1);
}
