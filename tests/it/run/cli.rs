//! The real binary: `run --sim`, keys, invalid manifests, Ctrl-C and SIGKILL at many points.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Project, SimProcess};

pub const SECRET: &str = "sk-live-DO-NOT-LEAK-7f3a9c";

/// A project with `n` teaser shots and, for every other row, a continuation of its teaser.
pub fn project(n: usize) -> Project {
    let p = Project::new();
    let mut csv = String::from("sku,name\n");
    for i in 0..n {
        csv.push_str(&format!("p{i},Product {i}\n"));
    }
    p.file("data/products.csv", &csv).file(
        "batch.yaml",
        "version: 1\nname: batch\nseed: 7\ndata:\n  products: data/products.csv\n\
         defaults:\n  model: t2v\n  duration: 4\n  prompt_extend: false\n\
         shots:\n  - id: \"teaser-{{ row.sku }}\"\n    for_each: products\n\
         \x20   prompt: \"A slow pan over {{ row.name }} on a marble table.\"\n\
         \x20 - id: \"follow-{{ row.sku }}\"\n    for_each: products\n\
         \x20   when: \"row.sku in ['p0', 'p2', 'p4']\"\n    model: i2v\n\
         \x20   prompt: \"The camera pulls back from {{ row.name }}.\"\n    media:\n\
         \x20     - { type: first_clip, shot: \"teaser-{{ row.sku }}\" }\n",
    );
    p
}

pub fn results(p: &Project) -> Vec<Value> {
    serde_json::from_str(&p.read("out/batch/results.json")).expect("results.json")
}

pub fn run_cmd(p: &Project, sim: &SimProcess, extra: &[&str]) -> std::process::Command {
    let mut args = vec![
        "run",
        "batch.yaml",
        "--base-url",
        &sim.url,
        "--poll",
        "100ms",
    ];
    args.extend_from_slice(extra);
    let mut cmd = p.cmd(&args);
    cmd.env("GRAVITEX_API_KEY", SECRET);
    cmd
}

#[test]
fn run_sim_is_a_one_command_demo_and_status_agrees() {
    let p = project(2);
    let run = p.run(&["run", "--sim", "batch.yaml", "--poll", "100ms"]);
    run.code(0);
    assert!(run.stderr.contains("3 succeeded"), "{}", run.stderr);
    let rows = results(&p);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"));
    assert_eq!(rows[0]["source"], "products");
    assert_eq!(rows[1]["row"], 2);
    assert!(p.path("out/batch/videos/follow-p0.mp4").is_file());

    let status = p.run(&["status", "batch.yaml", "--format", "json"]);
    status.code(0);
    let doc: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(doc["counts"]["succeeded"], 3);
    assert_eq!(doc["counts"]["pending"], 0);
    assert_eq!(doc["shots"][2]["status"], "succeeded");
}

#[test]
fn without_a_key_nothing_is_sent_and_the_message_says_how() {
    let p = project(1);
    let sim = SimProcess::start(&[]);
    let run = p.run(&["run", "batch.yaml", "--base-url", &sim.url]);
    run.code(2);
    assert!(run.stderr.contains("GRAVITEX_API_KEY"), "{}", run.stderr);
    assert!(run.stderr.contains("--sim"), "{}", run.stderr);
    assert_eq!(sim.stats()["tasks_created"], 0);
    assert!(!p.path("out/batch/journal.jsonl").exists());
}

#[test]
fn an_invalid_manifest_exits_2_before_anything_is_written() {
    let p = project(1);
    p.file(
        "bad.yaml",
        "version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: hi\n    duration: 99\n",
    );
    let sim = SimProcess::start(&[]);
    let mut cmd = p.cmd(&["run", "bad.yaml", "--base-url", &sim.url]);
    cmd.env("GRAVITEX_API_KEY", SECRET);
    let run = crate::support::Run::from(cmd.output().unwrap());
    run.code(2);
    assert!(run.stderr.contains("bad.yaml"), "{}", run.stderr);
    assert_eq!(sim.stats()["tasks_created"], 0);
    assert!(!p.path("out").exists());
}

