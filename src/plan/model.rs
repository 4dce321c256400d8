//! The models of the reference, one [`ModelSpec`] row each, and the limits they share.
//!
//! A row carries everything the program knows of a model: its names (the gateway's id and
//! DashScope's native one), what the provider accepts for it, how it is billed and its list
//! prices. `check`, `body`, the native encoder, the task-list search and the price book read
//! a shot's row rather than matching on model names, so adding a model is adding a row (plus
//! its simulator rule, fixtures and docs). The simulator keeps
//! its own rules on purpose: it plays the provider, and must not agree with the planner by
//! construction.

/// One model: its names and what the provider accepts for it.
#[derive(Debug, PartialEq, Eq)]
pub struct ModelSpec {
    pub alias: &'static str,
    /// The full id sent as `model` (the gateway's; the planner's name for the model).
    pub id: &'static str,
    /// The id DashScope's native API knows it by; `None`: not on the native API.
    pub native_id: Option<&'static str>,
    /// The media the model takes, and in which combinations.
    pub media: MediaRule,
    /// Shortest and longest duration in seconds.
    pub duration: (u32, u32),
    /// The duration sent when a shot sets none; for videoedit 0, which [`Self::keeps_length`].
    pub default_duration: u32,
    /// `duration: 0` is accepted and keeps the input video's length (videoedit).
    pub keeps_length: bool,
    /// The duration range instead of `duration` when a `reference_video` is given.
    pub duration_with_reference_video: Option<(u32, u32)>,
    pub ratio: RatioPolicy,
    pub audio_url: AudioUrl,
    /// Whether reference media may carry a `reference_voice`.
    pub reference_voice: bool,
    /// Whether the model takes `audio_setting` (`auto` or `origin`).
    pub audio_setting: bool,
    /// Whether a native task's `usage` reports the `ratio` it was made at (the task-list
    /// search compares it only then).
    pub usage_shows_ratio: bool,
    /// What the provider counts to bill a task.
    pub billing: Billing,
    /// Price per second by resolution, in micro-units of `cost::LIST_CURRENCY` as of
    /// `cost::LIST_DATE`.
    pub list_prices: &'static [(&'static str, u64)],
}

/// What the provider counts to bill a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// Seconds of video made.
    OutputSeconds,
    /// Seconds of the input video plus seconds made (`wan2.7-videoedit`): a `shot:` input
    /// lasts its upstream's seconds; a URL's length is unknown, so its estimate is an upper
    /// bound (the longest input, 10 s).
    InputPlusOutputSeconds,
}

/// The international list price of the Wan 2.7 models: a dime a second at 720P, fifteen cents
/// at 1080P.
const WAN27_PRICES: &[(&str, u64)] = &[("720P", 100_000), ("1080P", 150_000)];

/// The media a model takes.
#[derive(Debug, PartialEq, Eq)]
pub enum MediaRule {
    /// No media at all; `help` says which model to use instead.
    None { help: &'static str },
    /// Exactly one of these sets of types, each type at most once.
    Modes {
        modes: &'static [&'static [MediaKind]],
        help: &'static str,
    },
    /// Between `min` and `max` reference items (images and videos), plus at most one
    /// `first_frame`; the prompt numbers them (`图1`, `Video 2`).
    References {
        min: usize,
        max: usize,
        help: &'static str,
    },
    /// Exactly one `video` to restyle and up to `max_images` `reference_image`s; more than
    /// `warn_above` is a warning (sources disagree on the limit).
    VideoPlusImages {
        max_images: usize,
        warn_above: usize,
        help: &'static str,
    },
}

/// Whether the model sends `ratio`.
#[derive(Debug, PartialEq, Eq)]
pub enum RatioPolicy {
    /// Checked and sent, [`DEFAULT_RATIO`] when the shot sets none; a `first_frame` sets
    /// the aspect instead, so a ratio written beside one is a warning.
    Sent,
    /// Never sent (the assets set the aspect): one written on the shot is a warning.
    NotSent,
    /// Checked and sent only when the shot sets one (else the provider follows the input).
    Optional,
}

