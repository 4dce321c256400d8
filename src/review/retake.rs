//! Retakes: a rejected video is generated again as a new attempt of the same shot.
//!
//! A retake changes only the seed, so its body (and key) differ and the journal treats it as a
//! new attempt of the same id; the rejected video stays on disk (moved under
//! `videos/superseded/` when the new one arrives). Nothing about retakes is stored beside the
//! journal: retake `n` of a shot has a body derived from the manifest, so the attempts a
//! folder holds are found by deriving retake 1, 2, … and asking the journal for each key. Every
//! command applies the recorded retakes (so `plan`, `run`, `review` and `mark` all see the
//! newest attempt); only `--retake-rejected` adds one, for each shot whose newest attempt is
//! marked rejected. Dependants get their upstream's new key in their own key, so they are sent
//! again too: their input changed.

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::{Marks, Verdict};
use crate::journal::Replayed;
use crate::plan::seed::derive_seed;
use crate::plan::{Body, Plan};

/// Why a shot's attempt differs from the one the manifest alone describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retake {
    /// Retake `n` is already in the journal: the newest attempt.
    Recorded(u32),
    /// This run adds retake `n`: the newest attempt is marked rejected.
    New(u32),
    /// An upstream (named) takes a new attempt, so this shot's input changed.
    UpstreamRetaken(String),
}

impl Retake {
    /// The reason `plan` gives for sending the shot.
    pub fn reason(&self) -> String {
        match self {
            Retake::Recorded(n) | Retake::New(n) => format!("retake {n} (rejected)"),
            Retake::UpstreamRetaken(up) => format!("upstream retaken (`{up}`)"),
        }
    }
}

/// Most retakes looked for per shot: bounds the work a hostile journal can cause.
pub const MAX_RETAKES: u32 = 1000;

/// The seed of retake `n` of shot `id`: [`derive_seed`] of `"{batch_seed}:{id}:retake{n}"`
/// (the id carries the suffix), with 0 standing for a missing batch seed.
pub fn retake_seed(batch_seed: Option<u64>, id: &str, n: u32) -> u32 {
    derive_seed(batch_seed.unwrap_or(0), &format!("{id}:retake{n}"))
}

/// Applies recorded retakes to `plan` and, with `retake_rejected`, adds one for each shot whose
/// newest attempt is marked rejected; then re-derives the keys of their dependants. Returns
/// each shot's reason (`None` for a shot as the manifest describes it).
pub fn apply(
    plan: &mut Plan,
    journal: &Replayed,
    marks: &Marks,
    retake_rejected: bool,
) -> Vec<Option<Retake>> {
    let batch_seed = plan.batch_seed;
    let mut why: Vec<Option<Retake>> = vec![None; plan.shots.len()];
    let mut keys_in_journal: FxHashMap<&str, usize> = FxHashMap::default();
    for (id, _) in journal.shots.keys() {
        *keys_in_journal.entry(id.as_str()).or_default() += 1;
    }
    let index = plan.id_index();
    let mut keys: Vec<String> = plan.shots.iter().map(|s| s.key.clone()).collect();
    let mut bodies: Vec<(usize, Body)> = Vec::new();
    for i in plan.topological_order() {
        let shot = &plan.shots[i];
        let changed_up = shot.depends_on.iter().find(|&&u| why[u].is_some());
        if let Some(&up) = changed_up {
            keys[i] = key_with(&shot.body, &index, &keys);
            why[i] = Some(Retake::UpstreamRetaken(plan.shots[up].id.clone()));
        }
        let in_journal = keys_in_journal.get(shot.id.as_str()).copied().unwrap_or(0);
        if in_journal == 0 {
            continue;
        }
        // Retakes are looked for only where the journal holds other keys of this id.
        let mut newest: Option<(u32, Body, String)> = None;
        if in_journal > usize::from(journal.get(&shot.id, &keys[i]).is_some()) {
            for n in 1..=MAX_RETAKES {
                let body = with_seed(&shot.body, retake_seed(batch_seed, &shot.id, n));
                let key = key_with(&body, &index, &keys);
                if journal.get(&shot.id, &key).is_none() {
                    break;
                }
                newest = Some((n, body, key));
            }
        }
        let (recorded, current_key) = match &newest {
            Some((n, _, key)) => (*n, key.as_str()),
            None => (0, keys[i].as_str()),
        };
        let rejected = marks
            .get(&shot.id, current_key)
            .is_some_and(|m| m.mark == Verdict::Rejected);
        if retake_rejected && rejected && recorded < MAX_RETAKES {
            let n = recorded + 1;
            let body = with_seed(&shot.body, retake_seed(batch_seed, &shot.id, n));
            let key = key_with(&body, &index, &keys);
            newest = Some((n, body, key));
            why[i] = Some(Retake::New(n));
        } else if recorded > 0 {
            why[i] = Some(Retake::Recorded(recorded));
        }
        if let Some((_, body, key)) = newest {
            bodies.push((i, body));
            keys[i] = key;
        }
    }
    drop(index);
    for (i, body) in bodies {
        let shot = &mut plan.shots[i];
        shot.seed = seed_of(&body);
        shot.body = body;
    }
    for (shot, key) in plan.shots.iter_mut().zip(keys) {
        shot.key = key;
    }
    why
}

