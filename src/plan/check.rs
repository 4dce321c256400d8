//! The check stage: per-shot rules of the reference, judged on a rendered shot.

use super::diagnostic::{Annotate, Loc, Sink};
use super::instance::{Field, Instance, Media, Target};
use super::model::{self, AudioUrl, MODELS, MediaClass, MediaKind, MediaRule, RatioPolicy};

/// Checks one expanded shot against the rules of its model.
pub fn check(inst: &Instance, sink: &mut Sink) {
    let mut c = Checker { inst, sink };
    c.common();
    c.audio_setting();
    c.model_rules();
    c.media_urls();
    c.warnings();
}

struct Checker<'a, 'b> {
    inst: &'a Instance,
    sink: &'b mut Sink,
}

impl Checker<'_, '_> {
    fn error(&mut self, loc: Option<Loc>, message: String) -> &mut super::diagnostic::Diagnostic {
        let loc = loc.or(self.inst.id_loc);
        self.sink.erred(&self.inst.id);
        self.sink
            .error(loc, message)
            .shot(Some(&self.inst.id))
            .data(self.inst.data.as_ref())
    }

    fn warning(&mut self, loc: Option<Loc>, message: String) -> &mut super::diagnostic::Diagnostic {
        let loc = loc.or(self.inst.id_loc);
        self.sink
            .warning(loc, message)
            .shot(Some(&self.inst.id))
            .data(self.inst.data.as_ref())
    }

