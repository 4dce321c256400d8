//! Body rules over HTTP: the provider page's own examples pass, and every rule of the reference
//! refuses a body that breaks it with a 400 naming the rule.

use serde_json::{Value, json};

use super::{KEY, client, config, error_message, start, stats, submit, t2v};

/// The five request bodies of the provider page, verbatim.
const PAGE_T2V: &str = r#"{
"model": "wan2.7-t2v-2026-04-25",
"prompt": "Shot 1 [0-3s] Wide: rainy NYC street at night. Shot 2 [3-6s] Medium: detective enters an old building.",
"duration": 6,
"metadata": {
"input": {
"prompt": "Shot 1 [0-3s] Wide: rainy NYC street at night. Shot 2 [3-6s] Medium: detective enters an old building."
},
"parameters": {
"resolution": "720P",
"ratio": "16:9",
"duration": 6,
"prompt_extend": true,
"watermark": false
}
}
}"#;

const PAGE_I2V_FIRST_FRAME_AUDIO: &str = r#"{
"model": "wan2.7-i2v-2026-04-25",
"prompt": "A graffiti boy comes alive from the wall and performs rap.",
"duration": 10,
"metadata": {
"input": {
"prompt": "A graffiti boy comes alive from the wall and performs rap.",
"media": [
{"type": "first_frame", "url": "https://example.com/first_frame.png"},
{"type": "driving_audio", "url": "https://example.com/rap.mp3"}
]
},
"parameters": {
"resolution": "720P",
"duration": 10,
"prompt_extend": true
}
}
}"#;

const PAGE_I2V_FIRST_LAST: &str = r#"{
"model": "wan2.7-i2v-2026-04-25",
"prompt": "Timelapse from sunrise to sunset",
"duration": 10,
"metadata": {
"input": {
"prompt": "Timelapse from sunrise to sunset",
"media": [
{"type": "first_frame", "url": "https://example.com/sunrise.png"},
{"type": "last_frame", "url": "https://example.com/sunset.png"}
]
},
"parameters": {
"duration": 10
}
}
}"#;

const PAGE_I2V_FIRST_CLIP: &str = r#"{
"model": "wan2.7-i2v-2026-04-25",
"prompt": "A girl takes a mirror selfie, then leaves with her backpack",
"duration": 15,
"metadata": {
"input": {
"prompt": "A girl takes a mirror selfie, then leaves with her backpack",
"media": [
{"type": "first_clip", "url": "https://example.com/girl_selfie.mp4"}
]
},
"parameters": {
"duration": 15
}
}
}"#;

const PAGE_R2V: &str = r#"{
"model": "wan2.7-r2v",
"prompt": "视频1抱着图3,在图4的椅子上弹奏民谣,并说道:\"今天的阳光真好。\"图1路过,把图2放到视频1旁边的桌子上。",
"duration": 10,
"metadata": {
"input": {
"prompt": "视频1抱着图3,在图4的椅子上弹奏民谣,并说道:\"今天的阳光真好。\"图1路过,把图2放到视频1旁边的桌子上。",
"media": [
{"type": "reference_image", "url": "https://example.com/girl.jpg", "reference_voice": "https://example.com/girl_voice.mp3"},
{"type": "reference_video", "url": "https://example.com/boy_video.mp4", "reference_voice": "https://example.com/boy_voice.mp3"},
{"type": "reference_image", "url": "https://example.com/object3.png"},
{"type": "reference_image", "url": "https://example.com/object4.png"},
{"type": "reference_image", "url": "https://example.com/background5.png"}
]
},
"parameters": {
"resolution": "720P",
"ratio": "16:9",
"duration": 10,
"prompt_extend": true
}
}
}"#;

fn page(body: &str) -> Value {
    serde_json::from_str(body).expect("page example is JSON")
}

/// `body` with the value at a JSON pointer set (`Some`) or removed (`None`).
fn edit(mut body: Value, pointer: &str, value: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let parent = body
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} in body"));
    match (parent, value) {
        (Value::Object(map), Some(v)) => {
            map.insert(key.to_owned(), v);
        }
        (Value::Object(map), None) => {
            map.remove(key);
        }
        (Value::Array(items), Some(v)) => items[key.parse::<usize>().expect("index")] = v,
        (Value::Array(items), None) => {
            items.remove(key.parse::<usize>().expect("index"));
        }
        _ => panic!("{pointer} is not in an object or array"),
    }
    body
}

