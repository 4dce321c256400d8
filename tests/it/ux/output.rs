//! The files a run leaves: results that join back to the manifest and open from where they
//! lie, modes from the umask, and plan.json the same document as `plan --format json`.

use std::process::Command;

use crate::support::{Project, Run};

const MANIFEST: &str = r#"version: 1
name: m
data:
  products: { rows: [{ sku: A1, name: Lamp }] }
shots:
  - id: "teaser-{{ row.sku }}-{{ matrix.ratio | replace(':', 'x') }}"
    for_each: products
    matrix: { style: [noir], ratio: ["16:9", "9:16"] }
    takes: 2
    model: t2v
    ratio: "{{ matrix.ratio }}"
    duration: 2
    prompt: "{{ row.name }}, {{ matrix.style }} style, take {{ take }}"
  - id: plain
    model: t2v
    duration: 2
    prompt: A plain shot.
"#;

const CONFIG: &str = "[pricing.t2v]\n\"720P\" = 0.1\n";

fn project() -> Project {
    let p = Project::new();
    p.file("m.yaml", MANIFEST).file("c.toml", CONFIG);
    p
}

/// `shotlist <args>` under `umask`, through `sh` so the umask is the process's own.
fn run_with_umask(p: &Project, umask: &str, args: &[&str]) -> Run {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_shotlist"))
        .args(args)
        .current_dir(p.dir.path())
        .env_remove("GRAVITEX_API_KEY")
        .env_remove("GRAVITEX_BASE_URL")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", "/nonexistent-shotlist-test")
        .output()
        .expect("run shotlist");
    Run::from(out)
}

fn sim_run(p: &Project, umask: &str) {
    run_with_umask(
        p,
        umask,
        &[
            "run", "m.yaml", "--sim", "--poll", "100ms", "-q", "--config", "c.toml",
        ],
    )
    .code(0);
}

#[test]
fn results_join_back_and_their_files_open_from_the_results_folder() {
    let p = project();
    sim_run(&p, "022");
    let out = p.path("out/m");
    let mut csv = csv::Reader::from_path(out.join("results.csv")).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(str::to_owned).collect();
    let extras = [
        "orig_prompt",
        "actual_prompt",
        "usage_s",
        "input_s",
        "output_s",
    ];
    assert_eq!(
        header[header.len() - 10..],
        [
            &["prompt", "cost", "spent"][..],
            &extras,
            &["matrix.style", "matrix.ratio"]
        ]
        .concat()
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut table = String::new();
    for record in csv.records() {
        let r = record.unwrap();
        for extra in extras {
            assert_eq!(&r[col(extra)], "", "the gateway reports no {extra}");
        }
        let file = &r[col("file")];
        assert!(
            out.join(file).is_file(),
            "{file} does not open from {}",
            out.display()
        );
        let picked: Vec<&str> = [
            "id",
            "status",
            "file",
            "take",
            "prompt",
            "cost",
            "matrix.style",
            "matrix.ratio",
        ]
        .iter()
        .map(|c| &r[col(c)])
        .collect();
        table.push_str(&picked.join(" | "));
        table.push('\n');
    }
    insta::assert_snapshot!("results_join_columns", table);

    let json: serde_json::Value = serde_json::from_str(&p.read("out/m/results.json")).unwrap();
    assert_eq!(json[0]["file"], "videos/teaser-A1-16x9-take1.mp4");
    assert_eq!(json[0]["take"], 1);
    assert_eq!(json[0]["prompt"], "Lamp, noir style, take 1");
    assert_eq!(
        json[3]["matrix"],
        serde_json::json!({"style": "noir", "ratio": "9:16"})
    );
    assert!(
        p.read("out/m/results.json")
            .contains(r#""matrix":{"style":"noir","ratio":"9:16"}"#),
        "matrix keys keep the order written"
    );
    assert!(json[4].get("matrix").is_none(), "{}", json[4]);
}

#[cfg(unix)]
#[test]
fn output_files_honour_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let p = project();
    sim_run(&p, "027");
    let out = p.path("out/m");
    let mut files = vec![
        out.join("results.csv"),
        out.join("results.json"),
        out.join("plan.json"),
        out.join("journal.jsonl"),
    ];
    files.extend(
        std::fs::read_dir(out.join("videos"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    assert_eq!(files.len(), 9, "{files:?}");
    for f in files {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{} has mode {mode:o}", f.display());
    }
}

#[test]
fn plan_json_in_the_folder_is_the_plan_command_document() {
    let p = project();
    sim_run(&p, "022");
    let stored: serde_json::Value = serde_json::from_str(&p.read("out/m/plan.json")).unwrap();
    let r = p.run(&["plan", "m.yaml", "--format", "json", "--config", "c.toml"]);
    r.code(0);
    let mut printed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(printed["totals"]["to_send"]["actions"]["done"], 5);
    assert_eq!(printed["totals"]["cost"]["to_send"], "0.00");
    for shot in printed["shots"].as_array_mut().unwrap() {
        assert_eq!(shot["action"], "done");
        let shot = shot.as_object_mut().unwrap();
        shot.remove("action");
        shot.remove("reason");
    }
    let totals = printed["totals"].as_object_mut().unwrap();
    totals.remove("to_send");
    totals["cost"].as_object_mut().unwrap().remove("to_send");
    assert_eq!(totals["cost"]["spent"], "1.00");
    totals["cost"].as_object_mut().unwrap().remove("spent");
    assert_eq!(stored, printed);
    assert_eq!(stored["totals"]["cost"]["total"], "1.00");
    assert_eq!(stored["version"], 1);
    assert_eq!(stored["shots"][0]["cost"], "0.20");
    assert_eq!(stored["shots"][1]["take"], 2);
}

#[test]
fn plan_output_format_follows_the_file_extension_unless_given() {
    let p = project();
    p.run(&["plan", "m.yaml", "-o", "p.json"]).code(0);
    let doc: serde_json::Value = serde_json::from_str(&p.read("p.json")).unwrap();
    assert_eq!(doc["totals"]["shots"], 5);
    p.run(&["plan", "m.yaml", "-o", "p.txt"]).code(0);
    assert!(p.read("p.txt").starts_with("#  id"), "{}", p.read("p.txt"));
    p.run(&["plan", "m.yaml", "--format", "text", "-o", "q.json"])
        .code(0);
    assert!(
        p.read("q.json").starts_with("#  id"),
        "{}",
        p.read("q.json")
    );
}
