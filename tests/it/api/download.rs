//! Downloads: integrity (sha256 and size of what was served), rename into place, nothing left
//! behind on failure, expired URLs, and no API key sent to storage.

use std::path::Path;

use sha2::{Digest, Sha256};
use shotlist::api::ApiError;

use super::fake::{Fake, Misbehave, Reply, misbehaving, mp4, raw};

fn video_bytes(len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(7);
    mp4((0..len).map(|_| rng.u8(..)).collect::<Vec<_>>())
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn known_vector() {
    let fake = Fake::always(|| raw(200, mp4(""))).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("a.mp4");
    let got = fake
        .client()
        .download(&format!("{}/a.mp4", fake.base), &dest)
        .await
        .unwrap();
    assert_eq!(
        got.sha256,
        "13c5cdb9c9f00bbaf88c207ace44d2cd5c44ea53d6b7c11373226c0858e8bab5"
    );
    assert_eq!(got.bytes, 12);
    assert_eq!(std::fs::read(&dest).unwrap(), mp4(""));
}

#[tokio::test]
async fn streams_a_large_file_into_place_with_its_digest() {
    let served = video_bytes(3 * 1024 * 1024 + 17);
    let body = served.clone();
    let fake = Fake::always(move || Reply {
        status: 200,
        headers: vec![("content-type", "video/mp4".into())],
        body: body.clone(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("videos").join("shot-1.mp4");
    let url = format!("{}/result/shot-1.mp4?Expires=1&Signature=abc", fake.base);
    let got = fake.client().download(&url, &dest).await.expect("download");
    assert_eq!(got.bytes, served.len() as u64);
    assert_eq!(got.sha256, format!("{:x}", Sha256::digest(&served)));
    assert_eq!(std::fs::read(&dest).unwrap(), served);
    assert_eq!(
        entries(&dir.path().join("videos")),
        vec!["shot-1.mp4"],
        "no temp file left"
    );
    assert_eq!(
        fake.seen()[0].path,
        "/result/shot-1.mp4?Expires=1&Signature=abc"
    );
}

#[tokio::test]
async fn replaces_an_existing_file() {
    let fake = Fake::always(|| raw(200, mp4("new contents"))).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("v.mp4");
    std::fs::write(&dest, "old").unwrap();
    fake.client()
        .download(&format!("{}/v", fake.base), &dest)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), mp4("new contents"));
}

#[tokio::test]
async fn no_authorization_header_reaches_storage() {
    let fake = Fake::always(|| raw(200, mp4("video"))).await;
    let dir = tempfile::tempdir().unwrap();
    let client = fake.client();
    // The same client has just used the key on the API.
    let _ = client.query("t").await;
    client
        .download(&format!("{}/v.mp4", fake.base), &dir.path().join("v.mp4"))
        .await
        .unwrap();
    let seen = fake.seen();
    assert!(
        seen[0].header("authorization").is_some(),
        "the API call is authorised"
    );
    let download = &seen[1];
    assert_eq!(download.path, "/v.mp4");
    assert!(
        download.header("authorization").is_none(),
        "{:?}",
        download.headers
    );
    for (name, value) in &download.headers {
        assert!(
            !value
                .to_str()
                .unwrap_or_default()
                .contains(super::fake::KEY),
            "{name} carries the key"
        );
    }
}

#[tokio::test]
async fn expired_urls_are_gone_and_leave_nothing() {
    for status in [403u16, 404, 410] {
        let fake = Fake::always(move || {
            raw(
                status,
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
            )
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("v.mp4");
        let err = fake
            .client()
            .download(&format!("{}/v.mp4", fake.base), &dest)
            .await
            .expect_err("gone");
        assert!(
            matches!(err, ApiError::Gone { status: s } if s == status),
            "{err:?}"
        );
        assert!(
            entries(dir.path()).is_empty(),
            "{status}: {:?}",
            entries(dir.path())
        );
    }
}

#[tokio::test]
async fn server_error_is_transient_and_leaves_nothing() {
    let fake = Fake::always(|| raw(503, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let err = fake
        .client()
        .download(&format!("{}/v", fake.base), &dir.path().join("v.mp4"))
        .await
        .expect_err("error");
    assert!(
        matches!(
            err,
            ApiError::Transient {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn a_body_that_breaks_off_leaves_no_file_and_no_temp_file() {
    let (base, _) = misbehaving(Misbehave::Truncated(
        b"HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: 100000\r\n\r\n\0\0\0\x0cftypisomonly a few bytes",
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("v.mp4");
    let client = super::fake::client_for(&base, std::time::Duration::from_secs(2));
    let err = client
        .download(&format!("{base}/v.mp4"), &dest)
        .await
        .expect_err("error");
    assert!(
        matches!(err, ApiError::Transient { status: None, .. }),
        "{err:?}"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[tokio::test]
async fn an_unwritable_destination_is_an_io_error() {
    let fake = Fake::always(|| raw(200, mp4("video"))).await;
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let err = fake
        .client()
        .download(&format!("{}/v", fake.base), &blocker.join("v.mp4"))
        .await
        .expect_err("error");
    assert!(
        matches!(&err, ApiError::Io { path, .. } if path.contains("not-a-dir")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_non_http_url_is_refused_without_a_request() {
    let fake = Fake::always(|| raw(200, mp4("video"))).await;
    let dir = tempfile::tempdir().unwrap();
    let err = fake
        .client()
        .download("file:///etc/passwd", &dir.path().join("v"))
        .await
        .expect_err("error");
    assert!(
        matches!(err, ApiError::Permanent { status: 0, .. }),
        "{err:?}"
    );
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn storage_401_is_not_an_auth_error() {
    let fake = Fake::always(|| raw(401, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let err = fake
        .client()
        .download(&format!("{}/v", fake.base), &dir.path().join("v"))
        .await
        .expect_err("error");
    assert!(
        matches!(err, ApiError::Permanent { status: 401, .. }),
        "{err:?}"
    );
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn download_redirects_are_followed_without_the_key() {
    let fake = Fake::start(|seen| match seen.path.as_str() {
        "/signed/v.mp4" => Reply {
            status: 302,
            headers: vec![("location", "/cdn/v.mp4".into())],
            body: vec![],
        },
        "/cdn/v.mp4" => raw(200, mp4("the video")),
        _ => raw(404, ""),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("v.mp4");
    let got = fake
        .client()
        .download(&format!("{}/signed/v.mp4", fake.base), &dest)
        .await
        .expect("download");
    assert_eq!(got.bytes, 21);
    assert_eq!(std::fs::read(&dest).unwrap(), mp4("the video"));
    let seen = fake.seen();
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        ["/signed/v.mp4", "/cdn/v.mp4"]
    );
    assert!(seen.iter().all(|s| s.header("authorization").is_none()));
}

#[tokio::test]
async fn a_body_that_stalls_times_out_per_read_and_leaves_nothing() {
    let (base, _) = misbehaving(Misbehave::Stall(
        b"HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: 100000\r\n\r\n\0\0\0\x0cftypisomthe first bytes",
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("v.mp4");
    let client = super::fake::client_for(&base, std::time::Duration::from_secs(1));
    let started = std::time::Instant::now();
    let err = client
        .download(&format!("{base}/v.mp4"), &dest)
        .await
        .expect_err("error");
    assert!(
        matches!(&err, ApiError::Transient { status: None, message } if message.contains("timed out")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the read timeout applies"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}
