//! `shotlist merge`: the folders of `run --shard K/N` into one output folder.
//!
//! Shard folders come back from other machines (CI artifacts, volumes), so they are read as
//! untrusted: no links followed, sizes bounded, every file checked against the plan the manifest
//! gives now. Each folder must come from that same plan and hold only its own shard's shots, so
//! each shot has one history. The shard journals are copied whole, not re-written: every line a
//! shard wrote about paid work survives, and `status` and `run` on the merged folder replay them
//! like any journal. Videos are hard-linked (or copied), never moved out of a shard folder:
//! the current ones and the earlier ones the journals' `superseded` lines point to, each
//! checked against the hash its line records. A different file found at a video's name in the
//! merged folder is moved aside and journalled as a run does (no file is ever lost or left
//! unaccounted); the merged journal is rewritten by each merge, so `merge.json` keeps those
//! lines for the next.
//!
//! Reviewers may mark videos in a shard folder or in the merged one, so the shards' marks are
//! merged into the merged folder's: a mark made later (by its `at`) wins, and a shard's marks
//! that an earlier merge already brought are not brought again, so a mark changed or cleared
//! in the merged folder stays as the reviewer left it.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::cli::MergeArgs;
use crate::commands::Global;
use crate::error::{Error, exit};
use crate::exec::resume::{Start, decide, video_intact};
use crate::exec::state::ShotRecord;
use crate::folder::{
    FolderError, MAX_JOURNAL, MAX_RECORD, MERGE_FILE, PROVIDER_FILE, SHARD_FILE, folder_provider,
    folder_shard, parse_json, read_bounded, record_provider, regular_file,
};
use crate::journal::{self, History, ReadError, Replayed};
use crate::plan::Plan;
use crate::plan::shard::{self, ShardSpec};
use crate::report::{self, ResultStatus};
use crate::review::{Marks, ReviewError, marks};

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(
        "{dir} is not a shard folder (no {SHARD_FILE}): pass folders made by `shotlist run --shard K/N`"
    )]
    NotAShard { dir: PathBuf },
    #[error(
        "{dir} was made from another plan: {detail}; run that shard again with this manifest, or \
         merge with the manifest it was run from"
    )]
    PlanDiffers { dir: PathBuf, detail: String },
    #[error(
        "{dir} holds shard {found} but {first} holds shard {expected}: every folder must come from the same N"
    )]
    CountDiffers {
        dir: PathBuf,
        found: ShardSpec,
        first: PathBuf,
        expected: ShardSpec,
    },
    #[error("{a} and {b} both hold shard {spec}: pass each shard once")]
    SameShard {
        a: PathBuf,
        b: PathBuf,
        spec: ShardSpec,
    },
    #[error(
        "task {task} is claimed by two shots: `{first}` in {first_dir} and `{second}` in \
         {second_dir}; one task makes one video, so one of these records is wrong (a task \
         re-attached to the wrong shot): remove the wrong `reattached`/`submitted` line from \
         that folder's journal, then merge again"
    )]
    TaskTwice {
        task: String,
        first: String,
        first_dir: PathBuf,
        second: String,
        second_dir: PathBuf,
    },
    #[error(
        "{dir}'s journal says shot `{id}` downloaded to videos/{file}, but that shot's file is \
         {expected}; a journal line naming another file is not believed: restore the line, or \
         delete it and run that shard again to download its video"
    )]
    WrongFile {
        dir: PathBuf,
        id: String,
        file: String,
        expected: String,
    },
    #[error(transparent)]
    Marks(#[from] ReviewError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<MergeError> for Error {
    fn from(e: MergeError) -> Self {
        match e {
            MergeError::Io { context, source } => Error::Io { context, source },
            other => Error::Usage(other.to_string()),
        }
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> MergeError {
    let context = context.into();
    move |source| MergeError::Io { context, source }
}

/// `merge.json`.
#[derive(Debug, Serialize, Deserialize)]
struct MergeRecord {
    shards: Vec<MergedShard>,
    /// BLAKE3 hex of the journal the merge wrote (its first `journal_len` bytes, when set): a
    /// later merge replaces only that journal, and keeps the lines runs appended after it.
    journal_blake3: String,
    /// The length of the journal the merge wrote (absent in records from before runs' lines
    /// were kept: the whole file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    journal_len: Option<u64>,
    /// Where, in that journal, the lines a run appended after an earlier merge start (kept by
    /// every later merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    carried_at: Option<u64>,
    /// Written before a merge replaces the journal and cleared once it is done: the journal it
    /// replaces, which a merge killed in between still accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replacing: Option<JournalMark>,
    /// Per shard index: when a merge last brought that shard's marks (RFC 3339). A later merge
    /// brings only the shard's marks made after it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    /// Keyed `K/N` (a bare `K` in records written before shards of two N could be merged).
    marks_merged_at: BTreeMap<String, String>,
    /// The `superseded` lines merges wrote after the shards' journals (a different file at a
    /// merged video's name, moved aside): every later merge writes them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    superseded: Vec<journal::Entry>,
}

/// A journal a merge wrote: its hash, length and where runs' lines in it start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct JournalMark {
    blake3: String,
    len: u64,
    carried_at: u64,
}

impl MergeRecord {
    fn journal(&self) -> Option<JournalMark> {
        Some(JournalMark {
            blake3: self.journal_blake3.clone(),
            len: self.journal_len?,
            carried_at: self.carried_at.or(self.journal_len)?,
        })
    }
}

/// What an earlier merge left in the merged folder.
#[derive(Debug, Default)]
struct Previous {
    record: Option<MergeRecord>,
    /// The journal's lines runs wrote after that merge (kept, after the shards' lines).
    carried: Vec<u8>,
    /// The journal as it is now (`replacing` in the record written before it is replaced).
    now: Option<JournalMark>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MergedShard {
    shard: ShardSpec,
    dir: PathBuf,
}

fn report_error(e: report::ReportError) -> Error {
    Error::io(format!("cannot write {}", e.path.display()), e.source)
}

/// One shard folder, checked.
struct ShardFolder {
    dir: PathBuf,
    spec: ShardSpec,
    /// A private copy of its journal's complete lines (a line torn by a crash at the end is
    /// left out): what is checked is exactly what is merged.
    journal: PathBuf,
    /// What its journal says.
    journal_state: Replayed,
    /// Its `marks.json`.
    marks: Marks,
}

/// The plan in `dir/plan.json` must be `plan`: same shots, ids, keys and files, in order.
fn check_plan(dir: &Path, plan: &Plan) -> Result<(), MergeError> {
    let path = dir.join(report::PLAN_FILE);
    let expected = serde_json::to_vec_pretty(plan).map_or(0, |v| v.len() as u64);
    let max = expected * 2 + 1024 * 1024;
    let differs = |detail: String| MergeError::PlanDiffers {
        dir: dir.to_owned(),
        detail,
    };
    let Some(bytes) = read_bounded(&path, max)? else {
        return Err(differs("it has no plan.json".into()));
    };
    let theirs: Plan = parse_json(&path, &bytes)?;
    for (i, ours) in plan.shots.iter().enumerate() {
        let Some(t) = theirs.shots.get(i) else {
            return Err(differs(format!(
                "its plan.json ends before shot `{}` (it has {} shots, the manifest {})",
                ours.id,
                theirs.shots.len(),
                plan.shots.len()
            )));
        };
        if t.id != ours.id {
            return Err(differs(format!(
                "its plan.json has shot `{}` where the manifest has `{}`",
                t.id, ours.id
            )));
        }
        if t.key != ours.key || t.file != ours.file {
            return Err(differs(format!(
                "shot `{}` has another request (key or file) in its plan.json",
                ours.id
            )));
        }
    }
    if let Some(extra) = theirs.shots.get(plan.shots.len()) {
        return Err(differs(format!(
            "its plan.json has shot `{}`, which the manifest does not",
            extra.id
        )));
    }
    Ok(())
}

/// Reads and checks shard folder `dir`, which holds shard `spec` of `part`. `scratch` is a
/// folder for the private copy of its journal.
fn read_folder(
    dir: &Path,
    spec: ShardSpec,
    plan: &Plan,
    scratch: &Path,
) -> Result<ShardFolder, MergeError> {
    let journal_path = dir.join(journal::FILE_NAME);
    let mut journal = read_bounded(&journal_path, MAX_JOURNAL)?.unwrap_or_default();
    journal.truncate(
        journal
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1),
    );
    let copy = scratch.join(format!("shard-{}-of-{}.jsonl", spec.index, spec.count));
    fs::write(&copy, &journal).map_err(io(format!("cannot write {}", copy.display())))?;
    drop(journal);
    let replayed = replay(&copy, &journal_path)?;
    // A retake run on the shard wrote its shots' new attempts into its plan.json.
    let mut plan = plan.clone();
    with_retakes(&mut plan, &replayed);
    check_plan(dir, &plan)?;
    check_files(dir, &plan, &replayed)?;
    let marks_path = dir.join(marks::FILE_NAME);
    let mut marks = Marks::default();
    if let Some(bytes) = read_bounded(&marks_path, marks::MAX_BYTES)? {
        for m in marks::parse_entries(&marks_path, &bytes)? {
            marks.apply(m);
        }
    }
    Ok(ShardFolder {
        dir: dir.to_owned(),
        spec,
        journal: copy,
        journal_state: replayed,
        marks,
    })
}

/// Every current video `journal` records must be at its shot's planned file name: a line
/// naming another shot's file would make two shots one video. (Earlier videos live under
/// `superseded/`, named by their own lines.)
fn check_files(dir: &Path, plan: &Plan, journal: &Replayed) -> Result<(), MergeError> {
    let planned: std::collections::HashMap<&str, &str> = (plan.shots.iter())
        .map(|s| (s.id.as_str(), s.file.as_str()))
        .collect();
    let taken: std::collections::HashMap<&str, (&str, &str)> = (plan.shots.iter())
        .map(|s| (s.file.as_str(), (s.id.as_str(), s.key.as_str())))
        .collect();
    for ((id, key), h) in &journal.shots {
        let Some(file) = h.file.as_deref() else {
            continue;
        };
        if file.starts_with(crate::exec::outdir::SUPERSEDED_DIR) || h.sha256.is_none() {
            continue;
        }
        let expected = match (planned.get(id.as_str()), taken.get(file)) {
            (Some(&own), _) if own != file => format!("videos/{own}"),
            // A renamed shot's history (same request) keeps its file.
            (None, Some(&(other, other_key))) if other_key != key => {
                format!("not shot `{other}`'s")
            }
            _ => continue,
        };
        return Err(MergeError::WrongFile {
            dir: dir.to_owned(),
            id: id.clone(),
            file: file.to_owned(),
            expected,
        });
    }
    Ok(())
}

/// One task, one shot: refuses a task id that two shots claim, within a folder or across.
fn check_tasks(folders: &BTreeMap<(u32, u32), ShardFolder>) -> Result<(), MergeError> {
    let mut owner: std::collections::HashMap<&str, (&str, &Path)> = Default::default();
    for f in folders.values() {
        let ledger = &f.journal_state.ledger;
        if let Some(c) = ledger.conflicts.first() {
            return Err(MergeError::TaskTwice {
                task: c.task_id.clone(),
                first: c.first.0.clone(),
                first_dir: f.dir.clone(),
                second: c.second.0.clone(),
                second_dir: f.dir.clone(),
            });
        }
        for (task, id) in ledger.owned_tasks() {
            match owner.get(task) {
                Some(&(first, first_dir)) if first != id => {
                    return Err(MergeError::TaskTwice {
                        task: task.to_owned(),
                        first: first.to_owned(),
                        first_dir: first_dir.to_owned(),
                        second: id.to_owned(),
                        second_dir: f.dir.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    owner.insert(task, (id, &f.dir));
                }
            }
        }
    }
    Ok(())
}

/// A shot (id and key) that two folders hold (run under an earlier assignment, or an earlier
/// N): the merged journal restates, after the shards' lines, the history of the folder that
/// has its video (the one that finished last, if several do), so that history is the shot's
/// in the merged folder whatever the order of the folders. A restated task is the same task
/// to the ledger (paid once). Shots held by one folder need nothing: their lines are theirs.
fn restate_shared(plan: &Plan, folders: &BTreeMap<(u32, u32), ShardFolder>) -> Vec<journal::Entry> {
    let mut lines = Vec::new();
    for shot in &plan.shots {
        let held: Vec<&History> = (folders.values())
            .filter_map(|f| f.journal_state.get(&shot.id, &shot.key))
            .collect();
        if held.len() < 2 {
            continue;
        }
        let when = |h: &History| {
            (h.finished_at.clone())
                .or_else(|| h.submitted_at.clone())
                .or_else(|| h.submitting_at.clone())
                .unwrap_or_default()
        };
        let Some(h) = held
            .iter()
            .filter(|h| h.task_id.is_some())
            .max_by_key(|h| (h.sha256.is_some(), when(h)))
        else {
            continue;
        };
        lines.extend(restatement(&shot.id, &shot.key, h));
    }
    lines
}

/// The lines that make `h` the current history of (id, key) again.
fn restatement(id: &str, key: &str, h: &History) -> Vec<journal::Entry> {
    use crate::journal::{Entry, EventKind};
    let at = |e: Entry, ts: &Option<String>| Entry {
        ts: ts.clone().unwrap_or_else(|| e.ts.clone()),
        ..e
    };
    let task = h.task_id.clone().unwrap_or_default();
    let mut out = vec![
        at(
            Entry::new(EventKind::Submitting, id, key).attempt(h.attempts.max(1)),
            &h.submitting_at,
        ),
        at(
            Entry::new(EventKind::Submitted, id, key).task_id(&task),
            &h.submitted_at,
        ),
    ];
    if let Some(url) = &h.url {
        let mut e = Entry::new(EventKind::Succeeded, id, key)
            .task_id(&task)
            .url(url);
        e.extras.clone_from(&h.extras);
        out.push(at(e, &h.finished_at));
    }
    if h.failed {
        let e = Entry::new(EventKind::Failed, id, key).task_id(&task);
        let e = match &h.error {
            Some(error) => e.error(error),
            None => e,
        };
        out.push(at(e, &h.finished_at));
    }
    if h.expired {
        out.push(
            Entry::new(EventKind::Expired, id, key).error(h.error.clone().unwrap_or_default()),
        );
    }
    if let (Some(file), Some(sha)) = (&h.file, &h.sha256) {
        out.push(Entry::new(EventKind::Downloaded, id, key).file(file, sha, h.bytes.unwrap_or(0)));
    }
    out
}

/// Replays `path` (strictly: a bad line is an error), naming `shown` in errors.
fn replay(path: &Path, shown: &Path) -> Result<Replayed, MergeError> {
    journal::replay_file(path, false).map_err(|e| match e {
        ReadError::Io { source, .. } => io(format!("cannot read {}", shown.display()))(source),
        ReadError::BadLine { line, reason, .. } => FolderError::BadFile {
            path: shown.to_owned(),
            reason: format!("line {line} is not a journal entry ({reason})"),
        }
        .into(),
    })
}

pub fn run(global: &Global, args: &MergeArgs) -> Result<u8, Error> {
    let mut plan = super::load_plan(global, &args.manifest)?;
    let config = crate::config::Config::load(global.config.as_deref(), &args.manifest)?;
    let out = super::out_dir(&plan, args.out.as_deref(), None);
    plan.out_dir = out.clone();
    let _lock = crate::exec::outdir::OutputLock::acquire(&out).map_err(Error::from)?;
    let previous = check_out(&out, &args.dirs)?;
    crate::exec::outdir::check_paths(
        &out,
        &[
            MERGE_FILE,
            PROVIDER_FILE,
            marks::FILE_NAME,
            marks::LOCK_FILE,
        ],
    )
    .map_err(Error::from)?;
    let scratch = tempfile::Builder::new()
        .prefix(".merge-")
        .tempdir_in(&out)
        .map_err(io(format!("cannot write in {}", out.display())))?;

    // Keyed (N, K): folders of an earlier N may be merged with the current N's (see the
    // README's "Changing N"); each shot's history is taken from the one folder that holds it.
    let mut folders: BTreeMap<(u32, u32), ShardFolder> = BTreeMap::new();
    let mut locks = Vec::with_capacity(args.dirs.len());
    for dir in &args.dirs {
        let spec = folder_shard(dir)?.ok_or_else(|| MergeError::NotAShard { dir: dir.clone() })?;
        if let Some(other) = folders.get(&(spec.count, spec.index)) {
            return Err(MergeError::SameShard {
                a: other.dir.clone(),
                b: dir.clone(),
                spec,
            }
            .into());
        }
        // A run still writing there would add paid work after the merge read it.
        locks.push(crate::exec::outdir::ReadLock::acquire(dir).map_err(Error::from)?);
        let folder = read_folder(dir, spec, &plan, scratch.path())?;
        folders.insert((spec.count, spec.index), folder);
    }
    check_tasks(&folders)?;
    let restated = restate_shared(&plan, &folders);
    let provider = one_provider(folders.values().map(|f| &f.dir))?;
    let resumed_on = provider.unwrap_or_default().provider();
    let n = folders.keys().map(|&(n, _)| n).max().unwrap_or(1);
    let part = shard::partition(&plan, n);

    // Everything is read and checked before the first write: a bad file leaves the merged
    // folder as it was.
    let _marks_lock = marks::lock(&out).map_err(io(format!(
        "cannot lock {}",
        out.join(marks::LOCK_FILE).display()
    )))?;
    let marks_path = out.join(marks::FILE_NAME);
    let own_marks = Marks::load(&marks_path)?;
    let Previous {
        record,
        carried,
        now: journal_now,
    } = previous;
    let (mut marks_merged_at, mut superseded) = record
        .map(|r| (r.marks_merged_at, r.superseded))
        .unwrap_or_default();
    let mut all_marks = own_marks.clone();
    let marks_merged = merge_marks(
        &mut all_marks,
        folders.values().map(|f| (f.spec.to_string(), &f.marks)),
        &plan.shots.iter().map(|s| s.id.as_str()).collect(),
        &marks_merged_at,
    );

    let videos = out.join("videos");
    fs::create_dir_all(&videos).map_err(io(format!("cannot create {}", videos.display())))?;
    let mut broken = Vec::new();
    let (mut earlier, mut earlier_missing) = (0usize, Vec::new());
    let shard_videos: Vec<(&ShardFolder, Vec<(journal::ShotId, History)>)> = (folders.values())
        .map(|f| (f, videos_of(&f.journal_state)))
        .collect();
    // By shot id: its videos the shards recorded, current and earlier, which a file found at
    // its name may be (one an earlier merge placed).
    let mut recorded: BTreeMap<&str, Vec<(&journal::ShotId, &History)>> = BTreeMap::new();
    for (shot, h) in shard_videos.iter().flat_map(|(_, v)| v) {
        recorded.entry(shot.0.as_str()).or_default().push((shot, h));
    }
    let moved_before = superseded.len();
    for (f, list) in &shard_videos {
        let theirs = f.dir.join("videos");
        for (shot, h) in list {
            let file = h.file.as_deref().unwrap_or_default();
            let is_earlier = file.starts_with(crate::exec::outdir::SUPERSEDED_DIR);
            let owners = recorded.get(shot.0.as_str()).map_or(&[][..], Vec::as_slice);
            let linked = link_video(&theirs, &videos, (shot, h), owners)?;
            // A move the shards' journals already tell (an earlier video a shard moved
            // aside too, now at the same name) needs no line of its own.
            if let Some(e) = linked.moved
                && !(folders.values().flat_map(|f| &f.journal_state.superseded))
                    .any(|s| s.file == e.file && s.sha256 == e.sha256)
            {
                superseded.push(e);
            }
            match (linked.ok, is_earlier) {
                (true, true) => earlier += 1,
                (true, false) => {}
                (false, true) => earlier_missing.push(format!(
                    "videos/{file} (shot `{}`) in {}",
                    h.id,
                    f.dir.display()
                )),
                (false, false) => broken.push(format!("{} in {}", h.id, f.dir.display())),
            }
        }
    }

    let moved = superseded.len() - moved_before;
    // The new journal is made in full first; the record written before it replaces the
    // journal names both, so a merge killed at any point (or stopped by a full disk) leaves a
    // folder the same merge accepts and completes.
    let journal_path = out.join(journal::FILE_NAME);
    let staged = scratch.path().join("journal.jsonl");
    let mut merged_bytes = Vec::new();
    for f in folders.values() {
        merged_bytes.extend(
            fs::read(&f.journal).map_err(io(format!("cannot read {}", f.journal.display())))?,
        );
    }
    for e in restated.iter().chain(&superseded) {
        merged_bytes.extend(serde_json::to_vec(e).expect("a journal entry serialises"));
        merged_bytes.push(b'\n');
    }
    let carried_at = merged_bytes.len() as u64;
    merged_bytes.extend_from_slice(&carried);
    let mark = JournalMark {
        blake3: blake3::hash(&merged_bytes).to_hex().to_string(),
        len: merged_bytes.len() as u64,
        carried_at,
    };
    fs::write(&staged, &merged_bytes).map_err(io(format!("cannot write {}", staged.display())))?;
    drop(merged_bytes);
    let record_path = out.join(MERGE_FILE);
    let record_of = |marks_merged_at, superseded, replacing| MergeRecord {
        shards: folders
            .values()
            .map(|f| MergedShard {
                shard: f.spec,
                dir: f.dir.clone(),
            })
            .collect(),
        journal_blake3: mark.blake3.clone(),
        journal_len: Some(mark.len),
        carried_at: Some(mark.carried_at),
        replacing,
        marks_merged_at,
        superseded,
    };
    let intent = record_of(marks_merged_at.clone(), superseded.clone(), journal_now);
    report::write_atomic(
        &record_path,
        &serde_json::to_vec_pretty(&intent).expect("a merge record serialises"),
    )
    .map_err(report_error)?;
    report::write_atomic_with(&journal_path, |w| {
        std::io::copy(&mut fs::File::open(&staged)?, w).map(|_| ())
    })
    .map_err(report_error)?;
    let write =
        |path: &Path, bytes: Vec<u8>| report::write_atomic(path, &bytes).map_err(report_error);
    let prices = crate::cost::PriceBook::new(&config);
    let merged = replay(&journal_path, &journal_path)?;
    with_retakes(&mut plan, &merged);
    report::write_plan(&out, &plan, &prices).map_err(report_error)?;
    let histories = crate::exec::resume::histories(&plan, &merged);
    let now = SystemTime::now();
    let per_shot = prices.per_shot(&plan, &merged.ledger);
    let spent = prices.spent(&plan, &merged.ledger);
    let rows: Vec<report::ResultRow> = plan
        .shots
        .iter()
        .zip(&histories)
        .map(|(shot, &h)| {
            let mut rec = ShotRecord::from_history(h);
            rec.spent = per_shot
                .get(shot.id.as_str())
                .map_or_else(Default::default, |p| p.1);
            let status = match decide(h, now, &resumed_on, Default::default(), |h| {
                video_intact(&videos, h)
            }) {
                Start::Done => ResultStatus::Succeeded,
                Start::Hold { status, reason } => {
                    rec.error = Some(Box::new(reason));
                    status
                }
                _ => ResultStatus::Pending,
            };
            rec.status = crate::exec::hold_status(status);
            rec.row(shot, prices.shot(shot))
        })
        .collect();
    report::write(&out, &report::matrix_keys(&plan.shots), &rows).map_err(report_error)?;
    if let Some(provider) = provider {
        record_provider(&out, provider)?;
    }
    if all_marks != own_marks {
        all_marks.save(&marks_path)?;
    }
    let merged_at = crate::journal::now_rfc3339();
    for f in folders.values() {
        marks_merged_at.remove(&f.spec.index.to_string());
        marks_merged_at.insert(f.spec.to_string(), merged_at.clone());
    }
    let record = record_of(marks_merged_at, superseded, None);
    write(
        &record_path,
        serde_json::to_vec_pretty(&record).expect("a merge record serialises"),
    )?;

    let mut counts: BTreeMap<ResultStatus, usize> = BTreeMap::new();
    for r in &rows {
        *counts.entry(r.status).or_default() += 1;
    }
    let missing: Vec<String> = (1..=n)
        .filter(|&k| !folders.contains_key(&(n, k)))
        .map(|k| format!("{k}/{n} ({} shots)", part.shots_in(k)))
        .collect();
    if !global.quiet {
        for b in &broken {
            eprintln!(
                "warning: the video of {b} is missing or changed; `shotlist run` on the merged \
                 folder downloads it again while its URL is fresh"
            );
        }
        for e in &earlier_missing {
            eprintln!(
                "warning: the earlier video {e} is missing or changed and was not merged; \
                 the shot's current video is unaffected"
            );
        }
        if !marks_merged.unknown.is_empty() {
            eprintln!(
                "warning: {} mark(s) name shots this batch does not have and were not merged: {}",
                marks_merged.unknown.len(),
                crate::review::marks::list_some(&marks_merged.unknown)
            );
        }
        if !missing.is_empty() {
            eprintln!(
                "missing shard(s): {}; their shots are `pending`: run them and merge again",
                missing.join(", ")
            );
        }
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(s, c)| format!("{c} {}", s.as_str()))
        .collect();
    let mut extra = String::new();
    if moved > 0 {
        extra.push_str(&format!(
            "; {moved} other file(s) at merged video names moved to videos/superseded/"
        ));
    }
    if earlier + earlier_missing.len() > 0 {
        extra.push_str(&format!(
            "; {earlier} earlier video(s) in videos/superseded/"
        ));
        if !earlier_missing.is_empty() {
            extra.push_str(&format!(
                " ({} missing or changed, left out)",
                earlier_missing.len()
            ));
        }
    }
    if !all_marks.is_empty() || marks_merged.brought > 0 {
        extra.push_str(&format!(
            "; {} mark(s) from the shards, {} in {}",
            marks_merged.brought,
            all_marks.len(),
            marks::FILE_NAME
        ));
    }
    extra.push_str(&format!(
        "; est. {} spent on {} task(s)",
        prices.show(spent.amount),
        spent.tasks
    ));
    let current = folders.keys().filter(|&&(count, _)| count == n).count();
    let other_n = match folders.len() - current {
        0 => String::new(),
        k => format!(" (and {k} folder(s) of another N)"),
    };
    eprintln!(
        "merged {current} of {n} shard(s){other_n}: {}{extra}; results in {}",
        summary.join(", "),
        out.join(report::CSV_FILE).display()
    );
    let all = counts.get(&ResultStatus::Succeeded).copied().unwrap_or(0) == rows.len();
    Ok(if all { exit::OK } else { exit::SOME_FAILED })
}

/// Applies the retakes `journal` records (as every command does), so shots retaken on a shard
/// are their newest attempts.
fn with_retakes(plan: &mut Plan, journal: &Replayed) {
    crate::review::retake::apply(plan, journal, &Marks::default(), false);
}

/// The provider every shard folder ran on; shards of two providers are refused (the merged
/// folder's resumes would poll one provider's task ids at the other).
fn one_provider<'a>(
    dirs: impl Iterator<Item = &'a PathBuf>,
) -> Result<Option<crate::api::ProviderId>, Error> {
    let mut seen: Option<(crate::api::ProviderId, &PathBuf)> = None;
    for dir in dirs {
        let Some(p) = folder_provider(dir)? else {
            continue;
        };
        match seen {
            Some((q, first)) if q != p => {
                return Err(Error::Usage(format!(
                    "{} ran on {p} but {} on {q}: the shards of one batch must run on one \
                     provider; run that shard again with --provider {q} and another --out",
                    dir.display(),
                    first.display()
                )));
            }
            Some(_) => {}
            None => seen = Some((p, dir)),
        }
    }
    Ok(seen.map(|(p, _)| p))
}

/// The merged folder may be new, or one an earlier merge wrote and nothing has run in since;
/// never a shard folder, nor one holding a run of its own (its journal would be lost).
/// Returns the earlier merge's record.
fn check_out(out: &Path, dirs: &[PathBuf]) -> Result<Previous, MergeError> {
    let taken = |what: &str| -> MergeError {
        FolderError::Taken {
            dir: out.to_owned(),
            what: what.to_owned(),
            fix: "write the merge elsewhere with --out".into(),
        }
        .into()
    };
    if let Ok(out_real) = out.canonicalize()
        && dirs
            .iter()
            .any(|d| d.canonicalize().is_ok_and(|d| d == out_real))
    {
        return Err(taken("one of the shard folders"));
    }
    if folder_shard(out)?.is_some() {
        return Err(taken("a shard"));
    }
    let path = out.join(MERGE_FILE);
    let record: Option<MergeRecord> = read_bounded(&path, MAX_RECORD)?
        .map(|b| parse_json(&path, &b))
        .transpose()?;
    let journal_path = out.join(journal::FILE_NAME);
    let Some(bytes) = read_bounded(&journal_path, MAX_JOURNAL)? else {
        // No journal yet: the merge replaces an empty one, so a merge killed before writing
        // its journal accepts whatever a run appended since, and keeps it.
        return Ok(Previous {
            record,
            carried: Vec::new(),
            now: Some(JournalMark {
                blake3: blake3::hash(b"").to_hex().to_string(),
                len: 0,
                carried_at: 0,
            }),
        });
    };
    // A journal no merge wrote (a run of the whole batch in the merge's folder): its lines
    // are kept after the shards', as a later run's would be.
    let Some(r) = record else {
        let mut carried = bytes;
        carried.truncate(
            carried
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1),
        );
        let now = JournalMark {
            blake3: blake3::hash(&carried).to_hex().to_string(),
            len: carried.len() as u64,
            carried_at: 0,
        };
        return Ok(Previous {
            record: None,
            now: Some(now),
            carried,
        });
    };
    let whole = JournalMark {
        blake3: r.journal_blake3.clone(),
        len: bytes.len() as u64,
        carried_at: bytes.len() as u64,
    };
    // What the merge wrote (or, killed while replacing it, the journal it was replacing),
    // then what runs in the merged folder have appended since.
    let candidates = [r.journal(), r.replacing.clone(), Some(whole)];
    let found = candidates.into_iter().flatten().find(|m| {
        (m.len as usize) <= bytes.len()
            && m.carried_at <= m.len
            && blake3::hash(&bytes[..m.len as usize]).to_hex().as_str() == m.blake3
    });
    let Some(m) = found else {
        return Err(taken(
            "a journal that is not the one a merge wrote (changed other than by appending)",
        ));
    };
    let mut carried = bytes[m.carried_at as usize..].to_vec();
    carried.truncate(
        carried
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1),
    );
    Ok(Previous {
        now: Some(JournalMark {
            blake3: blake3::hash(&bytes).to_hex().to_string(),
            len: bytes.len() as u64,
            carried_at: m.carried_at,
        }),
        record: Some(r),
        carried,
    })
}

