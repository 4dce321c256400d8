//! Response bodies, in each variant the reference lists: the simulator answers in one `--shape`
//! at a time so a client can be tested against every form it must accept.

use serde_json::{Value, json};

use super::rules::{Model, Violation};
use super::task::{Failure, Phase};

/// Which response variant of the reference the simulator answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// Flat bodies, as on the provider's public page.
    #[default]
    Doc,
    /// `{code, message, data}` envelope of the gateway source.
    Envelope,
    /// Legacy envelope with upper-case statuses and `fail_reason`.
    Legacy,
}

/// A task as one query sees it.
#[derive(Debug, Clone)]
pub struct TaskView<'a> {
    pub id: &'a str,
    pub model: Model,
    pub phase: Phase,
    pub progress: u8,
    /// Result URL, on success.
    pub url: Option<String>,
    pub failure: Option<Failure>,
}

/// Submit answer (HTTP 200).
pub fn submit(shape: Shape, id: &str, model: Model, created_unix: u64) -> Value {
    match shape {
        Shape::Doc => json!({"task_id": id, "status": "submitted", "format": "mp4"}),
        Shape::Envelope => json!({
            "id": id,
            "object": "video",
            "model": model.id(),
            "status": "queued",
            "progress": 0,
            "created_at": created_unix,
        }),
        Shape::Legacy => json!({"task_id": id, "status": "queued"}),
    }
}

/// Query answer (HTTP 200).
pub fn query(shape: Shape, task: &TaskView<'_>) -> Value {
    match shape {
        Shape::Doc => {
            let mut body = json!({
                "task_id": task.id,
                "status": task.phase.name(),
                "format": "mp4",
            });
            if let Some(url) = &task.url {
                body["url"] = json!(url);
            }
            if let Some(f) = task.failure.filter(|_| task.phase == Phase::Failed) {
                body["error"] = json!({"code": f.int_code(), "message": f.message()});
            }
            body
        }
        Shape::Envelope => {
            let status = match task.phase {
                Phase::Queued => "queued",
                Phase::InProgress => "in_progress",
                Phase::Succeeded => "completed",
                Phase::Failed => "failed",
            };
            let url = task.url.as_deref().unwrap_or("");
            let mut data = json!({
                "id": task.id,
                "task_id": task.id,
                "object": "video",
                "model": task.model.id(),
                "status": status,
                "progress": task.progress,
                "url": url,
                "video_url": url,
            });
            if let Some(f) = task.failure.filter(|_| task.phase == Phase::Failed) {
                data["error"] = json!({"code": f.code(), "message": f.message()});
            }
            json!({"code": "success", "message": "", "data": data})
        }
        Shape::Legacy => {
            let (status, fail_reason) = match task.phase {
                Phase::Queued if task.progress < 15 => ("NOT_START", String::new()),
                Phase::Queued => ("QUEUED", String::new()),
                Phase::InProgress => ("IN_PROGRESS", String::new()),
                Phase::Succeeded => ("SUCCESS", task.url.clone().unwrap_or_default()),
                Phase::Failed => (
                    "FAILURE",
                    task.failure
                        .map(|f| f.message().to_owned())
                        .unwrap_or_default(),
                ),
            };
            json!({
                "code": "success",
                "data": {
                    "task_id": task.id,
                    "status": status,
                    "fail_reason": fail_reason,
                    "progress": format!("{}%", task.progress),
                },
            })
        }
    }
}

/// 400 for a refused body. Gateway-level rules answer flat; Alibaba's rules come wrapped in the
/// gateway's `fail_to_fetch_task` body whose `message` is itself JSON.
pub fn invalid(violation: &Violation, request_id: &str) -> Value {
    let message = violation.to_string();
    if violation.rule.gateway_level() {
        json!({"code": "InvalidParameter", "message": message, "data": null})
    } else {
        let inner = json!({
            "request_id": request_id,
            "code": "InvalidParameter",
            "message": message,
        });
        json!({"code": "fail_to_fetch_task", "message": inner.to_string(), "data": null})
    }
}

/// 400 on query of a task this key does not have.
pub fn task_not_exist(id: &str) -> Value {
    json!({"code": "task_not_exist", "message": format!("task_not_exist: {id}"), "data": null})
}

/// 401 for a missing or wrong key.
pub fn unauthorized() -> Value {
    json!({"error": {"message": "Invalid token", "type": "new_api_error", "code": "invalid_token"}})
}

/// One of the 429 bodies of `--p429` (the concurrency limit answers with an empty body).
pub fn rate_limited(variant: u32, request_id: &str) -> Option<Value> {
    match variant % 3 {
        0 => None,
        1 => Some(json!({"error": {
            "message": "Rate limit exceeded, please try again later",
            "type": "rate_limit_error",
            "code": "rate_limit_exceeded",
        }})),
        _ => {
            let inner = json!({
                "request_id": request_id,
                "code": "Throttling.RateQuota",
                "message": "Requests rate limit exceeded, please try again later.",
            });
            Some(json!({"code": "fail_to_fetch_task", "message": inner.to_string(), "data": null}))
        }
    }
}

/// The JSON 502 body; the other `--p502` answer is [`BAD_GATEWAY_HTML`].
pub fn bad_gateway() -> Value {
    json!({"error": {
        "message": "bad response status code 502 (simulated by --p502)",
        "type": "upstream_error",
        "code": "bad_response_status_code",
    }})
}

/// A reverse proxy's 502 page: clients must cope with bodies that are not JSON.
pub const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// 403 of an object store for an expired result URL.
pub const EXPIRED_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>AccessDenied</Code>\n  <Message>Request has expired.</Message>\n</Error>\n";

/// 404 of an object store for a result that does not exist (yet).
pub const NO_SUCH_KEY_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>NoSuchKey</Code>\n  <Message>The specified key does not exist.</Message>\n</Error>\n";

/// 404 for a route the API does not have.
pub fn unknown_route(method: &str, path: &str) -> Value {
    json!({"error": {
        "message": format!("Invalid URL ({method} {path})"),
        "type": "invalid_request_error",
        "code": "",
    }})
}
