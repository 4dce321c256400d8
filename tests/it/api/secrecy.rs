//! The API key appears in no error, Display or Debug, even when a provider echoes it back.

use std::time::Duration;

use serde_json::json;
use shotlist::api::{ApiError, ApiKey, ClientConfig};

use super::fake::{Fake, KEY, Misbehave, Reply, client_for, json, misbehaving, raw, refused};

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(KEY), "{what} leaks the key: {text}");
    assert!(
        !text.contains("DO-NOT-LEAK"),
        "{what} leaks part of the key: {text}"
    );
}

#[tokio::test]
async fn no_output_of_any_error_or_client_contains_the_key() {
    // A provider that echoes the Authorization header back in every error body.
    let echo = Fake::start(|seen| {
        let auth = seen.header("authorization").unwrap_or_default().to_string();
        let status = match seen.path.rsplit('/').next().unwrap_or_default() {
            "403" => 403,
            "400" => 400,
            "502" => 502,
            "nested" => return json(400, json!({"code": "fail_to_fetch_task",
                "message": json!({"code": "InvalidParameter", "message": format!("bad key {auth}")}).to_string(), "data": null})),
            "plain" => return raw(400, format!("denied for {auth}")),
            _ => 401,
        };
        json(status, json!({"error": {"message": format!("invalid token: {auth}"), "type": "x", "code": auth}}))
    })
    .await;
    let client = echo.client();
    let mut errors: Vec<ApiError> = Vec::new();
    errors.push(
        client
            .submit(&json!({"model": "m"}))
            .await
            .expect_err("401"),
    );
    for id in ["403", "400", "502", "nested", "plain", "401"] {
        errors.push(client.query(id).await.expect_err(id));
    }
    // Every request did carry the key, so the echo had something to leak.
    assert!(
        echo.seen()
            .iter()
            .all(|s| s.header("authorization").is_some_and(|a| a.contains(KEY)))
    );

    let dir = tempfile::tempdir().unwrap();
    errors.push(
        client
            .download(
                &format!("{}/expired", Fake::always(|| raw(403, "")).await.base),
                &dir.path().join("v"),
            )
            .await
            .expect_err("gone"),
    );
    errors.push(
        client_for(&refused().await, Duration::from_secs(1))
            .submit(&json!({}))
            .await
            .expect_err("refused"),
    );
    for how in [Misbehave::HangUp, Misbehave::Silent] {
        let (base, _) = misbehaving(how).await;
        errors.push(
            client_for(&base, Duration::from_secs(1))
                .submit(&json!({}))
                .await
                .expect_err("lost"),
        );
    }
    assert!(errors.len() >= 10);
    for e in &errors {
        assert_clean("Display", &e.to_string());
        assert_clean("Debug", &format!("{e:?}"));
    }
    // The echoed key was replaced, not the whole message dropped.
    assert!(
        errors[0].to_string().contains("invalid token: Bearer ***"),
        "{}",
        errors[0]
    );

    assert_clean("Client Debug", &format!("{client:?}"));
    let config = ClientConfig {
        base_url: echo.base.clone(),
        api_key: ApiKey::new(KEY),
        timeout: Duration::from_secs(1),
    };
    assert_clean("ClientConfig Debug", &format!("{config:?}"));
    assert_clean("ApiKey Display", &ApiKey::new(KEY).to_string());
}

#[tokio::test]
async fn a_bad_base_url_is_refused_at_construction_without_the_key() {
    for base in [
        "not a url",
        "ftp://example.com",
        "",
        "https://h/?k=v",
        "mailto:x@y",
    ] {
        let got = shotlist::api::Client::new(ClientConfig {
            base_url: base.into(),
            api_key: ApiKey::new(KEY),
            timeout: Duration::from_secs(1),
        });
        match got {
            Err(e @ ApiError::Permanent { status: 0, .. }) => {
                assert_clean("setup error", &format!("{e} {e:?}"))
            }
            other => panic!("{base:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_key_with_a_trailing_newline_is_trimmed_and_one_with_a_control_character_refused() {
    let fake = super::fake::Fake::always(|| json(200, json!({"task_id": "t"}))).await;
    let client = shotlist::api::Client::new(ClientConfig {
        base_url: fake.base.clone(),
        api_key: ApiKey::new(format!("{KEY}\n")),
        timeout: Duration::from_secs(5),
    })
    .expect("client");
    client.submit(&json!({})).await.expect("accepted");
    assert_eq!(
        fake.seen()[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    let err = shotlist::api::Client::new(ClientConfig {
        base_url: fake.base.clone(),
        api_key: ApiKey::new(format!("sk-ab\u{7}{KEY}")),
        timeout: Duration::from_secs(5),
    })
    .expect_err("refused");
    assert!(
        matches!(&err, ApiError::Permanent { status: 0, message } if message.contains("API key")),
        "{err:?}"
    );
    assert_clean("key error", &format!("{err} {err:?}"));
}

#[tokio::test]
async fn a_task_answer_that_echoes_the_key_is_scrubbed_before_it_leaves_the_client() {
    // A provider that puts the Authorization header into every field a task answer has.
    let echo = Fake::start(|seen| {
        let auth = seen.header("authorization").unwrap_or_default().to_string();
        let key = auth.trim_start_matches("Bearer ");
        match seen.path.rsplit('/').next().unwrap_or_default() {
            "generations" => json(200, json!({"task_id": format!("task-{key}")})),
            "failed" => json(
                200,
                json!({"task_id": "failed", "status": "failed",
                    "error": {"code": "InvalidApiKey", "message": format!("request with {auth} refused")}}),
            ),
            "legacy" => json(
                200,
                json!({"code": "success", "data": {"task_id": "legacy", "status": "FAILURE",
                    "fail_reason": json!({"code": "Bad", "message": format!("key {key}")}).to_string()}}),
            ),
            "succeeded" => json(
                200,
                json!({"task_id": "succeeded", "status": "succeeded",
                    "url": format!("https://cdn.example/v.mp4?token={key}")}),
            ),
            _ => Reply {
                status: 307,
                headers: vec![("location", format!("https://elsewhere.example/?k={key}"))],
                body: vec![],
            },
        }
    })
    .await;
    let client = echo.client();

    let failed = client.query("failed").await.expect("a failed task");
    assert_eq!(
        failed.error.as_deref(),
        Some("InvalidApiKey: request with Bearer *** refused")
    );
    let legacy = client.query("legacy").await.expect("a failed task");
    assert_eq!(legacy.error.as_deref(), Some("Bad: key ***"));
    let succeeded = client.query("succeeded").await.expect("a result");
    assert_eq!(
        succeeded.url.as_deref(),
        Some("https://cdn.example/v.mp4?token=***")
    );
    let redirected = client.query("moved").await.expect_err("a redirect");
    assert!(redirected.to_string().contains("k=***"), "{redirected}");
    let submitted = client.submit(&json!({})).await.expect_err("key in the id");
    assert!(
        matches!(&submitted, ApiError::Ambiguous { message } if message.contains("task id contains the API key")),
        "{submitted:?}"
    );
    for text in [
        format!("{failed:?} {legacy:?} {succeeded:?}"),
        format!("{redirected} {redirected:?}"),
        format!("{submitted} {submitted:?}"),
    ] {
        assert_clean("task answer", &text);
    }
}
