//! The planner and both simulators agree on `wan2.7-videoedit`: over generated edit shots, a
//! shot the planner accepts yields a body the gateway simulator accepts, and whose native
//! encoding the DashScope simulator accepts; a shot the planner refuses, written by hand as
//! the body it would have been, is refused by both. The three keep their rules apart on
//! purpose, so this is where a drift between them shows.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

const UPSTREAM_URL: &str = "https://example.com/upstream.mp4";

/// The edit-specific choices of one generated shot.
#[derive(Debug, Clone)]
struct EditShot {
    duration: Option<u32>,
    audio_setting: Option<&'static str>,
    ratio: Option<&'static str>,
    resolution: &'static str,
    /// Each `video` item: by `shot:` (the 5 s upstream) or by URL.
    videos: Vec<bool>,
    images: usize,
    reference_voice: bool,
    audio_url: bool,
}

fn edit_shot() -> impl Strategy<Value = EditShot> {
    (
        prop::option::of(prop::sample::select(vec![0u32, 1, 2, 5, 10, 11, 15])),
        prop::option::of(prop::sample::select(vec!["auto", "origin", "keep", "AUTO"])),
        prop::option::of(prop::sample::select(vec!["16:9", "1:1", "3:4", "7:3", "21:9"])),
        prop::sample::select(vec!["720P", "1080P", "480P"]),
        // Mostly the one video edit takes, so accepted shots are common too.
        prop_oneof![4 => prop::collection::vec(any::<bool>(), 1), 1 => prop::collection::vec(any::<bool>(), 0..=2)],
        0usize..=5,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(duration, audio_setting, ratio, resolution, videos, images, voice, audio_url)| {
                EditShot {
                    duration,
                    audio_setting,
                    ratio,
                    resolution,
                    videos,
                    images,
                    reference_voice: voice,
                    audio_url,
                }
            },
        )
}

impl EditShot {
    fn media(&self, by_shot: &dyn Fn(bool) -> Value) -> Vec<Value> {
        let mut media: Vec<Value> = self.videos.iter().map(|&s| by_shot(s)).collect();
        if self.reference_voice
            && let Some(Value::Object(first)) = media.first_mut()
        {
            first.insert("reference_voice".into(), json!("https://example.com/v.mp3"));
        }
        media.extend((1..=self.images).map(
            |n| json!({"type": "reference_image", "url": format!("https://example.com/{n}.png")}),
        ));
        media
    }

    fn manifest(&self) -> String {
        let media = self.media(&|by_shot| match by_shot {
            true => json!({"type": "video", "shot": "up"}),
            false => json!({"type": "video", "url": "https://example.com/in.mp4"}),
        });
        let mut shot = json!({
            "id": "e", "model": "edit", "prompt": "Restyle 视频1.",
            "resolution": self.resolution, "media": media,
        });
        let fields = shot.as_object_mut().unwrap();
        if let Some(d) = self.duration {
            fields.insert("duration".into(), json!(d));
        }
        if let Some(a) = self.audio_setting {
            fields.insert("audio_setting".into(), json!(a));
        }
        if let Some(r) = self.ratio {
            fields.insert("ratio".into(), json!(r));
        }
        if self.audio_url {
            fields.insert("audio_url".into(), json!("https://example.com/a.mp3"));
        }
        // JSON is YAML: the shot is written exactly as generated.
        format!(
            "version: 1\nshots:\n  - {{ id: up, model: t2v, prompt: A harbour., duration: 5 }}\n  - {shot}\n"
        )
    }

    /// The gateway body this shot would be, written by hand for the shots the planner refuses.
    fn body(&self) -> Value {
        let media = self.media(&|by_shot| {
            let url = if by_shot {
                UPSTREAM_URL
            } else {
                "https://example.com/in.mp4"
            };
            json!({"type": "video", "url": url})
        });
        let duration = self.duration.unwrap_or(0);
        let mut parameters = Map::new();
        parameters.insert("resolution".into(), json!(self.resolution));
        parameters.insert("duration".into(), json!(duration));
        parameters.insert("prompt_extend".into(), json!(true));
        parameters.insert("watermark".into(), json!(false));
        if let Some(r) = self.ratio {
            parameters.insert("ratio".into(), json!(r));
        }
        if let Some(a) = self.audio_setting {
            parameters.insert("audio_setting".into(), json!(a));
        }
        let mut input = json!({"prompt": "Restyle 视频1.", "media": media});
        if self.audio_url {
            input["audio_url"] = json!("https://example.com/a.mp3");
        }
        json!({
            "model": "wan2.7-videoedit", "prompt": "Restyle 视频1.", "duration": duration,
            "metadata": {"input": input, "parameters": parameters},
        })
    }
}

/// Each simulator's verdict on a gateway-form body: (gateway, DashScope native).
fn verdicts(body: &Value) -> (Result<(), String>, Result<(), String>) {
    let gateway = shotlist::sim::rules::check(body.to_string().as_bytes())
        .map(drop)
        .map_err(|v| format!("{v:?}"));
    let native = match shotlist::api::dashscope::encode(body) {
        Ok(native) => shotlist::sim::dashscope::rules::check(native.to_string().as_bytes())
            .map(drop)
            .map_err(|r| format!("{r:?}")),
        Err(e) => Err(format!("not encoded: {e}")),
    };
    (gateway, native)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn planner_and_both_simulators_agree_on_edit_shots(shot in edit_shot()) {
        let manifest = shot.manifest();
        match shotlist::plan::plan_text(std::path::Path::new("m.yaml"), &manifest) {
            Ok(planned) => {
                let edit = &planned.plan.shots[1];
                let body = edit
                    .resolved_body(|_| Some(UPSTREAM_URL.to_owned()))
                    .expect("the upstream has a URL");
                prop_assert_eq!(&body, &shot.body(), "the hand-written body is the planner's");
                let (gateway, native) = verdicts(&body);
                prop_assert!(gateway.is_ok(), "gateway sim refused a planned body: {:?}\n{}", gateway, manifest);
                prop_assert!(native.is_ok(), "DashScope sim refused a planned body: {:?}\n{}", native, manifest);
            }
            Err(rejected) => {
                let why: Vec<&str> = rejected.diagnostics.iter().map(|d| d.message.as_str()).collect();
                let (gateway, native) = verdicts(&shot.body());
                prop_assert!(gateway.is_err(), "gateway sim accepts what the planner refused ({:?}):\n{}", why, manifest);
                prop_assert!(native.is_err(), "DashScope sim accepts what the planner refused ({:?}):\n{}", why, manifest);
            }
        }
    }
}