    fn common(&mut self) {
        let inst = self.inst;
        let id = &inst.id;
        let valid_id = !id.is_empty()
            && id.len() <= 128
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid_id {
            self.error(
                inst.id_loc,
                format!("id `{id}` must match [A-Za-z0-9._-]{{1,128}}"),
            )
            .help("replace spaces and other characters, e.g. with `| replace(' ', '-')`");
        }
        let prompt_len = inst.prompt.value.chars().count();
        if inst.prompt.value.trim().is_empty() {
            self.error(inst.prompt.loc, "prompt: renders to empty text".into());
        } else if prompt_len > model::MAX_PROMPT_CHARS {
            self.error(
                inst.prompt.loc,
                format!(
                    "prompt: {prompt_len} characters, more than the {} the provider accepts",
                    model::MAX_PROMPT_CHARS
                ),
            );
        }
        if let Some(n) = &inst.negative_prompt {
            let len = n.value.chars().count();
            if len > model::MAX_NEGATIVE_PROMPT_CHARS {
                self.error(
                    n.loc,
                    format!(
                        "negative_prompt: {len} characters, more than the {} allowed",
                        model::MAX_NEGATIVE_PROMPT_CHARS
                    ),
                );
            }
        }
        let res = &inst.resolution.value;
        if !model::RESOLUTIONS.contains(&res.as_str()) {
            let upper = res.to_ascii_uppercase();
            let help = if model::RESOLUTIONS.contains(&upper.as_str()) {
                format!("write `{upper}` (upper-case P)")
            } else {
                "use 720P or 1080P".into()
            };
            self.error(
                inst.resolution.loc,
                format!("resolution: `{res}` is not 720P or 1080P"),
            )
            .help(help);
        }
        let ((lo, hi), why) = self.duration_range();
        let d = inst.duration.value;
        let keeps_length = d == 0 && inst.model.keeps_length;
        if (d < lo || d > hi) && !keeps_length {
            let d = self.error(
                inst.duration.loc,
                format!(
                    "duration: {d} s is outside {lo}-{hi} s for {}{why}",
                    inst.model.alias
                ),
            );
            if inst.model.keeps_length {
                d.help("or 0 to keep the input video's length");
            }
        }
        let file_bytes = inst.file.value.len();
        if file_bytes > MAX_NAME_BYTES {
            self.error(
                inst.file.loc,
                format!(
                    "output: the file name is {file_bytes} bytes long, more than the {} a file name may have",
                    MAX_NAME_BYTES
                ),
            )
            .help("shorten the output template, e.g. `{{ id }}.mp4`");
        } else if let Some(c) = inst.file.value.chars().find(|&c| is_invisible(c)) {
            self.error(
                inst.file.loc,
                format!(
                    "output: file name `{}` holds the invisible or direction-changing character \
                     U+{:04X}: it could show as another name",
                    shown(&inst.file.value),
                    u32::from(c)
                ),
            )
            .help("remove it from the output template or the data it takes");
        } else if !is_safe_component(&inst.file.value) {
            self.error(
                inst.file.loc,
                format!(
                    "output: file name `{}` is not a single safe file name",
                    inst.file.value
                ),
            )
            .help("no `/`, `\\`, `..` or empty names: the file goes inside the videos folder");
        }
        let spec = inst.model;
        let mut seen: Vec<&str> = Vec::new();
        for m in &inst.media {
            if m.kind.is_none() {
                let names = MediaKind::ALL.map(MediaKind::name);
                let help = match crate::manifest::closest_key(&m.type_name, &names) {
                    Some(s) => format!("did you mean `{s}`? types: {}", names.join(", ")),
                    None => format!("types: {}", names.join(", ")),
                };
                self.error(m.kind_loc, format!("media: unknown type `{}`", m.type_name))
                    .help(help);
            }
            if matches!(spec.media, MediaRule::Modes { .. }) && seen.contains(&m.type_name.as_str())
            {
                self.error(
                    m.kind_loc,
                    format!("media: `{}` may appear only once", m.type_name),
                );
            }
            seen.push(&m.type_name);
            if let (Target::Shot(_), Some(kind)) = (&m.target, m.kind)
                && kind.class() != MediaClass::Video
            {
                let takers = MODELS.iter().flat_map(|model| {
                    MediaKind::ALL
                        .into_iter()
                        .filter(|k| k.class() == MediaClass::Video && model.takes(*k))
                        .map(|k| format!("`{}` ({})", k.name(), model.alias))
                });
                self.error(
                    m.target_loc,
                    format!(
                        "media `{name}`: a shot makes a video, but `{name}` needs {}",
                        if kind.class() == MediaClass::Image {
                            "an image"
                        } else {
                            "audio"
                        },
                        name = m.type_name,
                    ),
                )
                .help(format!("only {} can take `shot:`", listing(takers)));
            }
            if m.voice.is_some() && !spec.reference_voice {
                let takers = MODELS.iter().filter(|m| m.reference_voice).map(|m| m.alias);
                self.error(
                    m.voice.as_ref().and_then(|v| v.1),
                    format!("reference_voice is for {} references only", listing(takers)),
                );
            } else if let Some((_, loc)) = &m.voice
                && !m.kind.is_some_and(MediaKind::is_reference)
            {
                self.error(
                    *loc,
                    format!(
                        "reference_voice goes on reference_image or reference_video, not `{}`",
                        m.type_name
                    ),
                );
            }
        }
        if let (Some(a), AudioUrl::Refused { help }) = (&inst.audio_url, &spec.audio_url) {
            let takers = MODELS
                .iter()
                .filter(|m| m.audio_url == AudioUrl::Accepted)
                .map(|m| m.alias);
            self.error(
                a.loc,
                format!(
                    "audio_url is for {} only, not {}",
                    listing(takers),
                    spec.alias
                ),
            )
            .help(*help);
        }
    }

    fn audio_setting(&mut self) {
        let Some(a) = &self.inst.audio_setting else {
            return;
        };
        let spec = self.inst.model;
        if !spec.audio_setting {
            if a.from_defaults {
                // Shared defaults may serve several models: only edit shots send it.
                return;
            }
            let takers = MODELS.iter().filter(|m| m.audio_setting).map(|m| m.alias);
            self.error(
                a.loc,
                format!(
                    "audio_setting is for {} only, not {}",
                    listing(takers),
                    spec.alias
                ),
            )
            .help("remove it: other models make their sound from the prompt (or driving_audio)");
        } else if !AUDIO_SETTINGS.contains(&a.value.as_str()) {
            self.error(
                a.loc,
                format!("audio_setting: `{}` is not `auto` or `origin`", a.value),
            )
            .help("`origin` keeps the input video's sound; `auto` (the default) may regenerate it");
        }
    }

    /// The duration range of the shot's model, given its media.
    fn duration_range(&self) -> ((u32, u32), &'static str) {
        let has_video_ref = self
            .inst
            .media
            .iter()
            .any(|m| m.kind == Some(MediaKind::ReferenceVideo));
        match self.inst.model.duration_with_reference_video {
            Some(range) if has_video_ref => (range, " with a reference video"),
            _ => (self.inst.model.duration, ""),
        }
    }

