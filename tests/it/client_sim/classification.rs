//! Every failure the simulator can produce, as the client classifies it: the class decides the
//! executor's policy (retry, stop, mark unknown), so each one is checked against what the
//! simulator says really happened, above all whether a paid task was created.

use std::time::Duration;

use serde_json::{Value, json};
use shotlist::api::{ApiError, TaskStatus};
use shotlist::sim::{FAIL_MARKER, Shape, SimConfig};

use super::bodies::{i2v_first_last_frame, r2v_references, t2v_multishot};
use super::{
    KEY, client, client_for, config, count, entries, poll_to_end, run_to_success, start, stats,
};

/// A task id of the simulator's form that no task has.
const NO_SUCH_TASK: &str = "video_00000000deadbeefdeadbeef";

fn t2v(prompt: &str) -> Value {
    let mut body = t2v_multishot();
    body["prompt"] = json!(prompt);
    body["metadata"]["input"]["prompt"] = json!(prompt);
    body
}

fn assert_no_key(e: &ApiError) {
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(KEY), "the key leaked: {text}");
        assert!(
            !text.contains("DO-NOT-LEAK"),
            "part of the key leaked: {text}"
        );
    }
}

#[tokio::test]
async fn a_wrong_key_is_auth_and_the_key_is_never_shown() {
    let sim = start(SimConfig {
        key: Some("sk-the-right-one".into()),
        ..config(100)
    })
    .await;
    let client = client(&sim);

    let e = client.submit(&t2v_multishot()).await.unwrap_err();
    assert!(matches!(&e, ApiError::Auth { status: 401, .. }), "{e:?}");
    assert!(e.to_string().contains("Invalid token"), "{e}");
    assert_no_key(&e);
    let e = client.query(NO_SUCH_TASK).await.unwrap_err();
    assert!(matches!(&e, ApiError::Auth { status: 401, .. }), "{e:?}");
    assert_no_key(&e);
    assert!(!format!("{client:?}").contains(KEY));

    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], 0);
    assert_eq!(count(&stats, "submit", "401"), 1);
    assert_eq!(count(&stats, "query", "401"), 1);

    // The right key, as pasted from a file with its newline, is accepted.
    let right = client_for(&sim.base_url(), "sk-the-right-one\n");
    run_to_success(&right, &t2v_multishot()).await;
    assert_eq!(super::stats(&sim).await["tasks_created"], 1);
}

#[tokio::test]
async fn over_the_concurrency_limit_is_rate_limited_and_creates_no_task() {
    let sim = start(SimConfig {
        rate_limit: Some(2),
        ..config(1500)
    })
    .await;
    let client = client(&sim);
    let first = client.submit(&t2v("one")).await.expect("first fits");
    client.submit(&t2v("two")).await.expect("second fits");

    let e = client.submit(&t2v("three")).await.unwrap_err();
    assert!(
        matches!(e, ApiError::RateLimited { retry_after: None }),
        "{e:?}"
    );
    let stats_now = stats(&sim).await;
    assert_eq!(stats_now["tasks_created"], 2, "a 429 creates no task");
    assert_eq!(count(&stats_now, "submit", "429"), 1);
    let prompts: Vec<&str> = stats_now["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts, ["one", "two"]);

    // The limit counts tasks per key: another key still gets through.
    let other = client_for(&sim.base_url(), "sk-another-account");
    other.submit(&t2v("other key")).await.expect("other key");

    // Once a task of this key has finished there is room again.
    let polled = poll_to_end(&client, &first.task_id).await;
    assert_eq!(polled.last.status, TaskStatus::Succeeded);
    client
        .submit(&t2v("three again"))
        .await
        .expect("room again");
    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], 4);
    assert_eq!(count(&stats, "submit", "429"), 1);
}

#[tokio::test]
async fn random_429s_are_rate_limited_with_or_without_retry_after() {
    let sim = start(SimConfig {
        p429: 1.0,
        seed: 7,
        ..config(100)
    })
    .await;
    let client = client(&sim);
    let mut hints = Vec::new();
    for n in 0..16 {
        let e = client.submit(&t2v(&format!("try {n}"))).await.unwrap_err();
        assert_no_key(&e);
        match e {
            ApiError::RateLimited { retry_after } => hints.push(retry_after),
            other => panic!("try {n}: {other:?}"),
        }
    }
    assert!(hints.contains(&Some(Duration::from_secs(1))), "{hints:?}");
    assert!(hints.contains(&None), "{hints:?}");
    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], 0);
    assert_eq!(count(&stats, "submit", "429"), 16);
}

