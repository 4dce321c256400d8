//! Finding an `unknown` submit's task again, on a provider with a task list (DashScope).
//!
//! A create whose answer was lost may have made a paid task, and resending it may pay twice.
//! A provider's [`TaskList`] (asked of the client as a capability, never by its type) lists an
//! account's tasks by model and creation time, and a finished task's query shows the prompt as
//! sent: a task created within the submit's time window, named by no journal
//! line, whose prompt and matchable parameters are the shot's, is that submit's. [`decide`] is
//! the pure decision; [`run`] is the job that lists and queries within the run's query budget
//! and reports one [`Verdict`] per shot to the dispatcher, which journals a match as
//! `reattached` and polls it. Anything short of one sure match leaves the shot `unknown`:
//! adopting a colleague's task is as wrong as paying twice.
//!
//! The list is the account's, but each item names the `api_key_id` that made it. A lost
//! submit's key id is learned from tasks its own run created with a normal answer (the same
//! key, whatever key the current run holds): this run's for its own submits, and for the
//! journal's those the journal shows in the same run ([`Replayed::same_run_tasks`]). Tasks of
//! another key id are then no candidates. A key id is never written anywhere.
//!
//! [`Replayed::same_run_tasks`]: crate::journal::Replayed::same_run_tasks

mod search;

pub use search::run;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::api::task_list::{ListedTask, TaskDetail};
use crate::api::{ApiError, TaskStatus};
use crate::plan::PlannedShot;

/// Clock skew allowed each side of a submit's window (our clock against DashScope's).
pub const SKEW: Duration = Duration::from_secs(120);
/// Tasks created within one shot's window that are queried at most; past it the shot stays
/// `unknown` (a hostile or very busy account cannot make a run query without end).
pub const MAX_CANDIDATES: usize = 20;
/// How long a search waits at most for candidates still running (they show their prompt only
/// once finished) and for a window that has not yet closed: [`super::RunOptions`] default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(600);
/// Longest task id taken from the list (DashScope's are UUIDs); a longer one is not a task.
const MAX_TASK_ID: usize = 128;

/// Whether a listed (or `--attach`ed) id can be a task's: UUID-like characters only, so that
/// nothing else (a path, control characters) is queried, named in an error or journalled.
pub(crate) fn plausible_id(id: &str) -> bool {
    (1..=MAX_TASK_ID).contains(&id.len())
        && (id.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
/// Retries of one list page or query answered 429 or 5xx.
const MAX_TRIES: u32 = 5;

/// What a task must show to be a shot's: the matchable part of its request.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// The model id the provider was sent and lists (`model_name` in DashScope's list).
    pub model: &'static str,
    /// The prompt as sent (`orig_prompt`), trimmed.
    pub prompt: String,
    /// 720 or 1080 (`usage.SR`).
    pub resolution: Option<u32>,
    /// Output seconds; `None` for videoedit's 0 (the input's length).
    pub seconds: Option<u32>,
    /// r2v only (`usage.ratio`).
    pub ratio: Option<String>,
}

impl Signature {
    /// `None` when the shot's model has no native id or its body no prompt.
    pub fn of(shot: &PlannedShot) -> Option<Signature> {
        let spec = crate::plan::model::by_native_or_id(&shot.model)?;
        let model = spec.native_id?;
        let body = shot.body.value();
        let prompt = (body["metadata"]["input"]["prompt"].as_str())
            .or(body["prompt"].as_str())?
            .trim()
            .to_owned();
        Some(Signature {
            model,
            prompt,
            resolution: shot
                .resolution
                .trim()
                .trim_end_matches(['P', 'p'])
                .parse()
                .ok(),
            seconds: (shot.duration > 0).then_some(shot.duration),
            ratio: shot.ratio.clone().filter(|_| spec.usage_shows_ratio),
        })
    }

    /// Whether `task`'s query shows it is not this shot's: finished with a prompt as sent or
    /// parameters that differ (a task still running, or failed, shows none to compare).
    pub fn contradicted_by(&self, task: &TaskDetail) -> bool {
        let seen = Seen::of(task);
        matches!(seen, Seen::Finished { .. }) && self.fit(&seen) == Fit::No
    }

    fn fit(&self, seen: &Seen) -> Fit {
        let Seen::Finished {
            prompt,
            resolution,
            seconds,
            ratio,
        } = seen
        else {
            return match seen {
                Seen::Unfinished => Fit::Unsure,
                _ => Fit::No,
            };
        };
        let same = |a: Option<u32>, b: Option<u32>| a.zip(b).is_none_or(|(a, b)| a == b);
        let fits = prompt.as_deref().map(str::trim) == Some(self.prompt.as_str())
            && same(self.resolution, *resolution)
            && (self.seconds.zip(*seconds)).is_none_or(|(a, b)| (f64::from(a) - b).abs() < 0.5)
            && (self.ratio.as_ref().zip(ratio.as_ref())).is_none_or(|(a, b)| a == b);
        if fits { Fit::Yes } else { Fit::No }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    Yes,
    No,
    /// Not finished: no prompt to compare yet.
    Unsure,
}

/// What a candidate's query showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Pending or running (or its query failed): no prompt to compare yet.
    Unfinished,
    /// Failed, canceled or gone: shows no prompt.
    NoPrompt,
    Finished {
        prompt: Option<String>,
        resolution: Option<u32>,
        seconds: Option<f64>,
        ratio: Option<String>,
    },
}

impl Seen {
    pub fn of(task: &TaskDetail) -> Seen {
        match task.state.status {
            TaskStatus::Waiting | TaskStatus::Running => Seen::Unfinished,
            TaskStatus::Succeeded if task.orig_prompt.is_some() => Seen::Finished {
                prompt: task.orig_prompt.clone(),
                resolution: task.resolution,
                seconds: task.output_seconds,
                ratio: task.ratio.clone(),
            },
            _ => Seen::NoPrompt,
        }
    }
}

/// A task of the account created near an unknown submit, and what its query showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub task_id: String,
    /// `gmt_create`, epoch milliseconds.
    pub created_ms: u64,
    /// The list's `api_key_id`: which key made it.
    pub key_id: Option<String>,
    pub seen: Seen,
}

