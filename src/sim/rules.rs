//! The simulator's body rules, written from the provider reference on their own: the planner's
//! checks are never reused here, so a mistake in the client's validation shows up as a 400 from
//! the simulator instead of passing silently. Each refusal names its [`Rule`].

use serde_json::{Map, Value};

/// The three models the reference documents, and videoedit, which the gateway passes on
/// under its native id (not on the gateway's page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    T2v,
    I2v,
    R2v,
    VideoEdit,
}

impl Model {
    pub const ALL: [Model; 4] = [Model::T2v, Model::I2v, Model::R2v, Model::VideoEdit];

    pub fn id(self) -> &'static str {
        match self {
            Model::T2v => "wan2.7-t2v-2026-04-25",
            Model::I2v => "wan2.7-i2v-2026-04-25",
            Model::R2v => "wan2.7-r2v",
            Model::VideoEdit => "wan2.7-videoedit",
        }
    }

    pub fn from_id(id: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.id() == id)
    }
}

/// Every rule a body can break; [`Rule::name`] is the word the 400 message starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    ContentType,
    BodyJson,
    UnknownField,
    Model,
    MetadataRequired,
    PromptRequired,
    PromptMismatch,
    PromptLength,
    NegativePromptLength,
    UnknownParameter,
    DurationType,
    DurationMismatch,
    DurationRange,
    Resolution,
    Ratio,
    RatioForI2v,
    Seed,
    BoolParameter,
    AudioUrlModel,
    MediaForT2v,
    MediaItem,
    MediaType,
    MediaUrl,
    MediaDuplicate,
    I2vMediaMode,
    R2vReferenceCount,
    EditMedia,
    AudioSetting,
    ReferenceVoice,
    ReferenceIndex,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::ContentType => "content_type",
            Rule::BodyJson => "body_json",
            Rule::UnknownField => "unknown_field",
            Rule::Model => "model",
            Rule::MetadataRequired => "metadata_required",
            Rule::PromptRequired => "prompt_required",
            Rule::PromptMismatch => "prompt_mismatch",
            Rule::PromptLength => "prompt_length",
            Rule::NegativePromptLength => "negative_prompt_length",
            Rule::UnknownParameter => "unknown_parameter",
            Rule::DurationType => "duration_type",
            Rule::DurationMismatch => "duration_mismatch",
            Rule::DurationRange => "duration_range",
            Rule::Resolution => "resolution",
            Rule::Ratio => "ratio",
            Rule::RatioForI2v => "ratio_for_i2v",
            Rule::Seed => "seed",
            Rule::BoolParameter => "bool_parameter",
            Rule::AudioUrlModel => "audio_url_model",
            Rule::MediaForT2v => "media_for_t2v",
            Rule::MediaItem => "media_item",
            Rule::MediaType => "media_type",
            Rule::MediaUrl => "media_url",
            Rule::MediaDuplicate => "media_duplicate",
            Rule::I2vMediaMode => "i2v_media_mode",
            Rule::R2vReferenceCount => "r2v_reference_count",
            Rule::EditMedia => "edit_media",
            Rule::AudioSetting => "audio_setting",
            Rule::ReferenceVoice => "reference_voice",
            Rule::ReferenceIndex => "reference_index",
        }
    }

    /// Rules the gateway itself enforces (answered with a flat error body); the others are
    /// Alibaba's and come back wrapped in the gateway's `fail_to_fetch_task` body.
    pub fn gateway_level(self) -> bool {
        matches!(
            self,
            Rule::ContentType
                | Rule::BodyJson
                | Rule::UnknownField
                | Rule::Model
                | Rule::MetadataRequired
                | Rule::PromptRequired
        )
    }
}

/// A refused body: which rule, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", rule.name())]
pub struct Violation {
    pub rule: Rule,
    pub detail: String,
}

fn violation(rule: Rule, detail: impl Into<String>) -> Violation {
    Violation {
        rule,
        detail: detail.into(),
    }
}

/// What the simulator keeps of an accepted body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub model: Model,
    pub prompt: String,
    pub seed: Option<u32>,
    pub duration: u32,
}

