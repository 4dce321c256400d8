//! Raw serde types that mirror manifest v1 exactly; the JSON Schema is generated from them.
//!
//! They hold no logic. Values keep their YAML location (`Spanned`) so every later problem can
//! point at its line and column; templated scalars stay text until the plan stage renders them.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::{OrderedMap, Written};

/// A shotlist manifest, version 1.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "shotlist manifest")]
pub struct RawManifest {
    /// Manifest format version; always 1.
    #[schemars(with = "u32", range(min = 1, max = 1))]
    pub version: Spanned<u32>,
    /// Names the output folder; default: the file's stem.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// Batch seed: every shot's seed derives from it.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub seed: Option<Spanned<u64>>,
    /// Global template values, `vars.<name>` in templates.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, serde_json::Value>")]
    pub vars: OrderedMap<Spanned<Written>>,
    /// Data tables: a CSV path relative to the manifest, or inline `rows:`.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, DataSource>")]
    pub data: OrderedMap<Spanned<DataSource>>,
    /// Values for every shot that does not set them.
    #[serde(default)]
    #[schemars(with = "Option<RawDefaults>")]
    pub defaults: Option<Spanned<RawDefaults>>,
    /// The shots, in plan order.
    #[schemars(with = "Vec<RawShot>")]
    pub shots: Spanned<Vec<Spanned<RawShot>>>,
    /// Where results and videos go.
    #[serde(default)]
    pub output: Option<RawOutput>,
}

/// A data table.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum DataSource {
    /// A CSV file (header row first), relative to the manifest.
    Path(String),
    /// Rows written in the manifest.
    Inline(InlineRows),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InlineRows {
    /// One mapping per row; values are strings exactly as written, like CSV cells.
    #[schemars(with = "Vec<std::collections::BTreeMap<String, Scalar>>")]
    pub rows: Vec<OrderedMap<Option<String>>>,
}

/// Read without serde's untagged buffering, which would resolve a row key `n` or `y` and every
/// cell by YAML's types before the rows ever saw them.
impl<'de> Deserialize<'de> for DataSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = DataSource;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(DATA_SOURCE_SHAPE)
            }
            fn visit_str<E>(self, v: &str) -> Result<DataSource, E> {
                Ok(DataSource::Path(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DataSource, A::Error> {
                InlineRows::deserialize(MapAccessDeserializer::new(map)).map(DataSource::Inline)
            }
        }
        deserializer.deserialize_any(SourceVisitor)
    }
}

/// How a wrong data table shape is described (load errors match on it).
pub const DATA_SOURCE_SHAPE: &str = "a data table: a CSV path or `{ rows: [...] }`";

/// A plain YAML scalar (the schema of matrix values and inline cells).
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// A whole number, or a template that renders to one.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum IntOrTemplate {
    Int(i64),
    Template(String),
}

/// A boolean, or a template that renders to `true` or `false`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BoolOrTemplate {
    Bool(bool),
    Template(String),
}

/// Shot fields that `defaults` may set.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// `t2v`, `i2v`, `r2v`, `edit` or a full model id.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub model: Option<Spanned<String>>,
    /// Prompt template.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub prompt: Option<Spanned<String>>,
    /// A prompt template file, relative to the manifest.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub prompt_file: Option<Spanned<String>>,
    /// At most 500 characters.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub negative_prompt: Option<Spanned<String>>,
    /// t2v only: a wav/mp3 URL, 2-30 s.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub audio_url: Option<Spanned<String>>,
    /// Images, videos and audio the model works from.
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawMedia>>")]
    pub media: Option<Spanned<Vec<Spanned<RawMedia>>>>,
    /// Seconds of video.
    #[serde(default)]
    #[schemars(with = "Option<IntOrTemplate>")]
    pub duration: Option<Spanned<IntOrTemplate>>,
    /// `720P` or `1080P`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub resolution: Option<Spanned<String>>,
    /// `16:9`, `9:16`, `1:1`, `4:3` or `3:4` (t2v, r2v and edit).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ratio: Option<Spanned<String>>,
    /// Server-side prompt rewriting (default true).
    #[serde(default)]
    #[schemars(with = "Option<BoolOrTemplate>")]
    pub prompt_extend: Option<Spanned<BoolOrTemplate>>,
    /// Provider watermark (default false).
    #[serde(default)]
    #[schemars(with = "Option<BoolOrTemplate>")]
    pub watermark: Option<Spanned<BoolOrTemplate>>,
    /// Fixed seed in [0, 2147483647]; default: derived from the batch seed.
    #[serde(default)]
    #[schemars(with = "Option<IntOrTemplate>")]
    pub seed: Option<Spanned<IntOrTemplate>>,
    /// edit only: `auto` (may regenerate the sound, the default) or `origin` (keep the input's).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub audio_setting: Option<Spanned<String>>,
    /// Download file name template inside `videos/`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub output: Option<Spanned<String>>,
}

/// One shot (expanded over `for_each`, `matrix` and `takes`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawShot {
    /// Id template; renders to `[A-Za-z0-9._-]{1,128}`, unique.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// A data table name: one shot per row, `row` in templates.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub for_each: Option<Spanned<String>>,
    /// Filter expression, e.g. `row.active == 'yes'`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub when: Option<Spanned<String>>,
    /// Cross product of values, `matrix.<key>` in templates.
    #[serde(default)]
    #[schemars(with = "Option<std::collections::BTreeMap<String, Vec<Scalar>>>")]
    pub matrix: Option<Spanned<OrderedMap<Vec<Spanned<Written>>>>>,
    /// Variants with distinct seeds, `take` (1-based) in templates.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub takes: Option<Spanned<u32>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub model: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub prompt: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub prompt_file: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub negative_prompt: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub audio_url: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawMedia>>")]
    pub media: Option<Spanned<Vec<Spanned<RawMedia>>>>,
    #[serde(default)]
    #[schemars(with = "Option<IntOrTemplate>")]
    pub duration: Option<Spanned<IntOrTemplate>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub resolution: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub ratio: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<BoolOrTemplate>")]
    pub prompt_extend: Option<Spanned<BoolOrTemplate>>,
    #[serde(default)]
    #[schemars(with = "Option<BoolOrTemplate>")]
    pub watermark: Option<Spanned<BoolOrTemplate>>,
    #[serde(default)]
    #[schemars(with = "Option<IntOrTemplate>")]
    pub seed: Option<Spanned<IntOrTemplate>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub audio_setting: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub output: Option<Spanned<String>>,
}

/// A media item: `{type, url}` or `{type, shot}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMedia {
    /// first_frame, last_frame, driving_audio, first_clip, reference_image, reference_video, video.
    #[serde(rename = "type")]
    #[schemars(with = "String")]
    pub kind: Spanned<String>,
    /// An http(s) URL.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub url: Option<Spanned<String>>,
    /// Another shot's id: its video, once made.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub shot: Option<Spanned<String>>,
    /// r2v references only: a wav/mp3 voice URL, 1-10 s.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub reference_voice: Option<Spanned<String>>,
}

/// Where results and videos go.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// Output folder relative to the manifest; default `out/<name>`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub dir: Option<Spanned<String>>,
    /// Download name template inside `<dir>/videos/`; default `{{ id }}.mp4`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
}
