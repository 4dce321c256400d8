//! Error bodies and the classification of non-success HTTP answers, shared by the providers and
//! downloads. Refusals come in three shapes (a `code`/`message` envelope whose message may
//! itself be Alibaba's error as a JSON string, an OpenAI-style `error` object, or nothing at
//! all); users need the real reason, short, so this digs it out and maps the status onto
//! [`ApiError`].

use std::time::Duration;

use serde_json::Value;

use super::ApiError;

/// Longest reason kept from a provider body, in characters.
const MAX_REASON: usize = 300;

/// Classifies a non-2xx answer by its status: the gateway's table, and storage's on a download
/// (DashScope's differs: `dashscope`).
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> ApiError {
    match status {
        429 => ApiError::RateLimited {
            retry_after: retry_after.and_then(parse_retry_after),
        },
        401 | 403 => ApiError::Auth {
            status,
            message: reason(status, body),
        },
        408 | 500..=599 => ApiError::Transient {
            status: Some(status),
            message: reason(status, body),
        },
        _ => ApiError::Permanent {
            status,
            message: reason(status, body),
        },
    }
}

/// The longest `Retry-After` honoured: a provider asking for more is asked again after this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// `Retry-After` as delay-seconds (whole or fractional) or an HTTP date, capped at
/// [`RETRY_AFTER_CAP`]; `None` for anything else. Huge numbers saturate rather than overflow.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    parse_retry_after_at(v, std::time::SystemTime::now())
}

/// [`parse_retry_after`] with the clock given, for an HTTP date.
pub fn parse_retry_after_at(v: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = v.trim();
    let wait = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: too many of them for a u64 is still "a very long time".
        Some(
            v.parse::<u64>()
                .map_or(RETRY_AFTER_CAP, Duration::from_secs),
        )
    } else if let Ok(secs) = v.parse::<f64>() {
        (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(RETRY_AFTER_CAP.as_secs_f64())))
    } else {
        httpdate::parse_http_date(v)
            .ok()
            .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO))
    };
    wait.map(|w| w.min(RETRY_AFTER_CAP))
}

/// The provider's reason for a refusal, from any of the three body shapes; the status's
/// canonical phrase when the body says nothing useful.
pub fn reason(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let fallback = || status_phrase(status);
    if text.is_empty() {
        return fallback();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v) => json_reason(&v)
            .map(|r| shorten(&r))
            .unwrap_or_else(fallback),
        Err(_) if text.starts_with('<') => fallback(),
        Err(_) => shorten(text),
    }
}

/// The reason a JSON body gives, if it gives one.
pub fn json_reason(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    match obj.get("error") {
        Some(Value::Object(e)) => return coded(word(e.get("code")), word(e.get("message"))),
        Some(Value::String(s)) if !s.trim().is_empty() => return Some(nested_reason(s)),
        _ => {}
    }
    coded(word(obj.get("code")), word(obj.get("message")))
}

/// `code: message`, unwrapping a nested JSON message; the code is left out when the message
/// already says it (`task_not_exist`) or the nested error brings its own.
fn coded(code: Option<&str>, message: Option<&str>) -> Option<String> {
    match (code, message) {
        (_, Some(m)) if parse_nested(m).is_some() => Some(nested_reason(m)),
        (Some(c), Some(m)) if !m.contains(c) => Some(format!("{c}: {m}")),
        (_, Some(m)) => Some(m.to_string()),
        (Some(c), None) => Some(c.to_string()),
        (None, None) => None,
    }
}

/// A message that is itself a JSON error (Alibaba's `{"request_id", "code", "message"}` inside
/// the gateway's `fail_to_fetch_task`) becomes `Code: message`; any other text is kept.
pub fn nested_reason(message: &str) -> String {
    parse_nested(message).unwrap_or_else(|| message.trim().to_string())
}

fn parse_nested(message: &str) -> Option<String> {
    let t = message.trim();
    if !t.starts_with('{') {
        return None;
    }
    let v: Value = serde_json::from_str(t).ok()?;
    let obj = v.as_object()?;
    let inner = match obj.get("error") {
        Some(Value::Object(e)) => e,
        _ => obj,
    };
    let code = word(inner.get("code"));
    let msg = word(inner.get("message")).map(nested_reason);
    match (code, msg) {
        (Some(c), Some(m)) if !m.starts_with(c) => Some(format!("{c}: {m}")),
        (_, Some(m)) => Some(m),
        (Some(c), None) => Some(c.to_string()),
        (None, None) => None,
    }
}

