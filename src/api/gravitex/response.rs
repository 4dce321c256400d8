//! Normalisation of the gateway's 200 bodies. The reference documents three query shapes (flat,
//! envelope, legacy envelope) and three submit shapes that disagree on field names and status
//! words; these pure functions fold them into [`TaskState`] and a task id so nothing above the
//! client ever sees a variant.

use serde_json::{Map, Value};

use crate::api::error_body::{nested_reason, shorten};
use crate::api::{TaskExtras, TaskState, TaskStatus};

/// The task id of an accepted submit: `task_id` if non-empty, else `id` (also inside `data`).
/// `None` when the body names no task: the caller cannot know whether one was created.
pub fn submit_task_id(body: &Value) -> Option<String> {
    let obj = body.as_object()?;
    let from = |o: &Map<String, Value>| {
        non_empty_id(o.get("task_id")).or_else(|| non_empty_id(o.get("id")))
    };
    from(obj).or_else(|| obj.get("data").and_then(Value::as_object).and_then(from))
}

fn non_empty_id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One status word, case-insensitive. Anything unrecognised is [`TaskStatus::Unknown`].
pub fn status_word(word: &str) -> TaskStatus {
    match word.trim().to_ascii_lowercase().as_str() {
        "submitted" | "queued" | "pending" | "not_start" => TaskStatus::Waiting,
        "in_progress" | "processing" | "running" => TaskStatus::Running,
        "succeeded" | "completed" | "success" => TaskStatus::Succeeded,
        "failed" | "failure" | "canceled" | "cancelled" => TaskStatus::Failed,
        _ => TaskStatus::Unknown,
    }
}

/// Progress as an integer, a float or a string such as `"30%"`, clamped to 0..=100.
pub fn progress(v: &Value) -> Option<u8> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().trim_end_matches('%').trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !n.is_finite() {
        return None;
    }
    Some(n.clamp(0.0, 100.0).round() as u8)
}

/// A query body in any of the reference's shapes. `Err` carries a short description of why the
/// body is not a task state (the caller treats it as transient: querying again is harmless).
pub fn task_state(body: &Value) -> Result<TaskState, String> {
    let top = body
        .as_object()
        .ok_or_else(|| "query answer is not a JSON object".to_string())?;
    let task = match top.get("data") {
        Some(Value::Object(data)) => data,
        _ if top.contains_key("status") => top,
        _ => {
            let reason = envelope_reason(top);
            return Err(match reason {
                Some(r) => format!("query answer has no task: {r}"),
                None => "query answer has no task status".to_string(),
            });
        }
    };
    let word = match task.get("status") {
        Some(Value::String(s)) => s.as_str(),
        _ => return Err("query answer has no task status".to_string()),
    };
    let status = status_word(word);
    let fail_reason = text(task.get("fail_reason"));
    let url = text(task.get("url"))
        .or_else(|| text(task.get("video_url")))
        .or_else(|| text(task.get("result_url")))
        .or_else(|| fail_reason.filter(|r| status == TaskStatus::Succeeded && is_http_url(r)));
    let error = if status == TaskStatus::Failed {
        Some(failure_reason(task).unwrap_or_else(|| "the task failed (no reason given)".into()))
    } else {
        None
    };
    Ok(TaskState {
        status,
        url: if status == TaskStatus::Succeeded {
            url.map(str::to_string)
        } else {
            None
        },
        error,
        progress: task.get("progress").and_then(progress),
        extras: TaskExtras::default(),
    })
}

/// `error.message` (with its code when it is a word), else `error` as text, else `fail_reason`
/// when it is not a URL; nested JSON messages are unwrapped.
fn failure_reason(task: &Map<String, Value>) -> Option<String> {
    let from_error = match task.get("error") {
        Some(Value::Object(e)) => {
            let message = text(e.get("message")).map(nested_reason);
            let code = text(e.get("code"));
            match (code, message) {
                (Some(c), Some(m)) if !m.contains(c) => Some(format!("{c}: {m}")),
                (_, Some(m)) => Some(m),
                (Some(c), None) => Some(c.to_string()),
                (None, None) => None,
            }
        }
        Some(Value::String(s)) if !s.trim().is_empty() => Some(nested_reason(s)),
        _ => None,
    };
    from_error
        .or_else(|| {
            text(task.get("fail_reason"))
                .filter(|r| !is_http_url(r))
                .map(nested_reason)
        })
        .or_else(|| text(task.get("message")).map(nested_reason))
        .map(|r| shorten(&r))
}

