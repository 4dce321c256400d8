//! The deploy recipes parse, have the parts they promise, and run valid shotlist commands.

use clap::Parser;
use serde_json::Value;
use shotlist::cli::{Cli, Command};

use crate::support::repo_root;

fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(rel)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The shotlist command lines of a shell script, with `vars` substituted and quotes dropped.
fn commands(script: &str, vars: &[(&str, &str)]) -> Vec<Vec<String>> {
    let mut text = script.to_owned();
    for (from, to) in vars {
        text = text.replace(from, to);
    }
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("shotlist "))
        .map(|l| {
            l.replace('"', "")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

fn parse(args: &[String]) -> Command {
    Cli::try_parse_from(args)
        .unwrap_or_else(|e| panic!("{args:?} is not a valid invocation: {e}"))
        .command
}

#[test]
fn kubernetes_indexed_job_runs_each_shard_then_merges_them() {
    let job = yaml("deploy/kubernetes/job.yaml");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert!(spec["backoffLimitPerIndex"].as_u64().is_some());
    let n = spec["completions"].as_u64().unwrap();
    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(
        container["env"][0]["valueFrom"]["secretKeyRef"]["key"],
        "api-key"
    );
    assert!(container["volumeMounts"].as_array().unwrap().len() >= 2);
    assert!(
        container.get("command").is_none(),
        "the image has no shell: the entrypoint is shotlist"
    );
    assert!(container["image"].as_str().unwrap().contains("/shotlist:"));
    let args = |c: &Value, index: &str| -> Vec<String> {
        let mut v = vec!["shotlist".to_owned()];
        v.extend(c["args"].as_array().unwrap().iter().map(|a| {
            a.as_str()
                .unwrap()
                .replace("$(JOB_COMPLETION_INDEX)", index)
        }));
        v
    };
    let mut folders = Vec::new();
    for index in 0..n {
        let Command::Run(run) = parse(&args(container, &index.to_string())) else {
            panic!("not a run")
        };
        let shard = run.shard.expect("--shard");
        assert_eq!(
            (u64::from(shard.index), u64::from(shard.count)),
            (index + 1, n)
        );
        folders.push(run.out.unwrap());
    }

    let merge = yaml("deploy/kubernetes/merge.yaml");
    let container = &merge["spec"]["template"]["spec"]["containers"][0];
    let Command::Merge(m) = parse(&args(container, "")) else {
        panic!("not a merge")
    };
    assert_eq!(m.dirs, folders, "the merge joins every shard's folder");
    yaml("deploy/kubernetes/pvc.yaml");
}

#[test]
fn github_workflow_runs_a_matrix_of_shards_and_a_merge_job() {
    let wf = yaml("deploy/github/shotlist-shards.yml");
    let shards = wf["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap()
        .clone();
    let n = shards.len().to_string();
    let steps = |job: &str| -> String {
        wf["jobs"][job]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let uploads = wf["jobs"]["shard"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        });
    assert!(uploads);
    for k in &shards {
        let k = k.as_u64().unwrap().to_string();
        let cmds = commands(
            &steps("shard"),
            &[
                ("${{ matrix.shard }}", &k),
                ("${{ strategy.job-total }}", &n),
                ("$MANIFEST", "manifests/product-launch.yaml"),
            ],
        );
        assert_eq!(cmds.len(), 1);
        let Command::Run(run) = parse(&cmds[0]) else {
            panic!("not a run: {cmds:?}")
        };
        assert_eq!(run.shard.unwrap().to_string(), format!("{k}/{n}"));
    }
    assert_eq!(wf["jobs"]["merge"]["needs"], "shard");
    let cmds = commands(&steps("merge"), &[("$MANIFEST", "m.yaml")]);
    let Command::Merge(m) = parse(&cmds[0]) else {
        panic!("not a merge: {cmds:?}")
    };
    assert_eq!(m.dirs.len(), shards.len());
}
