//! results.csv and results.json: one row per shot in plan order, so results join back to the
//! input by `source` and `row`.
//!
//! Both files are rewritten whole through a temporary file and a rename, so a reader (or a
//! crash) never sees half a table. Files are created as `open` would with the process umask,
//! not `tempfile`'s private 0600: an output folder is often shared or served.

use std::io::Write;
use std::path::{Path, PathBuf};

mod writer;
pub use writer::ResultsWriter;

use serde::Serialize;

use crate::cost::{Money, PriceBook};
use crate::plan::{Plan, PlannedShot, ShotDoc, Totals};

pub const CSV_FILE: &str = "results.csv";
pub const JSON_FILE: &str = "results.json";
pub const PLAN_FILE: &str = "plan.json";
/// The folder of the downloads inside the output folder.
pub const VIDEOS_DIR: &str = "videos";

/// A shot's final (or current) state, as users see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    Succeeded,
    Failed,
    Skipped,
    Unknown,
    Expired,
    Pending,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Succeeded => "succeeded",
            ResultStatus::Failed => "failed",
            ResultStatus::Skipped => "skipped",
            ResultStatus::Unknown => "unknown",
            ResultStatus::Expired => "expired",
            ResultStatus::Pending => "pending",
        }
    }
}

/// One row of the results table; field order is column order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultRow {
    pub id: String,
    pub status: ResultStatus,
    pub model: String,
    pub duration: u32,
    pub resolution: String,
    pub ratio: Option<String>,
    pub seed: Option<u32>,
    pub task_id: Option<String>,
    pub url: Option<String>,
    pub file: Option<String>,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    pub attempts: u32,
    pub submitted_at: Option<String>,
    pub finished_at: Option<String>,
    pub elapsed_s: Option<f64>,
    pub error: Option<String>,
    pub source: Option<String>,
    pub row: Option<usize>,
    pub take: u32,
    pub prompt: Option<String>,
    /// Estimated bill of this shot's task (exact, in the pricing currency); empty when no task
    /// was created.
    pub cost: Option<Money>,
    /// Estimated bill of every task this shot's id has had in the folder (every attempt: first
    /// submits, retries, resends, retakes; an `unknown` counted as paid).
    pub spent: Money,
    /// What the provider reported on success (DashScope; empty for the gateway): the prompt as
    /// it received it and as it rewrote it, and billed, input and output video seconds.
    pub orig_prompt: Option<String>,
    pub actual_prompt: Option<String>,
    pub usage_s: Option<f64>,
    pub input_s: Option<f64>,
    pub output_s: Option<f64>,
    /// Written as one `matrix.<key>` column per key in CSV, a `matrix` object in JSON.
    #[serde(skip)]
    pub matrix: Vec<(String, String)>,
}

/// A download's path relative to the results files: `videos/<file>`.
pub fn video_path(file: &str) -> String {
    format!("{VIDEOS_DIR}/{file}")
}

/// The top-level `prompt` of a request body, read without building the whole body.
pub fn prompt_of(shot: &PlannedShot) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Prompt {
        prompt: Option<String>,
    }
    serde_json::from_str::<Prompt>(&shot.body.text())
        .ok()
        .and_then(|p| p.prompt)
}

/// Every matrix key of the plan, in order of first appearance: the extra CSV columns.
pub fn matrix_keys(shots: &[PlannedShot]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (k, _) in shots.iter().flat_map(|s| &s.matrix) {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    keys
}

/// A row as results.json holds it: the columns, then the matrix as an object.
#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(flatten)]
    row: &'a ResultRow,
    #[serde(
        skip_serializing_if = "<[_]>::is_empty",
        serialize_with = "pairs_as_map"
    )]
    matrix: &'a [(String, String)],
}

