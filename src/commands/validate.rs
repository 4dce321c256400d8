//! `shotlist validate`: plan manifests without sending anything; exit 2 when any has an error.
//!
//! Problems are gathered once into [`Problem`]s (grouped as the human report groups them,
//! with the end of their span and the data row behind them), then handed to one small
//! renderer per machine format, as ruff does: `github` (annotations, capped as GitHub caps
//! them), `markdown` (a step summary with every problem) and `sarif` (code scanning).

mod github;
mod markdown;
mod sarif;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::cli::{ValidateArgs, ValidateFormat};
use crate::commands::Global;
use crate::error::{Error, exit};
use crate::plan::report::{grouped, label_text, snippet_source, span_at};
use crate::plan::{self, Diagnostic, Severity, count};

/// One manifest's verdict, as the summary lines and the Markdown header tell it.
pub struct Outcome {
    pub manifest: PathBuf,
    pub valid: bool,
    pub shots: usize,
    /// Error causes (a cause repeated for many shots counts once) and every instance.
    pub errors: usize,
    pub instances: usize,
    pub warnings: usize,
}

impl Outcome {
    fn line(&self) -> String {
        if self.valid {
            format!(
                "{}: valid, {}, {}",
                self.manifest.display(),
                count(self.shots, "shot"),
                count(self.warnings, "warning")
            )
        } else {
            let shots = if self.instances > self.errors {
                format!(" ({} counting each shot)", self.instances)
            } else {
                String::new()
            };
            format!(
                "{}: invalid, {}{shots}",
                self.manifest.display(),
                count(self.errors, "error")
            )
        }
    }
}

/// A diagnostic placed for machines: 1-based positions, the end exclusive (SARIF's and
/// ruff's convention), on the line it starts on.
pub struct Problem<'a> {
    pub diagnostic: &'a Diagnostic,
    /// `shot `a` and 3 more shots, data/p.csv row 2 (line 3)`; `None` when there is nothing
    /// to add to the message.
    pub context: Option<String>,
    pub end_column: Option<usize>,
    /// The CSV file behind the problem (resolved against the manifest's folder) and its line.
    pub data_file: Option<(PathBuf, Option<usize>)>,
}

impl Problem<'_> {
    /// The message with its context in brackets, as the annotations show it.
    pub fn text(&self) -> String {
        match &self.context {
            Some(c) => format!("{} [{c}]", self.diagnostic.message),
            None => self.diagnostic.message.clone(),
        }
    }

    pub fn level(&self) -> &'static str {
        match self.diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// Groups `diagnostics` and finds where each one's span ends in its manifest.
pub fn problems(diagnostics: &[Diagnostic]) -> Vec<Problem<'_>> {
    let mut sources: HashMap<PathBuf, Option<String>> = HashMap::new();
    grouped(diagnostics)
        .into_iter()
        .map(|(d, more)| {
            let end_column = match (d.line, d.column) {
                (Some(line), Some(column)) => sources
                    .entry(d.file.clone())
                    .or_insert_with(|| snippet_source(&d.file))
                    .as_deref()
                    .and_then(|text| {
                        let (start, len) = span_at(text, line, column)?;
                        Some(column + text.get(start..start + len)?.chars().count())
                    }),
                _ => None,
            };
            let context =
                (d.shot.is_some() || d.data.is_some() || more > 0).then(|| label_text(d, more));
            let data_file = d.data.as_ref().and_then(|data| {
                let csv = data.file.as_ref()?;
                Some((
                    d.file.parent().unwrap_or(Path::new("")).join(csv),
                    data.line,
                ))
            });
            Problem {
                diagnostic: d,
                context,
                end_column,
                data_file,
            }
        })
        .collect()
}

pub fn run(global: &Global, args: &ValidateArgs) -> Result<u8, Error> {
    let mut all = Vec::new();
    let mut outcomes = Vec::new();
    for manifest in &args.manifests {
        // The config a run of it would read must be valid too (exit 2 otherwise).
        let config = crate::config::Config::load(global.config.as_deref(), manifest)?;
        if global.verbose > 0 {
            eprintln!("{}: {}", manifest.display(), config.describe());
        }
        let (valid, shots, diagnostics) = match plan::load_and_plan(manifest) {
            Ok(planned) => (true, planned.plan.shots.len(), planned.warnings),
            Err(rejected) => (false, 0, rejected.diagnostics),
        };
        let warnings = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        // One error per cause, however many shots it reaches.
        let (errors, instances) = plan::error_counts(&diagnostics);
        outcomes.push(Outcome {
            manifest: manifest.clone(),
            valid,
            shots,
            errors,
            instances,
            warnings,
        });
        all.extend(diagnostics);
    }
    let invalid = outcomes.iter().any(|o| !o.valid);
    match args.format {
        ValidateFormat::Human => {
            let color = crate::settings::stderr_colour();
            eprint!("{}", plan::render_human_with(&all, color));
            if !global.quiet || invalid {
                for o in &outcomes {
                    crate::outln!("{}", o.line());
                }
            }
        }
        ValidateFormat::Json => crate::outln!("{}", plan::render_json(&all)),
        ValidateFormat::Github => super::print(&github::render(&problems(&all)))?,
        ValidateFormat::Markdown => {
            super::print(&markdown::render(&outcomes, &problems(&all)))?;
        }
        ValidateFormat::Sarif => super::print(&sarif::render(&problems(&all)))?,
    }
    Ok(if invalid { exit::INVALID } else { exit::OK })
}