const TOP_FIELDS: &[&str] = &["model", "prompt", "duration", "metadata"];
const METADATA_FIELDS: &[&str] = &["input", "parameters"];
// The gateway's `metadata.input`/`metadata.parameters` are DashScope's `input`/`parameters`: the
// native simulator checks them against these same lists and limits.
pub(crate) const INPUT_FIELDS: &[&str] = &["prompt", "negative_prompt", "audio_url", "media"];
pub(crate) const PARAMETER_FIELDS: &[&str] = &[
    "resolution",
    "ratio",
    "duration",
    "prompt_extend",
    "watermark",
    "seed",
    "audio_setting",
];
pub(crate) const MEDIA_FIELDS: &[&str] = &["type", "url", "reference_voice"];
pub(crate) const RATIOS: &[&str] = &["16:9", "9:16", "1:1", "4:3", "3:4"];
pub(crate) const MAX_PROMPT_CHARS: usize = 5000;
pub(crate) const MAX_NEGATIVE_PROMPT_CHARS: usize = 500;
pub(crate) const MAX_SEED: i64 = 2_147_483_647;
const DEFAULT_DURATION: u32 = 5;
/// videoedit: 0 (the default) keeps the input video's length.
const EDIT_DEFAULT_DURATION: u32 = 0;
const EDIT_MAX_IMAGES: usize = 4;

/// Refuses a `Content-Type` other than JSON (a missing one too).
pub fn check_content_type(content_type: Option<&str>) -> Result<(), Violation> {
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some(other) => Err(violation(
            Rule::ContentType,
            format!("Content-Type is `{other}`; send the body as application/json"),
        )),
        None => Err(violation(
            Rule::ContentType,
            "no Content-Type header; send the body as application/json",
        )),
    }
}

/// Checks a submit body against every rule of the reference.
pub fn check(body: &[u8]) -> Result<Accepted, Violation> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| violation(Rule::BodyJson, format!("the body is not valid JSON ({e})")))?;
    let Value::Object(top) = value else {
        return Err(violation(Rule::BodyJson, "the body must be a JSON object"));
    };
    only_known(&top, "", TOP_FIELDS, Rule::UnknownField)?;

    let model = check_model(top.get("model"))?;
    let prompt = required_prompt(top.get("prompt"), "prompt")?;

    let metadata = object(top.get("metadata"), "metadata")?;
    only_known(metadata, "metadata.", METADATA_FIELDS, Rule::UnknownField)?;
    let input = object(metadata.get("input"), "metadata.input")?;
    only_known(input, "metadata.input.", INPUT_FIELDS, Rule::UnknownField)?;
    let empty = Map::new();
    let parameters = match metadata.get("parameters") {
        None => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(violation(
                Rule::MetadataRequired,
                "metadata.parameters must be an object",
            ));
        }
    };
    only_known(
        parameters,
        "metadata.parameters.",
        PARAMETER_FIELDS,
        Rule::UnknownParameter,
    )?;

    let inner_prompt = required_prompt(input.get("prompt"), "metadata.input.prompt")?;
    if inner_prompt != prompt {
        return Err(violation(
            Rule::PromptMismatch,
            "prompt and metadata.input.prompt differ; send the same text in both",
        ));
    }
    let chars = prompt.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(violation(
            Rule::PromptLength,
            format!("prompt has {chars} characters; at most {MAX_PROMPT_CHARS} are allowed"),
        ));
    }
    check_negative_prompt(input.get("negative_prompt"))?;

    let duration = check_duration(model, top.get("duration"), parameters.get("duration"))?;
    check_resolution(parameters.get("resolution"))?;
    check_ratio(model, parameters.get("ratio"))?;
    let seed = check_seed(parameters.get("seed"))?;
    for name in ["prompt_extend", "watermark"] {
        if let Some(v) = parameters.get(name)
            && !v.is_boolean()
        {
            return Err(violation(
                Rule::BoolParameter,
                format!("metadata.parameters.{name} must be true or false, not {v}"),
            ));
        }
    }
    check_audio_url(model, input.get("audio_url"))?;
    check_audio_setting(model, parameters.get("audio_setting"))?;

    let media = media_items(input.get("media"))?;
    let counts = check_media(model, &media)?;
    check_duration_range(model, duration, counts.videos > 0)?;
    if model == Model::R2v {
        check_reference_indexes(prompt, counts)?;
    }

    Ok(Accepted {
        model,
        prompt: prompt.to_owned(),
        seed,
        duration,
    })
}

