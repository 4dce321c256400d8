//! Arbitrary YAML, CSV and template text never panics the loader or planner, including the
//! shapes an adversary would try: YAML 1.1 scalars, paths out of the folder, special files,
//! unterminated quotes, long loops and big strings.

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
        Just("data: {t: {rows: [{n: NO, y: 1.10, x: 0o17}, {n: ~, y: .inf}]}}\n".to_owned()),
        Just("data: {t: ../t.csv, u: /dev/zero, v: /proc/self/environ}\n".to_owned()),
        Just("vars: {a: NO, b: on, c: 1.10, d: [y, n, 0x1F], e: {f: ~}}\n".to_owned()),
        Just("    matrix: {m: [NO, 1.10, [x]]}\n".to_owned()),
        Just("    for_each: t\n".to_owned()),
        Just("    watermark: on\n".to_owned()),
        Just("output: {file: \"{{ id }}.mp4\"}\n".to_owned()),
        "[ -~\n]{0,30}".prop_map(|s| s),
    ]
}

fn template_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{% for i in range(100000) %}".to_owned()),
        Just("{% endfor %}".to_owned()),
        Just("{{ 'x' * 100000 }}".to_owned()),
        Just("{{ [0] * 100000 }}".to_owned()),
        Just("{% include '../x' %}".to_owned()),
        Just("{% include 'inc.txt' %}".to_owned()),
        Just("{{ vars.a }}{{ row.a }}".to_owned()),
        "[ -~]{0,12}".prop_map(|s| s),
    ]
}

fn csv_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"a,b\n".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
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
    fn arbitrary_csv_never_panics(parts in prop::collection::vec(csv_fragment(), 0..24)) {
        let bytes = parts.concat();
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

    #[test]
    fn hostile_templates_and_files_end_in_a_result(
        parts in prop::collection::vec(template_fragment(), 0..6),
        include in prop::collection::vec(template_fragment(), 0..3),
    ) {
        let t = parts.concat();
        let manifest = format!(
            "version: 1\nvars: {{a: 1.10}}\ndata: {{t: {{rows: [{{a: NO}}]}}}}\nshots:\n  - id: a{{{{ row.a }}}}\n    for_each: t\n    model: t2v\n    prompt: {t:?}\n    output: {t:?}\n",
        );
        let include = include.concat();
        let _ = super::plan_in_temp(&manifest, &[("inc.txt", include.as_bytes())]);
    }
}
