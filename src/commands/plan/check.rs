//! `plan --check FILE`: the drift gate. A plan committed beside its manifest (`plan -o
//! FILE.json`) is compared with the plan the manifest makes now, so that a change to what a
//! batch will send or pay shows in review and fails CI with its own exit code (5), as
//! `terraform plan -detailed-exitcode` and `sqlx prepare --check` do.
//!
//! Compared per shot id: the request body and the estimated cost. What a run would do in the
//! output folder (`action`, `to_send`) and where files are (`manifest`, `out_dir`) are not
//! compared: they depend on the machine, not on the manifest.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::cost::Money;

/// Largest committed plan read: a plan of the most shots a manifest may make stays well below.
const MAX_PLAN_BYTES: u64 = 256 << 20;
/// Changed fields named per shot; past that, a count.
const MAX_FIELDS: usize = 6;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is larger than {} MiB; is it a plan?", MAX_PLAN_BYTES >> 20)]
    TooBig { path: String },
    #[error(
        "{path} is not a plan written by `shotlist plan -o FILE.json` ({why}); write it with \
         `shotlist plan MANIFEST --format json -o {path}`"
    )]
    NotAPlan { path: String, why: String },
}

/// The differences found; empty when the plan matches.
#[derive(Debug, Default)]
pub struct Drift {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub cost: Option<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.cost.is_none()
    }
}

/// Reads the committed plan at `path`.
pub fn read(path: &Path) -> Result<Value, CheckError> {
    let name = path.display().to_string();
    let read = |source| CheckError::Read {
        path: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    if file.metadata().map_err(read)?.len() > MAX_PLAN_BYTES {
        return Err(CheckError::TooBig { path: name });
    }
    let value: Value = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
        CheckError::NotAPlan {
            path: name.clone(),
            why: e.to_string(),
        }
    })?;
    if shots(&value).is_none() {
        return Err(CheckError::NotAPlan {
            path: name,
            why: "no `shots` list of objects with an `id`".into(),
        });
    }
    Ok(value)
}

fn shots(plan: &Value) -> Option<Vec<(&str, &Value)>> {
    plan.get("shots")?
        .as_array()?
        .iter()
        .map(|s| Some((s.get("id")?.as_str()?, s)))
        .collect()
}

fn cost_text(v: Option<&Value>) -> String {
    match v.and_then(Value::as_str) {
        Some(c) => c.to_owned(),
        None => "no price".to_owned(),
    }
}

/// Compares the committed plan `old` with the current plan `new` (both plan documents).
pub fn compare(old: &Value, new: &Value) -> Drift {
    let mut drift = Drift::default();
    let old_shots = shots(old).unwrap_or_default();
    let new_shots = shots(new).unwrap_or_default();
    let old_by_id: HashMap<&str, &Value> = old_shots.iter().copied().collect();
    let new_by_id: HashMap<&str, &Value> = new_shots.iter().copied().collect();
    for (id, shot) in &new_shots {
        let Some(before) = old_by_id.get(id) else {
            drift
                .added
                .push(format!("{id} (est. {})", cost_text(shot.get("cost"))));
            continue;
        };
        let mut what = Vec::new();
        let mut fields = Vec::new();
        differing(
            before.get("body").unwrap_or(&Value::Null),
            shot.get("body").unwrap_or(&Value::Null),
            String::new(),
            &mut fields,
        );
        if !fields.is_empty() {
            let more = fields.len().saturating_sub(MAX_FIELDS);
            fields.truncate(MAX_FIELDS);
            let mut named = fields.join(", ");
            if more > 0 {
                let _ = write!(named, " and {more} more");
            }
            what.push(format!("request ({named})"));
        }
        if before.get("cost") != shot.get("cost") {
            what.push(format!(
                "cost {} -> {}",
                cost_text(before.get("cost")),
                cost_text(shot.get("cost"))
            ));
        }
        if !what.is_empty() {
            drift.changed.push(format!("{id}: {}", what.join("; ")));
        }
    }
    for (id, shot) in &old_shots {
        if !new_by_id.contains_key(id) {
            drift
                .removed
                .push(format!("{id} (was est. {})", cost_text(shot.get("cost"))));
        }
    }
    let total = |plan: &Value, key: &str| plan.pointer(&format!("/totals/cost/{key}")).cloned();
    let (old_total, new_total) = (total(old, "total"), total(new, "total"));
    let (old_cur, new_cur) = (total(old, "currency"), total(new, "currency"));
    if old_total != new_total || old_cur != new_cur {
        let show = |t: &Option<Value>, c: &Option<Value>| {
            format!(
                "{} {}",
                cost_text(t.as_ref()),
                c.as_ref().and_then(Value::as_str).unwrap_or("")
            )
            .trim_end()
            .to_owned()
        };
        let money = |t: &Option<Value>| t.as_ref()?.as_str().and_then(|s| Money::parse(s).ok());
        let delta = match (money(&old_total), money(&new_total)) {
            (Some(a), Some(b)) if old_cur == new_cur && b >= a => {
                format!(" (+{})", b.saturating_sub(a))
            }
            (Some(a), Some(b)) if old_cur == new_cur => format!(" (-{})", a.saturating_sub(b)),
            _ => String::new(),
        };
        drift.cost = Some(format!(
            "estimated cost: {} -> {}{delta}",
            show(&old_total, &old_cur),
            show(&new_total, &new_cur)
        ));
    }
    drift
}

/// JSON paths (`metadata.input.prompt`) where `a` and `b` differ, leaves first found.
fn differing(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    let join = |key: &str| {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                differing(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    join(k),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differing(p, q, join(&i.to_string()), out);
            }
        }
        _ => out.push(if at.is_empty() { "body".into() } else { at }),
    }
}

/// The report printed on stdout.
pub fn report(drift: &Drift, file: &Path, manifest: &Path, current: &Value) -> String {
    let mut out = String::new();
    if drift.is_empty() {
        let shots = current["shots"].as_array().map_or(0, Vec::len);
        let cost = current
            .pointer("/totals/cost/total")
            .and_then(Value::as_str);
        let currency = current
            .pointer("/totals/cost/currency")
            .and_then(Value::as_str);
        let _ = write!(out, "plan matches {}: {shots} shot(s)", file.display());
        if let Some(c) = cost {
            let _ = write!(out, ", est. {c} {}", currency.unwrap_or_default());
        }
        out = out.trim_end().to_owned();
        out.push('\n');
        return out;
    }
    let _ = writeln!(out, "plan differs from {}:", file.display());
    for a in &drift.added {
        let _ = writeln!(out, "  + {a}");
    }
    for r in &drift.removed {
        let _ = writeln!(out, "  - {r}");
    }
    for c in &drift.changed {
        let _ = writeln!(out, "  ~ {c}");
    }
    if let Some(c) = &drift.cost {
        let _ = writeln!(out, "{c}");
    }
    let json = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let _ = writeln!(
        out,
        "{} added, {} removed, {} changed; if this is meant, update it: shotlist plan {}{} -o {}",
        drift.added.len(),
        drift.removed.len(),
        drift.changed.len(),
        manifest.display(),
        if json { "" } else { " --format json" },
        file.display()
    );
    out
}
