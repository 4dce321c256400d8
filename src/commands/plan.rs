//! `shotlist plan`: the request graph a manifest expands to, with totals and estimated cost.

use std::fmt::Write as _;
use std::io::{BufWriter, IsTerminal, Write};

use crate::cli::{PlanArgs, TextOrJson};
use crate::commands::Global;
use crate::config::Config;
use crate::error::{Error, exit};
use crate::plan::{self, Plan, Totals};

pub fn run(global: &Global, args: &PlanArgs) -> Result<u8, Error> {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let planned = match plan::load_and_plan(&args.manifest) {
        Ok(p) => p,
        Err(rejected) => {
            eprint!("{}", plan::render_human_with(&rejected.diagnostics, color));
            return Ok(exit::INVALID);
        }
    };
    if !planned.warnings.is_empty() && !global.quiet {
        eprint!("{}", plan::render_human_with(&planned.warnings, color));
    }
    let config = Config::load(global.config.as_deref())?;
    let totals = Totals::of(&planned.plan, &config);
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?,
        )),
        None => Box::new(super::stdout()),
    };
    let written = match format(args) {
        TextOrJson::Json => crate::report::write_plan_json(&mut out, &planned.plan, &totals),
        TextOrJson::Text => out.write_all(render_text(&planned.plan, &totals).as_bytes()),
    };
    let target = args
        .output
        .as_ref()
        .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    written
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(format!("cannot write {target}"), e))?;
    Ok(exit::OK)
}

/// `--format`, else json for an output file named `*.json`, else text.
fn format(args: &PlanArgs) -> TextOrJson {
    let json_file = args
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    match args.format {
        Some(f) => f,
        None if json_file => TextOrJson::Json,
        None => TextOrJson::Text,
    }
}

/// A table of shots in execution order, then totals.
pub fn render_text(plan: &Plan, totals: &Totals) -> String {
    let header = [
        "#",
        "id",
        "model",
        "dur",
        "res",
        "ratio",
        "seed",
        "depends on",
    ];
    let order = plan.topological_order();
    let rows: Vec<[String; 8]> = order
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let s = &plan.shots[i];
            let alias = plan::model::by_id(&s.model).map_or(s.model.as_str(), |m| m.alias);
            [
                (n + 1).to_string(),
                s.id.clone(),
                alias.to_owned(),
                format!("{}s", s.duration),
                s.resolution.clone(),
                s.ratio.clone().unwrap_or_else(|| "-".into()),
                s.seed.map_or_else(|| "-".into(), |v| v.to_string()),
                if s.depends_on.is_empty() {
                    "-".into()
                } else {
                    let ids: Vec<&str> = s
                        .depends_on
                        .iter()
                        .map(|&u| plan.shots[u].id.as_str())
                        .collect();
                    ids.join(", ")
                },
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[&str], out: &mut String| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header, &mut out);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells, &mut out);
    }
    let _ = writeln!(
        out,
        "\n{} shot(s), {} s of video -> {}",
        totals.shots,
        totals.seconds,
        plan.out_dir.display()
    );
    for l in &totals.by_model {
        let cost = l.cost.map(|c| format!(", est. {c:.2}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {}: {} shot(s), {} s{cost}",
            l.model, l.resolution, l.shots, l.seconds
        );
    }
    match totals.estimated_cost {
        Some(c) if totals.cost_incomplete => {
            let _ = writeln!(
                out,
                "estimated cost: {c:.2} (some models have no [pricing] in the config)"
            );
        }
        Some(c) => {
            let _ = writeln!(out, "estimated cost: {c:.2}");
        }
        None => {
            let _ = writeln!(
                out,
                "estimated cost: add [pricing] to the config to see one"
            );
        }
    }
    out
}
