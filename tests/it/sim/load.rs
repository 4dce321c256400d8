//! Many clients at once: every one gets its own task and its own intact video, and the stats
//! show each body created exactly once.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use shotlist::sim::{SimConfig, TASK_ID_HEADER};

use super::{client, config, query, sha256_hex, start, stats, submit_ok, t2v};

const CLIENTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_200_concurrent_clients_submitting_polling_and_downloading() {
    let sim = std::sync::Arc::new(
        start(SimConfig {
            gen_time: Duration::from_millis(300),
            jitter: 0.5,
            ..config()
        })
        .await,
    );
    let clip = sha256_hex(shotlist::sim::video::CLIP);
    let mut workers = Vec::new();
    for n in 0..CLIENTS {
        let sim = std::sync::Arc::clone(&sim);
        workers.push(tokio::spawn(async move {
            let client = client();
            let id = submit_ok(&client, &sim, &t2v(&format!("client {n}"))).await;
            let url = loop {
                let body: Value = query(&client, &sim, &id).await.json().await.unwrap();
                match body["status"].as_str().unwrap() {
                    "succeeded" => break body["url"].as_str().unwrap().to_owned(),
                    "queued" | "in_progress" => tokio::time::sleep(Duration::from_millis(50)).await,
                    other => panic!("client {n}: {other}"),
                }
            };
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()[TASK_ID_HEADER], id.as_str());
            (id, sha256_hex(&response.bytes().await.unwrap()))
        }));
    }
    let mut ids = HashSet::new();
    for worker in workers {
        let (id, sha) = tokio::time::timeout(Duration::from_secs(60), worker)
            .await
            .expect("clients finish")
            .expect("client ok");
        assert_eq!(sha, clip);
        assert!(ids.insert(id), "task ids are unique");
    }
    let client = client();
    let summary = stats(&client, &sim, false).await;
    assert_eq!(summary["tasks_created"], CLIENTS);
    assert_eq!(summary["by_status"]["succeeded"], CLIENTS);
    assert_eq!(summary["requests"]["submit"]["200"], CLIENTS);
    assert_eq!(summary["requests"]["download"]["200"], CLIENTS);
    let prompts: HashSet<&str> = summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts.len(), CLIENTS, "no body was created twice");
}
