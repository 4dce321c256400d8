//! A reader that closes stdout early (`| head -1`, `| true`) ends the output quietly: no panic,
//! no error, the command's own exit code.

use crate::support::{Project, Run};

const MANIFEST: &str = "version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: A cat.\n  - id: b\n    model: t2v\n    prompt: A dog.\n";
const INVALID: &str =
    "version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: A cat.\n    duration: 40\n";

/// Runs shotlist with stdout on a pipe whose reading end is already closed.
fn run_into_closed_pipe(p: &Project, args: &[&str]) -> Run {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = p
        .cmd(args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run shotlist");
    Run::from(out)
}

#[test]
fn closed_stdout_ends_every_printing_command_quietly() {
    let p = Project::new();
    p.file("m.yaml", MANIFEST).file("bad.yaml", INVALID);
    for (args, code) in [
        (&["validate", "m.yaml"][..], 0),
        (&["validate", "--format", "json", "m.yaml"], 0),
        (&["validate", "--format", "github", "bad.yaml"], 2),
        (&["validate", "bad.yaml"], 2),
        (&["plan", "m.yaml"], 0),
        (&["plan", "--format", "json", "m.yaml"], 0),
        (&["status", "m.yaml"], 0),
        (&["status", "--format", "json", "m.yaml"], 0),
        (&["schema"], 0),
        (&["completions", "bash"], 0),
        (&["man"], 0),
    ] {
        let r = run_into_closed_pipe(&p, args);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("cannot write"), "{args:?}: {}", r.stderr);
        if code == 0 {
            assert_eq!(r.stderr, "", "{args:?}");
        }
    }
}

#[test]
fn reader_closing_mid_output_ends_plan_quietly() {
    use std::io::{BufRead, BufReader};
    let p = Project::new();
    let csv: String = std::iter::once("n\n".to_owned())
        .chain((0..5000).map(|i| format!("{i}\n")))
        .collect();
    p.file("data.csv", &csv).file(
        "big.yaml",
        "version: 1\ndata: { t: data.csv }\nshots:\n  - id: \"s-{{ row.n }}\"\n    for_each: t\n    model: t2v\n    prompt: \"A cat, take {{ row.n }}.\"\n",
    );
    // 5000 table lines are far more than a pipe buffer holds, so plan is still writing when
    // the reader goes away after the first line.
    let mut child = p
        .cmd(&["plan", "big.yaml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run shotlist");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with('#') && first.contains("depends on"),
        "{first}"
    );
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}
