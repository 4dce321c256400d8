//! `shotlist status`: the plan against the journal, without network.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::cli::{StatusArgs, TextOrJson};
use crate::commands::Global;
use crate::config::Config;
use crate::cost::{Money, PriceBook};
use crate::error::Error;
use crate::exec::{self, resume::Start};
use crate::journal::{self, Phase};
use crate::report::ResultStatus;

/// One shot's standing, in the results' vocabulary plus "in flight" (submitted and not
/// finished, or finished and not downloaded yet: the next run polls or downloads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Succeeded,
    InFlight,
    Pending,
    Failed,
    Skipped,
    Unknown,
    Expired,
}

impl Standing {
    const ALL: [Standing; 7] = [
        Standing::Succeeded,
        Standing::InFlight,
        Standing::Pending,
        Standing::Failed,
        Standing::Skipped,
        Standing::Unknown,
        Standing::Expired,
    ];

    fn label(self) -> &'static str {
        match self {
            Standing::Succeeded => "succeeded",
            Standing::InFlight => "in flight",
            Standing::Pending => "pending",
            Standing::Failed => "failed",
            Standing::Skipped => "skipped",
            Standing::Unknown => "unknown",
            Standing::Expired => "expired",
        }
    }

    /// Held: the next run does not send it without a flag (or its upstream).
    fn held(self) -> bool {
        matches!(
            self,
            Standing::Failed | Standing::Skipped | Standing::Unknown | Standing::Expired
        )
    }
}

#[derive(Debug, Serialize)]
struct ShotStatus<'a> {
    id: &'a str,
    key: &'a str,
    status: Standing,
    task_id: Option<String>,
    attempts: u32,
    /// Tasks this shot id has had (every attempt that was or may have been paid).
    tasks: u32,
    /// Their estimate.
    spent: Money,
    file: Option<String>,
    error: Option<String>,
}

/// An earlier video kept under `videos/superseded/`.
#[derive(Debug, Serialize)]
struct Superseded<'a> {
    id: &'a str,
    key: &'a str,
    /// Relative to `videos/`.
    file: &'a str,
    at: &'a str,
}

