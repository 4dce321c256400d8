//! Shards run against one simulator, then merged: every shot created once, the merged folder
//! complete and done; folders from another plan, another shard or hostile ones refused.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{Project, Run, SimProcess};

/// Three rows: a teaser each, and a continuation of two of them (chains across shards).
pub(super) fn project() -> Project {
    let p = Project::new();
    p.file(
        "data/products.csv",
        "sku,name\np0,Lamp\np1,Chair\np2,Desk\np3,Rug\n",
    )
    .file(
        "batch.yaml",
        "version: 1\nname: batch\nseed: 7\ndata:\n  products: data/products.csv\n\
             defaults:\n  model: t2v\n  duration: 4\n  prompt_extend: false\n\
             shots:\n  - id: \"teaser-{{ row.sku }}\"\n    for_each: products\n\
             \x20   prompt: \"A slow pan over the {{ row.name }}.\"\n\
             \x20 - id: \"follow-{{ row.sku }}\"\n    for_each: products\n\
             \x20   when: \"row.sku in ['p0', 'p2']\"\n    model: i2v\n\
             \x20   prompt: \"The camera pulls back from the {{ row.name }}.\"\n    media:\n\
             \x20     - { type: first_clip, shot: \"teaser-{{ row.sku }}\" }\n",
    );
    p
}

pub(super) const SHOTS: usize = 6;

/// `run batch.yaml` against `sim` with `extra` flags.
pub(super) fn run_batch(p: &Project, sim: &SimProcess, extra: &[&str]) -> Run {
    Run::from(batch_cmd(p, sim, extra).output().unwrap())
}

/// The command [`run_batch`] runs, to spawn it instead.
pub(super) fn batch_cmd(p: &Project, sim: &SimProcess, extra: &[&str]) -> std::process::Command {
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
    cmd.env("GRAVITEX_API_KEY", "sk-test");
    cmd
}

pub(super) fn run_shard(p: &Project, sim: &SimProcess, shard: &str) -> Run {
    run_batch(p, sim, &["--shard", shard])
}

pub(super) fn shard_dirs(n: usize) -> Vec<String> {
    (1..=n)
        .map(|k| format!("out/batch/shard-{k}-of-{n}"))
        .collect()
}

