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
}

/// ` (from data/products.csv row 7)`: the data row behind a problem.
pub fn describe_row(d: &DataLocation) -> String {
    match &d.file {
        Some(f) => format!(" (from {} row {})", f.display(), d.row),
        None => format!(" (from table `{}` row {})", d.table, d.row),
    }
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

impl Diagnostic {
    pub fn new(
        severity: Severity,
        file: &Path,
        loc: Option<Loc>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            message: clip(&message.into(), MAX_TEXT_CHARS),
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
        self.help = Some(clip(&help.into(), MAX_TEXT_CHARS));
        self
    }
}

/// Longest message or help shown: values from the manifest or data are quoted in them.
const MAX_TEXT_CHARS: usize = 240;
/// Longest shot id shown (a valid id has at most 128 characters).
const MAX_ID_CHARS: usize = 130;

/// Most diagnostics kept; a broken template over a huge table would otherwise repeat per row.
const MAX_DIAGNOSTICS: usize = 200;

/// A warning's message and place; with the index of its first copy and how many repeats.
type RepeatKey = (String, Option<usize>, Option<usize>);

/// Collects diagnostics for one manifest.
pub struct Sink {
    pub file: PathBuf,
    items: Vec<Diagnostic>,
    dropped: usize,
    dropped_errors: usize,
    scratch: Diagnostic,
    /// A warning repeated at the same place (one per expanded shot) is kept once and counted.
    repeats: std::collections::HashMap<RepeatKey, (usize, usize)>,
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
        }
    }

    /// Adds a diagnostic and hands it back for annotation.
    pub fn push(&mut self, d: Diagnostic) -> &mut Diagnostic {
        if d.severity == Severity::Warning {
            let key = (d.message.clone(), d.line, d.column);
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
        self.dropped += other.dropped;
        self.dropped_errors += other.dropped_errors;
        let mut counts = vec![0; other.items.len()];
        for (index, count) in other.repeats.into_values() {
            if let Some(c) = counts.get_mut(index) {
                *c = count;
            }
        }
        for (d, extra) in other.items.into_iter().zip(counts) {
            let key = (d.message.clone(), d.line, d.column);
            let is_warning = d.severity == Severity::Warning;
            self.push(d);
            if is_warning && let Some((_, count)) = self.repeats.get_mut(&key) {
                *count += extra;
            }
        }
    }

    /// Tells, on each repeated warning, how many more shots have it.
    fn note_repeats(&mut self) {
        for (index, count) in std::mem::take(&mut self.repeats).into_values() {
            if count > 0
                && let Some(d) = self.items.get_mut(index)
            {
                let note = format!("{count} more shot(s) have this warning");
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

/// Chained setters on a pushed diagnostic.
pub trait Annotate {
    fn shot(&mut self, id: Option<&str>) -> &mut Self;
    fn help(&mut self, help: impl Into<String>) -> &mut Self;
    fn data(&mut self, data: Option<&DataLocation>) -> &mut Self;
}

impl Annotate for Diagnostic {
    fn shot(&mut self, id: Option<&str>) -> &mut Self {
        self.shot = id.map(|id| clip(id, MAX_ID_CHARS));
        self
    }
    fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(clip(&help.into(), MAX_TEXT_CHARS));
        self
    }
    fn data(&mut self, data: Option<&DataLocation>) -> &mut Self {
        self.data = data.cloned();
        self
    }
}
