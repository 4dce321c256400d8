//! Review: a contact sheet of an output folder (`review.html`) and the marks reviewers give its
//! videos (`marks.json`).
//!
//! The page is one static file that needs nothing but the folder it sits in: no server, no
//! network, no CDN, so it opens from `file://`, from any static host and from a CI artifact.
//! Everything in it comes from the folder (`plan.json`, `results.json`, `marks.json`), and since
//! prompts and provider errors are outside text, all of it goes through HTML escaping and the
//! page's Content-Security-Policy allows only its own inline script and style (by hash) and
//! local videos. A static page cannot write files, so marks made in the browser leave as a
//! `shotlist mark` command to copy or a `marks.json` to import.
//!
//! A batch may hold a million shots: everything here is linear in them, and the page is split
//! into files of at most [`PAGE_SHOTS`] shots (`review.html`, `review-2.html`, ...) linked to
//! each other, so a browser opens each at once. Writing stops between pages when asked (a
//! signal), leaving every page written whole or not at all.

pub mod marks;
mod page;
pub mod retake;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use marks::{Mark, Marks, Verdict};
pub use source::Shot;

use crate::plan::Plan;
use crate::report::ReportError;

pub const PAGE_FILE: &str = "review.html";
/// Most shots on one page.
pub const PAGE_SHOTS: usize = 1000;

/// The file of page `n` (0-based): `review.html`, then `review-2.html`, ...
pub fn page_file(n: usize) -> String {
    if n == 0 {
        PAGE_FILE.to_owned()
    } else {
        format!("review-{}.html", n + 1)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {limit} bytes; refusing to read it")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error(
        "{path} would be {size} bytes, over the {limit} a reader accepts; nothing was written. \
         Remove marks of shots no longer in the plan (`shotlist mark MANIFEST --prune`) or split \
         the batch"
    )]
    TooLargeToWrite {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error(
        "{path} is a symbolic link that leads out of the output folder {dir}; shotlist does not \
         follow it (nothing was sent): replace it with a real file"
    )]
    Escapes { path: PathBuf, dir: PathBuf },
    #[error(
        "{path}: line {line} column {column}: not valid JSON: {message}; fix or delete the file"
    )]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: expected {expected}")]
    Shape { path: PathBuf, expected: String },
    #[error("{path}{}: {message}", entry.map(|n| format!(": entry {n}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        entry: Option<usize>,
        message: String,
    },
    #[error(transparent)]
    Write(#[from] ReportError),
    #[error("cannot render {PAGE_FILE}: {0}")]
    Render(String),
    #[error("interrupted while writing the review pages")]
    Interrupted,
}

impl ReviewError {
    fn json(path: &Path, e: &serde_json::Error) -> Self {
        let message = e.to_string();
        // serde_json appends " at line L column C"; the path prefix already says where.
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .to_owned();
        ReviewError::Json {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message,
        }
    }

    fn shape(path: &Path, expected: &str) -> Self {
        ReviewError::Shape {
            path: path.to_owned(),
            expected: expected.to_owned(),
        }
    }

    /// Whether the fault is in a file's content (exit 2) rather than the disk (exit 3).
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            ReviewError::Read { .. } | ReviewError::Write(_) | ReviewError::Interrupted
        )
    }
}

/// Shots held at their approved video while an upstream is retaken: id → that upstream's id.
pub type Held = HashMap<String, String>;

/// The held shots among `why` (from [`retake::apply`], by shot of `plan`).
pub fn held(plan: &Plan, why: &[Option<retake::Retake>]) -> Held {
    (plan.shots.iter().zip(why))
        .filter_map(|(shot, why)| match why {
            Some(retake::Retake::Held(up)) => Some((shot.id.clone(), up.clone())),
            _ => None,
        })
        .collect()
}

