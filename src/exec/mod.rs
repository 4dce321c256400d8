//! The executor: the only async stage; one owner of run state.
//!
//! [`execute`] replays the journal (once: the command may apply retakes with the same replay),
//! decides each shot's first step ([`resume`]), then hands the
//! run to a synchronous core that alone changes state and decides (`core`), driven by an async
//! shell that applies what it decides (`dispatcher`): per-shot jobs ([`job`]) submit, poll and
//! download, and report back over a channel. Paid work is never sent twice by accident: every
//! submit is journalled before it leaves, and anything whose outcome is unclear is held.

pub mod attach;
pub mod backoff;
pub mod budget;
mod core;
mod dispatcher;
pub mod events;
pub mod job;
pub mod limiter;
pub mod outdir;
pub mod policy;
pub mod poll;
pub mod preview;
pub mod progress;
pub mod reason;
pub mod reconcile;
pub mod resume;
pub mod select;
pub mod state;

use std::path::PathBuf;
use std::time::Duration;

pub(crate) use self::core::hold_status;
pub use backoff::Backoff;
pub use dispatcher::sha256_file;
pub use outdir::{OutDirError, OutputLock};
pub use progress::ProgressMode;
pub use resume::ResumeFlags;

use crate::api::Client;
use crate::journal::{self, Journal, JournalError, Replayed};
use crate::plan::Plan;
use crate::report::{ReportError, ResultStatus};

/// The default of `[run] queries_per_second` on the gateway, which documents no limit: a
/// generous ceiling the rate starts at and comes back to, lowered by 429s ([`budget`]).
pub const DEFAULT_QUERIES_PER_SECOND: u32 = crate::api::gravitex::QUERIES_PER_SECOND;
/// Tasks in flight when neither `-j` nor the config says.
pub const DEFAULT_CONCURRENCY: u32 = 4;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Tasks in flight at most (`-j`).
    pub concurrency: usize,
    /// Fixed poll interval (`--poll`), at least [`poll::MIN_POLL`]; retry waits do not follow it.
    pub poll: Option<Duration>,
    /// Queries per second shared by every task's polls (`[run] queries_per_second`).
    pub queries_per_second: u32,
    /// The wait schedule after a 429 or 5xx; the CLI always uses the provider's
    /// ([`Backoff::PROVIDER`]), embedders and tests may shorten it.
    pub retry_backoff: Backoff,
    /// `--only` globs.
    pub only: Vec<String>,
    /// `--shard K/N`: act on this shard's shots only.
    pub shard: Option<crate::plan::shard::ShardSpec>,
    pub flags: ResumeFlags,
    pub submits_per_minute: Option<u32>,
    pub progress: ProgressMode,
    /// Turning true stops the run gracefully, as the first Ctrl-C does: no new submits, wait
    /// for submits on the wire, save the results. The CLI drives it from signals.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// Go on past unreadable journal lines (`--skip-bad-journal-lines`).
    pub skip_bad_journal_lines: bool,
    /// Prices the totals in `plan.json`, the results' `cost` column and `max_cost`.
    pub prices: crate::cost::PriceBook,
    /// `--max-cost`: this run's submits may not be estimated at more than this.
    pub max_cost: Option<crate::cost::Money>,
    /// By plan index: shots whose (id, key) a reviewer approved, never submitted again.
    pub approved: Vec<bool>,
    /// By plan index: why a shot's video is kept as it is (an approved video held back from
    /// its upstream's retake), said in the results' `error` column while it stays succeeded.
    pub notes: Vec<Option<String>>,
    /// How long a search of DashScope's task list for `unknown` submits waits at most for
    /// candidates still running ([`reconcile::DEFAULT_WAIT`]).
    pub reconcile_wait: Duration,
    /// `--attach SHOT=TASK`: `unknown` shots whose task the user names ([`attach`]).
    pub attach: Vec<attach::Attachment>,
    /// A shard run's sibling shard folders: what they paid for is not sent here, and their
    /// tasks are never re-attached or attached to a shot here.
    pub siblings: outdir::Siblings,
    /// `--events`: where the run's event stream goes.
    pub events: Option<events::EventsTo>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: DEFAULT_CONCURRENCY as usize,
            poll: None,
            queries_per_second: DEFAULT_QUERIES_PER_SECOND,
            retry_backoff: Backoff::PROVIDER,
            only: Vec::new(),
            shard: None,
            flags: ResumeFlags::default(),
            submits_per_minute: None,
            progress: ProgressMode::Auto,
            stop: None,
            skip_bad_journal_lines: false,
            prices: Default::default(),
            max_cost: None,
            approved: Vec::new(),
            notes: Vec::new(),
            reconcile_wait: reconcile::DEFAULT_WAIT,
            attach: Vec::new(),
            siblings: Default::default(),
            events: None,
        }
    }
}

/// Why the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Every selected shot reached a final state.
    Finished,
    /// Stopped on request (Ctrl-C, SIGTERM, SIGHUP in the CLI).
    Interrupted,
    /// Bad key, disk: the message says which.
    Fatal(String),
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How many shots ended in each results status (the table itself is in the files).
    pub counts: std::collections::BTreeMap<ResultStatus, usize>,
    /// The selected shots at the end, with those submitted and not finished apart.
    pub tally: progress::Counts,
    pub stop: Stop,
    /// Every selected shot succeeded.
    pub all_succeeded: bool,
    /// Upstreams run only because an `--only` shot needed them.
    pub came_along: Vec<String>,
    pub cost: RunCost,
    /// How the provider answered this run's task queries.
    pub queries: QueryCounts,
}

