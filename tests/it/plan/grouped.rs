//! One message per cause: a mistake in a template is found once per expanded shot, and is shown
//! once with the count of shots it affects; what only follows from it is not shown at all. The
//! JSON report still lists every shot's error.

use crate::support::{Project, Run};

/// A project of 20 products with `manifest` as `m.yaml`; `validate` of it, which must fail.
fn validate(manifest: &str) -> (Run, Run) {
    let mut csv = String::from("sku,name,seconds\n");
    for i in 0..20 {
        csv.push_str(&format!("p{i},Product {i},5\n"));
    }
    let p = Project::new();
    p.file("data/products.csv", &csv).file("m.yaml", manifest);
    let human = p.run(&["validate", "m.yaml"]);
    human.code(2);
    let json = p.run(&["validate", "--format", "json", "m.yaml"]);
    json.code(2);
    (human, json)
}

fn errors_in(json: &Run) -> usize {
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    v.as_array().unwrap().len()
}

const HEAD: &str =
    "version: 1\ndata:\n  products: data/products.csv\ndefaults:\n  prompt_extend: false\nshots:\n";

#[test]
fn an_id_template_without_the_matrix_is_one_error_and_its_references_follow_from_it() {
    let manifest = format!(
        "{HEAD}  - id: \"teaser-{{{{ row.sku }}}}\"\n    for_each: products\n    model: t2v\n\
         \x20   matrix: {{ ratio: [\"16:9\", \"9:16\"] }}\n    ratio: \"{{{{ matrix.ratio }}}}\"\n\
         \x20   prompt: \"{{{{ row.name }}}}\"\n\
         \x20 - id: \"follow-{{{{ row.sku }}}}\"\n    for_each: products\n    model: i2v\n\
         \x20   takes: 2\n    prompt: more\n\
         \x20   media:\n      - {{ type: first_clip, shot: \"teaser-{{{{ row.sku }}}}-16x9\" }}\n"
    );
    let (human, json) = validate(&manifest);
    assert_eq!(
        errors_in(&json),
        20,
        "every duplicate, no reference: {}",
        json.stdout
    );
    insta::assert_snapshot!(format!("{}{}", human.stderr, human.stdout));
}

#[test]
fn a_shot_reference_typo_is_one_error() {
    let manifest = format!(
        "{HEAD}  - id: \"base-{{{{ row.sku }}}}\"\n    for_each: products\n    model: t2v\n\
         \x20   prompt: \"{{{{ row.name }}}}\"\n    duration: 5\n\
         \x20 - id: \"next-{{{{ row.sku }}}}\"\n    for_each: products\n    model: i2v\n\
         \x20   prompt: more\n\
         \x20   media:\n      - {{ type: first_clip, shot: \"bsae-{{{{ row.sku }}}}\" }}\n"
    );
    let (human, json) = validate(&manifest);
    assert_eq!(errors_in(&json), 20);
    insta::assert_snapshot!(format!("{}{}", human.stderr, human.stdout));
}

#[test]
fn a_refused_duration_is_not_reported_again_where_it_is_used() {
    let manifest = format!(
        "{HEAD}  - id: \"base-{{{{ row.sku }}}}\"\n    for_each: products\n    model: i2v\n\
         \x20   prompt: \"{{{{ row.name }}}}\"\n\
         \x20   media:\n      - {{ type: first_frame, url: \"https://example.com/a.png\" }}\n\
         \x20   duration: 20\n\
         \x20 - id: \"next-{{{{ row.sku }}}}\"\n    for_each: products\n    model: i2v\n\
         \x20   prompt: more\n\
         \x20   media:\n      - {{ type: first_clip, shot: \"base-{{{{ row.sku }}}}\" }}\n"
    );
    let (human, json) = validate(&manifest);
    assert_eq!(
        errors_in(&json),
        20,
        "no downstream \"lasts 20 s\": {}",
        json.stdout
    );
    assert!(!human.stderr.contains("lasts"), "{}", human.stderr);
    insta::assert_snapshot!(format!("{}{}", human.stderr, human.stdout));
}

#[test]
fn a_when_that_holds_for_no_row_is_said() {
    let manifest = format!(
        "{HEAD}  - id: \"a-{{{{ row.sku }}}}\"\n    for_each: products\n    model: t2v\n\
         \x20   when: \"row.name == 'product 1'\"\n    prompt: x\n\
         \x20 - id: \"b-{{{{ row.sku }}}}\"\n    for_each: products\n    model: t2v\n\
         \x20   when: \"row.name == 'Product 1'\"\n    prompt: x\n"
    );
    let p = Project::new();
    p.file(
        "data/products.csv",
        "sku,name\np0,Product 0\np1,Product 1\n",
    )
    .file("m.yaml", &manifest);
    let r = p.run(&["validate", "--format", "json", "m.yaml"]);
    r.code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let warnings = v.as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v:#}");
    assert_eq!(
        warnings[0]["message"],
        "when: holds for none of the 2 rows of `products`, so this shot makes no video"
    );
    assert_eq!(warnings[0]["line"], 10);
}
