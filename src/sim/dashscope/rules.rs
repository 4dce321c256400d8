//! The native body rules, written from the DashScope notes on their own (neither the planner's
//! checks nor the gateway simulator's are reused), so the client's native encoding is judged
//! independently. Only the field lists and limits are the gateway simulator's: its
//! `metadata.input`/`metadata.parameters` are these `input`/`parameters`. A refusal is a
//! DashScope error code with a message naming the field.

use serde_json::{Map, Value};

use crate::sim::rules::{
    self, INPUT_FIELDS, MAX_NEGATIVE_PROMPT_CHARS, MAX_PROMPT_CHARS, MEDIA_FIELDS,
    PARAMETER_FIELDS, RATIOS,
};

/// The four native Wan 2.7 models (undated ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeModel {
    T2v,
    I2v,
    R2v,
    VideoEdit,
}

impl NativeModel {
    pub const ALL: [NativeModel; 4] = [
        NativeModel::T2v,
        NativeModel::I2v,
        NativeModel::R2v,
        NativeModel::VideoEdit,
    ];

    pub fn id(self) -> &'static str {
        match self {
            NativeModel::T2v => "wan2.7-t2v",
            NativeModel::I2v => "wan2.7-i2v",
            NativeModel::R2v => "wan2.7-r2v",
            NativeModel::VideoEdit => "wan2.7-videoedit",
        }
    }

    pub fn from_id(id: &str) -> Option<NativeModel> {
        NativeModel::ALL.into_iter().find(|m| m.id() == id)
    }
}

/// A refused body: the DashScope `code` and a message naming the field and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        code: "InvalidParameter",
        message: message.into(),
    }
}

/// What the simulator keeps of an accepted body.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub model: NativeModel,
    pub prompt: String,
    pub seed: Option<u32>,
    /// `720P` or `1080P` (native default 1080P).
    pub resolution: &'static str,
    /// Requested seconds; videoedit 0 keeps the input's length.
    pub duration: u32,
    pub ratio: Option<String>,
    /// An r2v `reference_video` or the videoedit `video`: input seconds are billed.
    pub has_input_video: bool,
    /// `parameters.prompt_extend` (default true): the prompt is rewritten.
    pub prompt_extend: bool,
}

const TOP: &[&str] = &["model", "input", "parameters"];

/// What Alibaba's own Python SDK (`dashscope` 2.0.2, `VideoSynthesis.async_call`) adds to every
/// create's `input`, so the service accepts it: `extend_prompt`, the deprecated spelling of
/// `parameters.prompt_extend` (always sent, `true` by default), and `function`
/// (`"video-synthesis"`). Users test their own SDK code against the simulator.
const SDK_INPUT_FIELDS: &[&str] = &["extend_prompt", "function"];
const MAX_SEED: u64 = rules::MAX_SEED as u64;

