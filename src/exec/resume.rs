//! What a run does with each shot given what the journal says about its key.
//!
//! The rules are those of `docs/executor.md`, "Running again: the resume rules": a verified
//! download is done; an unfinished task is polled again, never resubmitted; an unknown or
//! failed outcome is resent only when the user asks; a result URL that is too old cannot be
//! used any more.

use std::time::{Duration, SystemTime};

use crate::api::Timing;
use crate::api::provider::Provider;
use crate::journal::{History, Phase, Replayed};
use crate::plan::Plan;
use crate::report::ResultStatus;

use super::reason::Reason;

/// The user's resend choices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumeFlags {
    pub retry_failed: bool,
    pub resubmit_unknown: bool,
}

/// The first step for one shot in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Downloaded earlier and the file still matches: nothing to do.
    Done,
    /// Succeeded earlier, video not on disk, URL still fresh: download again.
    Download { url: String },
    /// Submitted earlier, not finished: poll this task id.
    Poll { task_id: String },
    /// Submit (first time, or a resend the flags allow).
    Submit,
    /// Not sent; stays in this state with this reason.
    Hold {
        status: ResultStatus,
        reason: Reason,
    },
}

fn age(ts: Option<&str>, now: SystemTime) -> Option<Duration> {
    let t = humantime::parse_rfc3339_weak(ts?).ok()?;
    Some(now.duration_since(t).unwrap_or_default())
}

/// Decides the first step. `video_intact(history)` says whether the recorded download is still
/// on disk with its hash (see [`video_intact`]); `provider` gives task and URL life
/// and what an `unknown` is told ([`Reason::UnknownSubmit`]).
pub fn decide(
    history: Option<&History>,
    now: SystemTime,
    provider: &Provider,
    flags: ResumeFlags,
    video_intact: impl FnOnce(&History) -> bool,
) -> Start {
    let timing = &provider.timing;
    let Some(h) = history else {
        return Start::Submit;
    };
    let url_fresh = || {
        h.url
            .clone()
            .filter(|_| age(h.finished_at.as_deref(), now).is_some_and(|a| a < timing.url_ttl))
    };
    let resend_or = |allowed: bool, status: ResultStatus, reason: Reason| {
        if allowed {
            Start::Submit
        } else {
            Start::Hold { status, reason }
        }
    };
    match h.phase() {
        Phase::NotStarted => Start::Submit,
        Phase::Downloaded => {
            let file = h.file.as_deref().unwrap_or_default();
            if video_intact(h) {
                Start::Done
            } else if let Some(url) = url_fresh() {
                Start::Download { url }
            } else {
                resend_or(
                    flags.retry_failed,
                    ResultStatus::Expired,
                    Reason::VideoLost {
                        file: file.to_owned(),
                    },
                )
            }
        }
        Phase::Succeeded => match url_fresh() {
            Some(url) => Start::Download { url },
            None => resend_or(
                flags.retry_failed,
                ResultStatus::Expired,
                Reason::UrlExpired,
            ),
        },
        Phase::InFlight => {
            let task_id = h.task_id.clone().unwrap_or_default();
            if age(h.submitted_at.as_deref(), now).is_some_and(|a| a < timing.task_ttl) {
                Start::Poll { task_id }
            } else {
                resend_or(
                    flags.retry_failed,
                    ResultStatus::Failed,
                    Reason::NeverFinished {
                        task_id,
                        task_ttl: timing.task_ttl,
                    },
                )
            }
        }
        Phase::Unknown => resend_or(
            flags.resubmit_unknown,
            ResultStatus::Unknown,
            Reason::UnknownSubmit {
                task_list: provider.capabilities.task_list.then_some(provider.name),
            },
        ),
        Phase::Failed => resend_or(
            flags.retry_failed,
            ResultStatus::Failed,
            Reason::FailedEarlier {
                error: h.error.clone(),
            },
        ),
        Phase::Expired => resend_or(
            flags.retry_failed,
            ResultStatus::Expired,
            Reason::UrlExpired,
        ),
    }
}

