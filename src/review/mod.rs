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
        !matches!(self, ReviewError::Read { .. } | ReviewError::Write(_))
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
pub fn held_in_folder(dir: &Path, plan: &Plan) -> Result<Held, ReviewError> {
    let path = dir.join(crate::journal::FILE_NAME);
    source::check_inside(&path)?;
    let Ok(journal) = crate::journal::replay_file(&path, true) else {
        return Ok(Held::new());
    };
    let marks = Marks::load(&dir.join(marks::FILE_NAME))?;
    let mut plan = plan.clone();
    let why = retake::apply(&mut plan, &journal, &marks, false);
    Ok(held(&plan, &why))
}

/// Writes `<dir>/review.html` for the output folder `dir`, whose plan is `plan` when it has no
/// `plan.json` yet, with `held` shots badged. Returns the page's path and the number of shots
/// on it.
pub fn write_page(dir: &Path, plan: &Plan, held: &Held) -> Result<(PathBuf, usize), ReviewError> {
    let shots = source::load(dir, plan)?;
    let marks = Marks::load(&dir.join(marks::FILE_NAME))?;
    let html = page::render(&page::Context {
        name: &plan.name,
        manifest: &plan.manifest,
        out_dir: dir,
        shots: &shots,
        marks: &marks,
        earlier: &source::earlier(dir),
        held,
        video_exists: &|rel: &str| dir.join(rel).is_file(),
    })?;
    let path = dir.join(PAGE_FILE);
    crate::report::write_atomic(&path, html.as_bytes())?;
    Ok((path, shots.len()))
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
    let mut seen: Vec<Combo> = Vec::new();
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
        seen.push(combo);
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
