//! `plan --check FILE`: the drift gate against a committed plan, on an unchanged, a
//! prompt-changed, a price-changed and a reshaped manifest.

use crate::support::Project;

const MANIFEST: &str = "version: 1\nname: gate\ndefaults: { model: t2v, resolution: 720P }\nshots:\n  - id: a\n    prompt: A red kite over dunes.\n    duration: 5\n  - id: b\n    prompt: A lantern in fog.\n    duration: 5\n";
const PRICES: &str = "[pricing.t2v]\n720P = 0.10\n";

fn gate() -> Project {
    let p = Project::new();
    p.file("m.yaml", MANIFEST).file("shotlist.toml", PRICES);
    p.run(&["plan", "m.yaml", "-o", "plan.json"]).code(0);
    p
}

#[test]
fn an_unchanged_manifest_matches_its_committed_plan() {
    let p = gate();
    let r = p.run(&["plan", "m.yaml", "--check", "plan.json"]);
    r.code(0);
    assert_eq!(
        r.stdout,
        "plan matches plan.json: 2 shot(s), est. 1.00 USD\n"
    );
    // What a run did in the output folder is not drift: the requests are the same.
    p.run(&["run", "m.yaml", "--sim", "--poll", "100ms", "-q"])
        .code(0);
    p.run(&["plan", "m.yaml", "--check", "plan.json"]).code(0);
}

#[test]
fn a_changed_prompt_exits_5_naming_the_shot_and_what_changed() {
    let p = gate();
    p.file(
        "m.yaml",
        &MANIFEST.replace("A lantern in fog.", "A lantern in rain."),
    );
    let r = p.run(&["plan", "m.yaml", "--check", "plan.json"]);
    r.code(5);
    assert_eq!(
        r.stdout,
        "plan differs from plan.json:\n  ~ b: request (metadata.input.prompt, prompt)\n\
         0 added, 0 removed, 1 changed; if this is meant, update it: shotlist plan m.yaml -o plan.json\n"
    );
}

#[test]
fn a_changed_price_exits_5_with_each_cost_and_the_difference() {
    let p = gate();
    p.file("shotlist.toml", "[pricing.t2v]\n720P = 0.15\n");
    let r = p.run(&["plan", "m.yaml", "--check", "plan.json"]);
    r.code(5);
    assert_eq!(
        r.stdout,
        "plan differs from plan.json:\n  ~ a: cost 0.50 -> 0.75\n  ~ b: cost 0.50 -> 0.75\n\
         estimated cost: 1.00 USD -> 1.50 USD (+0.50)\n\
         0 added, 0 removed, 2 changed; if this is meant, update it: shotlist plan m.yaml -o plan.json\n"
    );
}

#[test]
fn added_and_removed_shots_are_listed_and_the_cost_may_fall() {
    let p = gate();
    let reshaped = MANIFEST
        .replace(
            "  - id: b\n    prompt: A lantern in fog.\n    duration: 5\n",
            "",
        )
        .replace("id: a", "id: a2")
        .replace("duration: 5", "duration: 3");
    p.file("m.yaml", &reshaped);
    let r = p.run(&["plan", "m.yaml", "--check", "plan.json"]);
    r.code(5);
    assert_eq!(
        r.stdout,
        "plan differs from plan.json:\n  + a2 (est. 0.30)\n  - a (was est. 0.50)\n  - b (was est. 0.50)\n\
         estimated cost: 1.00 USD -> 0.30 USD (-0.70)\n\
         1 added, 2 removed, 0 changed; if this is meant, update it: shotlist plan m.yaml -o plan.json\n"
    );
}

#[test]
fn a_file_that_is_not_a_plan_is_refused_with_exit_2() {
    let p = gate();
    p.file("other.json", "{\"shots\": 3}");
    let r = p.run(&["plan", "m.yaml", "--check", "other.json"]);
    r.code(2);
    assert!(
        r.stderr
            .contains("other.json is not a plan written by `shotlist plan -o FILE.json`"),
        "{}",
        r.stderr
    );
    p.run(&["plan", "m.yaml", "--check", "missing.json"])
        .code(2);
    let r = p.run(&["plan", "m.yaml", "--check", "plan.json", "-o", "x.json"]);
    r.code(2);
    assert!(!p.path("x.json").exists());
}

#[test]
fn a_plan_file_not_named_json_is_checked_and_its_update_command_says_json() {
    let p = gate();
    p.run(&["plan", "m.yaml", "--format", "json", "-o", "batch.plan"])
        .code(0);
    p.run(&["plan", "m.yaml", "--check", "batch.plan"]).code(0);
    p.file("m.yaml", &MANIFEST.replace("duration: 5", "duration: 6"));
    let r = p.run(&["plan", "m.yaml", "--check", "batch.plan"]);
    r.code(5);
    assert!(
        r.stdout.contains(
            "  ~ a: request (duration, metadata.parameters.duration); cost 0.50 -> 0.60\n"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .ends_with("update it: shotlist plan m.yaml --format json -o batch.plan\n"),
        "{}",
        r.stdout
    );
}
