//! Downloading a result: streamed to a temporary file beside the destination while hashing,
//! synced, then renamed into place, so a file at `dest` is always complete and its SHA-256 is
//! known without reading it again. Result URLs are third-party storage links: the API key is
//! never sent to them.

use std::path::Path;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::error_body::{classify, parse_retry_after, shorten};
use super::http::{
    Call, Capped, MAX_ANSWER_BYTES, MAX_REDIRECTS, describe, read_capped, transport,
};
use super::{ApiError, ApiKey, DownloadLimits, Downloaded};

/// Result downloads, alike for every provider. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Downloader {
    /// Follows storage redirects (`http::pooled`).
    pub http: reqwest::Client,
    /// Only to scrub what storage sends back: never sent.
    pub key: ApiKey,
    pub limits: DownloadLimits,
}

impl Downloader {
    /// See [`Client::download`](super::Client::download).
    pub async fn download(&self, url: &str, dest: &Path) -> Result<Downloaded, ApiError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| ApiError::Permanent {
            status: 0,
            message: format!("result URL is not a URL ({e})"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ApiError::Permanent {
                status: 0,
                message: format!("result URL must be http(s), not {}:", parsed.scheme()),
            });
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_error(dir))?;
        let limit = self.limits.timeout;
        tokio::time::timeout(limit, self.fetch(parsed, dir, dest))
            .await
            .unwrap_or_else(|_| {
                Err(unusable(
                    format!(
                        "the download took longer than {} ([download] timeout in the config)",
                        humantime::format_duration(limit)
                    ),
                    false,
                ))
            })
    }

    async fn fetch(
        &self,
        url: reqwest::Url,
        dir: &Path,
        dest: &Path,
    ) -> Result<Downloaded, ApiError> {
        let mut response = self.http.get(url).send().await.map_err(|e| {
            if e.is_redirect() {
                unusable(
                    format!("the result URL redirects more than {MAX_REDIRECTS} times"),
                    false,
                )
            } else {
                transport(&self.key, &e, Call::Read)
            }
        })?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            if matches!(status, 403 | 404 | 410) {
                return Err(ApiError::Gone { status });
            }
            if status == 429 {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                return Err(ApiError::RateLimited { retry_after });
            }
            let body = read_capped(response, MAX_ANSWER_BYTES)
                .await
                .map(Capped::into_bytes)
                .unwrap_or_default();
            // Storage refusing a link says nothing about our API key: never `Auth`.
            return Err(match classify(status, None, &body) {
                ApiError::Auth { status, message } => ApiError::Permanent { status, message },
                other => other,
            });
        }
        let max = self.limits.max_bytes;
        if response.content_length().is_some_and(|n| n > max) {
            return Err(too_large(max));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);

        let tmp = crate::report::temp_file_in(dir, ".shotlist-", ".part").map_err(io_error(dir))?;
        let tmp_path = tmp.path().to_path_buf();
        let handle = tmp.as_file().try_clone().map_err(io_error(&tmp_path))?;
        // Network chunks are small; batching them saves a blocking-pool hop per chunk. One
        // buffer per download in flight (up to `-j`): 64 KB keeps 512 of them at 32 MB, and a
        // file known to be smaller gets a buffer of its size.
        let buffer = response
            .content_length()
            .map_or(MAX_BUFFER, |n| (n as usize).clamp(4096, MAX_BUFFER));
        let mut file =
            tokio::io::BufWriter::with_capacity(buffer, tokio::fs::File::from_std(handle));
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut head = Vec::with_capacity(HEAD);
        while let Some(chunk) = response.chunk().await.map_err(|e| ApiError::Transient {
            status: None,
            message: format!("download {}", describe(&e)),
        })? {
            bytes += chunk.len() as u64;
            if bytes > max {
                return Err(too_large(max));
            }
            if head.len() < HEAD {
                head.extend(chunk.iter().take(HEAD - head.len()));
                if head.len() >= 8 && !is_video(&head) {
                    return Err(self.not_video(&head, content_type.as_deref()));
                }
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io_error(&tmp_path))?;
        }
        if !is_video(&head) {
            return Err(self.not_video(&head, content_type.as_deref()));
        }
        file.flush().await.map_err(io_error(&tmp_path))?;
        file.get_ref()
            .sync_all()
            .await
            .map_err(io_error(&tmp_path))?;
        drop(file);
        tmp.persist(dest).map_err(|e| io_error(dest)(e.error))?;
        sync_dir(dir);
        Ok(Downloaded {
            sha256: format!("{:x}", hasher.finalize()),
            bytes,
        })
    }

    /// What came instead of a video, in a few printable characters (scrubbed: it came from
    /// outside).
    fn not_video(&self, head: &[u8], content_type: Option<&str>) -> ApiError {
        let start: String = String::from_utf8_lossy(head)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let kind = content_type
            .map(|t| format!("{} ", shorten(t)))
            .unwrap_or_default();
        let message = format!(
            "the result URL sent {kind}data that is not a video (no MP4/MOV `ftyp` box at the \
             start; it starts with {:?})",
            start.trim()
        );
        unusable(self.key.scrub(message), true)
    }
}

/// Bytes of a download's start kept for the video check and the error message.
const HEAD: usize = 48;

/// The largest write buffer of a download.
const MAX_BUFFER: usize = 64 * 1024;

/// An MP4/MOV file opens with its `ftyp` box: a 4-byte size, then `ftyp`.
fn is_video(head: &[u8]) -> bool {
    head.get(4..8) == Some(b"ftyp")
}

fn too_large(max: u64) -> ApiError {
    unusable(
        format!(
            "the video is larger than the download cap of {} ([download] max_bytes in the \
             config)",
            if max.is_multiple_of(1 << 20) {
                format!("{} MiB", max >> 20)
            } else {
                format!("{max} bytes")
            }
        ),
        false,
    )
}

fn unusable(message: String, retry: bool) -> ApiError {
    ApiError::Unusable { message, retry }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ApiError + '_ {
    move |e| ApiError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Makes the rename durable; best effort (not every platform can open a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