/// Sets both prompts to the same text.
fn prompt(body: Value, text: &str) -> Value {
    let body = edit(body, "/prompt", Some(json!(text)));
    edit(body, "/metadata/input/prompt", Some(json!(text)))
}

/// Sets both durations to the same value.
fn duration(body: Value, seconds: u32) -> Value {
    let body = edit(body, "/duration", Some(json!(seconds)));
    edit(body, "/metadata/parameters/duration", Some(json!(seconds)))
}

fn i2v() -> Value {
    page(PAGE_I2V_FIRST_FRAME_AUDIO)
}

fn r2v() -> Value {
    page(PAGE_R2V)
}

/// A videoedit of a URL, keeping its length and sound.
fn videoedit() -> Value {
    json!({"model": "wan2.7-videoedit", "prompt": "Repaint 视频1 in the style of 图1", "duration": 0,
        "metadata": {"input": {"prompt": "Repaint 视频1 in the style of 图1",
                               "media": [vid("video"), img("reference_image")]},
                     "parameters": {"resolution": "720P", "duration": 0, "audio_setting": "origin",
                                    "prompt_extend": true, "watermark": false}}})
}

fn media(body: Value, items: Value) -> Value {
    edit(body, "/metadata/input/media", Some(items))
}

fn img(kind: &str) -> Value {
    json!({"type": kind, "url": format!("https://example.com/{kind}.png")})
}

fn vid(kind: &str) -> Value {
    json!({"type": kind, "url": format!("https://example.com/{kind}.mp4")})
}

fn aud(kind: &str) -> Value {
    json!({"type": kind, "url": format!("https://example.com/{kind}.mp3")})
}

