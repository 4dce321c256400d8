//! `run --attach SHOT=TASK`: the user names the task an `unknown` submit created.
//!
//! A lost create answer leaves a shot `unknown`; where the provider has a task list (DashScope)
//! a search of it may find its task, but not when several fit (takes differing only by seed), and the gateway has
//! no list at all. The user can find the task in the provider's console; this lets them say so
//! instead of resending (which may pay twice). Everything is checked before anything is sent:
//! the shot must be selected and `unknown`, the task id plausible and named by no journal line,
//! and one query must show the task exists (and, through a task list's detailed query, that a
//! prompt it shows is the shot's). The attachment is then journalled as a `reattached` line `by: "user"` and replays
//! like `submitted`: polled and downloaded, never sent again.

use std::collections::HashSet;
use std::str::FromStr;

use super::dispatcher::{selection, start_of};
use super::reason::Span;
use super::reconcile::{Signature, plausible_id};
use super::resume::{Start, histories};
use super::{ExecError, RunOptions};
use crate::api::{ApiError, Client, TaskStatus};
use crate::journal::{Entry, EventKind, Phase, Replayed};
use crate::plan::Plan;

/// The journal's `by` for a task named with `--attach`.
pub const BY_USER: &str = "user";

/// One `--attach SHOT=TASK`: a shot id as the results' `id` column shows it (takes are
/// `ID-takeN`) and a task id as the provider's console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub shot: String,
    pub task_id: String,
}

impl FromStr for Attachment {
    type Err = AttachError;

    fn from_str(s: &str) -> Result<Attachment, AttachError> {
        match s.split_once('=') {
            Some((shot, task)) if !shot.trim().is_empty() && !task.trim().is_empty() => {
                Ok(Attachment {
                    shot: shot.trim().to_owned(),
                    task_id: task.trim().to_owned(),
                })
            }
            _ => Err(AttachError::Syntax {
                given: s.to_owned(),
            }),
        }
    }
}

/// Why an `--attach` is refused; nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(
        "--attach {given:?}: write SHOT=TASK_ID (the shot id as the results' `id` column shows \
         it, the task id as the provider's console shows it); nothing was sent"
    )]
    Syntax { given: String },
    #[error("--attach names shot `{shot}` twice: give each shot one task; nothing was sent")]
    ShotTwice { shot: String },
    #[error("--attach names task {task} for two shots: one task is one submit's; nothing was sent")]
    TaskTwice { task: String },
    #[error(
        "--attach {shot:?}: the plan has no such shot: give the id as the results' `id` column \
         (or `shotlist plan`) shows it, takes as `ID-takeN`; nothing was sent"
    )]
    NoShot { shot: String },
    #[error(
        "--attach {shot}=…: `{shot}` is not selected by this run (--only, --shard): select it \
         or drop its --attach; nothing was sent"
    )]
    NotSelected { shot: String },
    #[error(
        "--attach {shot}=…: `{shot}` is {status}, not unknown: only a shot whose submit's \
         outcome is unknown can be attached to a task; nothing was sent"
    )]
    NotUnknown { shot: String, status: String },
    #[error(
        "--attach {shot}={task:?}: not a task id (letters, digits, `-` and `_`, at most 128): \
         copy it from the provider's console; nothing was sent"
    )]
    BadTaskId { shot: String, task: String },
    #[error(
        "--attach {shot}={task}: the journal already names task {task} (another submit's, or \
         an attachment undone): one task is one submit's; nothing was sent"
    )]
    Known { shot: String, task: String },
    #[error(
        "--attach {shot}={task}: task {task} is shot `{owner}`'s in the sibling shard folder \
         {}: one task is one shot's; nothing was sent",
        dir.display()
    )]
    Sibling {
        shot: String,
        task: String,
        owner: String,
        dir: std::path::PathBuf,
    },
    #[error(
        "--attach {shot}={task}: the provider does not know task {task} ({why}): check the id \
         in its console (tasks are kept {}); nothing was sent",
        Span(*kept)
    )]
    NotFound {
        shot: String,
        task: String,
        why: String,
        /// The provider's task lifetime (its row's `Timing::task_ttl`).
        kept: std::time::Duration,
    },
    #[error(
        "--attach {shot}={task}: task {task} is not `{shot}`'s: the prompt as sent or the \
         resolution, length or ratio its query shows differ from the shot's; check the id in \
         the provider's console; nothing was sent"
    )]
    Differs { shot: String, task: String },
    #[error("--attach {shot}={task}: task {task} could not be queried: {source}; nothing was sent")]
    Query {
        shot: String,
        task: String,
        #[source]
        source: ApiError,
    },
}

