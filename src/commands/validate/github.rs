//! `--format github`: workflow commands that GitHub shows as annotations on the diff.
//!
//! GitHub shows at most 10 annotations of each level per step and drops the rest silently, so
//! past 10 this stops and says, in one notice, how many more there are and where to read them.

use super::Problem;
use crate::plan::report::{escape_data, escape_property};

/// Annotations of one level GitHub shows per step.
pub const PER_LEVEL: usize = 10;

pub fn render(problems: &[Problem<'_>]) -> String {
    let mut out = String::new();
    let mut shown = [0usize; 2];
    let mut hidden = [0usize; 2];
    for p in problems {
        let slot = usize::from(p.level() == "warning");
        if shown[slot] == PER_LEVEL {
            hidden[slot] += 1;
            continue;
        }
        shown[slot] += 1;
        let d = p.diagnostic;
        let mut props = vec![format!(
            "file={}",
            escape_property(&d.file.display().to_string())
        )];
        if let Some(l) = d.line {
            props.push(format!("line={l}"));
            if let Some(c) = d.column {
                props.push(format!("col={c}"));
            }
            if let Some(end) = p.end_column {
                props.push(format!("endLine={l},endColumn={end}"));
            }
        }
        let mut message = p.text();
        if let Some(h) = &d.help {
            message = format!("{message}\nhelp: {h}");
        }
        out.push_str(&format!(
            "::{} {}::{}\n",
            p.level(),
            props.join(","),
            escape_data(&message)
        ));
    }
    if hidden != [0, 0] {
        out.push_str(&format!(
            "::notice title=shotlist::{} more error(s) and {} more warning(s) are not annotated \
             (GitHub shows {PER_LEVEL} of each per step): every problem is in the step summary \
             and the SARIF report\n",
            hidden[0], hidden[1]
        ));
    }
    out
}