/// Every broken body, with the rule it breaks.
fn violations() -> Vec<(&'static str, Value, &'static str)> {
    let t = || t2v("a red fox runs through snow");
    vec![
        ("array body", json!([1, 2]), "body_json"),
        ("string body", json!("hello"), "body_json"),
        ("unknown top-level field", edit(t(), "/size", Some(json!("1280x720"))), "unknown_field"),
        ("unknown metadata field", edit(t(), "/metadata/extra", Some(json!({}))), "unknown_field"),
        ("misspelt input field", edit(t(), "/metadata/input/negative_promt", Some(json!("x"))), "unknown_field"),
        ("missing model", edit(t(), "/model", None), "model"),
        ("alias instead of model id", edit(t(), "/model", Some(json!("t2v"))), "model"),
        ("older model", edit(t(), "/model", Some(json!("wan2.5-t2v-preview"))), "model"),
        ("model not a string", edit(t(), "/model", Some(json!(7))), "model"),
        ("no metadata", edit(t(), "/metadata", None), "metadata_required"),
        ("no metadata.input", edit(t(), "/metadata/input", None), "metadata_required"),
        ("parameters not an object", edit(t(), "/metadata/parameters", Some(json!([]))), "metadata_required"),
        ("no top-level prompt", edit(t(), "/prompt", None), "prompt_required"),
        ("no inner prompt", edit(t(), "/metadata/input/prompt", None), "prompt_required"),
        ("blank prompt", prompt(t(), "   "), "prompt_required"),
        ("prompts differ", edit(t(), "/metadata/input/prompt", Some(json!("another fox"))), "prompt_mismatch"),
        ("prompt of 5001 characters", prompt(t(), &"a".repeat(5001)), "prompt_length"),
        ("negative prompt of 501 characters", edit(t(), "/metadata/input/negative_prompt", Some(json!("n".repeat(501)))), "negative_prompt_length"),
        ("unknown parameter", edit(t(), "/metadata/parameters/size", Some(json!("1280*720"))), "unknown_parameter"),
        ("misspelt parameter", edit(t(), "/metadata/parameters/prompt_extent", Some(json!(true))), "unknown_parameter"),
        ("duration as a string", edit(t(), "/duration", Some(json!("5"))), "duration_type"),
        ("fractional duration", duration(t(), 5).pipe(|b| edit(b, "/metadata/parameters/duration", Some(json!(5.5)))), "duration_type"),
        ("durations differ", edit(t(), "/metadata/parameters/duration", Some(json!(6))), "duration_mismatch"),
        ("t2v 1 s", duration(t(), 1), "duration_range"),
        ("t2v 16 s", duration(t(), 16), "duration_range"),
        ("i2v 16 s", duration(i2v(), 16), "duration_range"),
        ("r2v 11 s with a reference video", duration(r2v(), 11), "duration_range"),
        ("r2v 16 s without a reference video", duration(media(r2v(), json!([img("reference_image")])), 16).pipe(|b| prompt(b, "图1 walks")), "duration_range"),
        ("resolution 4K", edit(t(), "/metadata/parameters/resolution", Some(json!("4K"))), "resolution"),
        ("lower-case resolution", edit(t(), "/metadata/parameters/resolution", Some(json!("720p"))), "resolution"),
        ("ratio 21:9", edit(t(), "/metadata/parameters/ratio", Some(json!("21:9"))), "ratio"),
        ("ratio for i2v", edit(i2v(), "/metadata/parameters/ratio", Some(json!("16:9"))), "ratio_for_i2v"),
        ("negative seed", edit(t(), "/metadata/parameters/seed", Some(json!(-1))), "seed"),
        ("seed past 2^31-1", edit(t(), "/metadata/parameters/seed", Some(json!(2_147_483_648u64))), "seed"),
        ("fractional seed", edit(t(), "/metadata/parameters/seed", Some(json!(1.5))), "seed"),
        ("seed as a string", edit(t(), "/metadata/parameters/seed", Some(json!("42"))), "seed"),
        ("watermark as a string", edit(t(), "/metadata/parameters/watermark", Some(json!("false"))), "bool_parameter"),
        ("prompt_extend as a number", edit(t(), "/metadata/parameters/prompt_extend", Some(json!(1))), "bool_parameter"),
        ("audio_url on i2v", edit(i2v(), "/metadata/input/audio_url", Some(json!("https://example.com/a.mp3"))), "audio_url_model"),
        ("audio_url not http", edit(t(), "/metadata/input/audio_url", Some(json!("ftp://example.com/a.mp3"))), "media_url"),
        ("media url a local path", media(i2v(), json!([{"type": "first_frame", "url": "/tmp/a.png"}])), "media_url"),
        ("media url file scheme", media(i2v(), json!([{"type": "first_frame", "url": "file:///a.png"}])), "media_url"),
        ("reference_voice not http", media(r2v(), json!([{"type": "reference_image", "url": "https://e.com/a.png", "reference_voice": "voice.mp3"}])).pipe(|b| prompt(b, "图1 sings")), "media_url"),
        ("media on t2v", media(t(), json!([img("first_frame")])), "media_for_t2v"),
        ("media not a list", media(i2v(), json!({"type": "first_frame"})), "media_item"),
        ("media item without url", media(i2v(), json!([{"type": "first_frame"}])), "media_item"),
        ("media item with an unknown field", media(i2v(), json!([{"type": "first_frame", "url": "https://e.com/a.png", "weight": 1}])), "media_item"),
        ("unknown media type", media(i2v(), json!([img("last_frames")])), "media_type"),
        ("reference_image on i2v", media(i2v(), json!([img("reference_image")])), "media_type"),
        ("first_clip on r2v", media(r2v(), json!([img("reference_image"), vid("first_clip")])), "media_type"),
        ("two first_frame on i2v", media(i2v(), json!([img("first_frame"), img("first_frame")])), "media_duplicate"),
        ("two first_frame on r2v", media(r2v(), json!([img("reference_image"), img("first_frame"), img("first_frame")])).pipe(|b| prompt(b, "图1 waves")), "media_duplicate"),
        ("i2v without media", edit(i2v(), "/metadata/input/media", None), "i2v_media_mode"),
        ("i2v last_frame alone", media(i2v(), json!([img("last_frame")])), "i2v_media_mode"),
        ("i2v first_clip + last_frame", media(i2v(), json!([vid("first_clip"), img("last_frame")])), "i2v_media_mode"),
        ("i2v first + last frame + audio", media(i2v(), json!([img("first_frame"), img("last_frame"), aud("driving_audio")])), "i2v_media_mode"),
        ("i2v first_clip + first_frame", media(i2v(), json!([vid("first_clip"), img("first_frame")])), "i2v_media_mode"),
        ("r2v with six references", media(r2v(), json!([img("reference_image"), img("reference_image"), img("reference_image"), img("reference_image"), vid("reference_video"), vid("reference_video")])), "r2v_reference_count"),
        ("r2v with only a first frame", media(r2v(), json!([img("first_frame")])).pipe(|b| prompt(b, "a boy sings")), "r2v_reference_count"),
        ("reference_voice on i2v", media(i2v(), json!([{"type": "first_frame", "url": "https://e.com/a.png", "reference_voice": "https://e.com/v.mp3"}])), "reference_voice"),
        ("reference_voice on r2v first_frame", media(r2v(), json!([img("reference_image"), {"type": "first_frame", "url": "https://e.com/a.png", "reference_voice": "https://e.com/v.mp3"}])).pipe(|b| prompt(b, "图1 sings")), "reference_voice"),
        ("图5 with four images", prompt(r2v(), "视频1 holds 图5"), "reference_index"),
        ("视频2 with one video", prompt(r2v(), "视频2 holds 图1"), "reference_index"),
        ("Image 5 with four images", prompt(r2v(), "Video 1 holds Image 5"), "reference_index"),
        ("Video 0", prompt(r2v(), "Video 0 holds Image 1"), "reference_index"),
        ("videoedit 1 s", duration(videoedit(), 1), "duration_range"),
        ("videoedit 11 s", duration(videoedit(), 11), "duration_range"),
        ("videoedit without a video", media(videoedit(), json!([img("reference_image")])), "edit_media"),
        ("videoedit with five images", media(videoedit(), json!([vid("video"), img("reference_image"), img("reference_image"), img("reference_image"), img("reference_image"), img("reference_image")])), "edit_media"),
        ("videoedit with two videos", media(videoedit(), json!([vid("video"), vid("video")])), "media_duplicate"),
        ("first_frame on videoedit", media(videoedit(), json!([vid("video"), img("first_frame")])), "media_type"),
        ("video on i2v", media(i2v(), json!([vid("video")])), "media_type"),
        ("audio_url on videoedit", edit(videoedit(), "/metadata/input/audio_url", Some(json!("https://example.com/a.mp3"))), "audio_url_model"),
        ("reference_voice on videoedit", media(videoedit(), json!([vid("video"), {"type": "reference_image", "url": "https://e.com/a.png", "reference_voice": "https://e.com/v.mp3"}])), "reference_voice"),
        ("audio_setting on t2v", edit(t(), "/metadata/parameters/audio_setting", Some(json!("auto"))), "audio_setting"),
        ("audio_setting keep", edit(videoedit(), "/metadata/parameters/audio_setting", Some(json!("keep"))), "audio_setting"),
        ("first_frame is not a numbered image", media(r2v(), json!([vid("reference_video"), img("first_frame")])).pipe(|b| prompt(b, "视频1 holds 图1")), "reference_index"),
    ]
}