fn only_known(
    map: &Map<String, Value>,
    prefix: &str,
    known: &[&str],
    rule: Rule,
) -> Result<(), Violation> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(violation(
            rule,
            format!(
                "unknown field `{prefix}{key}`; allowed here: {}",
                known.join(", ")
            ),
        )),
    }
}

fn check_model(value: Option<&Value>) -> Result<Model, Violation> {
    let ids = Model::ALL.map(Model::id).join(", ");
    match value {
        None => Err(violation(
            Rule::Model,
            format!("`model` is required; one of {ids}"),
        )),
        Some(Value::String(id)) => Model::from_id(id).ok_or_else(|| {
            violation(
                Rule::Model,
                format!("model `{id}` is not a Wan 2.7 model; use one of {ids}"),
            )
        }),
        Some(other) => Err(violation(
            Rule::Model,
            format!("`model` must be a string, not {other}; use one of {ids}"),
        )),
    }
}

fn required_prompt<'a>(value: Option<&'a Value>, path: &str) -> Result<&'a str, Violation> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(violation(
            Rule::PromptRequired,
            format!("`{path}` is empty"),
        )),
        Some(_) => Err(violation(
            Rule::PromptRequired,
            format!("`{path}` must be a string"),
        )),
        None => Err(violation(
            Rule::PromptRequired,
            format!("`{path}` is required"),
        )),
    }
}

fn object<'a>(value: Option<&'a Value>, path: &str) -> Result<&'a Map<String, Value>, Violation> {
    match value {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(violation(
            Rule::MetadataRequired,
            format!("`{path}` must be an object"),
        )),
        None => Err(violation(
            Rule::MetadataRequired,
            format!("`{path}` is required (Wan 2.7 takes its input there)"),
        )),
    }
}

fn check_negative_prompt(value: Option<&Value>) -> Result<(), Violation> {
    match value {
        None => Ok(()),
        Some(Value::String(s)) => {
            let chars = s.chars().count();
            if chars > MAX_NEGATIVE_PROMPT_CHARS {
                Err(violation(
                    Rule::NegativePromptLength,
                    format!(
                        "metadata.input.negative_prompt has {chars} characters; at most {MAX_NEGATIVE_PROMPT_CHARS} are allowed"
                    ),
                ))
            } else {
                Ok(())
            }
        }
        Some(_) => Err(violation(
            Rule::NegativePromptLength,
            "metadata.input.negative_prompt must be a string",
        )),
    }
}

fn integer(value: &Value, path: &str) -> Result<u32, Violation> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            violation(
                Rule::DurationType,
                format!("`{path}` must be a whole number of seconds, not {value}"),
            )
        })
}

fn check_duration(
    model: Model,
    top: Option<&Value>,
    inner: Option<&Value>,
) -> Result<u32, Violation> {
    let top = top.map(|v| integer(v, "duration")).transpose()?;
    let inner = inner
        .map(|v| integer(v, "metadata.parameters.duration"))
        .transpose()?;
    match (top, inner) {
        (Some(a), Some(b)) if a != b => Err(violation(
            Rule::DurationMismatch,
            format!(
                "duration is {a} but metadata.parameters.duration is {b}; send the same value in both"
            ),
        )),
        (a, b) => Ok(b.or(a).unwrap_or(if model == Model::VideoEdit {
            EDIT_DEFAULT_DURATION
        } else {
            DEFAULT_DURATION
        })),
    }
}

fn check_duration_range(model: Model, duration: u32, has_video: bool) -> Result<(), Violation> {
    let (max, why) = match model {
        Model::R2v if has_video => (10, " with a reference_video"),
        Model::VideoEdit => (10, " (or 0 to keep the input video's length)"),
        _ => (15, ""),
    };
    if (2..=max).contains(&duration) || (model == Model::VideoEdit && duration == 0) {
        Ok(())
    } else {
        Err(violation(
            Rule::DurationRange,
            format!(
                "duration {duration} s is out of range for {}{why}: 2 to {max} s",
                model.id()
            ),
        ))
    }
}

