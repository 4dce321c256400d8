//! `--format markdown`: every problem in one table, for `$GITHUB_STEP_SUMMARY` (where the
//! problems past the annotation cap are read).

use std::fmt::Write as _;

use super::{Outcome, Problem};

/// Rows written at most: GitHub takes up to 1 MiB of summary per step, and a row is at most
/// about 800 bytes (messages and help are clipped).
const MAX_ROWS: usize = 1000;

pub fn render(outcomes: &[Outcome], problems: &[Problem<'_>]) -> String {
    let count = |level: &str| problems.iter().filter(|p| p.level() == level).count();
    let invalid = outcomes.iter().filter(|o| !o.valid).count();
    let mut out = String::from("## shotlist validate\n\n");
    let _ = writeln!(
        out,
        "{} manifest(s), {} invalid: {} error(s), {} warning(s).\n",
        outcomes.len(),
        invalid,
        count("error"),
        count("warning")
    );
    for o in outcomes {
        let verdict = if o.valid {
            format!("valid, {} shot(s)", o.shots)
        } else {
            "**invalid**".to_owned()
        };
        let _ = writeln!(
            out,
            "- `{}`: {verdict}, {} error(s), {} warning(s)",
            cell(&o.manifest.display().to_string()),
            o.errors,
            o.warnings
        );
    }
    if problems.is_empty() {
        return out;
    }
    out.push_str("\n| | File | Line | Problem | Where | Help |\n|---|---|---|---|---|---|\n");
    for p in problems.iter().take(MAX_ROWS) {
        let d = p.diagnostic;
        let icon = match p.level() {
            "error" => "❌ error",
            _ => "⚠️ warning",
        };
        let place = match (d.line, d.column) {
            (Some(l), Some(c)) => format!("{l}:{c}"),
            (Some(l), None) => l.to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| {icon} | `{}` | {place} | {} | {} | {} |",
            cell(&d.file.display().to_string()),
            cell(&d.message),
            p.context.as_deref().map(cell).unwrap_or_default(),
            d.help.as_deref().map(cell).unwrap_or_default()
        );
    }
    if problems.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "\n… and {} more: run `shotlist validate` locally, or read the SARIF report.",
            problems.len() - MAX_ROWS
        );
    }
    out
}

/// Text from the manifest made inert in a table cell: no HTML, no row or cell breaks.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn manifest_text_cannot_break_the_table_or_inject_html() {
        assert_eq!(
            super::cell("a | b <img src=x>\r\nnext & more"),
            "a \\| b &lt;img src=x&gt;<br>next &amp; more"
        );
    }
}
