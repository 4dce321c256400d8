//! The plan stage: raw manifest → validated request graph. Pure: no network, no clock.
//!
//! [`load_and_plan`] reads the manifest and its tables, expands every shot over rows, matrix
//! and takes, renders templates, applies defaults, derives seeds, builds the exact request
//! bodies and keys, and checks every rule of the reference, collecting all problems at once.

mod body;
mod check;
mod diagnostic;
mod expand;
mod graph;
mod limits;
mod links;
pub mod model;
mod render;
mod same_body;
pub mod seed;
pub mod shard;
mod totals;

pub use body::Body;
pub use diagnostic::DataLocation;
pub use graph::{Plan, PlannedShot};
pub use limits::{DEFAULT_MAX_FILE_MB, DEFAULT_MAX_SHOTS, Limits, MAX_SHOTS_ENV};
pub use render::{render_github, render_human_with, render_json};
pub use totals::{CostTotals, ToSend, Totals, TotalsLine};

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
    /// The data row that produced the problem, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DataLocation>,
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
pub fn load_and_plan(manifest: &Path) -> Result<Planned, Rejected> {
    let limits = limits(manifest)?;
    let reject = |message: String, help: String| Rejected {
        diagnostics: vec![Diagnostic::error(manifest, None, message).with_help(help)],
    };
    let name = manifest.display().to_string();
    let bytes = crate::manifest::read_regular(manifest, &name, limits.max_file_bytes)
        .map_err(|e| reject(format!("cannot read the manifest: {e}"), e.help()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        reject(
            "the manifest is not valid UTF-8".into(),
            "save the file as UTF-8".into(),
        )
    })?;
    plan_with(manifest, &text, &limits)
}

/// Plans manifest `text` as if read from `manifest` (its folder anchors data and templates).
pub fn plan_text(manifest: &Path, text: &str) -> Result<Planned, Rejected> {
    plan_with(manifest, text, &limits(manifest)?)
}

fn limits(manifest: &Path) -> Result<Limits, Rejected> {
    Limits::from_env().map_err(|message| Rejected {
        diagnostics: vec![
            Diagnostic::error(manifest, None, message)
                .with_help("unset it to use the default, or see docs/planning.md for the caps"),
        ],
    })
}

fn plan_with(manifest: &Path, text: &str, limits: &Limits) -> Result<Planned, Rejected> {
    let raw = match crate::manifest::parse_manifest(text) {
        Ok(raw) => raw,
        Err(errors) => {
            let diagnostics = errors
                .into_iter()
                .map(|e| {
                    let mut d = Diagnostic::error(manifest, None, e.message);
                    d.line = e.line;
                    d.column = e.column;
                    d.help = e.help;
                    d
                })
                .collect();
            return Err(Rejected { diagnostics });
        }
    };
    let mut diags = diagnostic::Sink::new(manifest);
    let plan = expand::plan(manifest, &raw, limits, &mut diags);
    let mut diagnostics = diags.finish();
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        Err(Rejected { diagnostics })
    } else {
        let mut same = diagnostic::Sink::new(manifest);
        same_body::warn_identical_bodies(&plan.shots, &mut same);
        diagnostics.extend(same.finish());
        Ok(Planned {
            plan,
            warnings: diagnostics,
        })
    }
}

/// Renders diagnostics for a terminal (miette graphical, with source snippets), without color
/// so the output is deterministic.
pub fn render_human(diagnostics: &[Diagnostic]) -> String {
    render_human_with(diagnostics, false)
}