/// Every video a journal records, once each: each key's current one (whose `file` may be under
/// `superseded/` when a newer attempt took its name) and each `superseded` line's, as the
/// (id, file, sha256, bytes) of a history, with its (id, key). A `superseded` line without a
/// hash (what it moved was not a regular file) is listed too, and fails [`link_video`]'s check.
fn videos_of(journal: &Replayed) -> Vec<(journal::ShotId, History)> {
    let mut seen: HashSet<(Option<&str>, Option<&str>)> = HashSet::new();
    let current = (journal.shots.iter())
        .filter(|(_, h)| h.sha256.is_some())
        .map(|(shot, h)| (shot.clone(), h.clone()));
    let earlier = journal.superseded.iter().map(|e| {
        let h = History {
            id: e.id.clone(),
            file: e.file.clone(),
            sha256: e.sha256.clone(),
            bytes: e.bytes,
            ..History::default()
        };
        ((e.id.clone(), e.key.clone()), h)
    });
    let all: Vec<(journal::ShotId, History)> = current.chain(earlier).collect();
    let mut out = Vec::with_capacity(all.len());
    for (shot, h) in &all {
        if seen.insert((h.file.as_deref(), h.sha256.as_deref())) {
            out.push((shot.clone(), h.clone()));
        }
    }
    out
}