/// One shot to look for: its signature and its submit's times (epoch milliseconds; `t1` when
/// it was declared unknown, at most two request timeouts after `t0`).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub idx: usize,
    pub signature: Signature,
    pub t0_ms: u64,
    pub t1_ms: u64,
    /// Tasks the submit's own run created with a normal answer: made with its key.
    pub same_key: Arc<HashSet<String>>,
    /// For a submit of an earlier run: when this run started. Runs of a folder never overlap
    /// (its lock), so that submit's task was created before, and every later one may be this
    /// run's own.
    pub before_ms: Option<u64>,
}

impl Target {
    /// The creation times searched at `now_ms`: `[t0 − skew, min(t1, before) + skew]`, within
    /// DashScope's 24 h (`ttl`) and not past now.
    pub fn window(&self, now_ms: u64, ttl: Duration) -> (u64, u64) {
        let skew = SKEW.as_millis() as u64;
        let oldest = now_ms.saturating_sub(ttl.as_millis() as u64);
        let start = self.t0_ms.saturating_sub(skew).max(oldest);
        (start, self.window_end().min(now_ms).max(start))
    }

    /// The window's end once it has closed.
    fn window_end(&self) -> u64 {
        let end = self.before_ms.map_or(self.t1_ms, |b| self.t1_ms.min(b));
        end + SKEW.as_millis() as u64
    }
}

/// Whether a task created at `created_ms` (DashScope's clock) may be one a run started at
/// `started_ms` (ours) created: anything within [`SKEW`] of the start may be, either side.
pub fn maybe_since(created_ms: u64, started_ms: u64) -> bool {
    created_ms + SKEW.as_millis() as u64 > started_ms
}

/// Whether a submit started at `t0_ms` is too old to be found: DashScope forgets tasks after
/// `ttl` (24 h).
pub fn too_old(t0_ms: u64, now_ms: u64, ttl: Duration) -> bool {
    now_ms.saturating_sub(t0_ms) >= ttl.as_millis() as u64
}

/// `t1` for a submit started at `t0_ms`: when it was declared unknown, else (a crash mid-POST)
/// one request timeout later; never more than two timeouts after `t0` (the line may have been
/// written by a later run).
pub fn submit_end(t0_ms: u64, unknown_ms: Option<u64>, timeout: Duration) -> u64 {
    let timeout = timeout.as_millis() as u64;
    unknown_ms
        .unwrap_or(t0_ms + timeout)
        .clamp(t0_ms, t0_ms + 2 * timeout)
}

