//! `--only GLOB`: which shots this run acts on. The upstreams a selected shot needs come along
//! unless they are already done, and the run says which came along.

use crate::plan::Plan;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    #[error("--only `{pattern}` is not a valid glob: {message}")]
    BadGlob { pattern: String, message: String },
    #[error("--only `{pattern}` matches no shot id (try `shotlist plan` to list the ids)")]
    NoMatch { pattern: String },
}

/// The shots a run acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Per shot in plan order.
    pub selected: Vec<bool>,
    /// Ids of upstreams selected only because a matched shot needs them, in plan order.
    pub came_along: Vec<String>,
}

impl Selection {
    /// Keeps only the shots `keep` marks (a shard). Shards hold whole dependency chains, so no
    /// selected shot loses an upstream it needs.
    pub fn restrict(&mut self, plan: &Plan, keep: &[bool]) {
        for (s, &k) in self.selected.iter_mut().zip(keep) {
            *s &= k;
        }
        let index = plan.id_index();
        self.came_along
            .retain(|id| index.get(id.as_str()).is_some_and(|&i| keep[i]));
    }
}

/// Selects every shot when `patterns` is empty; `is_done(i)` says whether shot `i` already has
/// its video (so a dependant does not drag it along).
pub fn select(
    plan: &Plan,
    patterns: &[String],
    is_done: impl Fn(usize) -> bool,
) -> Result<Selection, SelectError> {
    let n = plan.shots.len();
    if patterns.is_empty() {
        return Ok(Selection {
            selected: vec![true; n],
            came_along: Vec::new(),
        });
    }
    let mut matched = vec![false; n];
    for pattern in patterns {
        let glob = glob::Pattern::new(pattern).map_err(|e| SelectError::BadGlob {
            pattern: pattern.clone(),
            message: e.msg.to_string(),
        })?;
        let mut any = false;
        for (i, shot) in plan.shots.iter().enumerate() {
            if glob.matches(&shot.id) {
                matched[i] = true;
                any = true;
            }
        }
        if !any {
            return Err(SelectError::NoMatch {
                pattern: pattern.clone(),
            });
        }
    }
    let mut selected = matched.clone();
    let mut stack: Vec<usize> = (0..n).filter(|&i| matched[i]).collect();
    while let Some(i) = stack.pop() {
        for &u in &plan.shots[i].depends_on {
            if !selected[u] && !is_done(u) {
                selected[u] = true;
                stack.push(u);
            }
        }
    }
    let came_along = (0..n)
        .filter(|&i| selected[i] && !matched[i])
        .map(|i| plan.shots[i].id.clone())
        .collect();
    Ok(Selection {
        selected,
        came_along,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::plan_of;

    #[test]
    fn no_patterns_select_everything() {
        let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
        let s = select(&plan, &[], |_| false).unwrap();
        assert_eq!(s.selected, [true, true]);
        assert!(s.came_along.is_empty());
    }

    #[test]
    fn upstreams_come_along_transitively_unless_done() {
        let plan = plan_of(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("x", &[])]);
        let s = select(&plan, &["c".into()], |_| false).unwrap();
        assert_eq!(s.selected, [true, true, true, false]);
        assert_eq!(s.came_along, ["a", "b"]);
        let s = select(&plan, &["c".into()], |i| i == 1).unwrap();
        assert_eq!(s.selected, [false, false, true, false]);
    }

    #[test]
    fn a_shard_restricts_the_selection_and_what_came_along() {
        let plan = plan_of(&[("a", &[]), ("b", &["a"]), ("x", &[]), ("y", &["x"])]);
        let mut s = select(&plan, &["b".into(), "y".into()], |_| false).unwrap();
        s.restrict(&plan, &[false, false, true, true]);
        assert_eq!(s.selected, [false, false, true, true]);
        assert_eq!(s.came_along, ["x"]);
    }

    #[test]
    fn bad_and_unmatched_patterns_are_errors() {
        let plan = plan_of(&[("a", &[])]);
        assert!(matches!(
            select(&plan, &["[".into()], |_| false),
            Err(SelectError::BadGlob { .. })
        ));
        assert_eq!(
            select(&plan, &["zz*".into()], |_| false),
            Err(SelectError::NoMatch {
                pattern: "zz*".into()
            })
        );
    }
}