impl AttachError {
    /// Bad input (exit 2), not a provider or key that failed (a query error).
    pub fn is_usage(&self) -> bool {
        !matches!(self, AttachError::Query { .. })
    }
}

/// Checks every attachment against the plan, the selection and the journal, then queries each
/// task once; the `reattached` lines to journal, in `opts.attach` order.
pub(super) async fn check(
    plan: &Plan,
    client: &Client,
    opts: &RunOptions,
    replayed: &Replayed,
) -> Result<Vec<Entry>, ExecError> {
    let history = histories(plan, replayed);
    let now = std::time::SystemTime::now();
    // The run's own selection, deciding (and hashing videos) only where `--only` asks.
    let selection = selection(plan, opts, |i| {
        start_of(plan, client.provider(), opts, &history, now, i) == Start::Done
    })?;
    let index = plan.id_index();
    let (mut shots, mut tasks) = (HashSet::new(), HashSet::new());
    let mut found = Vec::new();
    for a in &opts.attach {
        let (shot, task) = (a.shot.clone(), a.task_id.clone());
        let Some(&i) = index.get(a.shot.as_str()) else {
            return Err(AttachError::NoShot { shot }.into());
        };
        if !shots.insert(i) {
            return Err(AttachError::ShotTwice { shot }.into());
        }
        if !plausible_id(&task) {
            return Err(AttachError::BadTaskId { shot, task }.into());
        }
        if !tasks.insert(task.clone()) {
            return Err(AttachError::TaskTwice { task }.into());
        }
        if !selection.selected[i] {
            return Err(AttachError::NotSelected { shot }.into());
        }
        let h = history[i];
        let status = match h.map_or(Phase::NotStarted, |h| h.phase()) {
            Phase::Unknown => None,
            Phase::NotStarted => Some("pending (never sent)".to_owned()),
            Phase::InFlight => Some(format!(
                "in flight (task {})",
                h.and_then(|h| h.task_id.as_deref()).unwrap_or_default()
            )),
            Phase::Succeeded | Phase::Downloaded => Some("succeeded".to_owned()),
            Phase::Failed => Some("failed".to_owned()),
            Phase::Expired => Some("expired (its video's URL ran out)".to_owned()),
        };
        if let Some(status) = status {
            return Err(AttachError::NotUnknown { shot, status }.into());
        }
        if replayed.task_ids.contains(&task) {
            return Err(AttachError::Known { shot, task }.into());
        }
        if let Some((owner, dir)) = opts.siblings.tasks.get(&task) {
            return Err(AttachError::Sibling {
                shot,
                task,
                owner: owner.clone(),
                dir: dir.clone(),
            }
            .into());
        }
        found.push(i);
    }
    let mut entries = Vec::new();
    for (a, i) in opts.attach.iter().zip(found) {
        query(client, plan, i, &a.task_id).await?;
        let shot = &plan.shots[i];
        entries.push(
            Entry::new(EventKind::Reattached, &shot.id, &shot.key)
                .task_id(&a.task_id)
                .by(BY_USER),
        );
    }
    Ok(entries)
}

/// One query of `task`: refused when the provider does not know it or shows it is not shot
/// `i`'s.
async fn query(client: &Client, plan: &Plan, i: usize, task: &str) -> Result<(), AttachError> {
    let shot = &plan.shots[i];
    let (id, task) = (shot.id.clone(), task.to_owned());
    let not_found = |why: String| AttachError::NotFound {
        shot: shot.id.clone(),
        task: task.clone(),
        why,
        kept: client.provider().timing.task_ttl,
    };
    let answer = match client.task_list() {
        Some(tasks) => tasks.detail(&task).await.map(|t| {
            let differs = Signature::of(shot).is_some_and(|s| s.contradicted_by(&t));
            (t.state.status, differs)
        }),
        None => client.query(&task).await.map(|t| (t.status, false)),
    };
    match answer {
        Ok((TaskStatus::Unknown, _)) => Err(not_found("its query answers status unknown".into())),
        Ok((_, true)) => Err(AttachError::Differs { shot: id, task }),
        Ok(_) => Ok(()),
        Err(ApiError::Permanent { message, .. }) => Err(not_found(message)),
        Err(source) => Err(AttachError::Query {
            shot: id,
            task,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attachment_is_shot_equals_task() {
        let a: Attachment = " hero-take2 = 0385dc79-a1b2 ".parse().unwrap();
        assert_eq!(
            (a.shot.as_str(), a.task_id.as_str()),
            ("hero-take2", "0385dc79-a1b2")
        );
        for bad in ["hero", "=t", "hero=", " = ", ""] {
            let e = bad.parse::<Attachment>().unwrap_err();
            assert!(e.to_string().contains("write SHOT=TASK_ID"), "{bad:?}: {e}");
            assert!(e.is_usage());
        }
    }
}
