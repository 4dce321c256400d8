//! Data tables: CSV files (or inline rows) as header names and rows of strings.
//!
//! Cells are always strings, as the manifest contract says; the plan stage converts templated
//! values to their field's type. Problems name the 1-based data row (the header is not a row)
//! and the file line where the row starts, since quoted cells may span lines.

use std::path::{Path, PathBuf};

/// A loaded table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    /// The CSV file; `None` for inline rows.
    pub file: Option<PathBuf>,
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
}

/// One data row; `values` line up with [`Table::headers`].
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based data row.
    pub number: usize,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TableError {
    pub message: String,
    /// 1-based data row, when one row is at fault.
    pub row: Option<usize>,
    /// 1-based line in the file.
    pub line: Option<usize>,
    pub help: Option<String>,
}

impl TableError {
    fn new(message: String, row: Option<usize>, line: Option<usize>, help: &str) -> Self {
        TableError {
            message,
            row,
            line,
            help: Some(help.to_owned()),
        }
    }
}

/// Reads a CSV file (UTF-8, optional BOM, header row first).
pub fn read_csv(name: &str, path: &Path) -> Result<Table, TableError> {
    let bytes = std::fs::read(path).map_err(|e| TableError {
        message: format!("cannot read {}: {e}", path.display()),
        row: None,
        line: None,
        help: Some("data paths are relative to the manifest's folder".into()),
    })?;
    let mut table = read_csv_text(name, &bytes)?;
    table.file = Some(path.to_owned());
    Ok(table)
}

/// Parses CSV bytes into a table.
pub fn read_csv_text(name: &str, bytes: &[u8]) -> Result<Table, TableError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => {
            return Err(TableError::new(
                "the CSV file is empty".into(),
                None,
                Some(1),
                "the first line names the columns, e.g. `sku,name,seconds`",
            ));
        }
        Some(r) => r.map_err(|e| csv_error(&e, 0))?,
    };
    let headers = utf8_fields(&header, None, 1)?;
    for (i, h) in headers.iter().enumerate() {
        if h.trim().is_empty() {
            return Err(TableError::new(
                format!("column {} has an empty name", i + 1),
                None,
                Some(1),
                "give every column a name in the header line",
            ));
        }
        if headers[..i].contains(h) {
            return Err(TableError::new(
                format!("column `{h}` appears twice in the header"),
                None,
                Some(1),
                "column names must be unique",
            ));
        }
    }
    let mut rows = Vec::new();
    for (index, record) in records.enumerate() {
        let number = index + 1;
        let record = record.map_err(|e| csv_error(&e, number))?;
        let line = record.position().map(|p| p.line() as usize);
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            continue;
        }
        if record.len() != headers.len() {
            return Err(TableError::new(
                format!(
                    "row {number} has {} fields but the header has {}",
                    record.len(),
                    headers.len()
                ),
                Some(number),
                line,
                "quote cells that contain commas, e.g. \"Paris, France\"",
            ));
        }
        let values = utf8_fields(&record, Some(number), line.unwrap_or(0))?;
        rows.push(Row { number, values });
    }
    Ok(Table {
        name: name.to_owned(),
        file: None,
        headers,
        rows,
    })
}

fn utf8_fields(
    record: &csv::ByteRecord,
    row: Option<usize>,
    line: usize,
) -> Result<Vec<String>, TableError> {
    record
        .iter()
        .enumerate()
        .map(|(col, field)| {
            std::str::from_utf8(field).map(str::to_owned).map_err(|_| {
                let place = match row {
                    Some(r) => format!("row {r}"),
                    None => "the header".to_owned(),
                };
                TableError::new(
                    format!("{place}, column {}, is not valid UTF-8", col + 1),
                    row,
                    Some(line),
                    "save the file as UTF-8",
                )
            })
        })
        .collect()
}

fn csv_error(err: &csv::Error, row: usize) -> TableError {
    let line = err.position().map(|p| p.line() as usize);
    TableError::new(
        format!("row {row}: {err}"),
        (row > 0).then_some(row),
        line,
        "check the quoting around this row",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_bom_and_unicode() {
        let t = read_csv_text(
            "p",
            "\u{feff}sku,name\n1,\"Paris, \"\"the\"\" city\"\n2,\"two\nlines\"\n3,Zürich 東京\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(t.headers, ["sku", "name"]);
        assert_eq!(t.rows[0].values[1], "Paris, \"the\" city");
        assert_eq!(t.rows[1].values[1], "two\nlines");
        assert_eq!(t.rows[2].values[1], "Zürich 東京");
        assert_eq!(t.rows[2].number, 3);
    }

    #[test]
    fn ragged_row_names_the_row() {
        let e = read_csv_text("p", b"a,b\n1,2\n3\n").unwrap_err();
        assert_eq!(e.row, Some(2));
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("row 2 has 1 fields"), "{}", e.message);
    }

    #[test]
    fn bad_utf8_names_the_row() {
        let e = read_csv_text("p", b"a,b\n1,2\n3,\xff\n").unwrap_err();
        assert_eq!(e.row, Some(2));
        assert!(e.message.contains("not valid UTF-8"));
    }
}
