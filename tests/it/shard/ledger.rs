//! Money at the seams between folders and commands: a running shard is not merged, edits move
//! no shot between shards, one task is one shot's, an interrupted merge completes, and "spent"
//! is every task created times its estimate. Each counts tasks at `/__sim/stats`.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::merge::{
    SHOTS, batch_cmd, created, merge, project, rows, run_batch, run_shard, shard_dirs,
};
use crate::support::{Project, SimProcess};

/// Every shot of the fixture lasts 4 s at the list's 0.10 per second.
const ESTIMATE_MICROS: u64 = 400_000;

fn micros(text: &str) -> u64 {
    shotlist::cost::Money::parse(text).unwrap().micros()
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

/// Runs shards 1/2 and 2/2 to success.
fn run_both(p: &Project, sim: &SimProcess) {
    for k in ["1/2", "2/2"] {
        run_shard(p, sim, k).code(0);
    }
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
    let mut child = batch_cmd(&p, &sim, &["--shard", "1/2", "-q"])
        .spawn()
        .unwrap();
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
    run_both(&p, &sim);
    merge(&p, &shard_dirs(2), &[]).code(0);
    // A row in the middle and a new single shot: only they are new.
    let data = p
        .read("data/products.csv")
        .replace("p1,Chair\n", "p1,Chair\np9,Vase\n");
    p.file("data/products.csv", &data);
    let manifest =
        p.read("batch.yaml") + "  - id: extra\n    prompt: \"One more shot of the shop.\"\n";
    p.file("batch.yaml", &manifest);
    run_both(&p, &sim);
    assert_eq!(created(&sim), SHOTS as u64 + 2);
    merge(&p, &shard_dirs(2), &[]).code(0);
    assert_eq!(rows(&p, "out/batch").len(), SHOTS + 2);
    // Removing a row: the others stay where they are, nothing is sent.
    let data = p.read("data/products.csv").replace("p3,Rug\n", "");
    p.file("data/products.csv", &data);
    run_both(&p, &sim);
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
    for i in 0..20u64 {
        let mut args = vec!["merge", "batch.yaml"];
        args.extend(dirs.iter().map(String::as_str));
        let mut child = p.cmd(&args).spawn().unwrap();
        std::thread::sleep(Duration::from_millis((i * 7) % 120));
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
    run_both(&p, &sim);
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
        assert_eq!(doc["version"], 1);
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
    run_both(&p, &sim);
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

/// One step of a batch's life across shard folders.
#[derive(Debug, Clone)]
enum Step {
    /// `run --shard K/2`, to the end.
    Run(u32),
    /// `run --shard K/2`, killed with SIGKILL after some milliseconds.
    Kill(u32, u64),
    /// A new data row (its teaser is a new shot).
    AddRow(u8),
    /// The row's name changes: its shots' requests change (new shots under the same ids).
    EditRow(u8),
    RemoveRow(u8),
    Merge,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (1u32..=2).prop_map(Step::Run),
        2 => ((1u32..=2), 0u64..400).prop_map(|(k, ms)| Step::Kill(k, ms)),
        1 => (0u8..4).prop_map(Step::AddRow),
        1 => (0u8..4).prop_map(Step::EditRow),
        1 => (0u8..4).prop_map(Step::RemoveRow),
        2 => Just(Step::Merge),
    ]
}

/// Drives `steps`, then finishes the batch, and checks what was paid.
fn drive(steps: &[Step]) {
    let p = project();
    let sim = SimProcess::start(&["--gen-time", "150ms"]);
    let rows_file = "data/products.csv";
    for s in steps {
        match s {
            Step::Run(k) => {
                let r = run_shard(&p, &sim, &format!("{k}/2"));
                assert!([0, 1].contains(&r.code), "{s:?}: {}", r.stderr);
            }
            Step::Kill(k, ms) => {
                let shard = format!("{k}/2");
                let mut child = batch_cmd(&p, &sim, &["--shard", &shard, "-q"])
                    .spawn()
                    .unwrap();
                std::thread::sleep(Duration::from_millis(*ms));
                let _ = child.kill();
                let _ = child.wait();
            }
            Step::AddRow(n) => {
                let data = p.read(rows_file);
                if !data.contains(&format!("\nn{n},")) {
                    p.file(rows_file, &(data + &format!("n{n},New{n}\n")));
                }
            }
            Step::EditRow(n) => {
                let data = p
                    .read(rows_file)
                    .replace(&format!("p{n},"), &format!("p{n},Red "));
                p.file(rows_file, &data);
            }
            Step::RemoveRow(n) => {
                let data: String = (p.read(rows_file).lines())
                    .filter(|l| !l.starts_with(&format!("p{n},")))
                    .map(|l| format!("{l}\n"))
                    .collect();
                p.file(rows_file, &data);
            }
            Step::Merge => {
                let dirs: Vec<String> = shard_dirs(2)
                    .into_iter()
                    .filter(|d| p.path(&format!("{d}/shard.json")).exists())
                    .collect();
                if !dirs.is_empty() {
                    // A folder not run since the manifest changed is refused until it is.
                    let r = merge(&p, &dirs, &["--out", "merged"]);
                    let stale = r.code == 2 && r.stderr.contains("another plan");
                    assert!([0, 1].contains(&r.code) || stale, "{s:?}: {}", r.stderr);
                }
            }
        }
    }
    for k in ["1/2", "2/2"] {
        let r = run_shard(&p, &sim, k);
        assert!([0, 1].contains(&r.code), "{}", r.stderr);
    }
    let done = merge(&p, &shard_dirs(2), &["--out", "merged"]);
    assert!([0, 1].contains(&done.code), "{}", done.stderr);

    // Every request was created at most once (no fault makes a second task necessary).
    let stats = sim.stats();
    let mut per_prompt = std::collections::BTreeMap::<String, u32>::new();
    for t in stats["tasks"].as_array().unwrap() {
        *per_prompt
            .entry(t["prompt"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(per_prompt.values().all(|&n| n == 1), "{per_prompt:#?}");
    // One task, one shot, across every folder.
    let mut owner = std::collections::HashMap::<String, String>::new();
    for d in shard_dirs(2) {
        if !p.path(&format!("{d}/journal.jsonl")).exists() {
            continue;
        }
        for l in journal_lines(&p, &d) {
            if let Some(task) = l["task_id"].as_str() {
                let id = l["id"].as_str().unwrap().to_owned();
                let first = owner.entry(task.to_owned()).or_insert_with(|| id.clone());
                assert_eq!(*first, id, "task {task}");
            }
        }
    }
    // Spent counts every task created, and an unknown submit as paid until shown otherwise.
    let doc = status_json(&p, &["--out", "merged"]);
    let spent = micros(doc["cost"]["spent"].as_str().unwrap());
    let made = created(&sim) * ESTIMATE_MICROS;
    let unknown = doc["counts"]["unknown"].as_u64().unwrap() * ESTIMATE_MICROS;
    assert!(
        made <= spent && spent <= made + unknown,
        "{doc:#} vs {made}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 6,
        failure_persistence: None,
        ..Default::default()
    })]

    #[test]
    fn shards_edits_kills_and_merges_never_pay_twice(
        steps in proptest::collection::vec(step(), 1..7)
    ) {
        drive(&steps);
    }
}

/// A merged folder's own failed shot is resent by `--retry-failed` there (the user asked),
/// although a shard folder inside it paid for the failed task.
#[test]
fn a_failed_shot_is_retried_in_the_merged_folder_when_asked() {
    let p = project();
    let data = p
        .read("data/products.csv")
        .replace("p1,Chair", "p1,Chair [sim:fail]");
    p.file("data/products.csv", &data);
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    for k in ["1/2", "2/2"] {
        run_shard(&p, &sim, k);
    }
    assert_eq!(created(&sim), SHOTS as u64);
    merge(&p, &shard_dirs(2), &[]).code(1);
    run_batch(&p, &sim, &[]).code(1);
    assert_eq!(created(&sim), SHOTS as u64, "not resent without the flag");
    run_batch(&p, &sim, &["--retry-failed"]).code(1);
    assert_eq!(created(&sim), SHOTS as u64 + 1, "resent once when asked");
}

/// A sibling shard folder's journal that is a link, or too large, is refused before anything
/// is sent (a shard run must know what its siblings paid for).
#[test]
fn a_hostile_sibling_journal_is_refused_before_anything_is_sent() {
    let p = project();
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let sibling = p.path("out/batch/shard-2-of-2");
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(sibling.join("shard.json"), r#"{"index":2,"count":2}"#).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", sibling.join("journal.jsonl")).unwrap();
    let refused = run_shard(&p, &sim, "1/2");
    refused.code(2);
    assert!(
        refused.stderr.contains("sibling shard journal") && refused.stderr.contains("shard-2-of-2"),
        "{}",
        refused.stderr
    );
    std::fs::remove_file(sibling.join("journal.jsonl")).unwrap();
    let huge = std::fs::File::create(sibling.join("journal.jsonl")).unwrap();
    huge.set_len(256 * 1024 * 1024 + 1).unwrap();
    run_shard(&p, &sim, "1/2").code(2);
    assert_eq!(created(&sim), 0);
}
