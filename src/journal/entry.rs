//! One journal line and its event kinds.

use serde::{Deserialize, Serialize};

use crate::api::TaskExtras;
use crate::cost::Money;

/// What happened (or is about to happen) to one shot's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// About to POST the request (written before it leaves).
    Submitting,
    /// The provider accepted the submit; `task_id` is set.
    Submitted,
    /// The provider answered the submit with 429 or 5xx: no task was created.
    Refused,
    /// The task succeeded; `url` is set.
    Succeeded,
    /// The task (or its submit) failed for good; `error` is set.
    Failed,
    /// The video is on disk; `file`, `sha256` and `bytes` are set.
    Downloaded,
    /// A submit whose outcome cannot be known: resent only with `--resubmit-unknown`.
    Unknown,
    /// An `unknown` submit's task was found again in the provider's task list (DashScope), or
    /// named by the user (`--attach`, with `by: "user"`); `task_id` is set. Replayed like
    /// `submitted`: the task is polled, never resent.
    Reattached,
    /// Not run because an upstream did not give a usable video; `error` says why.
    Skipped,
    /// The result URL expired before the video was downloaded.
    Expired,
    /// A video was moved out of the way of a newer request for its file name; `file` is its
    /// new place (under `superseded/`), `sha256` and `bytes` what it holds.
    Superseded,
}

/// One line of `journal.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339 time of writing.
    pub ts: String,
    pub event: EventKind,
    /// The shot id: with `key`, the shot's identity.
    pub id: String,
    /// The shot's request key.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// On `succeeded`: what the provider added (rewritten prompt, billed seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<TaskExtras>,
    /// On `reattached`: who named the task, `user` for `run --attach` (absent: the task list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// On `submitting`: what the task is estimated to bill, in `currency` (the ledger's
    /// "spent" sums these, so a later price change does not rewrite what was paid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// On `submitting`: the model id sent to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// On `submitting`: the seed sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u32>,
    /// On `submitting`: the shard (`K/N`) that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

impl Entry {
    /// An entry stamped now with no optional fields.
    pub fn new(event: EventKind, id: &str, key: &str) -> Entry {
        Entry::at(event, id, key, std::time::SystemTime::now())
    }

    /// An entry stamped `at` with no optional fields.
    pub fn at(event: EventKind, id: &str, key: &str, at: std::time::SystemTime) -> Entry {
        Entry {
            ts: humantime::format_rfc3339_millis(at).to_string(),
            event,
            id: id.to_owned(),
            key: key.to_owned(),
            task_id: None,
            url: None,
            error: None,
            file: None,
            sha256: None,
            bytes: None,
            attempt: None,
            extras: None,
            by: None,
            cost: None,
            currency: None,
            model: None,
            seed: None,
            shard: None,
        }
    }

    pub fn task_id(mut self, task_id: impl Into<String>) -> Entry {
        self.task_id = Some(task_id.into());
        self
    }
    pub fn url(mut self, url: impl Into<String>) -> Entry {
        self.url = Some(url.into());
        self
    }
    pub fn error(mut self, error: impl Into<String>) -> Entry {
        self.error = Some(error.into());
        self
    }
    pub fn by(mut self, by: &str) -> Entry {
        self.by = Some(by.to_owned());
        self
    }
    pub fn attempt(mut self, attempt: u32) -> Entry {
        self.attempt = Some(attempt);
        self
    }
    /// Sets `extras` unless they are empty.
    pub fn extras(mut self, extras: &TaskExtras) -> Entry {
        self.extras = (!extras.is_empty()).then(|| extras.clone());
        self
    }
    pub fn file(mut self, file: &str, sha256: &str, bytes: u64) -> Entry {
        self.file = Some(file.to_owned());
        self.sha256 = Some(sha256.to_owned());
        self.bytes = Some(bytes);
        self
    }

    /// The entry's time, if it parses.
    pub fn time(&self) -> Option<std::time::SystemTime> {
        humantime::parse_rfc3339_weak(&self.ts).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn succeeded_lines_with_and_without_extras_read_back() {
        let old = r#"{"ts":"2026-11-24T02:34:55.781Z","event":"succeeded","id":"a","key":"k","url":"http://v/a.mp4"}"#;
        let old: Entry = serde_json::from_str(old).unwrap();
        assert_eq!(old.extras, None);
        assert_eq!(
            Entry::new(EventKind::Succeeded, "a", "k")
                .extras(&TaskExtras::default())
                .extras,
            None
        );
        let extras = TaskExtras {
            actual_prompt: Some("a cat, rewritten".into()),
            usage_s: Some(10.04),
            ..TaskExtras::default()
        };
        let new = Entry::new(EventKind::Succeeded, "a", "k").extras(&extras);
        let line = serde_json::to_string(&new).unwrap();
        assert!(
            line.contains(r#""extras":{"actual_prompt":"a cat, rewritten","usage_s":10.04}"#),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), new);
    }
}
