//! Help texts, completions, the man page and the simulator's start-up lines: what a new user
//! reads before anything else.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::support::{Project, shotlist};

#[test]
fn help_texts() {
    let p = Project::new();
    for args in [
        &["--help"][..],
        &["validate", "--help"],
        &["plan", "--help"],
        &["run", "--help"],
        &["status", "--help"],
        &["merge", "--help"],
        &["sim", "--help"],
        &["completions", "--help"],
    ] {
        let r = p.run(args);
        r.code(0);
        insta::assert_snapshot!(
            format!("help_{}", args[0].replace("--help", "shotlist")),
            r.stdout
        );
    }
}

#[test]
fn run_help_names_the_key_variable() {
    let r = Project::new().run(&["run", "--help"]);
    assert!(r.stdout.contains("GRAVITEX_API_KEY"), "{}", r.stdout);
}

#[test]
fn completions_for_every_shell_know_the_commands_and_flags() {
    let p = Project::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let r = p.run(&["completions", shell]);
        r.code(0);
        for word in ["validate", "resubmit-unknown", "gen-time", "completions"] {
            assert!(r.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let r = p.run(&["completions", "tcsh"]);
    r.code(2);
    assert!(r.stderr.contains("possible values"), "{}", r.stderr);
}

#[test]
fn man_page_is_roff_with_every_command() {
    let r = Project::new().run(&["man"]);
    r.code(0);
    assert!(
        r.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &r.stdout[..80]
    );
    assert!(r.stdout.contains(".TH shotlist 1"), "{}", r.stdout);
    for command in [
        "validate",
        "plan",
        "run",
        "status",
        "sim",
        "schema",
        "completions",
    ] {
        assert!(
            r.stdout.contains(&format!("shotlist\\-{command}")),
            "{command} missing"
        );
    }
}

/// The lines `shotlist sim` prints before serving, its URL replaced by `URL`.
fn sim_startup(args: &[&str]) -> String {
    let mut child = shotlist()
        .args(["sim", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shotlist sim");
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url
        .trim()
        .trim_start_matches("shotlist sim listening on ")
        .to_owned();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    while !text.contains("Ctrl-C stops") {
        if stderr.read_line(&mut text).unwrap() == 0 {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    text.replace(&url, "URL")
}

#[test]
fn sim_startup_says_how_to_point_a_run_at_it() {
    insta::assert_snapshot!("sim_startup_any_key", sim_startup(&[]));
    let with_key = sim_startup(&["--key", "sk-secret-test"]);
    assert!(!with_key.contains("sk-secret-test"), "{with_key}");
    insta::assert_snapshot!("sim_startup_with_key", with_key);
}

/// `man --dir` writes the pages the top page refers to: one per command, each its own roff page
/// with the command's flags.
#[test]
fn man_dir_writes_one_page_per_command() {
    let p = Project::new();
    let r = p.run(&["man", "--dir", "man/man1"]);
    r.code(0);
    let top = p.read("man/man1/shotlist.1");
    for (command, flag) in [
        ("validate", "\\-\\-format"),
        ("plan", "\\-\\-retake\\-rejected"),
        ("run", "\\-\\-max\\-cost"),
        ("status", "\\-\\-out"),
        ("sim", "\\-\\-port"),
        ("schema", "JSON Schema"),
        ("completions", "bash"),
        ("man", "\\-\\-dir"),
    ] {
        assert!(
            top.contains(&format!("shotlist\\-{command}(1)")),
            "{command}"
        );
        let page = p.read(&format!("man/man1/shotlist-{command}.1"));
        assert!(
            page.contains(&format!(".TH shotlist-{command} 1")),
            "{command}: {page}"
        );
        assert!(page.contains(flag), "{command} lacks {flag}: {page}");
        assert!(
            r.stdout.contains(&format!("shotlist-{command}.1\n")),
            "{}",
            r.stdout
        );
    }
    assert!(!p.path("man/man1/shotlist-help.1").exists());
}

#[test]
fn color_flag_turns_colour_on_and_off_whatever_the_terminal() {
    let p = Project::new();
    p.file(
        "m.yaml",
        "version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: x\n    duration: 99\n",
    );
    let on = p.run(&["--color", "always", "validate", "m.yaml"]);
    on.code(2);
    assert!(on.stderr.contains("\u{1b}["), "{}", on.stderr);
    let off = p.run(&["--color", "never", "validate", "m.yaml"]);
    off.code(2);
    assert!(!off.stderr.contains('\u{1b}'), "{}", off.stderr);
}
