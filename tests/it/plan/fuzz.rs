//! Arbitrary YAML, CSV and template text never panics the loader or planner.

use proptest::prelude::*;

fn yaml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("version: 1\n".to_owned()),
        Just("shots:\n".to_owned()),
        Just("  - id: a\n".to_owned()),
        Just("    model: i2v\n".to_owned()),
        Just("    prompt: x\n".to_owned()),
        Just("    media: [{type: first_clip, shot: a}]\n".to_owned()),
        Just("    duration: \"{{ row.x }}\"\n".to_owned()),
        Just("defaults: &d {model: t2v}\n".to_owned()),
        Just("  - <<: *d\n".to_owned()),
        Just("data: {t: {rows: [{x: 1}]}}\n".to_owned()),
        Just("    for_each: t\n".to_owned()),
        "[ -~\n]{0,30}".prop_map(|s| s),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_yaml_never_panics(parts in prop::collection::vec(yaml_fragment(), 0..12)) {
        let text = parts.concat();
        let _ = shotlist::plan::plan_text(std::path::Path::new("/nonexistent/m.yaml"), &text);
    }

    #[test]
    fn arbitrary_csv_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let manifest = "version: 1\ndata:\n  t: t.csv\nshots:\n  - id: \"r{{ row.a }}\"\n    for_each: t\n    model: t2v\n    prompt: \"{{ row.b }}\"\n";
        let _ = super::plan_in_temp(manifest, &[("t.csv", &bytes)]);
        let _ = shotlist::manifest::read_csv_text("t", &bytes);
    }

    #[test]
    fn arbitrary_templates_never_panic(t in "[ -~]{0,40}") {
        let manifest = format!(
            "version: 1\nshots:\n  - id: {id:?}\n    model: t2v\n    prompt: {t:?}\n    duration: {t:?}\n",
            id = format!("a{t}")
        );
        let _ = shotlist::plan::plan_text(std::path::Path::new("/nonexistent/m.yaml"), &manifest);
    }
}
