//! Splitting a plan into N shards for N machines (`--shard K/N`).
//!
//! Shots joined by `shot:` edges (transitively) must run on one machine, since a dependant needs
//! its upstream's fresh result URL; so the unit of assignment is a connected component of the
//! dependency graph. A shard folder only knows the shots it ran, so a shot must never move to
//! another shard because *other* shots were added, removed or edited (its new shard would send
//! it again: paid twice). So a component's shard is a hash of what names its upstream-most
//! shots: each shot's manifest entry (its id template) and data row, the same for all takes and
//! matrix variants of them ([`crate::plan::PlannedShot::group`]), put into N buckets by a jump
//! consistent hash. Shards are balanced by count of components on average, not by seconds;
//! changing N moves about 1/N of the shots (see the README's "Changing N").

use std::fmt;
use std::str::FromStr;

use super::graph::Plan;

/// More shards than this is a typo, not a cluster.
pub const MAX_SHARDS: u32 = 10_000;

/// `K/N`: this machine runs shard K (1-based) of N. K may be written as a sum (`0+1/4`), so a
/// Kubernetes Indexed Job with no shell in its image can pass `$(JOB_COMPLETION_INDEX)+1/4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardSpec {
    /// 1-based shard number.
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a shard: {reason}; write K/N with 1 <= K <= N <= {MAX_SHARDS}, e.g. 2/5 \
     (from a 0-based JOB_COMPLETION_INDEX or matrix index i, K is i + 1, e.g. `i+1/5`)"
)]
pub struct ShardSpecError {
    pub text: String,
    pub reason: &'static str,
}

