//! 200 tasks at once through one shared client (one connection pool, as the executor uses it)
//! against one simulator: every task succeeds, downloads its own intact file, and the
//! simulator created exactly one task per body.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use shotlist::sim::SimConfig;

use super::{assert_is_the_clip, client, config, count, run_to_success, start, stats};

const TASKS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tasks_at_once_all_succeed_and_each_is_created_once() {
    let sim = start(SimConfig {
        jitter: 0.5,
        ..config(300)
    })
    .await;
    let client = client(&sim);
    let out = Arc::new(tempfile::tempdir().unwrap());
    let workers: Vec<_> = (0..TASKS)
        .map(|n| {
            let client = client.clone();
            let out = Arc::clone(&out);
            tokio::spawn(async move {
                let mut body = super::bodies::t2v_multishot();
                let prompt = format!("task {n}: a lighthouse at dusk");
                body["prompt"] = prompt.clone().into();
                body["metadata"]["input"]["prompt"] = prompt.into();
                body["metadata"]["parameters"]["seed"] = n.into();
                let (task_id, url) = run_to_success(&client, &body).await;
                let dest = out.path().join(format!("{n:03}.mp4"));
                let downloaded = client
                    .download(&url, &dest)
                    .await
                    .unwrap_or_else(|e| panic!("task {n}: download: {e}"));
                assert_is_the_clip(&dest, &downloaded);
                task_id
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for (n, worker) in workers.into_iter().enumerate() {
        let id = tokio::time::timeout(Duration::from_secs(90), worker)
            .await
            .unwrap_or_else(|_| panic!("task {n} did not finish"))
            .unwrap_or_else(|e| panic!("task {n}: {e}"));
        assert!(ids.insert(id), "task {n}: a task id came back twice");
    }

    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], TASKS);
    assert_eq!(stats["by_status"]["succeeded"], TASKS);
    assert_eq!(count(&stats, "submit", "200"), TASKS as u64);
    assert_eq!(count(&stats, "download", "200"), TASKS as u64);
    assert_eq!(stats["lost_responses"], 0);
    let tasks = stats["tasks"].as_array().expect("task list");
    let created: HashSet<&str> = tasks
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    let seeds: HashSet<u64> = tasks.iter().map(|t| t["seed"].as_u64().unwrap()).collect();
    assert_eq!(
        created,
        ids.iter().map(String::as_str).collect(),
        "the client got every task"
    );
    assert_eq!(seeds.len(), TASKS, "no body was created twice");
    assert_eq!(
        super::entries(out.path()).len(),
        TASKS,
        "one file per task, no leftovers"
    );
}