/// An approved video is never generated again, whatever the flags: a submit becomes a hold.
pub fn keep_approved(start: Start, approved: bool) -> Start {
    match start {
        Start::Submit if approved => Start::Hold {
            status: ResultStatus::Skipped,
            reason: Reason::Approved,
        },
        other => other,
    }
}

/// Each shot's history: the lines of its own (id, key); else, so that renaming a shot does not
/// resend it, the most recent history with its key under an id the plan no longer has (each
/// such history serves one shot at most). Own lines that leave an `unknown` without the time of
/// its submit (written about the old id's lost submit: an `unknown`, a re-attachment undone)
/// give way to the old id's history, which has it: a search needs it.
pub fn histories<'r>(plan: &Plan, journal: &'r Replayed) -> Vec<Option<&'r History>> {
    let ids: std::collections::HashSet<&str> = plan.shots.iter().map(|s| s.id.as_str()).collect();
    let mut orphans: std::collections::HashMap<&str, Vec<&'r History>> = Default::default();
    for ((id, key), h) in &journal.shots {
        if !ids.contains(id.as_str()) {
            orphans.entry(key.as_str()).or_default().push(h);
        }
    }
    for list in orphans.values_mut() {
        list.sort_by_key(|h| h.line);
    }
    plan.shots
        .iter()
        .map(|shot| {
            let own = journal.get(&shot.id, &shot.key);
            let timeless =
                own.is_none_or(|h| h.phase() == Phase::Unknown && h.submitting_at.is_none());
            (timeless.then(|| orphans.get_mut(shot.key.as_str())?.pop()))
                .flatten()
                .or(own)
        })
        .collect()
}

/// Whether the video `h` records is in `videos_dir` with its size and SHA-256 (the size is
/// checked first, so a changed file is usually caught without reading it). A symbolic link is
/// never taken for a video: it is not followed.
pub fn video_intact(videos_dir: &std::path::Path, h: &History) -> bool {
    let (Some(file), Some(sha)) = (h.file.as_deref(), h.sha256.as_deref()) else {
        return false;
    };
    let Some(path) = super::job::video_path(videos_dir, file) else {
        return false;
    };
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    if h.bytes.is_some_and(|b| b != meta.len()) {
        return false;
    }
    super::sha256_file(&path).is_some_and(|got| got == sha)
}

/// Whether the video `h` records is `shot`'s: its planned file, an earlier one kept under
/// `superseded/`, or the file of the id it was renamed from (a history taken over from an id the
/// plan no longer has). A line of the shot's own id naming another file (another shot's video)
/// is not believed.
pub fn own_video(shot: &crate::plan::PlannedShot, h: &History) -> bool {
    h.file.as_deref().is_some_and(|f| {
        f == shot.file
            || f.starts_with(&format!("{}/", super::outdir::SUPERSEDED_DIR))
            || h.id != shot.id
    })
}

