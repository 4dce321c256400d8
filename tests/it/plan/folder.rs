//! `plan` against an output folder: what a run would do with each shot, and why, after a run
//! left one prompt edited, one shot failed, one in flight, one video deleted; and `plan` never
//! writes to the folder.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Project, Run, SimProcess};

const MANIFEST: &str = r#"version: 1
name: m
defaults: { duration: 5, prompt_extend: false }
shots:
  - { id: a, model: t2v, prompt: "A lamp." }
  - { id: b, model: t2v, prompt: "B [sim:fail]" }
  - { id: c, model: t2v, prompt: "C." }
  - id: d
    model: i2v
    prompt: "D after b."
    media: [{ type: first_clip, shot: b }]
  - { id: e, model: t2v, prompt: "E." }
  - { id: g, model: t2v, prompt: "G." }
  - id: h
    model: i2v
    prompt: "H after a."
    media: [{ type: first_clip, shot: a }]
"#;

fn run(p: &Project, sim: &SimProcess, extra: &[&str]) -> std::process::Command {
    let mut cmd = p.cmd(&[
        "run",
        "m.yaml",
        "--base-url",
        &sim.url,
        "--poll",
        "100ms",
        "-q",
    ]);
    cmd.args(extra).env("GRAVITEX_API_KEY", "sk-plan-folder");
    cmd
}

/// Every file under `dir` with its size and modification time.
fn listing(dir: &std::path::Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            }
            out.insert(
                e.path().display().to_string(),
                (meta.len(), meta.modified().unwrap()),
            );
        }
    }
    out
}

fn leave_c_in_flight(p: &Project) {
    let slow = SimProcess::start(&["--gen-time", "1h"]);
    let mut child = run(p, &slow, &["--only", "c"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let journal = std::fs::read_to_string(p.path("out/m/journal.jsonl")).unwrap();
        if journal.contains(r#""event":"submitted","id":"c""#) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "c was never submitted:\n{journal}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(slow.stats()["tasks_created"], 1);
}

#[test]
fn plan_reads_the_folder_and_says_what_a_run_would_do_and_why() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file("m.yaml", MANIFEST);
    let only = ["a", "b", "d", "e", "g", "h"]
        .map(|id| ["--only", id])
        .concat();
    Run::from(run(&p, &sim, &only).output().unwrap()).code(1);
    leave_c_in_flight(&p);
    std::fs::remove_file(p.path("out/m/videos/g.mp4")).unwrap();
    p.file("m.yaml", &MANIFEST.replace("A lamp.", "A brass lamp."));

    let before = listing(&p.path("out/m"));
    let json = p.run(&["plan", "m.yaml", "--format", "json"]);
    json.code(0);
    let text = p.run(&["plan", "m.yaml"]);
    text.code(0);
    assert_eq!(
        listing(&p.path("out/m")),
        before,
        "plan wrote to the folder"
    );

    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    let by_id: BTreeMap<&str, &Value> = doc["shots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s))
        .collect();
    let action = |id: &str| by_id[id]["action"].as_str().unwrap();
    let reason = |id: &str| by_id[id]["reason"].as_str().unwrap();
    assert_eq!(
        ["a", "b", "c", "d", "e", "g", "h"].map(action),
        ["send", "held", "poll", "held", "done", "download", "send"]
    );
    assert_eq!(by_id["a"]["changed"], serde_json::json!(["prompt"]));
    assert_eq!(by_id["h"]["changed"], serde_json::json!(["upstream a"]));
    assert!(reason("b").contains("--retry-failed"), "{}", reason("b"));
    assert!(reason("d").contains("needs `b`"), "{}", reason("d"));
    assert!(
        reason("c").starts_with("in flight as task "),
        "{}",
        reason("c")
    );
    assert_eq!(by_id["a"]["cost"], "0.50");
    let totals = &doc["totals"];
    assert_eq!(totals["shots"], 7);
    assert_eq!(totals["to_send"]["shots"], 2);
    assert_eq!(totals["to_send"]["seconds"], 10);
    assert_eq!(
        totals["cost"],
        serde_json::json!({"total": "3.50", "to_send": "1.00", "spent": "3.00", "currency": "USD"})
    );

    assert!(
        text.stdout.contains("  send a: changed: prompt\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("  send h: changed: upstream a\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.ends_with(
            "\nPlan: 2 to send (10 s, est. 1.00 USD), 1 to poll, 1 to download, 2 held, 1 done, \
             est. 3.00 USD spent already.\n"
        ),
        "{}",
        text.stdout
    );

    // `--out` reads another folder: an empty one sends everything.
    let other = p.run(&["plan", "m.yaml", "--out", "elsewhere"]);
    assert!(
        other
            .stdout
            .ends_with("\nPlan: 7 to send (35 s, est. 3.50 USD).\n"),
        "{}",
        other.stdout
    );
    assert!(!p.path("elsewhere").exists());
}