fn word(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn status_phrase(status: u16) -> String {
    let phrase = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match phrase {
        Some(p) => format!("{p} (no reason given)"),
        None => "no reason given".to_string(),
    }
}

/// One line, at most [`MAX_REASON`] characters.
pub fn shorten(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_REASON {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_REASON - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fail_to_fetch_task_shows_alibaba_reason() {
        let body = br#"{"code":"fail_to_fetch_task","message":"{\"request_id\":\"r-1\",\"code\":\"InvalidParameter\",\"message\":\"duration must be between 2 and 15\"}","data":null}"#;
        assert_eq!(
            reason(400, body),
            "InvalidParameter: duration must be between 2 and 15"
        );
    }

    #[test]
    fn code_message_envelope() {
        assert_eq!(
            reason(
                400,
                br#"{"code":"task_not_exist","message":"task_not_exist","data":null}"#
            ),
            "task_not_exist"
        );
        assert_eq!(
            reason(
                400,
                br#"{"code":"invalid_request","message":"model is required","data":null}"#
            ),
            "invalid_request: model is required"
        );
    }

    #[test]
    fn openai_error_object() {
        assert_eq!(
            reason(
                401,
                br#"{"error":{"message":"Invalid token","type":"new_api_error","code":"invalid_api_key"}}"#
            ),
            "invalid_api_key: Invalid token"
        );
        assert_eq!(
            reason(
                400,
                br#"{"error":{"message":"bad model","type":"x","code":null}}"#
            ),
            "bad model"
        );
    }

    #[test]
    fn empty_html_and_text_bodies() {
        assert_eq!(reason(429, b""), "Too Many Requests (no reason given)");
        assert_eq!(
            reason(502, b"<html><body>502 Bad Gateway</body></html>"),
            "Bad Gateway (no reason given)"
        );
        assert_eq!(reason(400, b"  plain\n text "), "plain text");
        assert_eq!(reason(400, b"{}"), "Bad Request (no reason given)");
    }

    #[test]
    fn long_reasons_are_cut() {
        let long = "x".repeat(5000);
        let r = reason(400, long.as_bytes());
        assert_eq!(r.chars().count(), MAX_REASON);
        assert!(r.ends_with('…'));
    }

    #[test]
    fn retry_after_forms() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_400);
        let at = |v| parse_retry_after_at(v, now);
        assert_eq!(at("7"), Some(Duration::from_secs(7)));
        assert_eq!(at(" 1.5 "), Some(Duration::from_millis(1500)));
        // 2015-10-21 07:28:00 is 80 s after `now`; a date in the past means now.
        assert_eq!(
            at("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::from_secs(80))
        );
        assert_eq!(at("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(at("Wed, 21 Oct 2026 07:28:00 GMT"), Some(RETRY_AFTER_CAP));
        assert_eq!(at("1e300"), Some(RETRY_AFTER_CAP));
        assert_eq!(at("18446744073709551615"), Some(RETRY_AFTER_CAP));
        assert_eq!(at("99999999999999999999999999"), Some(RETRY_AFTER_CAP));
        for bad in ["", "-1", "soon", "NaN", "inf", "-inf", "1 2", "0x10"] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn retry_after_never_panics_and_is_capped(v in "\\PC{0,40}") {
            if let Some(d) = parse_retry_after(&v) {
                proptest::prop_assert!(d <= RETRY_AFTER_CAP);
            }
        }

        #[test]
        fn whole_seconds_saturate_at_the_cap(n in proptest::num::u64::ANY) {
            let expected = Duration::from_secs(n).min(RETRY_AFTER_CAP);
            proptest::prop_assert_eq!(parse_retry_after(&n.to_string()), Some(expected));
        }

        #[test]
        fn any_float_text_is_capped(x in proptest::num::f64::ANY) {
            let got = parse_retry_after(&x.to_string());
            if x.is_finite() && x >= 0.0 {
                proptest::prop_assert!(got.is_some_and(|d| d <= RETRY_AFTER_CAP));
            } else {
                proptest::prop_assert!(got.is_none());
            }
        }

        #[test]
        fn http_dates_are_capped(secs in 0u64..4_000_000_000) {
            let at = std::time::UNIX_EPOCH + Duration::from_secs(secs);
            let text = httpdate::fmt_http_date(at);
            let got = parse_retry_after(&text);
            proptest::prop_assert!(got.is_some_and(|d| d <= RETRY_AFTER_CAP), "{text}");
        }
    }

    #[test]
    fn classification_by_status() {
        assert!(matches!(
            classify(429, Some("3"), b""),
            ApiError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            classify(429, None, b""),
            ApiError::RateLimited { retry_after: None }
        ));
        assert!(matches!(
            classify(401, None, b""),
            ApiError::Auth { status: 401, .. }
        ));
        assert!(matches!(
            classify(403, None, b""),
            ApiError::Auth { status: 403, .. }
        ));
        for s in [500, 502, 503, 504] {
            assert!(matches!(
                classify(s, None, b""),
                ApiError::Transient { status: Some(x), .. } if x == s
            ));
        }
        assert!(matches!(
            classify(400, None, b""),
            ApiError::Permanent { status: 400, .. }
        ));
        assert!(matches!(
            classify(404, None, b""),
            ApiError::Permanent { status: 404, .. }
        ));
    }
}