fn pairs_as_map<S: serde::Serializer>(
    pairs: &&[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

/// A row as one CSV record: the columns, then one value per matrix key (empty when absent).
fn csv_record<'a>(row: &'a ResultRow, keys: &'a [String]) -> (&'a ResultRow, Vec<&'a str>) {
    let values = keys
        .iter()
        .map(|k| {
            row.matrix
                .iter()
                .find(|(mk, _)| mk == k)
                .map_or("", |(_, v)| v.as_str())
        })
        .collect();
    (row, values)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct ReportError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Seconds between two RFC 3339 times, to a tenth.
pub fn elapsed_between(from: Option<&str>, to: Option<&str>) -> Option<f64> {
    let from = humantime::parse_rfc3339_weak(from?).ok()?;
    let to = humantime::parse_rfc3339_weak(to?).ok()?;
    let secs = to.duration_since(from).ok()?.as_secs_f64();
    Some((secs * 10.0).round() / 10.0)
}

/// Writes both files into `dir` atomically; `matrix_keys` are the extra CSV columns.
pub fn write(dir: &Path, matrix_keys: &[String], rows: &[ResultRow]) -> Result<(), ReportError> {
    Table::new(matrix_keys.to_vec(), rows.len()).write(dir, |i| Some(rows[i].clone()))
}

/// The results table as last written: each row's length in both files, and the files
/// themselves (still open), so a rewrite renders only the rows that changed and copies the
/// rest from the files it replaces, without holding the table in memory.
pub struct Table {
    keys: Vec<String>,
    header: Vec<u8>,
    /// Each row's CSV record and JSON object, in bytes.
    lens: Vec<(u32, u32)>,
    /// The CSV and JSON files written last, and their sizes.
    last: Option<[(std::fs::File, u64); 2]>,
}

impl Table {
    /// A table of `len` rows not written yet.
    pub fn new(matrix_keys: Vec<String>, len: usize) -> Table {
        let columns = HEADER.iter().map(|h| h.to_string());
        let matrix_columns = matrix_keys.iter().map(|k| format!("matrix.{k}"));
        let header = csv_bytes(|w| w.write_record(columns.chain(matrix_columns)));
        Table {
            keys: matrix_keys,
            header,
            lens: vec![(0, 0); len],
            last: None,
        }
    }

    pub fn len(&self) -> usize {
        self.lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Whether a rewrite can copy unchanged rows: the files written last are there as written.
    pub fn can_copy(&self) -> bool {
        self.last.as_ref().is_some_and(|files| {
            files
                .iter()
                .all(|(f, size)| f.metadata().is_ok_and(|m| m.len() == *size))
        })
    }

    /// Replaces both files in `dir`, each through a temporary file and a rename: row `i` is
    /// rendered from `changed(i)`, or copied from the files written last when that is `None`
    /// (which [`can_copy`](Table::can_copy) must allow; otherwise every row is needed).
    pub fn write(
        &mut self,
        dir: &Path,
        mut changed: impl FnMut(usize) -> Option<ResultRow>,
    ) -> Result<(), ReportError> {
        let paths = [dir.join(CSV_FILE), dir.join(JSON_FILE)];
        let err = |k: usize| {
            let path = paths[k].clone();
            move |source| ReportError { path, source }
        };
        let open = |k: usize| -> Result<_, ReportError> {
            let tmp = temp_file_in(dir, ".tmp", "").map_err(err(k))?;
            Ok(CountingWriter {
                out: std::io::BufWriter::with_capacity(256 * 1024, tmp),
                written: 0,
            })
        };
        let (mut csv, mut json) = (open(0)?, open(1)?);
        let last = self.last.as_ref().filter(|_| self.can_copy());
        let mut old = match last {
            Some([(c, _), (j, _)]) => {
                let c = reader(c).map_err(err(0))?;
                Some((c, reader(j).map_err(err(1))?))
            }
            None => None,
        };
        let header_len = self.header.len() as u64;
        if let Some((c, j)) = old.as_mut() {
            copy(c, None, header_len).map_err(err(0))?;
            copy(j, None, 1).map_err(err(1))?;
        }
        csv.write_all(&self.header).map_err(err(0))?;
        json.write_all(b"[").map_err(err(1))?;
        // The lengths change only once both files are in place: a failed rewrite leaves the
        // files written last, and their lengths, as they were.
        let mut lens = self.lens.clone();
        for (i, len) in lens.iter_mut().enumerate() {
            let sep: &[u8] = if i == 0 { b"\n  " } else { b",\n  " };
            json.write_all(sep).map_err(err(1))?;
            let (csv_len, json_len) = *len;
            match (changed(i), old.as_mut()) {
                (Some(row), old) => {
                    if let Some((c, j)) = old {
                        copy(c, None, csv_len.into()).map_err(err(0))?;
                        copy(j, None, (sep.len() as u32 + json_len).into()).map_err(err(1))?;
                    }
                    let (c, j) = self.render(&row);
                    csv.write_all(&c).map_err(err(0))?;
                    json.write_all(&j).map_err(err(1))?;
                    *len = (c.len() as u32, j.len() as u32);
                }
                (None, Some((c, j))) => {
                    copy(c, Some(&mut csv), csv_len.into()).map_err(err(0))?;
                    copy(j, None, sep.len() as u64).map_err(err(1))?;
                    copy(j, Some(&mut json), json_len.into()).map_err(err(1))?;
                }
                (None, None) => {
                    let e = std::io::Error::other(format!("row {i} has nothing to copy from"));
                    return Err(err(0)(e));
                }
            }
        }
        let end: &[u8] = if self.lens.is_empty() {
            b"]\n"
        } else {
            b"\n]\n"
        };
        json.write_all(end).map_err(err(1))?;
        drop(old);
        let csv = csv.persist(&paths[0]).map_err(err(0))?;
        let json = json.persist(&paths[1]).map_err(err(1))?;
        self.lens = lens;
        self.last = Some([csv, json]);
        Ok(())
    }

    /// A row's CSV record and JSON object.
    fn render(&self, row: &ResultRow) -> (Vec<u8>, Vec<u8>) {
        let csv = csv_bytes(|w| w.serialize(csv_record(row, &self.keys)));
        let json = JsonRow {
            row,
            matrix: &row.matrix,
        };
        let json = serde_json::to_vec(&json).expect("a results row serialises");
        (csv, json)
    }
}

/// `file` read from its start.
fn reader(mut file: &std::fs::File) -> std::io::Result<std::io::BufReader<&std::fs::File>> {
    use std::io::Seek;
    file.rewind()?;
    Ok(std::io::BufReader::with_capacity(256 * 1024, file))
}

/// Moves `len` bytes from `from` to `to`, or past them when `to` is `None`; fewer is an error
/// (the file was changed by something else).
fn copy(
    from: &mut impl std::io::Read,
    to: Option<&mut CountingWriter>,
    len: u64,
) -> std::io::Result<()> {
    let mut from = std::io::Read::take(&mut *from, len);
    let moved = match to {
        Some(to) => std::io::copy(&mut from, to)?,
        None => std::io::copy(&mut from, &mut std::io::sink())?,
    };
    if moved == len {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the results file written last was changed during the run",
        ))
    }
}

/// A temporary file being filled, counting what it was given.
struct CountingWriter {
    out: std::io::BufWriter<tempfile::NamedTempFile>,
    written: u64,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl CountingWriter {
    /// Syncs the file and renames it to `path`; the file stays open, with its size.
    fn persist(self, path: &Path) -> std::io::Result<(std::fs::File, u64)> {
        let tmp = self.out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_data()?;
        let file = tmp.persist(path).map_err(|e| e.error)?;
        Ok((file, self.written))
    }
}

/// One CSV record (or the header) as the results file writes it, its line end included.
fn csv_bytes(fill: impl FnOnce(&mut csv::Writer<&mut Vec<u8>>) -> csv::Result<()>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(&mut buf);
    fill(&mut w)
        .and_then(|()| Ok(w.flush()?))
        .expect("a results row serialises");
    drop(w);
    buf
}

/// The version of the JSON documents `plan` and `status` print (and `plan.json`): raised when a
/// field changes meaning or goes away.
pub const FORMAT_VERSION: u32 = 1;

/// The column names, in order; the `matrix.<key>` columns follow.
pub const HEADER: [&str; 28] = [
    "id",
    "status",
    "model",
    "duration",
    "resolution",
    "ratio",
    "seed",
    "task_id",
    "url",
    "file",
    "sha256",
    "bytes",
    "attempts",
    "submitted_at",
    "finished_at",
    "elapsed_s",
    "error",
    "source",
    "row",
    "take",
    "prompt",
    "cost",
    "spent",
    "orig_prompt",
    "actual_prompt",
    "usage_s",
    "input_s",
    "output_s",
];

/// What `plan --format json` prints and `plan.json` holds: the plan's fields, each shot with
/// what `note` adds to it (its cost, and what a run would do), plus totals.
#[derive(Serialize)]
struct PlanJson<'a, N: Serialize, E: Serialize> {
    /// [`FORMAT_VERSION`]: a reader checks it before trusting the fields.
    version: u32,
    name: &'a str,
    manifest: &'a Path,
    out_dir: &'a Path,
    shots: Vec<ShotJson<'a, N>>,
    totals: &'a Totals,
    #[serde(flatten)]
    extra: Option<E>,
}

#[derive(Serialize)]
struct ShotJson<'a, N: Serialize> {
    #[serde(flatten)]
    shot: ShotDoc<'a>,
    #[serde(flatten)]
    note: N,
}

