//! The trust cases of issue 7, one end-to-end test each: shots with identical bodies, two runs
//! on one folder, superseded videos, `task_not_exist` for a young task, SIGTERM, damaged
//! journals, symlinks out of the folder, and resuming `--sim`. Each asserts on tasks created
//! and on the output folder.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use shotlist::exec::{ExecError, OutDirError};

use super::cli::{journal_lines, results, run_cmd, unknown_ids, wait_for_lines};
use super::*;
use crate::api::fake::{self, Fake};
use crate::support::{Project, Run, SimProcess};

/// Three takes per row and no seed anywhere: every take of a row sends the same body.
fn takes_project(rows: usize) -> Project {
    let p = Project::new();
    let mut csv = String::from("sku\n");
    for i in 0..rows {
        csv.push_str(&format!("p{i}\n"));
    }
    p.file("data/rows.csv", &csv).file(
        "batch.yaml",
        "version: 1\nname: batch\ndata:\n  rows: data/rows.csv\n\
         defaults:\n  model: t2v\n  duration: 4\n  prompt_extend: false\n\
         shots:\n  - id: \"hero-{{ row.sku }}\"\n    for_each: rows\n    takes: 3\n\
         \x20   prompt: \"A slow pan over product {{ row.sku }}.\"\n",
    );
    p
}

fn status_json(p: &Project) -> Value {
    let status = p.run(&["status", "batch.yaml", "--format", "json"]);
    status.code(0);
    serde_json::from_str(&status.stdout).expect("status JSON")
}

fn distinct(rows: &[Value], field: &str) -> usize {
    rows.iter()
        .map(|r| r[field].to_string())
        .collect::<BTreeSet<_>>()
        .len()
}

#[test]
fn takes_with_identical_bodies_are_distinct_shots_and_validate_says_so() {
    let p = takes_project(1);
    let validate = p.run(&["validate", "batch.yaml"]);
    validate.code(0);
    assert!(
        validate.stderr.contains("identical request bodies") && validate.stderr.contains("seed:"),
        "{}",
        validate.stderr
    );

    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    Run::from(
        run_cmd(&p, &sim, &["-q", "--only", "hero-p0-take1"])
            .output()
            .unwrap(),
    )
    .code(0);
    assert_eq!(sim.stats()["tasks_created"], 1);
    Run::from(run_cmd(&p, &sim, &["-q"]).output().unwrap()).code(0);
    assert_eq!(sim.stats()["tasks_created"], 3);
    let rows = results(&p);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:#?}");
    assert_eq!(distinct(&rows, "task_id"), 3);
    assert_eq!(distinct(&rows, "file"), 3);
    for row in &rows {
        let file = row["file"].as_str().unwrap();
        assert!(p.path(&format!("out/batch/{file}")).is_file(), "{file}");
    }
    assert_eq!(status_json(&p)["counts"]["succeeded"], 3);
}