fn check_resolution(value: Option<&Value>) -> Result<(), Violation> {
    match value {
        None => Ok(()),
        Some(Value::String(s)) if s == "720P" || s == "1080P" => Ok(()),
        Some(other) => Err(violation(
            Rule::Resolution,
            format!(
                "metadata.parameters.resolution {other} is not allowed; use \"720P\" or \"1080P\""
            ),
        )),
    }
}

fn check_ratio(model: Model, value: Option<&Value>) -> Result<(), Violation> {
    let Some(value) = value else { return Ok(()) };
    if model == Model::I2v {
        return Err(violation(
            Rule::RatioForI2v,
            format!(
                "metadata.parameters.ratio must not be sent for {}: its aspect follows the input assets; remove it",
                model.id()
            ),
        ));
    }
    match value {
        Value::String(s) if RATIOS.contains(&s.as_str()) => Ok(()),
        other => Err(violation(
            Rule::Ratio,
            format!(
                "metadata.parameters.ratio {other} is not allowed; use one of {}",
                RATIOS.join(", ")
            ),
        )),
    }
}

fn check_seed(value: Option<&Value>) -> Result<Option<u32>, Violation> {
    let Some(value) = value else { return Ok(None) };
    match value.as_i64() {
        Some(n) if (0..=MAX_SEED).contains(&n) => Ok(u32::try_from(n).ok()),
        _ => Err(violation(
            Rule::Seed,
            format!("metadata.parameters.seed {value} must be an integer in [0, {MAX_SEED}]"),
        )),
    }
}

fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !url.chars().any(char::is_whitespace)
}

