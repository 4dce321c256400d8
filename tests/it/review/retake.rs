//! `run --retake-rejected` against the simulator, counting the tasks it creates: exactly the
//! rejected shots and their dependants are sent again, approved ones (dependants included)
//! never, and the rejected videos stay on disk.

use crate::support::{Project, Run, SimProcess};

const MANIFEST: &str = "version: 1\nname: m\nseed: 11\n\
defaults: { model: t2v, duration: 4, prompt_extend: false }\nshots:\n\
\x20 - { id: a, prompt: A. }\n\
\x20 - { id: b, model: i2v, prompt: B., media: [{ type: first_clip, shot: a }] }\n\
\x20 - { id: c, prompt: C. }\n\
\x20 - { id: d, prompt: D. }\n\
output: { dir: out }\n";

/// a → b → c.
const CHAIN: &str = "version: 1\nname: m\nseed: 11\n\
defaults: { model: t2v, duration: 4, prompt_extend: false }\nshots:\n\
\x20 - { id: a, prompt: A. }\n\
\x20 - { id: b, model: i2v, prompt: B., media: [{ type: first_clip, shot: a }] }\n\
\x20 - { id: c, model: i2v, prompt: C., media: [{ type: first_clip, shot: b }] }\n\
output: { dir: out }\n";

fn run(p: &Project, sim: &SimProcess, extra: &[&str]) -> Run {
    let mut args = vec!["run", "m.yaml", "--base-url", &sim.url, "--poll", "100ms"];
    args.extend_from_slice(extra);
    let mut cmd = p.cmd(&args);
    cmd.env("GRAVITEX_API_KEY", "sk-retake");
    Run::from(cmd.output().unwrap())
}

fn created(sim: &SimProcess) -> u64 {
    sim.stats()["tasks_created"].as_u64().unwrap()
}

