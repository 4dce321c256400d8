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
