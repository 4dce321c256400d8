//! What a `run` would do with each shot, read from the output folder and never written to it.
//!
//! The same [`decide`] the executor starts from gives each shot's step, so `plan` and `run`
//! cannot disagree; a shot sent again says why: new, or which fields of its request changed
//! since the `plan.json` the last run left (Nextflow users find the same in `-dump-hashes`).

use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use super::reason::Reason;
use super::resume::{ResumeFlags, Start, can_feed, decide, histories, video_intact};
use crate::api::provider::Provider;
use crate::cost::{Money, PriceBook};
use crate::journal::Replayed;
use crate::plan::{Plan, PlannedShot};
use crate::report::{PLAN_FILE, VIDEOS_DIR};

/// The reason of a shot that has never been sent in any form.
pub const NEW: &str = "new";

/// What a run would do with a shot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Send,
    Poll,
    Download,
    Held,
    Done,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Send,
        Action::Poll,
        Action::Download,
        Action::Held,
        Action::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Send => "send",
            Action::Poll => "poll",
            Action::Download => "download",
            Action::Held => "held",
            Action::Done => "done",
        }
    }
}

/// One shot's line of the preview: what `plan --format json` adds to the shot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShotPreview {
    pub action: Action,
    pub reason: String,
    /// What changed in the request since the last run's plan (`prompt`, `upstream teaser-A1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// What the shot's task is estimated to bill; `null` without a price.
    pub cost: Option<Money>,
}

/// The preview of a whole plan.
#[derive(Debug, Clone)]
pub struct Preview {
    pub shots: Vec<ShotPreview>,
}

impl Preview {
    pub fn count(&self, action: Action) -> usize {
        self.shots.iter().filter(|s| s.action == action).count()
    }
}

