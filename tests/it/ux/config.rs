//! Config mistakes that would otherwise pass silently: pricing for a model or resolution that
//! does not exist.

use crate::support::Project;

const MANIFEST: &str = "version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: A cat.\n";

fn plan_with_config(config: &str) -> crate::support::Run {
    let p = Project::new();
    p.file("m.yaml", MANIFEST).file("c.toml", config);
    p.run(&["plan", "m.yaml", "--config", "c.toml"])
}

#[test]
fn pricing_errors_name_the_line_and_the_known_names() {
    for (name, config) in [
        (
            "unknown_model",
            "[run]\nconcurrency = 2\n\n[pricing.t2x]\n\"720P\" = 0.1\n",
        ),
        (
            "unknown_resolution",
            "[pricing.t2v]\n\"1080P\" = 0.15\n\"720p\" = 0.1\n",
        ),
        ("far_resolution", "[pricing.i2v]\n\"4K\" = 0.5\n"),
        ("negative_price", "[pricing.r2v]\n\"720P\" = -1.0\n"),
        ("typo_in_run", "[run]\nconcurency = 8\n"),
    ] {
        let r = plan_with_config(config);
        r.code(2);
        assert_eq!(r.stdout, "", "{name}");
        insta::assert_snapshot!(format!("config_{name}"), r.stderr);
    }
}

#[test]
fn pricing_by_alias_and_full_id_prices_the_plan() {
    let r = plan_with_config(
        "[pricing.t2v]\n\"720P\" = 0.1\n[pricing.\"wan2.7-i2v-2026-04-25\"]\n\"1080P\" = 0.2\n",
    );
    r.code(0);
    assert!(r.stdout.contains("estimated cost: 0.50"), "{}", r.stdout);
}