/// Task queries the provider refused or failed, and the request rate they left (also the
/// `queries` of the event stream's `run_end`).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct QueryCounts {
    /// Answered 429.
    pub refused: u64,
    /// Answered 5xx or lost in transport.
    pub failed: u64,
    /// Polls of tasks younger than the shortest task seen, not sent because the request budget
    /// was short ([`budget::QueryBudget::spare`]).
    pub skipped: u64,
    /// The rate at the end, after adapting to 429s, and its ceiling (requests per second).
    pub rate: f64,
    pub ceiling: u32,
}

/// Estimated money of a run, in `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCost {
    pub currency: String,
    /// This run's submits that created (or may have created) a task.
    pub spent: crate::cost::Money,
    /// Every task the batch has created, in this run or earlier ones.
    pub billed: crate::cost::Money,
    /// Shots `--max-cost` left unsent, and their estimate.
    pub unsent: usize,
    pub unsent_cost: crate::cost::Money,
}

impl Outcome {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        use crate::error::exit;
        match self.stop {
            Stop::Fatal(_) => exit::FATAL,
            Stop::Interrupted => exit::INTERRUPTED,
            Stop::Finished if self.all_succeeded => exit::OK,
            Stop::Finished => exit::SOME_FAILED,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Select(#[from] select::SelectError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    OutDir(#[from] OutDirError),
    #[error(transparent)]
    JournalRead(#[from] journal::ReadError),
    #[error(transparent)]
    Attach(#[from] attach::AttachError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs `plan` (into `plan.out_dir`) with `client`: locks the folder, writes `plan.json`,
/// appends to the journal, downloads into `videos/`, keeps the results current.
pub async fn execute(plan: &Plan, client: Client, opts: RunOptions) -> Result<Outcome, ExecError> {
    let lock = OutputLock::acquire(&plan.out_dir)?;
    let replayed = replay_locked(&lock, opts.skip_bad_journal_lines)?;
    execute_locked(plan, client, opts, &lock, replayed).await
}

/// Replays the journal of the folder `lock` holds: once per run, since what the command does
/// before the run (retakes) and the run itself must read the same lines. An unreadable line
/// is refused, naming it, unless `skip_bad` (`--skip-bad-journal-lines`) skips it with a warning.
pub fn replay_locked(lock: &OutputLock, skip_bad: bool) -> Result<Replayed, ExecError> {
    let path = lock.dir().join(journal::FILE_NAME);
    outdir::check_inside(lock.dir(), &path)?;
    let replayed = journal::replay_file(&path, skip_bad)?;
    if !replayed.skipped.is_empty() {
        tracing::warn!(
            "skipped unreadable journal lines {:?} of {}",
            replayed.skipped,
            path.display()
        );
    }
    Ok(replayed)
}

/// [`execute`] with the folder's lock already held (taken before anything else touches it) and
/// its journal `replayed` under that lock ([`replay_locked`]).
pub async fn execute_locked(
    plan: &Plan,
    client: Client,
    opts: RunOptions,
    lock: &OutputLock,
    mut replayed: Replayed,
) -> Result<Outcome, ExecError> {
    let out = lock.dir();
    outdir::check_paths(out, &[])?;
    let attached = if opts.attach.is_empty() {
        Vec::new()
    } else {
        attach::check(plan, &client, &opts, &replayed).await?
    };
    let journal_path: PathBuf = out.join(journal::FILE_NAME);
    let io = |context: String| move |source| ExecError::Io { context, source };
    std::fs::create_dir_all(out.join("videos")).map_err(io(format!(
        "cannot create {}",
        out.join("videos").display()
    )))?;
    crate::report::write_plan(out, plan, &opts.prices)?;
    let mut journal = Journal::open(&journal_path)?;
    journal.append_all(&attached)?;
    let last = replayed.shots.values().map(|h| h.line).max().unwrap_or(0);
    for (k, e) in attached.iter().enumerate() {
        replayed.apply(last + 1 + k, e);
    }
    let (mut dispatcher, starts, came_along) =
        dispatcher::Dispatcher::new(plan, client, &opts, &replayed, journal)?;
    drop(replayed);
    for e in &attached {
        dispatcher.log(&format!(
            "attached {} to task {} (--attach)",
            e.id,
            e.task_id.as_deref().unwrap_or_default()
        ));
    }
    dispatcher.start(starts);
    let mut outcome = dispatcher.run(opts.stop.clone()).await?;
    outcome.came_along = came_along;
    Ok(outcome)
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::plan::{Plan, PlannedShot};

    /// A plan of t2v shots with the given upstream ids.
    pub fn plan_of(shots: &[(&str, &[&str])]) -> Plan {
        Plan {
            name: "t".into(),
            manifest: "m.yaml".into(),
            out_dir: "out".into(),
            shots: shots
                .iter()
                .map(|(id, ups)| PlannedShot {
                    id: (*id).into(),
                    key: format!("key-{id}"),
                    model: "wan2.7-t2v-2026-04-25".into(),
                    duration: 5,
                    input_video: None,
                    resolution: "720P".into(),
                    ratio: Some("16:9".into()),
                    seed: None,
                    source: None,
                    row: None,
                    take: 1,
                    matrix: Vec::new(),
                    depends_on: ups
                        .iter()
                        .map(|u| {
                            shots
                                .iter()
                                .position(|(id, _)| id == u)
                                .expect("a listed id")
                        })
                        .collect(),
                    group: 0,
                    file: format!("{id}.mp4"),
                    body: serde_json::json!({"model": "wan2.7-t2v-2026-04-25", "prompt": id})
                        .into(),
                })
                .collect(),
            batch_seed: None,
        }
    }
}