/// Whether the model takes the top-level `audio_url`.
#[derive(Debug, PartialEq, Eq)]
pub enum AudioUrl {
    Accepted,
    Refused { help: &'static str },
}

use MediaKind::*;

pub const MODELS: [ModelSpec; 4] = [
    ModelSpec {
        alias: "t2v",
        id: "wan2.7-t2v-2026-04-25",
        native_id: Some("wan2.7-t2v"),
        media: MediaRule::None {
            help: "use `model: i2v` (first frame, continuation) or `r2v` (references)",
        },
        duration: DURATION,
        default_duration: DEFAULT_DURATION,
        keeps_length: false,
        duration_with_reference_video: None,
        ratio: RatioPolicy::Sent,
        audio_url: AudioUrl::Accepted,
        reference_voice: false,
        audio_setting: false,
        usage_shows_ratio: false,
        billing: Billing::OutputSeconds,
        list_prices: WAN27_PRICES,
    },
    ModelSpec {
        alias: "i2v",
        id: "wan2.7-i2v-2026-04-25",
        native_id: Some("wan2.7-i2v"),
        media: MediaRule::Modes {
            modes: &[
                &[FirstFrame],
                &[DrivingAudio, FirstFrame],
                &[FirstFrame, LastFrame],
                &[FirstClip],
            ],
            help: "i2v modes: first_frame (optionally + driving_audio), first_frame + last_frame, or first_clip",
        },
        duration: DURATION,
        default_duration: DEFAULT_DURATION,
        keeps_length: false,
        duration_with_reference_video: None,
        ratio: RatioPolicy::NotSent,
        audio_url: AudioUrl::Refused {
            help: "for i2v, use a `driving_audio` media item with a first_frame",
        },
        reference_voice: false,
        audio_setting: false,
        usage_shows_ratio: false,
        billing: Billing::OutputSeconds,
        list_prices: WAN27_PRICES,
    },
    ModelSpec {
        alias: "r2v",
        id: "wan2.7-r2v",
        native_id: Some("wan2.7-r2v"),
        media: MediaRule::References {
            min: 1,
            max: 5,
            help: "r2v takes reference_image, reference_video and at most one first_frame",
        },
        duration: DURATION,
        default_duration: DEFAULT_DURATION,
        keeps_length: false,
        duration_with_reference_video: Some((2, 10)),
        ratio: RatioPolicy::Sent,
        audio_url: AudioUrl::Refused {
            help: "audio_url is a t2v field",
        },
        reference_voice: true,
        audio_setting: false,
        usage_shows_ratio: true,
        billing: Billing::OutputSeconds,
        list_prices: WAN27_PRICES,
    },
    ModelSpec {
        alias: "edit",
        // Not on the gateway's page: sent there under its native id.
        id: "wan2.7-videoedit",
        native_id: Some("wan2.7-videoedit"),
        media: MediaRule::VideoPlusImages {
            max_images: 4,
            warn_above: 3,
            help: "edit takes one `video` (a URL or `shot:`) and up to 4 reference_image",
        },
        duration: VIDEO_INPUT_DURATION,
        default_duration: 0,
        keeps_length: true,
        duration_with_reference_video: None,
        ratio: RatioPolicy::Optional,
        audio_url: AudioUrl::Refused {
            help: "edit keeps or regenerates the input's sound: set `audio_setting: origin` or `auto`",
        },
        reference_voice: false,
        audio_setting: true,
        usage_shows_ratio: false,
        billing: Billing::InputPlusOutputSeconds,
        list_prices: WAN27_PRICES,
    },
];

impl ModelSpec {
    /// Whether the model takes media of this type at all.
    pub fn takes(&self, kind: MediaKind) -> bool {
        match self.media {
            MediaRule::None { .. } => false,
            MediaRule::Modes { modes, .. } => modes.iter().any(|m| m.contains(&kind)),
            MediaRule::References { .. } => kind.is_reference() || kind == FirstFrame,
            MediaRule::VideoPlusImages { .. } => matches!(kind, Video | ReferenceImage),
        }
    }
}

/// The model for an alias or full id.
pub fn resolve(name: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|m| m.alias == name || m.id == name)
}

/// The model for a full id.
pub fn by_id(id: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|m| m.id == id)
}

/// The model DashScope's native API knows by `id`, or whose planner id is `id`.
pub fn by_native_or_id(id: &str) -> Option<&'static ModelSpec> {
    MODELS
        .iter()
        .find(|m| m.id == id || m.native_id == Some(id))
}

/// Every accepted model name, aliases first.
pub fn names() -> Vec<&'static str> {
    MODELS
        .iter()
        .map(|m| m.alias)
        .chain(MODELS.iter().map(|m| m.id))
        .collect()
}

/// A media item's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MediaKind {
    DrivingAudio,
    FirstClip,
    FirstFrame,
    LastFrame,
    ReferenceImage,
    ReferenceVideo,
    Video,
}

