//! Every example manifest split into 1..=5 shards: a partition of the plan that keeps chains.

use std::collections::BTreeSet;

use serde_json::Value;
use shotlist::plan::shard::partition;

use crate::support::{Project, repo_root};

fn example_plans() -> Vec<(String, shotlist::plan::Plan)> {
    let mut plans = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("manifests")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let planned = shotlist::plan::load_and_plan(&path)
                .unwrap_or_else(|_| panic!("{} plans", path.display()));
            plans.push((path.display().to_string(), planned.plan));
        }
    }
    assert!(plans.len() >= 7, "{} example manifests", plans.len());
    plans
}

#[test]
fn shards_of_every_example_cover_the_plan_once_and_keep_chains() {
    for (name, plan) in example_plans() {
        for n in 1..=5u32 {
            let part = partition(&plan, n);
            assert_eq!(part.shard_of.len(), plan.shots.len(), "{name}");
            assert!(
                part.shard_of.iter().all(|&k| (1..=n).contains(&k)),
                "{name}"
            );
            let masks: Vec<Vec<bool>> = (1..=n).map(|k| part.mask(k)).collect();
            for i in 0..plan.shots.len() {
                let holders = masks.iter().filter(|m| m[i]).count();
                assert_eq!(holders, 1, "{name} N={n}: {}", plan.shots[i].id);
            }
            for (i, shot) in plan.shots.iter().enumerate() {
                for &u in &shot.depends_on {
                    let up = &plan.shots[u].id;
                    assert_eq!(
                        part.shard_of[u], part.shard_of[i],
                        "{name} N={n}: {} and its upstream {up} split",
                        shot.id
                    );
                }
            }
            let seconds: u64 = plan
                .shots
                .iter()
                .map(|s| u64::from(s.output_seconds()))
                .sum();
            assert_eq!(part.seconds.iter().sum::<u64>(), seconds, "{name}");
        }
    }
}

#[test]
fn plan_shard_json_lists_each_shot_in_exactly_one_shard() {
    let manifest = repo_root().join("manifests/product-launch.yaml");
    let manifest = manifest.to_str().unwrap();
    let p = Project::new();
    let full = p.run(&["plan", manifest, "--format", "json"]);
    full.code(0);
    let full: Value = serde_json::from_str(&full.stdout).unwrap();
    let all: BTreeSet<String> = full["shots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let mut seen = BTreeSet::new();
    for k in 1..=3 {
        let run = p.run(&[
            "plan",
            manifest,
            "--format",
            "json",
            "--shard",
            &format!("{k}/3"),
        ]);
        run.code(0);
        let doc: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(doc["shard"], format!("{k}/3"));
        assert_eq!(doc["shards"].as_array().unwrap().len(), 3);
        assert!(
            doc["out_dir"]
                .as_str()
                .unwrap()
                .ends_with(&format!("shard-{k}-of-3")),
            "{}",
            doc["out_dir"]
        );
        let shots = doc["shots"].as_array().unwrap();
        assert_eq!(doc["shards"][k - 1]["shots"], shots.len());
        assert_eq!(doc["totals"]["shots"], shots.len());
        for s in shots {
            assert!(seen.insert(s["id"].as_str().unwrap().to_owned()), "{s}");
        }
    }
    assert_eq!(seen, all);
}

#[test]
fn plan_shard_text_shows_every_shard() {
    let manifest = repo_root().join("manifests/product-launch.yaml");
    let run = Project::new().run(&["plan", manifest.to_str().unwrap(), "--shard", "2/3"]);
    run.code(0);
    assert!(
        run.stdout.contains("shard 2/3; every shard"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  3/3: "), "{}", run.stdout);
}

#[test]
fn a_bad_shard_is_exit_2_and_says_how_to_write_one() {
    let manifest = repo_root().join("manifests/story.yaml");
    let p = Project::new();
    for bad in ["0/3", "4/3", "3", "x/2", "1/0"] {
        for cmd in ["plan", "run", "status"] {
            let run = p.run(&[cmd, manifest.to_str().unwrap(), "--shard", bad]);
            run.code(2);
            assert!(run.stderr.contains("K/N"), "{cmd} {bad}: {}", run.stderr);
        }
    }
}
