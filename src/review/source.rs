//! What the page shows, read from the output folder: `plan.json` (the graph that was run: ids,
//! keys, prompts) joined by id with `results.json` (what happened to each shot).
//!
//! Both files are read as loose JSON and picked field by field, so a results table written by
//! an older or newer shotlist (extra columns, a `file` with or without `videos/`) still reads;
//! only the shape of the whole document and its size are enforced.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read as _, Take};
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::ReviewError;
use crate::plan::Plan;

/// Most bytes read from `plan.json` or `results.json`.
pub const MAX_TABLE_BYTES: u64 = 1 << 30;

/// One shot as the page and `mark` see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shot {
    pub id: String,
    /// The key of the request whose video this is: marks are given to (id, key).
    pub key: String,
    pub status: String,
    pub model: String,
    pub duration: Option<u64>,
    pub resolution: Option<String>,
    pub ratio: Option<String>,
    pub seed: Option<u64>,
    pub cost: Option<String>,
    /// Every task of this shot id in the folder, estimated (the results' `spent`: retries,
    /// resends and retakes counted).
    pub spent: Option<String>,
    /// The seconds the provider says it made (DashScope's `output_s`), e.g. for an edit that
    /// kept its input's length (`duration` 0).
    pub output_s: Option<String>,
    pub prompt: Option<String>,
    pub error: Option<String>,
    /// The video's path relative to the output folder (`videos/<name>`), when downloaded.
    pub file: Option<String>,
    pub take: Option<u64>,
    /// Matrix values, in the order the results list them.
    pub matrix: Vec<(String, String)>,
    pub source: Option<String>,
    pub row: Option<u64>,
}

/// An earlier attempt of a shot whose video was kept under `videos/superseded/` when a newer
/// attempt (a retake, an edit) downloaded to the same file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earlier {
    pub key: String,
    /// `videos/superseded/<name>`.
    pub file: String,
}

/// Each shot id's earlier attempts, oldest first, from the journal's `superseded` lines. The
/// page is a convenience: an unreadable journal gives no history rather than no page.
pub fn earlier(dir: &Path) -> HashMap<String, Vec<Earlier>> {
    let path = dir.join(crate::journal::FILE_NAME);
    if check_inside(&path).is_err() {
        return HashMap::new();
    }
    let Ok(superseded) = crate::journal::superseded_file(&path) else {
        return HashMap::new();
    };
    let mut out: HashMap<String, Vec<Earlier>> = HashMap::new();
    for e in superseded {
        let name = e
            .file
            .as_deref()
            .and_then(|f| f.strip_prefix("superseded/"));
        let Some(file) = name.and_then(video_path) else {
            continue;
        };
        let file = file.replacen("videos/", "videos/superseded/", 1);
        out.entry(e.id)
            .or_default()
            .push(Earlier { key: e.key, file });
    }
    out
}

/// Refuses `path` when it is a symbolic link leading out of its folder (the output folder):
/// what another process can put there must not make shotlist read, or act on, a file elsewhere.
pub fn check_inside(path: &Path) -> Result<(), ReviewError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    crate::exec::outdir::check_inside(dir, path).map_err(|e| match e {
        crate::exec::OutDirError::Io { path, source, .. } => ReviewError::Read { path, source },
        _ => ReviewError::Escapes {
            path: path.to_owned(),
            dir: dir.to_owned(),
        },
    })
}

/// Reads a JSON file of at most `limit` bytes; `what` names it in errors.
pub fn read_json(path: &Path, limit: u64) -> Result<Option<Value>, ReviewError> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ReviewError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ReviewError::Read {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(ReviewError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ReviewError::json(path, &e))
}