#[test]
fn a_second_run_on_the_same_folder_fails_at_once_naming_the_first() {
    let p = takes_project(2);
    let sim = SimProcess::start(&["--gen-time", "1500ms"]);
    let mut first = run_cmd(&p, &sim, &["-q", "-j", "6"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn run");
    assert!(wait_for_lines(&mut first, &p, 2), "first run ended early");
    let second = Run::from(run_cmd(&p, &sim, &[]).output().unwrap());
    second.code(4);
    assert!(
        second.stderr.contains(&format!("pid {}", first.id()))
            && second.stderr.contains("since")
            && second.stderr.contains("--out"),
        "{}",
        second.stderr
    );
    assert!(first.wait().unwrap().success());
    assert_eq!(sim.stats()["tasks_created"], 6);
    // The lock died with its process: the next run takes it over and sends nothing.
    Run::from(run_cmd(&p, &sim, &["-q"]).output().unwrap()).code(0);
    assert_eq!(sim.stats()["tasks_created"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_stops_an_in_process_run_before_anything_is_sent() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 2, "locked");
    let held = shotlist::exec::OutputLock::acquire(&out).unwrap();
    let err = shotlist::exec::execute(&p, client(&sim, KEY), opts(2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::OutDir(OutDirError::Locked { .. })),
        "{err}"
    );
    assert_eq!(stats_of(&sim).await["tasks_created"], 0);
    assert!(!out.join("journal.jsonl").exists());
    drop(held);
    assert_eq!(execute(&p, &sim, opts(2)).await.exit_code(), 0);
}

#[test]
fn an_edited_shot_keeps_its_earlier_video_and_status_finds_it() {
    let p = takes_project(1);
    p.file(
        "batch.yaml",
        "version: 1\nname: batch\nshots:\n  - id: hero\n    model: t2v\n    prompt: first cut\n",
    );
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    Run::from(run_cmd(&p, &sim, &["-q"]).output().unwrap()).code(0);
    let first = std::fs::read(p.path("out/batch/videos/hero.mp4")).unwrap();
    let first_sha = results(&p)[0]["sha256"].clone();
    p.file(
        "batch.yaml",
        "version: 1\nname: batch\nshots:\n  - id: hero\n    model: t2v\n    prompt: second cut\n",
    );
    Run::from(run_cmd(&p, &sim, &["-q"]).output().unwrap()).code(0);
    assert_eq!(sim.stats()["tasks_created"], 2);

    let status = status_json(&p);
    let kept = status["superseded"].as_array().expect("superseded list");
    assert_eq!(kept.len(), 1, "{status:#}");
    let kept_file = kept[0]["file"].as_str().unwrap();
    assert!(kept_file.starts_with("superseded/hero."), "{kept_file}");
    let kept_path = p.path(&format!("out/batch/videos/{kept_file}"));
    assert_eq!(std::fs::read(&kept_path).unwrap(), first);
    assert_eq!(
        shotlist::exec::sha256_file(&kept_path).map(Value::from),
        Some(first_sha)
    );
    let rows = results(&p);
    assert_eq!(rows[0]["file"], "videos/hero.mp4");
    assert!(p.path("out/batch/videos/hero.mp4").is_file());

    // Back to the first prompt: its video is found where it was kept; nothing is sent.
    p.file(
        "batch.yaml",
        "version: 1\nname: batch\nshots:\n  - id: hero\n    model: t2v\n    prompt: first cut\n",
    );
    Run::from(run_cmd(&p, &sim, &["-q"]).output().unwrap()).code(0);
    assert_eq!(sim.stats()["tasks_created"], 2);
    assert_eq!(results(&p)[0]["file"], format!("videos/{kept_file}"));
}

/// A provider that answers `task_not_exist` to the first `missing` queries of each task.
async fn not_indexed_yet(missing: usize) -> (Fake, Arc<AtomicUsize>) {
    let queries = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&queries);
    let fake = Fake::start(move |req| {
        if req.method == "POST" {
            return fake::json(
                200,
                json!({"task_id": "video_young", "status": "submitted"}),
            );
        }
        if req.path.starts_with("/files/") {
            return fake::raw(200, fake::mp4("video bytes"));
        }
        if seen.fetch_add(1, Ordering::SeqCst) < missing {
            return fake::json(
                400,
                json!({"code": "task_not_exist", "message": "task_not_exist", "data": null}),
            );
        }
        fake::json(
            200,
            json!({"task_id": "video_young", "status": "succeeded",
                   "url": format!("http://{}/files/v.mp4", req.headers["host"].to_str().unwrap())}),
        )
    })
    .await;
    (fake, queries)
}

fn fake_client(fake: &Fake) -> shotlist::api::Client {
    shotlist::api::Client::new(shotlist::api::ClientConfig {
        base_url: fake.base.clone(),
        api_key: shotlist::api::ApiKey::new(KEY),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_not_exist_for_a_young_task_is_retried_then_left_unknown_never_failed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 1, "young");

    // Not indexed for two queries: the task is polled on and its video saved.
    let (fake, _) = not_indexed_yet(2).await;
    let outcome = shotlist::exec::execute(&p, fake_client(&fake), opts(1))
        .await
        .unwrap();
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);
    let posts = |f: &Fake| f.seen().iter().filter(|s| s.method == "POST").count();
    assert_eq!(posts(&fake), 1);

    // Never indexed: after the bounded retries the shot is unknown with its task id kept.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 1, "never");
    let (never, queries) = not_indexed_yet(usize::MAX).await;
    let outcome = shotlist::exec::execute(&p, fake_client(&never), opts(1))
        .await
        .unwrap();
    assert_eq!(outcome.exit_code(), 1);
    let rows = results_json(&out);
    assert_eq!(rows[0]["status"], "unknown", "{rows:#?}");
    assert_eq!(rows[0]["task_id"], "video_young");
    let tries = queries.load(Ordering::SeqCst);
    assert!(tries > 2 && tries <= 10, "{tries} queries");
    assert!(journal_events(&out).iter().all(|e| e["event"] != "failed"));

    // A later run polls the same task again and sends nothing.
    let (later, _) = not_indexed_yet(0).await;
    let outcome = shotlist::exec::execute(&p, fake_client(&later), opts(1))
        .await
        .unwrap();
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(posts(&later), 0);
    assert!(
        later
            .seen()
            .iter()
            .any(|s| s.path.ends_with("/video_young"))
    );
}

fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn sigterm_and_sighup_stop_gracefully_and_resume_creates_nothing_twice() {
    for (signal, code) in [("TERM", 143), ("HUP", 129)] {
        let p = takes_project(2);
        let sim = SimProcess::start(&["--gen-time", "2s"]);
        let mut child = run_cmd(&p, &sim, &["-j", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn run");
        assert!(wait_for_lines(&mut child, &p, 2), "run ended too early");
        send_signal(child.id(), signal);
        let out = Run::from(child.wait_with_output().unwrap());
        out.code(code);
        assert!(
            out.stderr.contains("run the same command again"),
            "{}",
            out.stderr
        );
        assert!(unknown_ids(&p).is_empty(), "SIG{signal} left unknown shots");
        let created = sim.stats()["tasks_created"].as_u64().unwrap();
        assert!((1..=2).contains(&created), "{created}");
        Run::from(run_cmd(&p, &sim, &["-q"]).output().unwrap()).code(0);
        assert_eq!(sim.stats()["tasks_created"], 6);
    }
}

#[cfg(unix)]
#[test]
fn sigkill_and_sigterm_at_random_points_with_unseeded_takes_create_each_shot_once() {
    let p = takes_project(3);
    let sim = SimProcess::start(&["--gen-time", "300ms"]);
    let mut ever_unknown = BTreeSet::new();
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..8 {
        let target = journal_lines(&p) + 1 + rng.usize(..8);
        let mut child = run_cmd(&p, &sim, &["-q", "-j", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn run");
        if wait_for_lines(&mut child, &p, target) {
            if round % 2 == 0 {
                child.kill().expect("SIGKILL");
            } else {
                std::thread::sleep(Duration::from_millis(rng.u64(..200)));
                send_signal(child.id(), "TERM");
            }
        }
        let status = child.wait().unwrap();
        if round % 2 == 1 {
            assert!(
                matches!(status.code(), Some(0 | 1 | 143)),
                "SIGTERM run ended {status:?}"
            );
        }
        ever_unknown.extend(unknown_ids(&p));
    }
    let finish = Run::from(
        run_cmd(&p, &sim, &["-q", "--resubmit-unknown"])
            .output()
            .unwrap(),
    );
    finish.code(0);
    let rows = results(&p);
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:#?}");
    assert_eq!(distinct(&rows, "task_id"), 9);
    let created = sim.stats()["tasks_created"].as_u64().unwrap() as usize;
    assert!(
        (9..=9 + ever_unknown.len()).contains(&created),
        "{created} tasks for 9 shots (unknown: {ever_unknown:?})"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_at_random_points_leaves_nothing_unknown_and_creates_exactly_one_task_per_shot() {
    let p = takes_project(3);
    let sim = SimProcess::start(&["--gen-time", "300ms", "--p429", "0.2"]);
    let mut rng = fastrand::Rng::with_seed(11);
    for _ in 0..6 {
        let mut child = run_cmd(&p, &sim, &["-q", "-j", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn run");
        std::thread::sleep(Duration::from_millis(rng.u64(..600)));
        send_signal(child.id(), "TERM");
        let status = child.wait().unwrap();
        // Before its handlers are installed (while planning) the signal ends the process the
        // default way; nothing has been sent by then.
        use std::os::unix::process::ExitStatusExt;
        assert!(
            matches!(status.code(), Some(0 | 143)) || status.signal() == Some(15),
            "{status:?}"
        );
        assert!(unknown_ids(&p).is_empty(), "a SIGTERM left a shot unknown");
    }
    Run::from(run_cmd(&p, &sim, &["-q"]).output().unwrap()).code(0);
    assert_eq!(sim.stats()["tasks_created"], 9);
    assert_eq!(distinct(&results(&p), "task_id"), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_journal_line_stops_the_run_naming_it_unless_told_to_skip() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 2, "damaged");
    assert_eq!(execute(&p, &sim, opts(2)).await.exit_code(), 0);
    let good = std::fs::read(out.join("journal.jsonl")).unwrap();

    for (bad, line) in [(&b"{\"event\": garbage\n"[..], 2), (b"\xff\xfe\n", 2)] {
        let (first, rest) = good.split_at(good.iter().position(|&b| b == b'\n').unwrap() + 1);
        let text = [first, bad, rest].concat();
        std::fs::write(out.join("journal.jsonl"), &text).unwrap();
        let err = shotlist::exec::execute(&p, client(&sim, KEY), opts(2))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("line {line}")) && err.contains("--skip-bad-journal-lines"),
            "{err}"
        );
        assert_eq!(std::fs::read(out.join("journal.jsonl")).unwrap(), text);
    }
    assert_eq!(stats_of(&sim).await["tasks_created"], 2);

    let mut o = opts(2);
    o.skip_bad_journal_lines = true;
    let outcome = execute(&p, &sim, o).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.counts);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_out_of_the_output_folder_are_refused() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 1, "links");
    for name in ["journal.jsonl", "videos"] {
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let target = elsewhere.path().join(name);
        if name == "videos" {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::write(&target, "").unwrap();
        }
        std::os::unix::fs::symlink(&target, out.join(name)).unwrap();
        let err = shotlist::exec::execute(&p, client(&sim, KEY), opts(1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ExecError::OutDir(OutDirError::Escapes { .. })),
            "{name}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(elsewhere.path().join("videos")).map_or(0, |d| d.count()),
            0
        );
        assert_eq!(
            std::fs::read_to_string(elsewhere.path().join("journal.jsonl")).unwrap(),
            ""
        );
    }
    assert_eq!(stats_of(&sim).await["tasks_created"], 0);
}

/// `shotlist args` in `p`, sent SIGINT once the journal has `lines` lines; it exits 130.
#[cfg(unix)]
fn interrupted_after(p: &Project, args: &[&str], lines: usize) -> Run {
    let mut child = p
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run");
    assert!(wait_for_lines(&mut child, p, lines), "run ended too early");
    send_signal(child.id(), "INT");
    let out = Run::from(child.wait_with_output().unwrap());
    out.code(130);
    out
}

#[cfg(unix)]
#[test]
fn the_resume_command_printed_after_interrupting_sim_works_as_printed() {
    let p = takes_project(2);
    let args = ["run", "--sim", "batch.yaml", "-j", "2"];
    let out = interrupted_after(&p, &args, 3);
    let printed = out
        .stderr
        .lines()
        .skip_while(|l| !l.contains("run the same command again"))
        .nth(1)
        .expect("the resume command")
        .trim()
        .to_owned();
    let words: Vec<&str> = printed.split_whitespace().skip(1).collect();
    assert_eq!(words, args, "{printed}");

    let resumed = p.run(&words);
    resumed.code(0);
    let rows = results(&p);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:#?}");
    assert!(rows.iter().all(|r| r["attempts"] == 1), "{rows:#?}");
    let events: Vec<Value> = p
        .read("out/batch/journal.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let submits = events.iter().filter(|e| e["event"] == "submitting").count();
    assert_eq!(submits, 6);
    let tasks = p
        .read("out/batch/.sim-tasks.jsonl")
        .lines()
        .filter(|l| l.contains("\"id\""))
        .count();
    assert_eq!(tasks, 6);
}

#[cfg(unix)]
#[test]
fn an_interrupted_run_sim_on_dashscope_resumes_its_tasks_and_sends_nothing_twice() {
    let p = takes_project(2);
    let args = [
        "run",
        "--sim",
        "--provider",
        "dashscope",
        "batch.yaml",
        "-j",
        "2",
    ];
    interrupted_after(&p, &args, 4);
    let journal = p.read("out/batch/journal.jsonl");
    let in_flight = journal.matches("\"submitted\"").count();
    assert!(in_flight >= 1, "{journal}");

    let resumed = p.run(&args);
    resumed.code(0);
    assert!(resumed.stderr.contains("in flight"), "{}", resumed.stderr);
    let rows = results(&p);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:#?}");
    assert!(rows.iter().all(|r| r["attempts"] == 1), "{rows:#?}");
    assert!(rows.iter().all(|r| r["usage_s"] == 4.0), "{rows:#?}");
    let journal = p.read("out/batch/journal.jsonl");
    assert_eq!(journal.matches("\"submitting\"").count(), 6, "{journal}");
    let tasks = p.read("out/batch/.sim-tasks.jsonl");
    let created = tasks.lines().filter(|l| l.contains("\"id\"")).count();
    assert_eq!(created, 6, "each shot created one task: {tasks}");
    assert!(tasks.contains("\"model\":\"wan2.7-t2v\""), "{tasks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_task_ids_are_unique_across_processes() {
    let body = t2v_body("the same request");
    let mut ids = BTreeSet::new();
    for _ in 0..3 {
        let sim = SimProcess::start(&["--seed", "1"]);
        let client = shotlist::api::Client::new(shotlist::api::ClientConfig {
            base_url: sim.url.clone(),
            api_key: shotlist::api::ApiKey::new(KEY),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        ids.insert(client.submit(&body).await.unwrap().task_id);
    }
    assert_eq!(ids.len(), 3, "{ids:?}");
}

/// Every shot's results row against its journal history: status, task, attempts and video.
fn assert_results_match_journal(p: &Project, shots: usize) {
    use shotlist::journal::{Phase, replay_file};
    let replayed = replay_file(&p.path("out/batch/journal.jsonl"), false).unwrap();
    let rows = results(p);
    assert_eq!(rows.len(), shots, "{rows:#?}");
    let csv = p.read("out/batch/results.csv");
    assert_eq!(csv.lines().count(), shots + 1, "{csv}");
    for row in &rows {
        let id = row["id"].as_str().unwrap();
        let h = replayed.shots.values().find(|h| h.id == id);
        let status = match h.map(|h| h.phase()) {
            Some(Phase::Downloaded) => "succeeded",
            Some(Phase::Failed) => "failed",
            Some(Phase::Expired) => "expired",
            Some(Phase::Unknown) => "unknown",
            _ => "pending",
        };
        assert_eq!(row["status"], status, "{id}: {row:#}");
        assert_eq!(
            row["attempts"],
            h.map_or(0, |h| h.attempts),
            "{id}: {row:#}"
        );
        assert_eq!(
            row["task_id"].as_str(),
            h.and_then(|h| h.task_id.as_deref()),
            "{id}"
        );
        let sha = h
            .and_then(|h| h.sha256.as_deref())
            .filter(|_| status == "succeeded");
        assert_eq!(row["sha256"].as_str(), sha, "{id}");
        assert!(
            csv.lines()
                .any(|l| l.starts_with(&format!("{id},{status},"))),
            "{id}: {csv}"
        );
    }
}

#[cfg(unix)]
#[test]
fn results_after_an_interrupted_and_a_finished_run_say_what_the_journal_says() {
    let p = takes_project(4);
    let args = ["run", "--sim", "batch.yaml", "-j", "3"];
    interrupted_after(&p, &args, 8);
    let journal = p.read("out/batch/journal.jsonl");
    assert!(journal.contains("\"submitted\""), "{journal}");
    assert_results_match_journal(&p, 12);
    let rows = results(&p);
    assert!(
        rows.iter().any(|r| r["status"] == "pending"),
        "the run was stopped early: {rows:#?}"
    );

    p.run(&args).code(0);
    assert_results_match_journal(&p, 12);
    assert!(results(&p).iter().all(|r| r["status"] == "succeeded"));
}
