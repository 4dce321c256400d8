//! Non-200 answers: each error-body shape and each status class, on submit and on query.

use std::time::Duration;

use serde_json::json;
use shotlist::api::ApiError;

use super::fake::{Fake, Reply, json, raw};

async fn submit_err(reply: impl Fn() -> Reply + Send + Sync + 'static) -> ApiError {
    let fake = Fake::always(reply).await;
    let got = fake.client().submit(&json!({"model": "m"})).await;
    assert_eq!(fake.seen().len(), 1, "the client never retries by itself");
    got.expect_err("an error")
}

#[tokio::test]
async fn nested_fail_to_fetch_task_shows_alibaba_reason() {
    let inner = json!({"request_id": "9b1e", "code": "InvalidParameter",
        "message": "The duration must be between 2 and 15 seconds."})
    .to_string();
    let err = submit_err(move || {
        json(
            400,
            json!({"code": "fail_to_fetch_task", "message": inner, "data": null}),
        )
    })
    .await;
    match &err {
        ApiError::Permanent {
            status: 400,
            message,
        } => assert_eq!(
            message,
            "InvalidParameter: The duration must be between 2 and 15 seconds."
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "refused (HTTP 400): InvalidParameter: The duration must be between 2 and 15 seconds."
    );
}

#[tokio::test]
async fn task_not_exist_on_query_is_permanent() {
    let fake = Fake::always(|| {
        json(
            400,
            json!({"code": "task_not_exist", "message": "task_not_exist", "data": null}),
        )
    })
    .await;
    let err = fake.client().query("gone").await.expect_err("error");
    assert!(
        matches!(&err, ApiError::Permanent { status: 400, message } if message == "task_not_exist"),
        "{err:?}"
    );
}

#[tokio::test]
async fn openai_style_error_object() {
    let err = submit_err(|| json(400, json!({"error": {"message": "model wan9 not found", "type": "invalid_request_error", "code": "model_not_found"}}))).await;
    assert!(
        matches!(&err, ApiError::Permanent { status: 400, message } if message == "model_not_found: model wan9 not found"),
        "{err:?}"
    );
}

#[tokio::test]
async fn empty_400_body_names_the_status() {
    let err = submit_err(|| raw(400, "")).await;
    assert!(
        matches!(&err, ApiError::Permanent { status: 400, message } if message.contains("Bad Request")),
        "{err:?}"
    );
}

#[tokio::test]
async fn empty_429_without_retry_after() {
    let err = submit_err(|| raw(429, "")).await;
    assert!(
        matches!(err, ApiError::RateLimited { retry_after: None }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "rate limited (HTTP 429)");
}

#[tokio::test]
async fn empty_429_with_retry_after() {
    let err = submit_err(|| Reply {
        status: 429,
        headers: vec![("retry-after", "12".into())],
        body: vec![],
    })
    .await;
    assert!(
        matches!(err, ApiError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(12)),
        "{err:?}"
    );
}

#[tokio::test]
async fn json_429_on_query() {
    let fake = Fake::always(|| json(429, json!({"error": {"message": "Throttling.RateQuota", "type": "rate_limit", "code": "429"}}))).await;
    let err = fake.client().query("t").await.expect_err("error");
    assert!(
        matches!(err, ApiError::RateLimited { retry_after: None }),
        "{err:?}"
    );
}

#[tokio::test]
async fn unauthorised_and_forbidden_are_auth() {
    let err = submit_err(|| json(401, json!({"error": {"message": "Invalid token", "type": "new_api_error", "code": "invalid_api_key"}}))).await;
    assert!(
        matches!(&err, ApiError::Auth { status: 401, message } if message == "invalid_api_key: Invalid token"),
        "{err:?}"
    );
    let err = submit_err(|| {
        json(
            403,
            json!({"error": {"message": "model not allowed for this key", "type": "x"}}),
        )
    })
    .await;
    assert!(
        matches!(&err, ApiError::Auth { status: 403, message } if message == "model not allowed for this key"),
        "{err:?}"
    );
    let fake = Fake::always(|| raw(401, "")).await;
    let err = fake.client().query("t").await.expect_err("error");
    assert!(matches!(err, ApiError::Auth { status: 401, .. }), "{err:?}");
}

#[tokio::test]
async fn server_errors_are_transient_with_their_status() {
    for status in [500u16, 502, 503, 504] {
        let err = submit_err(move || raw(status, "<html><h1>upstream error</h1></html>")).await;
        assert!(
            matches!(&err, ApiError::Transient { status: Some(s), .. } if *s == status),
            "{status}: {err:?}"
        );
        assert!(err.to_string().contains(&format!("HTTP {status}")), "{err}");
    }
}

#[tokio::test]
async fn gateway_error_envelope_on_502_keeps_its_reason() {
    let err = submit_err(|| json(502, json!({"code": "bad_response_status_code", "message": "upstream returned 500", "data": null}))).await;
    assert!(
        matches!(&err, ApiError::Transient { status: Some(502), message } if message == "bad_response_status_code: upstream returned 500"),
        "{err:?}"
    );
}

/// A server that does not implement the submit's method there (501) is not the API: the base URL
/// is wrong and nothing was created, as for a 404.
#[tokio::test]
async fn a_501_on_submit_is_a_wrong_endpoint() {
    let err = submit_err(|| raw(501, b"Unsupported method ('POST')".to_vec())).await;
    assert!(
        matches!(&err, ApiError::Endpoint { status: 501, message } if message.contains("check the base URL")),
        "{err:?}"
    );
}