impl FromStr for ShardSpec {
    type Err = ShardSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| ShardSpecError {
            text: text.to_owned(),
            reason,
        };
        let (k, n) = text.trim().split_once('/').ok_or_else(|| err("no `/`"))?;
        let k = k
            .split('+')
            .try_fold(0u32, |sum, term| {
                sum.checked_add(term.trim().parse::<u32>().ok()?)
            })
            .ok_or_else(|| err("K is not a whole number (or a sum of them)"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| err("N is not a whole number"))?;
        if n == 0 || n > MAX_SHARDS {
            return Err(err("N is out of range"));
        }
        if k == 0 || k > n {
            return Err(err("K is out of range"));
        }
        Ok(ShardSpec { index: k, count: n })
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ShardSpec {
    /// The default folder name of this shard under the manifest's output dir.
    pub fn folder_name(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

/// Which shard each shot is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Per shot in plan order: its 1-based shard.
    pub shard_of: Vec<u32>,
    /// Per shard (index 0 is shard 1): seconds of video.
    pub seconds: Vec<u64>,
}

impl Partition {
    /// Per shot in plan order: whether it is in shard `index` (1-based).
    pub fn mask(&self, index: u32) -> Vec<bool> {
        self.shard_of.iter().map(|&s| s == index).collect()
    }

    /// How many shots shard `index` (1-based) has.
    pub fn shots_in(&self, index: u32) -> usize {
        self.shard_of.iter().filter(|&&s| s == index).count()
    }
}

/// Splits `plan` into `count` shards (`count` >= 1).
pub fn partition(plan: &Plan, count: u32) -> Partition {
    let n = plan.shots.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, shot) in plan.shots.iter().enumerate() {
        for &u in &shot.depends_on {
            let (a, b) = (root(&mut parent, i), root(&mut parent, u));
            // The smaller index stays the root: a component is named by its first shot.
            parent[a.max(b)] = a.min(b);
        }
    }
    // A component goes where its upstream-most shots' smallest group hashes: adding,
    // removing or editing a shot moves no other shot, unless the edit joins chains (then the
    // edited shot follows its new upstream).
    let count = count.max(1);
    let mut anchor = vec![u64::MAX; n];
    for (i, shot) in plan.shots.iter().enumerate() {
        if shot.depends_on.is_empty() {
            let r = root(&mut parent, i);
            anchor[r] = anchor[r].min(group_hash(shot));
        }
    }
    let mut seconds = vec![0u64; count as usize];
    let mut shard_of = Vec::with_capacity(n);
    for (i, shot) in plan.shots.iter().enumerate() {
        let r = root(&mut parent, i);
        // A cycle (refused by planning) has no upstream-most shot: its first shot names it.
        let key = if anchor[r] == u64::MAX {
            group_hash(&plan.shots[r])
        } else {
            anchor[r]
        };
        let shard = jump_hash(key, count) + 1;
        seconds[shard as usize - 1] += u64::from(shot.output_seconds());
        shard_of.push(shard);
    }
    Partition { shard_of, seconds }
}

/// A shot's group ([`crate::plan::PlannedShot::group`]), or its id's hash for a plan made
/// without one.
fn group_hash(shot: &crate::plan::PlannedShot) -> u64 {
    if shot.group != 0 {
        return shot.group;
    }
    let h = blake3::hash(shot.id.as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Lamping and Veach's jump consistent hash: `key` to a bucket in `0..count`, spread evenly,
/// and going from N to N + 1 buckets moves only a 1/(N + 1) share of keys (to the new one).
pub fn jump_hash(mut key: u64, count: u32) -> u32 {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < i64::from(count) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::plan_of;

    fn spec(text: &str) -> Result<ShardSpec, &'static str> {
        text.parse::<ShardSpec>().map_err(|e| e.reason)
    }

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        assert_eq!(spec("2/5"), Ok(ShardSpec { index: 2, count: 5 }));
        assert_eq!(spec(" 1/1 "), Ok(ShardSpec { index: 1, count: 1 }));
        assert_eq!(spec("0/3"), Err("K is out of range"));
        assert_eq!(spec("4/3"), Err("K is out of range"));
        assert_eq!(spec("1/0"), Err("N is out of range"));
        assert_eq!(spec("1/10001"), Err("N is out of range"));
        assert_eq!(spec("3"), Err("no `/`"));
        assert_eq!(
            spec("a/3"),
            Err("K is not a whole number (or a sum of them)")
        );
        assert_eq!(spec("0+1/4"), Ok(ShardSpec { index: 1, count: 4 }));
        assert_eq!(spec("3 + 1/4"), Ok(ShardSpec { index: 4, count: 4 }));
        assert_eq!(spec("3+1/3"), Err("K is out of range"));
        assert_eq!(
            spec("4294967295+1/3"),
            Err("K is not a whole number (or a sum of them)")
        );
        assert_eq!(
            spec("+1/3"),
            Err("K is not a whole number (or a sum of them)")
        );
        assert_eq!(
            spec("-1/3"),
            Err("K is not a whole number (or a sum of them)")
        );
        assert_eq!(ShardSpec { index: 2, count: 5 }.to_string(), "2/5");
        assert_eq!(
            ShardSpec { index: 2, count: 5 }.folder_name(),
            "shard-2-of-5"
        );
    }

    #[test]
    fn chains_stay_together() {
        let plan = plan_of(&[
            ("a", &[]),
            ("x", &[]),
            ("b", &["a"]),
            ("y", &[]),
            ("z", &["y"]),
            ("c", &["b"]),
            ("w", &[]),
        ]);
        let p = partition(&plan, 3);
        assert_eq!(p.shard_of[0], p.shard_of[2]);
        assert_eq!(p.shard_of[0], p.shard_of[5]);
        assert_eq!(p.shard_of[3], p.shard_of[4]);
        assert_eq!(p.seconds.iter().sum::<u64>(), 35);
        assert_eq!(p.shots_in(1) + p.shots_in(2) + p.shots_in(3), 7);
        let late = plan_of(&[("late", &["early"]), ("solo", &[]), ("early", &[])]);
        let p = partition(&late, 5);
        assert_eq!(p.shard_of[0], p.shard_of[2]);
    }

    /// Adding, removing or editing shots never moves another shot; growing N by one moves
    /// shots only into the new shard.
    #[test]
    fn edits_move_no_other_shot_and_a_new_n_moves_shots_only_to_the_new_shard() {
        let ids: Vec<String> = (0..300).map(|i| format!("s{i}")).collect();
        let shots = |skip: &[usize], extra: &[&'static str]| {
            let mut v: Vec<(&str, &[&str])> = (ids.iter().enumerate())
                .filter(|(i, _)| !skip.contains(i))
                .map(|(_, id)| (id.as_str(), &[][..]))
                .collect();
            v.extend(extra.iter().map(|id| (*id, &[][..])));
            plan_of(&v)
        };
        let base = shots(&[], &[]);
        let of = |plan: &Plan, n| {
            let p = partition(plan, n);
            (plan.shots.iter().map(|s| s.id.clone()))
                .zip(p.shard_of)
                .collect::<std::collections::HashMap<String, u32>>()
        };
        let before = of(&base, 4);
        for edited in [shots(&[7, 150], &[]), shots(&[], &["new-a", "new-b"])] {
            for (id, shard) in of(&edited, 4) {
                if let Some(&old) = before.get(&id) {
                    assert_eq!(old, shard, "{id} moved");
                }
            }
        }
        let five = of(&base, 5);
        let moved = (before.iter()).filter(|(id, s)| five[*id] != **s).count();
        assert!(five.iter().all(|(id, &s)| s == before[id] || s == 5));
        assert!((30..=100).contains(&moved), "{moved} of 300 moved");
        let counts: Vec<usize> = (1..=4)
            .map(|k| before.values().filter(|&&s| s == k).count())
            .collect();
        assert!(
            counts.iter().all(|&c| (45..=105).contains(&c)),
            "{counts:?}"
        );
    }

    /// Every take and matrix variant of one manifest entry's row stays in one shard.
    #[test]
    fn takes_and_matrix_variants_stay_together() {
        let text = "version: 1\nshots:\n  - id: \"s{{ matrix.n }}\"\n    matrix: { n: [1, 2, 3] }\n\
                    \x20   takes: 3\n    model: t2v\n    prompt: \"p {{ matrix.n }}\"\n\
                    \x20 - { id: other, model: t2v, prompt: q }\n";
        let plan = crate::plan::plan_text(std::path::Path::new("m.yaml"), text)
            .expect("plans")
            .plan;
        assert_eq!(plan.shots.len(), 10);
        for n in [2, 3, 7, 50] {
            let p = partition(&plan, n);
            assert!(p.shard_of[..9].iter().all(|&s| s == p.shard_of[0]), "{p:?}");
        }
    }

    #[test]
    fn more_shards_than_shots_leave_some_empty() {
        let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[])]);
        assert_eq!(partition(&plan, 1).shard_of, [1, 1, 1, 1]);
        let p = partition(&plan, 60);
        assert_eq!(p.seconds.iter().sum::<u64>(), 20);
        assert!(p.seconds.iter().filter(|&&s| s == 0).count() >= 56);
    }

    #[test]
    fn the_same_plan_gives_the_same_shards() {
        let shots: Vec<(String, Vec<String>)> = (0..200)
            .map(|i| {
                let ups = if i % 3 == 2 {
                    vec![format!("s{}", i - 1)]
                } else {
                    vec![]
                };
                (format!("s{i}"), ups)
            })
            .collect();
        let refs: Vec<(&str, Vec<&str>)> = shots
            .iter()
            .map(|(id, ups)| (id.as_str(), ups.iter().map(String::as_str).collect()))
            .collect();
        let refs: Vec<(&str, &[&str])> = refs.iter().map(|(i, u)| (*i, u.as_slice())).collect();
        let plan = plan_of(&refs);
        let first = partition(&plan, 7);
        assert_eq!(first, partition(&plan.clone(), 7));
        assert!(first.seconds.iter().all(|&s| s > 0), "{:?}", first.seconds);
    }
}
