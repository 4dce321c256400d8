//! The resolved request graph: what `plan --format json` prints and `plan.json` stores.
//!
//! In memory a shot names its upstreams by index, so no reader rebuilds an id→index map; the
//! document names them by id, so `plan.json` reads on its own.

use std::path::PathBuf;

use serde::de::Error as _;
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::body::Body;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The manifest's `name` (default: the file's stem).
    pub name: String,
    /// The manifest file this plan came from.
    pub manifest: PathBuf,
    /// The output folder, resolved against the manifest's folder.
    pub out_dir: PathBuf,
    /// Shots in plan order (manifest order after expansion).
    pub shots: Vec<PlannedShot>,
    /// The manifest's `seed`, from which retakes derive theirs. Not in the document (each
    /// shot's seed is): `None` in a plan read back from `plan.json`.
    pub batch_seed: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PlannedShot {
    pub id: String,
    /// BLAKE3 hex of the canonical request body, `shot:` references standing as upstream keys.
    pub key: String,
    /// Full model id, e.g. `wan2.7-t2v-2026-04-25`.
    pub model: String,
    /// Seconds asked for; 0 keeps the input video's length (edit).
    pub duration: u32,
    /// An edit shot's input video, whose seconds are billed with the output's.
    #[serde(default)]
    pub input_video: Option<InputVideo>,
    pub resolution: String,
    pub ratio: Option<String>,
    pub seed: Option<u32>,
    /// The data table that produced this shot, if any.
    pub source: Option<String>,
    /// 1-based data row in `source`.
    pub row: Option<usize>,
    /// 1-based take (1 when the shot has no `takes`).
    #[serde(default = "first_take")]
    pub take: u32,
    /// The shot's matrix values, keys in written order; empty without `matrix:`.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "ordered_map")]
    pub matrix: Vec<(String, String)>,
    /// Indices (in [`Plan::shots`]) of the shots whose videos this shot's media need, in
    /// the order the media name them; ids in the document.
    #[serde(skip)]
    pub depends_on: Vec<usize>,
    /// Its manifest entry and data row ([`super::instance::Instance::group`]): shards are cut
    /// by it. Not in `plan.json`.
    #[serde(skip)]
    pub group: u64,
    /// Download file name inside `<out_dir>/videos/`; a single safe path component.
    pub file: String,
    /// The exact request body; a `shot:` media item stands as `{"type": …, "shot": <id>}`.
    pub body: Body,
}

fn first_take() -> u32 {
    1
}

/// The video an edit shot restyles, as far as the plan knows its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputVideo {
    pub seconds: u32,
    /// The length is unknown before the run (a URL): `seconds` is the longest input taken.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upper_bound: bool,
}

/// `(key, value)` pairs as a JSON object that keeps their order.
mod ordered_map {
    use serde::de::{MapAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(pairs)
            }
        }
        d.deserialize_map(Pairs)
    }
}

impl PlannedShot {
    /// Seconds of video the shot makes: its duration, or its input's length for `duration: 0`.
    pub fn output_seconds(&self) -> u32 {
        match (self.duration, self.input_video) {
            (0, Some(input)) => input.seconds,
            (d, _) => d,
        }
    }

    /// Whether the shot's input length, and so its cost, is only an upper bound.
    pub fn upper_bound(&self) -> bool {
        self.input_video.is_some_and(|i| i.upper_bound)
    }

    /// Whether [`Self::output_seconds`] is only an upper bound.
    pub fn output_upper_bound(&self) -> bool {
        self.duration == 0 && self.upper_bound()
    }

    /// The body to send: each `{"type", "shot"}` media item gets the upstream's result URL.
    /// `None` when an upstream has no URL.
    pub fn resolved_body(&self, url_of: impl Fn(&str) -> Option<String>) -> Option<Value> {
        let mut body = self.body.value();
        if let Some(media) = body
            .pointer_mut("/metadata/input/media")
            .and_then(Value::as_array_mut)
        {
            for item in media {
                let Some(obj) = item.as_object_mut() else {
                    continue;
                };
                if let Some(Value::String(shot)) = obj.remove("shot") {
                    obj.insert("url".into(), Value::String(url_of(&shot)?));
                }
            }
        }
        Some(body)
    }
}

impl Plan {
    /// Shot index by id, for ids from outside the plan (a pattern, a journal, an earlier
    /// `plan.json`); upstreams are indices already. A fast unkeyed hash: ids come from the
    /// user's own manifest.
    pub fn id_index(&self) -> rustc_hash::FxHashMap<&str, usize> {
        self.shots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect()
    }