/// Whether an upstream URL stamped `finished_at` may still feed a dependant.
pub fn can_feed(finished_at: Option<&str>, now: SystemTime, timing: &Timing) -> bool {
    age(finished_at, now).is_some_and(|a| a < timing.feed_ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Entry, EventKind, replay};

    const KEY: &str = "k";
    const PROVIDER: Provider = crate::api::gravitex::PROVIDER;
    const TIMING: Timing = PROVIDER.timing;

    fn at(secs_ago: u64, event: EventKind) -> Entry {
        let mut e = Entry::new(event, "a", KEY);
        e.ts = humantime::format_rfc3339_millis(SystemTime::now() - Duration::from_secs(secs_ago))
            .to_string();
        e
    }

    fn start(events: &[Entry], flags: ResumeFlags, file_ok: bool) -> Start {
        let map = replay(events);
        decide(
            map.get("a", KEY),
            SystemTime::now(),
            &PROVIDER,
            flags,
            |_| file_ok,
        )
    }

    const NONE: ResumeFlags = ResumeFlags {
        retry_failed: false,
        resubmit_unknown: false,
    };

    fn done_events(secs_ago: u64) -> Vec<Entry> {
        vec![
            at(secs_ago, EventKind::Submitting),
            at(secs_ago, EventKind::Submitted).task_id("t"),
            at(secs_ago, EventKind::Succeeded).url("http://v/1.mp4"),
            at(secs_ago, EventKind::Downloaded).file("a.mp4", "ff", 3),
        ]
    }

    #[test]
    fn new_key_is_submitted() {
        assert_eq!(start(&[], NONE, false), Start::Submit);
    }

    #[test]
    fn verified_download_is_done() {
        assert_eq!(start(&done_events(10), NONE, true), Start::Done);
    }

    #[test]
    fn changed_file_with_fresh_url_is_downloaded_again() {
        assert_eq!(
            start(&done_events(10), NONE, false),
            Start::Download {
                url: "http://v/1.mp4".into()
            }
        );
    }

    #[test]
    fn changed_file_with_old_url_is_held_as_expired() {
        let s = start(&done_events(25 * 3600), NONE, false);
        assert!(matches!(
            s,
            Start::Hold {
                status: ResultStatus::Expired,
                ..
            }
        ));
        assert_eq!(
            start(
                &done_events(25 * 3600),
                ResumeFlags {
                    retry_failed: true,
                    resubmit_unknown: false
                },
                false
            ),
            Start::Submit
        );
    }

    #[test]
    fn unfinished_task_is_polled_while_young() {
        let events = [
            at(60, EventKind::Submitting),
            at(60, EventKind::Submitted).task_id("t7"),
        ];
        assert_eq!(
            start(&events, NONE, false),
            Start::Poll {
                task_id: "t7".into()
            }
        );
        let old = [
            at(90_000, EventKind::Submitting),
            at(90_000, EventKind::Submitted).task_id("t7"),
        ];
        assert!(matches!(
            start(&old, NONE, false),
            Start::Hold {
                status: ResultStatus::Failed,
                ..
            }
        ));
    }

    #[test]
    fn open_submit_is_unknown_and_resent_only_with_the_flag() {
        let events = [at(5, EventKind::Submitting)];
        assert!(matches!(
            start(&events, NONE, false),
            Start::Hold {
                status: ResultStatus::Unknown,
                ..
            }
        ));
        let flags = ResumeFlags {
            retry_failed: true,
            resubmit_unknown: false,
        };
        assert!(matches!(start(&events, flags, false), Start::Hold { .. }));
        let flags = ResumeFlags {
            retry_failed: false,
            resubmit_unknown: true,
        };
        assert_eq!(start(&events, flags, false), Start::Submit);
    }

    #[test]
    fn failed_is_resent_only_with_retry_failed() {
        let events = [
            at(5, EventKind::Submitting),
            at(5, EventKind::Submitted).task_id("t"),
            at(5, EventKind::Failed).error("DataInspectionFailed"),
        ];
        match start(&events, NONE, false) {
            Start::Hold { status, reason } => {
                assert_eq!(status, ResultStatus::Failed);
                assert!(
                    reason.to_string().contains("DataInspectionFailed"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        let flags = ResumeFlags {
            retry_failed: true,
            resubmit_unknown: false,
        };
        assert_eq!(start(&events, flags, false), Start::Submit);
    }

    #[test]
    fn succeeded_not_downloaded_is_downloaded_not_resubmitted() {
        let events = [
            at(5, EventKind::Submitting),
            at(5, EventKind::Submitted).task_id("t"),
            at(5, EventKind::Succeeded).url("http://v/2.mp4"),
        ];
        assert_eq!(
            start(&events, NONE, false),
            Start::Download {
                url: "http://v/2.mp4".into()
            }
        );
    }

    #[test]
    fn an_intact_video_needs_its_size_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.mp4"), b"abcd").unwrap();
        let sha = crate::exec::sha256_file(&dir.path().join("a.mp4")).unwrap();
        let h = |bytes: u64, sha: &str| History {
            file: Some("a.mp4".into()),
            sha256: Some(sha.into()),
            bytes: Some(bytes),
            ..History::default()
        };
        assert!(video_intact(dir.path(), &h(4, &sha)));
        assert!(!video_intact(dir.path(), &h(5, &sha)));
        std::fs::write(dir.path().join("a.mp4"), b"abce").unwrap();
        assert!(!video_intact(dir.path(), &h(4, &sha)));
        std::fs::remove_file(dir.path().join("a.mp4")).unwrap();
        assert!(!video_intact(dir.path(), &h(4, &sha)));
    }

    #[test]
    fn feeding_urls_must_be_younger_than_23_hours() {
        let now = SystemTime::now();
        let stamp =
            |ago: u64| humantime::format_rfc3339_millis(now - Duration::from_secs(ago)).to_string();
        assert!(can_feed(Some(&stamp(22 * 3600)), now, &TIMING));
        assert!(!can_feed(Some(&stamp(23 * 3600 + 1)), now, &TIMING));
        assert!(!can_feed(None, now, &TIMING));
    }

    #[test]
    fn histories_go_by_id_and_key_and_follow_a_renamed_shot_once() {
        let mut plan = crate::exec::testing::plan_of(&[("t1", &[]), ("t2", &[]), ("t3", &[])]);
        for s in &mut plan.shots {
            s.key = "same".into();
        }
        let line = |id: &str| Entry::new(EventKind::Submitting, id, "same");
        let journal = replay(&[line("t1"), line("old-a"), line("old-b"), line("old-b")]);
        let got: Vec<Option<(&str, u32)>> = histories(&plan, &journal)
            .into_iter()
            .map(|h| h.map(|h| (h.id.as_str(), h.attempts)))
            .collect();
        assert_eq!(
            got,
            [Some(("t1", 1)), Some(("old-b", 2)), Some(("old-a", 1))]
        );
    }

    #[test]
    fn a_renamed_shots_unknown_without_its_submit_gives_way_to_the_old_history() {
        let plan = crate::exec::testing::plan_of(&[("new", &[])]);
        let line = |event, id: &str| Entry::new(event, id, "key-new");
        let lost = [
            line(EventKind::Submitting, "old"),
            line(EventKind::Unknown, "old"),
        ];
        let undone = line(EventKind::Unknown, "new").task_id("T");
        let journal = replay(lost.iter().chain([&undone]));
        let got = histories(&plan, &journal)[0].unwrap();
        assert_eq!((got.id.as_str(), got.phase()), ("old", Phase::Unknown));
        assert!(got.submitting_at.is_some());

        let found = line(EventKind::Reattached, "new").task_id("R");
        let journal = replay(lost.iter().chain([&found]));
        let got = histories(&plan, &journal)[0].unwrap();
        assert_eq!((got.id.as_str(), got.phase()), ("new", Phase::InFlight));
    }

    #[test]
    fn a_journal_naming_another_shots_file_is_not_believed_a_renamed_shots_is() {
        let plan = crate::exec::testing::plan_of(&[("a", &[]), ("b", &[])]);
        let at = |id: &str, file: &str| History {
            id: id.into(),
            file: Some(file.into()),
            sha256: Some("s".into()),
            ..History::default()
        };
        let b = &plan.shots[1];
        assert!(own_video(b, &at("b", "b.mp4")));
        assert!(!own_video(b, &at("b", "a.mp4")), "another shot's video");
        assert!(own_video(b, &at("b", "superseded/b.k1.mp4")));
        assert!(
            own_video(b, &at("old-b", "old-b.mp4")),
            "renamed from old-b"
        );
        assert!(!own_video(b, &History::default()));
    }
}
