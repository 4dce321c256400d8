//! Integration tests: the planner (`validate`, `plan`, `schema`) through the library and the binary.

mod cli;
mod edit_hostile;
mod examples;
mod fixtures;
mod folder;
mod fuzz;
mod graph;
mod grouped;
mod hostile;
mod locations;

use std::path::Path;

use shotlist::plan::{Planned, Rejected};

/// Plans manifest text written into a fresh temp folder (with extra files beside it).
pub fn plan_in_temp(
    manifest: &str,
    files: &[(&str, &[u8])],
) -> (tempfile::TempDir, Result<Planned, Rejected>) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (rel, bytes) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let path = dir.path().join("manifest.yaml");
    std::fs::write(&path, manifest).unwrap();
    let result = shotlist::plan::load_and_plan(&path);
    (dir, result)
}

#[track_caller]
pub fn planned(manifest: &str) -> Planned {
    match plan_in_temp(manifest, &[]).1 {
        Ok(p) => p,
        Err(r) => panic!(
            "expected a valid manifest:\n{}",
            shotlist::plan::render_human(&r.diagnostics)
        ),
    }
}

#[track_caller]
pub fn rejected(manifest: &str, files: &[(&str, &[u8])]) -> Rejected {
    match plan_in_temp(manifest, files).1 {
        Ok(p) => panic!(
            "expected errors, got a plan of {} shots",
            p.plan.shots.len()
        ),
        Err(r) => r,
    }
}

/// The repository root: tests run there, so paths in snapshots stay relative.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