pub fn run(global: &Global, args: &StatusArgs) -> Result<u8, Error> {
    let mut plan = super::load_plan(global, &args.manifest)?;
    plan.out_dir = super::out_dir(&plan, args.out.as_deref(), args.shard);
    let in_shard = args
        .shard
        .map(|s| crate::plan::shard::partition(&plan, s.count).mask(s.index));
    let path = plan.out_dir.join(journal::FILE_NAME);
    let replayed = crate::folder::replay(&plan.out_dir, args.skip_bad_journal_lines)?;
    let marks = crate::review::Marks::load(&plan.out_dir.join(crate::review::marks::FILE_NAME))?;
    let ids = plan.id_index();
    let stale_marks = marks.stale(|id| ids.contains_key(id)).len();
    drop(ids);
    let why = crate::review::retake::apply(&mut plan, &replayed, &marks, false);
    let history = exec::resume::histories(&plan, &replayed);
    let prices = PriceBook::new(&Config::load(global.config.as_deref(), &args.manifest)?);
    let mut left = Money::ZERO;
    let spent = prices.spent(&plan, &replayed.ledger);
    let per_shot = prices.per_shot(&plan, &replayed.ledger);
    let videos = plan.out_dir.join("videos");
    let now = SystemTime::now();
    // No client here: the folder's provider (GravitexAI before one was recorded).
    let provider = crate::folder::folder_provider(&plan.out_dir)?
        .unwrap_or_default()
        .provider();
    let mut standings = Vec::with_capacity(plan.shots.len());
    let mut reasons = Vec::with_capacity(plan.shots.len());
    for (shot, &h) in plan.shots.iter().zip(&history) {
        let start = exec::resume::decide(h, now, &provider, Default::default(), |h| {
            exec::resume::own_video(shot, h) && exec::resume::video_intact(&videos, h)
        });
        let (standing, reason) = match (start, h.map(|h| h.phase())) {
            (Start::Done, _) => (Standing::Succeeded, None),
            (Start::Poll { .. } | Start::Download { .. }, _) => (Standing::InFlight, None),
            (Start::Hold { status, reason }, _) => (
                match status {
                    ResultStatus::Unknown => Standing::Unknown,
                    ResultStatus::Expired => Standing::Expired,
                    _ => Standing::Failed,
                },
                Some(reason.to_string()),
            ),
            (Start::Submit, Some(Phase::Failed)) => (Standing::Failed, None),
            (Start::Submit, _) => (Standing::Pending, None),
        };
        standings.push(standing);
        reasons.push(reason);
    }
    // A shot that would be sent follows a held one: the next run skips it, as the run did.
    for i in plan.topological_order() {
        if standings[i] != Standing::Pending {
            continue;
        }
        let held_up = plan.shots[i]
            .depends_on
            .iter()
            .copied()
            .find(|&u| standings[u].held());
        if let Some(u) = held_up {
            standings[i] = Standing::Skipped;
            reasons[i] = Some(format!(
                "upstream `{}` is {}",
                plan.shots[u].id,
                standings[u].label()
            ));
        }
    }
    let mut shots = Vec::with_capacity(plan.shots.len());
    for (i, (shot, &h)) in plan.shots.iter().zip(&history).enumerate() {
        if in_shard.as_ref().is_some_and(|m| !m[i]) {
            continue;
        }
        let standing = standings[i];
        let cost = prices.shot(shot).unwrap_or_default();
        if standing == Standing::Pending
            && !h.is_some_and(|h| h.task_id.is_some() || h.unknown || h.submit_open)
        {
            left += cost;
        }
        let (tasks, shot_spent) = per_shot.get(shot.id.as_str()).copied().unwrap_or_default();
        shots.push(ShotStatus {
            id: &shot.id,
            key: &shot.key,
            status: standing,
            task_id: h.and_then(|h| h.task_id.clone()),
            attempts: h.map_or(0, |h| h.attempts),
            tasks,
            spent: shot_spent,
            file: h
                .and_then(|h| h.file.clone())
                .filter(|_| standing == Standing::Succeeded),
            error: reasons[i]
                .take()
                .or_else(|| h.and_then(|h| h.error.clone()))
                .filter(|_| standing != Standing::Succeeded)
                .or_else(|| why[i].as_ref()?.held_note(&args.manifest, &shot.id)),
        });
    }
    let mut counts: BTreeMap<Standing, usize> = BTreeMap::new();
    for s in &shots {
        *counts.entry(s.status).or_default() += 1;
    }
    let superseded: Vec<Superseded> = replayed
        .superseded
        .iter()
        .map(|e| Superseded {
            id: &e.id,
            key: &e.key,
            file: e.file.as_deref().unwrap_or_default(),
            at: &e.ts,
        })
        .collect();
    match args.format {
        TextOrJson::Json => {
            let counts: BTreeMap<Standing, usize> = Standing::ALL
                .into_iter()
                .map(|s| (s, counts.get(&s).copied().unwrap_or(0)))
                .collect();
            let doc = serde_json::json!({
                "version": crate::report::FORMAT_VERSION,
                "name": plan.name,
                "out_dir": plan.out_dir,
                "total": shots.len(),
                "counts": counts,
                "cost": {
                    "spent": spent.amount,
                    "tasks": spent.tasks,
                    "unpriced_tasks": spent.unpriced,
                    "left": left,
                    "currency": prices.currency,
                },
                "shots": shots,
                "superseded": superseded,
                "stale_marks": stale_marks,
            });
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
            );
        }
        TextOrJson::Text => {
            crate::outln!(
                "{} ({} shots, output in {})",
                plan.name,
                shots.len(),
                plan.out_dir.display()
            );
            let line: Vec<String> = counts
                .iter()
                .map(|(s, n)| format!("{n} {}", s.label()))
                .collect();
            crate::outln!("{}", line.join(", "));
            let unpriced = match spent.unpriced {
                0 => String::new(),
                n => format!(" ({n} of them without a price, not counted)"),
            };
            crate::outln!(
                "est. {} spent on {} task(s){unpriced}, {} left to send",
                prices.show(spent.amount),
                spent.tasks,
                prices.show(left)
            );
            if global.verbose > 0 {
                for s in shots.iter().filter(|s| s.tasks > 0) {
                    crate::outln!(
                        "  {}: {} task(s), est. {}",
                        s.id,
                        s.tasks,
                        prices.show(s.spent)
                    );
                }
            }
            for s in &shots {
                if s.status.held() || s.error.is_some() && s.status == Standing::Succeeded {
                    crate::outln!(
                        "  {} {}: {}",
                        s.status.label(),
                        s.id,
                        s.error.as_deref().unwrap_or("")
                    );
                }
            }
            for s in &superseded {
                println!("  superseded {} (key {}): videos/{}", s.id, s.key, s.file);
            }
            if stale_marks > 0 {
                crate::outln!(
                    "{stale_marks} mark(s) name shots no longer in the plan (kept until pruned: \
                     `shotlist mark {} --prune`)",
                    args.manifest.display()
                );
            }
        }
    }
    if !replayed.skipped.is_empty() && !global.quiet {
        eprintln!(
            "note: unreadable lines {:?} of {} were skipped",
            replayed.skipped,
            path.display()
        );
    }
    Ok(crate::error::exit::OK)
}