fn check_audio_url(model: Model, value: Option<&Value>) -> Result<(), Violation> {
    let Some(value) = value else { return Ok(()) };
    if model != Model::T2v {
        return Err(violation(
            Rule::AudioUrlModel,
            format!(
                "metadata.input.audio_url is only for {}; {} takes audio as media",
                Model::T2v.id(),
                model.id()
            ),
        ));
    }
    match value {
        Value::String(url) if is_http_url(url) => Ok(()),
        other => Err(violation(
            Rule::MediaUrl,
            format!("metadata.input.audio_url {other} must be an http(s) URL"),
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaKind {
    FirstFrame,
    LastFrame,
    DrivingAudio,
    FirstClip,
    ReferenceImage,
    ReferenceVideo,
    Video,
}

impl MediaKind {
    const ALL: [MediaKind; 7] = [
        MediaKind::FirstFrame,
        MediaKind::LastFrame,
        MediaKind::DrivingAudio,
        MediaKind::FirstClip,
        MediaKind::ReferenceImage,
        MediaKind::ReferenceVideo,
        MediaKind::Video,
    ];

    fn name(self) -> &'static str {
        match self {
            MediaKind::FirstFrame => "first_frame",
            MediaKind::LastFrame => "last_frame",
            MediaKind::DrivingAudio => "driving_audio",
            MediaKind::FirstClip => "first_clip",
            MediaKind::ReferenceImage => "reference_image",
            MediaKind::ReferenceVideo => "reference_video",
            MediaKind::Video => "video",
        }
    }

    fn allowed_for(model: Model) -> &'static [MediaKind] {
        match model {
            Model::T2v => &[],
            Model::I2v => &[
                MediaKind::FirstFrame,
                MediaKind::LastFrame,
                MediaKind::DrivingAudio,
                MediaKind::FirstClip,
            ],
            Model::R2v => &[
                MediaKind::ReferenceImage,
                MediaKind::ReferenceVideo,
                MediaKind::FirstFrame,
            ],
            Model::VideoEdit => &[MediaKind::Video, MediaKind::ReferenceImage],
        }
    }
}

struct MediaItem {
    kind: MediaKind,
    has_voice: bool,
    index: usize,
}

fn media_items(value: Option<&Value>) -> Result<Vec<MediaItem>, Violation> {
    let items = match value {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(violation(
                Rule::MediaItem,
                "metadata.input.media must be a list of {type, url} objects",
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| media_item(index, item))
        .collect()
}

fn media_item(index: usize, item: &Value) -> Result<MediaItem, Violation> {
    let path = format!("metadata.input.media[{index}]");
    let Value::Object(fields) = item else {
        return Err(violation(
            Rule::MediaItem,
            format!("{path} must be an object {{type, url}}"),
        ));
    };
    if let Some(key) = fields.keys().find(|k| !MEDIA_FIELDS.contains(&k.as_str())) {
        return Err(violation(
            Rule::MediaItem,
            format!(
                "unknown field `{path}.{key}`; allowed here: {}",
                MEDIA_FIELDS.join(", ")
            ),
        ));
    }
    let kind = match fields.get("type") {
        Some(Value::String(t)) => MediaKind::ALL
            .into_iter()
            .find(|k| k.name() == t)
            .ok_or_else(|| {
                violation(
                    Rule::MediaType,
                    format!("{path}.type `{t}` is not a media type"),
                )
            })?,
        _ => {
            return Err(violation(
                Rule::MediaItem,
                format!("{path}.type is required (a string)"),
            ));
        }
    };
    match fields.get("url") {
        Some(Value::String(url)) if is_http_url(url) => {}
        Some(other) => {
            return Err(violation(
                Rule::MediaUrl,
                format!("{path}.url {other} must be an http(s) URL"),
            ));
        }
        None => {
            return Err(violation(
                Rule::MediaItem,
                format!("{path}.url is required"),
            ));
        }
    }
    let has_voice = match fields.get("reference_voice") {
        None => false,
        Some(Value::String(url)) if is_http_url(url) => true,
        Some(other) => {
            return Err(violation(
                Rule::MediaUrl,
                format!("{path}.reference_voice {other} must be an http(s) URL"),
            ));
        }
    };
    Ok(MediaItem {
        kind,
        has_voice,
        index,
    })
}

/// How many references an r2v prompt may name: images and videos are numbered separately.
#[derive(Debug, Clone, Copy, Default)]
struct ReferenceCounts {
    images: usize,
    videos: usize,
}

fn check_media(model: Model, media: &[MediaItem]) -> Result<ReferenceCounts, Violation> {
    if model == Model::T2v && !media.is_empty() {
        return Err(violation(
            Rule::MediaForT2v,
            format!(
                "{} takes no metadata.input.media; use {} or {} for images and videos",
                model.id(),
                Model::I2v.id(),
                Model::R2v.id()
            ),
        ));
    }
    let allowed = MediaKind::allowed_for(model);
    let mut counts = [0usize; MediaKind::ALL.len()];
    for item in media {
        if !allowed.contains(&item.kind) {
            let names: Vec<_> = allowed.iter().map(|k| k.name()).collect();
            return Err(violation(
                Rule::MediaType,
                format!(
                    "metadata.input.media[{}].type `{}` is not accepted by {}; allowed: {}",
                    item.index,
                    item.kind.name(),
                    model.id(),
                    names.join(", ")
                ),
            ));
        }
        if item.has_voice
            && !(model == Model::R2v
                && matches!(
                    item.kind,
                    MediaKind::ReferenceImage | MediaKind::ReferenceVideo
                ))
        {
            return Err(violation(
                Rule::ReferenceVoice,
                format!(
                    "metadata.input.media[{}].reference_voice is only for reference_image and reference_video items of {}",
                    item.index,
                    Model::R2v.id()
                ),
            ));
        }
        counts[item.kind as usize] += 1;
    }
    let count = |k: MediaKind| counts[k as usize];
    let once: &[MediaKind] = match model {
        Model::I2v => allowed,
        Model::VideoEdit => &[MediaKind::Video],
        _ => &[MediaKind::FirstFrame],
    };
    if let Some(k) = once.iter().find(|k| count(**k) > 1) {
        return Err(violation(
            Rule::MediaDuplicate,
            format!(
                "metadata.input.media has {} `{}` items; at most one is allowed",
                count(*k),
                k.name()
            ),
        ));
    }
    let refs = ReferenceCounts {
        images: count(MediaKind::ReferenceImage),
        videos: count(MediaKind::ReferenceVideo),
    };
    match model {
        Model::T2v => {}
        Model::I2v => {
            let has = |k: MediaKind| count(k) == 1;
            let mode_ok = matches!(
                (
                    has(MediaKind::FirstFrame),
                    has(MediaKind::LastFrame),
                    has(MediaKind::DrivingAudio),
                    has(MediaKind::FirstClip),
                ),
                (true, false, _, false) | (true, true, false, false) | (false, false, false, true)
            );
            if !mode_ok {
                let got: Vec<_> = media.iter().map(|m| m.kind.name()).collect();
                return Err(violation(
                    Rule::I2vMediaMode,
                    format!(
                        "media [{}] is not an i2v mode; send first_frame (optionally with driving_audio), first_frame + last_frame, or first_clip",
                        got.join(", ")
                    ),
                ));
            }
        }
        Model::R2v => {
            let total = refs.images + refs.videos;
            if !(1..=5).contains(&total) {
                return Err(violation(
                    Rule::R2vReferenceCount,
                    format!(
                        "{} needs 1 to 5 reference_image/reference_video items in total; got {total}",
                        model.id()
                    ),
                ));
            }
        }
        Model::VideoEdit => {
            if count(MediaKind::Video) != 1 {
                return Err(violation(
                    Rule::EditMedia,
                    format!(
                        "{} needs exactly one `video` item (the video to edit)",
                        model.id()
                    ),
                ));
            }
            if refs.images > EDIT_MAX_IMAGES {
                return Err(violation(
                    Rule::EditMedia,
                    format!(
                        "{} takes at most {EDIT_MAX_IMAGES} reference_image items; got {}",
                        model.id(),
                        refs.images
                    ),
                ));
            }
        }
    }
    Ok(refs)
}

fn check_audio_setting(model: Model, value: Option<&Value>) -> Result<(), Violation> {
    let Some(value) = value else { return Ok(()) };
    if model != Model::VideoEdit {
        return Err(violation(
            Rule::AudioSetting,
            format!(
                "metadata.parameters.audio_setting is only for {}; remove it",
                Model::VideoEdit.id()
            ),
        ));
    }
    match value.as_str() {
        Some("auto" | "origin") => Ok(()),
        _ => Err(violation(
            Rule::AudioSetting,
            format!("metadata.parameters.audio_setting {value} must be \"auto\" or \"origin\""),
        )),
    }
}

/// Finds every `图n`, `视频n`, `Image n` and `Video n` in a prompt.
fn reference_mentions(prompt: &str) -> Vec<(bool, &str, u64)> {
    const MARKERS: [(&str, bool, bool); 4] = [
        ("图", true, false),
        ("视频", false, false),
        ("Image", true, true),
        ("Video", false, true),
    ];
    let mut found = Vec::new();
    for (marker, is_image, english) in MARKERS {
        for (at, _) in prompt.match_indices(marker) {
            let mut rest = &prompt[at + marker.len()..];
            if english {
                if english_word_continues(prompt, at) {
                    continue;
                }
                rest = rest.strip_prefix(' ').unwrap_or(rest);
            }
            let digits: &str = &rest[..rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len())];
            if let Ok(n) = digits.parse::<u64>() {
                found.push((is_image, &prompt[at..at + marker.len()], n));
            }
        }
    }
    found
}

fn english_word_continues(prompt: &str, at: usize) -> bool {
    prompt[..at]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric())
}

fn check_reference_indexes(prompt: &str, refs: ReferenceCounts) -> Result<(), Violation> {
    for (is_image, marker, n) in reference_mentions(prompt) {
        let (have, kind) = if is_image {
            (refs.images, "reference_image")
        } else {
            (refs.videos, "reference_video")
        };
        if n == 0 || n > have as u64 {
            return Err(violation(
                Rule::ReferenceIndex,
                format!(
                    "the prompt names {marker}{}{n} but media has {have} {kind} item(s); images and videos are numbered separately from 1, in list order",
                    if marker.is_ascii() { " " } else { "" }
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_chinese_and_english_mentions() {
        let found = reference_mentions("视频1抱着图3 and Image 2, Video2; VideoGame 9 图片1");
        assert!(found.contains(&(false, "视频", 1)));
        assert!(found.contains(&(true, "图", 3)));
        assert!(found.contains(&(true, "Image", 2)));
        assert!(found.contains(&(false, "Video", 2)));
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn http_urls_only() {
        assert!(is_http_url("https://example.com/a.png"));
        assert!(is_http_url("HTTP://example.com"));
        assert!(!is_http_url("ftp://example.com/a.png"));
        assert!(!is_http_url("https:///a.png"));
        assert!(!is_http_url("https://exa mple.com/a.png"));
        assert!(!is_http_url("/tmp/a.png"));
    }
}