/// Compares `plan` with what `out_dir` holds: its journal (`replayed`, read by the caller, who
/// applied its retakes to `plan`), videos and last `plan.json`, for a run on `provider`.
pub fn preview(
    plan: &Plan,
    out_dir: &Path,
    replayed: &Replayed,
    provider: &Provider,
    flags: ResumeFlags,
    prices: &PriceBook,
) -> Preview {
    let history = histories(plan, replayed);
    let previous = previous_plan(&out_dir.join(PLAN_FILE));
    let old_index = previous.as_ref().map(Plan::id_index).unwrap_or_default();
    let old_shot = |id: &str| Some(&previous.as_ref()?.shots[*old_index.get(id)?]);
    let ids_in_journal: HashSet<&str> = replayed.shots.keys().map(|(id, _)| id.as_str()).collect();
    let index = plan.id_index();
    let new_key = |id: &str| Some(plan.shots[*index.get(id)?].key.as_str());
    let id = |u: usize| plan.shots[u].id.as_str();
    let videos = out_dir.join(VIDEOS_DIR);
    let now = SystemTime::now();
    let mut shots: Vec<Option<ShotPreview>> = vec![None; plan.shots.len()];
    for i in plan.topological_order() {
        let shot = &plan.shots[i];
        let start = decide(history[i], now, provider, flags, |h| {
            super::resume::own_video(shot, h) && video_intact(&videos, h)
        });
        let (action, reason, changed) = match start {
            Start::Done => (
                Action::Done,
                "downloaded; the video is intact".into(),
                vec![],
            ),
            Start::Download { .. } => (
                Action::Download,
                "succeeded, but the video is missing or changed: downloads it again \
                 (nothing is resubmitted)"
                    .into(),
                vec![],
            ),
            Start::Poll { task_id } => (
                Action::Poll,
                format!("in flight as task {task_id}: polls it, never resubmits"),
                vec![],
            ),
            Start::Hold { reason, .. } => (Action::Held, reason.to_string(), vec![]),
            Start::Submit => {
                let held_up = shot
                    .depends_on
                    .iter()
                    .copied()
                    .find(|&u| shots[u].as_ref().is_some_and(|p| p.action == Action::Held));
                let stale_up = shot.depends_on.iter().copied().find(|&u| {
                    let fed = shots[u]
                        .as_ref()
                        .is_some_and(|p| matches!(p.action, Action::Done | Action::Download));
                    fed && history[u]
                        .is_some_and(|h| !can_feed(h.finished_at.as_deref(), now, &provider.timing))
                });
                let (held_up, stale_up) = (held_up.map(id), stale_up.map(id));
                if let Some(up) = held_up {
                    let reason = Reason::UpstreamHeld {
                        upstream: up.to_owned(),
                    };
                    (Action::Held, reason.to_string(), vec![])
                } else if let Some(up) = stale_up {
                    let reason = Reason::UpstreamStaleAhead {
                        upstream: up.to_owned(),
                        feed_ttl: provider.timing.feed_ttl,
                    };
                    (Action::Held, reason.to_string(), vec![])
                } else if let Some(h) = history[i] {
                    let why = if h.attempts > 0 && h.task_id.is_none() {
                        "earlier submits were refused (429/5xx: no task was created)"
                    } else {
                        "sent again as the flags ask"
                    };
                    (Action::Send, why.into(), vec![])
                } else if let Some(old) = old_shot(&shot.id).filter(|o| o.key != shot.key) {
                    let ups = shot.depends_on.iter().map(|&u| id(u));
                    let changed = changes(
                        old,
                        shot,
                        ups,
                        |id| Some(old_shot(id)?.key.as_str()),
                        new_key,
                    );
                    let reason = if changed.is_empty() {
                        "its request changed".to_owned()
                    } else {
                        format!("changed: {}", changed.join(", "))
                    };
                    (Action::Send, reason, changed)
                } else if ids_in_journal.contains(shot.id.as_str()) {
                    (
                        Action::Send,
                        "its request changed (the earlier request is not in plan.json)".into(),
                        vec![],
                    )
                } else {
                    (Action::Send, NEW.into(), vec![])
                }
            }
        };
        shots[i] = Some(ShotPreview {
            action,
            reason,
            changed,
            cost: prices.shot(shot),
        });
    }
    Preview {
        shots: shots.into_iter().flatten().collect(),
    }
}

/// Larger `plan.json` files are not read for the changed fields (about a million shots).
const MAX_PREVIOUS_PLAN: u64 = 1 << 30;

/// The `plan.json` a run left, if it reads as a plan and is not too large.
fn previous_plan(path: &Path) -> Option<Plan> {
    let file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() > MAX_PREVIOUS_PLAN {
        return None;
    }
    serde_json::from_reader(std::io::BufReader::new(file)).ok()
}

/// The fields whose values differ between the old and new request, by their last name
/// (`prompt`, `seed`, `media`), then each upstream whose request changed.
fn changes<'a, 'b>(
    old: &PlannedShot,
    new: &PlannedShot,
    new_ups: impl Iterator<Item = &'b str>,
    old_key: impl Fn(&str) -> Option<&'a str>,
    new_key: impl Fn(&str) -> Option<&'b str>,
) -> Vec<String> {
    let mut out = Vec::new();
    diff(&old.body.value(), &new.body.value(), "", &mut out);
    for up in new_ups {
        if old_key(up) != new_key(up) {
            out.push(format!("upstream {up}"));
        }
    }
    out
}