/// Checks a create body against the native rules of its model.
pub fn check(body: &[u8]) -> Result<Accepted, Refusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("the body is not valid JSON ({e})")))?;
    let Value::Object(top) = value else {
        return Err(invalid("the body must be a JSON object"));
    };
    known(&top, "", TOP)?;
    let model = match top.get("model") {
        None | Some(Value::Null) => {
            return Err(Refusal {
                code: "BadRequest.EmptyModel",
                message: "Required parameter(s) missing or invalid: model".into(),
            });
        }
        Some(Value::String(id)) => NativeModel::from_id(id).ok_or_else(|| {
            let ids: Vec<&str> = NativeModel::ALL.iter().map(|m| m.id()).collect();
            invalid(format!(
                "Model not exist: `{id}`; native ids are {}",
                ids.join(", ")
            ))
        })?,
        Some(_) => return Err(invalid("model must be a string")),
    };
    let input = match top.get("input") {
        Some(Value::Object(input)) if !input.is_empty() => input,
        Some(Value::Object(_)) | None => {
            return Err(Refusal {
                code: "BadRequest.EmptyInput",
                message: "Required parameter(s) missing or invalid: input".into(),
            });
        }
        Some(_) => return Err(invalid("input must be an object")),
    };
    let input_fields: Vec<&str> = INPUT_FIELDS
        .iter()
        .chain(SDK_INPUT_FIELDS)
        .copied()
        .collect();
    known(input, "input.", &input_fields)?;
    let extend_prompt = match input.get("extend_prompt") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => {
            return Err(invalid(format!(
                "input.extend_prompt must be true or false, not {v}"
            )));
        }
    };
    if let Some(v) = input.get("function")
        && !v.is_string()
    {
        return Err(invalid(format!("input.function must be a string, not {v}")));
    }
    let empty = Map::new();
    let parameters = match top.get("parameters") {
        None => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => return Err(invalid("parameters must be an object")),
    };
    known(parameters, "parameters.", PARAMETER_FIELDS)?;

    let prompt = text(input, "prompt", MAX_PROMPT_CHARS)?;
    if prompt.is_none() && model != NativeModel::I2v {
        return Err(invalid(format!(
            "input.prompt is required for {}",
            model.id()
        )));
    }
    text(input, "negative_prompt", MAX_NEGATIVE_PROMPT_CHARS)?;
    if input.contains_key("audio_url") {
        if model != NativeModel::T2v {
            return Err(invalid(format!(
                "input.audio_url is for wan2.7-t2v only, not {}",
                model.id()
            )));
        }
        url(input.get("audio_url"), "input.audio_url")?;
    }
    let has_input_video = media(model, input.get("media"))?;

    let resolution = match parameters.get("resolution") {
        None => "1080P",
        Some(Value::String(r)) if r == "720P" => "720P",
        Some(Value::String(r)) if r == "1080P" => "1080P",
        Some(other) => {
            return Err(invalid(format!(
                "parameters.resolution {other} is not one of \"720P\", \"1080P\""
            )));
        }
    };
    let ratio = match parameters.get("ratio") {
        None => None,
        Some(_) if model == NativeModel::I2v => {
            return Err(invalid(
                "parameters.ratio is not accepted by wan2.7-i2v (the ratio follows the images)",
            ));
        }
        Some(Value::String(r)) if RATIOS.contains(&r.as_str()) => Some(r.clone()),
        Some(other) => {
            return Err(invalid(format!(
                "parameters.ratio {other} is not one of {}",
                RATIOS.join(", ")
            )));
        }
    };
    let duration = duration(model, parameters.get("duration"), has_input_video)?;
    for flag in ["prompt_extend", "watermark"] {
        if let Some(v) = parameters.get(flag)
            && !v.is_boolean()
        {
            return Err(invalid(format!(
                "parameters.{flag} must be true or false, not {v}"
            )));
        }
    }
    let seed = match parameters.get("seed") {
        None => None,
        Some(v) => Some(v.as_u64().filter(|s| *s <= MAX_SEED).ok_or_else(|| {
            invalid(format!(
                "parameters.seed {v} must be an integer from 0 to {MAX_SEED}"
            ))
        })? as u32),
    };
    if let Some(v) = parameters.get("audio_setting") {
        if model != NativeModel::VideoEdit {
            return Err(invalid(format!(
                "parameters.audio_setting is for wan2.7-videoedit only, not {}",
                model.id()
            )));
        }
        if !matches!(v.as_str(), Some("auto" | "origin")) {
            return Err(invalid(format!(
                "parameters.audio_setting {v} is not \"auto\" or \"origin\""
            )));
        }
    }
    Ok(Accepted {
        model,
        prompt: prompt.unwrap_or_default().to_owned(),
        seed,
        resolution,
        duration,
        ratio,
        has_input_video,
        // The SDK sends `extend_prompt: true` beside `prompt_extend: false`: the parameter wins
        // (an assumption: the SDK's default would otherwise undo every `prompt_extend: false`).
        prompt_extend: match parameters.get("prompt_extend") {
            Some(v) => v != &Value::Bool(false),
            None => extend_prompt.unwrap_or(true),
        },
    })
}

fn known(map: &Map<String, Value>, prefix: &str, fields: &[&str]) -> Result<(), Refusal> {
    match map.keys().find(|k| !fields.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(invalid(format!(
            "unknown field {prefix}{k} (accepted: {})",
            fields.join(", ")
        ))),
    }
}

fn text<'a>(
    map: &'a Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<&'a str>, Refusal> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            let chars = s.chars().count();
            if chars > max {
                Err(invalid(format!(
                    "input.{field} has {chars} characters; at most {max}"
                )))
            } else {
                Ok(Some(s))
            }
        }
        Some(other) => Err(invalid(format!(
            "input.{field} must be a string, not {other}"
        ))),
    }
}

fn url(value: Option<&Value>, at: &str) -> Result<(), Refusal> {
    match value.and_then(Value::as_str) {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => Ok(()),
        _ => Err(invalid(format!("{at} must be an http(s) URL"))),
    }
}

