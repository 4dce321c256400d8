//! Keys, seeds, defaults, expansion order and the request graph.

use serde_json::json;
use shotlist::plan::Severity;
use shotlist::plan::seed::{canonical_json, derive_seed};

use super::planned;

const STORY: &str = "version: 1\nseed: 9\nshots:\n  - id: opening\n    model: t2v\n    prompt: A door opens.\n  - id: lamp\n    model: i2v\n    prompt: We walk in.\n    media:\n      - { type: first_clip, shot: opening }\n  - id: other\n    model: t2v\n    prompt: Elsewhere.\n";

fn keys(text: &str) -> Vec<(String, String)> {
    planned(text)
        .plan
        .shots
        .into_iter()
        .map(|s| (s.id, s.key))
        .collect()
}

#[test]
fn editing_one_shot_leaves_other_keys_alone() {
    let before = keys(STORY);
    let after = keys(&STORY.replace("Elsewhere.", "Somewhere else."));
    assert_eq!(before[0], after[0]);
    assert_eq!(before[1], after[1]);
    assert_ne!(before[2].1, after[2].1);
}

#[test]
fn changing_an_upstream_changes_its_dependants() {
    let before = keys(STORY);
    let after = keys(&STORY.replace("A door opens.", "A door creaks open."));
    assert_ne!(before[0].1, after[0].1);
    assert_ne!(before[1].1, after[1].1, "lamp's key includes opening's key");
    assert_eq!(before[2], after[2]);
}

#[test]
fn key_is_blake3_of_canonical_body_with_upstream_keys() {
    let p = planned(STORY).plan;
    let opening = &p.shots[0];
    assert_eq!(
        opening.key,
        blake3::hash(canonical_json(&opening.body.value()).as_bytes())
            .to_hex()
            .to_string()
    );
    let lamp = &p.shots[1];
    assert_eq!(lamp.depends_on, [0]);
    assert_eq!(
        lamp.body.value()["metadata"]["input"]["media"],
        json!([{"type": "first_clip", "shot": "opening"}])
    );
    let mut with_key = lamp.body.value();
    with_key["metadata"]["input"]["media"][0]["shot"] = json!(opening.key);
    assert_eq!(
        lamp.key,
        blake3::hash(canonical_json(&with_key).as_bytes())
            .to_hex()
            .to_string()
    );
    let resolved = lamp
        .resolved_body(|id| (id == "opening").then(|| "https://x/o.mp4".to_owned()))
        .unwrap();
    assert_eq!(
        resolved["metadata"]["input"]["media"],
        json!([{"type": "first_clip", "url": "https://x/o.mp4"}])
    );
}

#[test]
fn seeds_follow_the_documented_formula() {
    // Golden values: the formula is part of the product contract.
    assert_eq!(derive_seed(20261124, "teaser-A1-16x9"), 1334735562);
    assert_eq!(derive_seed(9, "opening"), derive_seed(9, "opening"));
    let p = planned(STORY).plan;
    for s in &p.shots {
        let hash = blake3::hash(format!("9:{}", s.id).as_bytes());
        let b = hash.as_bytes();
        let want = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x7FFF_FFFF;
        assert_eq!(s.seed, Some(want));
        assert_eq!(
            s.body.value()["metadata"]["parameters"]["seed"],
            json!(want)
        );
    }
    let explicit = planned(
        "version: 1\nseed: 9\nshots:\n  - id: a\n    model: t2v\n    prompt: x\n    seed: 123\n",
    );
    assert_eq!(explicit.plan.shots[0].seed, Some(123));
    let none = planned("version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: x\n");
    assert_eq!(none.plan.shots[0].seed, None);
    assert!(
        none.plan.shots[0].body.value()["metadata"]["parameters"]
            .get("seed")
            .is_none()
    );
}

#[test]
fn defaults_fill_the_always_sent_fields() {
    let p = planned("version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: x\n");
    let mut want = crate::support::t2v_body("x");
    want["metadata"]["parameters"]["prompt_extend"] = json!(true);
    assert_eq!(p.plan.shots[0].body.value(), want);
    assert!(p.plan.out_dir.ends_with("out/manifest"));
    assert_eq!(p.plan.name, "manifest");
    assert_eq!(p.plan.shots[0].file, "a.mp4");
}

#[test]
fn i2v_drops_a_ratio_from_defaults_silently() {
    let p = planned(
        "version: 1\ndefaults:\n  ratio: \"9:16\"\nshots:\n  - id: a\n    model: i2v\n    prompt: x\n    media:\n      - { type: first_frame, url: \"https://e.com/a.png\" }\n",
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(p.plan.shots[0].ratio, None);
    assert!(
        p.plan.shots[0].body.value()["metadata"]["parameters"]
            .get("ratio")
            .is_none()
    );
}

#[test]
fn expansion_order_is_shot_row_matrix_take() {
    let p = planned(
        "version: 1\nseed: 1\ndata:\n  cities: { rows: [{name: Paris}, {name: Oslo}] }\nshots:\n  - id: \"{{ row.name }}-{{ matrix.r | replace(':', 'x') }}-{{ matrix.l }}\"\n    for_each: cities\n    matrix: { r: [\"16:9\", \"1:1\"], l: [en] }\n    takes: 2\n    model: t2v\n    prompt: \"{{ row.name }} {{ take }}\"\n    ratio: \"{{ matrix.r }}\"\n    prompt_extend: false\n",
    );
    let ids: Vec<&str> = p.plan.shots.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "Paris-16x9-en-take1",
            "Paris-16x9-en-take2",
            "Paris-1x1-en-take1",
            "Paris-1x1-en-take2",
            "Oslo-16x9-en-take1",
            "Oslo-16x9-en-take2",
            "Oslo-1x1-en-take1",
            "Oslo-1x1-en-take2",
        ]
    );
    assert_ne!(
        p.plan.shots[0].seed, p.plan.shots[1].seed,
        "takes get distinct seeds"
    );
    assert_eq!(p.plan.shots[1].body.value()["prompt"], "Paris 2");
    assert_eq!(p.plan.shots[2].ratio.as_deref(), Some("1:1"));
    assert_eq!(
        (p.plan.shots[4].source.as_deref(), p.plan.shots[4].row),
        (Some("cities"), Some(2))
    );
}

