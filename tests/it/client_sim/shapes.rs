//! Each response shape the simulator speaks (flat doc, `{code, data}` envelope, legacy envelope
//! with `fail_reason` URLs and `"30%"` progress) is folded by the client into the same states:
//! waiting, running, then succeeded with a URL that downloads the clip.

use shotlist::api::TaskStatus;
use shotlist::sim::{Shape, SimConfig};

use super::bodies::t2v_multishot;
use super::{assert_is_the_clip, client, config, count, poll_to_end, start, stats};

async fn full_cycle(shape: Shape) {
    let sim = start(SimConfig {
        shape,
        ..config(600)
    })
    .await;
    let client = client(&sim);
    let submitted = client
        .submit(&t2v_multishot())
        .await
        .unwrap_or_else(|e| panic!("{shape:?}: submit: {e}"));
    assert!(submitted.task_id.starts_with("video_"), "{submitted:?}");

    let polled = poll_to_end(&client, &submitted.task_id).await;
    let last = &polled.last;
    assert_eq!(last.status, TaskStatus::Succeeded, "{shape:?}: {polled:?}");
    assert_eq!(last.error, None, "{shape:?}");
    let first = polled
        .before
        .first()
        .expect("queried before the task ended");
    assert_eq!(first.status, TaskStatus::Waiting, "{shape:?}: {polled:?}");
    assert!(
        polled
            .before
            .iter()
            .any(|s| s.status == TaskStatus::Running),
        "{shape:?}: never seen running: {polled:?}"
    );
    assert!(
        polled
            .before
            .windows(2)
            .all(|w| w[0].status != TaskStatus::Running || w[1].status == TaskStatus::Running),
        "{shape:?}: went back from running to waiting: {polled:?}"
    );
    assert!(
        polled
            .before
            .iter()
            .all(|s| s.url.is_none() && s.error.is_none()),
        "{shape:?}: a URL or error before the end: {polled:?}"
    );
    match shape {
        Shape::Doc => assert!(
            polled
                .before
                .iter()
                .chain([last])
                .all(|s| s.progress.is_none()),
            "the doc shape has no progress: {polled:?}"
        ),
        Shape::Envelope | Shape::Legacy => {
            let progress: Vec<u8> = polled
                .before
                .iter()
                .chain([last])
                .map(|s| s.progress.expect("progress in this shape"))
                .collect();
            assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
            assert_eq!(progress.last(), Some(&100), "{shape:?}");
        }
    }

    let url = last.url.as_deref().expect("URL on success");
    assert_eq!(
        url,
        format!("{}/files/{}.mp4", sim.base_url(), submitted.task_id),
        "{shape:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("nested/clip.mp4");
    let downloaded = client
        .download(url, &dest)
        .await
        .unwrap_or_else(|e| panic!("{shape:?}: download: {e}"));
    assert_is_the_clip(&dest, &downloaded);

    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], 1, "{shape:?}");
    assert_eq!(count(&stats, "submit", "200"), 1);
    assert_eq!(
        count(&stats, "query", "200"),
        polled.before.len() as u64 + 1,
        "{shape:?}: one request per query"
    );
    assert_eq!(count(&stats, "download", "200"), 1);
}

#[tokio::test]
async fn doc_shape_submit_query_and_download() {
    full_cycle(Shape::Doc).await;
}

#[tokio::test]
async fn envelope_shape_submit_query_and_download() {
    full_cycle(Shape::Envelope).await;
}

#[tokio::test]
async fn legacy_shape_submit_query_and_download() {
    full_cycle(Shape::Legacy).await;
}
