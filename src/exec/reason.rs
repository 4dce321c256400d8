//! Why a shot is held, skipped, failed or stays unknown, and what the user can do about it.
//!
//! One kind enum with its data and the words in one `match` (as just's `CompileErrorKind`):
//! the run decides on the variant, never on the text, and the text is written once. A
//! provider's clock (how long a URL may feed a dependant, how long it keeps tasks) is data of
//! the variant, so a provider with other lifetimes is described truthfully.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::report::ResultStatus;

/// What sends a failed or unknown shot again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// `--retry-failed`.
    RetryFailed,
    /// `--resubmit-unknown`.
    ResubmitUnknown,
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Advice::RetryFailed => "--retry-failed sends it again",
            Advice::ResubmitUnknown => "--resubmit-unknown sends it again",
        })
    }
}

/// One reason; its `Display` is the `error` column, the journal's `error` and the progress text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The downloaded video is gone and its URL too old to fetch it again.
    VideoLost { file: String },
    /// The task succeeded but its URL expired before the download.
    UrlExpired,
    /// A task older than the provider's task lifetime never finished.
    NeverFinished { task_id: String, task_ttl: Duration },
    /// An earlier submit's outcome is unknown; where the provider has a task list (`task_list`:
    /// its name, from its row) a run searches it first.
    UnknownSubmit { task_list: Option<&'static str> },
    /// An unknown submit older than the task list keeps tasks: it cannot be searched.
    UnknownTooOld {
        task_ttl: Duration,
        /// The provider's name, from its row.
        task_list: &'static str,
    },
    /// Failed in an earlier run, with the journal's message when it has one.
    FailedEarlier { error: Option<String> },
    /// Approved in `marks.json`: never generated again.
    Approved,
    /// Already sent from a sibling shard folder.
    SentFromSibling { dir: PathBuf },
    /// An unknown submit being looked for in the provider's task list (its name, from its row).
    Searching { task_list: &'static str },
    /// `--max-cost` holds it: its estimate on top of what was sent passes the cap (amounts
    /// as the price table shows them).
    OverBudget {
        estimate: String,
        spent: String,
        cap: String,
    },
    /// Waits for `upstream`, which `--max-cost` held.
    BudgetUpstream { upstream: String },
    /// An upstream ended without a video.
    Upstream {
        upstream: String,
        status: ResultStatus,
    },
    /// An upstream's URL is older than the provider lets a URL feed a dependant.
    UpstreamStale {
        upstream: String,
        feed_ttl: Duration,
    },
    /// The plan preview's words for [`Reason::UpstreamStale`], said before the run.
    UpstreamStaleAhead {
        upstream: String,
        feed_ttl: Duration,
    },
    /// The plan preview: an upstream is held, so this one waits for it.
    UpstreamHeld { upstream: String },
    /// An upstream has no result URL.
    NoUpstreamUrl,
    /// A polled task's answers gave no news for too long; its task stays recorded.
    PollGaveUp { error: String },
    /// Re-attached from the task list, but another answer names that task too.
    Detached { task_id: String, by: String },
    /// A failure met in this run, and what sends the shot again (`None`: the message says).
    Failed {
        error: String,
        advice: Option<Advice>,
    },
    /// A message read back from the journal, or a provider's, shown as it is.
    Said(String),
}

impl Reason {
    /// A failure whose message says nothing about what to do.
    pub fn failed(error: impl Into<String>, advice: Advice) -> Reason {
        Reason::Failed {
            error: error.into(),
            advice: Some(advice),
        }
    }

    /// A failure whose message already says what to do.
    pub fn explained(error: impl Into<String>) -> Reason {
        Reason::Failed {
            error: error.into(),
            advice: None,
        }
    }
}

impl From<String> for Reason {
    fn from(text: String) -> Reason {
        Reason::Said(text)
    }
}

/// A provider lifetime in the words the messages use (`23 h`).
pub(crate) struct Span(pub Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_secs() {
            s if s >= 3600 && s % 3600 == 0 => write!(f, "{} h", s / 3600),
            s if s >= 60 && s % 60 == 0 => write!(f, "{} min", s / 60),
            s => write!(f, "{s} s"),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::VideoLost { file } => write!(
                f,
                "videos/{file} is missing or changed and its URL has expired; \
                 --retry-failed generates it again"
            ),
            Reason::UrlExpired => f.write_str(
                "the result URL expired before the video was downloaded; \
                 --retry-failed generates it again",
            ),
            Reason::NeverFinished { task_id, task_ttl } => write!(
                f,
                "task {task_id} was submitted over {} ago and never finished \
                 (the provider fails such tasks); --retry-failed submits it again",
                Span(*task_ttl)
            ),
            Reason::UnknownSubmit { task_list: None } => f.write_str(
                "an earlier submit's outcome is unknown (a task may exist and be billed); \
                 --resubmit-unknown sends it again, or --attach ID=TASK names the task the \
                 provider's console shows for it",
            ),
            Reason::UnknownSubmit {
                task_list: Some(provider),
            } => write!(
                f,
                "an earlier submit's outcome is unknown (a task may exist and be billed): a run \
                 first looks for its task in {provider}'s task list and re-attaches it if exactly \
                 one fits; otherwise it stays held, --resubmit-unknown sends it again only if no \
                 task fits, and --attach ID=TASK names the task the console shows for it",
            ),
            Reason::UnknownTooOld {
                task_ttl,
                task_list,
            } => write!(
                f,
                "its submit's outcome is unknown and it was sent over {ttl} ago: {task_list} keeps \
                 tasks {ttl}, so it cannot be found in the task list (and its video would have \
                 expired); --resubmit-unknown sends it again",
                ttl = Span(*task_ttl)
            ),
            Reason::FailedEarlier { error } => write!(
                f,
                "{} (--retry-failed submits it again)",
                error.as_deref().unwrap_or("failed in an earlier run")
            ),
            Reason::Approved => f.write_str(
                "approved in marks.json, so never generated again; `shotlist mark MANIFEST \
                 ID --clear` allows it",
            ),
            Reason::SentFromSibling { dir } => write!(
                f,
                "already sent from the sibling shard folder {} (a shot that moved between \
                 shards, or a folder of another N): not sent again here; `shotlist merge` takes \
                 it from there",
                dir.display()
            ),
            Reason::Searching { task_list } => {
                write!(f, "looking for its task in {task_list}'s task list")
            }
            Reason::OverBudget {
                estimate,
                spent,
                cap,
            } => write!(
                f,
                "budget: its est. {estimate} on top of the {spent} this run has sent would pass \
                 --max-cost {cap}; run again with a higher cap to send it (nothing is sent twice)"
            ),
            Reason::BudgetUpstream { upstream } => write!(
                f,
                "budget: waits for `{upstream}`, which --max-cost left unsent"
            ),
            Reason::Upstream { upstream, status } => {
                write!(f, "upstream `{upstream}` is {}", status.as_str())
            }
            Reason::UpstreamStale { upstream, feed_ttl } => write!(
                f,
                "upstream `{upstream}`'s result URL is older than {} and can no longer feed \
                 this shot; re-running `{upstream}` is your call",
                Span(*feed_ttl)
            ),
            Reason::UpstreamStaleAhead { upstream, feed_ttl } => write!(
                f,
                "`{upstream}`'s result URL is older than {} and can no longer feed this shot \
                 (a run skips it); re-running `{upstream}` is your call",
                Span(*feed_ttl)
            ),
            Reason::UpstreamHeld { upstream } => write!(
                f,
                "needs `{upstream}`, which is held: sending `{upstream}` sends it too"
            ),
            Reason::NoUpstreamUrl => f.write_str("an upstream has no result URL"),
            Reason::PollGaveUp { error } => write!(
                f,
                "{error}; the task stays recorded, so running again polls it again"
            ),
            Reason::Detached { task_id, by } => write!(
                f,
                "its submit's answer was lost; it was re-attached to task {task_id} from the \
                 task list, but {by} names that task too, so the re-attachment is undone and \
                 its own submit's outcome stays unknown"
            ),
            Reason::Failed {
                error,
                advice: Some(advice),
            } => write!(f, "{error}; {advice}"),
            Reason::Failed {
                error,
                advice: None,
            }
            | Reason::Said(error) => f.write_str(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H23: Duration = Duration::from_secs(23 * 3600);
    const H24: Duration = Duration::from_secs(24 * 3600);

    fn up() -> String {
        "u".to_owned()
    }

    /// Every variant, in declaration order, with what it says.
    #[test]
    fn each_reason_says_what_happened_and_what_to_do() {
        let cases: Vec<(Reason, &str)> = vec![
            (
                Reason::VideoLost {
                    file: "a.mp4".into(),
                },
                "videos/a.mp4 is missing or changed and its URL has expired; --retry-failed \
                 generates it again",
            ),
            (
                Reason::UrlExpired,
                "the result URL expired before the video was downloaded; --retry-failed \
                 generates it again",
            ),
            (
                Reason::NeverFinished {
                    task_id: "t7".into(),
                    task_ttl: H24,
                },
                "task t7 was submitted over 24 h ago and never finished (the provider fails \
                 such tasks); --retry-failed submits it again",
            ),
            (
                Reason::UnknownSubmit { task_list: None },
                "an earlier submit's outcome is unknown (a task may exist and be billed); \
                 --resubmit-unknown sends it again, or --attach ID=TASK names the task the \
                 provider's console shows for it",
            ),
            (
                Reason::UnknownSubmit {
                    task_list: Some("DashScope"),
                },
                "an earlier submit's outcome is unknown (a task may exist and be billed): a run \
                 first looks for its task in DashScope's task list and re-attaches it if \
                 exactly one fits; otherwise it stays held, --resubmit-unknown sends it again \
                 only if no task fits, and --attach ID=TASK names the task the console shows \
                 for it",
            ),
            (
                Reason::UnknownTooOld {
                    task_ttl: H24,
                    task_list: "DashScope",
                },
                "its submit's outcome is unknown and it was sent over 24 h ago: DashScope keeps \
                 tasks 24 h, so it cannot be found in the task list (and its video would have \
                 expired); --resubmit-unknown sends it again",
            ),
            (
                Reason::FailedEarlier {
                    error: Some("DataInspectionFailed".into()),
                },
                "DataInspectionFailed (--retry-failed submits it again)",
            ),
            (
                Reason::FailedEarlier { error: None },
                "failed in an earlier run (--retry-failed submits it again)",
            ),
            (
                Reason::Approved,
                "approved in marks.json, so never generated again; `shotlist mark MANIFEST ID \
                 --clear` allows it",
            ),
            (
                Reason::SentFromSibling {
                    dir: PathBuf::from("out/shard-2"),
                },
                "already sent from the sibling shard folder out/shard-2 (a shot that moved \
                 between shards, or a folder of another N): not sent again here; `shotlist \
                 merge` takes it from there",
            ),
            (
                Reason::Searching {
                    task_list: "DashScope",
                },
                "looking for its task in DashScope's task list",
            ),
            (
                Reason::OverBudget {
                    estimate: "0.50".into(),
                    spent: "1.00".into(),
                    cap: "1.20".into(),
                },
                "budget: its est. 0.50 on top of the 1.00 this run has sent would pass \
                 --max-cost 1.20; run again with a higher cap to send it (nothing is sent twice)",
            ),
            (
                Reason::BudgetUpstream { upstream: up() },
                "budget: waits for `u`, which --max-cost left unsent",
            ),
            (
                Reason::Upstream {
                    upstream: up(),
                    status: ResultStatus::Failed,
                },
                "upstream `u` is failed",
            ),
            (
                Reason::UpstreamStale {
                    upstream: up(),
                    feed_ttl: H23,
                },
                "upstream `u`'s result URL is older than 23 h and can no longer feed this shot; \
                 re-running `u` is your call",
            ),
            (
                Reason::UpstreamStaleAhead {
                    upstream: up(),
                    feed_ttl: Duration::from_secs(90 * 60),
                },
                "`u`'s result URL is older than 90 min and can no longer feed this shot (a run \
                 skips it); re-running `u` is your call",
            ),
            (
                Reason::UpstreamHeld { upstream: up() },
                "needs `u`, which is held: sending `u` sends it too",
            ),
            (Reason::NoUpstreamUrl, "an upstream has no result URL"),
            (
                Reason::PollGaveUp {
                    error: "no news".into(),
                },
                "no news; the task stays recorded, so running again polls it again",
            ),
            (
                Reason::Detached {
                    task_id: "T".into(),
                    by: "`b`'s submit answer".into(),
                },
                "its submit's answer was lost; it was re-attached to task T from the task list, \
                 but `b`'s submit answer names that task too, so the re-attachment is undone \
                 and its own submit's outcome stays unknown",
            ),
            (
                Reason::failed("content policy", Advice::RetryFailed),
                "content policy; --retry-failed sends it again",
            ),
            (
                Reason::failed("lost", Advice::ResubmitUnknown),
                "lost; --resubmit-unknown sends it again",
            ),
            (
                Reason::explained("download failed; running again downloads it again"),
                "download failed; running again downloads it again",
            ),
            (Reason::Said("as written".into()), "as written"),
        ];
        for (reason, want) in cases {
            assert_eq!(reason.to_string(), want, "{reason:?}");
        }
    }

    #[test]
    fn a_provider_message_that_names_a_flag_still_gets_its_advice() {
        let r = Reason::failed("try --retry-failed yourself", Advice::RetryFailed);
        assert!(r.to_string().ends_with("; --retry-failed sends it again"));
    }

    #[test]
    fn spans_read_as_the_messages_write_them() {
        let s = |secs| Span(Duration::from_secs(secs)).to_string();
        assert_eq!(
            [s(23 * 3600), s(24 * 3600), s(120), s(45), s(3601)],
            ["23 h", "24 h", "2 min", "45 s", "3601 s"]
        );
    }
}
