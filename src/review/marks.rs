//! Marks: a reviewer's verdict on one video, stored in `<out>/marks.json`.
//!
//! A mark belongs to a shot id *and* the key of the request that made the video, so editing a
//! shot (a new key, a new video) never carries an old verdict over to a video nobody has seen,
//! and a later retake can tell the rejected attempt from the new one. The file is written by
//! `shotlist mark` (atomically, under a lock) and by hand or by the review page's download, so
//! it is read as hostile input: size-capped, every entry checked, errors name the place; a
//! `marks.json` that is a link leading out of its folder is refused, not followed.
//!
//! The writer never makes a file its reader refuses: it writes one compact entry per line
//! (diffs stay readable) and refuses, writing nothing, a file over [`MAX_BYTES`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ReviewError;

pub const FILE_NAME: &str = "marks.json";
/// Held by whoever writes `marks.json` (`mark`, `merge`).
pub const LOCK_FILE: &str = ".marks.lock";
/// The format version this shotlist writes and reads.
pub const VERSION: u32 = 1;
/// Most bytes read from a marks file.
pub const MAX_BYTES: u64 = 64 << 20;
/// Longest note kept, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// What a reviewer said about a video. `cleared` appears only in files to import: it removes
/// the mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approved,
    Rejected,
    Cleared,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Rejected => "rejected",
            Verdict::Cleared => "cleared",
        }
    }
}

/// One entry of `marks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub id: String,
    /// The shot's key when the video was marked.
    pub key: String,
    pub mark: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the mark was given (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// Every mark of an output folder, by (id, key); written sorted, so the file diffs well.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    by_shot: BTreeMap<(String, String), Mark>,
}

impl Marks {
    /// Reads `path`, an output folder's marks file; a missing file is no marks, a link leading
    /// out of the folder an error.
    pub fn load(path: &Path) -> Result<Marks, ReviewError> {
        super::source::check_inside(path)?;
        let mut marks = Marks::default();
        for m in read_entries(path)?.unwrap_or_default() {
            marks.apply(m);
        }
        Ok(marks)
    }

    /// The mark of the video `key` of shot `id`.
    pub fn get(&self, id: &str, key: &str) -> Option<&Mark> {
        self.by_shot.get(&(id.to_owned(), key.to_owned()))
    }

    /// Sets or (for `cleared`) removes one mark.
    pub fn apply(&mut self, mark: Mark) {
        let slot = (mark.id.clone(), mark.key.clone());
        if mark.mark == Verdict::Cleared {
            self.by_shot.remove(&slot);
        } else {
            self.by_shot.insert(slot, mark);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Mark> {
        self.by_shot.values()
    }

    pub fn len(&self) -> usize {
        self.by_shot.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_shot.is_empty()
    }

    /// Whether shot `id` has an approved mark for another video than `key`'s.
    pub fn approved_other(&self, id: &str, key: &str) -> bool {
        (self.by_shot.range((id.to_owned(), String::new())..))
            .take_while(|((i, _), _)| i == id)
            .any(|((_, k), m)| k != key && m.mark == Verdict::Approved)
    }

    /// The marks whose shot id `known` does not know (stale: the shot left the plan).
    pub fn stale(&self, known: impl Fn(&str) -> bool) -> Vec<&Mark> {
        self.iter().filter(|m| !known(&m.id)).collect()
    }

    /// Removes the marks whose shot id `known` does not know; returns how many.
    pub fn prune(&mut self, known: impl Fn(&str) -> bool) -> usize {
        let before = self.len();
        self.by_shot.retain(|(id, _), _| known(id));
        before - self.len()
    }

    /// The file's bytes: compact, one entry per line.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{{\"version\":{VERSION},\"marks\":[").into_bytes();
        for (i, m) in self.by_shot.values().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            // A mark is strings and an enum: serialising it cannot fail.
            serde_json::to_writer(&mut out, m).expect("a mark serialises");
        }
        out.extend_from_slice(b"\n]}\n");
        out
    }

    /// Replaces `path` atomically; refuses (writing nothing) a file over what [`Marks::load`]
    /// reads.
    pub fn save(&self, path: &Path) -> Result<(), ReviewError> {
        self.save_within(path, MAX_BYTES)
    }

    fn save_within(&self, path: &Path, limit: u64) -> Result<(), ReviewError> {
        let bytes = self.encode();
        if bytes.len() as u64 > limit {
            return Err(ReviewError::TooLargeToWrite {
                path: path.to_owned(),
                size: bytes.len() as u64,
                limit,
            });
        }
        super::source::check_inside(path)?;
        crate::report::write_atomic(path, &bytes).map_err(ReviewError::Write)
    }
}