pub(super) fn merge(p: &Project, dirs: &[String], extra: &[&str]) -> Run {
    let mut args = vec!["merge", "batch.yaml"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend_from_slice(extra);
    p.run(&args)
}

pub(super) fn rows(p: &Project, dir: &str) -> Vec<Value> {
    serde_json::from_str(&p.read(&format!("{dir}/results.json"))).unwrap()
}

pub(super) fn created(sim: &SimProcess) -> u64 {
    sim.stats()["tasks_created"].as_u64().unwrap()
}

/// Runs all three shards; returns the simulator.
fn run_three(p: &Project) -> SimProcess {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    for k in 1..=3 {
        let run = run_shard(p, &sim, &format!("{k}/3"));
        run.code(0);
        assert!(
            run.stderr.contains("left to other shards"),
            "{}",
            run.stderr
        );
    }
    sim
}

#[test]
fn three_shards_merge_into_a_complete_folder_that_a_rerun_leaves_alone() {
    let p = project();
    let sim = run_three(&p);
    let stats = sim.stats();
    assert_eq!(stats["tasks_created"], SHOTS);
    let mut per_prompt: BTreeMap<String, usize> = BTreeMap::new();
    for t in stats["tasks"].as_array().unwrap() {
        *per_prompt
            .entry(t["prompt"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_prompt.len(), SHOTS, "{per_prompt:?}");
    assert!(per_prompt.values().all(|&n| n == 1), "{per_prompt:?}");

    let merged = merge(&p, &shard_dirs(3), &[]);
    merged.code(0);
    assert!(merged.stderr.contains("merged 3 of 3"), "{}", merged.stderr);
    let rows = rows(&p, "out/batch");
    assert_eq!(rows.len(), SHOTS);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:#?}");
    for r in &rows {
        let id = r["id"].as_str().unwrap();
        assert!(
            p.path(&format!("out/batch/videos/{id}.mp4")).is_file(),
            "{id}"
        );
    }
    // Never moved out of a shard folder.
    let shard_videos: usize = shard_dirs(3)
        .iter()
        .map(|d| {
            std::fs::read_dir(p.path(&format!("{d}/videos")))
                .unwrap()
                .count()
        })
        .sum();
    assert_eq!(shard_videos, SHOTS);

    let status = p.run(&["status", "batch.yaml", "--format", "json"]);
    status.code(0);
    let doc: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["counts"]["succeeded"], SHOTS);

    let before = created(&sim);
    run_batch(&p, &sim, &[]).code(0);
    assert_eq!(created(&sim), before);
    assert_eq!(sim.stats()["tasks_created"], SHOTS);

    // Merging again (nothing ran in the merged folder since) is allowed and changes nothing.
    merge(&p, &shard_dirs(3), &[]).code(0);
    // A shard rerun finds its work done.
    run_shard(&p, &sim, "2/3").code(0);
    assert_eq!(created(&sim), before);
}

#[test]
fn a_missing_shard_leaves_its_shots_pending_and_exits_1() {
    let p = project();
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    run_shard(&p, &sim, "1/2").code(0);
    let merged = merge(&p, &shard_dirs(2)[..1], &["--out", "merged"]);
    merged.code(1);
    assert!(
        merged.stderr.contains("missing shard(s): 2/2"),
        "{}",
        merged.stderr
    );
    let rows = rows(&p, "merged");
    let pending = rows.iter().filter(|r| r["status"] == "pending").count();
    let succeeded = rows.iter().filter(|r| r["status"] == "succeeded").count();
    assert_eq!(pending + succeeded, SHOTS);
    assert!(pending > 0 && succeeded > 0, "{rows:#?}");

    // The missing shard runs later; merging again completes the folder.
    run_shard(&p, &sim, "2/2").code(0);
    merge(&p, &shard_dirs(2), &["--out", "merged"]).code(0);
    assert_eq!(created(&sim), SHOTS as u64);
}

#[test]
fn merge_refuses_a_folder_from_an_edited_manifest_naming_the_shot() {
    let p = project();
    let _sim = run_three(&p);
    let text = p.read("batch.yaml").replace("A slow pan", "A fast pan");
    p.file("batch.yaml", &text);
    let merged = merge(&p, &shard_dirs(3), &[]);
    merged.code(2);
    assert!(merged.stderr.contains("another plan"), "{}", merged.stderr);
    assert!(merged.stderr.contains("teaser-p"), "{}", merged.stderr);
    assert!(!p.path("out/batch/results.csv").exists());
}

#[test]
fn merge_refuses_duplicates_and_taken_outputs_and_joins_two_ns_and_moved_shots() {
    let p = project();
    let sim = run_three(&p);
    let dirs = shard_dirs(3);
    let dup = merge(&p, &[dirs[0].clone(), dirs[0].clone()], &[]);
    dup.code(2);
    assert!(dup.stderr.contains("both hold shard 1/3"), "{}", dup.stderr);

    // Another N: the new shard sends nothing its siblings paid for, and says where it is.
    let other_n = run_shard(&p, &sim, "1/2");
    other_n.code(1);
    assert_eq!(created(&sim), SHOTS as u64);
    let held = rows(&p, "out/batch/shard-1-of-2");
    let mine: Vec<&Value> = held.iter().filter(|r| r["status"] == "skipped").collect();
    assert!(!mine.is_empty(), "{held:#?}");
    for r in mine {
        let error = r["error"].as_str().unwrap();
        assert!(
            error.contains("already sent from the sibling shard folder"),
            "{error}"
        );
    }
    // Folders of two N merge: each shot's history comes from the folder that holds it.
    let mut both = dirs.clone();
    both.push("out/batch/shard-1-of-2".into());
    merge(&p, &both, &["--out", "two-n"]).code(0);
    assert!(rows(&p, "two-n").iter().all(|r| r["status"] == "succeeded"));

    let not_shard = merge(&p, &["out".into()], &[]);
    not_shard.code(2);
    assert!(
        not_shard.stderr.contains("not a shard folder"),
        "{}",
        not_shard.stderr
    );

    // A shard folder whose journal holds another shard's shot (run under an earlier
    // assignment): the folder with its video gives its history; nothing is sent again.
    let foreign = std::fs::read_to_string(p.path(&format!("{}/journal.jsonl", dirs[1]))).unwrap();
    let mut j = std::fs::OpenOptions::new()
        .append(true)
        .open(p.path(&format!("{}/journal.jsonl", dirs[0])))
        .unwrap();
    std::io::Write::write_all(&mut j, foreign.as_bytes()).unwrap();
    let moved = merge(&p, &dirs, &["--out", "m2"]);
    moved.code(0);
    assert!(rows(&p, "m2").iter().all(|r| r["status"] == "succeeded"));
    run_batch(&p, &sim, &["--out", "m2"]).code(0);
    assert_eq!(created(&sim), SHOTS as u64);

    // A shard folder never takes another shard's run, nor an unsharded one.
    let other = run_batch(&p, &sim, &["--shard", "2/3", "--out", &dirs[0]]);
    other.code(2);
    assert!(other.stderr.contains("holds shard 1/3"), "{}", other.stderr);

    // An output folder holding a run of its own keeps that run's lines after the shards'.
    run_batch(&p, &sim, &["--out", "plain"]).code(0);
    let own = std::fs::read_to_string(p.path("plain/journal.jsonl")).unwrap();
    merge(&p, &dirs[1..], &["--out", "plain"]).code(0);
    let merged = std::fs::read_to_string(p.path("plain/journal.jsonl")).unwrap();
    assert!(merged.ends_with(&own), "{merged}");
    merge(&p, &dirs[1..], &["--out", "plain"]).code(0);
    let again = std::fs::read_to_string(p.path("plain/journal.jsonl")).unwrap();
    assert_eq!(again, merged);
}

#[test]
fn hostile_shard_folders_get_clear_errors() {
    let p = project();
    let _sim = run_three(&p);
    let dirs = shard_dirs(3);
    let d = &dirs[0];

    // A video replaced by a link leaving the folder.
    let video = std::fs::read_dir(p.path(&format!("{d}/videos")))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&video).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &video).unwrap();
    let linked = merge(&p, &dirs, &["--out", "m1"]);
    linked.code(2);
    assert!(linked.stderr.contains("symbolic link"), "{}", linked.stderr);
    std::fs::remove_file(&video).unwrap();

    // A missing video: merged, but listed for download again.
    let missing = merge(&p, &dirs, &["--out", "m2"]);
    assert!(
        missing.stderr.contains("missing or changed"),
        "{}",
        missing.stderr
    );

    // Bad JSON and a huge journal.
    std::fs::write(p.path(&format!("{d}/plan.json")), "{\"shots\": [").unwrap();
    let bad = merge(&p, &dirs, &["--out", "m3"]);
    bad.code(2);
    assert!(
        bad.stderr.contains("plan.json is not valid"),
        "{}",
        bad.stderr
    );

    let journal = std::fs::OpenOptions::new()
        .write(true)
        .open(p.path(&format!("{}/journal.jsonl", dirs[1])))
        .unwrap();
    journal.set_len(shotlist::folder::MAX_JOURNAL + 1).unwrap();
    let huge = merge(&p, &dirs[1..], &["--out", "m4"]);
    huge.code(2);
    assert!(huge.stderr.contains("more than the"), "{}", huge.stderr);

    std::fs::write(
        p.path(&format!("{}/shard.json", dirs[2])),
        "{\"index\": 0, \"count\": 3}",
    )
    .unwrap();
    let shard = merge(&p, &dirs[2..], &["--out", "m5"]);
    shard.code(2);
    assert!(
        shard.stderr.contains("shard.json is not valid"),
        "{}",
        shard.stderr
    );
}

