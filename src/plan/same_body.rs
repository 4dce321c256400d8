//! Shots that would send identical request bodies (takes without any seed, copied shots).
//!
//! Each is still its own shot, created and paid for on its own, but the provider may return
//! near-identical videos, which is rarely what a user who wrote `takes: 3` wants.

use rustc_hash::FxHashMap;

use super::diagnostic::{Annotate, Sink};
use super::graph::PlannedShot;

/// Warns once per group of shots that share a key.
pub fn warn_identical_bodies(shots: &[PlannedShot], sink: &mut Sink) {
    let mut groups: FxHashMap<&str, Vec<&str>> = FxHashMap::default();
    for shot in shots {
        groups.entry(&shot.key).or_default().push(&shot.id);
    }
    let mut groups: Vec<Vec<&str>> = groups.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    for ids in groups {
        let shown: Vec<String> = ids.iter().take(5).map(|id| format!("`{id}`")).collect();
        let more = ids.len().saturating_sub(5);
        let list = if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        };
        sink.warning(
            None,
            "shots would send identical request bodies: each is created and paid for, but the \
             provider may return near-identical videos",
        )
        .shot(Some(ids[0]))
        .help(format!(
            "{list} are identical; make them differ with a batch `seed:` at the top of the \
             manifest (every take then gets its own seed) or a `seed:` per shot; to also \
             reproduce a seeded shot, set `prompt_extend: false` (on by default, it rewrites \
             the prompt)"
        ));
    }
}