    fn ratio_check(&mut self, ratio: &Field<String>) {
        if !model::RATIOS.contains(&ratio.value.as_str()) {
            self.error(
                ratio.loc,
                format!(
                    "ratio: `{}` is not one of {}",
                    ratio.value,
                    model::RATIOS.join(", ")
                ),
            )
            .help("quote it in YAML, e.g. ratio: \"16:9\"");
        }
    }

    /// The rules the model's row adds: ratio, then media.
    fn model_rules(&mut self) {
        let spec = self.inst.model;
        if let Some(r) = &self.inst.ratio {
            match spec.ratio {
                RatioPolicy::Sent | RatioPolicy::Optional => self.ratio_check(r),
                RatioPolicy::NotSent if !r.from_defaults => {
                    self.warning(
                        r.loc,
                        format!(
                            "ratio has no effect on {} (its aspect follows the assets); it is not sent",
                            spec.alias
                        ),
                    );
                }
                RatioPolicy::NotSent => {}
            }
        }
        match spec.media {
            MediaRule::None { help } => {
                if !self.inst.media.is_empty() {
                    self.error(
                        self.inst.media_loc,
                        format!("media: {} takes no media", spec.alias),
                    )
                    .help(help);
                }
            }
            MediaRule::Modes { modes, help } => self.modes(modes, help),
            MediaRule::References { min, max, help } => self.references(min, max, help),
            MediaRule::VideoPlusImages {
                max_images,
                warn_above,
                help,
            } => self.video_plus_images(max_images, warn_above, help),
        }
    }

    /// `media: `x` is an r2v type, not i2v`: names the model that does take it.
    fn not_this_model(&mut self, m: &Media, kind: MediaKind) -> &mut super::diagnostic::Diagnostic {
        let spec = self.inst.model;
        let owner = MODELS
            .iter()
            .find(|o| o.id != spec.id && o.takes(kind))
            .map_or("another model's", |o| o.alias);
        self.error(
            m.kind_loc,
            format!(
                "media: `{}` is an {owner} type, not {}",
                m.type_name, spec.alias
            ),
        )
    }

    fn modes(&mut self, modes: &[&[MediaKind]], help: &str) {
        let inst = self.inst;
        let alias = inst.model.alias;
        let known: Option<Vec<MediaKind>> = inst.media.iter().map(|m| m.kind).collect();
        let foreign = inst
            .media
            .iter()
            .find_map(|m| m.kind.filter(|k| !inst.model.takes(*k)).map(|k| (m, k)));
        if let Some((m, kind)) = foreign {
            self.not_this_model(m, kind);
        } else if let Some(mut kinds) = known {
            kinds.sort_unstable();
            kinds.dedup();
            if !modes.contains(&kinds.as_slice()) {
                let what = if kinds.is_empty() {
                    format!("{alias} needs media")
                } else {
                    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                    format!("media: {} is not an {alias} mode", names.join(" + "))
                };
                self.error(inst.media_loc, what).help(help);
            }
        }
    }

    fn references(&mut self, min: usize, max: usize, help: &str) {
        let inst = self.inst;
        let alias = inst.model.alias;
        let count = |kind: MediaKind| inst.media.iter().filter(|m| m.kind == Some(kind)).count();
        let (images, videos) = (
            count(MediaKind::ReferenceImage),
            count(MediaKind::ReferenceVideo),
        );
        let refs = images + videos;
        let firsts = count(MediaKind::FirstFrame);
        for m in &inst.media {
            if let Some(kind) = m.kind
                && !inst.model.takes(kind)
            {
                self.not_this_model(m, kind).help(help);
            }
        }
        if refs < min {
            self.error(
                inst.media_loc,
                format!("{alias} needs {min} to {max} reference_image / reference_video items"),
            );
        } else if refs > max {
            self.error(
                inst.media_loc,
                format!("media: {refs} references, more than the {max} {alias} accepts"),
            );
        }
        if firsts > 1 {
            self.error(
                inst.media_loc,
                format!("media: {alias} takes at most one first_frame"),
            );
        }
        if firsts > 0
            && let Some(r) = &inst.ratio
            && !r.from_defaults
        {
            self.warning(
                r.loc,
                format!(
                    "ratio has no effect on {alias} with a first_frame (the frame sets the aspect)"
                ),
            );
        }
        for (label, n) in reference_mentions(&inst.prompt.value) {
            let (have, what) = if label == "image" {
                (images, "reference_image")
            } else {
                (videos, "reference_video")
            };
            if n == 0 || n > have {
                self.error(
                    inst.prompt.loc,
                    format!(
                        "prompt names {} {n}, but the shot has {have} {what} item(s)",
                        if label == "image" {
                            "图/Image"
                        } else {
                            "视频/Video"
                        }
                    ),
                )
                .help("references are numbered from 1 in list order, images and videos separately");
            }
        }
    }