/// What [`link_video`] did.
struct Linked {
    /// The merged folder has the video: linked now or there already.
    ok: bool,
    /// The `superseded` line for a different file that was at its name, moved aside.
    moved: Option<journal::Entry>,
}

/// Hard-links (or copies) the video `h` (of `shot`) records from `from` into `to`, unless `to`
/// already has it; not `ok` when the shard's copy is missing or does not match its recorded
/// hash. A different file at its name is moved aside first, recorded under the video of
/// `owners` it is, if any.
fn link_video(
    from: &Path,
    to: &Path,
    (shot, h): (&journal::ShotId, &History),
    owners: &[(&journal::ShotId, &History)],
) -> Result<Linked, MergeError> {
    let not_linked = Linked {
        ok: false,
        moved: None,
    };
    let (Some(file), Some(_)) = (h.file.as_deref(), h.sha256.as_deref()) else {
        return Ok(not_linked);
    };
    let video_path = crate::exec::job::video_path;
    let (Some(src), Some(dest)) = (video_path(from, file), video_path(to, file)) else {
        return Ok(not_linked);
    };
    // `from`, then `from/superseded` for an earlier video: real folders, never links.
    for dir in [Some(from), src.parent()].into_iter().flatten() {
        match fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(FolderError::NotAFile {
                    path: dir.to_owned(),
                    what: "not a folder",
                }
                .into());
            }
            Err(_) => return Ok(not_linked),
        }
    }
    match fs::symlink_metadata(&src) {
        Ok(meta) => regular_file(&src, &meta)?,
        Err(_) => return Ok(not_linked),
    }
    if video_intact(to, h) {
        return Ok(Linked {
            ok: true,
            moved: None,
        });
    }
    if !video_intact(from, h) {
        return Ok(not_linked);
    }
    let moved = crate::exec::outdir::supersede_recorded(to, file, (&shot.0, &shot.1), owners)
        .map_err(|e| MergeError::Io {
            context: format!("cannot move the earlier {} aside", dest.display()),
            source: std::io::Error::other(e),
        })?;
    let dest_dir = dest.parent().unwrap_or(to);
    fs::create_dir_all(dest_dir).map_err(io(format!("cannot create {}", dest_dir.display())))?;
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dest_dir.join(format!(".{name}.merge"));
    let _ = fs::remove_file(&tmp);
    let copied = fs::hard_link(&src, &tmp).or_else(|_| fs::copy(&src, &tmp).map(|_| ()));
    copied
        .and_then(|()| fs::rename(&tmp, &dest))
        .map_err(io(format!(
            "cannot copy {} to {}",
            src.display(),
            dest.display()
        )))?;
    Ok(Linked { ok: true, moved })
}

