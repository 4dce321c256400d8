//! Query: flat, envelope and legacy shapes, every status word, URL fallbacks, failure reasons,
//! and the task id as one percent-encoded path segment.

use serde_json::{Value, json};
use shotlist::api::{ApiError, TaskExtras, TaskState, TaskStatus};

use super::fake::{Fake, KEY, json, raw};

async fn query_answering(answer: Value) -> Result<TaskState, ApiError> {
    let fake = Fake::always(move || json(200, answer.clone())).await;
    fake.client().query("task-1").await
}

#[tokio::test]
async fn gets_the_task_path_with_bearer_auth() {
    let fake = Fake::always(|| json(200, json!({"task_id": "task-1", "status": "queued"}))).await;
    let state = fake.client().query("task-1").await.expect("state");
    assert_eq!(state.status, TaskStatus::Waiting);
    let seen = fake.seen();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/v1/video/generations/task-1");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[tokio::test]
async fn odd_task_ids_are_one_encoded_segment() {
    let fake = Fake::always(|| json(200, json!({"status": "queued"}))).await;
    let client = fake.client();
    let ids = [
        ("a/b c?d#e%f", "/v1/video/generations/a%2Fb%20c%3Fd%23e%25f"),
        ("视频1", "/v1/video/generations/%E8%A7%86%E9%A2%911"),
        ("video_x-1.2~3", "/v1/video/generations/video_x-1.2~3"),
        ("..x", "/v1/video/generations/..x"),
    ];
    for (id, _) in ids {
        client
            .query(id)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    let paths: Vec<_> = fake.seen().into_iter().map(|s| s.path).collect();
    let want: Vec<_> = ids.iter().map(|(_, p)| p.to_string()).collect();
    assert_eq!(paths, want);
}

#[tokio::test]
async fn dot_segment_and_empty_ids_are_refused_without_a_request() {
    let fake = Fake::always(|| json(200, json!({"status": "queued"}))).await;
    let client = fake.client();
    for id in ["", ".", ".."] {
        let got = client.query(id).await;
        assert!(
            matches!(got, Err(ApiError::Permanent { status: 0, .. })),
            "{id:?}: {got:?}"
        );
    }
    assert!(fake.seen().is_empty(), "nothing sent");
}

#[tokio::test]
async fn flat_shape_each_documented_status() {
    let cases = [
        ("queued", TaskStatus::Waiting),
        ("in_progress", TaskStatus::Running),
        ("succeeded", TaskStatus::Succeeded),
        ("failed", TaskStatus::Failed),
    ];
    for (word, want) in cases {
        let s = query_answering(json!({"task_id": "t", "status": word, "format": "mp4",
            "url": "https://cdn.example/v.mp4"}))
        .await
        .expect(word);
        assert_eq!(s.status, want, "{word}");
    }
}

#[tokio::test]
async fn flat_success_has_url_and_no_error() {
    let s = query_answering(
        json!({"task_id": "t", "status": "succeeded", "format": "mp4",
        "url": "https://cdn.example/v.mp4"}),
    )
    .await
    .unwrap();
    assert_eq!(
        s,
        TaskState {
            status: TaskStatus::Succeeded,
            url: Some("https://cdn.example/v.mp4".into()),
            error: None,
            progress: None,
            extras: TaskExtras::default(),
        }
    );
}

#[tokio::test]
async fn flat_failure_carries_the_message() {
    let s = query_answering(json!({"task_id": "t", "status": "failed",
        "error": {"code": 1301, "message": "Output video may contain inappropriate content"}}))
    .await
    .unwrap();
    assert_eq!(s.status, TaskStatus::Failed);
    assert_eq!(
        s.error.as_deref(),
        Some("Output video may contain inappropriate content")
    );
    assert_eq!(s.url, None);
}

#[tokio::test]
async fn envelope_completed_with_video_url_and_progress() {
    let s = query_answering(json!({"code": "success", "message": "", "data": {
        "id": "i", "task_id": "t", "status": "completed", "progress": 100,
        "video_url": "https://cdn.example/env.mp4"}}))
    .await
    .unwrap();
    assert_eq!(s.status, TaskStatus::Succeeded);
    assert_eq!(s.url.as_deref(), Some("https://cdn.example/env.mp4"));
    assert_eq!(s.progress, Some(100));
}

#[tokio::test]
async fn envelope_prefers_url_over_video_url() {
    let s = query_answering(json!({"code": "success", "data": {"status": "completed",
        "url": "https://a/1.mp4", "video_url": "https://b/2.mp4"}}))
    .await
    .unwrap();
    assert_eq!(s.url.as_deref(), Some("https://a/1.mp4"));
}

#[tokio::test]
async fn envelope_failure_with_string_code() {
    let s = query_answering(json!({"code": "success", "data": {"status": "failed",
        "error": {"code": "DataInspectionFailed", "message": "Input data may contain inappropriate content."}}}))
    .await
    .unwrap();
    assert_eq!(s.status, TaskStatus::Failed);
    assert_eq!(
        s.error.as_deref(),
        Some("DataInspectionFailed: Input data may contain inappropriate content.")
    );
}

#[tokio::test]
async fn envelope_unknown_is_not_terminal() {
    let s =
        query_answering(json!({"code": "success", "data": {"status": "unknown", "progress": 0}}))
            .await
            .unwrap();
    assert_eq!(s.status, TaskStatus::Unknown);
}

#[tokio::test]
async fn result_url_is_the_third_fallback() {
    let s =
        query_answering(json!({"status": "succeeded", "url": "", "result_url": "https://c/r.mp4"}))
            .await
            .unwrap();
    assert_eq!(s.url.as_deref(), Some("https://c/r.mp4"));
}

#[tokio::test]
async fn legacy_in_progress_with_percent_progress() {
    let s = query_answering(json!({"code": "success", "data": {"task_id": "t",
        "status": "IN_PROGRESS", "fail_reason": "", "progress": "30%"}}))
    .await
    .unwrap();
    assert_eq!(s.status, TaskStatus::Running);
    assert_eq!(s.progress, Some(30));
    assert_eq!(s.url, None);
}

#[tokio::test]
async fn legacy_success_url_is_in_fail_reason() {
    let s = query_answering(json!({"code": "success", "data": {"task_id": "t",
        "status": "SUCCESS", "fail_reason": "https://dashscope.example/out.mp4?sig=1", "progress": "100%"}}))
    .await
    .unwrap();
    assert_eq!(s.status, TaskStatus::Succeeded);
    assert_eq!(
        s.url.as_deref(),
        Some("https://dashscope.example/out.mp4?sig=1")
    );
    assert_eq!(s.error, None);
}

#[tokio::test]
async fn legacy_failure_reason_is_the_error_not_a_url() {
    let s = query_answering(json!({"code": "success", "data": {"task_id": "t",
        "status": "FAILURE", "fail_reason": "task timed out upstream", "progress": "100%"}}))
    .await
    .unwrap();
    assert_eq!(s.status, TaskStatus::Failed);
    assert_eq!(s.error.as_deref(), Some("task timed out upstream"));
    assert_eq!(s.url, None);
}

#[tokio::test]
async fn legacy_failure_with_nested_json_reason_is_unwrapped() {
    let nested = json!({"request_id": "r", "code": "InvalidParameter", "message": "first_frame is too small"}).to_string();
    let s = query_answering(
        json!({"code": "success", "data": {"status": "FAILURE", "fail_reason": nested}}),
    )
    .await
    .unwrap();
    assert_eq!(
        s.error.as_deref(),
        Some("InvalidParameter: first_frame is too small")
    );
}

#[tokio::test]
async fn every_status_word_case_insensitively_over_http() {
    // The fake answers with the task id as the status word, in each shape.
    let fake = Fake::start(|seen| {
        let word = seen.path.rsplit('/').next().unwrap_or_default().to_string();
        let body = match word.len() % 3 {
            0 => json!({"task_id": "t", "status": word}),
            1 => json!({"code": "success", "message": "", "data": {"task_id": "t", "status": word}}),
            _ => json!({"code": "success", "data": {"task_id": "t", "status": word, "progress": "10%"}}),
        };
        json(200, body)
    })
    .await;
    let client = fake.client();
    let cases = [
        ("submitted", TaskStatus::Waiting),
        ("QUEUED", TaskStatus::Waiting),
        ("Pending", TaskStatus::Waiting),
        ("NOT_START", TaskStatus::Waiting),
        ("in_progress", TaskStatus::Running),
        ("Processing", TaskStatus::Running),
        ("RUNNING", TaskStatus::Running),
        ("succeeded", TaskStatus::Succeeded),
        ("COMPLETED", TaskStatus::Succeeded),
        ("Success", TaskStatus::Succeeded),
        ("failed", TaskStatus::Failed),
        ("FAILURE", TaskStatus::Failed),
        ("canceled", TaskStatus::Failed),
        ("Cancelled", TaskStatus::Failed),
        ("UNKNOWN", TaskStatus::Unknown),
        ("rebooting", TaskStatus::Unknown),
    ];
    for (word, want) in cases {
        let got = client
            .query(word)
            .await
            .unwrap_or_else(|e| panic!("{word}: {e}"));
        assert_eq!(got.status, want, "{word}");
    }
}

#[tokio::test]
async fn unparseable_200_is_transient() {
    let fake = Fake::always(|| raw(200, "not json")).await;
    let got = fake.client().query("t").await;
    assert!(
        matches!(
            got,
            Err(ApiError::Transient {
                status: Some(200),
                ..
            })
        ),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_200_without_status_is_transient() {
    let got = query_answering(json!({"task_id": "t", "format": "mp4"})).await;
    assert!(matches!(got, Err(ApiError::Transient { .. })), "{got:?}");
}

#[tokio::test]
async fn queries_reuse_one_connection() {
    let fake = Fake::always(|| json(200, json!({"status": "queued"}))).await;
    let client = fake.client();
    let clone = client.clone();
    client.query("a").await.unwrap();
    clone.query("b").await.unwrap();
    client.query("c").await.unwrap();
    let peers: Vec<_> = fake.seen().into_iter().map(|s| s.peer).collect();
    assert_eq!(peers.len(), 3);
    assert!(
        peers.iter().all(|p| *p == peers[0]),
        "one pooled connection: {peers:?}"
    );
}