#[test]
fn shards_run_on_two_providers_are_not_merged() {
    let p = project();
    let gravitex = SimProcess::start(&["--gen-time", "100ms"]);
    let dashscope = SimProcess::start(&["--provider", "dashscope", "--gen-time", "100ms"]);
    run_shard(&p, &gravitex, "1/2").code(0);
    let mut cmd = p.cmd(&[
        "run",
        "batch.yaml",
        "--provider",
        "dashscope",
        "--base-url",
        &dashscope.url,
        "--poll",
        "100ms",
        "--shard",
        "2/2",
    ]);
    cmd.env("DASHSCOPE_API_KEY", "sk-test");
    Run::from(cmd.output().unwrap()).code(0);
    let dirs = shard_dirs(2);
    let refused = merge(&p, &dirs, &[]);
    refused.code(2);
    for word in ["gravitex", "dashscope", "shard-1-of-2", "shard-2-of-2"] {
        assert!(refused.stderr.contains(word), "{word}: {}", refused.stderr);
    }
    assert!(!p.path("out/batch/journal.jsonl").exists());

    merge(&p, &dirs[..1], &[]).code(1);
    assert_eq!(p.read("out/batch/provider"), "gravitex\n");
}

/// The shard folder (of `dirs`) holding shot `id`'s video.
fn shard_of(p: &Project, dirs: &[String], id: &str) -> String {
    dirs.iter()
        .find(|d| p.path(&format!("{d}/videos/{id}.mp4")).is_file())
        .unwrap_or_else(|| panic!("no shard holds {id}"))
        .clone()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

/// Every file under `dir/videos` (recursively) with its bytes' hash, and the other files the
/// merge writes: what a second merge must leave as it was.
fn merged_state(p: &Project, dir: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![p.path(&format!("{dir}/videos"))];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(p.path(dir))
                    .unwrap()
                    .display()
                    .to_string();
                out.insert(rel, sha256_hex(&std::fs::read(&path).unwrap()));
            }
        }
    }
    for f in [
        "journal.jsonl",
        "marks.json",
        "results.json",
        "results.csv",
        "plan.json",
    ] {
        let path = p.path(&format!("{dir}/{f}"));
        let hash = std::fs::read(&path).map_or("absent".into(), |b| sha256_hex(&b));
        out.insert(f.to_owned(), hash);
    }
    out
}