/// The entries of a marks file (ours or one to import), each checked; `None` when the file
/// does not exist.
pub fn read_entries(path: &Path) -> Result<Option<Vec<Mark>>, ReviewError> {
    let Some(doc) = super::source::read_json(path, MAX_BYTES)? else {
        return Ok(None);
    };
    entries(path, &doc).map(Some)
}

/// The entries of the marks file `path` whose bytes the caller read (bounded, e.g. without
/// following links).
pub fn parse_entries(path: &Path, bytes: &[u8]) -> Result<Vec<Mark>, ReviewError> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ReviewError::json(path, &e))?;
    entries(path, &doc)
}

fn entries(path: &Path, doc: &serde_json::Value) -> Result<Vec<Mark>, ReviewError> {
    let version = doc.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(VERSION)) {
        return Err(ReviewError::shape(
            path,
            "an object with `\"version\": 1` (a newer shotlist may have written it)",
        ));
    }
    let Some(list) = doc.get("marks").and_then(serde_json::Value::as_array) else {
        return Err(ReviewError::shape(path, "a `marks` list"));
    };
    let mut marks = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let invalid = |message: String| ReviewError::Invalid {
            path: path.to_owned(),
            entry: Some(i + 1),
            message,
        };
        let m: Mark = Mark::deserialize(entry).map_err(|e| invalid(e.to_string()))?;
        check(&m).map_err(invalid)?;
        marks.push(m);
    }
    Ok(marks)
}

/// Takes the exclusive lock every writer of `dir/marks.json` holds while it reads and replaces
/// the file; released when the returned file is dropped.
pub fn lock(dir: &Path) -> std::io::Result<std::fs::File> {
    // Append mode: a lock file that was replaced by a link never truncates what it points to.
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOCK_FILE))?;
    f.lock()?;
    Ok(f)
}

/// The rules an entry must meet: the id and key forms of the planner, a bounded note.
fn check(m: &Mark) -> Result<(), String> {
    let id_ok = (1..=128).contains(&m.id.len())
        && m.id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !id_ok {
        return Err(format!(
            "id `{}` is not a shot id ([A-Za-z0-9._-], 1 to 128 characters)",
            m.id.chars().take(140).collect::<String>()
        ));
    }
    if m.key.len() != 64 || !m.key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("shot `{}`: key is not 64 hex digits", m.id));
    }
    if let Some(note) = &m.note
        && note.chars().count() > MAX_NOTE_CHARS
    {
        return Err(format!(
            "shot `{}`: the note is longer than {MAX_NOTE_CHARS} characters",
            m.id
        ));
    }
    Ok(())
}

