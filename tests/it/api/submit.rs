//! Submit: every accepted shape of the reference, and what reaches the provider.

use serde_json::json;
use shotlist::api::{ApiError, Submitted};

use super::fake::{Fake, KEY, json, raw};

fn body() -> serde_json::Value {
    crate::support::t2v_body("a fox")
}

async fn submit_answering(answer: serde_json::Value) -> Result<Submitted, ApiError> {
    let fake = Fake::always(move || json(200, answer.clone())).await;
    fake.client().submit(&body()).await
}

#[tokio::test]
async fn posts_the_body_with_bearer_auth_to_the_generations_path() {
    let fake = Fake::always(|| {
        json(
            200,
            json!({"task_id": "video_abc", "status": "submitted", "format": "mp4"}),
        )
    })
    .await;
    let got = fake.client().submit(&body()).await.expect("accepted");
    assert_eq!(got.task_id, "video_abc");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "exactly one request");
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/v1/video/generations");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    let sent: serde_json::Value = serde_json::from_slice(&req.body).expect("json body");
    assert_eq!(sent, body());
}

#[tokio::test]
async fn public_page_shape() {
    let got =
        submit_answering(json!({"task_id": "video_1", "status": "submitted", "format": "mp4"}))
            .await;
    assert_eq!(got.unwrap().task_id, "video_1");
}

#[tokio::test]
async fn openai_video_shape_uses_id() {
    let got = submit_answering(
        json!({"id": "task_xyz", "object": "video", "model": "wan2.7-t2v-2026-04-25",
        "status": "queued", "progress": 0, "created_at": 1779793721}),
    )
    .await;
    assert_eq!(got.unwrap().task_id, "task_xyz");
}

#[tokio::test]
async fn queued_shape() {
    let got = submit_answering(json!({"task_id": "q-1", "status": "queued"})).await;
    assert_eq!(got.unwrap().task_id, "q-1");
}

#[tokio::test]
async fn empty_task_id_falls_back_to_id() {
    let got =
        submit_answering(json!({"task_id": "", "id": "fallback-7", "status": "queued"})).await;
    assert_eq!(got.unwrap().task_id, "fallback-7");
}

#[tokio::test]
async fn accepted_without_any_task_id_is_ambiguous() {
    let got = submit_answering(json!({"status": "queued"})).await;
    match got {
        Err(ApiError::Ambiguous { message }) => {
            assert!(message.contains("no task id"), "{message}")
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
}

#[tokio::test]
async fn unparseable_200_is_ambiguous() {
    let fake = Fake::always(|| raw(200, "<html>maintenance</html>")).await;
    let got = fake.client().submit(&body()).await;
    assert!(matches!(got, Err(ApiError::Ambiguous { .. })), "{got:?}");
}

#[tokio::test]
async fn base_url_with_trailing_slash_or_v1_hits_the_same_path() {
    let fake = Fake::always(|| json(200, json!({"task_id": "t"}))).await;
    for base in [
        format!("{}/", fake.base),
        format!("{}/v1", fake.base),
        format!("{}/v1/", fake.base),
    ] {
        let client = super::fake::client_for(&base, std::time::Duration::from_secs(5));
        client.submit(&body()).await.expect("accepted");
    }
    let paths: Vec<_> = fake.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, vec!["/v1/video/generations"; 3]);
}

#[tokio::test]
async fn accepted_error_envelope_is_ambiguous_and_keeps_the_reason() {
    let got = submit_answering(json!({"code": "fail_to_fetch_task",
        "message": "{\"code\":\"InternalError\",\"message\":\"upstream busy\"}", "data": null}))
    .await;
    match got {
        Err(ApiError::Ambiguous { message }) => {
            assert!(
                message.ends_with("no task id: InternalError: upstream busy"),
                "{message}"
            )
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
}

#[test]
fn a_bad_base_url_says_what_to_use() {
    let err = shotlist::api::Client::new(shotlist::api::ClientConfig {
        base_url: "api.gravitex.ai".into(),
        api_key: shotlist::api::ApiKey::new(KEY),
        timeout: std::time::Duration::from_secs(1),
    })
    .expect_err("not a URL");
    let text = err.to_string();
    assert!(
        text.starts_with("refused: base URL \"api.gravitex.ai\""),
        "{text}"
    );
    assert!(text.contains("https://api.gravitex.ai"), "{text}");
}

#[tokio::test]
async fn an_api_redirect_is_not_followed_and_names_the_target() {
    let fake = Fake::always(|| super::fake::Reply {
        status: 301,
        headers: vec![(
            "location",
            "https://api.gravitex.ai/v1/video/generations".into(),
        )],
        body: vec![],
    })
    .await;
    let got = fake.client().submit(&body()).await;
    match got {
        Err(ApiError::Permanent {
            status: 301,
            message,
        }) => {
            assert!(
                message.contains("redirects to https://api.gravitex.ai/v1/video/generations"),
                "{message}"
            );
            assert!(message.contains("base URL"), "{message}");
        }
        other => panic!("expected Permanent 301, got {other:?}"),
    }
    assert_eq!(fake.seen().len(), 1, "the redirect was not followed");
}
