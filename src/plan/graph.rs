//! The resolved request graph: what `plan --format json` prints and `plan.json` stores.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::Body;
use rustc_hash::FxHashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The manifest's `name` (default: the file's stem).
    pub name: String,
    /// The manifest file this plan came from.
    pub manifest: PathBuf,
    /// The output folder, resolved against the manifest's folder.
    pub out_dir: PathBuf,
    /// Shots in plan order (manifest order after expansion).
    pub shots: Vec<PlannedShot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedShot {
    pub id: String,
    /// BLAKE3 hex of the canonical request body, `shot:` references standing as upstream keys.
    pub key: String,
    /// Full model id, e.g. `wan2.7-t2v-2026-04-25`.
    pub model: String,
    pub duration: u32,
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
    /// Ids of the shots whose videos this shot's media need.
    pub depends_on: Vec<String>,
    /// Download file name inside `<out_dir>/videos/`; a single safe path component.
    pub file: String,
    /// The exact request body; a `shot:` media item stands as `{"type": …, "shot": <id>}`.
    pub body: Body,
}

fn first_take() -> u32 {
    1
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
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.shots.iter().position(|s| s.id == id)
    }

    /// Shot index by id (fast unkeyed hash: ids come from the user's own manifest).
    pub fn id_index(&self) -> FxHashMap<&str, usize> {
        self.shots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect()
    }

    /// For each shot, the length (in shots) of the longest chain of dependants below it,
    /// itself included: the scheduler runs the longest remaining chain first.
    pub fn chain_lengths(&self) -> Vec<usize> {
        let index = self.id_index();
        let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); self.shots.len()];
        for (i, shot) in self.shots.iter().enumerate() {
            for up in &shot.depends_on {
                if let Some(&u) = index.get(up.as_str()) {
                    dependants[u].push(i);
                }
            }
        }
        let order = self.topological_order();
        let mut len = vec![1usize; self.shots.len()];
        for &i in order.iter().rev() {
            len[i] = 1 + dependants[i].iter().map(|&d| len[d]).max().unwrap_or(0);
        }
        len
    }

    /// Shot indices with every upstream before its dependants (stable: plan order otherwise).
    /// The planner refuses cycles, so every shot appears once.
    pub fn topological_order(&self) -> Vec<usize> {
        let index = self.id_index();
        let mut state = vec![0u8; self.shots.len()];
        let mut order = Vec::with_capacity(self.shots.len());
        for start in 0..self.shots.len() {
            if state[start] != 0 {
                continue;
            }
            // Iterative DFS: (node, next upstream to visit).
            let mut stack = vec![(start, 0usize)];
            state[start] = 1;
            while let Some((node, next)) = stack.last_mut() {
                let ups = &self.shots[*node].depends_on;
                if let Some(up) = ups.get(*next) {
                    *next += 1;
                    if let Some(&u) = index.get(up.as_str())
                        && state[u] == 0
                    {
                        state[u] = 1;
                        stack.push((u, 0));
                    }
                } else {
                    state[*node] = 2;
                    order.push(*node);
                    stack.pop();
                }
            }
        }
        order
    }
}