fn diff(a: &Value, b: &Value, name: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                diff(va, b.get(k).unwrap_or(&Value::Null), k, out);
            }
            for (k, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                diff(&Value::Null, vb, k, out);
            }
        }
        _ if a != b && !out.iter().any(|n| n == name) => out.push(name.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{self, Entry, EventKind, Journal};

    fn replayed(dir: &Path) -> Replayed {
        journal::replay_file(&dir.join(journal::FILE_NAME), false).unwrap()
    }
    use serde_json::json;

    fn stamped(e: Entry, secs_ago: u64) -> Entry {
        let ts = SystemTime::now() - std::time::Duration::from_secs(secs_ago);
        Entry {
            ts: humantime::format_rfc3339_millis(ts).to_string(),
            ..e
        }
    }

    #[test]
    fn a_dependant_of_a_video_too_old_to_feed_it_is_held_and_refused_submits_are_sent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(VIDEOS_DIR)).unwrap();
        std::fs::write(dir.path().join(VIDEOS_DIR).join("a.mp4"), b"clip").unwrap();
        let sha = crate::exec::sha256_file(&dir.path().join(VIDEOS_DIR).join("a.mp4")).unwrap();
        let plan = crate::exec::testing::plan_of(&[("a", &[]), ("b", &["a"]), ("c", &[])]);
        let mut journal = Journal::open(&dir.path().join(journal::FILE_NAME)).unwrap();
        let old = 25 * 3600;
        for e in [
            Entry::new(EventKind::Submitting, "a", "key-a"),
            Entry::new(EventKind::Submitted, "a", "key-a").task_id("t1"),
            Entry::new(EventKind::Succeeded, "a", "key-a").url("http://v/a.mp4"),
            Entry::new(EventKind::Downloaded, "a", "key-a").file("a.mp4", &sha, 4),
            Entry::new(EventKind::Submitting, "c", "key-c"),
            Entry::new(EventKind::Refused, "c", "key-c").error("429"),
        ] {
            journal.append(&stamped(e, old)).unwrap();
        }
        drop(journal);
        let p = preview(
            &plan,
            dir.path(),
            &replayed(dir.path()),
            &crate::api::gravitex::PROVIDER,
            ResumeFlags::default(),
            &PriceBook::default(),
        );
        let actions: Vec<Action> = p.shots.iter().map(|s| s.action).collect();
        assert_eq!(actions, [Action::Done, Action::Held, Action::Send]);
        assert!(
            p.shots[1].reason.contains("older than 23 h"),
            "{}",
            p.shots[1].reason
        );
        assert!(
            p.shots[2].reason.contains("refused"),
            "{}",
            p.shots[2].reason
        );
        assert_eq!(p.shots[0].cost, Money::parse("0.5").ok());
    }

    #[test]
    fn an_unknown_on_dashscope_says_a_run_looks_for_its_task_first() {
        let dir = tempfile::tempdir().unwrap();
        let plan = crate::exec::testing::plan_of(&[("a", &[])]);
        let mut journal = Journal::open(&dir.path().join(journal::FILE_NAME)).unwrap();
        journal
            .append(&Entry::new(EventKind::Submitting, "a", "key-a"))
            .unwrap();
        drop(journal);
        let reason = |provider| {
            let p = preview(
                &plan,
                dir.path(),
                &replayed(dir.path()),
                provider,
                ResumeFlags::default(),
                &PriceBook::default(),
            );
            assert_eq!(p.shots[0].action, Action::Held);
            p.shots[0].reason.clone()
        };
        let native = reason(&crate::api::dashscope::PROVIDER);
        assert!(native.contains("DashScope's task list"), "{native}");
        assert!(native.contains("--resubmit-unknown"), "{native}");
        let gateway = reason(&crate::api::gravitex::PROVIDER);
        assert!(!gateway.contains("task list"), "{gateway}");
        assert!(gateway.contains("--resubmit-unknown"), "{gateway}");
    }

    #[test]
    fn changed_fields_are_named_once_by_their_last_name() {
        let mut out = Vec::new();
        diff(
            &json!({"prompt": "a", "metadata": {"input": {"prompt": "a"}, "parameters": {"seed": 1}}}),
            &json!({"prompt": "b", "metadata": {"input": {"prompt": "b"}, "parameters": {"seed": 2, "ratio": "1:1"}}}),
            "",
            &mut out,
        );
        assert_eq!(out, ["prompt", "seed", "ratio"]);
    }
}
