//! The five requests of the provider's Wan 2.7 page, each as shotlist sends it: the page's body
//! plus `resolution`, `duration`, `prompt_extend` and `watermark` always (defaults 720P, true,
//! false where the page leaves them out), and never a `ratio` for i2v.

use serde_json::{Value, json};

/// One provider example: the manifest in `manifests/` that asks for it, and the body.
pub struct Example {
    pub manifest: &'static str,
    pub body: Value,
}

pub fn all() -> Vec<Example> {
    vec![
        Example {
            manifest: "t2v-multishot",
            body: t2v_multishot(),
        },
        Example {
            manifest: "i2v-first-frame-audio",
            body: i2v_first_frame_audio(),
        },
        Example {
            manifest: "i2v-first-last-frame",
            body: i2v_first_last_frame(),
        },
        Example {
            manifest: "i2v-continuation",
            body: i2v_continuation(),
        },
        Example {
            manifest: "r2v-references",
            body: r2v_references(),
        },
    ]
}

const T2V: &str = "wan2.7-t2v-2026-04-25";
const I2V: &str = "wan2.7-i2v-2026-04-25";
const R2V: &str = "wan2.7-r2v";

pub fn t2v_multishot() -> Value {
    let prompt = "Shot 1 [0-3s] Wide: rainy NYC street at night. Shot 2 [3-6s] Medium: detective enters an old building.";
    json!({
        "model": T2V,
        "prompt": prompt,
        "duration": 6,
        "metadata": {
            "input": {"prompt": prompt},
            "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 6,
                           "prompt_extend": true, "watermark": false}
        }
    })
}

pub fn i2v_first_frame_audio() -> Value {
    let prompt = "A graffiti boy comes alive from the wall and performs rap.";
    json!({
        "model": I2V,
        "prompt": prompt,
        "duration": 10,
        "metadata": {
            "input": {
                "prompt": prompt,
                "media": [
                    {"type": "first_frame", "url": "https://example.com/first_frame.png"},
                    {"type": "driving_audio", "url": "https://example.com/rap.mp3"}
                ]
            },
            "parameters": {"resolution": "720P", "duration": 10,
                           "prompt_extend": true, "watermark": false}
        }
    })
}

pub fn i2v_first_last_frame() -> Value {
    let prompt = "Timelapse from sunrise to sunset";
    json!({
        "model": I2V,
        "prompt": prompt,
        "duration": 10,
        "metadata": {
            "input": {
                "prompt": prompt,
                "media": [
                    {"type": "first_frame", "url": "https://example.com/sunrise.png"},
                    {"type": "last_frame", "url": "https://example.com/sunset.png"}
                ]
            },
            "parameters": {"resolution": "720P", "duration": 10,
                           "prompt_extend": true, "watermark": false}
        }
    })
}

pub fn i2v_continuation() -> Value {
    let prompt = "A girl takes a mirror selfie, then leaves with her backpack";
    json!({
        "model": I2V,
        "prompt": prompt,
        "duration": 15,
        "metadata": {
            "input": {
                "prompt": prompt,
                "media": [
                    {"type": "first_clip", "url": "https://example.com/girl_selfie.mp4"}
                ]
            },
            "parameters": {"resolution": "720P", "duration": 15,
                           "prompt_extend": true, "watermark": false}
        }
    })
}

pub fn r2v_references() -> Value {
    let prompt = "视频1抱着图3,在图4的椅子上弹奏民谣,并说道:\"今天的阳光真好。\"图1路过,把图2放到视频1旁边的桌子上。";
    json!({
        "model": R2V,
        "prompt": prompt,
        "duration": 10,
        "metadata": {
            "input": {
                "prompt": prompt,
                "media": [
                    {"type": "reference_image", "url": "https://example.com/girl.jpg",
                     "reference_voice": "https://example.com/girl_voice.mp3"},
                    {"type": "reference_video", "url": "https://example.com/boy_video.mp4",
                     "reference_voice": "https://example.com/boy_voice.mp3"},
                    {"type": "reference_image", "url": "https://example.com/object3.png"},
                    {"type": "reference_image", "url": "https://example.com/object4.png"},
                    {"type": "reference_image", "url": "https://example.com/background5.png"}
                ]
            },
            "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 10,
                           "prompt_extend": true, "watermark": false}
        }
    })
}
