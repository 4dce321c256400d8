//! What a run and `status` say about progress, in the results' vocabulary: the real binary
//! against a `shotlist sim` process, stderr piped (plain lines, no colour).

use std::process::Stdio;

use super::cli::{SECRET, project, results, run_cmd, wait_for_lines};
use crate::support::{Run, SimProcess};

/// Stderr with what changes from run to run replaced: elapsed times, ETAs, the sim's URL.
fn redact(stderr: &str, sim: &SimProcess) -> String {
    stderr
        .lines()
        .map(|line| {
            let line = line.replace(&sim.url, "[sim]");
            let line = match (line.starts_with('['), line.find("] ")) {
                (true, Some(end)) => format!("[time]{}", &line[end + 1..]),
                _ => line,
            };
            match line.find(", ETA ") {
                Some(at) => format!("{}, ETA [eta]", &line[..at]),
                None => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(p: &crate::support::Project, sim: &SimProcess, extra: &[&str]) -> Run {
    Run::from(run_cmd(p, sim, extra).output().expect("run shotlist"))
}

#[test]
fn only_counts_the_selected_shots() {
    let p = project(2);
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    run(&p, &sim, &["-q", "--only", "teaser-p0"]).code(0);
    let second = run(&p, &sim, &["-j", "1", "--only", "teaser-p1"]);
    second.code(0);
    insta::assert_snapshot!("only_on_a_partly_done_folder", redact(&second.stderr, &sim));
    assert_eq!(sim.stats()["tasks_created"], 2);
}

#[test]
fn held_shots_use_the_results_words_and_name_the_flag_that_resends_them() {
    let p = project(1);
    let sim = SimProcess::start(&["--gen-time", "100ms", "--fail-rate", "1"]);
    let first = run(&p, &sim, &["-j", "1"]);
    first.code(1);
    insta::assert_snapshot!("failed_and_skipped_run", redact(&first.stderr, &sim));
    let rows = results(&p);
    let errors: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
                r["error"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    insta::assert_debug_snapshot!("failed_and_skipped_error_column", errors);

    let status = p.run(&["status", "batch.yaml"]);
    status.code(0);
    insta::assert_snapshot!("failed_and_skipped_status", status.stdout);
    let json = p.run(&["status", "batch.yaml", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("status JSON");
    assert_eq!(doc["counts"]["failed"], 1);
    assert_eq!(doc["counts"]["skipped"], 1);
    assert_eq!(doc["shots"][1]["status"], "skipped");

    let again = run(&p, &sim, &["-j", "1"]);
    again.code(1);
    insta::assert_snapshot!("failed_and_skipped_resumed", redact(&again.stderr, &sim));
    assert_eq!(sim.stats()["tasks_created"], 1);
}

#[cfg(unix)]
#[test]
fn ctrl_c_says_in_flight_and_the_resumed_run_says_what_it_found() {
    let p = project(4);
    let sim = SimProcess::start(&["--gen-time", "3s"]);
    let mut child = run_cmd(&p, &sim, &["-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run");
    // Two `submitting` and two `submitted` lines: both tasks accepted, neither finished.
    assert!(wait_for_lines(&mut child, &p, 4), "run ended too early");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(killed.success());
    let stopped = Run::from(child.wait_with_output().expect("wait"));
    stopped.code(130);
    let summary = stopped.stderr.lines().last().unwrap_or_default();
    insta::assert_snapshot!("ctrl_c_summary", summary);

    let resumed = run(&p, &sim, &["-j", "2"]);
    resumed.code(0);
    let found = resumed
        .stderr
        .lines()
        .find(|l| l.starts_with("found in the journal"))
        .unwrap_or_else(|| panic!("no resume line in\n{}", resumed.stderr));
    insta::assert_snapshot!("resumed_found", found);
    assert_eq!(sim.stats()["tasks_created"], 6);
}

#[test]
fn verbose_logs_each_submit_outcome_and_download_plainly_and_never_the_key() {
    let p = project(1);
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let quiet = run(&p, &sim, &["-j", "1"]);
    quiet.code(0);
    assert!(!quiet.stderr.contains("submitted "), "{}", quiet.stderr);

    let p = project(1);
    let verbose = run(&p, &sim, &["-j", "1", "-v"]);
    verbose.code(0);
    for id in ["teaser-p0", "follow-p0"] {
        for what in [
            format!("submitted {id}: task "),
            format!("task of {id} succeeded"),
            format!("downloaded {id}: "),
        ] {
            let n = verbose.stderr.matches(&what).count();
            assert_eq!(n, 1, "{what:?} {n} times in\n{}", verbose.stderr);
        }
    }
    assert!(
        !verbose.stderr.contains("hyper") && !verbose.stderr.contains("reqwest"),
        "dependencies' lines at -v:\n{}",
        verbose.stderr
    );

    // Not a terminal: no colour codes even without NO_COLOR; the dependencies speak at -vvv.
    let p = project(1);
    let mut cmd = run_cmd(&p, &sim, &["-j", "1", "-vvv"]);
    cmd.env_remove("NO_COLOR");
    let loud = Run::from(cmd.output().expect("run"));
    loud.code(0);
    assert!(loud.stderr.lines().count() > verbose.stderr.lines().count());
    for out in [&verbose, &loud] {
        assert!(
            !out.stderr.contains('\x1b'),
            "colour codes in\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains(SECRET) && !out.stdout.contains(SECRET));
    }
}
