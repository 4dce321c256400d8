//! Every file in tests/fixtures/invalid/ renders its diagnostics to a snapshot.
//! `warn-*.yaml` plan with warnings only; every other file is rejected.

use shotlist::plan::{Severity, load_and_plan, render_human};

#[test]
fn fixtures_cover_every_rule_family() {
    let count = std::fs::read_dir(super::root().join("tests/fixtures/invalid"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "yaml")
        })
        .count();
    assert!(count >= 30, "only {count} fixtures");
}

#[test]
fn invalid_fixtures_snapshot() {
    insta::glob!("../../fixtures/invalid", "*.yaml", |path| {
        let rel = path.strip_prefix(super::root()).unwrap_or(path);
        let name = rel.file_name().unwrap().to_string_lossy().into_owned();
        let diagnostics = match load_and_plan(rel) {
            Ok(planned) => {
                assert!(name.starts_with("warn-"), "{name} planned without errors");
                assert!(!planned.warnings.is_empty(), "{name}: expected a warning");
                planned.warnings
            }
            Err(rejected) => {
                assert!(!name.starts_with("warn-"), "{name} should only warn");
                rejected.diagnostics
            }
        };
        for d in &diagnostics {
            assert_eq!(d.file, rel, "{name}: diagnostics name the manifest");
            assert!(
                d.line.is_some() && d.column.is_some(),
                "{name}: no location for {}",
                d.message
            );
        }
        if !name.starts_with("warn-") {
            assert!(diagnostics.iter().any(|d| d.severity == Severity::Error));
        }
        insta::assert_snapshot!(render_human(&diagnostics));
    });
}
