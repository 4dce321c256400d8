//! The HTML of `review.html`, rendered by minijinja with HTML auto-escaping (every value from
//! the folder is escaped; only the page's own script and style go in raw, and the CSP names
//! their SHA-256 so nothing else inline can run).

use std::path::Path;

use base64::Engine as _;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::source::Earlier;
use super::{Marks, ReviewError, Shot, Verdict};
use crate::report::ResultStatus;

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Characters left as they are in a video's relative URL; everything else is percent-encoded.
const URL_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Every status results can hold, in the order the page lists them.
const STATUSES: [ResultStatus; 6] = [
    ResultStatus::Succeeded,
    ResultStatus::Failed,
    ResultStatus::Skipped,
    ResultStatus::Unknown,
    ResultStatus::Expired,
    ResultStatus::Pending,
];

/// Characters of a prompt shown before it is expanded.
const PROMPT_HEAD: usize = 90;

pub struct Context<'a> {
    pub name: &'a str,
    pub manifest: &'a Path,
    pub out_dir: &'a Path,
    pub shots: &'a [Shot],
    pub marks: &'a Marks,
    /// Earlier attempts by shot id, shown dimmed beside the newest.
    pub earlier: &'a std::collections::HashMap<String, Vec<Earlier>>,
    /// Shots held at their approved video while an upstream is retaken.
    pub held: &'a super::Held,
    pub video_exists: &'a dyn Fn(&str) -> bool,
}

#[derive(Serialize)]
struct Card<'a> {
    id: &'a str,
    key: &'a str,
    status: &'a str,
    model: &'a str,
    model_id: &'a str,
    /// `5 s`; an edit keeping its input's length shows what the provider made, when known.
    length: Option<String>,
    resolution: Option<&'a str>,
    ratio: Option<&'a str>,
    seed: Option<u64>,
    cost: Option<&'a str>,
    /// Shown when earlier attempts paid more than this video's own cost.
    spent: Option<&'a str>,
    take: Option<u64>,
    matrix: String,
    prompt: Option<&'a str>,
    prompt_head: Option<String>,
    error: Option<&'a str>,
    video: Option<String>,
    no_video: Option<String>,
    mark: Option<&'static str>,
    note: Option<&'a str>,
    held: Option<HeldBadge<'a>>,
    earlier: Vec<Old<'a>>,
}

/// An approved card whose upstream was retaken: the upstream, and the command that withdraws
/// the approval so the next run regenerates the shot from the new take.
#[derive(Serialize)]
struct HeldBadge<'a> {
    upstream: &'a str,
    command: String,
}

/// An earlier attempt of a card's shot: its video and the mark it was given.
#[derive(Serialize)]
struct Old<'a> {
    key: &'a str,
    video: Option<String>,
    mark: Option<&'static str>,
    note: Option<&'a str>,
}

#[derive(Serialize)]
struct Row<'a> {
    title: String,
    source: Option<&'a str>,
    row: Option<u64>,
    cards: Vec<Card<'a>>,
}

#[derive(Serialize)]
struct Count {
    status: String,
    n: usize,
}

/// Another page of the same batch, for the page's navigation.
#[derive(Serialize)]
struct PageLink {
    n: usize,
    file: String,
    current: bool,
}

/// The template, the batch's counts and the policy, made once for every page of a batch.
pub struct Renderer {
    env: Environment<'static>,
    counts: Vec<Count>,
    csp: String,
}

impl Renderer {
    pub fn new(shots: &[Shot]) -> Result<Renderer, ReviewError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_template("review.html", TEMPLATE)
            .map_err(|e| ReviewError::Render(e.to_string()))?;
        let mut counts: Vec<Count> = STATUSES
            .iter()
            .map(|s| Count {
                status: s.as_str().to_owned(),
                n: 0,
            })
            .collect();
        // Statuses come from results.json: indexed, so a hostile file of distinct ones stays
        // linear.
        let mut index: std::collections::HashMap<String, usize> = (counts.iter().enumerate())
            .map(|(i, c)| (c.status.clone(), i))
            .collect();
        for s in shots {
            let i = *index.entry(s.status.clone()).or_insert_with(|| {
                counts.push(Count {
                    status: s.status.clone(),
                    n: 0,
                });
                counts.len() - 1
            });
            counts[i].n += 1;
        }
        let csp = format!(
            "default-src 'none'; media-src 'self' file:; img-src data:; style-src '{}'; \
             script-src '{}'; base-uri 'none'; form-action 'none'",
            hash(STYLE),
            hash(SCRIPT)
        );
        Ok(Renderer { env, counts, csp })
    }

    /// Page `page` (0-based) of `pages`, holding the rows `rows` (ranges of `cx.shots`).
    pub fn render(
        &self,
        cx: &Context,
        rows: &[std::ops::Range<usize>],
        page: usize,
        pages: usize,
    ) -> Result<String, ReviewError> {
        let rows: Vec<Row> = rows
            .iter()
            .map(|range| {
                let shots = &cx.shots[range.clone()];
                // A take number says something only where the row has more than one take.
                let takes = shots
                    .iter()
                    .any(|s| super::take_of(s).is_some_and(|t| t > 1));
                Row {
                    title: super::group_title(shots),
                    source: shots[0].source.as_deref(),
                    row: shots[0].row,
                    cards: shots.iter().map(|s| card(cx, s, takes)).collect(),
                }
            })
            .collect();
        let on_page: usize = rows.iter().map(|r| r.cards.len()).sum();
        let links: Vec<PageLink> = if pages > 1 {
            (0..pages)
                .map(|n| PageLink {
                    n: n + 1,
                    file: super::page_file(n),
                    current: n == page,
                })
                .collect()
        } else {
            Vec::new()
        };
        let template = self
            .env
            .get_template("review.html")
            .map_err(|e| ReviewError::Render(e.to_string()))?;
        template
            .render(minijinja::context! {
                name => cx.name,
                manifest => cx.manifest.display().to_string(),
                out_dir => cx.out_dir.display().to_string(),
                total => cx.shots.len(),
                counts => Value::from(Serde(&self.counts)),
                marked => cx.marks.len(),
                rows => Value::from(Serde(&rows)),
                page => page + 1,
                pages => pages,
                on_page => on_page,
                links => Value::from(Serde(&links)),
                csp => &self.csp,
                style => Value::from_safe_string(STYLE.to_owned()),
                script => Value::from_safe_string(SCRIPT.to_owned()),
            })
            .map_err(|e| ReviewError::Render(e.to_string()))
    }
}

