//! Building and collecting [`Diagnostic`]s.

use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use crate::manifest::clip;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// The CSV file (or inline table) and 1-based data row behind a problem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DataLocation {
    /// Table name in the manifest.
    pub table: String,
    /// The CSV file; `None` for inline rows.
    pub file: Option<PathBuf>,
    pub row: usize,
    /// 1-based line in the CSV file where the row starts (the header is line 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// `data/products.csv row 7 (line 8)` or `table `cities` row 2`.
pub fn row_place(d: &DataLocation) -> String {
    let line = d.line.map(|l| format!(" (line {l})")).unwrap_or_default();
    match &d.file {
        Some(f) => format!("{} row {}{line}", f.display(), d.row),
        None => format!("table `{}` row {}{line}", d.table, d.row),
    }
}

/// ` (from data/products.csv row 7)`: the data row behind a problem.
pub fn describe_row(d: &DataLocation) -> String {
    format!(" (from {})", row_place(d))
}

/// A line and column in the manifest (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: usize,
    pub column: usize,
}

impl Loc {
    pub fn of<T>(s: &Spanned<T>) -> Option<Loc> {
        let l = s.referenced;
        (l.line() > 0).then(|| Loc {
            line: l.line() as usize,
            column: l.column() as usize,
        })
    }
}

impl Loc {
    /// Where byte `at` of a scalar `value` written at `self` sits in the manifest `text`: the
    /// value's line is looked up in the lines from `self` on (a `|` block starts on the next
    /// line, indented). `None` when the line is not found as written (escapes, folding).
    pub fn inside(self, text: &str, value: &str, at: usize) -> Option<Loc> {
        let before = value.get(..at)?;
        let k = before.matches('\n').count();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = value[line_start..]
            .find('\n')
            .map_or(value.len(), |i| line_start + i);
        let wanted = &value[line_start..line_end];
        let col_in = before[line_start..].chars().count();
        let first = self.line + k;
        for (n, line) in text.lines().enumerate().skip(first - 1).take(2) {
            let skip = if n + 1 == self.line {
                line.char_indices()
                    .nth(self.column.saturating_sub(1))
                    .map_or(line.len(), |(b, _)| b)
            } else {
                0
            };
            if let Some(found) = line[skip..].find(wanted) {
                let column = line[..skip + found].chars().count() + col_in + 1;
                return Some(Loc {
                    line: n + 1,
                    column,
                });
            }
        }
        None
    }
}

impl Diagnostic {
    pub fn new(
        severity: Severity,
        file: &Path,
        loc: Option<Loc>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            message: shown(&message.into()),
            file: file.to_owned(),
            line: loc.map(|l| l.line),
            column: loc.map(|l| l.column),
            shot: None,
            help: None,
            data: None,
        }
    }

    pub fn error(file: &Path, loc: Option<Loc>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, file, loc, message)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(shown(&help.into()));
        self
    }
}

/// `text` clipped to [`MAX_TEXT_CHARS`] and [`printable`].
fn shown(text: &str) -> String {
    printable(&clip(text, MAX_TEXT_CHARS))
}

/// `text` with control characters (a NUL, an ESC that would recolour or move the terminal's
/// cursor) written as `\u{1b}`: values from the manifest or data are quoted in messages.
/// Line breaks and tabs stay.
pub fn printable(text: &str) -> String {
    if !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return text.to_owned();
    }
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Longest message or help shown: values from the manifest or data are quoted in them.
const MAX_TEXT_CHARS: usize = 240;
/// Longest shot id shown (a valid id has at most 128 characters).
const MAX_ID_CHARS: usize = 130;

/// Most diagnostics kept; a broken template over a huge table would otherwise repeat per row.
const MAX_DIAGNOSTICS: usize = 200;

/// A problem's cause: its severity, its message (with the quoted parts that vary per shot
/// masked, see [`cause`]) and its place in the manifest.
pub type CauseKey = (Severity, String, usize, usize);

/// A warning's message and place (line and column 0: none).
type RepeatKey = (String, usize, usize);

/// Collects diagnostics for one manifest.
///
/// A template in the manifest is expanded into many shots, so one mistake can be found once per
/// shot: every error is kept (the JSON report lists each shot; the others show each cause once,
/// see [`cause`]), a warning repeated at one place is kept once with its count, and problems
/// that only follow from an error already reported (a reference to a shot whose id clashed, the
/// length of a shot whose own duration was refused) are left out.
pub struct Sink {
    pub file: PathBuf,
    items: Vec<Diagnostic>,
    dropped: usize,
    dropped_errors: usize,
    scratch: Diagnostic,
    /// A repeated warning: the index of its first copy and how many more shots have it.
    repeats: std::collections::HashMap<RepeatKey, (usize, usize)>,
    /// Ids (exact, or a shot's id template) of shots that failed to compile or expand: a
    /// reference to one is a consequence of that error, not a new one.
    unexpanded: std::collections::HashSet<String>,
    /// Shots with an error of their own: what follows from their values is not reported again.
    erred: std::collections::HashSet<String>,
    /// Each shot's id template by where it is written, to name it when its ids clash.
    id_templates: std::collections::HashMap<(usize, usize), String>,
}

