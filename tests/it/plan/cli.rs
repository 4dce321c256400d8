//! The `validate`, `plan` and `schema` commands through the real binary.

use crate::support::{Project, shotlist};

const VALID: &str = "version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: A cat.\n    duration: 4\n  - id: b\n    model: i2v\n    prompt: The cat jumps.\n    media: [{ type: first_clip, shot: a }]\n";
const INVALID: &str =
    "version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: A cat.\n    duration: 40\n";

fn project() -> Project {
    let p = Project::new();
    p.file("ok.yaml", VALID).file("bad.yaml", INVALID);
    p
}

#[test]
fn validate_exit_codes_and_human_output() {
    let p = project();
    let r = p.run(&["validate", "ok.yaml"]);
    r.code(0);
    assert!(r.stdout.contains("ok.yaml: valid, 2 shots"), "{}", r.stdout);
    let r = p.run(&["validate", "ok.yaml", "bad.yaml"]);
    r.code(2);
    assert!(
        r.stdout.contains("bad.yaml: invalid, 1 error\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("duration: 40 s is outside 2-15 s for t2v"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("bad.yaml:6:15"),
        "source snippet header: {}",
        r.stderr
    );
}

#[test]
fn validate_json_and_github_formats() {
    let p = project();
    let r = p.run(&["validate", "--format", "json", "bad.yaml"]);
    r.code(2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"severity": "error", "message": "duration: 40 s is outside 2-15 s for t2v",
            "file": "bad.yaml", "line": 6, "column": 15, "shot": "a", "help": null}])
    );
    let r = p.run(&["validate", "--format", "json", "ok.yaml"]);
    r.code(0);
    assert_eq!(r.stdout.trim(), "[]");
    let r = p.run(&["validate", "--format", "github", "bad.yaml"]);
    r.code(2);
    assert_eq!(
        r.stdout,
        "::error file=bad.yaml,line=6,col=15,endLine=6,endColumn=17::duration: 40 s is outside 2-15 s for t2v [shot `a`]\n"
    );
}

#[test]
fn plan_text_lists_shots_in_execution_order_with_cost() {
    let p = project();
    p.file(
        "shotlist.toml",
        "[pricing.t2v]\n720P = 0.10\n[pricing.\"wan2.7-i2v-2026-04-25\"]\n720P = 0.20\n",
    );
    let r = p.run(&["plan", "ok.yaml"]);
    r.code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("#  id  model  dur  res   ratio  seed  cost  action  depends on"),
        "{}",
        r.stdout
    );
    assert!(
        lines[1].starts_with("1  a   t2v    4s   720P  16:9   -     0.40  send    -"),
        "{}",
        r.stdout
    );
    assert!(
        lines[2].starts_with("2  b   i2v    5s   720P  -      -     1.00  send    a"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("2 shot(s), 9 s of video"), "{}", r.stdout);
    assert!(
        r.stdout.contains("estimated cost: 1.40 USD\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .ends_with("\nPlan: 2 to send (9 s, est. 1.40 USD).\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn plan_json_to_a_file() {
    let p = project();
    p.run(&["plan", "ok.yaml", "--format", "json", "-o", "plan.json"])
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&p.read("plan.json")).unwrap();
    assert_eq!(v["name"], "ok");
    assert_eq!(v["totals"]["shots"], 2);
    assert_eq!(v["totals"]["seconds"], 9);
    let b = &v["shots"][1];
    assert_eq!(b["id"], "b");
    assert_eq!(b["depends_on"], serde_json::json!(["a"]));
    assert_eq!(
        b["body"]["metadata"]["input"]["media"],
        serde_json::json!([{"type": "first_clip", "shot": "a"}])
    );
    assert_eq!(b["key"].as_str().unwrap().len(), 64);
}

#[test]
fn plan_of_an_invalid_manifest_exits_2_with_diagnostics() {
    let p = project();
    let r = p.run(&["plan", "bad.yaml"]);
    r.code(2);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("duration: 40 s"), "{}", r.stderr);
    let r = p.run(&["plan", "missing.yaml"]);
    r.code(2);
    assert!(
        r.stderr.contains("cannot read the manifest"),
        "{}",
        r.stderr
    );
}

#[test]
fn schema_command_prints_the_checked_in_schema() {
    let out = shotlist().arg("schema").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let disk =
        std::fs::read_to_string(crate::support::repo_root().join("schemas/manifest.schema.json"))
            .unwrap();
    assert_eq!(
        printed, disk,
        "regenerate with: cargo run -- schema > schemas/manifest.schema.json"
    );
}

#[test]
fn plan_text_of_the_demo() {
    let mut cmd = shotlist();
    cmd.current_dir(crate::support::repo_root())
        .args(["plan", "manifests/product-launch.yaml"]);
    insta_cmd::assert_cmd_snapshot!(cmd);
}

#[test]
fn validate_json_names_the_data_row() {
    let p = Project::new();
    p.file("data/p.csv", "sku,seconds\nA,5\nB,soon\n").file(
        "m.yaml",
        "version: 1\ndata: { p: data/p.csv }\nshots:\n  - id: \"s-{{ row.sku }}\"\n    for_each: p\n    model: t2v\n    prompt: x\n    duration: \"{{ row.seconds }}\"\n",
    );
    let r = p.run(&["validate", "--format", "json", "m.yaml"]);
    r.code(2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v[0]["message"],
        "duration: \"soon\" from data/p.csv row 2 (line 3) is not a whole number"
    );
    assert_eq!(v[0]["shot"], "s-B");
    assert_eq!(
        v[0]["data"],
        serde_json::json!({"table": "p", "file": "data/p.csv", "row": 2, "line": 3})
    );
    assert_eq!(
        (v[0]["line"].as_u64(), v[0]["column"].as_u64()),
        (Some(8), Some(15))
    );
}

#[test]
fn repeated_errors_are_grouped_except_in_json() {
    let p = Project::new();
    p.file(
        "many.yaml",
        "version: 1\ndefaults: {model: t2v, resolution: 4K}\nshots:\n  - id: \"c-{{ matrix.n }}\"\n    prompt: A cat.\n    matrix: { n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }\n",
    );
    let r = p.run(&["validate", "--format", "github", "many.yaml"]);
    r.code(2);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("[shot `c-1` and 9 more shots]"),
        "{}",
        r.stdout
    );
    let r = p.run(&["validate", "--format", "json", "many.yaml"]);
    r.code(2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 10, "{v:#}");
    let r = p.run(&["validate", "many.yaml"]);
    assert_eq!(r.stderr.matches("resolution").count(), 2, "{}", r.stderr);
}

