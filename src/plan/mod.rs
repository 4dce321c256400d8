//! The plan stage: raw manifest → validated request graph. Pure: no network, no clock.

mod graph;

pub use graph::{Plan, PlannedShot};

use std::path::Path;

/// A problem found while loading or planning; errors and warnings alike.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub file: std::path::PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub shot: Option<String>,
    pub help: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A manifest that planned without errors.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub warnings: Vec<Diagnostic>,
}

/// A manifest with at least one error; `diagnostics` holds errors and warnings.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads a manifest (and the tables it names) and plans it.
pub fn load_and_plan(_manifest: &Path) -> Result<Planned, Rejected> {
    todo!("issue 2")
}

/// Renders diagnostics for a terminal (miette graphical, with source snippets).
pub fn render_human(_diagnostics: &[Diagnostic]) -> String {
    todo!("issue 2")
}
