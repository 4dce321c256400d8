//! action.yml's steps run with bash as a GitHub runner runs a composite action (the inputs put
//! into each step's `env`, a fake `GITHUB_*` environment of files), against the built binary
//! and fixtures with 25 problems (14 errors, 11 warnings); every output is read back, the
//! SARIF checked against the 2.1.0 schema (tests/fixtures/sarif-schema-2.1.0.md says whence).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::repo_root;

const FIXTURES: &str = "tests/fixtures/action";

struct Outputs {
    /// Each step's id, exit code and stdout.
    steps: Vec<(String, i32, String)>,
    summary: String,
    output: String,
    dir: tempfile::TempDir,
}

fn action() -> Value {
    let text = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    serde_saphyr::from_str(&text).expect("action.yml parses")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `${{ inputs.NAME }}` replaced by the input's value; any other expression is refused.
fn expand(text: &str, inputs: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (name, value) in inputs {
        out = out.replace(&format!("${{{{ inputs.{name} }}}}"), value);
    }
    assert!(!out.contains("${{"), "unexpected expression in {text:?}");
    out
}

/// Runs every step of the action in a copy of the fixtures, stopping at the first failure as
/// GitHub does.
fn run_action(given: &[(&str, &str)]) -> Outputs {
    let action = action();
    assert_eq!(action["runs"]["using"], "composite");
    let mut inputs = BTreeMap::new();
    for (name, spec) in action["inputs"].as_object().unwrap() {
        if let Some(default) = spec.get("default").and_then(Value::as_str) {
            inputs.insert(name.clone(), default.to_owned());
        }
    }
    for (name, value) in given {
        assert!(
            action["inputs"].get(*name).is_some(),
            "no input `{name}` in action.yml"
        );
        inputs.insert((*name).to_owned(), (*value).to_owned());
    }
    for (name, spec) in action["inputs"].as_object().unwrap() {
        if spec["required"] == true {
            assert!(
                inputs.contains_key(name),
                "required input `{name}` not given"
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("repo");
    copy_dir(&repo_root().join(FIXTURES), &work);
    let files: Vec<PathBuf> = ["summary.md", "output", "path", "env"]
        .iter()
        .map(|f| dir.path().join(f))
        .collect();
    for f in &files {
        std::fs::write(f, "").unwrap();
    }
    let mut steps = Vec::new();
    for (i, step) in action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(step["shell"], "bash", "step {i}");
        let script = step["run"].as_str().expect("a run step");
        assert!(
            !script.contains("${{"),
            "step {i} puts an expression into its script (script injection): use env"
        );
        let path = dir.path().join(format!("step-{i}.sh"));
        std::fs::write(&path, script).unwrap();
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&path)
            .current_dir(&work)
            .env("GITHUB_STEP_SUMMARY", &files[0])
            .env("GITHUB_OUTPUT", &files[1])
            .env("GITHUB_PATH", &files[2])
            .env("GITHUB_ENV", &files[3])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", &work)
            .env("RUNNER_TEMP", dir.path())
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", "/nonexistent-shotlist-test");
        if let Some(env) = step.get("env").and_then(Value::as_object) {
            for (k, v) in env {
                cmd.env(k, expand(v.as_str().unwrap(), &inputs));
            }
        }
        let out = cmd.output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        let id = step["id"].as_str().unwrap_or_default().to_owned();
        steps.push((id, code, String::from_utf8_lossy(&out.stdout).into_owned()));
        if code != 0 {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            break;
        }
    }
    Outputs {
        steps,
        summary: std::fs::read_to_string(&files[0]).unwrap(),
        output: std::fs::read_to_string(&files[1]).unwrap(),
        dir,
    }
}

/// `key=value` lines of `$GITHUB_OUTPUT`.
fn outputs(text: &str) -> BTreeMap<&str, &str> {
    text.lines().filter_map(|l| l.split_once('=')).collect()
}

/// `(file, line, column)` of every problem `validate --format json` reports.
fn problems_in_json(work: &Path) -> Vec<(String, u64, u64)> {
    let out = crate::support::shotlist()
        .current_dir(work)
        .args(["validate", "--format", "json"])
        .args([
            "manifests/broken.yaml",
            "manifests/fine.yaml",
            "manifests/noisy.yaml",
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut all: Vec<(String, u64, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap().to_owned(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

#[test]
fn the_action_annotates_ten_per_level_and_reports_all_25_in_the_summary_and_sarif() {
    let bin = env!("CARGO_BIN_EXE_shotlist");
    let r = run_action(&[
        ("manifests", "manifests/**/*.yaml"),
        ("binary", bin),
        ("sarif", "reports/shotlist.sarif"),
    ]);
    let work = r.dir.path().join("repo");
    let ids: Vec<&str> = r.steps.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, ["install", "validate"]);
    assert_eq!(r.steps[0].1, 0, "install with `binary` given");
    let (_, code, stdout) = &r.steps[1];
    assert_eq!(*code, 2, "invalid manifests fail the step\n{stdout}");

    let expected = problems_in_json(&work);
    assert_eq!(
        expected.len(),
        25,
        "the fixtures have 25 problems: {expected:?}"
    );

    // Annotations: 10 per level, each with its span, then one notice for the rest.
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::error "))
        .collect();
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::warning "))
        .collect();
    assert_eq!((errors.len(), warnings.len()), (10, 10), "{stdout}");
    for a in errors.iter().chain(&warnings) {
        for prop in [
            "file=manifests/",
            ",line=",
            ",col=",
            ",endLine=",
            ",endColumn=",
        ] {
            assert!(a.contains(prop), "{prop} missing in {a}");
        }
    }
    let notices: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::notice "))
        .collect();
    assert_eq!(notices.len(), 1, "{stdout}");
    assert!(
        notices[0].contains("4 more error(s) and 1 more warning(s)"),
        "{}",
        notices[0]
    );

    // The summary: every problem, one row each, at its place.
    let rows: Vec<&str> = r
        .summary
        .lines()
        .filter(|l| l.starts_with("| ❌") || l.starts_with("| ⚠️"))
        .collect();
    assert_eq!(rows.len(), 25, "{}", r.summary);
    let mut placed: Vec<(String, u64, u64)> = rows
        .iter()
        .map(|row| {
            let cells: Vec<&str> = row.split(" | ").collect();
            let (line, col) = cells[2].split_once(':').unwrap();
            (
                cells[1].trim_matches('`').to_owned(),
                line.parse().unwrap(),
                col.parse().unwrap(),
            )
        })
        .collect();
    placed.sort();
    assert_eq!(placed, expected);
    assert!(
        r.summary
            .contains("3 manifest(s), 1 invalid: 14 error(s), 11 warning(s)")
    );
    assert!(
        r.summary.contains("data/spots.csv row 3 (line 4)"),
        "{}",
        r.summary
    );

    // SARIF: every problem, valid against the 2.1.0 schema, with the CSV line related.
    let out = outputs(&r.output);
    assert_eq!(out.get("sarif"), Some(&"reports/shotlist.sarif"));
    assert_eq!(out.get("exit-code"), Some(&"2"));
    let sarif: Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("reports/shotlist.sarif")).unwrap(),
    )
    .unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/fixtures/sarif-schema-2.1.0.json"))
            .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let mut located: Vec<(String, u64, u64)> = results
        .iter()
        .map(|res| {
            let loc = &res["locations"][0]["physicalLocation"];
            let region = &loc["region"];
            assert!(
                region["endColumn"].as_u64().unwrap() > region["startColumn"].as_u64().unwrap(),
                "{res}"
            );
            assert_eq!(region["endLine"], region["startLine"]);
            (
                loc["artifactLocation"]["uri"].as_str().unwrap().to_owned(),
                region["startLine"].as_u64().unwrap(),
                region["startColumn"].as_u64().unwrap(),
            )
        })
        .collect();
    located.sort();
    assert_eq!(located, expected);
    let levels = |level: &str| results.iter().filter(|r| r["level"] == level).count();
    assert_eq!((levels("error"), levels("warning")), (14, 11));
    let csv_lines: Vec<u64> = results
        .iter()
        .filter_map(|r| r.get("relatedLocations"))
        .map(|rel| {
            let loc = &rel[0]["physicalLocation"];
            assert_eq!(loc["artifactLocation"]["uri"], "manifests/data/spots.csv");
            loc["region"]["startLine"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(csv_lines, [3, 4, 5], "the CSV rows with bad durations");
}

#[test]
fn the_action_can_report_without_failing_and_refuses_a_glob_matching_nothing() {
    let bin = env!("CARGO_BIN_EXE_shotlist");
    let r = run_action(&[
        ("manifests", "manifests/broken.yaml"),
        ("binary", bin),
        ("fail-on-error", "false"),
    ]);
    assert_eq!(r.steps[1].1, 0, "{}", r.steps[1].2);
    let out = outputs(&r.output);
    assert_eq!(out.get("exit-code"), Some(&"2"));
    assert_eq!(out.get("sarif"), Some(&""));
    assert!(!r.dir.path().join("repo/reports").exists());

    let r = run_action(&[
        ("manifests", "manifests/fine.yaml\nmissing/*.yaml"),
        ("binary", bin),
    ]);
    let (_, code, stdout) = &r.steps[1];
    assert_eq!(*code, 2);
    assert!(
        stdout.contains("::error title=shotlist::no file matches `missing/*.yaml`"),
        "{stdout}"
    );
    assert!(
        r.summary
            .contains("`manifests/fine.yaml`: valid, 1 shot(s)")
    );

    let r = run_action(&[("manifests", "manifests/fine.yaml"), ("binary", bin)]);
    assert_eq!(r.steps[1].1, 0);
    assert!(!r.steps[1].2.contains("::"), "{}", r.steps[1].2);
}