/// [`apply`] with `journal` (the replay of `plan.out_dir`'s, which the command reads once and
/// passes on to the preview or the executor) and the folder's marks.
pub fn apply_in_folder(
    plan: &mut Plan,
    journal: &Replayed,
    retake_rejected: bool,
) -> Result<Applied, super::ReviewError> {
    let marks = Marks::load(&plan.out_dir.join(super::marks::FILE_NAME))?;
    let why = apply(plan, journal, &marks, retake_rejected);
    let approved = plan
        .shots
        .iter()
        .map(|s| (marks.get(&s.id, &s.key)).is_some_and(|m| m.mark == Verdict::Approved))
        .collect();
    Ok(Applied { why, approved })
}

/// What [`apply_in_folder`] found.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Each shot's retake, if any.
    pub why: Vec<Option<Retake>>,
    /// Each shot whose (id, key) is marked approved: never submitted again, whatever the flags.
    pub approved: Vec<bool>,
}

/// The key of `body` with each upstream's current key.
fn key_with(body: &Body, index: &FxHashMap<&str, usize>, keys: &[String]) -> String {
    body.key(|up| index.get(up).map(|&u| keys[u].as_str()))
}

fn with_seed(body: &Body, seed: u32) -> Body {
    let mut value = body.value();
    if let Some(params) = value
        .pointer_mut("/metadata/parameters")
        .and_then(Value::as_object_mut)
    {
        params.insert("seed".into(), Value::from(seed));
    }
    Body::from(value)
}

fn seed_of(body: &Body) -> Option<u32> {
    let seed = body
        .value()
        .pointer("/metadata/parameters/seed")?
        .as_u64()?;
    u32::try_from(seed).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Entry, EventKind, replay};
    use crate::review::Mark;

    fn plan() -> Plan {
        crate::plan::plan_text(
            std::path::Path::new("m.yaml"),
            "version: 1\nseed: 7\nshots:\n  - id: a\n    model: t2v\n    prompt: one\n  - id: b\n    model: i2v\n    prompt: next\n    media:\n      - { type: first_clip, shot: a }\n  - id: c\n    model: t2v\n    prompt: other\n",
        )
        .expect("plans")
        .plan
    }

    fn sent(plan: &Plan) -> Vec<Entry> {
        plan.shots
            .iter()
            .map(|s| Entry::new(EventKind::Submitting, &s.id, &s.key))
            .collect()
    }

    fn reject(id: &str, key: &str) -> Mark {
        Mark {
            id: id.into(),
            key: key.into(),
            mark: Verdict::Rejected,
            note: None,
            at: None,
        }
    }

    #[test]
    fn pinned_retake_seed() {
        // Documented in the README: changing it would change every retake's request.
        assert_eq!(
            retake_seed(Some(7), "a", 1),
            derive_seed(7, "a:retake1"),
            "the id carries the retake suffix"
        );
        assert_ne!(retake_seed(Some(7), "a", 1), retake_seed(Some(7), "a", 2));
        assert_eq!(retake_seed(None, "a", 1), retake_seed(Some(0), "a", 1));
    }

    #[test]
    fn a_rejected_shot_and_its_dependant_change_and_the_retake_is_recorded_after() {
        let original = plan();
        assert_eq!(
            original.batch_seed,
            Some(7),
            "the planner carries the manifest's seed"
        );
        let mut marks = Marks::default();
        marks.apply(reject("a", &original.shots[0].key));
        let mut journal = replay(&sent(&original));

        let mut p = original.clone();
        assert_eq!(apply(&mut p, &journal, &marks, false), [None, None, None]);
        assert_eq!(p, original, "without the flag nothing changes");

        let why = apply(&mut p, &journal, &marks, true);
        assert_eq!(
            why,
            [
                Some(Retake::New(1)),
                Some(Retake::UpstreamRetaken("a".into())),
                None
            ]
        );
        assert_ne!(p.shots[0].key, original.shots[0].key);
        assert_ne!(p.shots[1].key, original.shots[1].key);
        assert_eq!(p.shots[2], original.shots[2]);
        assert_eq!(p.shots[0].seed, Some(retake_seed(Some(7), "a", 1)));
        assert_eq!(p.shots[1].body, original.shots[1].body);

        // Once sent, every later plan finds retake 1, and the flag adds nothing: it is unmarked.
        for e in sent(&p) {
            journal.apply(99, &e);
        }
        for flag in [false, true] {
            let mut again = original.clone();
            let why = apply(&mut again, &journal, &marks, flag);
            assert_eq!(why[0], Some(Retake::Recorded(1)));
            assert_eq!(again, p);
        }

        // Rejecting retake 1 makes retake 2.
        marks.apply(reject("a", &p.shots[0].key));
        let mut third = original.clone();
        let why = apply(&mut third, &journal, &marks, true);
        assert_eq!(why[0], Some(Retake::New(2)));
        assert_eq!(third.shots[0].seed, Some(retake_seed(Some(7), "a", 2)));
    }
}