#[tokio::test]
async fn bad_gateway_is_transient_on_submit_and_query_and_creates_no_task() {
    let sim = start(SimConfig {
        p502: 1.0,
        seed: 3,
        ..config(100)
    })
    .await;
    let client = client(&sim);
    let mut messages = Vec::new();
    for n in 0..16 {
        let e = client.submit(&t2v(&format!("try {n}"))).await.unwrap_err();
        assert_no_key(&e);
        match e {
            ApiError::Transient {
                status: Some(502),
                message,
            } => messages.push(message),
            other => panic!("try {n}: {other:?}"),
        }
    }
    let e = client.query(NO_SUCH_TASK).await.unwrap_err();
    assert!(
        matches!(
            e,
            ApiError::Transient {
                status: Some(502),
                ..
            }
        ),
        "{e:?}"
    );
    // Both 502 bodies: the nginx HTML page (no reason) and the gateway's JSON error.
    assert!(
        messages
            .iter()
            .any(|m| m == "Bad Gateway (no reason given)"),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("bad response status code 502")),
        "{messages:?}"
    );
    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], 0);
    assert_eq!(count(&stats, "submit", "502"), 16);
    assert_eq!(count(&stats, "query", "502"), 1);
}

#[tokio::test]
async fn a_lost_submit_answer_is_ambiguous_although_the_task_was_created() {
    let sim = start(SimConfig {
        p_lost: 1.0,
        ..config(100)
    })
    .await;
    let client = client(&sim);
    let e = client.submit(&t2v("lost answer")).await.unwrap_err();
    assert!(matches!(e, ApiError::Ambiguous { .. }), "{e:?}");
    assert_no_key(&e);

    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], 1, "the paid task exists");
    assert_eq!(stats["lost_responses"], 1);
    assert_eq!(count(&stats, "submit", "lost"), 1);
    let task = &stats["tasks"][0];
    assert_eq!(task["prompt"], "lost answer");

    // Only the submit answer was lost: the task itself runs and can be fetched by its id.
    let id = task["task_id"].as_str().unwrap();
    let polled = poll_to_end(&client, id).await;
    assert_eq!(polled.last.status, TaskStatus::Succeeded, "{polled:?}");
}

#[tokio::test]
async fn broken_bodies_are_permanent_and_name_the_rule() {
    let sim = start(config(100)).await;
    let client = client(&sim);

    let mut ratio_on_i2v = i2v_first_last_frame();
    ratio_on_i2v["metadata"]["parameters"]["ratio"] = json!("16:9");
    let mut duration_mismatch = t2v_multishot();
    duration_mismatch["duration"] = json!(5);
    let mut seed_out_of_range = t2v_multishot();
    seed_out_of_range["metadata"]["parameters"]["seed"] = json!(2_147_483_648u64);
    let mut unknown_field = t2v_multishot();
    unknown_field["size"] = json!("1280*720");
    let mut too_long_for_video_refs = r2v_references();
    too_long_for_video_refs["duration"] = json!(15);
    too_long_for_video_refs["metadata"]["parameters"]["duration"] = json!(15);
    let mut prompt_names_missing_image = r2v_references();
    let prompt = "图5 walks past 视频1";
    prompt_names_missing_image["prompt"] = json!(prompt);
    prompt_names_missing_image["metadata"]["input"]["prompt"] = json!(prompt);

    let cases = [
        ("ratio_for_i2v", ratio_on_i2v),
        ("duration_mismatch", duration_mismatch),
        ("seed", seed_out_of_range),
        ("unknown_field", unknown_field),
        ("duration_range", too_long_for_video_refs),
        ("reference_index", prompt_names_missing_image),
    ];
    for (rule, body) in &cases {
        let e = client.submit(body).await.unwrap_err();
        let ApiError::Permanent { status, message } = &e else {
            panic!("{rule}: {e:?}");
        };
        assert_eq!(*status, 400, "{rule}");
        assert!(
            message.contains(&format!("{rule}: ")),
            "{rule}: the message does not name the rule: {message}"
        );
        assert!(
            !message.starts_with('{'),
            "{rule}: nested JSON not unwrapped: {message}"
        );
        assert!(e.to_string().contains("HTTP 400"), "{e}");
        assert_no_key(&e);
    }
    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], 0);
    assert_eq!(count(&stats, "submit", "400"), cases.len() as u64);
}

#[tokio::test]
async fn the_fail_marker_ends_failed_with_a_moderation_reason_in_every_shape() {
    for shape in [Shape::Doc, Shape::Envelope, Shape::Legacy] {
        let sim = start(SimConfig {
            shape,
            ..config(150)
        })
        .await;
        let client = client(&sim);
        let id = client
            .submit(&t2v(&format!("a forbidden scene {FAIL_MARKER}")))
            .await
            .unwrap_or_else(|e| panic!("{shape:?}: {e}"))
            .task_id;
        let polled = poll_to_end(&client, &id).await;
        let last = &polled.last;
        assert_eq!(last.status, TaskStatus::Failed, "{shape:?}: {polled:?}");
        assert_eq!(last.url, None, "{shape:?}");
        let error = last.error.as_deref().expect("a reason");
        assert!(error.contains("DataInspectionFailed"), "{shape:?}: {error}");
        assert!(
            error.contains("inappropriate content"),
            "{shape:?}: {error}"
        );
        assert!(!error.starts_with('{'), "{shape:?}: {error}");

        let stats = stats(&sim).await;
        assert_eq!(stats["tasks_created"], 1, "{shape:?}");
        assert_eq!(stats["by_status"]["failed"], 1, "{shape:?}");
        assert_eq!(stats["by_status"]["succeeded"], 0, "{shape:?}");
    }
}

