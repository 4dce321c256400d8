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

/// A matrix of `a` × `b` t2v shots named `s-A-B`.
fn matrix_manifest(a: usize, b: usize) -> String {
    let list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    format!(
        "version: 1\nname: big\ndefaults: {{ model: t2v, prompt_extend: false }}\nshots:\n\
         \x20 - id: \"s-{{{{ matrix.a }}}}-{{{{ matrix.b }}}}\"\n\
         \x20   matrix: {{ a: [{}], b: [{}] }}\n\
         \x20   prompt: \"A city {{{{ matrix.a }}}} {{{{ matrix.b }}}}\"\n\
         output: {{ dir: out }}\n",
        list(a),
        list(b)
    )
}

/// A batch over one page's worth is split into linked pages; a smaller batch later leaves no
/// page of the old one behind.
#[test]
fn a_large_batch_is_reviewed_on_linked_pages() {
    let p = Project::new();
    p.file("m.yaml", &matrix_manifest(5, 500));
    p.file("out/.keep", "");
    let r = p.run(&["review", "m.yaml"]);
    r.code(0);
    assert_eq!(r.stdout.trim(), "out/review.html (2500 shot(s))");
    let first = p.read("out/review.html");
    let third = p.read("out/review-3.html");
    assert!(!p.path("out/review-4.html").exists());
    assert_eq!(first.matches("<article class=\"card\"").count(), 1000);
    assert_eq!(third.matches("<article class=\"card\"").count(), 500);
    assert!(
        first.contains("Page 1 of 3 (1000 shot(s) here"),
        "whole-batch header"
    );
    assert!(first.contains("2500 shot(s) · 2500 pending"));
    assert!(first.contains(r#"<a href="review-2.html">2</a> <a href="review-3.html">3</a>"#));
    assert!(
        third.contains(r#"<a href="review.html">1</a> <a href="review-2.html">2</a> <b>3</b>"#)
    );
    assert!(third.contains(r#"data-id="s-4-499""#));

    p.file("m.yaml", &matrix_manifest(2, 2));
    p.run(&["review", "m.yaml"]).code(0);
    assert!(!p.path("out/review-2.html").exists() && !p.path("out/review-3.html").exists());
    assert!(!p.read("out/review.html").contains("Page 1 of"));
}

/// SIGTERM while `run` writes the review pages: it stops between pages and exits 143, with the
/// results written whole.
#[cfg(unix)]
#[test]
fn sigterm_during_the_page_write_exits_143() {
    use std::time::{Duration, Instant};
    let p = Project::new();
    p.file("m.yaml", &matrix_manifest(40, 500));
    let mut child = p
        .cmd(&[
            "run", "m.yaml", "--sim", "--only", "s-0-0", "-q", "--poll", "100ms",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !p.path("out/review.html").exists() {
        assert!(Instant::now() < deadline, "no page within 120 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before its pages"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("interrupted while writing the review pages"),
        "{stderr}"
    );
    assert!(
        !p.path("out/review-20.html").exists(),
        "stopped between pages"
    );
    let rows: serde_json::Value = serde_json::from_str(&p.read("out/results.json")).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 20_000);
}

/// The key pasted as a task id (or any argument), whole or in part: refused before anything
/// is printed or sent, and never echoed.
#[test]
fn a_key_in_an_argument_is_refused_unsent_and_unechoed() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file("m.yaml", CHAIN);
    let key = "sk-hostile-0123456789abcdef";
    let piece = "0123456789abcd";
    let cases: Vec<(Vec<String>, Option<&str>)> = vec![
        (vec!["--attach".into(), format!("up={key}")], None),
        (
            vec!["--attach".into(), format!("up=sk-hostile-{piece}")],
            None,
        ),
        (vec!["--only".into(), key.into()], None),
        // From the config instead of the environment: caught once the config is read.
        (
            vec!["--attach".into(), format!("up={key}")],
            Some("[api]\napi_key = \"sk-hostile-0123456789abcdef\"\n"),
        ),
    ];
    for (extra, config) in cases {
        let mut args = vec![
            "--config",
            "c.toml",
            "run",
            "m.yaml",
            "--base-url",
            &sim.url,
        ];
        args.extend(extra.iter().map(String::as_str));
        p.file("c.toml", config.unwrap_or(""));
        let mut cmd = p.cmd(&args);
        match config {
            Some(_) => cmd.env_remove("GRAVITEX_API_KEY"),
            None => cmd.env("GRAVITEX_API_KEY", key),
        };
        let r = Run::from(cmd.output().unwrap());
        r.code(2);
        assert!(
            r.stderr.contains("holds the API key"),
            "{extra:?}: {}",
            r.stderr
        );
        for text in [&r.stdout, &r.stderr] {
            assert!(!text.contains(piece), "echoed: {text}");
        }
        assert!(!p.path("out/journal.jsonl").exists());
    }
    let stats = sim.stats();
    assert_eq!(stats["tasks_created"], 0);
    assert!(
        !stats.to_string().contains("\"ok\""),
        "no request reached the provider: {stats}"
    );
}

/// A CNY-billing region with the built-in USD prices: warned, and --max-cost refused until a
/// `[pricing] currency` is set (any: setting it confirms the prices).
#[test]
fn prices_in_another_currency_than_the_region_bills_are_named_and_max_cost_refused() {
    let p = Project::new();
    p.file("m.yaml", CHAIN);
    p.file("c.toml", "[api]\nregion = \"beijing\"\n");
    let plan = p.run(&[
        "--config",
        "c.toml",
        "plan",
        "m.yaml",
        "--provider",
        "dashscope",
    ]);
    plan.code(0);
    assert!(
        plan.stderr
            .contains("region `beijing` bills in CNY, but the prices are the built-in USD"),
        "{}",
        plan.stderr
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["--config", "c.toml", "run", "m.yaml", "--sim", "--provider"];
        args.extend_from_slice(&["dashscope", "--poll", "100ms", "-q"]);
        args.extend_from_slice(extra);
        p.run(&args)
    };
    let refused = run(&["--max-cost", "5"]);
    refused.code(2);
    assert!(
        refused
            .stderr
            .contains("--max-cost refused: the DashScope region `beijing` bills in CNY")
            && refused.stderr.contains("[pricing] currency = \"CNY\""),
        "{}",
        refused.stderr
    );
    assert!(!p.path("out/journal.jsonl").exists(), "nothing was sent");
    // Gravitex bills in USD whatever DashScope region the config names.
    let gateway = p.run(&[
        "--config",
        "c.toml",
        "plan",
        "m.yaml",
        "--provider",
        "gravitex",
    ]);
    assert!(!gateway.stderr.contains("bills in"), "{}", gateway.stderr);

    p.file(
        "c.toml",
        "[api]\nregion = \"beijing\"\n[pricing]\ncurrency = \"USD\"\n",
    );
    let confirmed = run(&["--max-cost", "5"]);
    confirmed.code(0);
    assert!(
        !confirmed.stderr.contains("bills in"),
        "{}",
        confirmed.stderr
    );
}

/// Names that differ only by case or normalisation, or carry a direction override, are refused
/// by `validate`, naming both shots.
#[test]
fn look_alike_ids_and_file_names_are_refused() {
    let p = Project::new();
    let nfc = "caf\u{e9}";
    let nfd = "cafe\u{301}";
    p.file(
        "m.yaml",
        &format!(
            "version: 1\ndefaults: {{ model: t2v, prompt_extend: false }}\n\
             data:\n  items: {{ rows: [{{ n: \"{nfc}\", k: a }}, {{ n: \"{nfd}\", k: b }}, {{ n: \"x\\u202Egnp.mp4\", k: c }}] }}\n\
             shots:\n\
             \x20 - {{ id: ABC, prompt: A. }}\n\
             \x20 - {{ id: abc, prompt: B. }}\n\
             \x20 - id: \"item-{{{{ row.k }}}}\"\n\
             \x20   for_each: items\n\
             \x20   prompt: \"{{{{ row.k }}}}\"\n\
             \x20   output: \"{{{{ row.n }}}}.mp4\"\n"
        ),
    );
    let r = p.run(&["validate", "m.yaml"]);
    r.code(2);
    let text = r
        .stderr
        .replace("│", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains(
            "id `abc` of shot `abc` and id `ABC` of shot `ABC` differ only by letter case or \
             Unicode normalisation"
        ),
        "{}",
        text
    );
    assert!(
        text.contains(&format!(
            "output file `{nfd}.mp4` of shot `item-b` and output file `{nfc}.mp4` of shot `item-a`"
        )),
        "{}",
        text
    );
    assert!(
        text.contains(
            "x<U+202E>gnp.mp4.mp4` holds the invisible or direction-changing character U+202E"
        ),
        "{}",
        text
    );
    assert!(
        !r.stderr.contains('\u{202E}'),
        "the override is never printed raw"
    );
}