    /// Shot `i` as `plan.json` has it, upstreams by id.
    pub fn shot_doc(&self, i: usize) -> ShotDoc<'_> {
        ShotDoc {
            shot: &self.shots[i],
            all: &self.shots,
        }
    }

    /// Keeps only the shots `keep` marks, in order, renumbering upstreams. A shard keeps
    /// whole dependency chains; an upstream left out is dropped from its dependants' lists.
    pub fn retain(&mut self, keep: &[bool]) {
        let mut new_index = vec![None; self.shots.len()];
        let kept = keep.iter().enumerate().filter(|(_, k)| **k);
        for (next, (i, _)) in kept.enumerate() {
            new_index[i] = Some(next);
        }
        let mut i = 0;
        self.shots.retain_mut(|shot| {
            let kept = keep.get(i).copied().unwrap_or(false);
            i += 1;
            shot.depends_on = shot
                .depends_on
                .iter()
                .filter_map(|&u| new_index[u])
                .collect();
            kept
        });
    }

    /// Each shot's dependants: the shots whose media need its video.
    pub fn dependants(&self) -> Vec<Vec<usize>> {
        let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); self.shots.len()];
        for (i, shot) in self.shots.iter().enumerate() {
            for &u in &shot.depends_on {
                dependants[u].push(i);
            }
        }
        dependants
    }

    /// For each shot, the length (in shots) of the longest chain of dependants below it,
    /// itself included: the scheduler runs the longest remaining chain first.
    pub fn chain_lengths(&self) -> Vec<usize> {
        let dependants = self.dependants();
        let mut len = vec![1usize; self.shots.len()];
        for &i in self.topological_order().iter().rev() {
            len[i] = 1 + dependants[i].iter().map(|&d| len[d]).max().unwrap_or(0);
        }
        len
    }

    /// Shot indices with every upstream before its dependants (stable: plan order otherwise).
    /// The planner refuses cycles, so every shot appears once.
    pub fn topological_order(&self) -> Vec<usize> {
        topological_order(&self.shots)
    }
}

/// [`Plan::topological_order`] of shots not yet in a plan.
pub(super) fn topological_order(shots: &[PlannedShot]) -> Vec<usize> {
    let mut order = Vec::with_capacity(shots.len());
    walk(shots, |done| order.push(done), |_, _| {});
    order
}

/// The one depth-first walk over upstream edges, from each shot in plan order, upstreams in
/// the order written: `finished(i)` once all of `i`'s upstreams are (post-order), and
/// `cycle(path, u)` when the shot on top of `path` needs `u`, which is already on `path`.
pub(super) fn walk(
    shots: &[PlannedShot],
    mut finished: impl FnMut(usize),
    mut cycle: impl FnMut(&[usize], usize),
) {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; shots.len()];
    // (shot, next upstream to visit), and the shots alone for `cycle`.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut path: Vec<usize> = Vec::new();
    for start in 0..shots.len() {
        if state[start] != NEW {
            continue;
        }
        stack.push((start, 0));
        path.push(start);
        state[start] = ON_PATH;
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            if let Some(&u) = shots[node].depends_on.get(*next) {
                *next += 1;
                match state[u] {
                    NEW => {
                        state[u] = ON_PATH;
                        stack.push((u, 0));
                        path.push(u);
                    }
                    ON_PATH => cycle(&path, u),
                    _ => {}
                }
            } else {
                state[node] = DONE;
                finished(node);
                stack.pop();
                path.pop();
            }
        }
    }
}

impl Serialize for Plan {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut plan = serializer.serialize_struct("Plan", 4)?;
        plan.serialize_field("name", &self.name)?;
        plan.serialize_field("manifest", &self.manifest)?;
        plan.serialize_field("out_dir", &self.out_dir)?;
        plan.serialize_field("shots", &ShotsDoc(&self.shots))?;
        plan.end()
    }
}

/// The shots as the document has them: upstreams by id.
struct ShotsDoc<'a>(&'a [PlannedShot]);

impl Serialize for ShotsDoc<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for shot in self.0 {
            seq.serialize_element(&ShotDoc { shot, all: self.0 })?;
        }
        seq.end()
    }
}

/// One shot as the document has it (upstreams by id); see [`Plan::shot_doc`].
pub struct ShotDoc<'a> {
    shot: &'a PlannedShot,
    all: &'a [PlannedShot],
}