/// What [`merge_marks`] did.
#[derive(Debug, Default, PartialEq, Eq)]
struct MarksMerged {
    /// Shard marks that were added or replaced a merged folder's mark.
    brought: usize,
    /// Ids of shard marks naming no shot of the plan (not merged).
    unknown: Vec<String>,
}

/// Brings each shard's marks (by shard index) into `own`, the merged folder's. A shard's mark
/// for a video (id, key) is taken when it is dated and `own` has none for it, an older one or
/// an undated one; a tie keeps `own`'s (an undated shard mark fills only an empty slot). A
/// shard that `since` says an earlier merge brought marks from gives only marks dated after
/// that merge, so a mark the reviewer changed or cleared in the
/// merged folder since is not overridden by the shard's older copy. Marks for any key of a
/// shot of the plan are kept (an earlier key's mark belongs to an earlier video, kept under
/// `videos/superseded/`); marks for ids the plan does not have are left out, as by
/// `mark --import`.
fn merge_marks<'a>(
    own: &mut Marks,
    shards: impl Iterator<Item = (String, &'a Marks)>,
    ids: &HashSet<&str>,
    since: &BTreeMap<String, String>,
) -> MarksMerged {
    let at = |t: Option<&str>| t.and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    let mut done = MarksMerged::default();
    for (index, theirs) in shards {
        let bare = index.split('/').next().unwrap_or_default();
        let after = (since.get(&index).or_else(|| since.get(bare))).map(|t| at(Some(t)));
        for m in theirs.iter() {
            let made = at(m.at.as_deref());
            if let Some(after) = after
                && !(made.is_some() && made > after)
            {
                continue;
            }
            if !ids.contains(m.id.as_str()) {
                done.unknown.push(m.id.clone());
                continue;
            }
            let take = match own.get(&m.id, &m.key) {
                None => true,
                Some(ours) => ours != m && made.is_some() && made > at(ours.at.as_deref()),
            };
            if take {
                own.apply(m.clone());
                done.brought += 1;
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{Mark, Verdict};

    /// An earlier merge placed a shot's first video; its shard has since made a new one (and
    /// moved the first aside itself): the first is moved aside under its own attempt, by the
    /// name the shard gave it, so the shard's line already tells it.
    #[test]
    fn an_earlier_merged_video_in_the_way_is_moved_aside_under_its_attempt() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let video = |dir: &Path, bytes: &[u8], key: &str| {
            fs::write(dir.join("a.mp4"), bytes).unwrap();
            let h = History {
                id: "a".into(),
                file: Some("a.mp4".into()),
                sha256: crate::exec::sha256_file(&dir.join("a.mp4")),
                bytes: Some(bytes.len() as u64),
                ..History::default()
            };
            (("a".to_owned(), key.to_owned()), h)
        };
        let old = video(to.path(), b"first", "k0aaaaaaaaaaaaaaaa");
        let new = video(from.path(), b"second", "k1bbbbbbbbbbbbbbbb");
        let owners = [(&old.0, &old.1), (&new.0, &new.1)];
        let linked = link_video(from.path(), to.path(), (&new.0, &new.1), &owners).unwrap();
        assert!(linked.ok);
        let e = linked.moved.expect("moved aside");
        assert_eq!(
            (e.key.as_str(), e.file.as_deref(), &e.sha256, e.error),
            (
                "k0aaaaaaaaaaaaaaaa",
                Some("superseded/a.k0aaaaaaaaaa.mp4"),
                &old.1.sha256,
                None
            )
        );
        assert_eq!(fs::read(to.path().join("a.mp4")).unwrap(), b"second");
        let again = link_video(from.path(), to.path(), (&new.0, &new.1), &owners).unwrap();
        assert!(again.ok && again.moved.is_none());
    }

    fn mark(id: &str, v: Verdict, at: Option<&str>) -> Mark {
        Mark {
            id: id.into(),
            key: "k".repeat(64),
            mark: v,
            note: None,
            at: at.map(str::to_owned),
        }
    }

    fn plan<'a>(ids: &[&'a str]) -> HashSet<&'a str> {
        ids.iter().copied().collect()
    }

    fn marks(list: &[Mark]) -> Marks {
        let mut m = Marks::default();
        for x in list {
            m.apply(x.clone());
        }
        m
    }

    const T1: &str = "2026-11-24T10:00:00Z";
    const T2: &str = "2026-11-24T11:00:00Z";
    const T3: &str = "2026-11-24T12:00:00Z";

    #[test]
    fn the_later_mark_wins_and_a_tie_or_unknown_time_keeps_the_merged_folders() {
        let ids = plan(&["a", "b", "c", "d"]);
        let mut own = marks(&[
            mark("a", Verdict::Approved, Some(T2)),
            mark("b", Verdict::Approved, Some(T2)),
            mark("c", Verdict::Approved, None),
        ]);
        let shard = marks(&[
            mark("a", Verdict::Rejected, Some(T3)),
            mark("b", Verdict::Rejected, Some(T1)),
            mark("c", Verdict::Rejected, Some(T3)),
            mark("d", Verdict::Rejected, None),
            mark("gone", Verdict::Rejected, Some(T3)),
        ]);
        let done = merge_marks(
            &mut own,
            [("1/2".to_owned(), &shard)].into_iter(),
            &ids,
            &BTreeMap::new(),
        );
        assert_eq!(done.brought, 3);
        assert_eq!(done.unknown, vec!["gone".to_owned()]);
        let k = "k".repeat(64);
        let verdict = |id| own.get(id, &k).map(|m| m.mark);
        assert_eq!(verdict("a"), Some(Verdict::Rejected));
        assert_eq!(verdict("b"), Some(Verdict::Approved));
        assert_eq!(verdict("c"), Some(Verdict::Rejected));
        assert_eq!(verdict("d"), Some(Verdict::Rejected));
        assert_eq!(verdict("gone"), None);
        // Merging the same again changes nothing.
        let again = own.clone();
        let done = merge_marks(
            &mut own,
            [("1/2".to_owned(), &shard)].into_iter(),
            &ids,
            &BTreeMap::new(),
        );
        assert_eq!(done.brought, 0);
        assert_eq!(own, again);
    }

    #[test]
    fn marks_an_earlier_merge_brought_are_not_brought_again() {
        let ids = plan(&["a", "b"]);
        // Cleared in the merged folder after the merge at T2: stays cleared; `b` was marked on
        // the shard after that merge: brought.
        let mut own = Marks::default();
        let shard = marks(&[
            mark("a", Verdict::Rejected, Some(T1)),
            mark("b", Verdict::Rejected, Some(T3)),
        ]);
        // A record from before `K/N` keys names the shard by K alone.
        let since = BTreeMap::from([("1".to_owned(), T2.to_owned())]);
        let done = merge_marks(
            &mut own,
            [("1/2".to_owned(), &shard)].into_iter(),
            &ids,
            &since,
        );
        assert_eq!(done.brought, 1);
        assert_eq!(own.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["b"]);
        // Another shard index was never merged: all of its marks come.
        let done = merge_marks(
            &mut Marks::default(),
            [("2/2".to_owned(), &shard)].into_iter(),
            &ids,
            &since,
        );
        assert_eq!(done.brought, 2);
    }
}