/// `.pipe(f)` for building cases inline.
trait Pipe: Sized {
    fn pipe(self, f: impl FnOnce(Self) -> Self) -> Self {
        f(self)
    }
}
impl Pipe for Value {}

/// Bodies that look unusual but follow the reference.
fn acceptable() -> Vec<(&'static str, Value)> {
    let t = || t2v("a red fox runs through snow");
    vec![
        ("page t2v", page(PAGE_T2V)),
        (
            "page i2v first frame + driving audio",
            page(PAGE_I2V_FIRST_FRAME_AUDIO),
        ),
        ("page i2v first + last frame", page(PAGE_I2V_FIRST_LAST)),
        ("page i2v continuation", page(PAGE_I2V_FIRST_CLIP)),
        ("page r2v", page(PAGE_R2V)),
        (
            "5000 CJK characters (15000 bytes)",
            prompt(t(), &"狐".repeat(5000)),
        ),
        (
            "negative prompt of 500 characters",
            edit(
                t(),
                "/metadata/input/negative_prompt",
                Some(json!("n".repeat(500))),
            ),
        ),
        (
            "seed 0",
            edit(t(), "/metadata/parameters/seed", Some(json!(0))),
        ),
        (
            "seed 2147483647",
            edit(t(), "/metadata/parameters/seed", Some(json!(2_147_483_647))),
        ),
        ("t2v 2 s and 15 s", duration(duration(t(), 2), 15)),
        (
            "t2v with audio_url",
            edit(
                t(),
                "/metadata/input/audio_url",
                Some(json!("https://example.com/a.wav")),
            ),
        ),
        ("t2v with empty media list", media(t(), json!([]))),
        (
            "r2v 15 s without a reference video",
            duration(
                media(r2v(), json!([img("reference_image"), img("first_frame")])),
                15,
            )
            .pipe(|b| prompt(b, "图1 walks, Image 1 smiles")),
        ),
        (
            "r2v 1080P 9:16 with video and voice",
            edit(
                edit(
                    r2v(),
                    "/metadata/parameters/resolution",
                    Some(json!("1080P")),
                ),
                "/metadata/parameters/ratio",
                Some(json!("9:16")),
            ),
        ),
        ("videoedit keeping the input's length", videoedit()),
        (
            "videoedit of 10 s, 9:16, no images, duration only at top level",
            media(
                edit(
                    edit(
                        duration(videoedit(), 10),
                        "/metadata/parameters/duration",
                        None,
                    ),
                    "/metadata/parameters/ratio",
                    Some(json!("9:16")),
                ),
                json!([vid("video")]),
            )
            .pipe(|b| prompt(b, "Make it snow")),
        ),
        (
            "videoedit without duration (0 by default) or audio_setting",
            edit(
                edit(
                    edit(videoedit(), "/duration", None),
                    "/metadata/parameters/duration",
                    None,
                ),
                "/metadata/parameters/audio_setting",
                None,
            ),
        ),
        (
            "duration only at top level",
            edit(t(), "/metadata/parameters/duration", None),
        ),
        (
            "no parameters at all",
            edit(edit(t(), "/metadata/parameters", None), "/duration", None),
        ),
        (
            "English words that are not references",
            prompt(
                page(PAGE_I2V_FIRST_CLIP),
                "Image 9 of a VideoGame 3; 图片 and Video stores",
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_examples_and_edge_bodies_are_accepted() {
    let sim = start(config()).await;
    let client = client();
    let cases = acceptable();
    let mut refused = Vec::new();
    for (name, body) in &cases {
        let response = submit(&client, &sim, body).await;
        let status = response.status();
        if status != 200 {
            let text = response.text().await.unwrap_or_default();
            refused.push(format!("{name}: {status} {text}"));
        }
    }
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
    let stats = stats(&client, &sim, false).await;
    assert_eq!(stats["tasks_created"], cases.len());
    let models: Vec<&str> = stats["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .take(5)
        .map(|t| t["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        models,
        [
            "wan2.7-t2v-2026-04-25",
            "wan2.7-i2v-2026-04-25",
            "wan2.7-i2v-2026-04-25",
            "wan2.7-i2v-2026-04-25",
            "wan2.7-r2v"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_refuses_with_400_naming_it_and_creates_nothing() {
    let sim = start(config()).await;
    let client = client();
    let cases = violations();
    let mut wrong = Vec::new();
    for (name, body, rule) in &cases {
        let response = submit(&client, &sim, body).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json: Value = match serde_json::from_str(&text) {
            Ok(json) => json,
            Err(_) => {
                wrong.push(format!("{name}: {status} non-JSON body {text}"));
                continue;
            }
        };
        let message = error_message(&json);
        if status != 400 || !message.starts_with(&format!("{rule}: ")) {
            wrong.push(format!(
                "{name}: expected 400 `{rule}: …`, got {status} {message}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    let stats = stats(&client, &sim, true).await;
    assert_eq!(stats["tasks_created"], 0);
    assert_eq!(stats["requests"]["submit"]["400"], cases.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_rules_answer_flat_and_provider_rules_answer_nested() {
    let sim = start(config()).await;
    let client = client();

    let flat: Value = submit(&client, &sim, &edit(t2v("x"), "/model", Some(json!("t2v"))))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(flat["code"], "InvalidParameter");
    assert_eq!(flat["data"], Value::Null);
    assert!(
        flat["message"]
            .as_str()
            .unwrap()
            .contains("wan2.7-t2v-2026-04-25"),
        "{flat}"
    );

    let nested: Value = submit(
        &client,
        &sim,
        &edit(t2v("x"), "/metadata/parameters/ratio", Some(json!("2:1"))),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(nested["code"], "fail_to_fetch_task");
    let inner: Value = serde_json::from_str(nested["message"].as_str().unwrap()).unwrap();
    assert_eq!(inner["code"], "InvalidParameter");
    assert!(inner["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(
        inner["message"].as_str().unwrap().starts_with("ratio: "),
        "{inner}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_must_be_json_with_a_json_content_type() {
    let sim = start(config()).await;
    let client = client();
    let url = format!("{}/v1/video/generations", sim.base_url());
    let body = t2v("a fox").to_string();

    let cases = [
        (Some("text/plain"), body.clone(), "content_type"),
        (None, body.clone(), "content_type"),
        (
            Some("application/json"),
            "{\"model\": ".to_owned(),
            "body_json",
        ),
        (Some("application/json"), String::new(), "body_json"),
    ];
    for (content_type, body, rule) in cases {
        let mut request = client.post(&url).bearer_auth(KEY).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{content_type:?}");
        let message = error_message(&response.json().await.unwrap());
        assert!(message.starts_with(&format!("{rule}: ")), "{message}");
    }
    let ok = client
        .post(&url)
        .bearer_auth(KEY)
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