/// (id, key, seed) of each shot in the folder's `plan.json`.
fn planned(p: &Project) -> Vec<(String, String, u64)> {
    let doc: serde_json::Value = serde_json::from_str(&p.read("out/plan.json")).unwrap();
    doc["shots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["key"].as_str().unwrap().to_owned(),
                s["seed"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn retakes_send_the_rejected_and_their_dependants_only_and_keep_the_old_videos() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file("m.yaml", MANIFEST);
    run(&p, &sim, &[]).code(0);
    assert_eq!(created(&sim), 4);
    let before = planned(&p);
    let old_a = std::fs::read(p.path("out/videos/a.mp4")).unwrap();

    p.run(&["mark", "m.yaml", "a", "--reject", "--note", "too dark"])
        .code(0);
    p.run(&["mark", "m.yaml", "c", "--approve"]).code(0);

    // Without the flag a rejection alone sends nothing.
    let plain = p.run(&["plan", "m.yaml"]);
    plain.code(0);
    assert!(plain.stdout.contains("Plan: 0 to send"), "{}", plain.stdout);

    // `plan` says what the retake run will send, before anything is spent.
    let preview = p.run(&["plan", "m.yaml", "--retake-rejected"]);
    preview.code(0);
    assert!(
        preview.stdout.contains("send a: retake 1 (rejected)")
            && preview.stdout.contains("send b: upstream retaken (`a`)")
            && preview.stdout.contains("Plan: 2 to send"),
        "{}",
        preview.stdout
    );
    assert_eq!(created(&sim), 4, "plan sends nothing");

    run(&p, &sim, &["--retake-rejected", "--retry-failed"]).code(0);
    assert_eq!(
        created(&sim),
        6,
        "exactly the rejected shot and its dependant"
    );
    let after = planned(&p);
    assert_ne!(after[0].1, before[0].1, "a: a new attempt");
    assert_ne!(after[0].2, before[0].2, "a: a new seed");
    assert_ne!(after[1].1, before[1].1, "b: its input changed");
    assert_eq!(after[2..], before[2..], "c and d untouched");
    // The rejected video is kept, under superseded/.
    let kept: Vec<_> = std::fs::read_dir(p.path("out/videos/superseded"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        kept.iter().any(|f| std::fs::read(f).unwrap() == old_a),
        "{kept:?}"
    );

    let status = p.run(&["status", "m.yaml"]);
    assert!(status.stdout.contains("4 succeeded"), "{}", status.stdout);
    // The retake is not marked rejected: nothing more is sent, and every command sees it.
    run(&p, &sim, &["--retake-rejected", "--retry-failed"]).code(0);
    run(&p, &sim, &[]).code(0);
    assert_eq!(created(&sim), 6);
    assert_eq!(planned(&p), after);

    // Rejecting the retake makes retake 2; an approved shot stays as it is.
    p.run(&["mark", "m.yaml", "a", "c", "--reject"]).code(0);
    p.run(&["mark", "m.yaml", "c", "--approve"]).code(0);
    run(&p, &sim, &["--retake-rejected"]).code(0);
    assert_eq!(created(&sim), 8);
}

#[test]
fn an_approved_video_is_never_generated_again_whatever_the_flags() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file("m.yaml", MANIFEST);
    run(&p, &sim, &["--only", "c"]).code(0);
    p.run(&["mark", "m.yaml", "c", "--approve"]).code(0);
    // Lost video, and a URL too old to fetch again: --retry-failed would resend it.
    std::fs::remove_file(p.path("out/videos/c.mp4")).unwrap();
    let journal = p.read("out/journal.jsonl");
    let aged = journal.replace("\"ts\":\"20", "\"ts\":\"19");
    std::fs::write(p.path("out/journal.jsonl"), aged).unwrap();
    let r = run(
        &p,
        &sim,
        &["--only", "c", "--retry-failed", "--retake-rejected"],
    );
    assert_eq!(created(&sim), 1, "{}", r.stderr);
    let rows: serde_json::Value = serde_json::from_str(&p.read("out/results.json")).unwrap();
    let c = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "c")
        .unwrap();
    assert_eq!(c["status"], "skipped", "{}", r.stderr);
    assert!(c["error"].as_str().unwrap().contains("approved"), "{c}");
}

/// Paid work the reviewer did not ask for: an approved dependant of a retaken shot keeps its
/// video (no task, no supersede) until its mark is cleared.
#[test]
fn an_approved_dependant_of_a_retake_is_held_until_its_mark_is_cleared() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file("m.yaml", CHAIN);
    run(&p, &sim, &[]).code(0);
    assert_eq!(created(&sim), 3);
    let before = planned(&p);
    // Every simulator video has the same bytes: a kept file is told by its inode and the
    // journal.
    let inode = |id: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p.path(&format!("out/videos/{id}.mp4")))
            .unwrap()
            .ino()
    };
    let (old_b, old_c) = (inode("b"), inode("c"));
    p.run(&["mark", "m.yaml", "a", "--reject"]).code(0);
    p.run(&["mark", "m.yaml", "b", "--approve"]).code(0);

    let preview = p.run(&["plan", "m.yaml", "--retake-rejected"]);
    preview.code(0);
    insta::assert_snapshot!(preview.stdout);

    let r = run(&p, &sim, &["--retake-rejected", "--retry-failed"]);
    r.code(0);
    assert_eq!(created(&sim), 4, "a's retake only\n{}", r.stderr);
    assert!(
        r.stderr.contains(
            "held b: approved (its upstream `a` is retaken; `shotlist mark m.yaml b --clear` \
             regenerates it from the new take)"
        ),
        "{}",
        r.stderr
    );
    assert_eq!((inode("b"), inode("c")), (old_b, old_c), "kept in place");
    let superseded: Vec<String> = std::fs::read_dir(p.path("out/videos/superseded"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        superseded.len() == 1 && superseded[0].starts_with("a."),
        "a's rejected take only: {superseded:?}"
    );
    let journal = p.read("out/journal.jsonl");
    let lines = |id: &str, event: &str| {
        let (id, event) = (format!("\"id\":\"{id}\""), format!("\"event\":\"{event}\""));
        journal
            .lines()
            .filter(|l| l.contains(&id) && l.contains(&event))
            .count()
    };
    assert_eq!(
        (lines("b", "downloaded"), lines("b", "superseded")),
        (1, 0),
        "{journal}"
    );
    let after = planned(&p);
    assert_ne!(after[0], before[0]);
    assert_eq!(after[1..], before[1..], "b and c as they were");
    let rows: serde_json::Value = serde_json::from_str(&p.read("out/results.json")).unwrap();
    let b = &rows[1];
    assert_eq!((&b["id"], &b["status"]), (&"b".into(), &"succeeded".into()));
    assert!(
        b["error"].as_str().unwrap().contains("`a` is retaken"),
        "{b}"
    );
    let status = p.run(&["status", "m.yaml"]);
    assert!(
        status.stdout.contains("3 succeeded")
            && !status.stdout.contains("pending")
            && status
                .stdout
                .contains("succeeded b: approved (its upstream `a` is retaken"),
        "{}",
        status.stdout
    );

    // Still held by a run without the flag: its upstream's newest attempt is the retake.
    run(&p, &sim, &[]).code(0);
    assert_eq!(created(&sim), 4);

    // Cleared: a plain run sends b from the new take, and c, whose input then changes.
    p.run(&["mark", "m.yaml", "b", "--clear"]).code(0);
    let preview = p.run(&["plan", "m.yaml"]);
    assert!(
        preview.stdout.contains("send b: upstream retaken (`a`)")
            && preview.stdout.contains("Plan: 2 to send"),
        "{}",
        preview.stdout
    );
    run(&p, &sim, &[]).code(0);
    assert_eq!(created(&sim), 6);
    assert_ne!(inode("b"), old_b);
    assert!(
        std::fs::read_dir(p.path("out/videos/superseded"))
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().starts_with("b.")),
        "b's approved video is kept, under superseded/"
    );
    run(&p, &sim, &["--retake-rejected"]).code(0);
    assert_eq!(created(&sim), 6);
}

