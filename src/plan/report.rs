//! Diagnostics for people (miette graphical with source snippets) and JSON; the other machine
//! formats are `validate`'s renderers.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

use super::diagnostic::{CauseKey, Diagnostic, Severity, cause};

struct Shown {
    message: String,
    severity: Severity,
    help: Option<String>,
    source: Option<NamedSource<String>>,
    label: Option<LabeledSpan>,
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Shown {}

impl miette::Diagnostic for Shown {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.label
            .clone()
            .map(|l| Box::new(std::iter::once(l)) as Box<dyn Iterator<Item = LabeledSpan>>)
    }
}

/// Byte offset and length of the token at a 1-based line and (character) column.
pub(crate) fn span_at(text: &str, line: usize, column: usize) -> Option<(usize, usize)> {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let content = l.trim_end_matches(['\n', '\r']);
            let col_byte = content
                .char_indices()
                .nth(column.saturating_sub(1))
                .map(|(b, _)| b)
                .unwrap_or(content.len());
            // The token up to the end of its line, at most 40 characters (on a char boundary).
            let token = content[col_byte..].trim_end();
            let len = token
                .char_indices()
                .nth(40)
                .map_or(token.len(), |(b, _)| b)
                .max(1);
            return Some((
                offset + col_byte,
                len.min(content.len().saturating_sub(col_byte)),
            ));
        }
        offset += l.len();
    }
    None
}

/// Problems of one cause (one per expanded shot: the same place and message but for the ids or
/// values quoted in it, see [`cause`]) are shown once, with how many more shots have them; the
/// JSON format keeps every instance.
pub(crate) fn grouped(diagnostics: &[Diagnostic]) -> Vec<(&Diagnostic, usize)> {
    let mut out: Vec<(&Diagnostic, usize)> = Vec::new();
    let mut first: HashMap<(CauseKey, &PathBuf), usize> = HashMap::new();
    for d in diagnostics {
        if d.line.is_none() {
            out.push((d, 0));
            continue;
        }
        let key = (cause(d), &d.file);
        match first.get(&key) {
            Some(&i) => out[i].1 += 1,
            None => {
                first.insert(key, out.len());
                out.push((d, 0));
            }
        }
    }
    out
}

/// Errors in `diagnostics`: how many causes (as the human report shows them) and how many
/// instances (one per shot).
pub fn error_counts(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = |d: &&Diagnostic| d.severity == Severity::Error;
    let causes = grouped(diagnostics)
        .into_iter()
        .filter(|(d, _)| errors(d))
        .count();
    (causes, diagnostics.iter().filter(errors).count())
}

/// `1 shot`, `2 shots`: `n` and `word`, plural when `n` is not 1 (regular plurals only).
pub fn count(n: usize, word: &str) -> String {
    match n {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}

pub(crate) fn label_text(d: &Diagnostic, more: usize) -> String {
    let mut parts = Vec::new();
    if let Some(shot) = &d.shot {
        parts.push(match more {
            0 => format!("shot `{shot}`"),
            1 => format!("shot `{shot}` and 1 more shot"),
            n => format!("shot `{shot}` and {n} more shots"),
        });
    }
    if let Some(data) = &d.data {
        parts.push(super::diagnostic::row_place(data));
    }
    if d.shot.is_none() && more > 0 {
        parts.push(format!("and {more} more"));
    }
    if parts.is_empty() {
        "here".into()
    } else {
        parts.join(", ")
    }
}

/// Renders diagnostics with source snippets; `color` adds ANSI colors.
pub fn render_human_with(diagnostics: &[Diagnostic], color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut sources: HashMap<PathBuf, Option<String>> = HashMap::new();
    let mut out = String::new();
    for (d, more) in grouped(diagnostics) {
        let text = match d.line {
            Some(_) => sources
                .entry(d.file.clone())
                .or_insert_with(|| snippet_source(&d.file))
                .clone(),
            None => None,
        };
        let name = display_path(&d.file);
        let (source, label) = match (text, d.line, d.column) {
            (Some(text), Some(line), column) => match span_at(&text, line, column.unwrap_or(1)) {
                Some((start, len)) => (
                    Some(NamedSource::new(name.clone(), text)),
                    Some(LabeledSpan::new(Some(label_text(d, more)), start, len)),
                ),
                None => (None, None),
            },
            _ => (None, None),
        };
        let mut message = d.message.clone();
        if source.is_none() {
            let at = match (d.line, d.column) {
                (Some(l), Some(c)) => format!("{name}:{l}:{c}"),
                (Some(l), None) => format!("{name}:{l}"),
                _ => name.clone(),
            };
            message = format!("{at}: {message}");
            if d.shot.is_some() || d.data.is_some() || more > 0 {
                message = format!("{message} [{}]", label_text(d, more));
            }
        }
        let shown = Shown {
            message,
            severity: d.severity,
            help: d.help.clone(),
            source,
            label,
        };
        let _ = handler.render_report(&mut out, &shown);
        out.push('\n');
    }
    out
}

/// The manifest's text for snippets: read with the same caps as planning, each line cut to
/// [`SNIPPET_LINE_CHARS`] so a huge scalar is not echoed whole.
pub(crate) fn snippet_source(path: &Path) -> Option<String> {
    let max = super::limits::Limits::from_env()
        .unwrap_or_default()
        .max_file_bytes;
    let bytes = crate::manifest::read_regular(path, "", max).ok()?;
    let text = super::diagnostic::printable(&String::from_utf8(bytes).ok()?);
    let mut out = String::with_capacity(text.len().min(1 << 20));
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        match content.char_indices().nth(SNIPPET_LINE_CHARS) {
            Some((cut, _)) => {
                out.push_str(&content[..cut]);
                out.push('…');
                out.push_str(&line[content.len()..]);
            }
            None => out.push_str(line),
        }
    }
    Some(out)
}

/// Characters of a manifest line shown in a snippet.
const SNIPPET_LINE_CHARS: usize = 160;

fn display_path(p: &Path) -> String {
    p.display().to_string()
}

/// A JSON array of diagnostics: `{severity, message, file, line, column, shot, help, data?}`.
pub fn render_json(diagnostics: &[Diagnostic]) -> String {
    serde_json::to_string_pretty(diagnostics).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

pub(crate) fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}
