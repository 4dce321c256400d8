//! A first pass over the YAML that finds every unknown key at once: serde stops at the first,
//! and a manifest with three typos should say so in one report.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::LoadError;

/// Keys of the manifest's top level.
pub const TOP_KEYS: [&str; 8] = [
    "version", "name", "seed", "vars", "data", "defaults", "shots", "output",
];
/// Keys `defaults` may set.
pub const DEFAULT_KEYS: [&str; 14] = [
    "model",
    "prompt",
    "prompt_file",
    "negative_prompt",
    "audio_url",
    "media",
    "duration",
    "resolution",
    "ratio",
    "prompt_extend",
    "watermark",
    "seed",
    "audio_setting",
    "output",
];
/// Keys only a shot itself may set.
pub const SHOT_ONLY_KEYS: [&str; 5] = ["id", "for_each", "when", "matrix", "takes"];
pub const MEDIA_KEYS: [&str; 4] = ["type", "url", "shot", "reference_voice"];
pub const OUTPUT_KEYS: [&str; 2] = ["dir", "file"];
pub const INLINE_TABLE_KEYS: [&str; 1] = ["rows"];

/// A YAML node with the keys of its mappings located.
enum Node {
    Map(Vec<(Spanned<String>, Node)>),
    Seq(Vec<Node>),
    Other,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value::<Node>()?));
                }
                Ok(Node::Map(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Other)
            }
            fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
                Ok(Node::Other)
            }
            fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
                Ok(Node::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Other)
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
                Ok(Node::Other)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Other)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Other)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// Every unknown key in the manifest, in document order. Empty when the text does not parse
/// as YAML at all (the loader reports that) or has no unknown key.
pub fn unknown_keys(text: &str) -> Vec<LoadError> {
    let Ok(root) = serde_saphyr::from_str::<Node>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let Node::Map(top) = &root else {
        return out;
    };
    let shot_keys: Vec<&str> = SHOT_ONLY_KEYS
        .iter()
        .chain(&DEFAULT_KEYS)
        .copied()
        .collect();
    check(top, &TOP_KEYS, None, &mut out);
    for (key, value) in top {
        match (key.value.as_str(), value) {
            ("defaults", Node::Map(d)) => {
                check(d, &DEFAULT_KEYS, Some(DEFAULTS_HELP), &mut out);
                media(d, &mut out);
            }
            ("shots", Node::Seq(shots)) => {
                for shot in shots {
                    if let Node::Map(s) = shot {
                        check(s, &shot_keys, None, &mut out);
                        media(s, &mut out);
                    }
                }
            }
            ("output", Node::Map(o)) => check(o, &OUTPUT_KEYS, None, &mut out),
            ("data", Node::Map(tables)) => {
                for (_, table) in tables {
                    if let Node::Map(t) = table {
                        check(t, &INLINE_TABLE_KEYS, None, &mut out);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

const DEFAULTS_HELP: &str =
    "defaults may set any shot field except id, for_each, when, matrix and takes";

fn media(shot: &[(Spanned<String>, Node)], out: &mut Vec<LoadError>) {
    for (key, value) in shot {
        if key.value == "media"
            && let Node::Seq(items) = value
        {
            for item in items {
                if let Node::Map(m) = item {
                    check(m, &MEDIA_KEYS, None, out);
                }
            }
        }
    }
}

fn check(
    map: &[(Spanned<String>, Node)],
    known: &[&str],
    note: Option<&str>,
    out: &mut Vec<LoadError>,
) {
    for (key, _) in map {
        if known.contains(&key.value.as_str()) {
            continue;
        }
        let list = known.join(", ");
        let help = match (closest(&key.value, known), note) {
            (_, Some(n)) if SHOT_ONLY_KEYS.contains(&key.value.as_str()) => n.to_owned(),
            (Some(s), _) => format!("did you mean `{s}`? Known keys here: {list}"),
            (None, _) => format!("known keys here: {list}"),
        };
        let loc = key.referenced;
        out.push(LoadError {
            message: format!("unknown key `{}`", key.value),
            line: (loc.line() > 0).then_some(loc.line() as usize),
            column: (loc.line() > 0).then_some(loc.column() as usize),
            help: Some(help),
        });
    }
}

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_unknown_key_at_once() {
        let errs = unknown_keys(
            "version: 1\nshotz: []\ndefaults: { id: x, modle: t2v }\nshots:\n  - id: a\n    promt: x\n    media: [{type: first_frame, ulr: u}]\noutput: { dri: o }\n",
        );
        let got: Vec<(String, Option<usize>)> =
            errs.iter().map(|e| (e.message.clone(), e.line)).collect();
        assert_eq!(
            got,
            [
                ("unknown key `shotz`".to_owned(), Some(2)),
                ("unknown key `id`".to_owned(), Some(3)),
                ("unknown key `modle`".to_owned(), Some(3)),
                ("unknown key `promt`".to_owned(), Some(6)),
                ("unknown key `ulr`".to_owned(), Some(7)),
                ("unknown key `dri`".to_owned(), Some(8)),
            ]
        );
        assert_eq!(errs[1].help.as_deref(), Some(DEFAULTS_HELP));
    }

    #[test]
    fn key_lists_match_the_schema() {
        let schema =
            serde_json::to_value(schemars::schema_for!(super::super::RawManifest)).unwrap();
        let props = |v: &serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            k.sort();
            k
        };
        let sorted = |l: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = l.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        let defs = &schema["$defs"];
        assert_eq!(props(&schema), sorted(&TOP_KEYS));
        assert_eq!(props(&defs["RawDefaults"]), sorted(&DEFAULT_KEYS));
        let shot: Vec<&str> = SHOT_ONLY_KEYS
            .iter()
            .chain(&DEFAULT_KEYS)
            .copied()
            .collect();
        assert_eq!(props(&defs["RawShot"]), sorted(&shot));
        assert_eq!(props(&defs["RawMedia"]), sorted(&MEDIA_KEYS));
        assert_eq!(props(&defs["RawOutput"]), sorted(&OUTPUT_KEYS));
    }
}