/// The reason an envelope without a task gives (`{"code": "...", "message": "..."}`).
fn envelope_reason(top: &Map<String, Value>) -> Option<String> {
    text(top.get("message"))
        .map(nested_reason)
        .or_else(|| text(top.get("code")).map(str::to_string))
        .map(|r| shorten(&r))
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn is_http_url(s: &str) -> bool {
    let lower = s.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn task_id_prefers_non_empty_task_id_then_id() {
        assert_eq!(
            submit_task_id(&json!({"task_id": "video_1", "status": "submitted"})),
            Some("video_1".into())
        );
        assert_eq!(
            submit_task_id(&json!({"task_id": "", "id": "abc", "object": "video"})),
            Some("abc".into())
        );
        assert_eq!(
            submit_task_id(&json!({"id": "abc", "status": "queued"})),
            Some("abc".into())
        );
        assert_eq!(
            submit_task_id(&json!({"code": "success", "data": {"task_id": "d1"}})),
            Some("d1".into())
        );
        assert_eq!(submit_task_id(&json!({"status": "queued"})), None);
        assert_eq!(submit_task_id(&json!({"task_id": "  "})), None);
        assert_eq!(submit_task_id(&json!([1, 2])), None);
    }

    #[test]
    fn every_status_word_in_any_case() {
        use TaskStatus::*;
        let cases = [
            ("submitted", Waiting),
            ("QUEUED", Waiting),
            ("Pending", Waiting),
            ("NOT_START", Waiting),
            ("in_progress", Running),
            ("PROCESSING", Running),
            ("running", Running),
            ("succeeded", Succeeded),
            ("Completed", Succeeded),
            ("SUCCESS", Succeeded),
            ("failed", Failed),
            ("FAILURE", Failed),
            ("canceled", Failed),
            ("Cancelled", Failed),
            ("unknown", Unknown),
            ("exploded", Unknown),
        ];
        for (word, want) in cases {
            assert_eq!(status_word(word), want, "{word}");
        }
    }

    #[test]
    fn progress_forms() {
        assert_eq!(progress(&json!(30)), Some(30));
        assert_eq!(progress(&json!("30%")), Some(30));
        assert_eq!(progress(&json!(" 45 % ")), Some(45));
        assert_eq!(progress(&json!(99.6)), Some(100));
        assert_eq!(progress(&json!(250)), Some(100));
        assert_eq!(progress(&json!(-3)), Some(0));
        assert_eq!(progress(&json!("soon")), None);
        assert_eq!(progress(&json!(null)), None);
    }

    #[test]
    fn legacy_success_takes_url_from_fail_reason() {
        let s = task_state(&json!({"code": "success", "data": {
            "task_id": "t", "status": "SUCCESS", "fail_reason": "https://cdn/x.mp4", "progress": "100%"}}))
        .unwrap();
        assert_eq!(s.status, TaskStatus::Succeeded);
        assert_eq!(s.url.as_deref(), Some("https://cdn/x.mp4"));
        assert_eq!(s.error, None);
        assert_eq!(s.progress, Some(100));
    }

    #[test]
    fn legacy_failure_reason_is_not_a_url() {
        let s = task_state(&json!({"code": "success", "data": {
            "task_id": "t", "status": "FAILURE", "fail_reason": "{\"code\":\"DataInspectionFailed\",\"message\":\"unsafe\"}"}}))
        .unwrap();
        assert_eq!(s.status, TaskStatus::Failed);
        assert_eq!(s.url, None);
        assert_eq!(s.error.as_deref(), Some("DataInspectionFailed: unsafe"));
    }

    #[test]
    fn url_fallback_order() {
        let s = task_state(
            &json!({"status": "succeeded", "video_url": "https://v", "result_url": "https://r"}),
        )
        .unwrap();
        assert_eq!(s.url.as_deref(), Some("https://v"));
        let s = task_state(&json!({"status": "succeeded", "url": "", "result_url": "https://r"}))
            .unwrap();
        assert_eq!(s.url.as_deref(), Some("https://r"));
        let s = task_state(&json!({"status": "succeeded", "fail_reason": "not a url"})).unwrap();
        assert_eq!(s.url, None);
    }

    #[test]
    fn failed_flat_with_integer_code() {
        let s = task_state(&json!({"task_id": "t", "status": "failed",
            "error": {"code": 400, "message": "content moderation"}}))
        .unwrap();
        assert_eq!(s.error.as_deref(), Some("content moderation"));
    }

    #[test]
    fn not_a_task() {
        assert!(task_state(&json!("x")).is_err());
        assert!(task_state(&json!({"task_id": "t"})).is_err());
        let e = task_state(
            &json!({"code": "task_not_exist", "message": "task_not_exist", "data": null}),
        )
        .unwrap_err();
        assert!(e.contains("task_not_exist"), "{e}");
    }
}
