//! The example manifests: each plans through the real loader, validates against the checked-in
//! schema, and the five provider examples plan to exactly the page's bodies.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(super::root().join("manifests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.strip_prefix(super::root()).unwrap().to_owned())
        .collect();
    v.sort();
    v
}

fn body_of(rel: &str) -> Value {
    match shotlist::plan::load_and_plan(Path::new(rel)) {
        Ok(p) => {
            assert!(p.warnings.is_empty(), "{rel}: {:?}", p.warnings);
            assert_eq!(p.plan.shots.len(), 1);
            p.plan.shots[0].body.value()
        }
        Err(r) => panic!("{rel}:\n{}", shotlist::plan::render_human(&r.diagnostics)),
    }
}

/// The page's body with the fields shotlist always sends added to `metadata.parameters`.
fn with_always_sent(mut page: Value, always: Value) -> Value {
    let params = page["metadata"]["parameters"].as_object_mut().unwrap();
    for (k, v) in always.as_object().unwrap() {
        params.entry(k.clone()).or_insert(v.clone());
    }
    page
}

#[test]
fn t2v_multishot_matches_the_page() {
    let page = json!({"model": "wan2.7-t2v-2026-04-25",
        "prompt": "Shot 1 [0-3s] Wide: rainy NYC street at night. Shot 2 [3-6s] Medium: detective enters an old building.",
        "duration": 6,
        "metadata": {"input": {"prompt": "Shot 1 [0-3s] Wide: rainy NYC street at night. Shot 2 [3-6s] Medium: detective enters an old building."},
            "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 6, "prompt_extend": true, "watermark": false}}});
    assert_eq!(body_of("manifests/t2v-multishot.yaml"), page);
}

#[test]
fn i2v_examples_match_the_page() {
    let page = json!({"model": "wan2.7-i2v-2026-04-25",
        "prompt": "A graffiti boy comes alive from the wall and performs rap.", "duration": 10,
        "metadata": {"input": {"prompt": "A graffiti boy comes alive from the wall and performs rap.",
            "media": [{"type": "first_frame", "url": "https://example.com/first_frame.png"},
                      {"type": "driving_audio", "url": "https://example.com/rap.mp3"}]},
            "parameters": {"resolution": "720P", "duration": 10, "prompt_extend": true}}});
    assert_eq!(
        body_of("manifests/i2v-first-frame-audio.yaml"),
        with_always_sent(page, json!({"watermark": false}))
    );

    let page = json!({"model": "wan2.7-i2v-2026-04-25", "prompt": "Timelapse from sunrise to sunset", "duration": 10,
        "metadata": {"input": {"prompt": "Timelapse from sunrise to sunset",
            "media": [{"type": "first_frame", "url": "https://example.com/sunrise.png"},
                      {"type": "last_frame", "url": "https://example.com/sunset.png"}]},
            "parameters": {"duration": 10}}});
    let always = json!({"resolution": "720P", "prompt_extend": true, "watermark": false});
    assert_eq!(
        body_of("manifests/i2v-first-last-frame.yaml"),
        with_always_sent(page, always.clone())
    );

    let page = json!({"model": "wan2.7-i2v-2026-04-25", "prompt": "A girl takes a mirror selfie, then leaves with her backpack", "duration": 15,
        "metadata": {"input": {"prompt": "A girl takes a mirror selfie, then leaves with her backpack",
            "media": [{"type": "first_clip", "url": "https://example.com/girl_selfie.mp4"}]},
            "parameters": {"duration": 15}}});
    assert_eq!(
        body_of("manifests/i2v-continuation.yaml"),
        with_always_sent(page, always)
    );
}

#[test]
fn r2v_references_match_the_page() {
    let prompt = "视频1抱着图3,在图4的椅子上弹奏民谣,并说道:\"今天的阳光真好。\"图1路过,把图2放到视频1旁边的桌子上。";
    let page = json!({"model": "wan2.7-r2v", "prompt": prompt, "duration": 10,
        "metadata": {"input": {"prompt": prompt, "media": [
            {"type": "reference_image", "url": "https://example.com/girl.jpg", "reference_voice": "https://example.com/girl_voice.mp3"},
            {"type": "reference_video", "url": "https://example.com/boy_video.mp4", "reference_voice": "https://example.com/boy_voice.mp3"},
            {"type": "reference_image", "url": "https://example.com/object3.png"},
            {"type": "reference_image", "url": "https://example.com/object4.png"},
            {"type": "reference_image", "url": "https://example.com/background5.png"}]},
            "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 10, "prompt_extend": true}}});
    assert_eq!(
        body_of("manifests/r2v-references.yaml"),
        with_always_sent(page, json!({"watermark": false}))
    );
}

#[test]
fn every_example_plans_and_snapshots() {
    let all = examples();
    assert!(all.len() >= 7, "{all:?}");
    for rel in all {
        let text = std::fs::read_to_string(&rel).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/manifest.schema.json"),
            "{} must start with the schema comment",
            rel.display()
        );
        let planned = shotlist::plan::load_and_plan(&rel).unwrap_or_else(|r| {
            panic!(
                "{}:\n{}",
                rel.display(),
                shotlist::plan::render_human(&r.diagnostics)
            )
        });
        let name = rel.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_json_snapshot!(format!("example_{name}"), planned.plan);
    }
}

#[test]
fn product_launch_is_a_readme_sized_demo() {
    let p = shotlist::plan::load_and_plan(Path::new("manifests/product-launch.yaml"))
        .unwrap()
        .plan;
    assert!((8..=12).contains(&p.shots.len()), "{} shots", p.shots.len());
    assert!(p.shots.iter().any(|s| s.id.ends_with("-take2")));
    assert!(p.shots.iter().any(|s| !s.depends_on.is_empty()));
}

#[test]
fn story_shots_continue_each_other() {
    let p = shotlist::plan::load_and_plan(Path::new("manifests/story.yaml"))
        .unwrap()
        .plan;
    let deps: Vec<(&str, Vec<usize>)> = p
        .shots
        .iter()
        .map(|s| (s.id.as_str(), s.depends_on.clone()))
        .collect();
    assert_eq!(
        deps,
        [("opening", vec![]), ("lamp", vec![0]), ("finale", vec![1])]
    );
    assert_eq!(p.chain_lengths(), [3, 2, 1]);
}

#[test]
fn examples_validate_against_the_schema() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string("schemas/manifest.schema.json").unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for rel in examples() {
        let text = std::fs::read_to_string(&rel).unwrap();
        let instance: Value = serde_saphyr::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", rel.display());
    }
    let bad: Value = serde_json::json!({"version": 1, "shots": [{"id": "a", "promt": "x"}]});
    assert!(
        !validator.is_valid(&bad),
        "the schema refuses unknown keys too"
    );
}

#[test]
fn checked_in_schema_has_not_drifted() {
    let on_disk = std::fs::read_to_string("schemas/manifest.schema.json").unwrap_or_default();
    assert!(
        on_disk == shotlist::commands::schema::schema_text(),
        "schemas/manifest.schema.json is out of date with the manifest types; regenerate it with\n    cargo run -- schema > schemas/manifest.schema.json"
    );
}

/// `plan --provider dashscope` of every example: the native body of each shot, as DashScope
/// gets it (a `shot:` item shows where the upstream's URL goes).
#[test]
fn every_example_plans_to_native_bodies_with_provider_dashscope() {
    for rel in examples() {
        let out = crate::support::shotlist()
            .current_dir(super::root())
            .args(["plan", "--provider", "dashscope", "--format", "json"])
            .arg(&rel)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let bodies: serde_json::Map<String, Value> = doc["shots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert!(s.get("native_error").is_none(), "{}: {s}", rel.display());
                (
                    s["id"].as_str().unwrap().to_owned(),
                    s["native_body"].clone(),
                )
            })
            .collect();
        assert!(
            bodies.values().all(|b| b["input"].is_object()),
            "{bodies:?}"
        );
        let name = rel.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_json_snapshot!(format!("native_{name}"), bodies);
    }
}

#[test]
fn the_gateway_plan_has_no_native_bodies() {
    let out = crate::support::shotlist()
        .current_dir(super::root())
        .args(["plan", "manifests/story.yaml", "--format", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["shots"][0]["body"].is_object());
    assert!(doc["shots"][0].get("native_body").is_none(), "{doc}");
}

/// An edit of a URL, and an edit of a shot: the exact gateway and native bodies, each accepted
/// by the simulator rules of its provider (written apart from the planner's).
#[test]
fn edit_bodies_are_exact_on_both_providers() {
    let manifest = r#"version: 1
shots:
  - id: base
    model: t2v
    prompt: A harbour at dawn.
    duration: 4
    prompt_extend: false
    seed: 0
  - id: from-url
    model: edit
    prompt: Repaint 视频1 in the style of 图1.
    duration: 6
    ratio: "9:16"
    resolution: 1080P
    audio_setting: auto
    prompt_extend: false
    seed: 0
    media:
      - { type: video, url: "https://example.com/clip.mp4" }
      - { type: reference_image, url: "https://example.com/style.png" }
  - id: from-shot
    model: edit
    prompt: Make it snow.
    prompt_extend: false
    seed: 0
    media:
      - { type: video, shot: base }
"#;
    let (_dir, planned) = super::plan_in_temp(manifest, &[]);
    let plan = planned
        .unwrap_or_else(|r| panic!("{}", shotlist::plan::render_human(&r.diagnostics)))
        .plan;
    let from_url = json!({"model": "wan2.7-videoedit", "prompt": "Repaint 视频1 in the style of 图1.", "duration": 6,
        "metadata": {"input": {"prompt": "Repaint 视频1 in the style of 图1.", "media": [
                {"type": "video", "url": "https://example.com/clip.mp4"},
                {"type": "reference_image", "url": "https://example.com/style.png"}]},
            "parameters": {"audio_setting": "auto", "duration": 6, "prompt_extend": false, "ratio": "9:16",
                "resolution": "1080P", "seed": 0, "watermark": false}}});
    assert_eq!(plan.shots[1].body.value(), from_url);
    let native = shotlist::api::dashscope::encode(&from_url).unwrap();
    assert_eq!(
        native,
        json!({"model": "wan2.7-videoedit",
            "input": from_url["metadata"]["input"], "parameters": from_url["metadata"]["parameters"]})
    );
    // Edit's default duration is 0 (keep the input's length); no ratio unless written.
    let from_shot = plan.shots[2].body.value();
    assert_eq!(
        from_shot,
        json!({"model": "wan2.7-videoedit", "prompt": "Make it snow.", "duration": 0,
            "metadata": {"input": {"prompt": "Make it snow.", "media": [{"type": "video", "shot": "base"}]},
                "parameters": {"duration": 0, "prompt_extend": false, "resolution": "720P", "seed": 0,
                    "watermark": false}}})
    );
    let sent = plan.shots[2]
        .resolved_body(|id| (id == "base").then(|| "https://sim.example/base.mp4".to_owned()))
        .unwrap();
    assert_eq!(
        sent["metadata"]["input"]["media"],
        json!([{"type": "video", "url": "https://sim.example/base.mp4"}])
    );
    for body in [&from_url, &sent] {
        let gateway = shotlist::sim::rules::check(body.to_string().as_bytes());
        assert!(gateway.is_ok(), "{gateway:?}");
        let native = shotlist::api::dashscope::encode(body).unwrap();
        let accepted = shotlist::sim::dashscope::rules::check(native.to_string().as_bytes());
        assert!(accepted.is_ok(), "{accepted:?}");
    }
    // Billing: the URL's length is unknown (at most 10 s); the shot's is its upstream's 4 s.
    let input = |i: usize| {
        plan.shots[i]
            .input_video
            .map(|v| (v.seconds, v.upper_bound))
    };
    assert_eq!(
        (input(0), input(1), input(2)),
        (None, Some((10, true)), Some((4, false)))
    );
}
