//! Hostile servers: endless and oversized answers end at the answer cap with bounded memory, a
//! cut-off submit is ambiguous (never a retryable failure), and downloads stop at their size and
//! time caps, refuse what is not a video and bound redirects, leaving no file behind.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use shotlist::api::{ApiError, Client, DownloadLimits, MAX_ANSWER_BYTES};

use super::fake::{Fake, Reply, client_for, endless, json, mp4};

/// Far more than any test should take: a cap that does not hold shows up as this timeout.
const DEADLINE: Duration = Duration::from_secs(30);

/// Bytes a server may push past the cap before the client hangs up (socket buffers).
const SLACK: u64 = 64 << 20;

const CLOSE_DELIMITED: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n";
const ANNOUNCED_100_MB: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 104857600\r\n\r\n";
/// The start of an MP4 file: its `ftyp` box.
const FTYP: &[u8] = b"\0\0\0\x0cftypisom";
const VIDEO_CLOSE_DELIMITED: &str = "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\n\r\n";

fn slow_client(base: &str) -> Client {
    client_for(base, Duration::from_secs(60))
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no end within {DEADLINE:?}"))
}

fn assert_cut_off(message: &str) {
    let cap = format!("{} MiB", MAX_ANSWER_BYTES >> 20);
    assert!(
        message.contains(&cap) && message.contains("cut off"),
        "{message}"
    );
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_endless_submit_answer_is_ambiguous_at_the_cap() {
    let (base, sent) = endless(
        CLOSE_DELIMITED,
        br#"{"task_id":"t-1","pad":""#,
        Duration::ZERO,
    )
    .await;
    let err = within("submit", slow_client(&base).submit(&json!({}))).await;
    match err {
        Err(ApiError::Ambiguous { message }) => assert_cut_off(&message),
        other => panic!("{other:?}"),
    }
    let sent = sent.load(Ordering::Relaxed);
    assert!(
        sent >= MAX_ANSWER_BYTES as u64 && sent < MAX_ANSWER_BYTES as u64 + SLACK,
        "the client read up to the cap and then hung up: {sent} bytes sent"
    );
}

#[tokio::test]
async fn a_submit_answer_announcing_100_mb_is_ambiguous_without_reading_it() {
    let (base, _) = endless(ANNOUNCED_100_MB, b"{", Duration::ZERO).await;
    match within("submit", slow_client(&base).submit(&json!({}))).await {
        Err(ApiError::Ambiguous { message }) => assert_cut_off(&message),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_endless_query_answer_is_transient_at_the_cap() {
    let (base, sent) = endless(CLOSE_DELIMITED, br#"{"status":""#, Duration::ZERO).await;
    match within("query", slow_client(&base).query("t-1")).await {
        Err(ApiError::Transient {
            status: Some(200),
            message,
        }) => assert_cut_off(&message),
        other => panic!("{other:?}"),
    }
    assert!(sent.load(Ordering::Relaxed) < MAX_ANSWER_BYTES as u64 + SLACK);
}

#[tokio::test]
async fn an_endless_error_body_keeps_its_status_and_a_short_reason() {
    let (base, sent) = endless(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n\r\n",
        b"upstream down ",
        Duration::ZERO,
    )
    .await;
    match within("submit", slow_client(&base).submit(&json!({}))).await {
        Err(ApiError::Transient {
            status: Some(502),
            message,
        }) => {
            assert!(message.starts_with("upstream down"), "{message}");
            assert!(message.chars().count() <= 300, "{}", message.len());
        }
        other => panic!("{other:?}"),
    }
    assert!(sent.load(Ordering::Relaxed) < MAX_ANSWER_BYTES as u64 + SLACK);
}

fn capped(base: &str, max_bytes: u64, timeout: Duration) -> Client {
    slow_client(base)
        .with_download_limits(DownloadLimits { max_bytes, timeout })
        .expect("limits")
}

/// The message of an `Unusable` download error that says `says`.
fn assert_unusable(
    err: Result<shotlist::api::Downloaded, ApiError>,
    retry: bool,
    says: &str,
) -> String {
    match err {
        Err(ApiError::Unusable { message, retry: r }) => {
            assert_eq!(r, retry, "{message}");
            assert!(message.contains(says), "{message}");
            message
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_endless_video_stops_at_the_size_cap_and_leaves_nothing() {
    let (base, sent) = endless(VIDEO_CLOSE_DELIMITED, FTYP, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let client = capped(&base, 1 << 20, Duration::from_secs(60));
    let got = within(
        "download",
        client.download(&format!("{base}/v.mp4"), &dir.path().join("v.mp4")),
    )
    .await;
    assert_unusable(
        got,
        false,
        "larger than the download cap of 1 MiB ([download] max_bytes",
    );
    assert!(sent.load(Ordering::Relaxed) < SLACK);
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[tokio::test]
async fn a_video_announcing_more_than_the_cap_is_not_read() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: 104857600\r\n\r\n";
    let (base, _) = endless(head, FTYP, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let client = capped(&base, 50_000_000, Duration::from_secs(60));
    let got = within(
        "download",
        client.download(&format!("{base}/v.mp4"), &dir.path().join("v.mp4")),
    )
    .await;
    assert_unusable(got, false, "download cap of 50000000 bytes");
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn a_trickling_download_stops_at_the_time_cap_and_leaves_nothing() {
    let (base, sent) = endless(VIDEO_CLOSE_DELIMITED, FTYP, Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    let client = capped(&base, 1 << 30, Duration::from_secs(1));
    let got = within(
        "download",
        client.download(&format!("{base}/v.mp4"), &dir.path().join("v.mp4")),
    )
    .await;
    assert_unusable(got, false, "took longer than 1s ([download] timeout");
    assert!(sent.load(Ordering::Relaxed) > 0, "it did keep arriving");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[tokio::test]
async fn a_page_that_is_not_a_video_is_refused_and_leaves_nothing() {
    let pages: [(&str, &[u8], &str); 4] = [
        (
            "text/html",
            b"<!DOCTYPE html><html><body>Access denied</body></html>",
            "text/html data that is not a video",
        ),
        ("application/json", br#"{"error":"expired"}"#, "expired"),
        ("video/mp4", b"", "starts with \"\""),
        ("video/mp4", b"\0\0\0\x0cfty", "fty"),
    ];
    for (kind, body, says) in pages {
        let fake = Fake::always(move || Reply {
            status: 200,
            headers: vec![("content-type", kind.into())],
            body: body.to_vec(),
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("v.mp4");
        std::fs::write(&dest, mp4("the earlier video")).unwrap();
        let got = fake
            .client()
            .download(&format!("{}/v.mp4", fake.base), &dest)
            .await;
        let message = assert_unusable(got, true, "not a video");
        assert!(
            message.contains(says) && message.contains(kind),
            "{message}"
        );
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            mp4("the earlier video"),
            "{kind}: an existing file is not replaced"
        );
        assert_eq!(entries(dir.path()), ["v.mp4"], "no temp file left");
    }
}

#[tokio::test]
async fn a_redirect_loop_ends_at_the_bound() {
    let fake = Fake::always(|| Reply {
        status: 302,
        headers: vec![("location", "/again".into())],
        body: vec![],
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let got = within(
        "download",
        fake.client()
            .download(&format!("{}/v.mp4", fake.base), &dir.path().join("v.mp4")),
    )
    .await;
    assert_unusable(got, false, "redirects more than 10 times");
    assert_eq!(fake.seen().len(), 11, "the first request and 10 redirects");
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn a_redirect_to_an_error_page_is_not_a_video() {
    let fake = Fake::start(|seen| match seen.path.as_str() {
        "/signed/v.mp4" => Reply {
            status: 302,
            headers: vec![("location", "/login".into())],
            body: vec![],
        },
        _ => Reply {
            status: 200,
            headers: vec![("content-type", "text/html".into())],
            body: b"<html>Please sign in</html>".to_vec(),
        },
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let got = fake
        .client()
        .download(
            &format!("{}/signed/v.mp4", fake.base),
            &dir.path().join("v.mp4"),
        )
        .await;
    assert_unusable(got, true, "<html>Please sign in</html>");
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn zero_download_caps_are_refused_when_the_client_is_set_up() {
    let fake = Fake::always(|| json(200, json!({}))).await;
    for limits in [
        DownloadLimits {
            max_bytes: 0,
            ..DownloadLimits::default()
        },
        DownloadLimits {
            timeout: Duration::ZERO,
            ..DownloadLimits::default()
        },
    ] {
        let err = fake.client().with_download_limits(limits).unwrap_err();
        assert!(
            matches!(&err, ApiError::Permanent { status: 0, message } if message.contains("[download]")),
            "{err:?}"
        );
    }
    assert!(fake.seen().is_empty());
}