#[test]
fn merge_brings_superseded_videos_and_marks_so_a_retake_on_the_merged_folder_works() {
    let p = project();
    let sim = run_three(&p);
    let dirs = shard_dirs(3);
    // An edited row: teaser-p0 and its continuation are sent again on their shard, and their
    // first videos go under videos/superseded/ there.
    let data = p
        .read("data/products.csv")
        .replace("p0,Lamp", "p0,Floor lamp");
    p.file("data/products.csv", &data);
    for k in 1..=3 {
        run_shard(&p, &sim, &format!("{k}/3")).code(0);
    }
    assert_eq!(created(&sim), SHOTS as u64 + 2);
    let edited = shard_of(&p, &dirs, "teaser-p0");
    let rejected = shard_of(&p, &dirs, "teaser-p1");
    let approved = shard_of(&p, &dirs, "teaser-p2");
    for (dir, id, flag) in [
        (&rejected, "teaser-p1", "--reject"),
        (&approved, "teaser-p2", "--approve"),
    ] {
        p.run(&["mark", "batch.yaml", id, flag, "--out", dir])
            .code(0);
    }

    let merged = merge(&p, &dirs, &[]);
    merged.code(0);
    for word in ["2 earlier video(s)", "2 mark(s) from the shards"] {
        assert!(merged.stderr.contains(word), "{word}: {}", merged.stderr);
    }
    assert!(!merged.stderr.contains("warning"), "{}", merged.stderr);

    let status = p.run(&["status", "batch.yaml", "--format", "json"]);
    status.code(0);
    let doc: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["counts"]["succeeded"], SHOTS, "{doc:#}");
    let superseded = doc["superseded"].as_array().unwrap();
    assert_eq!(superseded.len(), 2, "{doc:#}");
    // Each superseded line's file is in the merged folder, with the hash its line records,
    // and is the shard's earlier video.
    let journal = p.read("out/batch/journal.jsonl");
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["event"] == "superseded")
        .collect();
    assert_eq!(lines.len(), 2);
    for e in &lines {
        let file = e["file"].as_str().unwrap();
        assert!(file.starts_with("superseded/"), "{file}");
        let ours = std::fs::read(p.path(&format!("out/batch/videos/{file}"))).unwrap();
        assert_eq!(sha256_hex(&ours), e["sha256"].as_str().unwrap(), "{file}");
        let theirs = std::fs::read(p.path(&format!("{edited}/videos/{file}"))).unwrap();
        assert_eq!(ours, theirs);
    }

    let marks: Value = serde_json::from_str(&p.read("out/batch/marks.json")).unwrap();
    let got: BTreeMap<&str, &str> = marks["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["mark"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        BTreeMap::from([("teaser-p1", "rejected"), ("teaser-p2", "approved")])
    );

    // Merging again (nothing ran in the merged folder) changes nothing.
    let before = merged_state(&p, "out/batch");
    let again = merge(&p, &dirs, &[]);
    again.code(0);
    assert!(
        again
            .stderr
            .contains("0 mark(s) from the shards, 2 in marks.json"),
        "{}",
        again.stderr
    );
    assert_eq!(merged_state(&p, "out/batch"), before);

    // The rejection made on a shard folder is seen on the merged one: exactly one retake (the
    // rejected teaser has no dependant), and the approved shot is not sent.
    let sent = created(&sim);
    run_batch(&p, &sim, &["--retake-rejected"]).code(0);
    assert_eq!(created(&sim), sent + 1);
}