fn card<'a>(cx: &Context<'a>, s: &'a Shot, takes: bool) -> Card<'a> {
    let mark = cx.marks.get(&s.id, &s.key);
    let (video, no_video) = match (&s.file, s.status.as_str()) {
        (Some(rel), "succeeded") if (cx.video_exists)(rel) => (Some(url(rel)), None),
        (Some(rel), "succeeded") => (None, Some(format!("video missing: {rel}"))),
        (_, status) => (None, Some(format!("no video ({status})"))),
    };
    let prompt = s.prompt.as_deref();
    Card {
        id: &s.id,
        key: &s.key,
        status: &s.status,
        model: crate::plan::model::MODELS
            .iter()
            .find(|m| m.id == s.model)
            .map_or(&s.model, |m| m.alias),
        model_id: &s.model,
        length: match (s.duration, &s.output_s) {
            (Some(0), Some(made)) => Some(format!("{made} s")),
            (Some(0), None) => Some("input's length".into()),
            (d, _) => d.map(|d| format!("{d} s")),
        },
        resolution: s.resolution.as_deref(),
        ratio: s.ratio.as_deref(),
        seed: s.seed,
        cost: s.cost.as_deref(),
        spent: s.spent.as_deref().filter(|&spent| {
            let micros = |m: &str| crate::cost::Money::parse(m).ok();
            micros(spent) > s.cost.as_deref().and_then(micros)
        }),
        take: super::take_of(s).filter(|_| takes),
        matrix: s
            .matrix
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        prompt,
        prompt_head: prompt.map(|p| {
            let line = p.lines().next().unwrap_or("");
            let head: String = line.chars().take(PROMPT_HEAD).collect();
            if head.len() < p.len() {
                format!("{head}…")
            } else {
                head
            }
        }),
        error: s.error.as_deref().filter(|_| s.status != "succeeded"),
        video,
        no_video,
        mark: mark.map(|m| m.mark.as_str()),
        note: mark.and_then(|m| m.note.as_deref()),
        held: (cx.held.get(&s.id))
            .filter(|_| mark.is_some_and(|m| m.mark == Verdict::Approved))
            .map(|up| HeldBadge {
                upstream: up,
                command: [
                    "shotlist",
                    "mark",
                    &quote(&cx.manifest.display().to_string()),
                    &quote(&s.id),
                    "--clear",
                    "--out",
                    &quote(&cx.out_dir.display().to_string()),
                ]
                .join(" "),
            }),
        earlier: (cx.earlier.get(&s.id).into_iter().flatten().rev())
            .filter(|e| e.key != s.key)
            .map(|e| {
                let mark = cx.marks.get(&s.id, &e.key);
                Old {
                    key: &e.key,
                    video: (cx.video_exists)(&e.file).then(|| url(&e.file)),
                    mark: mark.map(|m| m.mark.as_str()),
                    note: mark.and_then(|m| m.note.as_deref()),
                }
            })
            .collect(),
    }
}

/// A video's relative URL: its file name percent-encoded, its folders as they are.
fn url(rel: &str) -> String {
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    format!("{dir}/{}", utf8_percent_encode(name, URL_KEEP))
}

/// `text` as one shell word, quoted as the page's script quotes the commands it builds.
fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && (text.chars()).all(|c| c.is_ascii_alphanumeric() || "._/:=@%+-".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A CSP source for inline text: `sha256-<base64 of its SHA-256>`.
fn hash(text: &str) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn quote_makes_one_shell_word() {
        assert_eq!(super::quote("out/a-1.yaml"), "out/a-1.yaml");
        assert_eq!(super::quote(""), "''");
        assert_eq!(super::quote("it's $HOME"), r"'it'\''s $HOME'");
    }
}
