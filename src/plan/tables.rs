//! The tables stage: each `data:` entry read (CSV inside the manifest's folder, or inline
//! rows) into a [`Table`]; a table that fails is reported once and its shots are skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::diagnostic::{Annotate, DataLocation, Loc, Sink};
use crate::manifest::{DataSource, RawManifest, Table};

/// Tables that loaded; a table that failed is reported once and its shots are skipped.
pub fn load(
    dir: &Path,
    raw: &RawManifest,
    max_bytes: u64,
    sink: &mut Sink,
) -> HashMap<String, Option<Table>> {
    let mut tables = HashMap::new();
    for (name, source) in raw.data.iter() {
        let loc = Loc::of(source);
        let table = match &source.value {
            DataSource::Path(rel) => {
                let read = crate::manifest::read_inside(dir, rel, max_bytes).map_err(|e| {
                    crate::manifest::TableError {
                        message: format!("data `{}`: {e}", name.value),
                        row: None,
                        line: None,
                        help: Some(e.help()),
                    }
                });
                let parsed = read.and_then(|bytes| {
                    crate::manifest::read_csv_text(&name.value, &bytes).map_err(|e| {
                        crate::manifest::TableError {
                            message: format!("{rel}: {}", e.message),
                            ..e
                        }
                    })
                });
                match parsed {
                    Ok(mut t) => {
                        t.file = Some(PathBuf::from(rel));
                        t
                    }
                    Err(e) => {
                        let d = sink.error(loc, e.message).data(
                            e.row
                                .map(|row| DataLocation {
                                    table: name.value.clone(),
                                    file: Some(PathBuf::from(rel)),
                                    row,
                                    line: e.line,
                                })
                                .as_ref(),
                        );
                        if let Some(h) = e.help {
                            d.help(h);
                        }
                        tables.insert(name.value.clone(), None);
                        continue;
                    }
                }
            }
            DataSource::Inline(inline) => {
                let mut headers: Vec<String> = Vec::new();
                for row in &inline.rows {
                    for k in row.keys() {
                        if !headers.iter().any(|h| h == k) {
                            headers.push(k.to_owned());
                        }
                    }
                }
                let rows = inline
                    .rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| crate::manifest::Row {
                        number: i + 1,
                        line: None,
                        values: headers
                            .iter()
                            .map(|h| r.get(h).cloned().flatten().unwrap_or_default())
                            .collect(),
                    })
                    .collect();
                Table {
                    name: name.value.clone(),
                    file: None,
                    headers,
                    rows,
                }
            }
        };
        tables.insert(name.value.clone(), Some(table));
    }
    tables
}