/// The `api_key_id` the list shows for the tasks in `same_key`, when they agree on one.
pub fn key_id_of<'l>(listed: &'l [ListedTask], same_key: &HashSet<String>) -> Option<&'l str> {
    let mut ids = (listed.iter())
        .filter(|l| same_key.contains(&l.task_id))
        .filter_map(|l| l.api_key_id.as_deref());
    let first = ids.next()?;
    ids.all(|id| id == first).then_some(first)
}

/// Whether a task made by key `task_key` may be the submit of key `ours` (either unknown: yes).
fn same_key(ours: Option<&str>, task_key: Option<&str>) -> bool {
    ours.zip(task_key).is_none_or(|(a, b)| a == b)
}

/// What the search found for one shot.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Exactly one task fits, and no other shot's search claims it.
    Matched { task_id: String, created_ms: u64 },
    /// Several tasks fit, or one that another unknown shot may be as well; they are named.
    Ambiguous { candidates: Vec<String> },
    /// No task fits. `unfinished`: candidates still running when the wait ended; `no_prompt`:
    /// failed ones, which show no prompt to compare.
    NoMatch {
        unfinished: Vec<String>,
        no_prompt: Vec<String>,
    },
    /// One task fits, but it was created within [`SKEW`] of this run's start while this run
    /// had a submit of the same prompt without an answer naming its task: it may be that one.
    MaybeOurs { task_id: String },
    /// More tasks of the model were created within the window than [`MAX_CANDIDATES`].
    TooMany { count: usize },
    /// The list or a query could not be read. `passing`: it may answer later (5xx, 429,
    /// timeouts, or the search's wait ran out), so whether a task exists is still open.
    Error { message: String, passing: bool },
}

impl Verdict {
    fn error(e: &ApiError) -> Verdict {
        Verdict::Error {
            message: e.to_string(),
            passing: matches!(e, ApiError::Transient { .. } | ApiError::RateLimited { .. }),
        }
    }
}

impl Verdict {
    /// Whether `--resubmit-unknown` may send the shot again after this: not while tasks that
    /// fit it exist or may (one still running, or a list that may answer later): one of them
    /// may be its own, paid already.
    pub fn allows_resend(&self) -> bool {
        match self {
            Verdict::Matched { .. } | Verdict::Ambiguous { .. } | Verdict::MaybeOurs { .. } => {
                false
            }
            Verdict::NoMatch { unfinished, .. } => unfinished.is_empty(),
            Verdict::Error { passing, .. } => !passing,
            Verdict::TooMany { .. } => true,
        }
    }

    /// Shot `shot`'s `error` text when it stays `unknown`.
    /// `task_list` names the provider; `ttl` is how long it keeps tasks.
    pub fn explain(&self, shot: &str, task_list: &str, ttl: Duration) -> String {
        let ttl = super::reason::Span(ttl);
        let then = "--resubmit-unknown sends it again";
        match self {
            Verdict::Matched { task_id, .. } => format!("re-attached to task {task_id}"),
            Verdict::Ambiguous { candidates } => format!(
                "its submit's answer was lost and {task_list}'s task list holds tasks that fit it \
                 but cannot be told apart from each other or from another unknown shot's ({}; \
                 seed, media and negative prompt are not shown): check them in the console, \
                 then `run --attach {shot}=TASK` names its own; --resubmit-unknown does not \
                 send it while they exist ({ttl})",
                candidates.join(", ")
            ),
            Verdict::MaybeOurs { task_id } => format!(
                "its submit's answer was lost and the one task that fits it ({task_id}) was \
                 created as this run began, maybe by this run's own submit of the same prompt: \
                 not re-attached; running again tells them apart (this run's tasks are in the \
                 journal by then), or `run --attach {shot}={task_id}` when the console shows \
                 it is its own; --resubmit-unknown does not send it while that task exists \
                 ({ttl})"
            ),
            Verdict::NoMatch {
                unfinished,
                no_prompt,
            } => {
                let mut text = format!(
                    "its submit's answer was lost and no task in {task_list}'s task list fits \
                     it: the submit most likely created nothing"
                );
                if !unfinished.is_empty() {
                    text += &format!(
                        " (tasks {} were still running and could not be compared: running \
                         again checks them; --resubmit-unknown does not send it before then)",
                        unfinished.join(", ")
                    );
                }
                if !no_prompt.is_empty() {
                    text += &format!(
                        " (tasks {} failed and show no prompt to compare)",
                        no_prompt.join(", ")
                    );
                }
                if unfinished.is_empty() {
                    text += &format!("; {then}");
                }
                text
            }
            Verdict::TooMany { count } => format!(
                "its submit's answer was lost and {count} tasks of its model were created \
                 around it, more than the {MAX_CANDIDATES} checked; {then} (may pay twice)"
            ),
            Verdict::Error { message, passing } => {
                let text = format!(
                    "its submit's answer was lost and {task_list}'s task list could not be \
                     searched ({message}); running again searches again"
                );
                if *passing {
                    format!("{text} (--resubmit-unknown does not send it before a search says)")
                } else {
                    format!("{text}, or {then} (may pay twice)")
                }
            }
        }
    }
}