#[test]
fn a_wrong_key_exits_3_and_the_key_is_in_no_output_or_file() {
    let p = project(2);
    let sim = SimProcess::start(&["--key", "sk-the-real-one", "--gen-time", "100ms"]);
    let run = crate::support::Run::from(run_cmd(&p, &sim, &["-v", "-v"]).output().unwrap());
    run.code(3);
    assert!(run.stderr.contains("401"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("region"),
        "the gateway's 401 keeps its message: {}",
        run.stderr
    );
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
    for file in ["journal.jsonl", "results.csv", "results.json", "plan.json"] {
        let text = p.read(&format!("out/batch/{file}"));
        assert!(!text.contains(SECRET), "{file} holds the key");
    }
    assert_eq!(sim.stats()["tasks_created"], 0);
}

pub fn journal_lines(p: &Project) -> usize {
    std::fs::read_to_string(p.path("out/batch/journal.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Waits until the journal has `lines` lines or the child exits; true when it is still running.
pub fn wait_for_lines(child: &mut Child, p: &Project, lines: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        if journal_lines(p) >= lines {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the run neither wrote {lines} journal lines nor ended");
}

pub fn unknown_ids(p: &Project) -> BTreeSet<String> {
    let status = p.run(&["status", "batch.yaml", "--format", "json"]);
    status.code(0);
    let doc: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    doc["shots"]
        .as_array()
        .expect("shots")
        .iter()
        .filter(|s| s["status"] == "unknown")
        .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn sigkill_at_many_points_never_creates_a_shot_twice() {
    let p = project(6);
    let sim = SimProcess::start(&["--gen-time", "300ms"]);
    let mut ever_unknown = BTreeSet::new();
    let mut kills = 0;
    for step in [1usize, 2, 3, 5, 8, 13] {
        let target = journal_lines(&p) + step;
        let mut child = run_cmd(&p, &sim, &["-q", "-j", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn run");
        if wait_for_lines(&mut child, &p, target) {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        let _ = child.wait();
        // Results are rewritten atomically while the run goes: a kill never leaves them torn.
        assert_eq!(results(&p).len(), 9);
        ever_unknown.extend(unknown_ids(&p));
    }
    assert!(kills >= 3, "only {kills} runs were killed");

    let finish = crate::support::Run::from(run_cmd(&p, &sim, &["-q"]).output().unwrap());
    ever_unknown.extend(unknown_ids(&p));
    if !ever_unknown.is_empty() {
        assert_eq!(finish.code, 1, "{}", finish.stderr);
        let resend = run_cmd(&p, &sim, &["-q", "--resubmit-unknown"])
            .output()
            .unwrap();
        crate::support::Run::from(resend).code(0);
    } else {
        finish.code(0);
    }
    let rows = results(&p);
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:#?}");

    let stats = sim.stats();
    let mut per_prompt: BTreeMap<String, usize> = BTreeMap::new();
    for t in stats["tasks"].as_array().expect("tasks") {
        *per_prompt
            .entry(t["prompt"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let plan: Value = serde_json::from_str(&p.read("out/batch/plan.json")).unwrap();
    for shot in plan["shots"].as_array().unwrap() {
        let id = shot["id"].as_str().unwrap();
        let prompt = shot["body"]["prompt"].as_str().unwrap();
        let created = per_prompt.get(prompt).copied().unwrap_or(0);
        let allowed = if ever_unknown.contains(id) { 2 } else { 1 };
        assert!(
            (1..=allowed).contains(&created),
            "{id} created {created} times (unknown: {ever_unknown:?})"
        );
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_keeps_state_and_says_how_to_resume() {
    let p = project(4);
    let sim = SimProcess::start(&["--gen-time", "2s"]);
    let mut child = run_cmd(&p, &sim, &["-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run");
    assert!(wait_for_lines(&mut child, &p, 4), "run ended too early");
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill -INT");
    assert!(killed.success());
    let out = crate::support::Run::from(child.wait_with_output().unwrap());
    out.code(130);
    assert!(
        out.stderr.contains("run the same command again"),
        "{}",
        out.stderr
    );
    let created = sim.stats()["tasks_created"].as_u64().unwrap();
    assert!((1..=2).contains(&created), "{created}");

    let resumed = crate::support::Run::from(run_cmd(&p, &sim, &["-q"]).output().unwrap());
    resumed.code(0);
    assert_eq!(sim.stats()["tasks_created"].as_u64().unwrap(), 6);
}

#[test]
fn config_supplies_url_key_and_poll_and_flags_win_over_it() {
    let p = project(1);
    let sim = SimProcess::start(&["--key", SECRET, "--gen-time", "100ms"]);
    p.file(
        "shotlist.toml",
        "[api]\nbase_url = \"http://127.0.0.1:9\"\napi_key_env = \"MY_SHOTLIST_KEY\"\n\
         [run]\nconcurrency = 1\npoll = \"100ms\"\n",
    );
    // The config's URL is dead; the flag wins, the key comes from the configured variable.
    let mut cmd = p.cmd(&[
        "run",
        "batch.yaml",
        "--base-url",
        &sim.url,
        "--out",
        "elsewhere",
    ]);
    cmd.env("MY_SHOTLIST_KEY", SECRET);
    let run = crate::support::Run::from(cmd.output().unwrap());
    run.code(0);
    assert!(run.stderr.contains("up to 1 in flight"), "{}", run.stderr);
    let rows: Vec<Value> = serde_json::from_str(&p.read("elsewhere/results.json")).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"));
    assert!(!p.path("out").exists());
    assert_eq!(sim.stats()["tasks_created"], 2);

    // GRAVITEX_API_KEY is not the configured variable, so it is not used.
    let mut cmd = p.cmd(&["run", "batch.yaml", "--base-url", &sim.url]);
    cmd.env("GRAVITEX_API_KEY", SECRET);
    let run = crate::support::Run::from(cmd.output().unwrap());
    run.code(2);
    assert!(run.stderr.contains("MY_SHOTLIST_KEY"), "{}", run.stderr);
}

#[test]
fn status_text_counts_and_names_what_needs_attention() {
    let p = project(1);
    let sim = SimProcess::start(&["--gen-time", "100ms", "--fail-rate", "1"]);
    let run = crate::support::Run::from(run_cmd(&p, &sim, &["-q"]).output().unwrap());
    run.code(1);
    let status = p.run(&["status", "batch.yaml"]);
    status.code(0);
    assert!(status.stdout.contains("1 failed"), "{}", status.stdout);
    assert!(status.stdout.contains("1 skipped"), "{}", status.stdout);
    assert!(
        status.stdout.contains("failed teaser-p0"),
        "{}",
        status.stdout
    );
    let rows = results(&p);
    assert_eq!(rows[0]["status"], "failed");
    assert_eq!(rows[1]["status"], "skipped");
}

/// `-v` names the config and logs each submit and outcome; `-vv` adds every poll's answer.
#[test]
fn vv_adds_the_polls_to_v() {
    let p = project(1);
    let v = p.run(&["-v", "run", "--sim", "batch.yaml", "--poll", "100ms"]);
    v.code(0);
    assert!(v.stderr.contains("config: none found"), "{}", v.stderr);
    assert!(
        v.stderr
            .contains("settings not at their default: poll (flag)"),
        "{}",
        v.stderr
    );
    assert!(v.stderr.contains("submitted teaser-p0"), "{}", v.stderr);
    assert!(!v.stderr.contains("query "), "{}", v.stderr);
    let p = project(1);
    let vv = p.run(&["-vv", "run", "--sim", "batch.yaml", "--poll", "100ms"]);
    vv.code(0);
    assert!(vv.stderr.contains(": Running"), "{}", vv.stderr);
}