/// The shots of the output folder `dir` in plan order: `plan.json` when the folder has one,
/// else `fallback` (the manifest's current plan; without one, a missing `plan.json` is an
/// error), joined with `results.json`. Result rows for ids the plan does not know come last.
///
/// Both files are read as a stream, one shot's `Value` at a time: as whole `Value`s they took
/// ~5 KB a shot, 540 MB at the end of a 100,000-shot run (BENCHMARKS.md, issue 21).
pub fn load(dir: &Path, fallback: Option<&Plan>) -> Result<Vec<Shot>, ReviewError> {
    let plan_path = dir.join(crate::report::PLAN_FILE);
    let listed = stream_in_folder(&plan_path, MAX_TABLE_BYTES, |de| {
        de.deserialize_any(ShotsMember)
    })?;
    let mut shots: Vec<Shot> = match (listed, fallback) {
        (Some(Some(shots)), _) => shots,
        (Some(None), _) => {
            return Err(ReviewError::shape(
                &plan_path,
                "an object with a `shots` list",
            ));
        }
        (None, Some(fallback)) => fallback.shots.iter().map(from_planned).collect(),
        (None, None) => {
            return Err(ReviewError::Read {
                path: plan_path,
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
    };
    let results_path = dir.join(crate::report::JSON_FILE);
    let index: HashMap<String, usize> = shots
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    let mut unknown = Vec::new();
    let mut apply = |row: Value| {
        let Some(row) = row.as_object() else { return };
        let Some(id) = text(row, "id") else { return };
        match index.get(&id) {
            Some(&i) => apply_result(&mut shots[i], row),
            None => {
                let mut shot = Shot {
                    id,
                    ..Shot::default()
                };
                apply_result(&mut shot, row);
                unknown.push(shot);
            }
        }
    };
    let listed = stream_in_folder(&results_path, MAX_TABLE_BYTES, |de| {
        de.deserialize_any(Items(&mut apply))
    })?;
    if listed == Some(false) {
        return Err(ReviewError::shape(&results_path, "a list of result rows"));
    }
    shots.extend(unknown);
    Ok(shots)
}

/// Opens a JSON file of the output folder (a link leading out of it is refused) of at most
/// `limit` bytes and reads it with `read`; `None` when there is no file. Errors as
/// [`read_json`]'s.
fn stream_in_folder<T>(
    path: &Path,
    limit: u64,
    read: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::IoRead<&mut BufReader<Take<File>>>>,
    ) -> serde_json::Result<T>,
) -> Result<Option<T>, ReviewError> {
    check_inside(path)?;
    let io_error = |source| ReviewError::Read {
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(source)),
    };
    let mut reader = BufReader::new(file.take(limit + 1));
    let parsed = {
        let mut de = serde_json::Deserializer::from_reader(&mut reader);
        read(&mut de).and_then(|value| de.end().map(|()| value))
    };
    // What is left unread decides "too large" first, as when the file was read whole.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(io_error)?;
    if reader.get_ref().limit() == 0 {
        return Err(ReviewError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    parsed.map(Some).map_err(|e| match e.classify() {
        serde_json::error::Category::Io => io_error(e.into()),
        _ => ReviewError::json(path, &e),
    })
}

/// The last `shots` member of a JSON object, parsed item by item: `Some(None)` when it is not
/// a list or the document is not an object.
struct ShotsMember;

impl<'de> Visitor<'de> for ShotsMember {
    type Value = Option<Vec<Shot>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut shots = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "shots" {
                let mut list = Vec::new();
                let push = |item: Value| list.extend(item.as_object().and_then(from_plan_json));
                let is_list = map.next_value_seed(Items(push))?;
                shots = is_list.then_some(list);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(shots)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Items(|_| {}).visit_seq(seq).map(|_| None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A JSON value whose items, when it is a list, go to the function one by one as they are
/// parsed; `true` when it was a list (anything else is skipped).
struct Items<F>(F);

impl<'de, F: FnMut(Value)> DeserializeSeed<'de> for Items<F> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Value)> Visitor<'de> for Items<F> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(item) = seq.next_element::<Value>()? {
            (self.0)(item);
        }
        Ok(true)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

fn from_planned(s: &crate::plan::PlannedShot) -> Shot {
    Shot {
        id: s.id.clone(),
        key: s.key.clone(),
        status: "pending".into(),
        model: s.model.clone(),
        duration: Some(s.duration.into()),
        resolution: Some(s.resolution.clone()),
        ratio: s.ratio.clone(),
        seed: s.seed.map(u64::from),
        prompt: s.body.value().get("prompt").and_then(scalar),
        source: s.source.clone(),
        row: s.row.map(|r| r as u64),
        take: Some(s.take.into()),
        matrix: s.matrix.clone(),
        ..Shot::default()
    }
}

fn from_plan_json(s: &Map<String, Value>) -> Option<Shot> {
    Some(Shot {
        id: text(s, "id")?,
        key: text(s, "key").unwrap_or_default(),
        status: "pending".into(),
        model: text(s, "model").unwrap_or_default(),
        duration: number(s, "duration"),
        resolution: text(s, "resolution"),
        ratio: text(s, "ratio"),
        seed: number(s, "seed"),
        prompt: s.get("body").and_then(|b| b.get("prompt")).and_then(scalar),
        source: text(s, "source"),
        row: number(s, "row"),
        take: number(s, "take"),
        matrix: matrix_values(s),
        ..Shot::default()
    })
}

/// Fills `shot` from a results row; a field the row lacks keeps the plan's value.
fn apply_result(shot: &mut Shot, row: &Map<String, Value>) {
    let keep = |slot: &mut Option<String>, v: Option<String>| {
        if v.is_some() {
            *slot = v;
        }
    };
    if let Some(k) = text(row, "key") {
        shot.key = k;
    }
    shot.status = text(row, "status").unwrap_or_else(|| "pending".into());
    if let Some(m) = text(row, "model") {
        shot.model = m;
    }
    shot.duration = number(row, "duration").or(shot.duration);
    keep(&mut shot.resolution, text(row, "resolution"));
    keep(&mut shot.ratio, text(row, "ratio"));
    shot.seed = number(row, "seed").or(shot.seed);
    keep(&mut shot.prompt, text(row, "prompt"));
    keep(&mut shot.source, text(row, "source"));
    shot.row = number(row, "row").or(shot.row);
    shot.cost = row.get("cost").and_then(scalar);
    shot.spent = row.get("spent").and_then(scalar);
    shot.output_s = row.get("output_s").and_then(scalar);
    shot.error = text(row, "error");
    shot.file = text(row, "file").and_then(|f| video_path(&f));
    shot.take = number(row, "take").or(shot.take);
    let matrix = matrix_values(row);
    if !matrix.is_empty() {
        shot.matrix = matrix;
    }
}

/// `videos/<name>` for a results `file` (a bare name or already `videos/<name>`); `None` for
/// anything that could point outside the folder or at another scheme.
pub fn video_path(file: &str) -> Option<String> {
    let name = file.strip_prefix("videos/").unwrap_or(file);
    let safe = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    safe.then(|| format!("videos/{name}"))
}

/// Matrix values as the results carry them: a `matrix` object, or `matrix.<key>` /
/// `matrix_<key>` columns.
fn matrix_values(row: &Map<String, Value>) -> Vec<(String, String)> {
    if let Some(Value::Object(m)) = row.get("matrix") {
        return m
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), scalar(v)?)))
            .collect();
    }
    row.iter()
        .filter_map(|(k, v)| {
            let key = k
                .strip_prefix("matrix.")
                .or_else(|| k.strip_prefix("matrix_"))?;
            Some((key.to_owned(), scalar(v)?))
        })
        .collect()
}

