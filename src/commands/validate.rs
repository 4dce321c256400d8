//! `shotlist validate`: plan manifests without sending anything; exit 2 when any has an error.

use crate::cli::{ValidateArgs, ValidateFormat};
use crate::commands::Global;
use crate::error::{Error, exit};
use crate::plan::{self, count};

pub fn run(global: &Global, args: &ValidateArgs) -> Result<u8, Error> {
    let mut all = Vec::new();
    let mut summaries = Vec::new();
    let mut invalid = false;
    for manifest in &args.manifests {
        // The config a run of it would read must be valid too (exit 2 otherwise).
        let config = crate::config::Config::load(global.config.as_deref(), manifest)?;
        if global.verbose > 0 {
            eprintln!("{}: {}", manifest.display(), config.describe());
        }
        match plan::load_and_plan(manifest) {
            Ok(planned) => {
                summaries.push(format!(
                    "{}: valid, {}, {}",
                    manifest.display(),
                    count(planned.plan.shots.len(), "shot"),
                    count(planned.warnings.len(), "warning")
                ));
                all.extend(planned.warnings);
            }
            Err(rejected) => {
                invalid = true;
                let (causes, instances) = plan::error_counts(&rejected.diagnostics);
                let shots = if instances > causes {
                    format!(" ({instances} counting each shot)")
                } else {
                    String::new()
                };
                summaries.push(format!(
                    "{}: invalid, {}{shots}",
                    manifest.display(),
                    count(causes, "error")
                ));
                all.extend(rejected.diagnostics);
            }
        }
    }
    match args.format {
        ValidateFormat::Human => {
            let color = crate::settings::stderr_colour();
            eprint!("{}", plan::render_human_with(&all, color));
            if !global.quiet || invalid {
                for s in summaries {
                    crate::outln!("{s}");
                }
            }
        }
        ValidateFormat::Json => crate::outln!("{}", plan::render_json(&all)),
        ValidateFormat::Github => super::print(&plan::render_github(&all))?,
    }
    Ok(if invalid { exit::INVALID } else { exit::OK })
}