    fn video_plus_images(&mut self, max_images: usize, warn_above: usize, help: &str) {
        let inst = self.inst;
        let alias = inst.model.alias;
        for m in &inst.media {
            if let Some(kind) = m.kind
                && !inst.model.takes(kind)
            {
                self.not_this_model(m, kind).help(help);
            }
        }
        let count = |kind: MediaKind| inst.media.iter().filter(|m| m.kind == Some(kind)).count();
        let (videos, images) = (count(MediaKind::Video), count(MediaKind::ReferenceImage));
        if videos != 1 {
            self.error(
                inst.media_loc,
                format!("media: {alias} takes exactly one `video`, not {videos}"),
            )
            .help(help);
        }
        if images > max_images {
            self.error(
                inst.media_loc,
                format!("media: {images} reference_image items, more than the {max_images} {alias} accepts"),
            );
        } else if images > warn_above {
            self.warning(
                inst.media_loc,
                format!("media: {images} reference_image items; some sources give {warn_above} as {alias}'s limit"),
            )
            .help(format!("keep to {warn_above} if the provider refuses the shot"));
        }
        for (label, n) in reference_mentions(&inst.prompt.value) {
            let (have, what) = if label == "image" {
                (images, "reference_image")
            } else {
                (videos, "video")
            };
            if n == 0 || n > have {
                self.error(
                    inst.prompt.loc,
                    format!(
                        "prompt names {} {n}, but the shot has {have} {what} item(s)",
                        if label == "image" { "图/Image" } else { "视频/Video" }
                    ),
                )
                .help("图1/Image 1 … are the reference images in list order; 视频1/Video 1 is the input video");
            }
        }
    }

    fn media_urls(&mut self) {
        let inst = self.inst;
        if let Some(a) = &inst.audio_url {
            self.url_check("audio_url", &a.value, MediaClass::Audio, a.loc);
        }
        for m in &inst.media {
            if let (Target::Url(u), Some(kind)) = (&m.target, m.kind) {
                let what = format!("media `{}`", m.type_name);
                self.url_check(&what, u, kind.class(), m.target_loc);
            }
            if let Some((v, loc)) = &m.voice {
                self.url_check("reference_voice", v, MediaClass::Audio, *loc);
            }
        }
    }

    fn url_check(&mut self, what: &str, url: &str, class: MediaClass, loc: Option<Loc>) {
        let lower = url.to_ascii_lowercase();
        let Some(rest) = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
        else {
            self.error(loc, format!("{what}: `{url}` is not an http(s) URL"))
                .help("the provider fetches media itself: give a public http:// or https:// URL");
            return;
        };
        let path = rest.split(['?', '#']).next().unwrap_or_default();
        let host_len = path.find('/').unwrap_or(path.len());
        if host_len == 0 {
            self.error(loc, format!("{what}: `{url}` has no host"));
            return;
        }
        let last = path[host_len..].rsplit('/').next().unwrap_or_default();
        let allowed = class.extensions();
        match last.rsplit_once('.') {
            Some((_, ext)) if allowed.contains(&ext) => {}
            Some((_, ext)) if !ext.is_empty() && ext.len() <= 5 => {
                self.error(
                    loc,
                    format!("{what}: `.{ext}` is not a supported format here"),
                )
                .help(format!("accepted: {}", allowed.join(", ")));
            }
            _ => {
                self.warning(
                    loc,
                    format!("{what}: the URL has no file extension; the provider may reject it"),
                )
                .help(format!("expected one of: {}", allowed.join(", ")));
            }
        }
    }