impl Sink {
    pub fn new(file: &Path) -> Self {
        Sink {
            file: file.to_owned(),
            items: Vec::new(),
            dropped: 0,
            dropped_errors: 0,
            scratch: Diagnostic::error(file, None, ""),
            repeats: std::collections::HashMap::new(),
            unexpanded: std::collections::HashSet::new(),
            erred: std::collections::HashSet::new(),
            id_templates: std::collections::HashMap::new(),
        }
    }

    /// Notes that the shots whose id is `id` (text, or an id template) were not planned
    /// because of an error already reported.
    pub fn unexpanded(&mut self, id: &str) {
        if self.unexpanded.len() < MAX_UNEXPANDED {
            self.unexpanded.insert(id.to_owned());
        }
    }

    /// True when `id` may be the id of a shot that failed to compile or expand.
    pub fn failed_to_expand(&self, id: &str) -> bool {
        self.unexpanded.iter().any(|p| id_matches(p, id))
    }

    /// Notes that shot `id` has an error of its own.
    pub fn erred(&mut self, id: &str) {
        if self.erred.len() < MAX_ERRED && !self.erred.contains(id) {
            self.erred.insert(id.to_owned());
        }
    }

    /// True when shot `id` has an error of its own.
    pub fn has_erred(&self, id: &str) -> bool {
        self.erred.contains(id)
    }

    /// Notes the id template written at `loc`.
    pub fn id_template(&mut self, loc: Option<Loc>, template: &str) {
        if let Some(l) = loc {
            self.id_templates
                .entry((l.line, l.column))
                .or_insert_with(|| template.to_owned());
        }
    }

    /// The id template written at `loc`, if noted.
    pub fn id_template_at(&self, loc: Option<Loc>) -> Option<&str> {
        let l = loc?;
        self.id_templates
            .get(&(l.line, l.column))
            .map(String::as_str)
    }

    /// Adds a diagnostic and hands it back for annotation.
    pub fn push(&mut self, d: Diagnostic) -> &mut Diagnostic {
        if let Some(key) = repeat_key(&d) {
            if let Some((index, count)) = self.repeats.get_mut(&key) {
                *count += 1;
                let index = *index;
                if index < self.items.len() {
                    self.scratch = d;
                    return &mut self.scratch;
                }
            } else if self.items.len() < MAX_DIAGNOSTICS {
                self.repeats.insert(key, (self.items.len(), 0));
            }
        }
        if self.items.len() < MAX_DIAGNOSTICS {
            self.items.push(d);
            let last = self.items.len() - 1;
            &mut self.items[last]
        } else {
            self.dropped += 1;
            if d.severity == Severity::Error {
                self.dropped_errors += 1;
            }
            self.scratch = d;
            &mut self.scratch
        }
    }

    /// True once as many errors were dropped as are kept: expanding further rows would only
    /// spend time on problems nobody is shown.
    pub fn saturated(&self) -> bool {
        self.dropped_errors >= MAX_DIAGNOSTICS
    }

    pub fn error(&mut self, loc: Option<Loc>, message: impl Into<String>) -> &mut Diagnostic {
        let d = Diagnostic::new(Severity::Error, &self.file, loc, message);
        self.push(d)
    }

    pub fn warning(&mut self, loc: Option<Loc>, message: impl Into<String>) -> &mut Diagnostic {
        let d = Diagnostic::new(Severity::Warning, &self.file, loc, message);
        self.push(d)
    }

    /// Takes over another sink's diagnostics, after this one's.
    pub fn absorb(&mut self, other: Sink) {
        for id in other.unexpanded {
            self.unexpanded(&id);
        }
        self.dropped += other.dropped;
        self.dropped_errors += other.dropped_errors;
        let mut counts = vec![0; other.items.len()];
        for (index, count) in other.repeats.into_values() {
            if let Some(c) = counts.get_mut(index) {
                *c = count;
            }
        }
        for id in other.erred {
            self.erred(&id);
        }
        for (at, template) in other.id_templates {
            self.id_templates.entry(at).or_insert(template);
        }
        for (d, extra) in other.items.into_iter().zip(counts) {
            let key = repeat_key(&d);
            self.push(d);
            if let Some(key) = key
                && let Some((_, count)) = self.repeats.get_mut(&key)
            {
                *count += extra;
            }
        }
    }

    /// Tells, on each repeated problem, how many more shots have it.
    fn note_repeats(&mut self) {
        for (index, count) in std::mem::take(&mut self.repeats).into_values() {
            if count > 0
                && let Some(d) = self.items.get_mut(index)
            {
                let note = match count {
                    1 => "1 more shot has this warning".to_owned(),
                    n => format!("{n} more shots have this warning"),
                };
                d.help = Some(match d.help.take() {
                    Some(h) => format!("{h} ({note})"),
                    None => note,
                });
            }
        }
    }

    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.note_repeats();
        if self.dropped > 0 {
            let severity = if self.dropped_errors > 0 {
                Severity::Error
            } else {
                Severity::Warning
            };
            let d = Diagnostic::new(
                severity,
                &self.file,
                None,
                format!("… and {} more problems not shown", self.dropped),
            );
            self.items.push(d);
        }
        self.items
    }
}