fn text(row: &Map<String, Value>, field: &str) -> Option<String> {
    row.get(field).and_then(scalar).filter(|s| !s.is_empty())
}

fn number(row: &Map<String, Value>, field: &str) -> Option<u64> {
    match row.get(field)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A string, number or boolean as text; `None` for null, lists and objects.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            name: "t".into(),
            manifest: "t.yaml".into(),
            out_dir: "out".into(),
            shots: Vec::new(),
            batch_seed: None,
        }
    }

    /// What `load` read before it streamed: both files as whole `Value`s.
    fn load_whole(dir: &Path) -> Result<Vec<Shot>, String> {
        let read = |f: &str| read_json(&dir.join(f), MAX_TABLE_BYTES).map_err(|e| e.to_string());
        let doc = read("plan.json")?.unwrap();
        let list = doc.get("shots").and_then(Value::as_array).ok_or("shape")?;
        let mut shots: Vec<Shot> = (list.iter().filter_map(Value::as_object))
            .filter_map(from_plan_json)
            .collect();
        if let Some(doc) = read("results.json")? {
            let index: HashMap<String, usize> = (shots.iter().enumerate())
                .map(|(i, s)| (s.id.clone(), i))
                .collect();
            for row in doc
                .as_array()
                .ok_or("shape")?
                .iter()
                .filter_map(Value::as_object)
            {
                let Some(id) = text(row, "id") else { continue };
                match index.get(&id) {
                    Some(&i) => apply_result(&mut shots[i], row),
                    None => {
                        let mut shot = Shot {
                            id,
                            ..Shot::default()
                        };
                        apply_result(&mut shot, row);
                        shots.push(shot);
                    }
                }
            }
        }
        Ok(shots)
    }

    fn load_from(plan_json: &str, results_json: Option<&str>) -> Result<Vec<Shot>, ReviewError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plan.json"), plan_json).unwrap();
        if let Some(r) = results_json {
            std::fs::write(dir.path().join("results.json"), r).unwrap();
        }
        let streamed = load(dir.path(), Some(&plan()));
        if let Ok(shots) = &streamed {
            assert_eq!(Ok(shots), load_whole(dir.path()).as_ref());
        }
        streamed
    }

    #[test]
    fn streamed_files_read_as_whole_values_did() {
        let plan_json = r#"{"version": 1, "shots": [{"id": "old"}], "name": "x",
            "shots": [{"id": "a", "key": "k1", "model": "t2v", "duration": 5, "seed": "7",
                       "body": {"prompt": "A cat.", "n": [1, {"x": null}]}, "matrix": {"r": 1}},
                      3, {"key": "no id"}, {"id": "b", "take": 2, "row": 1.5}], "extra": [{}]}"#;
        let results = r#"[{"id": "b", "status": "succeeded", "file": "b.mp4", "cost": 0.5,
                           "matrix.ratio": "16:9", "spent": "1"}, "x", {"status": "failed"},
                          {"id": "z", "status": "failed", "error": "moderation"},
                          {"id": "a", "key": "k2", "prompt": ""}, {"id": "z", "take": 3}]"#;
        let shots = load_from(plan_json, Some(results)).unwrap();
        let ids: Vec<&str> = shots.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "z", "z"]);
        assert_eq!(shots[0].key, "k2");
        assert_eq!(shots[1].file.as_deref(), Some("videos/b.mp4"));
        load_from(plan_json, None).unwrap();
        load_from(r#"{"shots": []}"#, Some("[]")).unwrap();
    }

    #[test]
    fn a_document_of_another_shape_is_refused_as_before() {
        for doc in [
            r#"[{"shots": []}]"#,
            "3",
            "null",
            r#""s""#,
            r#"{"shots": {"a": 1}}"#,
        ] {
            let e = load_from(doc, None).unwrap_err();
            assert!(matches!(e, ReviewError::Shape { .. }), "{doc}: {e}");
        }
        let e = load_from(r#"{"shots": [], "shots": 1}"#, None).unwrap_err();
        assert!(matches!(e, ReviewError::Shape { .. }), "{e}");
        for results in [r#"{"id": "a"}"#, "true", "1.5"] {
            let e = load_from(r#"{"shots": []}"#, Some(results)).unwrap_err();
            assert!(matches!(e, ReviewError::Shape { .. }), "{results}: {e}");
        }
    }

    #[test]
    fn broken_or_oversized_files_give_the_errors_of_a_whole_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let cases = [
            ("{\"shots\": [\n  {\"id\": }]}", 10),
            ("{\"shots\": []} x", 100),
            ("{\"shots\": [", 100),
            ("{\"shots\": []}   ", 16),
            ("{\"shots\": []}   ", 17),
            ("{\"shots\": [}", 5),
        ];
        for (text, limit) in cases {
            std::fs::write(&path, text).unwrap();
            let whole = read_json(&path, limit)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let streamed = stream_in_folder(&path, limit, |de| de.deserialize_any(ShotsMember))
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert_eq!(streamed, whole, "{text:?} at {limit}");
        }
        assert!(matches!(
            stream_in_folder(&dir.path().join("none.json"), 10, |de| {
                de.deserialize_any(ShotsMember)
            }),
            Ok(None)
        ));
    }
}
