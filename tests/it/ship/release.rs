//! The release workflow, the action and the image recipe: every shotlist command they run is
//! a real invocation, with the manifests it names present; the targets are the promised ones.

use clap::Parser;
use serde_json::Value;
use shotlist::cli::{Cli, Command};

use crate::support::repo_root;

fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(rel)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every `run:` script of a workflow's jobs (or an action's steps).
fn scripts(steps: &[&Value]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_owned))
        .collect()
}

/// The shotlist command lines of `script` (those starting with `shotlist` or `"$shotlist"`),
/// expressions replaced by `vars`, quotes dropped.
fn commands(script: &str, vars: &[(&str, &str)]) -> Vec<Vec<String>> {
    let mut text = script.to_owned();
    for (from, to) in vars {
        text = text.replace(from, to);
    }
    text.lines()
        .map(str::trim)
        .map(|l| l.split(" || ").next().unwrap().split(" > ").next().unwrap())
        .map(|l| l.replace("\"$shotlist\"", "shotlist"))
        .filter(|l| l.starts_with("shotlist "))
        .map(|l| {
            l.replace('"', "")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// The parsed command; `None` for `--version` and `--help`, which clap answers itself.
fn parse(args: &[String]) -> Option<Command> {
    match Cli::try_parse_from(args) {
        Ok(cli) => Some(cli.command),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayVersion | clap::error::ErrorKind::DisplayHelp
            ) =>
        {
            None
        }
        Err(e) => panic!("{args:?} is not a valid invocation: {e}"),
    }
}

#[test]
fn the_release_workflow_builds_every_target_and_runs_real_commands() {
    let wf = yaml(".github/workflows/release.yml");
    let jobs = wf["jobs"].as_object().unwrap();
    let build = &jobs["build-local-artifacts"];
    let mut targets: Vec<&str> = build["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            "aarch64-apple-darwin",
            "aarch64-unknown-linux-gnu",
            "x86_64-apple-darwin",
            "x86_64-pc-windows-msvc",
            "x86_64-unknown-linux-gnu",
        ]
    );
    let cargo: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap()).unwrap();
    let profiles = &cargo["profile"];
    assert_eq!(profiles["release"]["strip"].as_bool(), Some(true));
    assert_eq!(profiles["dist"]["inherits"].as_str(), Some("release"));

    let mut all = Vec::new();
    for (name, job) in jobs {
        let steps: Vec<&Value> = job["steps"].as_array().unwrap().iter().collect();
        for script in scripts(&steps) {
            if script.contains("cargo build") {
                assert!(script.contains("--locked"), "{name}: {script}");
            }
            all.extend(commands(
                &script,
                &[("${{ matrix.target }}", "x86_64-unknown-linux-gnu")],
            ));
        }
    }
    assert!(all.len() >= 6, "{all:?}");
    let mut seen = Vec::new();
    for cmd in &all {
        seen.push(cmd[1].clone());
        let Some(command) = parse(cmd) else { continue };
        match command {
            Command::Validate(v) => v.manifests.iter().for_each(|m| {
                assert!(
                    repo_root().join(m).is_file(),
                    "{} is not in the repository",
                    m.display()
                )
            }),
            Command::Run(r) => assert!(repo_root().join(&r.manifest).is_file()),
            Command::Plan(p) => assert!(repo_root().join(&p.manifest).is_file()),
            _ => {}
        }
    }
    for needed in ["validate", "plan", "run"] {
        assert!(
            seen.iter().any(|s| s == needed),
            "no `shotlist {needed}` in {seen:?}"
        );
    }
}

/// The smoke test each release build runs, run here with the test build of shotlist in a copy
/// of the example manifests: parsing its commands is not enough (a flag's value is checked
/// only when the command runs).
#[test]
fn the_release_smoke_test_passes() {
    let wf = yaml(".github/workflows/release.yml");
    let steps = wf["jobs"]["build-local-artifacts"]["steps"]
        .as_array()
        .unwrap();
    let script = steps
        .iter()
        .find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Smoke test"))
        })
        .and_then(|s| s["run"].as_str())
        .expect("a smoke test step")
        .replace("${{ matrix.target }}", "x86_64-unknown-linux-gnu");
    assert!(!script.contains("${{"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("manifests"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(dir.path().join("manifests/out"));
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_shotlist"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let r = crate::support::Run::from(
        std::process::Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
            .current_dir(dir.path())
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", "/nonexistent-shotlist-test")
            .env_remove("GRAVITEX_API_KEY")
            .env_remove("GRAVITEX_BASE_URL")
            .output()
            .unwrap(),
    );
    r.code(0);
    assert!(r.stdout.contains("plan matches plan.json"), "{}", r.stdout);
    let results = std::fs::read_to_string(dir.path().join("smoke-out/results.csv")).unwrap();
    assert_eq!(results.matches(",succeeded,").count(), 12, "{results}");
}

#[test]
fn the_action_and_the_image_recipe_run_real_commands() {
    let action = yaml("action.yml");
    let steps: Vec<&Value> = action["runs"]["steps"].as_array().unwrap().iter().collect();
    let cmds: Vec<Vec<String>> = scripts(&steps)
        .iter()
        .flat_map(|s| commands(s, &[("${files[@]}", "m.yaml")]))
        .collect();
    let formats: Vec<String> = cmds
        .iter()
        .map(|c| match parse(c).expect("a command") {
            Command::Validate(v) => format!("{:?}", v.format),
            other => panic!("not a validate: {other:?}"),
        })
        .collect();
    assert_eq!(formats, ["Github", "Markdown", "Sarif"]);

    let containerfile = std::fs::read_to_string(repo_root().join("Containerfile")).unwrap();
    let lines: Vec<&str> = containerfile
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(lines[0], "FROM scratch");
    let user = lines
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric user");
    assert_ne!(uid, 0);
}