/// Up to ten ids, then how many more.
pub fn list_some(ids: &[String]) -> String {
    let mut text = ids.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > 10 {
        text.push_str(&format!(" and {} more", ids.len() - 10));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    fn mark(id: &str, k: char, v: Verdict) -> Mark {
        Mark {
            id: id.into(),
            key: key(k),
            mark: v,
            note: None,
            at: None,
        }
    }

    #[test]
    fn marks_are_per_id_and_key_and_cleared_removes() {
        let mut m = Marks::default();
        m.apply(mark("a", 'a', Verdict::Rejected));
        m.apply(mark("a", 'b', Verdict::Approved));
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("a", &key('a')).unwrap().mark, Verdict::Rejected);
        m.apply(mark("a", 'a', Verdict::Cleared));
        assert!(m.get("a", &key('a')).is_none());
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut m = Marks::default();
        let mut r = mark("b", 'c', Verdict::Rejected);
        r.note = Some("too dark </script>".into());
        m.apply(r);
        m.apply(mark("a", 'd', Verdict::Approved));
        m.save(&path).unwrap();
        assert_eq!(Marks::load(&path).unwrap(), m);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.find("\"a\"").unwrap() < text.find("\"b\"").unwrap());
    }

    #[test]
    fn hostile_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let cases: [(&str, &str); 6] = [
            ("{\"version\": 1,\n \"marks\": [", "line 2"),
            ("[]", "version"),
            ("{\"version\": 2, \"marks\": []}", "version"),
            (
                "{\"version\": 1, \"marks\": [{\"id\": \"../x\", \"key\": \"k\", \"mark\": \"rejected\"}]}",
                "entry 1",
            ),
            (
                "{\"version\": 1, \"marks\": [{\"id\": \"a\", \"key\": 5, \"mark\": \"rejected\"}]}",
                "entry 1: invalid type",
            ),
            (
                "{\"version\": 1, \"marks\": [{\"id\": \"a\", \"key\": \"k\", \"mark\": \"maybe\"}]}",
                "maybe",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).unwrap();
            let err = Marks::load(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains(FILE_NAME), "{err}");
        }
        let long = format!(
            "{{\"version\": 1, \"marks\": [{{\"id\": \"a\", \"key\": \"{}\", \"mark\": \"rejected\", \"note\": \"{}\"}}]}}",
            key('e'),
            "x".repeat(MAX_NOTE_CHARS + 1)
        );
        std::fs::write(&path, long).unwrap();
        assert!(Marks::load(&path).unwrap_err().to_string().contains("note"));
    }

    #[test]
    fn the_writer_refuses_what_the_reader_would_and_writes_compact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut m = Marks::default();
        for i in 0..50 {
            let mut r = mark(&format!("s{i}"), 'a', Verdict::Rejected);
            r.note = Some("n".repeat(100));
            m.apply(r);
        }
        let size = m.encode().len() as u64;
        let err = m.save_within(&path, size - 1).unwrap_err().to_string();
        assert!(err.contains("over the") && err.contains("--prune"), "{err}");
        assert!(!path.exists(), "nothing written");
        m.save_within(&path, size).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 52, "one entry per line");
        assert_eq!(Marks::load(&path).unwrap(), m);
        // Never larger than the same marks written compactly by hand (one newline per entry
        // at most).
        let compact = serde_json::json!({"version": 1, "marks": m.iter().collect::<Vec<_>>()});
        assert!(text.len() <= compact.to_string().len() + m.len() + 3);
    }

    #[test]
    fn stale_marks_are_counted_and_pruned_and_approvals_of_other_videos_found() {
        let mut m = Marks::default();
        m.apply(mark("a", 'a', Verdict::Approved));
        m.apply(mark("gone", 'b', Verdict::Rejected));
        m.apply(mark("ab", 'c', Verdict::Approved));
        assert!(m.approved_other("a", &key('f')));
        assert!(!m.approved_other("a", &key('a')));
        assert!(!m.approved_other("abc", &key('f')));
        let known = |id: &str| id != "gone";
        assert_eq!(m.stale(known).len(), 1);
        assert_eq!(m.prune(known), 1);
        assert_eq!(m.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_leading_out_is_refused_and_one_inside_followed() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut m = Marks::default();
        m.apply(mark("a", 'a', Verdict::Rejected));
        m.save(&outside.path().join("x.json")).unwrap();
        let path = dir.path().join(FILE_NAME);
        std::os::unix::fs::symlink(outside.path().join("x.json"), &path).unwrap();
        let err = Marks::load(&path).unwrap_err();
        assert!(matches!(err, ReviewError::Escapes { .. }), "{err}");
        assert!(err.is_input());
        assert!(m.save(&path).is_err(), "never written through");
        std::fs::remove_file(&path).unwrap();
        m.save(&dir.path().join("real.json")).unwrap();
        std::os::unix::fs::symlink("real.json", &path).unwrap();
        assert_eq!(Marks::load(&path).unwrap(), m);
    }

    proptest::proptest! {
        /// Whatever `mark` writes, `mark` reads back as it was.
        #[test]
        fn what_mark_writes_mark_reads(
            entries in proptest::collection::vec(
                (
                    "[A-Za-z0-9._-]{1,128}",
                    "[0-9a-f]{64}",
                    0..2u8,
                    proptest::option::of(proptest::collection::vec(proptest::char::any(), 0..MAX_NOTE_CHARS)),
                    proptest::option::of("\\PC{0,40}"),
                ),
                0..40,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(FILE_NAME);
            let mut m = Marks::default();
            for (id, key, v, note, at) in entries {
                m.apply(Mark {
                    id,
                    key,
                    mark: if v == 0 { Verdict::Approved } else { Verdict::Rejected },
                    note: note.map(|n| n.into_iter().collect()),
                    at,
                });
            }
            m.save(&path).unwrap();
            let back = Marks::load(&path).unwrap();
            proptest::prop_assert_eq!(&back, &m);
            back.save(&path).unwrap();
            proptest::prop_assert_eq!(Marks::load(&path).unwrap(), m);
        }
    }

    #[test]
    fn a_file_over_the_cap_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_BYTES + 1).unwrap();
        let err = Marks::load(&path).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}
