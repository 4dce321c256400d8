//! Transport failures: whether the request may have reached the provider decides between a
//! safe retry (transient) and "unknown" (ambiguous) for a submit. Queries are reads: always
//! transient.

use std::time::Duration;

use serde_json::json;
use shotlist::api::ApiError;

use super::fake::{Misbehave, client_for, misbehaving, refused};

const SHORT: Duration = Duration::from_secs(1);

#[tokio::test]
async fn connection_refused_is_unreachable_on_submit_and_transient_on_query() {
    let base = refused().await;
    let client = client_for(&base, SHORT);
    let err = client
        .submit(&json!({"model": "m"}))
        .await
        .expect_err("error");
    assert!(matches!(err, ApiError::Unreachable { .. }), "{err:?}");
    let err = client.query("t").await.expect_err("error");
    assert!(
        matches!(err, ApiError::Transient { status: None, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn hang_up_after_the_submit_was_read_is_ambiguous() {
    let (base, count) = misbehaving(Misbehave::HangUp).await;
    let err = client_for(&base, SHORT)
        .submit(&json!({"model": "m", "prompt": "p"}))
        .await
        .expect_err("error");
    assert!(matches!(err, ApiError::Ambiguous { .. }), "{err:?}");
    assert_eq!(
        *count.lock().unwrap(),
        1,
        "the server read exactly one whole request"
    );
}

#[tokio::test]
async fn no_answer_within_the_timeout_is_ambiguous_on_submit() {
    let (base, count) = misbehaving(Misbehave::Silent).await;
    let started = std::time::Instant::now();
    let err = client_for(&base, SHORT)
        .submit(&json!({"model": "m"}))
        .await
        .expect_err("error");
    assert!(
        matches!(&err, ApiError::Ambiguous { message } if message.contains("timed out")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout applies"
    );
    assert_eq!(*count.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_200_that_breaks_off_mid_body_is_ambiguous_on_submit() {
    let (base, _) = misbehaving(Misbehave::Truncated(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{\"task_id\":\"vid",
    ))
    .await;
    let err = client_for(&base, SHORT)
        .submit(&json!({"model": "m"}))
        .await
        .expect_err("error");
    assert!(matches!(err, ApiError::Ambiguous { .. }), "{err:?}");
}

#[tokio::test]
async fn the_same_failures_on_a_query_are_transient() {
    for how in [
        Misbehave::HangUp,
        Misbehave::Silent,
        Misbehave::Truncated(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{\"status\""),
    ] {
        let (base, _) = misbehaving(how).await;
        let err = client_for(&base, SHORT)
            .query("t")
            .await
            .expect_err("error");
        assert!(
            matches!(err, ApiError::Transient { status: None, .. }),
            "{err:?}"
        );
    }
}
