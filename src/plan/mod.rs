//! The plan stage: raw manifest → validated request graph. Pure: no network, no clock.
//!
//! A pipeline, each stage in its own file, read top to bottom in [`plan_manifest`]:
//! tables → compile → expand → (per shot: check → body) → link. Every stage reports to one
//! [`diagnostic::Sink`], so all problems of a manifest are collected at once.

mod body;
mod check;
mod compile;
pub(crate) mod diagnostic;
mod expand;
mod graph;
mod instance;
mod limits;
mod link;
pub mod model;
pub(crate) mod report;
mod same_body;
pub mod seed;
pub mod shard;
mod tables;
mod totals;

pub use body::Body;
pub use diagnostic::{DataLocation, Diagnostic, Severity};
pub use graph::{InputVideo, Plan, PlannedShot, ShotDoc};
pub use limits::{DEFAULT_MAX_FILE_MB, DEFAULT_MAX_SHOTS, Limits, MAX_SHOTS_ENV};
pub use report::{count, error_counts, render_human_with, render_json};
pub use totals::{CostTotals, ToSend, Totals, TotalsLine};

use std::path::{Path, PathBuf};

use crate::manifest::RawManifest;
use diagnostic::{Annotate as _, Loc, Sink};
use link::Collected;

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
    let bytes =
        crate::manifest::read_regular(manifest, &name, limits.max_file_bytes).map_err(|e| {
            let help = match &e {
                crate::manifest::FileError::Io { .. } => {
                    "check the manifest's path (relative to the working directory)".to_owned()
                }
                _ => e.help(),
            };
            reject(format!("cannot read the manifest: {e}"), help)
        })?;
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
    let plan = plan_manifest(manifest, text, &raw, limits, &mut diags);
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

/// Plans a parsed manifest, stage by stage. Problems go to `sink`; the plan is only
/// meaningful when the sink holds no errors.
fn plan_manifest(
    manifest: &Path,
    text: &str,
    raw: &RawManifest,
    limits: &Limits,
    sink: &mut Sink,
) -> Plan {
    let header = Header::of(manifest, raw, sink);
    let tables = tables::load(&header.dir, raw, limits.max_file_bytes, sink);
    let collected = match compile::compile(raw, text, &header.dir, &tables, limits, sink) {
        Some(program) => {
            let per_shot = |inst: instance::Instance, sink: &mut Sink, out: &mut Collected| {
                check::check(&inst, sink);
                let body = body::body(&inst);
                out.push(inst, body);
            };
            expand::expand(&program, raw.seed.as_ref(), sink, &per_shot)
        }
        None => Collected::default(),
    };
    if raw.shots.value.is_empty() {
        sink.error(Loc::of(&raw.shots), "the manifest has no shots")
            .help("add at least one entry under `shots:`");
    }
    // The tables and templates are no longer needed: they are freed before linking.
    drop(tables);
    let shots = link::link(collected, sink);
    Plan {
        name: header.name,
        manifest: manifest.to_owned(),
        out_dir: header.out_dir,
        shots,
        batch_seed: raw.seed.as_ref().map(|s| s.value),
    }
}

/// What the manifest says about itself: its version, name, folder and output folder.
struct Header {
    /// The manifest's folder: data and templates are read inside it.
    dir: PathBuf,
    name: String,
    out_dir: PathBuf,
}

impl Header {
    fn of(manifest: &Path, raw: &RawManifest, sink: &mut Sink) -> Header {
        let dir = match manifest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        if raw.version.value != 1 {
            sink.error(
                Loc::of(&raw.version),
                format!("unsupported manifest version {}", raw.version.value),
            )
            .help("write `version: 1`");
        }
        let name = match &raw.name {
            Some(n) => {
                if !check::is_safe_component(&n.value) {
                    sink.error(
                        Loc::of(n),
                        format!("name `{}` is not a usable folder name", n.value),
                    )
                    .help("use letters, digits, `.`, `_` and `-`, no `/` or `..`");
                }
                n.value.clone()
            }
            None => manifest
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "shotlist".into()),
        };
        let base = manifest.parent().unwrap_or(Path::new(""));
        let out_dir = match raw.output.as_ref().and_then(|o| o.dir.as_ref()) {
            Some(d) => base.join(&d.value),
            None => base.join("out").join(&name),
        };
        Header { dir, name, out_dir }
    }
}

/// Renders diagnostics for a terminal (miette graphical, with source snippets), without color
/// so the output is deterministic.
pub fn render_human(diagnostics: &[Diagnostic]) -> String {
    render_human_with(diagnostics, false)
}
