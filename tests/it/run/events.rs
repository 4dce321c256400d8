//! `run --events`: the stream validates against its checked-in schema, says what was paid
//! (one `submitted` per task answered, an `unknown` per answer lost), holds and failures, ends
//! with the cost and the end, and a reader that goes away stops the stream, not the run.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;

use serde_json::Value;

use crate::support::{Project, Run, SimProcess, repo_root};

const SECRET: &str = "sk-events-secret-000";

/// Chains over six rows (the failed teaser of p1 skips its follow-up), 4 s shots at 0.40 USD.
fn project() -> Project {
    let p = Project::new();
    p.file(
        "data/rows.csv",
        "sku,name\np0,Lamp\np1,Chair [sim:fail]\np2,Desk\np3,Rug\np4,Vase\np5,Bowl\n",
    )
    .file(
        "batch.yaml",
        "version: 1\nname: batch\nseed: 7\ndata:\n  rows: data/rows.csv\n\
         defaults:\n  model: t2v\n  duration: 4\n  prompt_extend: false\n\
         shots:\n  - id: \"teaser-{{ row.sku }}\"\n    for_each: rows\n\
         \x20   prompt: \"A slow pan over the {{ row.name }}.\"\n\
         \x20 - id: \"follow-{{ row.sku }}\"\n    for_each: rows\n    model: i2v\n\
         \x20   prompt: \"The camera pulls back from the {{ row.name }}.\"\n    media:\n\
         \x20     - { type: first_clip, shot: \"teaser-{{ row.sku }}\" }\n",
    );
    p
}

/// `run batch.yaml` against `sim` with the key set, polling at the floor, with `extra` flags.
fn run_cmd(p: &Project, sim: &SimProcess, extra: &[&str]) -> std::process::Command {
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

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn schema() -> Value {
    let path = repo_root().join("schemas/events.schema.json");
    let generated = shotlist::exec::events::schema_text();
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        stored, generated,
        "schemas/events.schema.json is stale: regenerate with UPDATE_SCHEMAS=1 cargo test events"
    );
    serde_json::from_str(&stored).unwrap()
}

#[test]
fn a_faulty_run_streams_every_paid_step_in_order_against_the_schema() {
    let schema = jsonschema::validator_for(&schema()).unwrap();
    let sim = SimProcess::start(&[
        "--gen-time",
        "100ms",
        "--p429",
        "0.2",
        "--p502",
        "0.2",
        "--p429-query",
        "0.3",
        "--p-lost",
        "0.15",
        "--seed",
        "5",
    ]);
    let p = project();
    let mut cmd = run_cmd(
        &p,
        &sim,
        &["--events", "events.jsonl", "--max-cost", "4.00", "-j", "3"],
    );
    let run = Run::from(cmd.output().unwrap());
    assert!([0, 1].contains(&run.code), "{}", run.stderr);
    let text = p.read("events.jsonl");
    assert!(!text.contains(SECRET));
    let lines = json_lines(&text);
    for l in &lines {
        assert!(schema.is_valid(l), "{l}");
        assert_eq!(l["v"], 1);
    }
    let kind = |l: &Value| l["event"].as_str().unwrap().to_owned();
    let kinds: Vec<String> = lines.iter().map(kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "planned").count(), 12);
    assert!(kinds[..12].iter().all(|k| k == "planned"), "{kinds:?}");
    assert_eq!(kinds[kinds.len() - 2..], ["cost", "run_end"]);
    for k in ["submitting", "submitted", "failed", "skipped", "downloaded"] {
        assert!(kinds.iter().any(|x| x == k), "no {k}: {kinds:?}");
    }

    // Paid work: one `submitted` per task answered, one `unknown` per answer lost.
    let stats = sim.stats();
    let created = stats["tasks_created"].as_u64().unwrap();
    let submitted: Vec<&str> = (lines.iter())
        .filter(|l| l["event"] == "submitted")
        .map(|l| l["task_id"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = submitted.iter().copied().collect();
    assert_eq!(unique.len(), submitted.len(), "a task submitted twice");
    let unknown = kinds.iter().filter(|k| *k == "unknown").count() as u64;
    assert_eq!(submitted.len() as u64 + unknown, created, "{stats:#}");

    // In order per shot: submitting before submitted, succeeded before downloaded.
    let mut last: HashMap<String, String> = HashMap::new();
    for l in &lines {
        let (Some(id), k) = (l["id"].as_str(), kind(l)) else {
            continue;
        };
        let before = last.insert(id.to_owned(), k.clone());
        match k.as_str() {
            "submitted" | "refused" => assert_eq!(before.as_deref(), Some("submitting"), "{id}"),
            "downloaded" => assert_eq!(before.as_deref(), Some("succeeded"), "{id}"),
            _ => {}
        }
    }
    let cost = &lines[lines.len() - 2];
    assert_eq!(cost["currency"], "USD");
    let end = &lines[lines.len() - 1];
    assert_eq!(end["status"], "finished");
    let total: u64 = end["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 12);
    // Query refusals and failures, as the provider counted them.
    let queries = &stats["requests"]["query"];
    let refused = queries["429"].as_u64().unwrap_or(0);
    assert!(refused > 0, "{stats:#}");
    assert_eq!(end["queries"]["refused"], refused, "{end}");
    assert_eq!(end["queries"]["failed"], queries["502"], "{end}");
    assert_eq!(end["queries"]["ceiling"], 50, "{end}");
}

#[test]
fn a_budget_hold_is_an_event() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = project();
    let mut cmd = run_cmd(
        &p,
        &sim,
        &["--events", "-", "--max-cost", "1.00", "-j", "1"],
    );
    let run = Run::from(cmd.output().unwrap());
    run.code(1);
    let lines = json_lines(&run.stdout);
    let held: Vec<&Value> = lines.iter().filter(|l| l["event"] == "held").collect();
    assert!(!held.is_empty(), "{}", run.stdout);
    assert!(
        held.iter()
            .all(|l| l["reason"].as_str().unwrap().starts_with("budget:"))
    );
    let cost = lines.iter().find(|l| l["event"] == "cost").unwrap();
    assert_eq!(cost["spent"], "0.80");
}

#[test]
fn a_reader_that_stops_after_three_lines_stops_the_stream_not_the_run() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = project();
    let mut cmd = run_cmd(&p, &sim, &["--events", "-"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.starts_with("{\"v\":1"), "{line}");
    }
    drop(out);
    // Run to its end: the moderated teaser fails (exit 1), every other shot is made once.
    let done = Run::from(child.wait_with_output().unwrap());
    done.code(1);
    assert!(done.stderr.contains("10 succeeded"), "{}", done.stderr);
    assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    assert!(!done.stderr.contains("Broken pipe"), "{}", done.stderr);
    assert_eq!(sim.stats()["tasks_created"], 11);
}