/// The held shots of the output folder `dir` for `plan`, the manifest's plan before retakes.
/// The page is a convenience: an unreadable journal holds nothing rather than giving no page.
/// Only an approved video holds a shot, so without an approval the journal is not replayed
/// (about 1 KB a shot).
pub fn held_in_folder(dir: &Path, mut plan: Plan) -> Result<Held, ReviewError> {
    let path = dir.join(crate::journal::FILE_NAME);
    source::check_inside(&path)?;
    let marks = Marks::load(&dir.join(marks::FILE_NAME))?;
    if !marks.iter().any(|m| m.mark == Verdict::Approved) {
        return Ok(Held::new());
    }
    let Ok(journal) = crate::journal::replay_file(&path, true) else {
        return Ok(Held::new());
    };
    let why = retake::apply(&mut plan, &journal, &marks, false);
    Ok(held(&plan, &why))
}

/// Whether the output folder `dir` has the `plan.json` the page reads its shots from; without
/// it, the page needs the plan itself ([`PageOf::fallback`]).
pub fn has_plan_file(dir: &Path) -> bool {
    dir.join(crate::report::PLAN_FILE).is_file()
}

/// What the page needs of a plan besides its output folder's files: the name and manifest its
/// header shows, and the plan itself only for a folder without `plan.json` (before any run).
/// `run` writes its page after the run wrote `plan.json`, and without its plan in memory: the
/// page's own per-shot data next to the whole plan took the run's peak over 200 MB at 100,000
/// shots (BENCHMARKS.md, issue 21).
#[derive(Debug, Clone, Copy)]
pub struct PageOf<'a> {
    pub name: &'a str,
    pub manifest: &'a Path,
    /// The shots when the folder has no `plan.json`; without it, a missing `plan.json` is an
    /// error.
    pub fallback: Option<&'a Plan>,
}

impl<'a> From<&'a Plan> for PageOf<'a> {
    fn from(plan: &'a Plan) -> Self {
        PageOf {
            name: &plan.name,
            manifest: &plan.manifest,
            fallback: Some(plan),
        }
    }
}

/// Writes `<dir>/review.html` (and its further pages) for the output folder `dir` and what
/// [`PageOf`] gives of its plan, with `held` shots badged; stops with
/// [`ReviewError::Interrupted`] as soon as `stop` says so. Returns the first page's path and
/// the number of shots.
pub fn write_page(
    dir: &Path,
    of: PageOf<'_>,
    held: &Held,
    stop: &dyn Fn() -> bool,
) -> Result<(PathBuf, usize), ReviewError> {
    let interrupted = || {
        if stop() {
            Err(ReviewError::Interrupted)
        } else {
            Ok(())
        }
    };
    let shots = source::load(dir, of.fallback)?;
    interrupted()?;
    let marks = Marks::load(&dir.join(marks::FILE_NAME))?;
    let earlier = source::earlier(dir);
    interrupted()?;
    let cx = page::Context {
        name: of.name,
        manifest: of.manifest,
        out_dir: dir,
        shots: &shots,
        marks: &marks,
        earlier: &earlier,
        held,
        video_exists: &|rel: &str| dir.join(rel).is_file(),
    };
    let renderer = page::Renderer::new(&shots)?;
    let pages = paginate(group(&shots), PAGE_SHOTS);
    for (n, rows) in pages.iter().enumerate() {
        interrupted()?;
        let html = renderer.render(&cx, rows, n, pages.len())?;
        interrupted()?;
        crate::report::write_atomic(&dir.join(page_file(n)), html.as_bytes())?;
    }
    // Pages of a larger batch before: gone, so no link leads to an old page.
    for n in pages.len().. {
        let old = dir.join(page_file(n));
        match std::fs::remove_file(&old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(source) => return Err(ReviewError::Read { path: old, source }),
        }
    }
    Ok((dir.join(PAGE_FILE), shots.len()))
}