#[test]
fn a_bad_marks_file_in_a_shard_is_refused_and_nothing_is_written() {
    let p = project();
    let _sim = run_three(&p);
    let dirs = shard_dirs(3);
    merge(&p, &dirs, &[]).code(0);
    let before = merged_state(&p, "out/batch");
    let merge_json = p.read("out/batch/merge.json");

    p.file(
        &format!("{}/marks.json", dirs[1]),
        "{\"version\": 1, \"marks\": [",
    );
    let bad = merge(&p, &dirs, &[]);
    bad.code(2);
    assert!(
        bad.stderr.contains(&format!("{}/marks.json", dirs[1])) && bad.stderr.contains("JSON"),
        "{}",
        bad.stderr
    );
    assert_eq!(merged_state(&p, "out/batch"), before);
    assert_eq!(p.read("out/batch/merge.json"), merge_json);
    let fresh = merge(&p, &dirs, &["--out", "fresh"]);
    fresh.code(2);
    for f in [
        "journal.jsonl",
        "results.json",
        "marks.json",
        "merge.json",
        "videos",
    ] {
        assert!(!p.path(&format!("fresh/{f}")).exists(), "{f}");
    }

    // A marks file that is a link, or one entry naming no shot id form: refused too.
    let marks = p.path(&format!("{}/marks.json", dirs[1]));
    std::fs::remove_file(&marks).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &marks).unwrap();
    let linked = merge(&p, &dirs, &[]);
    linked.code(2);
    assert!(linked.stderr.contains("symbolic link"), "{}", linked.stderr);
    std::fs::remove_file(&marks).unwrap();
    let key = "0".repeat(64);
    p.file(
        &format!("{}/marks.json", dirs[1]),
        &format!(
            "{{\"version\": 1, \"marks\": [{{\"id\": \"../x\", \"key\": \"{key}\", \"mark\": \"rejected\"}}]}}"
        ),
    );
    let invalid = merge(&p, &dirs, &[]);
    invalid.code(2);
    assert!(invalid.stderr.contains("entry 1"), "{}", invalid.stderr);
    std::fs::File::create(&marks)
        .unwrap()
        .set_len(shotlist::review::marks::MAX_BYTES + 1)
        .unwrap();
    let huge = merge(&p, &dirs, &[]);
    huge.code(2);
    assert!(huge.stderr.contains("more than the"), "{}", huge.stderr);
    assert_eq!(merged_state(&p, "out/batch"), before);
}

