//! The request body, exactly the reference's Wan 2.7 form.

use serde_json::{Map, Value, json};

use super::expand::{Instance, Target};
use super::model::Kind;

/// The ratio sent for t2v and r2v when the manifest sets none.
pub const DEFAULT_RATIO: &str = "16:9";

/// The ratio a shot sends: never for i2v, the default for t2v and r2v.
pub fn sent_ratio(inst: &Instance) -> Option<String> {
    match inst.model.kind {
        Kind::I2v => None,
        Kind::T2v | Kind::R2v => Some(
            inst.ratio
                .as_ref()
                .map(|r| r.value.clone())
                .unwrap_or_else(|| DEFAULT_RATIO.to_owned()),
        ),
    }
}

/// `prompt` and `duration` in both places; resolution, duration, prompt_extend and watermark
/// always; ratio never for i2v; seed when the shot has one. `shot:` media stay `{type, shot}`.
pub fn body(inst: &Instance) -> Value {
    let prompt = Value::String(inst.prompt.value.clone());
    let mut input = Map::new();
    input.insert("prompt".into(), prompt.clone());
    if let Some(n) = &inst.negative_prompt {
        input.insert("negative_prompt".into(), Value::String(n.value.clone()));
    }
    if let Some(a) = &inst.audio_url {
        input.insert("audio_url".into(), Value::String(a.value.clone()));
    }
    if !inst.media.is_empty() {
        let media = inst
            .media
            .iter()
            .map(|m| {
                let mut item = Map::new();
                item.insert("type".into(), Value::String(m.kind.clone()));
                match &m.target {
                    Target::Url(u) => item.insert("url".into(), Value::String(u.clone())),
                    Target::Shot(s) => item.insert("shot".into(), Value::String(s.clone())),
                };
                if let Some((v, _)) = &m.voice {
                    item.insert("reference_voice".into(), Value::String(v.clone()));
                }
                Value::Object(item)
            })
            .collect();
        input.insert("media".into(), Value::Array(media));
    }
    let mut parameters = Map::new();
    parameters.insert("resolution".into(), json!(inst.resolution.value));
    if let Some(r) = sent_ratio(inst) {
        parameters.insert("ratio".into(), json!(r));
    }
    parameters.insert("duration".into(), json!(inst.duration.value));
    parameters.insert("prompt_extend".into(), json!(inst.prompt_extend.value));
    parameters.insert("watermark".into(), json!(inst.watermark));
    if let Some(s) = &inst.seed {
        parameters.insert("seed".into(), json!(s.value));
    }
    let mut metadata = Map::new();
    metadata.insert("input".into(), Value::Object(input));
    metadata.insert("parameters".into(), Value::Object(parameters));
    let mut body = Map::new();
    body.insert("model".into(), json!(inst.model.id));
    body.insert("prompt".into(), prompt);
    body.insert("duration".into(), json!(inst.duration.value));
    body.insert("metadata".into(), Value::Object(metadata));
    Value::Object(body)
}
