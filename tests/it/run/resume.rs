//! Reruns: what a second run sends (nothing, unless the journal and the flags say so).

use std::time::Duration;

use shotlist::sim::SimConfig;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_a_finished_plan_sends_nothing() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![shot("a", "twice a", None), shot("b", "twice b", Some("a"))],
    );
    assert_eq!(execute(&p, &sim, opts(2)).await.exit_code(), 0);
    let before = stats_of(&sim).await;
    let journal_before = journal_events(&out).len();
    assert_eq!(execute(&p, &sim, opts(2)).await.exit_code(), 0);
    let after = stats_of(&sim).await;
    assert_eq!(before["requests"], after["requests"]);
    assert_eq!(after["tasks_created"], 2);
    assert_eq!(journal_events(&out).len(), journal_before);
    assert_eq!(statuses(&out), ["succeeded", "succeeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_video_with_a_fresh_url_is_downloaded_not_resubmitted() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 2, "redownload");
    execute(&p, &sim, opts(2)).await;
    std::fs::write(out.join("videos/s1.mp4"), b"tampered").unwrap();
    let outcome = execute(&p, &sim, opts(2)).await;
    assert_eq!(outcome.exit_code(), 0);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 2);
    assert_eq!(count(&stats, "download", "200"), 3);
    let row = &results_json(&out)[1];
    assert_eq!(
        row["sha256"].as_str().unwrap(),
        shotlist::exec::sha256_file(&out.join("videos/s1.mp4")).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_polls_its_tasks_again_instead_of_resubmitting() {
    let sim = start_sim(SimConfig {
        gen_time: Duration::from_secs(3),
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 4, "interrupted");
    // Cut the run off while its tasks are generating (the future and its tasks are dropped),
    // once the journal holds every submit's answer: a fixed delay may cut a slow machine's run
    // mid-submit, which leaves that shot `unknown`.
    let journal = out.join("journal.jsonl");
    let answered = async {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let text = std::fs::read_to_string(&journal).unwrap_or_default();
            if text.matches(r#""event":"submitted""#).count() == 4 {
                break;
            }
        }
    };
    tokio::select! {
        done = shotlist::exec::execute(&p, client(&sim, KEY), opts(4)) => {
            panic!("the run should still have been going: {done:?}")
        }
        () = answered => {}
    }
    assert_eq!(stats_of(&sim).await["tasks_created"], 4);
    let outcome = execute(&p, &sim, opts(4)).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 4);
    assert_eq!(count(&stats, "submit", "200"), 4);
    assert!(results_json(&out).iter().all(|r| r["attempts"] == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_submits_are_unknown_and_resent_only_when_asked() {
    let lossy = start_sim(SimConfig {
        p_lost: 1.0,
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("a", "lost a", None),
            shot("b", "lost b needs a", Some("a")),
        ],
    );
    let outcome = execute(&p, &lossy, opts(2)).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown", "skipped"]);
    assert_eq!(stats_of(&lossy).await["tasks_created"], 1);
    assert!(
        journal_events(&out)
            .iter()
            .any(|e| e["event"] == "unknown" && e["id"] == "a")
    );

    let fine = start_sim(sim_config()).await;
    let outcome = execute(&p, &fine, opts(2)).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown", "skipped"]);
    let stats = stats_of(&fine).await;
    assert_eq!(count(&stats, "submit", "200"), 0);
    assert_eq!(stats["tasks_created"], 0);

    let mut o = opts(2);
    o.flags = flags(false, true);
    assert_eq!(execute(&p, &fine, o).await.exit_code(), 0);
    assert_eq!(statuses(&out), ["succeeded", "succeeded"]);
    assert_eq!(stats_of(&fine).await["tasks_created"], 2);
    assert_eq!(results_json(&out)[0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_runs_the_selection_and_the_upstreams_it_needs() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("open", "only open", None),
            shot("follow", "only follow", Some("open")),
            shot("other", "only other", None),
        ],
    );
    let mut o = opts(2);
    o.only = vec!["fol*".into()];
    let outcome = execute(&p, &sim, o).await;
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(outcome.came_along, ["open"]);
    assert_eq!(statuses(&out), ["succeeded", "succeeded", "pending"]);
    assert_eq!(stats_of(&sim).await["tasks_created"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_url_older_than_23_hours_cannot_feed_a_dependant() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("a", "stale a", None),
            shot("b", "b needs a", Some("a")),
        ],
    );
    // A journal from yesterday: `a` finished and downloaded 23.5 h ago; its video is intact.
    std::fs::create_dir_all(out.join("videos")).unwrap();
    std::fs::write(out.join("videos/a.mp4"), b"yesterday's video").unwrap();
    let sha = shotlist::exec::sha256_file(&out.join("videos/a.mp4")).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(23 * 3600 + 1800);
    let ts = humantime::format_rfc3339_millis(old).to_string();
    let key = &p.shots[0].key;
    let lines = [
        json!({"ts": ts, "event": "submitting", "id": "a", "key": key, "attempt": 1}),
        json!({"ts": ts, "event": "submitted", "id": "a", "key": key, "task_id": "video_old"}),
        json!({"ts": ts, "event": "succeeded", "id": "a", "key": key, "url": "http://127.0.0.1:9/files/video_old.mp4"}),
        json!({"ts": ts, "event": "downloaded", "id": "a", "key": key, "file": "a.mp4", "sha256": sha, "bytes": 17}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(out.join("journal.jsonl"), text).unwrap();

    let outcome = execute(&p, &sim, opts(2)).await;
    assert_eq!(outcome.exit_code(), 1);
    let rows = results_json(&out);
    assert_eq!(rows[0]["status"], "succeeded");
    assert_eq!(rows[1]["status"], "skipped");
    assert!(
        rows[1]["error"]
            .as_str()
            .unwrap()
            .contains("older than 23 h"),
        "{}",
        rows[1]
    );
    assert_eq!(stats_of(&sim).await["tasks_created"], 0);
}
