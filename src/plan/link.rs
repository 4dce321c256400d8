//! The link stage: graph rules over all expanded shots: unique ids and file names, `shot:` references,
//! cycles, upstream durations; then keys in topological order.
//!
//! Shots are collected straight into their final [`PlannedShot`] form, with the little that
//! diagnostics need kept beside them, so a 100,000-row table is planned in one pass of memory.

use std::path::PathBuf;

use super::diagnostic::{Annotate, DataLocation, Loc, Sink};
use super::expand::Collect;
use super::graph::InputVideo;
use super::graph::{self, PlannedShot};
use super::instance::{Instance, Target};
use super::model::{self, MediaKind};
use rustc_hash::FxHashMap as IdMap;

/// Where a collected shot came from, for diagnostics while linking (its data row is the
/// shot's `source` and `row`, with the file from [`Collected::files`]).
struct Origin {
    id_loc: Option<Loc>,
    file_loc: Option<Loc>,
    /// `shot:` media: (media type, upstream id, where it was written).
    refs: Vec<(String, String, Option<Loc>)>,
}

/// Checked shots in plan order, ready to link.
#[derive(Default)]
pub struct Collected {
    shots: Vec<PlannedShot>,
    origins: Vec<Origin>,
    /// Each data table's file, by table name.
    files: Vec<(String, Option<PathBuf>)>,
}

impl Collect for Collected {
    fn reserve(&mut self, n: usize) {
        self.shots.reserve(n);
        self.origins.reserve(n);
    }

    fn append(&mut self, mut later: Collected) {
        self.shots.append(&mut later.shots);
        self.origins.append(&mut later.origins);
        for (table, file) in later.files {
            self.note_file(table, file);
        }
    }
}

impl Collected {
    fn note_file(&mut self, table: String, file: Option<PathBuf>) {
        if !self.files.iter().any(|(t, _)| *t == table) {
            self.files.push((table, file));
        }
    }

    pub fn push(&mut self, inst: Instance, body: super::body::Body) {
        let ratio = super::body::sent_ratio(&inst);
        let video_url = inst
            .media
            .iter()
            .any(|m| m.kind == Some(MediaKind::Video) && matches!(m.target, Target::Url(_)));
        let refs = inst
            .media
            .into_iter()
            .filter_map(|m| match m.target {
                Target::Shot(up) => Some((m.type_name, up, m.target_loc)),
                Target::Url(_) => None,
            })
            .collect();
        let (source, row) = match inst.data {
            Some(d) => {
                if !self.files.iter().any(|(t, _)| *t == d.table) {
                    self.note_file(d.table.clone(), d.file);
                }
                (Some(d.table), Some(d.row))
            }
            None => (None, None),
        };
        // Keys that need no upstream's key are hashed here, on the expanding thread.
        let key = body.standalone_key().unwrap_or_default();
        // A `shot:` input's length is its upstream's, filled in when linking.
        let input_video = video_url.then_some(InputVideo {
            seconds: model::VIDEO_INPUT_DURATION.1,
            upper_bound: true,
        });
        self.shots.push(PlannedShot {
            id: inst.id,
            key,
            model: inst.model.id.to_owned(),
            duration: inst.duration.value,
            input_video,
            resolution: inst.resolution.value,
            ratio,
            seed: inst.seed.map(|s| s.value),
            source,
            row,
            take: inst.take,
            matrix: inst.matrix,
            depends_on: Vec::new(),
            group: inst.group,
            file: inst.file.value,
            body,
        });
        self.origins.push(Origin {
            id_loc: inst.id_loc,
            file_loc: inst.file.loc,
            refs,
        });
    }
}

/// What to add to the id template `template` so that shot `s`'s copies get distinct ids: the
/// matrix or row it leaves out, else any of them.
fn clash_fix(template: Option<&str>, s: &PlannedShot) -> String {
    let generic = "add `row.…`, `matrix.…` or `take` to the id template";
    let Some(template) = template else {
        return generic.to_owned();
    };
    if let Some((key, _)) = s
        .matrix
        .iter()
        .find(|(k, _)| !template.contains(k.as_str()))
    {
        return format!(
            "the id template does not use the matrix: add `{{{{ matrix.{key} }}}}` to it"
        );
    }
    if s.row.is_some() && !template.contains("row") {
        return "the id template does not use the row: add e.g. `{{ row.<column> }}` to it"
            .to_owned();
    }
    generic.to_owned()
}