/// Rows (ranges of shots) laid out on pages of at most `per_page` shots; a row longer than a
/// page is cut into pieces. Always at least one page.
fn paginate(
    rows: Vec<std::ops::Range<usize>>,
    per_page: usize,
) -> Vec<Vec<std::ops::Range<usize>>> {
    let mut pages = vec![Vec::new()];
    let mut on_page = 0;
    for row in rows {
        let mut start = row.start;
        while start < row.end {
            if on_page == per_page {
                pages.push(Vec::new());
                on_page = 0;
            }
            let end = row.end.min(start + (per_page - on_page));
            pages.last_mut().expect("one page").push(start..end);
            on_page += end - start;
            start = end;
        }
    }
    pages
}

/// A shot's place among its row's variants: (variant, take).
type Combo = (Vec<(String, String)>, Option<u64>);

/// Groups shots into rows of the page: the consecutive shots one manifest shot made from one
/// data row (its matrix variants and takes). Plan order puts those next to each other; a new
/// row starts where the data row, model or matrix keys change, or where a (variant, take)
/// combination repeats, which only happens at the next manifest shot.
pub fn group(shots: &[Shot]) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut seen: std::collections::HashSet<Combo> = std::collections::HashSet::new();
    for (i, shot) in shots.iter().enumerate() {
        let combo = (variant(shot), take_of(shot));
        if i > start {
            let first = &shots[start];
            let same_keys = first
                .matrix
                .iter()
                .map(|(k, _)| k)
                .eq(shot.matrix.iter().map(|(k, _)| k));
            let same = first.source == shot.source
                && first.row == shot.row
                && first.model == shot.model
                && same_keys
                && !seen.contains(&combo);
            if !same {
                groups.push(start..i);
                start = i;
                seen.clear();
            }
        }
        seen.insert(combo);
    }
    if start < shots.len() {
        groups.push(start..shots.len());
    }
    groups
}

/// What tells a shot from the other variants of its row: its matrix values; when the results
/// carry none but the shot has a data row, its id without the take suffix (a matrix shot's
/// id varies with the combination, or ids would clash).
fn variant(shot: &Shot) -> Vec<(String, String)> {
    if shot.matrix.is_empty() && shot.source.is_some() {
        vec![(String::new(), base_id(shot).to_owned())]
    } else {
        shot.matrix.clone()
    }
}

/// The id without the `-takeN` suffix the planner appends.
fn base_id(shot: &Shot) -> &str {
    match (take_of(shot), shot.id.rsplit_once("-take")) {
        (Some(t), Some((b, n))) if n == t.to_string() => b,
        _ => &shot.id,
    }
}

/// The take number: the results' `take`, else the `-takeN` suffix the planner appends.
fn take_of(shot: &Shot) -> Option<u64> {
    shot.take.or_else(|| {
        let (_, n) = shot.id.rsplit_once("-take")?;
        n.parse().ok()
    })
}

/// A row's title: the longest common prefix of its ids without take suffixes, trimmed of
/// separators (`teaser-A1-16x9` and `teaser-A1-9x16` make `teaser-A1`).
pub fn group_title(shots: &[Shot]) -> String {
    let Some(first) = shots.first() else {
        return String::new();
    };
    let mut prefix = base_id(first).to_owned();
    for s in &shots[1..] {
        let b = base_id(s);
        let common = prefix
            .char_indices()
            .zip(b.chars())
            .find(|((_, x), y)| x != y)
            .map_or(prefix.len().min(b.len()), |((i, _), _)| i);
        prefix.truncate(common);
    }
    let trimmed = prefix.trim_end_matches(['-', '_', '.']);
    if trimmed.is_empty() {
        first.id.clone()
    } else {
        trimmed.to_owned()
    }
}

/// Writes the page into the plan's output folder, for `plan` as the manifest describes it (its
/// retakes found in the folder); returns its path and its number of shots. The plan is given
/// up to find the held shots unless the folder has no `plan.json` to show instead: a plan, its
/// copy and the replayed journal took `shotlist review` to 411 MB at 100,000 shots.
pub fn write_for(plan: Plan) -> Result<(PathBuf, usize), crate::Error> {
    let dir = plan.out_dir.clone();
    if !has_plan_file(&dir) {
        let held = held_in_folder(&dir, plan.clone())?;
        return write_held_for(&dir, (&plan).into(), &held, &|| false);
    }
    let (name, manifest) = (plan.name.clone(), plan.manifest.clone());
    let held = held_in_folder(&dir, plan)?;
    let of = PageOf {
        name: &name,
        manifest: &manifest,
        fallback: None,
    };
    write_held_for(&dir, of, &held, &|| false)
}

