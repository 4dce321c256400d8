//! `shotlist mark`: approve, reject or clear shots' videos in `<out>/marks.json`, by id or
//! glob, or import the marks a review page downloaded, or prune the marks of shots no longer in
//! the plan; then refresh `review.html`.

use std::collections::HashMap;

use crate::cli::MarkArgs;
use crate::commands::Global;
use crate::error::Error;
use crate::review::{self, Mark, Marks, Shot, Verdict, marks};

pub fn run(global: &Global, args: &MarkArgs) -> Result<u8, Error> {
    let mut plan = super::load_plan(global, &args.manifest)?;
    plan.out_dir = super::out_dir(&plan, args.out.as_deref(), None);
    let dir = plan.out_dir.clone();
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} does not exist: run the batch first, or pass --out DIR",
            dir.display()
        )));
    }
    if let Some(note) = &args.note
        && note.chars().count() > marks::MAX_NOTE_CHARS
    {
        return Err(Error::Usage(format!(
            "--note is longer than {} characters",
            marks::MAX_NOTE_CHARS
        )));
    }
    let shots = review::source::load(&dir, Some(&plan))?;
    let given: Vec<Mark> = match &args.import {
        Some(file) => imported(file, &shots, global.quiet)?,
        None if args.prune => Vec::new(),
        None => {
            let verdict = if args.approve {
                Verdict::Approved
            } else if args.reject {
                Verdict::Rejected
            } else {
                Verdict::Cleared
            };
            let at = crate::journal::now_rfc3339();
            let chosen = select(&shots, &args.ids)?;
            let without: Vec<String> = chosen
                .iter()
                .filter(|s| s.status != "succeeded")
                .map(|s| format!("{} ({})", s.id, s.status))
                .collect();
            if verdict != Verdict::Cleared && !without.is_empty() && !global.quiet {
                // Marks are kept by key, so they hold for the video the shot makes later.
                eprintln!(
                    "note: no video yet for {}: {} applies to the video each makes with this \
                     request",
                    crate::review::marks::list_some(&without),
                    verdict.as_str()
                );
            }
            chosen
                .into_iter()
                .map(|s| Mark {
                    id: s.id.clone(),
                    key: s.key.clone(),
                    mark: verdict,
                    note: args.note.clone().filter(|n| !n.is_empty()),
                    at: Some(at.clone()),
                })
                .collect()
        }
    };
    let path = dir.join(marks::FILE_NAME);
    let lock = marks::lock(&dir).map_err(|e| {
        let lock_path = dir.join(marks::LOCK_FILE);
        Error::io(format!("cannot lock {}", lock_path.display()), e)
    })?;
    let mut all = Marks::load(&path)?;
    for m in &given {
        all.apply(m.clone());
    }
    let ids = plan.id_index();
    let pruned = if args.prune {
        all.prune(|id| ids.contains_key(id))
    } else {
        0
    };
    let stale = all.stale(|id| ids.contains_key(id)).len();
    drop(ids);
    all.save(&path)?;
    drop(lock);
    if !global.quiet && args.prune {
        println!("pruned {pruned} mark(s) of shots no longer in the plan");
    } else if !global.quiet && stale > 0 {
        eprintln!(
            "note: {stale} mark(s) name shots no longer in the plan; `shotlist mark {} --prune` \
             removes them",
            args.manifest.display()
        );
    }
    if !global.quiet {
        let mut by_verdict: Vec<(Verdict, Vec<&str>)> = Vec::new();
        for m in &given {
            match by_verdict.iter_mut().find(|(v, _)| *v == m.mark) {
                Some((_, ids)) => ids.push(&m.id),
                None => by_verdict.push((m.mark, vec![&m.id])),
            }
        }
        for (v, ids) in by_verdict {
            let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
            println!(
                "{} {}: {}",
                v.as_str(),
                ids.len(),
                crate::review::marks::list_some(&ids)
            );
        }
        println!("{} mark(s) in {}", all.len(), path.display());
    }
    let (page, _) = crate::review::write_for(plan)?;
    if !global.quiet {
        println!("review: {}", page.display());
    }
    Ok(crate::error::exit::OK)
}

/// The shots `patterns` name: each an exact id or a glob that must match at least one shot.
/// An exact id is looked up, not matched against every shot: the page's commands name
/// hundreds of ids at once.
fn select<'a>(shots: &'a [Shot], patterns: &[String]) -> Result<Vec<&'a Shot>, Error> {
    let mut picked = vec![false; shots.len()];
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::with_capacity(shots.len());
    for (i, s) in shots.iter().enumerate() {
        by_id.entry(s.id.as_str()).or_default().push(i);
    }
    for pattern in patterns {
        let exact = by_id.get(pattern.as_str());
        let mut any = exact.is_some();
        for &i in exact.into_iter().flatten() {
            picked[i] = true;
        }
        if pattern.contains(['*', '?', '[']) {
            let glob = glob::Pattern::new(pattern)
                .map_err(|e| Error::Usage(format!("`{pattern}` is not a valid glob: {}", e.msg)))?;
            for (i, s) in shots.iter().enumerate() {
                if glob.matches(&s.id) {
                    picked[i] = true;
                    any = true;
                }
            }
        }
        if !any {
            let ids: Vec<&str> = shots.iter().map(|s| s.id.as_str()).collect();
            let close = crate::manifest::closest_key(pattern, &ids)
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            return Err(Error::Usage(format!(
                "`{pattern}` matches no shot id in {}; nothing was marked ({close}`shotlist \
                 plan MANIFEST` lists every id)",
                crate::report::JSON_FILE,
            )));
        }
    }
    let chosen: Vec<&Shot> = shots
        .iter()
        .zip(picked)
        .filter_map(|(s, p)| p.then_some(s))
        .collect();
    if let Some(s) = chosen.iter().find(|s| s.key.is_empty()) {
        return Err(Error::Usage(format!(
            "shot `{}` has no key in plan.json, so a mark could not name its video",
            s.id
        )));
    }
    Ok(chosen)
}

/// The entries of a marks file to import, keeping those whose id is in this batch.
fn imported(file: &std::path::Path, shots: &[Shot], quiet: bool) -> Result<Vec<Mark>, Error> {
    let entries = marks::read_entries(file)?
        .ok_or_else(|| Error::Usage(format!("{}: no such file", file.display())))?;
    let keys: HashMap<&str, &str> = shots
        .iter()
        .map(|s| (s.id.as_str(), s.key.as_str()))
        .collect();
    let at = crate::journal::now_rfc3339();
    let mut kept = Vec::with_capacity(entries.len());
    let (mut unknown, mut older) = (Vec::new(), 0usize);
    for mut m in entries {
        match keys.get(m.id.as_str()) {
            None => unknown.push(m.id),
            Some(key) => {
                if *key != m.key {
                    older += 1;
                }
                m.at.get_or_insert_with(|| at.clone());
                kept.push(m);
            }
        }
    }
    if !quiet && !unknown.is_empty() {
        eprintln!(
            "warning: {} mark(s) name shots this batch does not have and were ignored: {}",
            unknown.len(),
            crate::review::marks::list_some(&unknown)
        );
    }
    if !quiet && older > 0 {
        eprintln!(
            "note: {older} mark(s) are for an earlier version of their shot (another key); \
             kept, but they do not apply to the current videos"
        );
    }
    Ok(kept)
}