/// A retake on a shard writes the shot's new attempt into its plan.json: the merge takes it
/// (as every command applies recorded retakes), keeps the rejected video under
/// `videos/superseded/`, and a run on the merged folder sends nothing, even with
/// `--retake-rejected` (the rejection was of the earlier attempt).
#[test]
fn a_retake_made_on_a_shard_folder_merges() {
    let p = project();
    let sim = run_three(&p);
    let dirs = shard_dirs(3);
    let dir = shard_of(&p, &dirs, "teaser-p1");
    p.run(&["mark", "batch.yaml", "teaser-p1", "--reject", "--out", &dir])
        .code(0);
    let k = dirs.iter().position(|d| *d == dir).unwrap() + 1;
    run_batch(
        &p,
        &sim,
        &["--shard", &format!("{k}/3"), "--retake-rejected"],
    )
    .code(0);
    assert_eq!(created(&sim), SHOTS as u64 + 1);
    let merged = merge(&p, &dirs, &[]);
    merged.code(0);
    assert!(
        merged.stderr.contains("1 earlier video(s)"),
        "{}",
        merged.stderr
    );
    assert!(!merged.stderr.contains("warning"), "{}", merged.stderr);
    let status = p.run(&["status", "batch.yaml", "--format", "json"]);
    status.code(0);
    let doc: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(doc["counts"]["succeeded"], SHOTS, "{doc:#}");
    let file = doc["superseded"][0]["file"].as_str().unwrap();
    assert_eq!(
        std::fs::read(p.path(&format!("out/batch/videos/{file}"))).unwrap(),
        std::fs::read(p.path(&format!("{dir}/videos/{file}"))).unwrap()
    );
    assert_eq!(
        std::fs::read(p.path("out/batch/videos/teaser-p1.mp4")).unwrap(),
        std::fs::read(p.path(&format!("{dir}/videos/teaser-p1.mp4"))).unwrap()
    );
    let sent = created(&sim);
    run_batch(&p, &sim, &["--retake-rejected"]).code(0);
    assert_eq!(created(&sim), sent);
}

/// A different file already at a merged video's name is moved aside, never overwritten, and
/// the merged journal says so as a run would (a `superseded` line with its hash and size), so
/// `status` lists it; merging again changes nothing.
#[test]
fn a_file_in_the_way_of_a_merged_video_is_moved_aside_and_journalled() {
    let p = project();
    let _sim = run_three(&p);
    let dirs = shard_dirs(3);
    let by_hand = b"not the shard's video";
    let sha = sha256_hex(by_hand);
    p.file(
        "out/batch/videos/teaser-p1.mp4",
        std::str::from_utf8(by_hand).unwrap(),
    );

    let merged = merge(&p, &dirs, &[]);
    merged.code(0);
    assert!(
        merged
            .stderr
            .contains("1 other file(s) at merged video names moved to videos/superseded/"),
        "{}",
        merged.stderr
    );
    let moved = format!("superseded/teaser-p1.{}.mp4", &sha[..12]);
    assert_eq!(
        std::fs::read(p.path(&format!("out/batch/videos/{moved}"))).unwrap(),
        by_hand
    );
    let shard = shard_of(&p, &dirs, "teaser-p1");
    assert_eq!(
        std::fs::read(p.path("out/batch/videos/teaser-p1.mp4")).unwrap(),
        std::fs::read(p.path(&format!("{shard}/videos/teaser-p1.mp4"))).unwrap(),
        "the shard's video took its name"
    );
    let journal = p.read("out/batch/journal.jsonl");
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["event"] == "superseded")
        .collect();
    assert_eq!(lines.len(), 1, "{journal}");
    let line = &lines[0];
    assert_eq!(
        (&line["id"], &line["file"], &line["sha256"], &line["bytes"]),
        (
            &"teaser-p1".into(),
            &moved.as_str().into(),
            &sha.as_str().into(),
            &by_hand.len().into()
        ),
        "{line}"
    );
    assert!(
        line["error"].as_str().unwrap().contains("placed by hand"),
        "{line}"
    );

    let status = p.run(&["status", "batch.yaml"]);
    status.code(0);
    assert!(
        status.stdout.contains(&format!("videos/{moved}"))
            && status.stdout.contains(&format!("{SHOTS} succeeded")),
        "{}",
        status.stdout
    );

    // The merge's own line is written again by the next merge, which moves nothing.
    let before = merged_state(&p, "out/batch");
    let again = merge(&p, &dirs, &[]);
    again.code(0);
    assert!(!again.stderr.contains("other file"), "{}", again.stderr);
    assert_eq!(merged_state(&p, "out/batch"), before);
}