/// [`write_for`] into the output folder `dir` for what [`PageOf`] gives of a plan whose
/// retakes are applied already, with the shots they hold; stops when `stop` says so.
pub fn write_held_for(
    dir: &Path,
    of: PageOf<'_>,
    held: &Held,
    stop: &dyn Fn() -> bool,
) -> Result<(PathBuf, usize), crate::Error> {
    if !dir.is_dir() {
        return Err(crate::Error::Usage(format!(
            "{} does not exist: run the batch first (`shotlist run {}`), or pass --out DIR",
            dir.display(),
            of.manifest.display()
        )));
    }
    Ok(write_page(dir, of, held, stop)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shot(id: &str, source: Option<&str>, row: Option<u64>, matrix: &[(&str, &str)]) -> Shot {
        Shot {
            id: id.into(),
            model: "t2v".into(),
            source: source.map(Into::into),
            row,
            matrix: matrix
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..Shot::default()
        }
    }

    #[test]
    fn groups_matrix_variants_and_takes_of_one_row() {
        let p = Some("products");
        let shots = vec![
            shot("teaser-A1-16x9", p, Some(1), &[("ratio", "16:9")]),
            shot("teaser-A1-9x16", p, Some(1), &[("ratio", "9:16")]),
            shot("teaser-B2-16x9", p, Some(2), &[("ratio", "16:9")]),
            Shot {
                model: "i2v".into(),
                ..shot("follow-B2-take1", p, Some(2), &[])
            },
            Shot {
                model: "i2v".into(),
                ..shot("follow-B2-take2", p, Some(2), &[])
            },
            shot("intro", None, None, &[]),
            shot("outro", None, None, &[]),
        ];
        let groups = group(&shots);
        assert_eq!(groups, vec![0..2, 2..3, 3..5, 5..6, 6..7]);
        assert_eq!(group_title(&shots[0..2]), "teaser-A1");
        assert_eq!(group_title(&shots[3..5]), "follow-B2");
        assert_eq!(group_title(&shots[5..6]), "intro");
        let takeover = Shot {
            take: Some(1),
            ..shot("city-takeover", None, None, &[])
        };
        assert_eq!(group_title(&[takeover]), "city-takeover");
        // Results without matrix values: variants of a data row still share a row.
        let bare: Vec<Shot> = shots
            .iter()
            .map(|s| Shot {
                matrix: Vec::new(),
                ..s.clone()
            })
            .collect();
        assert_eq!(group(&bare), groups);
    }

    #[test]
    fn pages_hold_at_most_their_share_and_cut_long_rows() {
        assert_eq!(paginate(vec![], 3), vec![Vec::new()]);
        assert_eq!(
            paginate(vec![0..2, 2..9, 9..10], 3),
            vec![vec![0..2, 2..3], vec![3..6], vec![6..9], vec![9..10]]
        );
        assert_eq!(page_file(0), "review.html");
        assert_eq!(page_file(2), "review-3.html");
    }

    #[test]
    fn video_paths_stay_in_videos() {
        assert_eq!(source::video_path("a.mp4").as_deref(), Some("videos/a.mp4"));
        assert_eq!(
            source::video_path("videos/a.mp4").as_deref(),
            Some("videos/a.mp4")
        );
        for bad in [
            "../a.mp4",
            "/etc/passwd",
            "videos/../x",
            "",
            "a\\b",
            "..",
            "x/y.mp4",
        ] {
            assert_eq!(source::video_path(bad), None, "{bad}");
        }
    }
}