/// Most failed ids remembered; a failing template over a huge table stops early anyway.
const MAX_UNEXPANDED: usize = 1000;
/// Most ids of shots with errors remembered.
const MAX_ERRED: usize = 100_000;

fn repeat_key(d: &Diagnostic) -> Option<RepeatKey> {
    (d.severity == Severity::Warning).then(|| {
        (
            d.message.clone(),
            d.line.unwrap_or(0),
            d.column.unwrap_or(0),
        )
    })
}

/// The cause of `d`: what the shots of one template share. At a place in the manifest the
/// backquoted parts (an id, a value, a path) vary per shot and are masked; without a place only
/// the same message is the same cause.
pub fn cause(d: &Diagnostic) -> CauseKey {
    let Some(line) = d.line else {
        return (d.severity, d.message.clone(), 0, 0);
    };
    let column = d.column.unwrap_or(0);
    let mut shape = String::with_capacity(d.message.len());
    for (i, part) in d.message.split('`').enumerate() {
        if i > 0 {
            shape.push('`');
        }
        shape.push_str(if i % 2 == 1 { "…" } else { part });
    }
    (d.severity, shape, line, column)
}

/// Whether `id` can come from `pattern`, an id or id template: its `{{ … }}` and `{% … %}`
/// parts match anything; a `-takeN` suffix (added when `takes` > 1) is ignored.
fn id_matches(pattern: &str, id: &str) -> bool {
    let mut pieces = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest
        .find(['{'])
        .filter(|&i| rest[i..].starts_with("{{") || rest[i..].starts_with("{%"))
    {
        pieces.push(&rest[..start]);
        let close = if rest[start..].starts_with("{{") {
            "}}"
        } else {
            "%}"
        };
        match rest[start..].find(close) {
            Some(end) => rest = &rest[start + end + 2..],
            None => {
                rest = "";
                break;
            }
        }
    }
    pieces.push(rest);
    let untaken = id
        .rsplit_once("-take")
        .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map(|(base, _)| base);
    glob(&pieces, id) || untaken.is_some_and(|base| glob(&pieces, base))
}

/// `pieces` are the literal parts around wildcards: `text` holds them in order, starting
/// with the first and ending with the last.
fn glob(pieces: &[&str], text: &str) -> bool {
    match pieces {
        [] => text.is_empty(),
        [only] => *only == text,
        [first, middle @ .., last] => {
            let Some(mut rest) = text.strip_prefix(first) else {
                return false;
            };
            for piece in middle {
                match rest.find(piece) {
                    Some(i) => rest = &rest[i + piece.len()..],
                    None => return false,
                }
            }
            rest.len() >= last.len() && rest.ends_with(last)
        }
    }
}

/// Chained setters on a pushed diagnostic.
pub trait Annotate {
    fn shot(&mut self, id: Option<&str>) -> &mut Self;
    fn help(&mut self, help: impl Into<String>) -> &mut Self;
    fn data(&mut self, data: Option<&DataLocation>) -> &mut Self;
}

impl Annotate for Diagnostic {
    fn shot(&mut self, id: Option<&str>) -> &mut Self {
        self.shot = id.map(|id| printable(&clip(id, MAX_ID_CHARS)));
        self
    }
    fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(shown(&help.into()));
        self
    }
    fn data(&mut self, data: Option<&DataLocation>) -> &mut Self {
        self.data = data.cloned();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::{Loc, id_matches};

    #[test]
    fn positions_inside_a_block_scalar() {
        let text = "shots:\n  - prompt: |\n      one\n      two {{ x }}\n";
        let base = Loc {
            line: 2,
            column: 13,
        };
        let value = "one\ntwo {{ x }}\n";
        let at = value.find("x }").unwrap();
        assert_eq!(
            base.inside(text, value, at),
            Some(Loc {
                line: 4,
                column: 14
            })
        );
        let quoted = "prompt: \"a {{ y }}\"\n";
        let base = Loc { line: 1, column: 9 };
        assert_eq!(
            base.inside(quoted, "a {{ y }}", 5),
            Some(Loc {
                line: 1,
                column: 15
            })
        );
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(
            super::printable("a\u{1b}[31mb\0c\nd"),
            "a\\u{1b}[31mb\\u{0}c\nd"
        );
        assert_eq!(super::printable("plain ü"), "plain ü");
    }

    #[test]
    fn ids_match_their_templates() {
        assert!(id_matches("a", "a"));
        assert!(!id_matches("a", "ab"));
        assert!(id_matches("city-{{ row.name }}", "city-Paris"));
        assert!(!id_matches("city-{{ row.name }}", "town-Paris"));
        assert!(id_matches("{{ row.a }}-{{ row.b }}.x", "1-2.x"));
        assert!(!id_matches("{{ row.a }}-{{ row.b }}.x", "12.x"));
        assert!(id_matches("a", "a-take3"));
        assert!(id_matches("{% if x %}y{% endif %}", "anything"));
    }
}
