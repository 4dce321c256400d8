//! Data tables: CSV files (or inline rows) as header names and rows of strings.
//!
//! Cells are always strings, as the manifest contract says; the plan stage converts templated
//! values to their field's type. Problems name the 1-based data row (the header is not a row)
//! and the file line where the row starts, since quoted cells may span lines.

use std::path::PathBuf;

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
    /// 1-based line in the CSV file where the row starts; `None` for inline rows.
    pub line: Option<usize>,
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

/// Parses CSV bytes (UTF-8, optional BOM, header row first) into a table.
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
        Some(r) => r.map_err(|e| csv_error(&e, 0, &mut LineCounter::new(bytes)))?,
    };
    let headers = utf8_fields(&header, None, 1)?;
    if let [only] = headers.as_slice()
        && only.contains(';')
    {
        return Err(TableError::new(
            format!(
                "the header has one column `{}`: the file looks separated by `;`",
                crate::manifest::clip(only, 60)
            ),
            None,
            Some(1),
            "shotlist reads comma-separated CSV; spreadsheets in many locales save with `;`: export as \"CSV (comma delimited)\" or replace the `;` separators with `,`",
        ));
    }
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
    // An unterminated quote swallows the rest of the file into the row where it opened: the
    // last record. That row is reported as such, not as ragged or as one huge cell.
    let open_quote = unterminated_quote(bytes);
    let mut last_row = 0;
    let mut rows = Vec::new();
    let mut lines = LineCounter::new(bytes);
    for (index, record) in records.enumerate() {
        let number = index + 1;
        let record = record.map_err(|e| csv_error(&e, number, &mut lines))?;
        last_row = number;
        let line = record.position().map(|p| lines.line_at(p.byte()));
        let holds_open_quote =
            open_quote.is_some_and(|at| record.position().is_some_and(|p| p.byte() <= at as u64));
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            continue;
        }
        if record.len() != headers.len() && !holds_open_quote {
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
        rows.push(Row {
            number,
            line,
            values,
        });
    }
    if let Some(at) = open_quote {
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        let place = match last_row {
            0 => "the header".to_owned(),
            n => format!("row {n}"),
        };
        return Err(TableError::new(
            format!("{place}: a quote opened on line {line} is never closed"),
            (last_row > 0).then_some(last_row),
            Some(line),
            "close the quoted cell with `\"`, and write a quote inside a cell as `\"\"`",
        ));
    }
    Ok(Table {
        name: name.to_owned(),
        file: None,
        headers,
        rows,
    })
}

/// Where a quoted cell opens that is never closed, by the rules the `csv` crate reads with: a
/// quote opens a cell only at its start, and `""` inside it is a quote.
fn unterminated_quote(bytes: &[u8]) -> Option<usize> {
    let mut open = None;
    let mut at_field_start = true;
    let mut i = 0;
    while i < bytes.len() {
        match (open, bytes[i]) {
            (Some(_), b'"') if bytes.get(i + 1) == Some(&b'"') => i += 1,
            (Some(_), b'"') => {
                open = None;
                at_field_start = false;
            }
            (Some(_), _) => {}
            (None, b'"') if at_field_start => open = Some(i),
            (None, b',' | b'\n' | b'\r') => at_field_start = true,
            (None, _) => at_field_start = false,
        }
        i += 1;
    }
    open
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

/// 1-based lines of byte offsets, counted by `\n` alone: the `csv` crate's own line count is
/// off for CRLF line ends (Excel's and Python's default), where a row's position is the `\n`
/// that ends the line before it.
struct LineCounter<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            at: 0,
            line: 1,
        }
    }

    /// The line of byte `offset`; offsets asked for only grow, so the file is read once.
    fn line_at(&mut self, offset: u64) -> usize {
        let mut to = usize::try_from(offset).map_or(self.bytes.len(), |o| o.min(self.bytes.len()));
        // After a CRLF the reader's position is at its `\n`: the row starts past it.
        if to > 0 && self.bytes[to - 1] == b'\r' && self.bytes.get(to) == Some(&b'\n') {
            to += 1;
        }
        if to < self.at {
            self.at = 0;
            self.line = 1;
        }
        self.line += self.bytes[self.at..to]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.at = to;
        self.line
    }
}

fn csv_error(err: &csv::Error, row: usize, lines: &mut LineCounter<'_>) -> TableError {
    let line = err.position().map(|p| lines.line_at(p.byte()));
    TableError::new(
        format!("row {row}: {err}"),
        (row > 0).then_some(row),
        line,
        "check the quoting around this row",
    )
}

#[cfg(test)]
mod crlf_tests {
    use super::*;

    #[test]
    fn crlf_lines_are_counted_like_lf_lines() {
        let lf = "sku,name\nA,one\nB,\"two\nlines\"\nC,three\n";
        let crlf = lf.replace('\n', "\r\n");
        for text in [lf.to_owned(), crlf] {
            let t = read_csv_text("t", text.as_bytes()).unwrap();
            let lines: Vec<_> = t.rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, [Some(2), Some(3), Some(5)], "{text:?}");
        }
        let e = read_csv_text("t", b"a,b\r\n1,2\r\n3,4\r\n5\r\n").unwrap_err();
        assert_eq!((e.row, e.line), (Some(3), Some(4)));
    }
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
    fn unterminated_quote_names_the_row_where_it_opened() {
        let e = read_csv_text("p", b"a,b\n1,2\n3,\"x\n4,y\n5,z\n").unwrap_err();
        assert_eq!(e.row, Some(2));
        assert_eq!(e.line, Some(3));
        assert!(
            e.message.contains("row 2: a quote opened on line 3"),
            "{}",
            e.message
        );
        let e = read_csv_text("p", b"a,\"b\n1,2\n").unwrap_err();
        assert_eq!((e.row, e.line), (None, Some(1)));
        let t = read_csv_text("p", b"a,b\n\"x \"\"q\"\"\",y\"z\n").unwrap();
        assert_eq!(t.rows[0].values, ["x \"q\"", "y\"z"]);
    }

    #[test]
    fn bad_utf8_names_the_row() {
        let e = read_csv_text("p", b"a,b\n1,2\n3,\xff\n").unwrap_err();
        assert_eq!(e.row, Some(2));
        assert!(e.message.contains("not valid UTF-8"));
    }
}