/// An edit of a URL: the input's length is unknown, so its seconds and the cost say they are
/// upper bounds.
#[test]
fn plan_text_of_an_edit_of_a_url_says_upper_bound() {
    let p = Project::new();
    p.file(
        "m.yaml",
        "version: 1\nshots:\n  - id: base\n    model: t2v\n    prompt: a harbour\n  - id: kept\n    model: edit\n    prompt: snow\n    media: [{ type: video, shot: base }]\n  - id: url\n    model: edit\n    prompt: rain\n    duration: 4\n    media: [{ type: video, url: \"https://example.com/v.mp4\" }]\n",
    );
    let r = p.run(&["plan", "m.yaml"]);
    r.code(0);
    insta::assert_snapshot!(r.stdout);
    let r = p.run(&["plan", "m.yaml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let edit = &v["totals"]["by_model"][1];
    assert_eq!(edit["model"], "wan2.7-videoedit");
    assert_eq!(
        (edit["seconds"].as_u64(), edit["input_seconds"].as_u64()),
        (Some(9), Some(15))
    );
    assert_eq!(edit["upper_bound"], true);
    assert_eq!(v["totals"]["cost"]["upper_bound"], true);
    assert_eq!(v["totals"]["cost"]["total"], "2.90");
}

/// A CSV saved with CRLF line ends (Excel's and Python's default) names the same lines as LF.
#[test]
fn validate_names_the_line_of_a_crlf_csv_row() {
    let p = Project::new();
    p.file("data/p.csv", "sku,seconds\r\nA,5\r\nB,\"5\r\n\"\r\nC,soon\r\n").file(
        "m.yaml",
        "version: 1\ndata: { p: data/p.csv }\nshots:\n  - id: \"s-{{ row.sku }}\"\n    for_each: p\n    model: t2v\n    prompt: x\n    duration: \"{{ row.seconds | trim }}\"\n",
    );
    let r = p.run(&["validate", "--format", "json", "m.yaml"]);
    r.code(2);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v[0]["data"],
        serde_json::json!({"table": "p", "file": "data/p.csv", "row": 3, "line": 5}),
        "{v:#}"
    );
}

#[test]
fn plan_out_of_a_missing_folder_says_it_does_not_exist() {
    let p = Project::new();
    p.file(
        "m.yaml",
        "version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: A cat.\n",
    );
    let r = p.run(&["plan", "m.yaml", "--out", "nope"]);
    r.code(0);
    assert!(
        r.stderr.contains("--out nope: the folder does not exist"),
        "{}",
        r.stderr
    );
    assert!(!p.path("nope").exists(), "plan creates nothing");
}

/// Control characters from data (an ESC that would recolour the terminal, a NUL) are shown
/// escaped, never written raw to the terminal.
#[test]
fn control_characters_from_data_are_escaped_in_diagnostics() {
    let p = Project::new();
    p.file("data/p.csv", "sku,seconds\nA,\u{1b}[31m5\u{0}\n").file(
        "m.yaml",
        "version: 1\ndata: { p: data/p.csv }\nshots:\n  - id: \"s-{{ row.sku }}\"\n    for_each: p\n    model: t2v\n    prompt: x\n    duration: \"{{ row.seconds }}\"\n",
    );
    for format in ["human", "github", "json"] {
        let r = p.run(&["validate", "--format", format, "m.yaml"]);
        r.code(2);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            !all.contains('\u{1b}') && !all.contains('\u{0}') && !all.contains('\u{7}'),
            "{all:?}"
        );
        assert!(all.contains("u{1b}"), "{format}: {all}");
    }
}
