//! The expand stage's output: one shot with every template rendered, not yet judged.

use super::diagnostic::{DataLocation, Loc};
use super::model::{MediaKind, ModelSpec};

/// A value as written, with where it was written.
#[derive(Debug, Clone)]
pub struct Field<T> {
    pub loc: Option<Loc>,
    /// Reached the shot from `defaults`.
    pub from_defaults: bool,
    pub value: T,
}

/// Where a media item's content comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Url(String),
    Shot(String),
}

#[derive(Debug, Clone)]
pub struct Media {
    /// The `type` as written (and sent); `kind` is `None` when no media type has that name.
    pub type_name: String,
    pub kind: Option<MediaKind>,
    pub kind_loc: Option<Loc>,
    pub target: Target,
    pub target_loc: Option<Loc>,
    pub voice: Option<(String, Option<Loc>)>,
}

/// One expanded shot with every template rendered, not yet judged.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub id_loc: Option<Loc>,
    pub data: Option<DataLocation>,
    pub model: &'static ModelSpec,
    pub prompt: Field<String>,
    pub negative_prompt: Option<Field<String>>,
    pub audio_url: Option<Field<String>>,
    pub media: Vec<Media>,
    pub media_loc: Option<Loc>,
    pub duration: Field<u32>,
    pub resolution: Field<String>,
    pub ratio: Option<Field<String>>,
    pub prompt_extend: Field<bool>,
    pub watermark: bool,
    /// `auto` or `origin` (edit only), as written.
    pub audio_setting: Option<Field<String>>,
    /// The seed to send and whether the shot set it itself.
    pub seed: Option<Field<u32>>,
    pub seed_explicit: bool,
    pub file: Field<String>,
    /// 1-based take and the matrix values, for the results.
    pub take: u32,
    pub matrix: Vec<(String, String)>,
    /// Names the manifest entry and data row this instance came from (by the row's first id),
    /// the same for every take and matrix variant of them and unchanged by edits elsewhere or
    /// of the row's other values: what shards are cut by.
    pub group: u64,
}
