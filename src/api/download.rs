//! Downloading a result: streamed to a temporary file beside the destination while hashing,
//! synced, then renamed into place, so a file at `dest` is always complete and its SHA-256 is
//! known without reading it again. Result URLs are third-party storage links: the API key is
//! never sent to them.

use std::path::Path;

use reqwest::header::RETRY_AFTER;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::client::{Call, describe};
use super::error_body::{classify, parse_retry_after};
use super::{ApiError, Client, Downloaded};

impl Client {
    /// Streams `url` to a temporary file beside `dest`, then renames it to `dest`.
    /// Sends no API key (result URLs are storage links).
    ///
    /// 403/404/410 are `Gone` (the URL expired); other failures leave no file behind.
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

        let mut response = self
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| self.transport(&e, Call::Read))?;
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
            let body = response.bytes().await.unwrap_or_default();
            // Storage refusing a link says nothing about our API key: never `Auth`.
            return Err(match classify(status, None, &body) {
                ApiError::Auth { status, message } => ApiError::Permanent { status, message },
                other => other,
            });
        }

        let tmp = crate::report::temp_file_in(dir, ".shotlist-", ".part").map_err(io_error(dir))?;
        let tmp_path = tmp.path().to_path_buf();
        let handle = tmp.as_file().try_clone().map_err(io_error(&tmp_path))?;
        // Network chunks are small; batching them saves a blocking-pool hop per chunk.
        let mut file =
            tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(handle));
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| ApiError::Transient {
            status: None,
            message: format!("download {}", describe(&e)),
        })? {
            hasher.update(&chunk);
            bytes += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io_error(&tmp_path))?;
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
