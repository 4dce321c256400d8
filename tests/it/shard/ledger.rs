//! Money at the seams between folders and commands: a running shard is not merged, edits move
//! no shot between shards, one task is one shot's, an interrupted merge completes, and "spent"
//! is every task created times its estimate. Each counts tasks at `/__sim/stats`.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::merge::{SHOTS, created, merge, project, rows, run_batch, run_shard, shard_dirs};
use crate::support::{Project, SimProcess};

/// Every shot of the fixture lasts 4 s at the list's 0.10 per second.
const ESTIMATE_MICROS: u64 = 400_000;

fn micros(text: &str) -> u64 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    whole.parse::<u64>().unwrap() * 1_000_000 + format!("{frac:0<6}").parse::<u64>().unwrap()
}

fn status_json(p: &Project, extra: &[&str]) -> Value {
    let mut args = vec!["status", "batch.yaml", "--format", "json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&p.run(&args).stdout).unwrap()
}

fn journal_lines(p: &Project, dir: &str) -> Vec<Value> {
    p.read(&format!("{dir}/journal.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn append(p: &Project, dir: &str, line: &Value) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(p.path(&format!("{dir}/journal.jsonl")))
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()).unwrap();
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_running_shard_is_not_merged_and_nothing_is_paid_twice() {
    let p = project();
    let sim = SimProcess::start(&["--gen-time", "3s"]);
    let mut args = vec![
        "run",
        "batch.yaml",
        "--base-url",
        &sim.url,
        "--poll",
        "100ms",
        "--shard",
        "1/2",
    ];
    args.push("-q");
    let mut running = p.cmd(&args);
    running.env("GRAVITEX_API_KEY", "sk-test");
    let mut child = running.spawn().unwrap();
    let journal = p.path(&format!("{}/journal.jsonl", shard_dirs(2)[0]));
    wait_for("a submitted task", || {
        std::fs::read_to_string(&journal).is_ok_and(|j| j.contains(r#""event":"submitted""#))
    });
    let refused = merge(&p, &shard_dirs(2)[..1], &["--out", "merged"]);
    refused.code(4);
    assert!(
        refused.stderr.contains(&format!(
            "in use by another shotlist run (pid {}",
            child.id()
        )),
        "{}",
        refused.stderr
    );
    assert!(!p.path("merged/journal.jsonl").exists());
    assert!(child.wait().unwrap().success());
    run_shard(&p, &sim, "2/2").code(0);
    merge(&p, &shard_dirs(2), &["--out", "merged"]).code(0);
    run_batch(&p, &sim, &["--out", "merged"]).code(0);
    assert_eq!(created(&sim), SHOTS as u64);
}

#[test]
fn adding_rows_and_shots_moves_no_shot_and_every_merge_still_joins() {
    let p = project();
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    for k in ["1/2", "2/2"] {
        run_shard(&p, &sim, k).code(0);
    }
    merge(&p, &shard_dirs(2), &[]).code(0);
    // A row in the middle and a new single shot: only they are new.
    let data = p
        .read("data/products.csv")
        .replace("p1,Chair\n", "p1,Chair\np9,Vase\n");
    p.file("data/products.csv", &data);
    let manifest =
        p.read("batch.yaml") + "  - id: extra\n    prompt: \"One more shot of the shop.\"\n";
    p.file("batch.yaml", &manifest);
    for k in ["1/2", "2/2"] {
        run_shard(&p, &sim, k).code(0);
    }
    assert_eq!(created(&sim), SHOTS as u64 + 2);
    merge(&p, &shard_dirs(2), &[]).code(0);
    assert_eq!(rows(&p, "out/batch").len(), SHOTS + 2);
    // Removing a row: the others stay where they are, nothing is sent.
    let data = p.read("data/products.csv").replace("p3,Rug\n", "");
    p.file("data/products.csv", &data);
    for k in ["1/2", "2/2"] {
        run_shard(&p, &sim, k).code(0);
    }
    merge(&p, &shard_dirs(2), &[]).code(0);
    assert_eq!(created(&sim), SHOTS as u64 + 2);
}

#[test]
fn a_merge_killed_at_any_moment_completes_when_run_again() {
    let p = project();
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    for k in 1..=3 {
        run_shard(&p, &sim, &format!("{k}/3")).code(0);
    }
    let dirs = shard_dirs(3);
    for i in 0..16u64 {
        let mut args = vec!["merge", "batch.yaml"];
        args.extend(dirs.iter().map(String::as_str));
        let mut child = p.cmd(&args).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(i * 4));
        let _ = child.kill();
        let _ = child.wait();
        if i % 4 == 3 {
            // A run in the merged folder between merges: its lines are kept by the next merge.
            run_batch(&p, &sim, &[]);
        }
    }
    let done = merge(&p, &dirs, &[]);
    done.code(0);
    assert!(!done.stderr.contains("holds"), "{}", done.stderr);
    assert!(
        rows(&p, "out/batch")
            .iter()
            .all(|r| r["status"] == "succeeded")
    );
    run_batch(&p, &sim, &[]).code(0);
    assert_eq!(created(&sim), SHOTS as u64);
}

#[test]
fn one_task_is_one_shots_and_a_journals_file_is_not_believed() {
    let p = project();
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    for k in ["1/2", "2/2"] {
        run_shard(&p, &sim, k).code(0);
    }
    let dirs = shard_dirs(2);
    let (first, second) = (journal_lines(&p, &dirs[0]), journal_lines(&p, &dirs[1]));
    let submitted = |lines: &[Value]| {
        lines
            .iter()
            .find(|l| l["event"] == "submitted")
            .cloned()
            .unwrap()
    };
    let (mine, theirs) = (submitted(&first), submitted(&second));

    // Shard 1's shot given shard 2's task: refused, naming both shots.
    let mut stolen = mine.clone();
    stolen["event"] = "reattached".into();
    stolen["task_id"] = theirs["task_id"].clone();
    append(&p, &dirs[0], &stolen);
    let refused = merge(&p, &dirs, &["--out", "m1"]);
    refused.code(2);
    for word in [
        mine["id"].as_str().unwrap(),
        theirs["id"].as_str().unwrap(),
        "claimed by two shots",
    ] {
        assert!(refused.stderr.contains(word), "{word}: {}", refused.stderr);
    }
    std::fs::write(
        p.path(&format!("{}/journal.jsonl", dirs[0])),
        first.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();

    // A `downloaded` line naming another shot's video: refused by merge, not believed by run.
    let downloads: Vec<&Value> = first
        .iter()
        .filter(|l| l["event"] == "downloaded")
        .collect();
    assert!(downloads.len() >= 2, "{first:#?}");
    let mut wrong = downloads[1].clone();
    wrong["file"] = downloads[0]["file"].clone();
    wrong["sha256"] = downloads[0]["sha256"].clone();
    wrong["bytes"] = downloads[0]["bytes"].clone();
    append(&p, &dirs[0], &wrong);
    let refused = merge(&p, &dirs, &["--out", "m2"]);
    refused.code(2);
    assert!(
        refused.stderr.contains("not believed"),
        "{}",
        refused.stderr
    );
    run_shard(&p, &sim, "1/2").code(0);
    let id = wrong["id"].as_str().unwrap();
    let row = rows(&p, &dirs[0])
        .into_iter()
        .find(|r| r["id"] == id)
        .unwrap();
    assert_eq!(row["file"], format!("videos/{id}.mp4"));
    assert_eq!(created(&sim), SHOTS as u64);
}

/// `spent` (status, results, the run summary) is every task the simulator created times its
/// estimate, after failures retried and lost answers resent; it never goes down.
#[test]
fn spent_is_every_task_created_after_retries_and_resends() {
    let p = project();
    let sim = SimProcess::start(&[
        "--gen-time",
        "100ms",
        "--fail-rate",
        "0.4",
        "--p-lost",
        "0.3",
        "--seed",
        "11",
    ]);
    let mut last = 0;
    let mut check = |p: &Project| {
        let doc = status_json(p, &[]);
        let spent = micros(doc["cost"]["spent"].as_str().unwrap());
        assert_eq!(spent, created(&sim) * ESTIMATE_MICROS, "{doc:#}");
        assert_eq!(doc["cost"]["tasks"], created(&sim));
        assert!(spent >= last, "spent went down: {spent} < {last}");
        last = spent;
        let column: u64 = rows(p, "out/batch")
            .iter()
            .map(|r| micros(r["spent"].as_str().unwrap()))
            .sum();
        assert_eq!(column, spent);
        spent
    };
    let first = run_batch(&p, &sim, &[]);
    check(&p);
    assert!(first.stderr.contains("for the batch"), "{}", first.stderr);
    for flags in [
        &["--retry-failed"][..],
        &["--resubmit-unknown"],
        &["--retry-failed", "--resubmit-unknown"],
        &["--retry-failed", "--resubmit-unknown"],
    ] {
        let r = run_batch(&p, &sim, flags);
        let spent = check(&p);
        let batch = r
            .stderr
            .split(" for the batch")
            .next()
            .and_then(|s| s.rsplit(", ").next())
            .unwrap()
            .trim_end_matches(" USD");
        assert_eq!(micros(batch), spent, "{}", r.stderr);
    }
    assert!(
        created(&sim) > SHOTS as u64,
        "the faults made no second task"
    );
}

/// `--attach` never gives a shot a task a sibling shard folder assigns to another shot.
#[test]
fn a_siblings_task_is_not_attached_here() {
    let p = project();
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    for k in ["1/2", "2/2"] {
        run_shard(&p, &sim, k).code(0);
    }
    let dirs = shard_dirs(2);
    let theirs = journal_lines(&p, &dirs[1])
        .into_iter()
        .find(|l| l["event"] == "submitted")
        .unwrap();
    // A shot of shard 1 whose submit was cut off mid-POST: unknown, its task to be named.
    let mine = journal_lines(&p, &dirs[0])
        .into_iter()
        .find(|l| l["event"] == "submitting")
        .unwrap();
    let mut retry = mine.clone();
    retry["attempt"] = 2.into();
    retry["ts"] = "2099-01-01T00:00:00Z".into();
    append(&p, &dirs[0], &retry);
    let shot = mine["id"].as_str().unwrap();
    let task = theirs["task_id"].as_str().unwrap();
    let attach = format!("{shot}={task}");
    let refused = run_batch(&p, &sim, &["--shard", "1/2", "--attach", &attach]);
    refused.code(2);
    assert!(
        refused.stderr.contains("sibling shard folder") && refused.stderr.contains(&dirs[1]),
        "{}",
        refused.stderr
    );
    assert_eq!(created(&sim), SHOTS as u64);
}