#[tokio::test]
async fn a_random_generation_failure_ends_failed_with_its_reason() {
    let sim = start(SimConfig {
        fail_rate: 1.0,
        shape: Shape::Envelope,
        ..config(100)
    })
    .await;
    let client = client(&sim);
    let id = client.submit(&t2v("unlucky")).await.unwrap().task_id;
    let polled = poll_to_end(&client, &id).await;
    assert_eq!(polled.last.status, TaskStatus::Failed);
    let error = polled.last.error.as_deref().expect("a reason");
    assert!(error.contains("InternalError.Algo"), "{error}");
    assert_eq!(stats(&sim).await["by_status"]["failed"], 1);
}

#[tokio::test]
async fn an_expired_result_url_is_gone_and_leaves_no_file() {
    let sim = start(SimConfig {
        url_ttl: Duration::ZERO,
        ..config(100)
    })
    .await;
    let client = client(&sim);
    let (_, url) = run_to_success(&client, &t2v_multishot()).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("clip.mp4");
    let e = client.download(&url, &dest).await.unwrap_err();
    assert!(matches!(e, ApiError::Gone { status: 403 }), "{e:?}");
    assert!(!dest.exists());
    assert_eq!(entries(dir.path()), Vec::<String>::new(), "no partial file");
    let stats = stats(&sim).await;
    assert_eq!(count(&stats, "download", "403"), 1);
    assert_eq!(count(&stats, "download", "200"), 0);
}

#[tokio::test]
async fn a_result_that_is_not_ready_is_not_found_and_leaves_no_file() {
    let sim = start(config(5000)).await;
    let client = client(&sim);
    let id = client.submit(&t2v_multishot()).await.unwrap().task_id;
    let early = format!("{}/files/{id}.mp4", sim.base_url());
    let dir = tempfile::tempdir().unwrap();
    let e = client
        .download(&early, &dir.path().join("clip.mp4"))
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Gone { status: 404 }), "{e:?}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
    assert_eq!(count(&stats(&sim).await, "download", "404"), 1);
}

#[tokio::test]
async fn an_unknown_task_or_another_keys_task_is_permanent() {
    let sim = start(config(100)).await;
    let mine = client(&sim);
    let id = mine.submit(&t2v_multishot()).await.unwrap().task_id;

    let e = mine.query(NO_SUCH_TASK).await.unwrap_err();
    assert!(
        matches!(&e, ApiError::Permanent { status: 400, message } if message.contains("task_not_exist")),
        "{e:?}"
    );
    let theirs = client_for(&sim.base_url(), "sk-someone-else");
    let e = theirs.query(&id).await.unwrap_err();
    assert!(
        matches!(&e, ApiError::Permanent { status: 400, message } if message.contains("task_not_exist")),
        "{e:?}"
    );
    // Odd ids stay one path segment: they reach the query route and are simply unknown.
    for odd in ["video_../x", "a/b?c#d", "视频 1", "%2F"] {
        let e = mine.query(odd).await.unwrap_err();
        assert!(
            matches!(&e, ApiError::Permanent { status: 400, message } if message.contains("task_not_exist")),
            "{odd:?}: {e:?}"
        );
    }
    let stats = stats(&sim).await;
    assert_eq!(count(&stats, "query", "400"), 6);
    assert_eq!(
        count(&stats, "other", "404"),
        0,
        "every query reached the query route"
    );
}

#[tokio::test]
async fn a_wrong_base_path_is_a_wrong_endpoint_and_names_the_route() {
    let sim = start(config(100)).await;
    let client = client_for(&format!("{}/api", sim.base_url()), KEY);
    let e = client.submit(&t2v_multishot()).await.unwrap_err();
    let ApiError::Endpoint { status, message } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(*status, 404);
    assert!(message.contains("/api/v1/video/generations"), "{message}");
    assert!(message.contains("check the base URL"), "{message}");
    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], 0);
    assert_eq!(count(&stats, "other", "404"), 1);
}

#[tokio::test]
async fn a_refused_connection_is_unreachable_nothing_was_sent() {
    // A port bound but not listening refuses every connection, and no other test's server can
    // take it meanwhile (a port a stopped simulator freed can be, under parallel tests).
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    let e = client_for(&base, KEY)
        .submit(&t2v_multishot())
        .await
        .unwrap_err();
    let ApiError::Unreachable { message } = &e else {
        panic!("a refused connection sent nothing: {e:?}");
    };
    assert!(message.contains(&base), "{message}");
    assert_no_key(&e);
}
