//! Graph rules over all expanded shots: unique ids and file names, `shot:` references,
//! cycles, upstream durations; then keys in topological order.

use std::collections::HashMap;

use serde_json::Value;

use super::diagnostic::{Annotate, Sink};
use super::expand::{Instance, Target};
use super::graph::{Plan, PlannedShot};
use super::model;

pub fn link(checked: Vec<(Instance, Value)>, sink: &mut Sink) -> Vec<PlannedShot> {
    let (instances, mut bodies): (Vec<Instance>, Vec<Value>) = checked.into_iter().unzip();
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(instances.len());
    let mut by_file: HashMap<&str, usize> = HashMap::with_capacity(instances.len());
    for (i, inst) in instances.iter().enumerate() {
        if let Some(&first) = by_id.get(inst.id.as_str()) {
            let f = &instances[first];
            let d = sink
                .error(inst.id_loc, format!("duplicate id `{}`", inst.id))
                .shot(Some(&inst.id))
                .data(inst.data.as_ref());
            let first_at = f
                .id_loc
                .map(|l| format!(" at line {}", l.line))
                .unwrap_or_default();
            d.help(format!(
                "ids must be unique; the first `{}` comes from the shot{first_at}{} (add `row.…`, `matrix.…` or `take` to the id template)",
                f.id,
                f.data.as_ref().map(super::expand::describe_row).unwrap_or_default()
            ));
            continue;
        }
        by_id.insert(&inst.id, i);
        if let Some(&first) = by_file.get(inst.file.value.as_str()) {
            sink.error(
                inst.file.loc.or(inst.id_loc),
                format!(
                    "output file `{}` is also the file of shot `{}`; one would overwrite the other",
                    inst.file.value, instances[first].id
                ),
            )
            .shot(Some(&inst.id))
            .data(inst.data.as_ref())
            .help("make the output template unique per shot, e.g. `{{ id }}.mp4`");
        } else {
            by_file.insert(&inst.file.value, i);
        }
    }

    let mut shots: Vec<PlannedShot> = Vec::with_capacity(instances.len());
    for (inst, body) in instances.iter().zip(bodies.iter_mut()) {
        let mut depends_on: Vec<String> = Vec::new();
        for m in &inst.media {
            let Target::Shot(up) = &m.target else {
                continue;
            };
            match by_id.get(up.as_str()) {
                None => {
                    let d = sink
                        .error(
                            m.target_loc,
                            format!("media `{}`: no shot has the id `{up}`", m.kind),
                        )
                        .shot(Some(&inst.id))
                        .data(inst.data.as_ref());
                    if by_id.len() <= 10_000 {
                        let ids: Vec<&str> = by_id.keys().copied().collect();
                        if let Some(s) = crate::manifest::closest_key(up, &ids) {
                            d.help(format!("did you mean `{s}`?"));
                        }
                    }
                }
                Some(&u) => {
                    let upstream = &instances[u];
                    if let Some((lo, hi)) = model::upstream_limit(&m.kind) {
                        let d = upstream.duration.value;
                        if d < lo || d > hi {
                            sink.error(
                                m.target_loc,
                                format!(
                                    "media `{}`: shot `{up}` lasts {d} s, but {} takes {lo}-{hi} s",
                                    m.kind, m.kind
                                ),
                            )
                            .shot(Some(&inst.id))
                            .data(inst.data.as_ref())
                            .help(format!(
                                "shorten `{up}` to at most {hi} s or use another media type"
                            ));
                        }
                    }
                    if !depends_on.contains(up) {
                        depends_on.push(up.clone());
                    }
                }
            }
        }
        shots.push(PlannedShot {
            id: inst.id.clone(),
            key: String::new(),
            model: inst.model.id.to_owned(),
            duration: inst.duration.value,
            resolution: inst.resolution.value.clone(),
            ratio: super::body::sent_ratio(inst),
            seed: inst.seed.as_ref().map(|s| s.value),
            source: inst.data.as_ref().map(|d| d.table.clone()),
            row: inst.data.as_ref().map(|d| d.row),
            depends_on,
            file: inst.file.value.clone(),
            body: std::mem::take(body),
        });
    }

    report_cycles(&shots, &instances, sink);

    let mut plan = Plan {
        name: String::new(),
        manifest: Default::default(),
        out_dir: Default::default(),
        shots,
    };
    let index: HashMap<String, usize> = plan
        .shots
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    for i in plan.topological_order() {
        let key = {
            let shots = &plan.shots;
            super::seed::shot_key(&shots[i].body, |up| {
                index
                    .get(up)
                    .map(|&u| shots[u].key.clone())
                    .filter(|k| !k.is_empty())
            })
        };
        plan.shots[i].key = key;
    }
    plan.shots
}

/// Reports each cycle once, naming its members in order.
fn report_cycles(shots: &[PlannedShot], instances: &[Instance], sink: &mut Sink) {
    let index: HashMap<&str, usize> = shots
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut state = vec![0u8; shots.len()];
    for start in 0..shots.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let ups = &shots[node].depends_on;
            if let Some(up) = ups.get(*next) {
                *next += 1;
                let Some(&u) = index.get(up.as_str()) else {
                    continue;
                };
                match state[u] {
                    0 => {
                        state[u] = 1;
                        stack.push((u, 0));
                    }
                    1 => {
                        let pos = stack.iter().position(|&(n, _)| n == u).unwrap_or(0);
                        let mut members: Vec<&str> = stack[pos..]
                            .iter()
                            .map(|&(n, _)| shots[n].id.as_str())
                            .collect();
                        members.push(shots[u].id.as_str());
                        let inst = &instances[node];
                        let edge = Target::Shot(shots[u].id.clone());
                        sink.error(
                            inst.media.iter().find(|m| m.target == edge).and_then(|m| m.target_loc).or(inst.id_loc),
                            format!("shots form a cycle: {}", members.join(" → ")),
                        )
                        .shot(Some(&inst.id))
                        .help("each shot needs the next one's video; a shot cannot need its own video, directly or through others");
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
}