#[test]
fn csv_quoting_bom_and_unicode_reach_the_prompt() {
    let (_dir, result) = super::plan_in_temp(
        "version: 1\ndata:\n  p: data/p.csv\n  extra: { rows: [{k: v}] }\nshots:\n  - id: \"s{{ row.n }}\"\n    for_each: p\n    model: t2v\n    prompt: \"{{ row.text }}\"\n",
        &[(
            "data/p.csv",
            "\u{feff}n,text\n1,\"Paris, \"\"la\"\" ville\"\n2,\"two\nlines\"\n3,東京 Zürich\n"
                .as_bytes(),
        )],
    );
    let p = result.unwrap_or_else(|r| panic!("{}", shotlist::plan::render_human(&r.diagnostics)));
    let prompts: Vec<String> = p
        .plan
        .shots
        .iter()
        .map(|s| s.body.value()["prompt"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        prompts,
        ["Paris, \"la\" ville", "two\nlines", "東京 Zürich"]
    );
}

#[test]
fn prompt_files_and_includes_read_inside_the_folder() {
    let (_dir, result) = super::plan_in_temp(
        "version: 1\nvars: { brand: Acme }\nshots:\n  - id: a\n    model: t2v\n    prompt_file: prompts/a.txt\n",
        &[
            (
                "prompts/a.txt",
                b"{% include 'prompts/style.txt' %} A lamp for {{ id }}.",
            ),
            ("prompts/style.txt", b"{{ vars.brand }} style."),
        ],
    );
    let p = result.unwrap_or_else(|r| panic!("{}", shotlist::plan::render_human(&r.diagnostics)));
    assert_eq!(
        p.plan.shots[0].body.value()["prompt"],
        "Acme style. A lamp for a."
    );

    let r = super::rejected(
        "version: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: \"{% include '../x.txt' %}\"\n",
        &[],
    );
    assert!(
        r.diagnostics[0]
            .message
            .contains("outside the manifest's folder"),
        "{}",
        r.diagnostics[0].message
    );
}

#[test]
fn chains_and_topological_order() {
    let p = planned(
        "version: 1\ndefaults: { model: i2v, duration: 5 }\nshots:\n  - id: c\n    prompt: x\n    media: [{ type: first_clip, shot: b }]\n  - id: b\n    prompt: x\n    media: [{ type: first_clip, shot: a }]\n  - id: a\n    model: t2v\n    prompt: x\n",
    )
    .plan;
    let order: Vec<&str> = p
        .topological_order()
        .iter()
        .map(|&i| p.shots[i].id.as_str())
        .collect();
    assert_eq!(order, ["a", "b", "c"]);
    assert_eq!(p.chain_lengths(), [1, 2, 3]);
}

#[test]
fn big_tables_keep_row_order_and_report_every_row() {
    let mut csv = String::from("n,seconds\n");
    for i in 1..=5000 {
        csv.push_str(&format!("{i},{}\n", if i == 4500 { "x" } else { "5" }));
    }
    let manifest = "version: 1\nseed: 3\ndata: { t: t.csv }\nshots:\n  - id: \"s{{ row.n }}\"\n    for_each: t\n    model: t2v\n    prompt_extend: true\n    prompt: \"n={{ row.n }}\"\n    duration: \"{{ row.seconds }}\"\n";
    let r = super::rejected(manifest, &[("t.csv", csv.as_bytes())]);
    let errors: Vec<_> = r
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].data.as_ref().unwrap().row, 4500);
    // The seed warning repeats for every shot: it is shown once, with the count.
    let warnings: Vec<_> = r
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .help
            .as_deref()
            .unwrap()
            .ends_with("(4998 more shots have this warning)"),
        "{:?}",
        warnings[0].help
    );

    let (_dir, ok) = super::plan_in_temp(
        manifest,
        &[("t.csv", csv.replace("4500,x", "4500,5").as_bytes())],
    );
    let p = ok
        .unwrap_or_else(|r| panic!("{}", shotlist::plan::render_human(&r.diagnostics)))
        .plan;
    assert_eq!(p.shots.len(), 5000);
    for (i, s) in p.shots.iter().enumerate() {
        assert_eq!(s.id, format!("s{}", i + 1));
        assert_eq!(s.row, Some(i + 1));
        assert_eq!(s.seed, Some(derive_seed(3, &s.id)));
    }
}
