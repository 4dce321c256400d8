//! Shards run against one simulator, then merged: every shot created once, the merged folder
//! complete and done; folders from another plan, another shard or hostile ones refused.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{Project, Run, SimProcess};

/// Three rows: a teaser each, and a continuation of two of them (chains across shards).
fn project() -> Project {
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

const SHOTS: usize = 6;

fn run_shard(p: &Project, sim: &SimProcess, shard: &str) -> Run {
    let mut cmd = p.cmd(&[
        "run",
        "batch.yaml",
        "--base-url",
        &sim.url,
        "--poll",
        "100ms",
        "--shard",
        shard,
    ]);
    cmd.env("GRAVITEX_API_KEY", "sk-test");
    Run::from(cmd.output().unwrap())
}

fn shard_dirs(n: usize) -> Vec<String> {
    (1..=n)
        .map(|k| format!("out/batch/shard-{k}-of-{n}"))
        .collect()
}

fn merge(p: &Project, dirs: &[String], extra: &[&str]) -> Run {
    let mut args = vec!["merge", "batch.yaml"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend_from_slice(extra);
    p.run(&args)
}

fn rows(p: &Project, dir: &str) -> Vec<Value> {
    serde_json::from_str(&p.read(&format!("{dir}/results.json"))).unwrap()
}

fn created(sim: &SimProcess) -> u64 {
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
    let mut again = p.cmd(&[
        "run",
        "batch.yaml",
        "--base-url",
        &sim.url,
        "--poll",
        "100ms",
    ]);
    again.env("GRAVITEX_API_KEY", "sk-test");
    Run::from(again.output().unwrap()).code(0);
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
fn merge_refuses_duplicates_mixed_counts_foreign_shots_and_taken_outputs() {
    let p = project();
    let sim = run_three(&p);
    let dirs = shard_dirs(3);
    let dup = merge(&p, &[dirs[0].clone(), dirs[0].clone()], &[]);
    dup.code(2);
    assert!(dup.stderr.contains("both hold shard 1/3"), "{}", dup.stderr);

    run_shard(&p, &sim, "1/2").code(0);
    let mixed = merge(&p, &[dirs[0].clone(), "out/batch/shard-1-of-2".into()], &[]);
    mixed.code(2);
    assert!(mixed.stderr.contains("same N"), "{}", mixed.stderr);

    let not_shard = merge(&p, &["out".into()], &[]);
    not_shard.code(2);
    assert!(
        not_shard.stderr.contains("not a shard folder"),
        "{}",
        not_shard.stderr
    );

    // A shard folder whose journal holds another shard's shot (as if run with another
    // --shard) is refused, naming the shot.
    let foreign = std::fs::read_to_string(p.path(&format!("{}/journal.jsonl", dirs[1]))).unwrap();
    let mut j = std::fs::OpenOptions::new()
        .append(true)
        .open(p.path(&format!("{}/journal.jsonl", dirs[0])))
        .unwrap();
    std::io::Write::write_all(&mut j, foreign.as_bytes()).unwrap();
    let refused = merge(&p, &dirs, &["--out", "m2"]);
    refused.code(2);
    assert!(
        refused.stderr.contains("which is in shard 2/3"),
        "{}",
        refused.stderr
    );

    // A shard folder never takes another shard's run, nor an unsharded one.
    let mut other = p.cmd(&[
        "run",
        "batch.yaml",
        "--base-url",
        &sim.url,
        "--shard",
        "2/3",
        "--out",
        &dirs[0],
    ]);
    other.env("GRAVITEX_API_KEY", "sk-test");
    let other = Run::from(other.output().unwrap());
    other.code(2);
    assert!(other.stderr.contains("holds shard 1/3"), "{}", other.stderr);

    // An output folder holding a run of its own is not overwritten.
    let mut plain = p.cmd(&[
        "run",
        "batch.yaml",
        "--base-url",
        &sim.url,
        "--out",
        "plain",
        "--poll",
        "100ms",
    ]);
    plain.env("GRAVITEX_API_KEY", "sk-test");
    Run::from(plain.output().unwrap()).code(0);
    let taken = merge(&p, &dirs[1..], &["--out", "plain"]);
    taken.code(2);
    assert!(
        taken.stderr.contains("a run's own journal"),
        "{}",
        taken.stderr
    );
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
    journal
        .set_len(shotlist::commands::merge::MAX_JOURNAL + 1)
        .unwrap();
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
