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
//! again too: their input changed. Except an approved one: a video a reviewer approved is never
//! regenerated without their say, so such a dependant keeps the attempt that was approved (found
//! in the journal among those made from its upstreams' earlier attempts) until its mark is
//! cleared, and its own dependants keep theirs, whose input did not change.

use rustc_hash::{FxHashMap, FxHashSet};
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
    /// An upstream (named) takes a new attempt, but a video of this shot made before is
    /// approved: that attempt stays the shot's, and nothing is sent for it.
    Held(String),
}

impl Retake {
    /// The reason `plan` and `run` give for sending (or, for [`Retake::Held`], keeping) shot
    /// `id` of `manifest`.
    pub fn reason(&self, manifest: &std::path::Path, id: &str) -> String {
        match self {
            Retake::Recorded(n) | Retake::New(n) => format!("retake {n} (rejected)"),
            Retake::UpstreamRetaken(up) => format!("upstream retaken (`{up}`)"),
            Retake::Held(up) => format!(
                "approved (its upstream `{up}` is retaken; `shotlist mark {} {id} --clear` \
                 regenerates it from the new take)",
                manifest.display()
            ),
        }
    }

    /// For [`Retake::Held`], its reason: the note `plan`, `run`, `status` and the results
    /// give for a shot kept as it is.
    pub fn held_note(&self, manifest: &std::path::Path, id: &str) -> Option<String> {
        matches!(self, Retake::Held(_)).then(|| self.reason(manifest, id))
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
/// newest attempt is marked rejected; then re-derives the keys of their dependants, except a
/// dependant whose earlier video is approved: it keeps that attempt ([`Retake::Held`]), so its
/// own dependants keep theirs. Returns each shot's reason (`None` for a shot as the manifest
/// describes it).
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
    // By shot: every attempt the journal holds (made from any attempt of its upstreams).
    let mut attempts: Vec<Vec<Attempt>> = vec![Vec::new(); plan.shots.len()];
    let mut bodies: Vec<(usize, Body)> = Vec::new();
    for i in plan.topological_order() {
        let shot = &plan.shots[i];
        let approved = |key: &str| {
            marks
                .get(&shot.id, key)
                .is_some_and(|m| m.mark == Verdict::Approved)
        };
        let changed_up = (shot.depends_on.iter().copied()).find(|&u| keys[u] != plan.shots[u].key);
        if let Some(up) = changed_up {
            keys[i] = key_with(&shot.body, &index, &keys);
            why[i] = Some(Retake::UpstreamRetaken(plan.shots[up].id.clone()));
        }
        let in_journal = keys_in_journal.get(shot.id.as_str()).copied().unwrap_or(0);
        if in_journal == 0 {
            continue;
        }
        // Retakes are looked for only where the journal holds other keys of this id.
        let mut newest: Option<Attempt> = None;
        if in_journal > usize::from(journal.get(&shot.id, &keys[i]).is_some()) {
            for n in 1..=MAX_RETAKES {
                let key = key_with(&attempt_body(shot, batch_seed, n), &index, &keys);
                if journal.get(&shot.id, &key).is_none() {
                    break;
                }
                newest = Some(Attempt { n, key });
            }
        }
        let current = newest.as_ref().map_or(keys[i].as_str(), |a| a.key.as_str());
        let unsent = journal.get(&shot.id, current).is_none();
        let alternatives = |u: usize| attempts[u].iter().any(|a| a.key != keys[u]);
        attempts[i] = if in_journal == usize::from(!unsent)
            && !shot.depends_on.iter().any(|&u| alternatives(u))
        {
            // The one key in the journal is the newest attempt's: nothing to look for.
            let n = newest.as_ref().map_or(0, |a| a.n);
            vec![Attempt {
                n,
                key: current.to_owned(),
            }]
        } else {
            journal_attempts(plan, i, journal, &index, &keys, &attempts)
        };
        // A retake upstream would send this shot again; an approved earlier video holds it.
        if let Some(up) = changed_up
            && unsent
            && !approved(current)
            && let Some(kept) = (attempts[i].iter())
                .filter(|a| approved(&a.key))
                .max_by_key(|a| journal.get(&shot.id, &a.key).map(|h| h.line))
        {
            newest = Some(kept.clone());
            why[i] = Some(Retake::Held(plan.shots[up].id.clone()));
        }
        let recorded = newest.as_ref().map_or(0, |a| a.n);
        let current = newest.as_ref().map_or(keys[i].as_str(), |a| a.key.as_str());
        let rejected = marks
            .get(&shot.id, current)
            .is_some_and(|m| m.mark == Verdict::Rejected);
        if retake_rejected && rejected && recorded < MAX_RETAKES {
            let n = recorded + 1;
            let key = key_with(&attempt_body(shot, batch_seed, n), &index, &keys);
            newest = Some(Attempt { n, key });
            why[i] = Some(Retake::New(n));
        } else if recorded > 0 && !matches!(why[i], Some(Retake::Held(_))) {
            why[i] = Some(Retake::Recorded(recorded));
        }
        if let Some(Attempt { n, key }) = newest {
            if n > 0 {
                bodies.push((i, attempt_body(shot, batch_seed, n)));
            }
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

/// One attempt of a shot: retake `n` (0 for the manifest's request) and its key.
#[derive(Debug, Clone)]
struct Attempt {
    n: u32,
    key: String,
}

/// Most combinations of upstream attempts tried for one shot's earlier attempts.
const MAX_COMBINATIONS: usize = 256;

/// The attempts of shot `i` the journal holds: its request and each retake, made from its
/// upstreams' current or earlier attempts (`attempts`, filled in topological order), so an
/// approved video made before an upstream's retake is still found.
fn journal_attempts(
    plan: &Plan,
    i: usize,
    journal: &Replayed,
    index: &FxHashMap<&str, usize>,
    keys: &[String],
    attempts: &[Vec<Attempt>],
) -> Vec<Attempt> {
    let shot = &plan.shots[i];
    let choices: Vec<(usize, Vec<&str>)> = (shot.depends_on.iter())
        .map(|&u| {
            let older = attempts[u].iter().map(|a| a.key.as_str());
            let mut seen = FxHashSet::default();
            let list = (std::iter::once(keys[u].as_str()).chain(older))
                .filter(|&k| seen.insert(k))
                .collect();
            (u, list)
        })
        .collect();
    let mut found: Vec<Attempt> = Vec::new();
    let mut seen: FxHashSet<String> = FxHashSet::default();
    let mut pick = vec![0usize; choices.len()];
    for _ in 0..MAX_COMBINATIONS {
        let key_of = |body: &Body| {
            body.key(|up| {
                let u = *index.get(up)?;
                Some(match choices.iter().position(|(c, _)| *c == u) {
                    Some(p) => choices[p].1[pick[p]],
                    None => keys[u].as_str(),
                })
            })
        };
        for n in 0..=MAX_RETAKES {
            let key = key_of(&attempt_body(shot, plan.batch_seed, n));
            if journal.get(&shot.id, &key).is_none() {
                if n == 0 {
                    continue;
                }
                break;
            }
            if seen.insert(key.clone()) {
                found.push(Attempt { n, key });
            }
        }
        // The next combination, like an odometer; done when it wraps round.
        let mut wrapped = true;
        for (p, (_, list)) in pick.iter_mut().zip(&choices) {
            *p += 1;
            if *p < list.len() {
                wrapped = false;
                break;
            }
            *p = 0;
        }
        if wrapped {
            break;
        }
    }
    found
}

/// The body of retake `n` of `shot` (the manifest's for 0).
fn attempt_body(shot: &crate::plan::PlannedShot, batch_seed: Option<u64>, n: u32) -> Body {
    if n == 0 {
        shot.body.clone()
    } else {
        with_seed(&shot.body, retake_seed(batch_seed, &shot.id, n))
    }
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
    let approved: Vec<bool> = plan
        .shots
        .iter()
        .map(|s| (marks.get(&s.id, &s.key)).is_some_and(|m| m.mark == Verdict::Approved))
        .collect();
    let replaces_approved = (plan.shots.iter().zip(&why).zip(&approved))
        .map(|((s, why), &ok)| {
            why.is_none()
                && !ok
                && marks.approved_other(&s.id, &s.key)
                && !journal.shots.contains_key(&(s.id.clone(), s.key.clone()))
        })
        .collect();
    Ok(Applied {
        why,
        approved,
        replaces_approved,
    })
}

/// What [`apply_in_folder`] found.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Each shot's retake, if any.
    pub why: Vec<Option<Retake>>,
    /// Each shot whose (id, key) is marked approved: never submitted again, whatever the flags.
    pub approved: Vec<bool>,
    /// Each shot whose request changed (its prompt, an upstream) since a video of it was
    /// approved, and that has no attempt of the new request yet: sending it replaces the
    /// approved video, which `plan` and `run` say.
    pub replaces_approved: Vec<bool>,
}

/// What `plan` and `run` add for a shot of [`Applied::replaces_approved`] that is sent.
pub const REPLACES_APPROVED: &str = "approved earlier: its approved video is replaced (moved to \
     videos/superseded/); revert the change to keep it";

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

    /// a → b → c, every shot sent once.
    fn chain() -> (Plan, Replayed) {
        let plan = crate::plan::plan_text(
            std::path::Path::new("m.yaml"),
            "version: 1\nseed: 7\nshots:\n  - id: a\n    model: t2v\n    prompt: one\n  - id: b\n    model: i2v\n    prompt: next\n    media:\n      - { type: first_clip, shot: a }\n  - id: c\n    model: i2v\n    prompt: last\n    media:\n      - { type: first_clip, shot: b }\n",
        )
        .expect("plans")
        .plan;
        let journal = replay(&sent(&plan));
        (plan, journal)
    }

    fn approve(id: &str, key: &str) -> Mark {
        Mark {
            mark: Verdict::Approved,
            ..reject(id, key)
        }
    }

    fn clear(id: &str, key: &str) -> Mark {
        Mark {
            mark: Verdict::Cleared,
            ..reject(id, key)
        }
    }

    #[test]
    fn an_approved_dependant_keeps_its_video_and_so_does_its_own_dependant() {
        let (original, mut journal) = chain();
        let key = |p: &Plan, i: usize| p.shots[i].key.clone();
        let mut marks = Marks::default();
        marks.apply(reject("a", &key(&original, 0)));
        marks.apply(approve("b", &key(&original, 1)));

        let mut p = original.clone();
        let why = apply(&mut p, &journal, &marks, true);
        assert_eq!(
            why,
            [Some(Retake::New(1)), Some(Retake::Held("a".into())), None]
        );
        assert_ne!(key(&p, 0), key(&original, 0));
        assert_eq!(p.shots[1..], original.shots[1..], "b and c as they were");

        // Once the retake is recorded, a run without the flag still holds b.
        journal.apply(99, &Entry::new(EventKind::Submitting, "a", &key(&p, 0)));
        let mut plain = original.clone();
        let why = apply(&mut plain, &journal, &marks, false);
        assert_eq!(
            why[..2],
            [Some(Retake::Recorded(1)), Some(Retake::Held("a".into()))]
        );
        assert_eq!(plain, p);

        // Clearing b's mark sends it (and so c) from the new take.
        marks.apply(clear("b", &key(&original, 1)));
        let mut cleared = original.clone();
        let why = apply(&mut cleared, &journal, &marks, false);
        assert_eq!(
            why,
            [
                Some(Retake::Recorded(1)),
                Some(Retake::UpstreamRetaken("a".into())),
                Some(Retake::UpstreamRetaken("b".into()))
            ]
        );
        assert_ne!(key(&cleared, 1), key(&original, 1));

        // b made from retake 1 and approved; rejecting retake 1 holds b at that video, not
        // at the first one (whose mark was cleared).
        for i in 1..3 {
            journal.apply(
                100,
                &Entry::new(EventKind::Submitting, &p.shots[i].id, &key(&cleared, i)),
            );
        }
        marks.apply(approve("b", &key(&cleared, 1)));
        marks.apply(reject("a", &key(&cleared, 0)));
        let mut second = original.clone();
        let why = apply(&mut second, &journal, &marks, true);
        assert_eq!(
            why[..2],
            [Some(Retake::New(2)), Some(Retake::Held("a".into()))]
        );
        assert_eq!(
            second.shots[1..],
            cleared.shots[1..],
            "b and c keep the videos made from retake 1"
        );
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
