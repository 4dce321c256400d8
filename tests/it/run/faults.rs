//! Runs under injected faults: rate limits, 5xx, failed tasks, expired URLs, bad keys, shapes.

use shotlist::exec::Stop;
use shotlist::sim::{Shape, SimConfig};

/// The simulator fails tasks whose prompt contains this.
const FAIL_MARKER: &str = "[sim:fail]";

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_runs_upstream_first_and_downloads_everything() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("b", "chain b continues a", Some("a")),
            shot("a", "chain a opens", None),
            shot("c", "chain c continues b", Some("b")),
        ],
    );
    let outcome = execute(&p, &sim, opts(4)).await;
    assert_eq!(outcome.stop, Stop::Finished);
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(statuses(&out), ["succeeded", "succeeded", "succeeded"]);

    let rows = results_json(&out);
    for row in &rows {
        let file = out.join(row["file"].as_str().unwrap());
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(row["bytes"].as_u64(), Some(bytes.len() as u64));
        assert_eq!(
            row["sha256"].as_str().unwrap(),
            shotlist::exec::sha256_file(&file).unwrap()
        );
        assert_eq!(row["attempts"], 1);
        assert!(row["task_id"].is_string() && row["url"].is_string());
        assert!(row["elapsed_s"].as_f64().unwrap() >= 0.0);
    }
    let csv = results_csv(&out);
    assert_eq!(csv.len(), 3);
    assert_eq!(&csv[0][0], "b");
    assert_eq!(&csv[0][1], "succeeded");

    // The journal shows a's success before b's submit, and b's submit carried a's URL.
    let events = journal_events(&out);
    let pos = |id: &str, ev: &str| {
        events
            .iter()
            .position(|e| e["id"] == id && e["event"] == ev)
            .unwrap_or_else(|| panic!("{id} {ev}"))
    };
    assert!(pos("a", "succeeded") < pos("b", "submitting"));
    assert!(pos("b", "succeeded") < pos("c", "submitting"));
    assert!(out.join("plan.json").is_file());

    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 3);
    assert_eq!(count(&stats, "submit", "200"), 3);
    assert_eq!(count(&stats, "download", "200"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_below_the_concurrency_still_creates_each_task_once() {
    let sim = start_sim(SimConfig {
        rate_limit: Some(2),
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 10, "storm");
    let outcome = execute(&p, &sim, opts(8)).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);
    assert!(statuses(&out).iter().all(|s| s == "succeeded"));

    let stats = stats_of(&sim).await;
    assert!(count(&stats, "submit", "429") > 0, "{stats}");
    assert_eq!(stats["tasks_created"], 10);
    assert!(created_per_prompt(&stats).values().all(|&n| n == 1));
    // Each refused submit was journalled as refused, so a rerun would not call it unknown.
    let refused = journal_events(&out)
        .iter()
        .filter(|e| e["event"] == "refused")
        .count() as u64;
    assert_eq!(refused, count(&stats, "submit", "429"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_nothing_is_created_twice() {
    let sim = start_sim(SimConfig {
        p502: 0.2,
        seed: 7,
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 8, "flaky");
    let outcome = execute(&p, &sim, opts(4)).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);
    let stats = stats_of(&sim).await;
    let errors: u64 = ["submit", "query", "download"]
        .iter()
        .map(|r| count(&stats, r, "502"))
        .sum();
    assert!(errors > 0, "no 502 was injected: {stats}");
    assert_eq!(stats["tasks_created"], 8);
    assert!(created_per_prompt(&stats).values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_fails_its_shot_and_skips_what_needs_it() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("a", &format!("doomed opening {FAIL_MARKER}"), None),
            shot("b", "continues the doomed opening", Some("a")),
            shot("c", "continues b", Some("b")),
            shot("d", "independent and fine", None),
        ],
    );
    let outcome = execute(&p, &sim, opts(4)).await;
    assert_eq!(outcome.stop, Stop::Finished);
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(
        statuses(&out),
        ["failed", "skipped", "skipped", "succeeded"]
    );
    let rows = results_json(&out);
    assert!(rows[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(
        rows[1]["error"].as_str().unwrap().contains("`a`"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2]["error"].as_str().unwrap().contains("`b`"),
        "{}",
        rows[2]
    );
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 2);
    assert_eq!(stats["by_status"]["failed"], 1);

    // Without --retry-failed a rerun sends nothing; with it, only the failed shot goes again.
    let before = stats_of(&sim).await;
    execute(&p, &sim, opts(4)).await;
    assert_eq!(
        stats_of(&sim).await["tasks_created"],
        before["tasks_created"]
    );
    assert_eq!(
        statuses(&out),
        ["failed", "skipped", "skipped", "succeeded"]
    );
    let mut retry = opts(4);
    retry.flags = flags(true, false);
    execute(&p, &sim, retry).await;
    assert_eq!(stats_of(&sim).await["tasks_created"], 3);
    assert_eq!(results_json(&out)[0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_url_marks_the_shot_expired_and_is_not_resent() {
    let sim = start_sim(SimConfig {
        url_ttl: std::time::Duration::from_millis(1),
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("a", "expires quickly", None),
            shot("b", "needs a", Some("a")),
        ],
    );
    // Slow polling so the URL is stale by the time the task is seen finished.
    let mut o = opts(2);
    o.poll = Some(std::time::Duration::from_millis(300));
    let outcome = execute(&p, &sim, o).await;
    assert_eq!(outcome.exit_code(), 1);
    let rows = results_json(&out);
    assert_eq!(rows[0]["status"], "expired", "{rows:?}");
    assert!(
        journal_events(&out)
            .iter()
            .any(|e| e["event"] == "expired" && e["id"] == "a")
    );
    let created = stats_of(&sim).await["tasks_created"].clone();
    execute(&p, &sim, opts(2)).await;
    assert_eq!(stats_of(&sim).await["tasks_created"], created);
    assert_eq!(status_of(&results_json(&out), "a"), "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_stops_the_run_and_never_appears_in_files() {
    let sim = start_sim(SimConfig {
        key: Some("sk-the-right-one".into()),
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 5, "wrongkey");
    let outcome = execute(&p, &sim, opts(2)).await;
    assert!(matches!(outcome.stop, Stop::Fatal(_)), "{:?}", outcome.stop);
    assert_eq!(outcome.exit_code(), 3);
    assert!(statuses(&out).iter().all(|s| s == "pending"));
    for file in ["journal.jsonl", "results.csv", "results.json", "plan.json"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(!text.contains(KEY), "{file} contains the key");
    }
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 0);
    assert!(
        count(&stats, "submit", "401") <= 2,
        "kept submitting: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_and_legacy_shapes_run_to_the_end() {
    for shape in [Shape::Envelope, Shape::Legacy] {
        let sim = start_sim(SimConfig {
            shape,
            ..sim_config()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let p = plan(
            &out,
            vec![
                shot("a", "shape opening", None),
                shot("b", "shape continuation", Some("a")),
                shot("c", &format!("shape failure {FAIL_MARKER}"), None),
            ],
        );
        let outcome = execute(&p, &sim, opts(3)).await;
        assert_eq!(outcome.exit_code(), 1, "{shape:?}");
        assert_eq!(
            statuses(&out),
            ["succeeded", "succeeded", "failed"],
            "{shape:?}"
        );
        let stats = stats_of(&sim).await;
        assert_eq!(stats["tasks_created"], 3, "{shape:?}");
        assert_eq!(count(&stats, "download", "200"), 2, "{shape:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_that_keeps_getting_502_fails_after_bounded_retries() {
    let sim = start_sim(SimConfig {
        p502: 1.0,
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("a", "always 502", None),
            shot("b", "needs a", Some("a")),
        ],
    );
    let outcome = execute(&p, &sim, opts(2)).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["failed", "skipped"]);
    let rows = results_json(&out);
    assert!(
        rows[0]["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 5 retries")
    );
    assert_eq!(rows[0]["attempts"], 6);
    let stats = stats_of(&sim).await;
    assert_eq!(count(&stats, "submit", "502"), 6);
    assert_eq!(stats["tasks_created"], 0);
    let events = journal_events(&out);
    let refused = events.iter().filter(|e| e["event"] == "refused").count();
    assert_eq!(refused, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_per_minute_spaces_the_submits() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 4, "spaced");
    let mut o = opts(4);
    o.submits_per_minute = Some(600);
    assert_eq!(execute(&p, &sim, o).await.exit_code(), 0);
    let times: Vec<std::time::SystemTime> = journal_events(&out)
        .iter()
        .filter(|e| e["event"] == "submitting")
        .map(|e| humantime::parse_rfc3339_weak(e["ts"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(times.len(), 4);
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap();
        assert!(gap >= std::time::Duration::from_millis(95), "{gap:?}");
    }
    assert_eq!(stats_of(&sim).await["tasks_created"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_body_fails_with_the_providers_reason() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let bad = refused_shot("bad", "fifty seconds is too long");
    let p = plan(&out, vec![bad, shot("good", "five seconds", None)]);
    let outcome = execute(&p, &sim, opts(2)).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["failed", "succeeded"]);
    let error = results_json(&out)[0]["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("400") && error.contains("duration"),
        "{error}"
    );
    let stats = stats_of(&sim).await;
    assert_eq!(count(&stats, "submit", "400"), 1);
    assert_eq!(stats["tasks_created"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_remaining_chain_goes_first() {
    let sim = start_sim(SimConfig {
        gen_time: std::time::Duration::from_millis(50),
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("single-1", "first in plan order", None),
            shot("single-2", "second in plan order", None),
            shot("head", "heads a chain of three", None),
            shot("middle", "middle of the chain", Some("head")),
            shot("tail", "end of the chain", Some("middle")),
        ],
    );
    assert_eq!(execute(&p, &sim, opts(1)).await.exit_code(), 0);
    let order: Vec<String> = journal_events(&out)
        .iter()
        .filter(|e| e["event"] == "submitting")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["head", "middle", "single-1", "single-2", "tail"]);
    assert_eq!(order.len(), 5);
    assert_eq!(stats_of(&sim).await["tasks_created"], 5);
}