/// One shot to decide: its signature, window and key id when known.
pub type Sought<'a> = (&'a Signature, (u64, u64), Option<&'a str>);

/// Decides each shot against the queried candidates.
pub fn decide(shots: &[Sought], candidates: &[Candidate]) -> Vec<Verdict> {
    let claims: Vec<Vec<(usize, Fit)>> = shots
        .iter()
        .map(|(sig, (start, end), key_id)| {
            (candidates.iter().enumerate())
                .filter(|(_, c)| (*start..=*end).contains(&c.created_ms))
                .filter(|(_, c)| same_key(*key_id, c.key_id.as_deref()))
                .map(|(k, c)| (k, sig.fit(&c.seen)))
                .collect()
        })
        .collect();
    let ids = |ks: &mut dyn Iterator<Item = usize>| -> Vec<String> {
        ks.map(|k| candidates[k].task_id.clone()).collect()
    };
    (0..shots.len())
        .map(|s| {
            let with = |fit: Fit| claims[s].iter().filter(move |c| c.1 == fit).map(|c| c.0);
            let yes: Vec<usize> = with(Fit::Yes).collect();
            let unsure: Vec<usize> = with(Fit::Unsure).collect();
            let claimed_elsewhere = |k: usize| {
                (claims.iter().enumerate())
                    .any(|(o, c)| o != s && c.iter().any(|&(j, f)| j == k && f != Fit::No))
            };
            match yes.as_slice() {
                [] => Verdict::NoMatch {
                    unfinished: ids(&mut unsure.into_iter()),
                    no_prompt: ids(&mut claims[s]
                        .iter()
                        .filter(|(k, _)| candidates[*k].seen == Seen::NoPrompt)
                        .map(|c| c.0)),
                },
                [one] if unsure.is_empty() && !claimed_elsewhere(*one) => Verdict::Matched {
                    task_id: candidates[*one].task_id.clone(),
                    created_ms: candidates[*one].created_ms,
                },
                _ => Verdict::Ambiguous {
                    candidates: ids(&mut yes.into_iter().chain(unsure)),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(prompt: &str) -> Signature {
        Signature {
            model: "wan2.7-t2v",
            prompt: prompt.into(),
            resolution: Some(720),
            seconds: Some(5),
            ratio: None,
        }
    }

    fn done(prompt: &str) -> Seen {
        Seen::Finished {
            prompt: Some(prompt.into()),
            resolution: Some(720),
            seconds: Some(5.0),
            ratio: None,
        }
    }

    fn cand(id: &str, at: u64, seen: Seen) -> Candidate {
        Candidate {
            task_id: id.into(),
            created_ms: at,
            key_id: None,
            seen,
        }
    }

    const W: (u64, u64) = (1_000, 2_000);

    #[test]
    fn one_fitting_task_is_matched_and_others_are_ignored() {
        let a = sig("a red fox");
        let candidates = [
            cand("t1", 1_500, done("a red fox")),
            cand("t2", 1_600, done("a blue fox")),
            cand("t3", 2_500, done("a red fox")),
        ];
        assert_eq!(
            decide(&[(&a, W, None)], &candidates),
            [Verdict::Matched {
                task_id: "t1".into(),
                created_ms: 1_500
            }]
        );
    }

    #[test]
    fn parameters_that_are_shown_must_agree() {
        let a = sig("p");
        let other = |resolution, seconds| Seen::Finished {
            prompt: Some(" p ".into()),
            resolution,
            seconds,
            ratio: Some("9:16".into()),
        };
        let v = decide(
            &[(&a, W, None)],
            &[
                cand("1080", 1_100, other(Some(1080), Some(5.0))),
                cand("10s", 1_200, other(Some(720), Some(10.0))),
            ],
        );
        assert!(matches!(&v[0], Verdict::NoMatch { .. }), "{v:?}");
        let v = decide(&[(&a, W, None)], &[cand("bare", 1_100, other(None, None))]);
        assert!(matches!(&v[0], Verdict::Matched { task_id, .. } if task_id == "bare"));
        let mut r2v = sig("p");
        r2v.ratio = Some("16:9".into());
        let v = decide(
            &[(&r2v, W, None)],
            &[cand("r", 1_100, other(Some(720), Some(5.0)))],
        );
        assert!(matches!(&v[0], Verdict::NoMatch { .. }), "{v:?}");
    }

    #[test]
    fn two_fitting_tasks_are_ambiguous_and_named() {
        let a = sig("p");
        let v = decide(
            &[(&a, W, None)],
            &[cand("t1", 1_100, done("p")), cand("t2", 1_900, done("p"))],
        );
        let Verdict::Ambiguous { candidates } = &v[0] else {
            panic!("{v:?}")
        };
        let mut c = candidates.clone();
        c.sort();
        assert_eq!(c, ["t1", "t2"]);
    }

    #[test]
    fn takes_that_differ_only_in_what_is_not_shown_are_ambiguous_together() {
        let take1 = sig("same prompt");
        let take2 = sig("same prompt");
        let one = decide(
            &[(&take1, W, None), (&take2, W, None)],
            &[cand("t1", 1_500, done("same prompt"))],
        );
        assert!(
            one.iter()
                .all(|v| matches!(v, Verdict::Ambiguous { candidates } if candidates == &["t1"])),
            "{one:?}"
        );
        let apart = decide(
            &[
                (&take1, (1_000, 2_000), None),
                (&take2, (5_000, 6_000), None),
            ],
            &[
                cand("t1", 1_500, done("same prompt")),
                cand("t2", 5_500, done("same prompt")),
            ],
        );
        assert!(matches!(&apart[0], Verdict::Matched { task_id, .. } if task_id == "t1"));
        assert!(matches!(&apart[1], Verdict::Matched { task_id, .. } if task_id == "t2"));
    }

    #[test]
    fn a_running_candidate_blocks_a_sure_match_and_failed_ones_are_named() {
        let a = sig("p");
        let v = decide(
            &[(&a, W, None)],
            &[
                cand("t1", 1_100, done("p")),
                cand("t2", 1_200, Seen::Unfinished),
            ],
        );
        assert!(matches!(&v[0], Verdict::Ambiguous { candidates } if candidates.len() == 2));
        let v = decide(
            &[(&a, W, None)],
            &[
                cand("t2", 1_200, Seen::Unfinished),
                cand("t3", 1_300, Seen::NoPrompt),
            ],
        );
        assert_eq!(
            v,
            [Verdict::NoMatch {
                unfinished: vec!["t2".into()],
                no_prompt: vec!["t3".into()]
            }]
        );
        let text = v[0].explain("a", "DashScope", std::time::Duration::from_secs(24 * 3600));
        for word in [
            "most likely created nothing",
            "t2",
            "t3",
            "--resubmit-unknown",
        ] {
            assert!(text.contains(word), "{word}: {text}");
        }
    }

    #[test]
    fn a_known_key_id_drops_another_keys_tasks() {
        let a = sig("p");
        let by = |id: &str, key: Option<&str>| Candidate {
            key_id: key.map(str::to_owned),
            ..cand(id, 1_500, done("p"))
        };
        let candidates = [by("ours", Some("k1")), by("theirs", Some("k2"))];
        let v = decide(&[(&a, W, None)], &candidates);
        assert!(matches!(&v[0], Verdict::Ambiguous { .. }), "{v:?}");
        let v = decide(&[(&a, W, Some("k1"))], &candidates);
        assert!(matches!(&v[0], Verdict::Matched { task_id, .. } if task_id == "ours"));
        let unnamed = [by("ours", Some("k1")), by("no id", None)];
        let v = decide(&[(&a, W, Some("k1"))], &unnamed);
        assert!(
            matches!(&v[0], Verdict::Ambiguous { .. }),
            "a task without a key id is kept: {v:?}"
        );

        let item = |id: &str, key: &str| ListedTask {
            task_id: id.into(),
            status: TaskStatus::Succeeded,
            model: "wan2.7-t2v".into(),
            created_ms: Some(1_500),
            api_key_id: Some(key.into()),
        };
        let listed = [item("s1", "k1"), item("s2", "k1"), item("x", "k2")];
        let ours: HashSet<String> = ["s1".into(), "s2".into()].into();
        assert_eq!(key_id_of(&listed, &ours), Some("k1"));
        assert_eq!(key_id_of(&listed, &HashSet::new()), None);
        let mixed: HashSet<String> = ["s1".into(), "x".into()].into();
        assert_eq!(key_id_of(&listed, &mixed), None, "disagreeing ids: none");
    }

    #[test]
    fn a_resend_waits_while_a_task_may_be_the_shots() {
        let no_match = |unfinished: &[&str]| Verdict::NoMatch {
            unfinished: unfinished.iter().map(|s| (*s).to_owned()).collect(),
            no_prompt: vec!["failed".into()],
        };
        let error = |e: ApiError| Verdict::error(&e);
        let transient = ApiError::Transient {
            status: Some(503),
            message: "busy".into(),
        };
        let refused = ApiError::Permanent {
            status: 400,
            message: "no list here".into(),
        };
        let cases = [
            (no_match(&[]), true),
            (no_match(&["running"]), false),
            (error(transient), false),
            (error(ApiError::RateLimited { retry_after: None }), false),
            (error(refused), true),
            (Verdict::TooMany { count: 21 }, true),
        ];
        for (verdict, resend) in cases {
            assert_eq!(verdict.allows_resend(), resend, "{verdict:?}");
            let says_it_sends = verdict
                .explain("a", "DashScope", std::time::Duration::from_secs(24 * 3600))
                .contains("--resubmit-unknown sends it");
            assert_eq!(
                says_it_sends,
                resend,
                "{}",
                verdict.explain("a", "DashScope", std::time::Duration::from_secs(24 * 3600))
            );
        }
    }

    #[test]
    fn only_plausible_task_ids_are_taken_from_the_list() {
        assert!(plausible_id("0385dc79-a1b2_C3"));
        for bad in [
            "",
            "a/b",
            "..",
            "\u{1b}[2J",
            "id?x=1",
            "x y",
            &"x".repeat(129),
        ] {
            assert!(!plausible_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn windows_are_widened_by_the_skew_and_kept_within_a_day() {
        let day = Duration::from_secs(24 * 3600);
        let t = Target {
            idx: 0,
            signature: sig("p"),
            t0_ms: 10_000_000,
            t1_ms: 10_005_000,
            same_key: Arc::default(),
            before_ms: None,
        };
        assert_eq!(t.window(20_000_000, day), (9_880_000, 10_125_000));
        assert_eq!(t.window(10_006_000, day), (9_880_000, 10_006_000));
        let now = 10_000_000 + 24 * 3600 * 1000;
        assert_eq!(t.window(now - 1, day).0, 10_000_000 - 1);
        assert!(!too_old(10_000_000, now - 1, day));
        assert!(too_old(10_000_000, now, day));
        let earlier = Target {
            before_ms: Some(10_002_000),
            ..t.clone()
        };
        assert_eq!(
            earlier.window(20_000_000, day),
            (9_880_000, 10_122_000),
            "an earlier run's submit ends by this run's start"
        );
        assert!(maybe_since(10_002_000 - 119_999, 10_002_000));
        assert!(!maybe_since(10_002_000 - 120_000, 10_002_000));
        let timeout = Duration::from_secs(60);
        assert_eq!(submit_end(1_000, None, timeout), 61_000);
        assert_eq!(submit_end(1_000, Some(5_000), timeout), 5_000);
        assert_eq!(submit_end(1_000, Some(9_999_999), timeout), 121_000);
    }

    #[test]
    fn a_signature_is_read_from_the_planned_shot() {
        let mut shot = crate::exec::testing::plan_of(&[("a", &[])]).shots.remove(0);
        shot.body = serde_json::json!({"model": "wan2.7-t2v-2026-04-25", "prompt": "top",
            "metadata": {"input": {"prompt": " inner "}}})
        .into();
        let s = Signature::of(&shot).unwrap();
        assert_eq!((s.model, s.prompt.as_str()), ("wan2.7-t2v", "inner"));
        assert_eq!(
            (s.resolution, s.seconds, s.ratio),
            (Some(720), Some(5), None)
        );
        shot.ratio = Some("16:9".into());
        assert_eq!(Signature::of(&shot).unwrap().ratio, None);
        shot.model = "wan2.7-r2v".into();
        let r2v = Signature::of(&shot).unwrap();
        assert_eq!(
            (r2v.model, r2v.ratio.as_deref()),
            ("wan2.7-r2v", Some("16:9"))
        );
        shot.model = "wan2.6-t2v".into();
        assert_eq!(Signature::of(&shot), None);
    }
}
