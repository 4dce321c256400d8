//! `shotlist mark`: globs, notes, clearing, import, and hostile marks files.

use super::{keys, small};

fn marks(p: &crate::support::Project) -> Vec<serde_json::Value> {
    let doc: serde_json::Value = serde_json::from_str(&p.read("out/marks.json")).unwrap();
    assert_eq!(doc["version"], 1);
    doc["marks"].as_array().unwrap().clone()
}

#[test]
fn marks_by_glob_with_a_note_keyed_by_id_and_key() {
    let p = small();
    p.file("out/.keep", "");
    let keys = keys(&p);
    let run = p.run(&[
        "mark",
        "m.yaml",
        "city-*-16x9",
        "hero-take2",
        "--reject",
        "--note",
        "too 'dark'",
    ]);
    run.code(0);
    assert!(
        run.stdout
            .contains("rejected 3: city-noir-16x9, city-neon-16x9, hero-take2"),
        "{}",
        run.stdout
    );
    let m = marks(&p);
    assert_eq!(m.len(), 3);
    for entry in &m {
        let id = entry["id"].as_str().unwrap();
        let key = &keys.iter().find(|(i, _)| i == id).unwrap().1;
        assert_eq!(entry["key"], key.as_str());
        assert_eq!(entry["mark"], "rejected");
        assert_eq!(entry["note"], "too 'dark'");
        assert!(entry["at"].is_string());
    }
    // The page is refreshed with the marks.
    let html = p.read("out/review.html");
    assert_eq!(html.matches(r#"data-mark="rejected" data-note"#).count(), 3);

    p.run(&["mark", "m.yaml", "city-noir-16x9", "--approve"])
        .code(0);
    p.run(&["mark", "m.yaml", "hero-*", "--clear"]).code(0);
    let m = marks(&p);
    let summary: Vec<(&str, &str)> = m
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["mark"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("city-neon-16x9", "rejected"),
            ("city-noir-16x9", "approved")
        ]
    );
    assert!(
        m[1].get("note").is_none(),
        "a new mark replaces the old note"
    );
}

#[test]
fn a_pattern_matching_nothing_marks_nothing() {
    let p = small();
    p.file("out/.keep", "");
    p.run(&["mark", "m.yaml", "hero-take1", "--approve"])
        .code(0);
    let before = p.read("out/marks.json");
    let run = p.run(&["mark", "m.yaml", "hero-take2", "villain-*", "--reject"]);
    run.code(2);
    assert!(
        run.stderr.contains("`villain-*` matches no shot id"),
        "{}",
        run.stderr
    );
    assert_eq!(p.read("out/marks.json"), before);
    // Flags: one verdict, and ids unless importing.
    p.run(&["mark", "m.yaml", "hero-take1"]).code(2);
    p.run(&["mark", "m.yaml", "hero-take1", "--approve", "--reject"])
        .code(2);
    p.run(&["mark", "m.yaml", "--approve"]).code(2);
    p.run(&["mark", "m.yaml", "hero-take1", "--clear", "--note", "x"])
        .code(2);
    let long = "x".repeat(2001);
    p.run(&["mark", "m.yaml", "hero-take1", "--reject", "--note", &long])
        .code(2);
    assert_eq!(p.read("out/marks.json"), before);
}

#[test]
fn imports_the_file_the_page_downloads() {
    let p = small();
    p.file("out/.keep", "");
    let keys = keys(&p);
    p.run(&["mark", "m.yaml", "hero-take1", "--approve"])
        .code(0);
    // What review.html's "Download marks.json" writes: no `at`, `cleared` for removed marks.
    let download = serde_json::json!({"version": 1, "marks": [
        {"id": "hero-take1", "key": keys[4].1, "mark": "cleared"},
        {"id": "city-noir-9x16", "key": keys[1].1, "mark": "rejected", "note": "wrong angle"},
        {"id": "gone", "key": "a".repeat(64), "mark": "rejected"}
    ]});
    assert_eq!(keys[4].0, "hero-take1");
    p.file("dl/marks.json", &download.to_string());
    let run = p.run(&["mark", "m.yaml", "--import", "dl/marks.json"]);
    run.code(0);
    assert!(
        run.stderr
            .contains("1 mark(s) name shots this batch does not have"),
        "{}",
        run.stderr
    );
    let m = marks(&p);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["id"], "city-noir-9x16");
    assert_eq!(m[0]["note"], "wrong angle");
}

#[test]
fn hostile_marks_files_are_refused_with_where() {
    let p = small();
    p.file("out/.keep", "");
    let cases = [
        (
            "{\"version\": 1, \"marks\": [\n  {\"id\": }",
            "dl/marks.json: line 2 column",
        ),
        (
            "{\"version\": 1, \"marks\": [{\"id\": \"<img>\", \"key\": \"k\", \"mark\": \"rejected\"}]}",
            "entry 1: id",
        ),
        ("\"just a string\"", "version"),
    ];
    for (text, expected) in cases {
        p.file("dl/marks.json", text);
        let run = p.run(&["mark", "m.yaml", "--import", "dl/marks.json"]);
        run.code(2);
        assert!(run.stderr.contains(expected), "{text}\n{}", run.stderr);
        assert!(!run.stderr.contains("panicked"));
    }
    let run = p.run(&["mark", "m.yaml", "--import", "dl/none.json"]);
    run.code(2);
    // Our own marks.json broken by hand: `mark` and `review` say where, and change nothing.
    p.file("out/marks.json", "{\"version\": 1, \"marks\": [}");
    let run = p.run(&["mark", "m.yaml", "hero-take1", "--approve"]);
    run.code(2);
    assert!(
        run.stderr.contains("out/marks.json: line 1 column"),
        "{}",
        run.stderr
    );
    p.run(&["review", "m.yaml"]).code(2);
    assert_eq!(p.read("out/marks.json"), "{\"version\": 1, \"marks\": [}");
}

/// A verdict on a shot that has no video yet says so; a pattern matching nothing names close
/// ids and the command that lists them all.
#[test]
fn marks_say_when_there_is_no_video_and_which_ids_exist() {
    let p = small();
    p.file("out/.keep", "");
    let run = p.run(&["mark", "m.yaml", "hero-take1", "--reject"]);
    run.code(0);
    assert!(
        run.stderr.contains("no video yet for hero-take1 (pending)"),
        "{}",
        run.stderr
    );
    let run = p.run(&["mark", "m.yaml", "hero-tak1", "--reject"]);
    run.code(2);
    let flat = run.stderr.replace("\n  │ ", " ");
    for hint in [
        "did you mean `hero-take1`?",
        "`shotlist plan MANIFEST` lists every id",
    ] {
        assert!(flat.contains(hint), "{hint}: {}", run.stderr);
    }
}
