//! Hostile input against review, mark and retakes: a marks file leading out of the folder, a
//! marks file near the size cap, marks of shots gone from the plan, an approved shot whose
//! request changed. Paid paths count the simulator's tasks.

use crate::support::{Project, Run, SimProcess};

const CHAIN: &str = "version: 1\nname: m\nseed: 11\n\
defaults: { model: t2v, duration: 4, prompt_extend: false }\nshots:\n\
\x20 - { id: up, prompt: Up. }\n\
\x20 - { id: down, model: i2v, prompt: Down., media: [{ type: first_clip, shot: up }] }\n\
output: { dir: out }\n";

fn run(p: &Project, sim: &SimProcess, extra: &[&str]) -> Run {
    let mut args = vec!["run", "m.yaml", "--base-url", &sim.url, "--poll", "100ms"];
    args.extend_from_slice(extra);
    let mut cmd = p.cmd(&args);
    cmd.env("GRAVITEX_API_KEY", "sk-hostile");
    Run::from(cmd.output().unwrap())
}

fn created(sim: &SimProcess) -> u64 {
    sim.stats()["tasks_created"].as_u64().unwrap()
}

fn key_of(p: &Project, id: &str) -> String {
    super::keys(p).into_iter().find(|(i, _)| i == id).unwrap().1
}

#[cfg(unix)]
#[test]
fn a_marks_link_leading_out_is_refused_by_every_command() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file("m.yaml", CHAIN);
    run(&p, &sim, &[]).code(0);
    assert_eq!(created(&sim), 2);
    // Elsewhere, a file asking for a retake of `up` (paid work nobody here asked for).
    let outside = serde_json::json!({"version": 1, "marks": [
        {"id": "up", "key": key_of(&p, "up"), "mark": "rejected", "note": "OUTSIDE-NOTE"}
    ]})
    .to_string();
    p.file("elsewhere/x.json", &outside);
    std::os::unix::fs::symlink(p.path("elsewhere/x.json"), p.path("out/marks.json")).unwrap();

    let refused = |r: &Run| {
        r.code(2);
        assert!(
            r.stderr
                .contains("marks.json is a symbolic link that leads out of"),
            "{}",
            r.stderr
        );
        assert!(!r.stdout.contains("OUTSIDE-NOTE") && !r.stderr.contains("OUTSIDE-NOTE"));
    };
    refused(&run(&p, &sim, &["--retake-rejected", "--retry-failed"]));
    refused(&run(&p, &sim, &[]));
    refused(&p.run(&["plan", "m.yaml", "--retake-rejected"]));
    refused(&p.run(&["review", "m.yaml"]));
    refused(&p.run(&["status", "m.yaml"]));
    refused(&p.run(&["mark", "m.yaml", "down", "--approve"]));
    assert_eq!(created(&sim), 2, "nothing was sent");
    assert_eq!(p.read("elsewhere/x.json"), outside, "never written through");
    assert!(!p.read("out/review.html").contains("OUTSIDE-NOTE"));
}

/// `mark` rewrites compactly, so a big file it read stays readable; one it would make over the
/// cap it refuses to write.
#[test]
fn mark_never_writes_what_it_then_refuses() {
    let p = super::small();
    p.file("out/.keep", "");
    let key = "0".repeat(64);
    // ~40 MB written the way the reader accepts it, spread out with whitespace as a hand or
    // another tool may: `mark` must read it and leave a file it reads again.
    let note = "n".repeat(1900);
    let mut text = String::from("{\"version\": 1, \"marks\": [\n");
    for i in 0..20_000 {
        let sep = if i == 0 { "" } else { ",\n" };
        text.push_str(&format!(
            "{sep}  {{\"id\": \"gone-{i}\", \"key\": \"{key}\", \"mark\": \"rejected\", \"note\": \"{note}\"}}"
        ));
    }
    text.push_str("\n]}\n");
    p.file("out/marks.json", &text);
    let r = p.run(&["mark", "m.yaml", "hero-take1", "--approve"]);
    r.code(0);
    assert!(
        r.stderr
            .contains("20000 mark(s) name shots no longer in the plan")
            && r.stderr.contains("--prune"),
        "{}",
        r.stderr
    );
    let written = std::fs::metadata(p.path("out/marks.json")).unwrap().len();
    assert!(written <= text.len() as u64, "{written} > {}", text.len());
    p.run(&["mark", "m.yaml", "hero-take2", "--reject"]).code(0);
    let status = p.run(&["status", "m.yaml"]);
    status.code(0);
    assert!(
        status
            .stdout
            .contains("20000 mark(s) name shots no longer in the plan"),
        "{}",
        status.stdout
    );
    let json = p.run(&["status", "m.yaml", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["stale_marks"], 20_000);

    let pruned = p.run(&["mark", "m.yaml", "--prune"]);
    pruned.code(0);
    assert!(
        pruned.stdout.contains("pruned 20000 mark(s)"),
        "{}",
        pruned.stdout
    );
    let left: serde_json::Value = serde_json::from_str(&p.read("out/marks.json")).unwrap();
    assert_eq!(left["marks"].as_array().unwrap().len(), 2);
    assert!(
        !p.run(&["status", "m.yaml"])
            .stdout
            .contains("no longer in the plan")
    );
}

/// Approve `down`, change its upstream's prompt: the plan line and the run's opening say the
/// approved video is replaced, and the run then sends both (as asked).
#[test]
fn an_approved_shot_regenerated_by_a_change_says_so() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file("m.yaml", CHAIN);
    run(&p, &sim, &[]).code(0);
    p.run(&["mark", "m.yaml", "down", "--approve"]).code(0);
    p.file("m.yaml", &CHAIN.replace("Up.", "Up brighter."));
    let plan = p.run(&["plan", "m.yaml"]);
    plan.code(0);
    assert!(
        plan.stdout.contains(
            "send down: changed: upstream up; approved earlier: its approved video is replaced"
        ),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("send up: changed: prompt; approved"));
    let r = run(&p, &sim, &[]);
    r.code(0);
    assert!(
        r.stderr
            .contains("send down: its request changed; approved earlier: its approved video"),
        "{}",
        r.stderr
    );
    assert_eq!(created(&sim), 4);
    // Once the new video exists it is no longer news.
    let again = p.run(&["plan", "m.yaml"]);
    assert!(
        !again.stdout.contains("approved earlier"),
        "{}",
        again.stdout
    );
}
