//! Splitting a plan into N shards for N machines (`--shard K/N`).
//!
//! Shots joined by `shot:` edges (transitively) must run on one machine, since a dependant needs
//! its upstream's fresh result URL; so the unit of assignment is a connected component of the
//! dependency graph. Components go, largest first (seconds of video), to the shard with the
//! fewest seconds so far. Every tie is broken by plan order or shard number, never by hashing,
//! so every machine given the same manifest and data computes the same shards.

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
    // (seconds, first shot) per component, indexed by the component's first shot.
    let mut seconds = vec![0u64; n];
    let mut roots = Vec::new();
    let mut root_of = vec![0usize; n];
    for (i, shot) in plan.shots.iter().enumerate() {
        let r = root(&mut parent, i);
        if r == i {
            roots.push(i);
        }
        root_of[i] = r;
        seconds[r] += u64::from(shot.output_seconds());
    }
    roots.sort_by(|&a, &b| seconds[b].cmp(&seconds[a]).then(a.cmp(&b)));
    let count = count.max(1) as usize;
    let mut load = vec![0u64; count];
    let mut shard_of_root = vec![0u32; n];
    for r in roots {
        let lightest = (0..count)
            .min_by_key(|&s| (load[s], s))
            .expect("at least one shard");
        load[lightest] += seconds[r];
        shard_of_root[r] = lightest as u32 + 1;
    }
    Partition {
        shard_of: root_of.iter().map(|&r| shard_of_root[r]).collect(),
        seconds: load,
    }
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
    fn chains_stay_together_and_the_heaviest_goes_first() {
        // Components: {a, b, c} (15 s), {x} (5 s), {y, z} (10 s), {w} (5 s); the two 5 s ones
        // tie on load, and the first goes to the lighter shard 2, the second to shard 1.
        let plan = plan_of(&[
            ("a", &[]),
            ("x", &[]),
            ("b", &["a"]),
            ("y", &[]),
            ("z", &["y"]),
            ("c", &["b"]),
            ("w", &[]),
        ]);
        let p = partition(&plan, 2);
        assert_eq!(p.shard_of, [1, 2, 1, 2, 2, 1, 1]);
        assert_eq!(p.seconds, [20, 15]);
        assert_eq!(p.mask(1), [true, false, true, false, false, true, true]);
        assert_eq!(p.shots_in(2), 3);
    }

    #[test]
    fn a_dependant_listed_before_its_upstream_joins_it() {
        let plan = plan_of(&[("late", &["early"]), ("solo", &[]), ("early", &[])]);
        let p = partition(&plan, 3);
        assert_eq!(p.shard_of[0], p.shard_of[2]);
        assert_ne!(p.shard_of[0], p.shard_of[1]);
        assert_eq!(p.seconds, [10, 5, 0]);
    }

    #[test]
    fn equal_components_fill_shards_in_order_and_more_shards_than_shots_leave_some_empty() {
        let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[])]);
        assert_eq!(partition(&plan, 2).shard_of, [1, 2, 1, 2]);
        assert_eq!(partition(&plan, 1).shard_of, [1, 1, 1, 1]);
        let p = partition(&plan, 6);
        assert_eq!(p.shard_of, [1, 2, 3, 4]);
        assert_eq!(p.seconds, [5, 5, 5, 5, 0, 0]);
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
        let max = *first.seconds.iter().max().unwrap();
        let min = *first.seconds.iter().min().unwrap();
        assert!(max - min <= 10, "{:?}", first.seconds);
    }
}