impl Serialize for ShotDoc<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Matrix<'a>(&'a [(String, String)]);
        impl Serialize for Matrix<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                ordered_map::serialize(self.0, s)
            }
        }
        let s = self.shot;
        let depends_on: Vec<&str> = s
            .depends_on
            .iter()
            .map(|&u| self.all[u].id.as_str())
            .collect();
        let mut doc = serializer.serialize_struct("PlannedShot", 15)?;
        doc.serialize_field("id", &s.id)?;
        doc.serialize_field("key", &s.key)?;
        doc.serialize_field("model", &s.model)?;
        doc.serialize_field("duration", &s.duration)?;
        match &s.input_video {
            Some(input) => doc.serialize_field("input_video", input)?,
            None => doc.skip_field("input_video")?,
        }
        doc.serialize_field("resolution", &s.resolution)?;
        doc.serialize_field("ratio", &s.ratio)?;
        doc.serialize_field("seed", &s.seed)?;
        doc.serialize_field("source", &s.source)?;
        doc.serialize_field("row", &s.row)?;
        doc.serialize_field("take", &s.take)?;
        if s.matrix.is_empty() {
            doc.skip_field("matrix")?;
        } else {
            doc.serialize_field("matrix", &Matrix(&s.matrix))?;
        }
        doc.serialize_field("depends_on", &depends_on)?;
        doc.serialize_field("file", &s.file)?;
        doc.serialize_field("body", &s.body)?;
        doc.end()
    }
}

impl<'de> Deserialize<'de> for Plan {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct ShotIn {
            #[serde(flatten)]
            shot: PlannedShot,
            depends_on: Vec<String>,
        }
        #[derive(Deserialize)]
        struct PlanIn {
            name: String,
            manifest: PathBuf,
            out_dir: PathBuf,
            shots: Vec<ShotIn>,
        }
        let doc = PlanIn::deserialize(deserializer)?;
        let index: rustc_hash::FxHashMap<String, usize> = doc
            .shots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.shot.id.clone(), i))
            .collect();
        let shots = doc
            .shots
            .into_iter()
            .map(
                |ShotIn {
                     mut shot,
                     depends_on,
                 }| {
                    shot.depends_on = depends_on
                        .iter()
                        .map(|up| {
                            index.get(up).copied().ok_or_else(|| {
                                D::Error::custom(format!(
                                    "shot `{}` depends on `{up}`, which is not in the plan",
                                    shot.id
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?;
                    Ok(shot)
                },
            )
            .collect::<Result<_, D::Error>>()?;
        Ok(Plan {
            name: doc.name,
            manifest: doc.manifest,
            out_dir: doc.out_dir,
            shots,
            batch_seed: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn story() -> Plan {
        crate::plan::plan_text(
            std::path::Path::new("m.yaml"),
            "version: 1\nshots:\n  - id: x\n    model: t2v\n    prompt: alone\n  - id: a\n    model: t2v\n    prompt: first\n  - id: b\n    model: i2v\n    prompt: next\n    media:\n      - { type: first_clip, shot: a }\n",
        )
        .expect("plans")
        .plan
    }

    #[test]
    fn upstreams_are_indices_in_memory_and_ids_in_the_document() {
        let plan = story();
        assert_eq!(plan.shots[2].depends_on, [1]);
        assert_eq!(plan.dependants(), [vec![], vec![2], vec![]]);
        assert_eq!(plan.topological_order(), [0, 1, 2]);
        let doc = serde_json::to_value(plan.shot_doc(2)).unwrap();
        assert_eq!(doc["depends_on"], serde_json::json!(["a"]));
    }

    #[test]
    fn retain_renumbers_the_upstreams_it_keeps() {
        let mut plan = story();
        plan.retain(&[false, true, true]);
        let ids: Vec<&str> = plan.shots.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(plan.shots[1].depends_on, [0]);
        plan.retain(&[false, true]);
        assert!(
            plan.shots[0].depends_on.is_empty(),
            "a dropped upstream goes"
        );
    }

    #[test]
    fn a_document_naming_an_unknown_upstream_is_refused() {
        let mut doc = serde_json::to_value(story()).unwrap();
        doc["shots"][2]["depends_on"] = serde_json::json!(["nobody"]);
        let err = serde_json::from_value::<Plan>(doc).unwrap_err();
        assert!(err.to_string().contains("`nobody`"), "{err}");
    }
}