pub fn link(collected: Collected, sink: &mut Sink) -> Vec<PlannedShot> {
    let Collected {
        mut shots,
        origins,
        files,
    } = collected;
    let mut depends: Vec<Vec<usize>> = Vec::with_capacity(shots.len());
    // (edit shot, the upstream whose video it restyles)
    let mut video_inputs: Vec<(usize, usize)> = Vec::new();
    {
        let mut by_id: IdMap<&str, usize> =
            IdMap::with_capacity_and_hasher(shots.len(), Default::default());
        let mut by_file: IdMap<&str, usize> =
            IdMap::with_capacity_and_hasher(shots.len(), Default::default());
        // Ids and files that differ only by case or Unicode normalisation: one file on macOS
        // and Windows, and one name to a reader.
        let mut by_folded: IdMap<(bool, String), usize> =
            IdMap::with_capacity_and_hasher(2 * shots.len(), Default::default());
        for (i, (s, o)) in shots.iter().zip(&origins).enumerate() {
            if let Some(&first) = by_id.get(s.id.as_str()) {
                let first_at = origins[first]
                    .id_loc
                    .map(|l| format!(" at line {}", l.line))
                    .unwrap_or_default();
                let fix = clash_fix(sink.id_template_at(o.id_loc), s);
                if let Some(template) = sink.id_template_at(o.id_loc).map(str::to_owned) {
                    // References to this template's ids follow from the clash.
                    sink.unexpanded(&template);
                }
                sink.error(o.id_loc, format!("duplicate id `{}`", s.id))
                    .shot(Some(&s.id))
                    .data(location(&files, s).as_ref())
                    .help(format!(
                        "ids must be unique; the first `{}` comes from the shot{first_at}{} ({fix})",
                        s.id,
                        location(&files, &shots[first]).as_ref().map(super::diagnostic::describe_row).unwrap_or_default()
                    ));
                continue;
            }
            by_id.insert(&s.id, i);
            for (is_file, name) in [(false, &s.id), (true, &s.file)] {
                let slot = (is_file, super::check::folded(name));
                match by_folded.get(&slot) {
                    Some(&first) => {
                        let (what, other) = if is_file {
                            ("output file", &shots[first].file)
                        } else {
                            ("id", &shots[first].id)
                        };
                        if other == name {
                            continue;
                        }
                        sink.error(
                            if is_file {
                                o.file_loc.or(o.id_loc)
                            } else {
                                o.id_loc
                            },
                            format!(
                                "{what} `{}` of shot `{}` and {what} `{}` of shot `{}` differ only \
                                 by letter case or Unicode normalisation: on macOS and Windows \
                                 they are one file, and to a reader one name",
                                super::check::shown(name),
                                s.id,
                                super::check::shown(other),
                                shots[first].id
                            ),
                        )
                        .shot(Some(&s.id))
                        .data(location(&files, s).as_ref())
                        .help("make the names differ by more than case or accents' encoding");
                    }
                    None => {
                        by_folded.insert(slot, i);
                    }
                }
            }
            if let Some(&first) = by_file.get(s.file.as_str()) {
                sink.error(
                    o.file_loc.or(o.id_loc),
                    format!(
                        "output file `{}` is also the file of shot `{}`; one would overwrite the other",
                        s.file, shots[first].id
                    ),
                )
                .shot(Some(&s.id))
                .data(location(&files, s).as_ref())
                .help("make the output template unique per shot, e.g. `{{ id }}.mp4`");
            } else {
                by_file.insert(&s.file, i);
            }
        }
        for (i, (s, o)) in shots.iter().zip(&origins).enumerate() {
            let mut depends_on: Vec<usize> = Vec::new();
            for (kind, up, loc) in &o.refs {
                match by_id.get(up.as_str()) {
                    None if sink.failed_to_expand(up) => {}
                    // Its own duration was refused: said once, there.
                    Some(&u) if sink.has_erred(up) => {
                        if !depends_on.contains(&u) {
                            depends_on.push(u);
                        }
                    }
                    None => {
                        let d = sink
                            .error(*loc, format!("media `{kind}`: no shot has the id `{up}`"))
                            .shot(Some(&s.id))
                            .data(location(&files, s).as_ref());
                        if let Some(help) = take_of(up, &by_id) {
                            d.help(help);
                        } else if by_id.len() <= 10_000 {
                            let ids: Vec<&str> = by_id.keys().copied().collect();
                            if let Some(close) = crate::manifest::closest_key(up, &ids) {
                                d.help(format!("did you mean `{close}`?"));
                            }
                        }
                    }
                    Some(&u) => {
                        if MediaKind::parse(kind) == Some(MediaKind::Video) {
                            video_inputs.push((i, u));
                        }
                        if let Some((lo, hi)) =
                            MediaKind::parse(kind).and_then(MediaKind::upstream_limit)
                        {
                            let d = shots[u].duration;
                            // 0 keeps an edit's input length, which its own link checked.
                            if d != 0 && (d < lo || d > hi) {
                                sink.error(
                                    *loc,
                                    format!(
                                        "media `{kind}`: shot `{up}` lasts {d} s, but {kind} takes {lo}-{hi} s"
                                    ),
                                )
                                .shot(Some(&s.id))
                                .data(location(&files, s).as_ref())
                                .help(format!(
                                    "shorten `{up}` to at most {hi} s or use another media type"
                                ));
                            }
                        }
                        if !depends_on.contains(&u) {
                            depends_on.push(u);
                        }
                    }
                }
            }
            depends.push(depends_on);
        }
    }
    for (s, d) in shots.iter_mut().zip(depends) {
        s.depends_on = d;
    }

    report_cycles(&shots, &origins, sink);
    input_lengths(&mut shots, &video_inputs);
    for &(i, u) in &video_inputs {
        let (s, up) = (&shots[i], &shots[u]);
        if s.duration > up.output_seconds() && !up.output_upper_bound() {
            let loc = origins[i]
                .refs
                .iter()
                .find(|r| r.1 == up.id)
                .and_then(|r| r.2);
            sink.warning(
                loc,
                format!(
                    "duration: {} s, but its input `{}` lasts {} s; edit cuts from the start and makes no more than it is given",
                    s.duration,
                    up.id,
                    up.output_seconds()
                ),
            )
            .shot(Some(&s.id))
            .data(location(&files, s).as_ref())
            .help("the estimate counts the duration asked for; `duration: 0` keeps the input's length");
        }
    }
    drop(origins);

    if shots.iter().all(|s| s.depends_on.is_empty()) {
        for shot in shots.iter_mut().filter(|s| s.key.is_empty()) {
            shot.key = shot.body.key(|_| None);
        }
        return shots;
    }

    let mut keys: Vec<String> = shots
        .iter_mut()
        .map(|s| std::mem::take(&mut s.key))
        .collect();
    for i in graph::topological_order(&shots) {
        if !keys[i].is_empty() {
            continue;
        }
        let ups = &shots[i].depends_on;
        keys[i] = shots[i].body.key(|up| {
            ups.iter()
                .find(|&&u| shots[u].id == up)
                .map(|&u| keys[u].as_str())
                .filter(|k| !k.is_empty())
        });
    }
    for (shot, key) in shots.iter_mut().zip(keys) {
        shot.key = key;
    }
    shots
}

