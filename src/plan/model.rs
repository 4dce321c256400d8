//! The Wan 2.7 models of the reference and the limits that differ between them.

/// What a model makes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    T2v,
    I2v,
    R2v,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub id: &'static str,
    pub alias: &'static str,
    pub kind: Kind,
}

pub const MODELS: [Model; 3] = [
    Model {
        id: "wan2.7-t2v-2026-04-25",
        alias: "t2v",
        kind: Kind::T2v,
    },
    Model {
        id: "wan2.7-i2v-2026-04-25",
        alias: "i2v",
        kind: Kind::I2v,
    },
    Model {
        id: "wan2.7-r2v",
        alias: "r2v",
        kind: Kind::R2v,
    },
];

pub const RESOLUTIONS: [&str; 2] = ["720P", "1080P"];
pub const RATIOS: [&str; 5] = ["16:9", "9:16", "1:1", "4:3", "3:4"];
pub const MAX_SEED: u64 = 2_147_483_647;
pub const MAX_PROMPT_CHARS: usize = 5000;
pub const MAX_NEGATIVE_PROMPT_CHARS: usize = 500;
pub const DURATION: (u32, u32) = (2, 15);
pub const R2V_DURATION_WITH_VIDEO: (u32, u32) = (2, 10);
pub const FIRST_CLIP_DURATION: (u32, u32) = (2, 10);
pub const REFERENCE_VIDEO_DURATION: (u32, u32) = (1, 30);
pub const MAX_R2V_REFERENCES: usize = 5;

pub const IMAGE_EXTENSIONS: [&str; 5] = ["jpeg", "jpg", "png", "bmp", "webp"];
pub const AUDIO_EXTENSIONS: [&str; 2] = ["wav", "mp3"];
pub const VIDEO_EXTENSIONS: [&str; 2] = ["mp4", "mov"];

/// The model for an alias or full id.
pub fn resolve(name: &str) -> Option<Model> {
    MODELS
        .iter()
        .find(|m| m.alias == name || m.id == name)
        .copied()
}

/// Every accepted model name, aliases first.
pub fn names() -> Vec<&'static str> {
    MODELS
        .iter()
        .map(|m| m.alias)
        .chain(MODELS.iter().map(|m| m.id))
        .collect()
}

/// What a media type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaClass {
    Image,
    Video,
    Audio,
}

pub const MEDIA_TYPES: [&str; 6] = [
    "first_frame",
    "last_frame",
    "driving_audio",
    "first_clip",
    "reference_image",
    "reference_video",
];

pub fn media_class(kind: &str) -> Option<MediaClass> {
    match kind {
        "first_frame" | "last_frame" | "reference_image" => Some(MediaClass::Image),
        "first_clip" | "reference_video" => Some(MediaClass::Video),
        "driving_audio" => Some(MediaClass::Audio),
        _ => None,
    }
}

pub fn extensions(class: MediaClass) -> &'static [&'static str] {
    match class {
        MediaClass::Image => &IMAGE_EXTENSIONS,
        MediaClass::Video => &VIDEO_EXTENSIONS,
        MediaClass::Audio => &AUDIO_EXTENSIONS,
    }
}

/// The duration limit a media type puts on the video that feeds it.
pub fn upstream_limit(kind: &str) -> Option<(u32, u32)> {
    match kind {
        "first_clip" => Some(FIRST_CLIP_DURATION),
        "reference_video" => Some(REFERENCE_VIDEO_DURATION),
        _ => None,
    }
}
