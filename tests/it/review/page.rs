//! The generated HTML for a hand-made output folder: every kind of card, escaping, marks.

use super::{keys, small};

/// `results.json` as a run (and a later shotlist, with extra columns) could leave it.
fn results() -> String {
    serde_json::json!([
        {"id": "city-noir-16x9", "status": "succeeded", "model": "wan2.7-t2v-2026-04-25",
         "duration": 5, "resolution": "720P", "ratio": "16:9", "seed": 11,
         "file": "city-noir-16x9.mp4", "cost": 0.5, "matrix": {"ratio": "16:9"},
         "prompt": "A noir city at night", "take": 1, "column_from_the_future": [1, 2]},
        {"id": "city-noir-9x16", "status": "succeeded", "model": "wan2.7-t2v-2026-04-25",
         "file": "videos/city noir #2.mp4", "matrix.ratio": "9:16", "seed": "12"},
        {"id": "city-neon-16x9", "status": "succeeded", "file": "gone.mp4"},
        {"id": "city-neon-9x16", "status": "failed",
         "error": "provider said <b>no</b> </script><script>document.title='pwned'</script>"},
        {"id": "hero-take1", "status": "succeeded", "file": "../../etc/passwd"},
        {"id": "not-in-plan", "status": "skipped", "error": "upstream failed"}
    ])
    .to_string()
}

/// The page with the inline style, script and their CSP hashes left out.
fn redacted(html: &str) -> String {
    let cut = |s: &str, open: &str, close: &str, with: &str| -> String {
        let a = s.find(open).unwrap() + open.len();
        let b = a + s[a..].find(close).unwrap();
        format!("{}{with}{}", &s[..a], &s[b..])
    };
    let html = cut(html, "<style>", "</style>", "[style]");
    let html = cut(&html, "<script>", "</script>", "[script]");
    let mut out = String::new();
    for (i, part) in html.split("sha256-").enumerate() {
        if i > 0 {
            out.push_str("sha256-[hash]");
            out.push_str(&part[part.find("&#x27;").unwrap()..]);
        } else {
            out.push_str(part);
        }
    }
    out
}

#[test]
fn page_of_a_small_folder() {
    let p = small();
    p.file("out/results.json", &results());
    p.file("out/videos/city-noir-16x9.mp4", "video");
    p.file("out/videos/city noir #2.mp4", "video");
    let keys = keys(&p);
    let key_of = |id: &str| keys.iter().find(|(i, _)| i == id).unwrap().1.clone();
    p.file(
        "out/marks.json",
        &serde_json::json!({"version": 1, "marks": [
            {"id": "city-noir-16x9", "key": key_of("city-noir-16x9"), "mark": "rejected",
             "note": "too dark <i>really</i>"},
            {"id": "city-noir-9x16", "key": "0".repeat(64), "mark": "approved"}
        ]})
        .to_string(),
    );
    let run = p.run(&["review", "m.yaml"]);
    run.code(0);
    assert_eq!(run.stdout.trim(), "out/review.html (7 shot(s))");
    let html = p.read("out/review.html");
    // Outside text never becomes markup: only the page's own script element exists.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(!html.contains("<img"));
    assert!(!html.contains("<b>no</b>"));
    assert!(
        !html.contains("passwd"),
        "a path out of the folder is no video"
    );
    // Lazy: the path waits in data-src; encoded, so `#` and spaces stay part of the file name
    // (minijinja's HTML escaping writes `/` as `&#x2f;`).
    assert!(html.contains(r#"data-src="videos&#x2f;city%20noir%20%232.mp4""#));
    insta::assert_snapshot!(redacted(&html));
}

#[test]
fn review_needs_the_output_folder_and_refuses_broken_results() {
    let p = small();
    let run = p.run(&["review", "m.yaml"]);
    run.code(2);
    assert!(run.stderr.contains("run the batch first"), "{}", run.stderr);
    p.file("out/results.json", "[{\"id\": \"a\",\n \"status\": ");
    let run = p.run(&["review", "m.yaml"]);
    run.code(2);
    assert!(
        run.stderr.contains("results.json: line 2 column"),
        "{}",
        run.stderr
    );
    p.file("out/results.json", "{\"id\": 1}");
    p.run(&["review", "m.yaml"]).code(2);
    // Another folder with --out; no results yet: every shot pending, no video.
    p.file("elsewhere/.keep", "");
    p.run(&["review", "m.yaml", "--out", "elsewhere"]).code(0);
    let html = p.read("elsewhere/review.html");
    assert_eq!(html.matches(r#"data-status="pending""#).count(), 6);
    assert!(!html.contains("<video"));
}

/// An edit keeping its input's length (`duration: 0`) never shows "0 s": DashScope's
/// `output_s` when the provider said it, else that it kept its input's length.
#[test]
fn an_edit_keeping_its_length_shows_the_seconds_made_not_zero() {
    let p = crate::support::Project::new();
    p.file(
        "m.yaml",
        "version: 1\nshots:\n  - { id: base, model: t2v, prompt: a harbour, duration: 5 }\n  - { id: keep, model: edit, prompt: snow on 视频1, media: [{ type: video, shot: base }] }\n",
    );
    for (provider, shown) in [
        ("dashscope", "edit · 5.02 s ·"),
        ("gravitex", "edit · input&#x27;s length ·"),
    ] {
        let out = format!("out-{provider}");
        let r = p.run(&[
            "run",
            "m.yaml",
            "--sim",
            "--provider",
            provider,
            "--poll",
            "100ms",
            "-q",
            "--out",
            &out,
        ]);
        r.code(0);
        let html = p.read(&format!("{out}/review.html"));
        let meta: String = html
            .lines()
            .filter(|l| l.contains("class=\"meta\""))
            .map(|l| {
                let mut text = String::new();
                let mut tag = false;
                for c in l.chars() {
                    match c {
                        '<' => tag = true,
                        '>' => tag = false,
                        c if !tag => text.push(c),
                        _ => {}
                    }
                }
                text + "\n"
            })
            .collect();
        assert!(meta.contains(shown), "{provider}: {meta}");
        assert!(meta.contains("t2v · 5 s ·"), "{provider}: {meta}");
        assert!(!meta.contains(" 0 s"), "{provider}: {meta}");
    }
}
