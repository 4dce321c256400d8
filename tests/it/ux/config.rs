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
        ("bad_currency", "[pricing]\ncurrency = \"usd\"\n"),
        ("bad_max_cost", "[run]\nconcurrency = 2\nmax_cost = -5\n"),
        ("price_too_high", "[pricing.t2v]\n\"720P\" = 1e9\n"),
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

#[test]
fn prices_are_the_list_unless_overridden_and_another_currency_drops_the_list() {
    let r = plan_with_config("");
    r.code(0);
    assert!(
        r.stdout.contains("estimated cost: 0.50 USD\n"),
        "{}",
        r.stdout
    );
    let r = plan_with_config("[pricing.t2v]\n\"720P\" = 0.125\n");
    assert!(
        r.stdout.contains("estimated cost: 0.63 USD\n"),
        "{}",
        r.stdout
    );
    let r = plan_with_config("[pricing]\ncurrency = \"EUR\"\n[pricing.r2v]\n\"720P\" = 0.2\n");
    r.code(0);
    assert!(
        r.stdout.contains("720P: 1 shot(s), 5 s, no price\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("estimated cost: 0.00 EUR (1 shot(s) have no price"),
        "{}",
        r.stdout
    );
    let eur = "[pricing]\ncurrency = \"EUR\"\n[pricing.t2v]\n\"720P\" = 0.09\n";
    let r = plan_with_config(eur);
    assert!(
        r.stdout.contains("estimated cost: 0.45 EUR\n"),
        "{}",
        r.stdout
    );
    let p = Project::new();
    p.file("m.yaml", MANIFEST).file("c.toml", eur);
    let r = p.run(&["plan", "m.yaml", "--config", "c.toml", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["totals"]["cost"]["total"], "0.45");
    assert_eq!(doc["totals"]["cost"]["currency"], "EUR");
    assert_eq!(doc["shots"][0]["cost"], "0.45");
}

#[test]
fn a_cap_on_shots_without_a_price_is_refused_before_anything_is_sent() {
    let p = Project::new();
    p.file("m.yaml", MANIFEST)
        .file("c.toml", "[pricing]\ncurrency = \"EUR\"\n");
    let r = p.run(&[
        "run",
        "m.yaml",
        "--sim",
        "--config",
        "c.toml",
        "--max-cost",
        "3",
    ]);
    r.code(2);
    let words = r.stderr.replace('│', " ");
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(
            "--max-cost needs a price for every shot, and `a` (wan2.7-t2v-2026-04-25 at 720P) \
             has none in EUR"
        ),
        "{words}"
    );
    assert!(!p.path("out").exists());
    let r = p.run(&["run", "m.yaml", "--sim", "--max-cost", "1.2.3"]);
    r.code(2);
    assert!(
        r.stderr.contains("`1.2.3` is not an amount"),
        "{}",
        r.stderr
    );
}

/// The config beside the manifest is found from any working directory (the same plan prices
/// the same), named on stderr; the working directory's is read only when none is beside the
/// manifest, and `--config` wins over both.
#[test]
fn the_config_beside_the_manifest_is_found_from_three_working_directories() {
    let p = Project::new();
    p.file("proj/m.yaml", MANIFEST)
        .file("proj/shotlist.toml", "[pricing.t2v]\n\"720P\" = 1.0\n")
        .file("proj/sub/keep", "")
        .file("shotlist.toml", "[pricing.t2v]\n\"720P\" = 3.0\n");
    for (cwd, manifest) in [
        (".", "proj/m.yaml"),
        ("proj", "m.yaml"),
        ("proj/sub", "../m.yaml"),
    ] {
        let mut cmd = crate::support::shotlist();
        cmd.current_dir(p.path(cwd)).args(["plan", manifest]);
        let r = crate::support::Run::from(cmd.output().unwrap());
        r.code(0);
        assert!(
            r.stdout.contains("estimated cost: 5.00 USD\n"),
            "from {cwd}: {}",
            r.stdout
        );
        assert!(
            r.stderr
                .contains("shotlist.toml sets [pricing.<model>] prices"),
            "from {cwd}: {}",
            r.stderr
        );
    }
    std::fs::remove_file(p.path("proj/shotlist.toml")).unwrap();
    let r = p.run(&["plan", "proj/m.yaml"]);
    assert!(
        r.stdout.contains("estimated cost: 15.00 USD\n"),
        "{}",
        r.stdout
    );
    p.file("c.toml", "[pricing.t2v]\n\"720P\" = 2.0\n");
    let r = p.run(&["plan", "proj/m.yaml", "--config", "c.toml"]);
    assert!(
        r.stdout.contains("estimated cost: 10.00 USD\n"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("config: c.toml sets"), "{}", r.stderr);
    let r = p.run(&["-q", "plan", "proj/m.yaml", "--config", "c.toml"]);
    assert!(!r.stderr.contains("config:"), "{}", r.stderr);
}

#[test]
fn validate_refuses_a_config_with_an_unknown_key_and_says_what_was_meant() {
    let p = Project::new();
    p.file("m.yaml", MANIFEST).file(
        "bad.toml",
        "[run]\nconcurrency = 2\nsubmits_per_minit = 8\n",
    );
    let r = p.run(&["validate", "--config", "bad.toml", "m.yaml"]);
    r.code(2);
    for hint in [
        "bad.toml:3:1",
        "unknown key `submits_per_minit`",
        "did you mean `submits_per_minute`?",
    ] {
        assert!(r.stderr.contains(hint), "{hint}: {}", r.stderr);
    }
    p.file("shotlist.toml", "[downlaod]\ntimeout = \"9s\"\n");
    let r = p.run(&["validate", "m.yaml"]);
    r.code(2);
    assert!(r.stderr.contains("shotlist.toml:1:2"), "{}", r.stderr);
    assert!(
        r.stderr.contains("did you mean `download`?"),
        "{}",
        r.stderr
    );
}