/// A shot's estimated cost in `plan.json`.
#[derive(Serialize)]
struct CostNote {
    cost: Option<Money>,
}

/// Writes the plan document, pretty, with a final newline.
pub fn write_plan_json<N: Serialize>(
    out: &mut dyn Write,
    plan: &Plan,
    totals: &Totals,
    note: impl Fn(usize) -> N,
) -> std::io::Result<()> {
    write_plan_json_with(out, plan, totals, note, None::<()>)
}

/// [`write_plan_json`] with top-level fields of `extra` added (e.g. a shard's place).
pub fn write_plan_json_with<N: Serialize, E: Serialize>(
    out: &mut dyn Write,
    plan: &Plan,
    totals: &Totals,
    note: impl Fn(usize) -> N,
    extra: Option<E>,
) -> std::io::Result<()> {
    let doc = PlanJson {
        version: FORMAT_VERSION,
        name: &plan.name,
        manifest: &plan.manifest,
        out_dir: &plan.out_dir,
        shots: (0..plan.shots.len())
            .map(|i| ShotJson {
                shot: plan.shot_doc(i),
                note: note(i),
            })
            .collect(),
        totals,
        extra,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    out.write_all(b"\n")
}

/// Replaces `<dir>/plan.json` with the plan document, priced with `prices`.
pub fn write_plan(dir: &Path, plan: &Plan, prices: &PriceBook) -> Result<(), ReportError> {
    let totals = Totals::of(plan, prices);
    write_atomic_with(&dir.join(PLAN_FILE), |w| {
        write_plan_json(w, plan, &totals, |i| CostNote {
            cost: prices.shot(&plan.shots[i]),
        })
    })
}

/// A temporary file in `dir`, created with the mode a plain `File::create` would get (0666
/// less the umask) rather than 0600.
pub fn temp_file_in(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Replaces `path` with `data` through a temporary file in the same folder.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ReportError> {
    write_atomic_with(path, |out| out.write_all(data))
}

/// Replaces `path` with what `fill` writes, through a buffered temporary file in the same folder.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), ReportError> {
    let err = |source| ReportError {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_file_in(dir, ".tmp", "").map_err(err)?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, tmp);
    fill(&mut out).map_err(err)?;
    let tmp = out.into_inner().map_err(|e| err(e.into_error()))?;
    tmp.as_file().sync_data().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(super) fn row(id: &str) -> ResultRow {
        ResultRow {
            id: id.into(),
            status: ResultStatus::Failed,
            model: "wan2.7-t2v-2026-04-25".into(),
            duration: 5,
            resolution: "720P".into(),
            ratio: Some("16:9".into()),
            seed: None,
            task_id: Some("t1".into()),
            url: None,
            file: None,
            sha256: None,
            bytes: None,
            attempts: 1,
            submitted_at: None,
            finished_at: None,
            elapsed_s: None,
            error: Some("moderation, \"quoted\"".into()),
            source: Some("products".into()),
            row: Some(3),
            take: 2,
            prompt: Some("A cat.".into()),
            cost: Money::parse("0.5").ok(),
            spent: Money::parse("1").unwrap(),
            orig_prompt: None,
            actual_prompt: None,
            usage_s: None,
            input_s: None,
            output_s: None,
            matrix: vec![("ratio".into(), "16:9".into())],
        }
    }

    #[test]
    fn csv_has_header_in_order_and_quotes_errors() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ["ratio".to_owned(), "style".to_owned()];
        let b = ResultRow {
            matrix: Vec::new(),
            ..row("b")
        };
        write(dir.path(), &keys, &[row("a"), b]).unwrap();
        let text = std::fs::read_to_string(dir.path().join(CSV_FILE)).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            format!("{},matrix.ratio,matrix.style", HEADER.join(","))
        );
        assert_eq!(
            lines.next().unwrap(),
            "a,failed,wan2.7-t2v-2026-04-25,5,720P,16:9,,t1,,,,,1,,,,\"moderation, \"\"quoted\"\"\",products,3,2,A cat.,0.50,1.00,,,,,,16:9,"
        );
        assert!(
            lines
                .next()
                .unwrap()
                .ends_with(",products,3,2,A cat.,0.50,1.00,,,,,,,")
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(JSON_FILE)).unwrap()).unwrap();
        assert_eq!(json[1]["id"], "b");
        assert_eq!(json[1]["status"], "failed");
        assert_eq!(json[1]["row"], 3);
        assert_eq!(json[0]["matrix"]["ratio"], "16:9");
        assert!(json[1].get("matrix").is_none());
    }

    #[test]
    fn empty_table_still_has_a_header() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[], &[]).unwrap();
        let text = std::fs::read_to_string(dir.path().join(CSV_FILE)).unwrap();
        assert_eq!(text.trim_end(), HEADER.join(","));
    }

    #[test]
    fn elapsed_is_seconds_between_stamps() {
        assert_eq!(
            elapsed_between(
                Some("2026-11-24T02:00:00.000Z"),
                Some("2026-11-24T02:01:30.250Z")
            ),
            Some(90.3)
        );
        assert_eq!(elapsed_between(None, Some("2026-11-24T02:00:00Z")), None);
    }
}