#[test]
fn retakes_appear_beside_the_rejected_takes_in_chromium() {
    use super::browser::{chromium, file_url, headless};
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file("m.yaml", MANIFEST);
    run(&p, &sim, &[]).code(0);
    p.run(&["mark", "m.yaml", "a", "--reject", "--note", "too dark"])
        .code(0);
    p.run(&["mark", "m.yaml", "d", "--reject", "--note", "wrong angle"])
        .code(0);
    run(&p, &sim, &["--retake-rejected"]).code(0);
    assert_eq!(created(&sim), 7, "a, its dependant b, and d");
    let html = p.read("out/review.html");
    for (id, note) in [("a", "too dark"), ("d", "wrong angle")] {
        let old = html
            .split(&format!(
                r#"<article class="earlier" data-earlier-of="{id}""#
            ))
            .nth(1)
            .unwrap_or_else(|| panic!("no earlier card for {id}"));
        let old = &old[..old.find("</article>").unwrap()];
        assert!(
            old.contains("data-src=\"videos&#x2f;superseded&#x2f;") && old.contains(note),
            "{old}"
        );
    }
    let Some(bin) = chromium() else { return };
    // Decoding runs in real time, outside Chromium's virtual time: on a busy machine the page
    // is opened again (at most 3 times) until every clip has loaded.
    let played = |shown: &super::browser::Shown| shown.dom.matches(r#"data-loaded="1""#).count();
    let mut shown = headless(&bin, &file_url(&p.path("out/review.html")), &["--dump-dom"]);
    for _ in 0..2 {
        if played(&shown) == 7 {
            break;
        }
        shown = headless(&bin, &file_url(&p.path("out/review.html")), &["--dump-dom"]);
    }
    assert!(shown.dom.contains(r#"data-ready="1""#), "{}", shown.log);
    // The newest takes beside the earlier ones (the rejected two and b's, made from the
    // rejected a), every video playing.
    assert_eq!(shown.dom.matches(r#"<article class="card"#).count(), 4);
    assert_eq!(shown.dom.matches(r#"<article class="earlier"#).count(), 3);
    assert!(shown.dom.contains(r#"data-earlier-of="b""#));
    assert!(
        (1..=7).contains(&played(&shown)),
        "{} of 7 played\n{}",
        played(&shown),
        shown.log
    );
}

#[test]
fn a_damaged_journal_line_is_read_once_refused_by_run_and_skipped_on_request_keeping_the_retake() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file("m.yaml", MANIFEST);
    run(&p, &sim, &[]).code(0);
    p.run(&["mark", "m.yaml", "a", "--reject"]).code(0);
    run(&p, &sim, &["--retake-rejected"]).code(0);
    assert_eq!(created(&sim), 6);
    let after = planned(&p);

    let journal = p.read("out/journal.jsonl");
    let (first, rest) = journal.split_once('\n').unwrap();
    std::fs::write(
        p.path("out/journal.jsonl"),
        format!("{first}\n{{\"event\": garbage\n{rest}"),
    )
    .unwrap();

    // `plan` skips the line and names it; the retake recorded after it is still found.
    let preview = p.run(&["plan", "m.yaml", "--retake-rejected"]);
    preview.code(0);
    assert!(
        preview.stderr.contains("journal line(s) 2 are unreadable"),
        "{}",
        preview.stderr
    );
    assert!(
        preview.stdout.contains("Plan: 0 to send"),
        "{}",
        preview.stdout
    );

    let refused = run(&p, &sim, &["--retake-rejected"]);
    refused.code(2);
    assert!(
        refused.stderr.contains("line 2") && refused.stderr.contains("--skip-bad-journal-lines"),
        "{}",
        refused.stderr
    );
    assert_eq!(created(&sim), 6, "nothing sent");

    run(&p, &sim, &["--retake-rejected", "--skip-bad-journal-lines"]).code(0);
    assert_eq!(
        created(&sim),
        6,
        "the retake is recorded: nothing is sent again"
    );
    assert_eq!(planned(&p), after);
}

/// The page badges the held card (only it) with the command that regenerates it, and drops
/// the badge once the mark is cleared; in Chromium the badge is in the card's DOM.
#[test]
fn the_review_page_badges_a_held_approved_dependant() {
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file("m.yaml", CHAIN);
    run(&p, &sim, &[]).code(0);
    p.run(&["mark", "m.yaml", "a", "--reject"]).code(0);
    p.run(&[
        "mark",
        "m.yaml",
        "b",
        "--approve",
        "--note",
        "<b>keep</b> it's",
    ])
    .code(0);
    run(&p, &sim, &["--retake-rejected"]).code(0);
    let command = "shotlist mark m.yaml b --clear --out out";
    let from_run = p.read("out/review.html");
    assert_eq!(from_run.matches(r#"<p class="held">"#).count(), 1);
    assert!(from_run.contains(command), "{from_run}");

    // `review` finds the same from the folder; the snapshot shows the cards' part of the page.
    p.run(&["review", "m.yaml"]).code(0);
    let html = p.read("out/review.html");
    assert_eq!(html, from_run, "run and review write the same page");
    let main = &html[html.find("<main>").unwrap()..html.find("</main>").unwrap()];
    insta::assert_snapshot!(main);

    if let Some(bin) = super::browser::chromium() {
        let page = super::browser::file_url(&p.path("out/review.html"));
        let shown = super::browser::headless(&bin, &page, &["--dump-dom"]);
        assert!(shown.dom.contains(r#"data-ready="1""#), "{}", shown.log);
        assert!(
            !shown.log.contains("Content Security Policy"),
            "{}",
            shown.log
        );
        let card = |id: &str| {
            let start = shown
                .dom
                .find(&format!(
                    r#"<article class="card" tabindex="-1" data-id="{id}""#
                ))
                .unwrap_or_else(|| panic!("card {id}: {}", shown.dom));
            let len = shown.dom[start..].find("</article>").unwrap();
            shown.dom[start..start + len].to_owned()
        };
        let b = card("b");
        assert!(
            b.contains("retaken — clear the mark to regenerate")
                && b.contains(&format!(r#"<code class="cmd">{command}</code>"#))
                && b.contains(r#"class="copy-held""#),
            "{b}"
        );
        for id in ["a", "c"] {
            assert!(!card(id).contains(r#"class="held""#), "{id}");
        }
    }

    p.run(&["mark", "m.yaml", "b", "--clear"]).code(0);
    let cleared = p.read("out/review.html");
    assert!(!cleared.contains(r#"class="held""#), "{cleared}");
}