/// Checks `input.media` for `model`; returns whether it holds an input video.
fn media(model: NativeModel, value: Option<&Value>) -> Result<bool, Refusal> {
    let items: &[Value] = match value {
        None => &[],
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("input.media must be a list")),
    };
    if model == NativeModel::T2v && !items.is_empty() {
        return Err(invalid("wan2.7-t2v takes no input.media"));
    }
    let mut kinds: Vec<&str> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("input.media[{i}]");
        let Value::Object(item) = item else {
            return Err(invalid(format!("{at} must be an object {{type, url}}")));
        };
        known(item, &format!("{at}."), MEDIA_FIELDS)?;
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        url(item.get("url"), &format!("{at}.url"))?;
        if item.contains_key("reference_voice") {
            if !(model == NativeModel::R2v && matches!(kind, "reference_image" | "reference_video"))
            {
                return Err(invalid(format!(
                    "{at}.reference_voice is for wan2.7-r2v reference items only"
                )));
            }
            url(
                item.get("reference_voice"),
                &format!("{at}.reference_voice"),
            )?;
        }
        kinds.push(kind);
    }
    let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
    let allowed: &[&str] = match model {
        NativeModel::T2v => &[],
        NativeModel::I2v => &["first_frame", "last_frame", "driving_audio", "first_clip"],
        NativeModel::R2v => &["reference_image", "reference_video", "first_frame"],
        NativeModel::VideoEdit => &["video", "reference_image"],
    };
    if let Some(bad) = kinds.iter().find(|k| !allowed.contains(k)) {
        return Err(invalid(format!(
            "media type `{bad}` is not accepted by {} (accepted: {})",
            model.id(),
            allowed.join(", ")
        )));
    }
    if let Some(k) = allowed.iter().find(|k| count(k) > 1)
        && !matches!(
            (model, *k),
            (NativeModel::R2v, "reference_image" | "reference_video")
                | (NativeModel::VideoEdit, "reference_image")
        )
    {
        return Err(invalid(format!(
            "media type `{k}` appears {} times; at most once",
            count(k)
        )));
    }
    match model {
        NativeModel::T2v => Ok(false),
        NativeModel::I2v => {
            let (frame, last, audio, clip) = (
                count("first_frame") == 1,
                count("last_frame") == 1,
                count("driving_audio") == 1,
                count("first_clip") == 1,
            );
            let ok = match (frame, clip) {
                (true, false) => true,
                (false, true) => !audio,
                _ => false,
            };
            if !ok || (!frame && !clip && last) {
                return Err(invalid(
                    "wan2.7-i2v media: first_frame [+ last_frame] [+ driving_audio], or first_clip [+ last_frame]",
                ));
            }
            Ok(false)
        }
        NativeModel::R2v => {
            let refs = count("reference_image") + count("reference_video");
            if !(1..=5).contains(&refs) {
                return Err(invalid(format!(
                    "wan2.7-r2v takes 1 to 5 reference_image/reference_video in total, not {refs}"
                )));
            }
            Ok(count("reference_video") > 0)
        }
        NativeModel::VideoEdit => {
            if count("video") != 1 {
                return Err(invalid(
                    "wan2.7-videoedit takes exactly one media item of type `video`",
                ));
            }
            if count("reference_image") > 4 {
                return Err(invalid(format!(
                    "wan2.7-videoedit takes at most 4 reference_image, not {}",
                    count("reference_image")
                )));
            }
            Ok(true)
        }
    }
}