    fn warnings(&mut self) {
        let inst = self.inst;
        // A batch seed with the default `prompt_extend` is what the identical-bodies warning
        // advises (and it names `prompt_extend` too): warned only when the shot sets a seed of
        // its own or `prompt_extend` is written out.
        let written = inst.seed_explicit || inst.prompt_extend.loc.is_some();
        if inst.prompt_extend.value
            && written
            && let Some(seed) = &inst.seed
        {
            let loc = if inst.seed_explicit {
                seed.loc
            } else {
                inst.prompt_extend.loc.or(seed.loc)
            };
            self.warning(loc, "prompt_extend is on with a seed: the provider rewrites the prompt, so the result is not exactly reproducible".into())
                .help("set `prompt_extend: false` for reproducible seeded shots");
        }
        // Duration 0 keeps the input's length, which is not known here.
        let duration = inst.duration.value;
        for end in timestamp_ends(&inst.prompt.value)
            .into_iter()
            .take_while(|_| duration > 0)
        {
            if end > f64::from(duration) {
                self.warning(
                    inst.prompt.loc,
                    format!(
                        "prompt has a shot ending at {end}s, past the duration of {} s",
                        inst.duration.value
                    ),
                );
                break;
            }
        }
    }
}

/// The values `audio_setting` takes.
const AUDIO_SETTINGS: [&str; 2] = ["auto", "origin"];

/// The longest file or folder name most file systems take (Linux, macOS, Windows), in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// A file or folder name that stays inside its parent and that the file system takes: no
/// separators, no `.`/`..`, not empty, at most [`MAX_NAME_BYTES`].
pub fn is_safe_component(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control)
}

/// A character that shows nothing, or changes the direction of what follows (bidi overrides,
/// isolates and marks, zero-width characters): a name holding one can look like another.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `name` with its invisible characters spelled `<U+XXXX>`, safe to print.
pub fn shown(name: &str) -> String {
    name.chars()
        .map(|c| {
            if is_invisible(c) || c.is_control() {
                format!("<U+{:04X}>", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// What two names that collide on a case-insensitive file system (macOS, Windows) or differ
/// only by Unicode normalisation (NFC / NFD) have in common: NFC, then lower case.
pub fn folded(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().collect::<String>().to_lowercase()
}

/// `a`, `a and b`, `a, b and c`: the models or types a rule names, from the table.
fn listing(items: impl Iterator<Item = impl std::fmt::Display>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => items.concat(),
    }
}

/// `图2`, `视频1`, `Image 3`, `Video 2` mentions: ("image" | "video", number).
pub fn reference_mentions(prompt: &str) -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    for (marker, label, space) in [
        ("图", "image", false),
        ("视频", "video", false),
        ("Image", "image", true),
        ("Video", "video", true),
    ] {
        let mut rest = prompt;
        while let Some(i) = rest.find(marker) {
            let after = &rest[i + marker.len()..];
            let digits_from = if space {
                after.strip_prefix(' ').unwrap_or("")
            } else {
                after
            };
            let digits: String = digits_from
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if !digits.is_empty() {
                out.push((label, digits.parse().unwrap_or(usize::MAX)));
            }
            rest = after;
        }
    }
    out
}

/// The end times of `[a-bs]` shot timestamps in a prompt.
pub fn timestamp_ends(prompt: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut rest = prompt;
    while let Some(i) = rest.find('[') {
        rest = &rest[i + 1..];
        let Some(close) = rest.find(']') else { break };
        let inner = rest[..close].trim().trim_end_matches('s').trim();
        if let Some((a, b)) = inner.split_once('-') {
            let b = b.trim().trim_end_matches('s').trim();
            if let (Ok(_), Ok(end)) = (
                a.trim().trim_end_matches('s').parse::<f64>(),
                b.parse::<f64>(),
            ) {
                out.push(end);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_reference_mentions() {
        let m = reference_mentions("视频1抱着图3, Image 2 and Video 10, 图");
        assert_eq!(
            m,
            vec![("image", 3), ("video", 1), ("image", 2), ("video", 10)]
        );
    }

    #[test]
    fn finds_timestamps() {
        assert_eq!(
            timestamp_ends("Shot 1 [0-3s] a. Shot 2 [3-6s] b [note]"),
            vec![3.0, 6.0]
        );
        assert_eq!(timestamp_ends("[1.5s-7.5s]"), vec![7.5]);
    }
}