impl MediaKind {
    /// In the order the docs list them.
    pub const ALL: [MediaKind; 7] = [
        FirstFrame,
        LastFrame,
        DrivingAudio,
        FirstClip,
        ReferenceImage,
        ReferenceVideo,
        Video,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FirstFrame => "first_frame",
            LastFrame => "last_frame",
            DrivingAudio => "driving_audio",
            FirstClip => "first_clip",
            ReferenceImage => "reference_image",
            ReferenceVideo => "reference_video",
            Video => "video",
        }
    }

    pub fn parse(name: &str) -> Option<MediaKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn class(self) -> MediaClass {
        match self {
            FirstFrame | LastFrame | ReferenceImage => MediaClass::Image,
            FirstClip | ReferenceVideo | Video => MediaClass::Video,
            DrivingAudio => MediaClass::Audio,
        }
    }

    /// A reference a prompt numbers (`图1`, `Video 2`); it may carry a `reference_voice`.
    pub fn is_reference(self) -> bool {
        matches!(self, ReferenceImage | ReferenceVideo)
    }

    /// The duration limit this type puts on a shot whose video feeds it (`shot:`).
    pub fn upstream_limit(self) -> Option<(u32, u32)> {
        match self {
            FirstClip => Some(FIRST_CLIP_DURATION),
            ReferenceVideo => Some(REFERENCE_VIDEO_DURATION),
            Video => Some(VIDEO_INPUT_DURATION),
            _ => None,
        }
    }
}

/// What a media type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaClass {
    Image,
    Video,
    Audio,
}

impl MediaClass {
    /// The URL extensions the provider takes for this class.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            MediaClass::Image => &IMAGE_EXTENSIONS,
            MediaClass::Video => &VIDEO_EXTENSIONS,
            MediaClass::Audio => &AUDIO_EXTENSIONS,
        }
    }
}

/// The ratio sent when a shot whose model sends one sets none.
pub const DEFAULT_RATIO: &str = "16:9";
pub const RESOLUTIONS: [&str; 2] = ["720P", "1080P"];
pub const RATIOS: [&str; 5] = ["16:9", "9:16", "1:1", "4:3", "3:4"];
pub const MAX_SEED: u64 = 2_147_483_647;
pub const MAX_PROMPT_CHARS: usize = 5000;
pub const MAX_NEGATIVE_PROMPT_CHARS: usize = 500;
const DURATION: (u32, u32) = (2, 15);
const DEFAULT_DURATION: u32 = 5;
/// The videoedit input's length, and its output's when cut (`duration` 2-10).
pub const VIDEO_INPUT_DURATION: (u32, u32) = (2, 10);
const FIRST_CLIP_DURATION: (u32, u32) = (2, 10);
const REFERENCE_VIDEO_DURATION: (u32, u32) = (1, 30);

const IMAGE_EXTENSIONS: [&str; 5] = ["jpeg", "jpg", "png", "bmp", "webp"];
const AUDIO_EXTENSIONS: [&str; 2] = ["wav", "mp3"];
const VIDEO_EXTENSIONS: [&str; 2] = ["mp4", "mov"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_resolve_to_their_row() {
        for m in &MODELS {
            assert_eq!(resolve(m.alias), Some(m));
            assert_eq!(resolve(m.id), Some(m));
            assert_eq!(by_id(m.id), Some(m));
        }
        assert_eq!(resolve("t2x"), None);
    }

    #[test]
    fn a_row_carries_its_native_id_and_list_prices() {
        let natives: Vec<_> = MODELS.iter().filter_map(|m| m.native_id).collect();
        assert_eq!(
            natives,
            ["wan2.7-t2v", "wan2.7-i2v", "wan2.7-r2v", "wan2.7-videoedit"]
        );
        for m in &MODELS {
            let native = m.native_id.unwrap();
            assert_eq!(by_native_or_id(native), Some(m));
            assert_eq!(by_native_or_id(m.id), Some(m));
            let resolutions: Vec<_> = m.list_prices.iter().map(|p| p.0).collect();
            assert_eq!(resolutions, ["720P", "1080P"], "{}", m.id);
        }
        let ratio: Vec<_> = (MODELS.iter().filter(|m| m.usage_shows_ratio))
            .map(|m| m.alias)
            .collect();
        assert_eq!(ratio, ["r2v"]);
        assert_eq!(by_native_or_id("wan2.6-t2v"), None);
    }

    #[test]
    fn each_media_type_parses_back_and_some_model_takes_it() {
        for kind in MediaKind::ALL {
            assert_eq!(MediaKind::parse(kind.name()), Some(kind));
            assert!(MODELS.iter().any(|m| m.takes(kind)), "{kind:?}");
        }
        let r2v = resolve("r2v").unwrap();
        assert!(r2v.takes(FirstFrame) && !r2v.takes(FirstClip));
        assert!(!resolve("t2v").unwrap().takes(FirstFrame));
    }

    #[test]
    fn modes_are_sorted_so_a_shot_s_sorted_types_can_match_them() {
        for m in &MODELS {
            if let MediaRule::Modes { modes, .. } = m.media {
                assert!(modes.iter().all(|mode| mode.is_sorted()), "{}", m.alias);
            }
        }
    }
}