fn duration(model: NativeModel, value: Option<&Value>, has_video: bool) -> Result<u32, Refusal> {
    let (default, max) = match model {
        NativeModel::VideoEdit => (0, 10),
        NativeModel::R2v if has_video => (5, 10),
        _ => (5, 15),
    };
    let Some(value) = value else {
        return Ok(default);
    };
    let seconds = value.as_u64().ok_or_else(|| {
        invalid(format!(
            "parameters.duration must be an integer number of seconds, not {value}"
        ))
    })?;
    let zero_ok = model == NativeModel::VideoEdit && seconds == 0;
    if !zero_ok && !(2..=max).contains(&seconds) {
        let zero = if model == NativeModel::VideoEdit {
            "0 (keep the input's length) or "
        } else {
            ""
        };
        return Err(invalid(format!(
            "parameters.duration {seconds} is out of range for {}: {zero}2 to {max}",
            model.id()
        )));
    }
    Ok(seconds as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_value(v: Value) -> Result<Accepted, Refusal> {
        check(v.to_string().as_bytes())
    }

    #[test]
    fn defaults_follow_the_native_api() {
        let ok = check_value(json!({"model": "wan2.7-t2v", "input": {"prompt": "a cat"}})).unwrap();
        assert_eq!((ok.resolution, ok.duration, ok.seed), ("1080P", 5, None));
        let edit = check_value(json!({"model": "wan2.7-videoedit",
            "input": {"prompt": "restyle", "media": [{"type": "video", "url": "https://x/v.mp4"}]}}))
        .unwrap();
        assert_eq!(edit.duration, 0);
        assert!(edit.has_input_video);
    }

    #[test]
    fn gateway_shapes_and_dated_ids_are_refused() {
        let dated =
            check_value(json!({"model": "wan2.7-t2v-2026-04-25", "input": {"prompt": "a"}}));
        assert_eq!(dated.unwrap_err().code, "InvalidParameter");
        let gateway =
            check_value(json!({"model": "wan2.7-t2v", "prompt": "a", "input": {"prompt": "a"}}));
        assert!(
            gateway
                .unwrap_err()
                .message
                .contains("unknown field prompt")
        );
        let no_model = check_value(json!({"input": {"prompt": "a"}}));
        assert_eq!(no_model.unwrap_err().code, "BadRequest.EmptyModel");
        let no_input = check_value(json!({"model": "wan2.7-t2v"}));
        assert_eq!(no_input.unwrap_err().code, "BadRequest.EmptyInput");
    }

    #[test]
    fn media_rules_per_model() {
        let img = |t: &str| json!({"type": t, "url": "https://x/a.png"});
        let i2v =
            |media: Value| check_value(json!({"model": "wan2.7-i2v", "input": {"media": media}}));
        assert!(i2v(json!([img("first_frame")])).is_ok());
        assert!(
            i2v(json!([
                img("first_frame"),
                img("last_frame"),
                img("driving_audio")
            ]))
            .is_ok()
        );
        assert!(i2v(json!([img("first_clip"), img("last_frame")])).is_ok());
        assert!(i2v(json!([img("first_clip"), img("first_frame")])).is_err());
        assert!(i2v(json!([img("last_frame")])).is_err());
        assert!(i2v(json!([img("first_clip"), img("driving_audio")])).is_err());
        let r2v = |media: Value, d: u64| {
            check_value(
                json!({"model": "wan2.7-r2v", "input": {"prompt": "p", "media": media},
                               "parameters": {"duration": d}}),
            )
        };
        assert!(r2v(json!([img("reference_image")]), 15).is_ok());
        assert!(r2v(json!([img("reference_video")]), 15).is_err());
        assert!(r2v(json!([img("first_frame")]), 5).is_err());
        let six: Vec<Value> = (0..6).map(|_| img("reference_image")).collect();
        assert!(r2v(json!(six), 5).is_err());
        let edit = |media: Value, d: u64| {
            check_value(
                json!({"model": "wan2.7-videoedit", "input": {"prompt": "p", "media": media},
                               "parameters": {"duration": d, "audio_setting": "origin"}}),
            )
        };
        assert!(edit(json!([img("video"), img("reference_image")]), 10).is_ok());
        assert!(edit(json!([img("video")]), 1).is_err());
        assert!(edit(json!([img("reference_image")]), 0).is_err());
        assert!(edit(json!([img("video"), img("video")]), 0).is_err());
    }

    #[test]
    fn parameters_are_typed() {
        let t2v = |p: Value| {
            check_value(json!({"model": "wan2.7-t2v", "input": {"prompt": "a"}, "parameters": p}))
        };
        assert!(t2v(json!({"duration": "5"})).is_err());
        assert!(t2v(json!({"resolution": "720p"})).is_err());
        assert!(t2v(json!({"seed": 2_147_483_648_u64})).is_err());
        assert!(t2v(json!({"size": "1280*720"})).is_err());
        assert!(t2v(json!({"audio_setting": "auto"})).is_err());
        assert_eq!(
            t2v(json!({"seed": 0, "prompt_extend": false}))
                .unwrap()
                .seed,
            Some(0)
        );
        let i2v_ratio = check_value(json!({"model": "wan2.7-i2v",
            "input": {"media": [{"type": "first_frame", "url": "https://x/a.png"}]},
            "parameters": {"ratio": "16:9"}}));
        assert!(i2v_ratio.is_err());
    }
}
