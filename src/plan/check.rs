//! The check stage: per-shot rules of the reference, judged on a rendered shot.

use super::diagnostic::{Annotate, Loc, Sink};
use super::instance::{Field, Instance, Target};
use super::model::{self, Kind, MediaClass};

/// Checks one expanded shot against the rules of its model.
pub fn check(inst: &Instance, sink: &mut Sink) {
    let mut c = Checker { inst, sink };
    c.common();
    match inst.model.kind {
        Kind::T2v => c.t2v(),
        Kind::I2v => c.i2v(),
        Kind::R2v => c.r2v(),
    }
    c.media_urls();
    c.warnings();
}

struct Checker<'a, 'b> {
    inst: &'a Instance,
    sink: &'b mut Sink,
}

impl Checker<'_, '_> {
    fn error(&mut self, loc: Option<Loc>, message: String) -> &mut super::Diagnostic {
        let loc = loc.or(self.inst.id_loc);
        self.sink
            .error(loc, message)
            .shot(Some(&self.inst.id))
            .data(self.inst.data.as_ref())
    }

    fn warning(&mut self, loc: Option<Loc>, message: String) -> &mut super::Diagnostic {
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
        let (lo, hi) = self.duration_range();
        let d = inst.duration.value;
        if d < lo || d > hi {
            let why = if hi == model::R2V_DURATION_WITH_VIDEO.1 && inst.model.kind == Kind::R2v {
                " with a reference video"
            } else {
                ""
            };
            self.error(
                inst.duration.loc,
                format!(
                    "duration: {d} s is outside {lo}-{hi} s for {}{why}",
                    inst.model.alias
                ),
            );
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
        let mut seen: Vec<&str> = Vec::new();
        for m in &inst.media {
            if model::media_class(&m.kind).is_none() {
                let help = match crate::manifest::closest_key(&m.kind, &model::MEDIA_TYPES) {
                    Some(s) => format!(
                        "did you mean `{s}`? types: {}",
                        model::MEDIA_TYPES.join(", ")
                    ),
                    None => format!("types: {}", model::MEDIA_TYPES.join(", ")),
                };
                self.error(m.kind_loc, format!("media: unknown type `{}`", m.kind))
                    .help(help);
            }
            if inst.model.kind == Kind::I2v && seen.contains(&m.kind.as_str()) {
                self.error(
                    m.kind_loc,
                    format!("media: `{}` may appear only once", m.kind),
                );
            }
            seen.push(&m.kind);
            if let Target::Shot(_) = m.target
                && model::media_class(&m.kind) != Some(MediaClass::Video)
                && model::media_class(&m.kind).is_some()
            {
                self.error(
                    m.target_loc,
                    format!(
                        "media `{}`: a shot makes a video, but `{}` needs {}",
                        m.kind,
                        m.kind,
                        if model::media_class(&m.kind) == Some(MediaClass::Image) {
                            "an image"
                        } else {
                            "audio"
                        }
                    ),
                )
                .help("only `first_clip` (i2v) and `reference_video` (r2v) can take `shot:`");
            }
            if m.voice.is_some() && inst.model.kind != Kind::R2v {
                self.error(
                    m.voice.as_ref().and_then(|v| v.1),
                    "reference_voice is for r2v references only".into(),
                );
            } else if let Some((_, loc)) = &m.voice
                && !m.kind.starts_with("reference_")
            {
                self.error(
                    *loc,
                    format!(
                        "reference_voice goes on reference_image or reference_video, not `{}`",
                        m.kind
                    ),
                );
            }
        }
        if inst.audio_url.is_some() && inst.model.kind != Kind::T2v {
            let a = inst.audio_url.as_ref().and_then(|a| a.loc);
            let help = if inst.model.kind == Kind::I2v {
                "for i2v, use a `driving_audio` media item with a first_frame"
            } else {
                "audio_url is a t2v field"
            };
            self.error(
                a,
                format!("audio_url is for t2v only, not {}", inst.model.alias),
            )
            .help(help);
        }
    }

    fn duration_range(&self) -> (u32, u32) {
        let has_video_ref = self.inst.media.iter().any(|m| m.kind == "reference_video");
        if self.inst.model.kind == Kind::R2v && has_video_ref {
            model::R2V_DURATION_WITH_VIDEO
        } else {
            model::DURATION
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

    fn t2v(&mut self) {
        if let Some(r) = &self.inst.ratio {
            self.ratio_check(r);
        }
        if !self.inst.media.is_empty() {
            self.error(self.inst.media_loc, "media: t2v takes no media".into())
                .help("use `model: i2v` (first frame, continuation) or `r2v` (references)");
        }
    }

    fn i2v(&mut self) {
        if let Some(r) = &self.inst.ratio
            && !r.from_defaults
        {
            self.warning(
                r.loc,
                "ratio has no effect on i2v (its aspect follows the assets); it is not sent".into(),
            );
        }
        let mut kinds: Vec<&str> = self.inst.media.iter().map(|m| m.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let valid = matches!(
            kinds.as_slice(),
            ["first_frame"]
                | ["driving_audio", "first_frame"]
                | ["first_frame", "last_frame"]
                | ["first_clip"]
        );
        let bad_type = self
            .inst
            .media
            .iter()
            .find(|m| matches!(m.kind.as_str(), "reference_image" | "reference_video"));
        if let Some(m) = bad_type {
            self.error(
                m.kind_loc,
                format!("media: `{}` is an r2v type, not i2v", m.kind),
            );
        } else if !valid && kinds.iter().all(|k| model::media_class(k).is_some()) {
            let what = if kinds.is_empty() {
                "i2v needs media".to_owned()
            } else {
                format!("media: {} is not an i2v mode", kinds.join(" + "))
            };
            self.error(self.inst.media_loc, what).help(
                "i2v modes: first_frame (optionally + driving_audio), first_frame + last_frame, or first_clip",
            );
        }
    }

    fn r2v(&mut self) {
        if let Some(r) = &self.inst.ratio {
            self.ratio_check(r);
        }
        let refs = self
            .inst
            .media
            .iter()
            .filter(|m| m.kind.starts_with("reference_"))
            .count();
        let firsts = self
            .inst
            .media
            .iter()
            .filter(|m| m.kind == "first_frame")
            .count();
        for m in &self.inst.media {
            if matches!(
                m.kind.as_str(),
                "last_frame" | "driving_audio" | "first_clip"
            ) {
                self.error(
                    m.kind_loc,
                    format!("media: `{}` is an i2v type, not r2v", m.kind),
                )
                .help("r2v takes reference_image, reference_video and at most one first_frame");
            }
        }
        if refs == 0 {
            self.error(
                self.inst.media_loc,
                "r2v needs 1 to 5 reference_image / reference_video items".into(),
            );
        } else if refs > model::MAX_R2V_REFERENCES {
            self.error(
                self.inst.media_loc,
                format!(
                    "media: {refs} references, more than the {} r2v accepts",
                    model::MAX_R2V_REFERENCES
                ),
            );
        }
        if firsts > 1 {
            self.error(
                self.inst.media_loc,
                "media: r2v takes at most one first_frame".into(),
            );
        }
        if firsts > 0
            && let Some(r) = &self.inst.ratio
            && !r.from_defaults
        {
            self.warning(
                r.loc,
                "ratio has no effect on r2v with a first_frame (the frame sets the aspect)".into(),
            );
        }
        let images = self
            .inst
            .media
            .iter()
            .filter(|m| m.kind == "reference_image")
            .count();
        let videos = self
            .inst
            .media
            .iter()
            .filter(|m| m.kind == "reference_video")
            .count();
        for (label, n) in reference_mentions(&self.inst.prompt.value) {
            let (have, what) = if label == "image" {
                (images, "reference_image")
            } else {
                (videos, "reference_video")
            };
            if n == 0 || n > have {
                self.error(
                    self.inst.prompt.loc,
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

    fn media_urls(&mut self) {
        let inst = self.inst;
        if let Some(a) = &inst.audio_url {
            self.url_check("audio_url", &a.value, MediaClass::Audio, a.loc);
        }
        for m in &inst.media {
            if let (Target::Url(u), Some(class)) = (&m.target, model::media_class(&m.kind)) {
                self.url_check(&format!("media `{}`", m.kind), u, class, m.target_loc);
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
        let allowed = model::extensions(class);
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
        if inst.prompt_extend.value
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
        for end in timestamp_ends(&inst.prompt.value) {
            if end > f64::from(inst.duration.value) {
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
