//! Exact lines and columns, data rows, and all problems reported at once.

use shotlist::plan::Severity;

use super::rejected;

#[test]
fn unknown_key_points_at_the_key() {
    let r = rejected(
        "version: 1\nshots:\n  - id: a\n    model: t2v\n    promt: hi\n",
        &[],
    );
    let d = &r.diagnostics[0];
    assert_eq!((d.line, d.column), (Some(5), Some(5)));
    assert_eq!(d.message, "unknown key `promt`");
    assert!(
        d.help
            .as_deref()
            .unwrap()
            .starts_with("did you mean `prompt`?")
    );
}

#[test]
fn every_problem_in_one_report_with_its_place() {
    let r = rejected(
        "version: 1\ndefaults:\n  model: t2v\nshots:\n  - id: a\n    prompt: A cat.\n    duration: 1\n    resolution: 4K\n  - id: b\n    model: i2v\n    prompt: A dog.\n  - id: a\n    prompt: x\n    ratio: \"2:1\"\n",
        &[],
    );
    let mut got: Vec<(usize, usize, String)> = r
        .diagnostics
        .iter()
        .map(|d| (d.line.unwrap(), d.column.unwrap(), d.message.clone()))
        .collect();
    got.sort();
    let want = [
        (7, 15, "duration: 1 s is outside 2-15 s for t2v"),
        (8, 17, "resolution: `4K` is not 720P or 1080P"),
        (9, 9, "i2v needs media"),
        (12, 9, "duplicate id `a`"),
        (
            14,
            12,
            "ratio: `2:1` is not one of 16:9, 9:16, 1:1, 4:3, 3:4",
        ),
    ];
    let want: Vec<(usize, usize, String)> = want
        .iter()
        .map(|(l, c, m)| (*l, *c, m.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn templated_scalar_names_the_csv_row() {
    let r = rejected(
        "version: 1\ndata:\n  products: data/p.csv\nshots:\n  - id: \"p-{{ row.sku }}\"\n    for_each: products\n    model: t2v\n    prompt: x\n    duration: \"{{ row.seconds }}\"\n",
        &[(
            "data/p.csv",
            b"sku,seconds,note\nA,5,x\nB,6,\"two\nlines\"\nC,5,x\nD,5,x\nE,5,x\nF,5,x\nG,5s,x\n",
        )],
    );
    assert_eq!(r.diagnostics.len(), 1);
    let d = &r.diagnostics[0];
    assert_eq!(
        d.message,
        "duration: \"5s\" from data/p.csv row 7 (line 9) is not a whole number"
    );
    assert_eq!((d.line, d.column), (Some(9), Some(15)));
    assert_eq!(d.shot.as_deref(), Some("p-G"));
    let data = d.data.as_ref().unwrap();
    assert_eq!((data.table.as_str(), data.row), ("products", 7));
    assert_eq!(
        data.file.as_deref(),
        Some(std::path::Path::new("data/p.csv"))
    );
}

#[test]
fn ragged_and_non_utf8_csv_rows_are_named() {
    let manifest = "version: 1\ndata:\n  t: data/t.csv\nshots:\n  - id: \"x-{{ row.a }}\"\n    for_each: t\n    model: t2v\n    prompt: x\n";
    let r = rejected(manifest, &[("data/t.csv", b"a,b\n1,2\n3,4\n5\n")]);
    assert_eq!(r.diagnostics.len(), 1, "no cascade from the broken table");
    let d = &r.diagnostics[0];
    assert!(
        d.message
            .contains("row 3 has 1 fields but the header has 2"),
        "{}",
        d.message
    );
    assert_eq!((d.line, d.column), (Some(3), Some(6)));
    assert_eq!(d.data.as_ref().unwrap().row, 3);

    let r = rejected(manifest, &[("data/t.csv", b"a,b\n1,\xe9t\xe9\n")]);
    assert!(
        r.diagnostics[0]
            .message
            .contains("row 1, column 2, is not valid UTF-8")
    );
}

/// The identical-bodies warning advises a batch `seed:` and names `prompt_extend` in the same
/// breath; following it earns no second warning. A seed written on the shot still does.
#[test]
fn following_the_identical_bodies_advice_earns_no_other_warning() {
    let takes = "version: 1\nshots:\n  - id: a\n    model: t2v\n    takes: 2\n    prompt: A cat.\n";
    let p = super::planned(takes);
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    let help = p.warnings[0].help.as_deref().unwrap();
    assert!(
        help.contains("`seed:`") && help.contains("prompt_extend: false"),
        "{help}"
    );
    let seeded = super::planned(&takes.replace("version: 1\n", "version: 1\nseed: 7\n"));
    assert!(seeded.warnings.is_empty(), "{:?}", seeded.warnings);
    let own = super::planned(&takes.replace("takes: 2\n", "takes: 2\n    seed: 3\n"));
    assert!(
        own.warnings
            .iter()
            .any(|d| d.message.contains("prompt_extend is on with a seed")),
        "{:?}",
        own.warnings
    );
}

#[test]
fn warnings_alone_do_not_reject() {
    let p = super::planned(
        "version: 1\nseed: 1\nshots:\n  - id: a\n    model: t2v\n    prompt: Shot 1 [0-3s] a. Shot 2 [3-9s] b.\n",
    );
    let messages: Vec<&str> = p.warnings.iter().map(|d| d.message.as_str()).collect();
    assert!(p.warnings.iter().all(|d| d.severity == Severity::Warning));
    assert!(
        messages.iter().any(|m| m.contains("ending at 9s")),
        "{messages:?}"
    );
}

#[test]
fn alias_values_point_at_the_use_site() {
    let r = rejected(
        "version: 1\nvars:\n  base: &b {model: t2v, duration: 30}\nshots:\n  - <<: *b\n    id: a\n    prompt: x\n",
        &[],
    );
    let d = &r.diagnostics[0];
    assert!(d.message.starts_with("duration: 30 s"), "{}", d.message);
    assert_eq!(
        d.line,
        Some(5),
        "merged values are reported at the `<<` entry"
    );
}