/// Gives each edit shot that restyles another shot's video that shot's length, upstreams first
/// (an edit of an edit keeping its length passes the length on).
fn input_lengths(shots: &mut [PlannedShot], video_inputs: &[(usize, usize)]) {
    if video_inputs.is_empty() {
        return;
    }
    let mut upstream_of: IdMap<usize, usize> = video_inputs.iter().copied().collect();
    for i in graph::topological_order(shots) {
        if let Some(u) = upstream_of.remove(&i) {
            let up = &shots[u];
            shots[i].input_video = Some(InputVideo {
                seconds: up.output_seconds(),
                upper_bound: up.output_upper_bound(),
            });
        }
    }
}

/// A help for a `shot:` naming a shot whose `takes` made it several ids (`tk` → `tk-take1`,
/// `tk-take2`): a reference names one take.
fn take_of(up: &str, by_id: &IdMap<&str, usize>) -> Option<String> {
    let take = |n: u32| format!("{up}-take{n}");
    by_id.contains_key(take(1).as_str()).then(|| {
        let last = (2..)
            .find(|&n| !by_id.contains_key(take(n).as_str()))
            .unwrap_or(2)
            - 1;
        format!(
            "`{up}` has takes, so it is {last} shots (`{}` … `{}`): name one, e.g. `shot: {}`",
            take(1),
            take(last),
            take(1)
        )
    })
}

/// The data row behind `shot`, for a diagnostic.
fn location(files: &[(String, Option<PathBuf>)], shot: &PlannedShot) -> Option<DataLocation> {
    let table = shot.source.as_ref()?;
    Some(DataLocation {
        table: table.clone(),
        file: files
            .iter()
            .find(|(t, _)| t == table)
            .and_then(|(_, f)| f.clone()),
        row: shot.row?,
        line: None,
    })
}

/// Reports each cycle once, naming its members in order.
fn report_cycles(shots: &[PlannedShot], origins: &[Origin], sink: &mut Sink) {
    graph::walk(
        shots,
        |_| {},
        |path, u| {
            let node = path[path.len() - 1];
            let pos = path.iter().position(|&n| n == u).unwrap_or(0);
            let mut members: Vec<&str> =
                path[pos..].iter().map(|&n| shots[n].id.as_str()).collect();
            members.push(shots[u].id.as_str());
            let loc = origins[node]
                .refs
                .iter()
                .find(|(_, id, _)| *id == shots[u].id)
                .and_then(|r| r.2);
            sink.error(loc, format!("shots form a cycle: {}", members.join(" → ")))
                .shot(Some(&shots[node].id))
                .help("each shot needs the next one's video; a shot cannot need its own video, directly or through others");
        },
    );
}
