//! The expand stage: each compiled shot over its table rows, `when` filter, matrix
//! combinations and takes, rendered into [`Instance`]s and handed one by one to the caller's
//! per-shot stages (check, body, collect) on the expanding thread.

use minijinja::{Value, context};
use serde_saphyr::Spanned;

use super::compile::{CompiledShot, Flag, Num, Program, suggestion};
use super::diagnostic::{Annotate, DataLocation, Loc, Sink, row_place};
use super::instance::{Field, Instance, Media, Target};
use super::model;
use crate::template::{Compiled, Templates};

/// Where expanded shots go: the per-shot stages push into one; each thread fills its own, and
/// they are joined back in plan order.
pub trait Collect: Default + Send {
    fn reserve(&mut self, n: usize);
    fn append(&mut self, later: Self);
}

/// The stages run on each instance as soon as it is expanded, on the expanding thread, so a
/// 100,000-row table never holds its instances all at once.
pub type PerShot<'f, C> = dyn Fn(Instance, &mut Sink, &mut C) + Sync + 'f;

/// Expands every compiled shot in manifest order; each instance goes to `per_shot`.
pub fn expand<C: Collect>(
    program: &Program<'_>,
    batch_seed: Option<&Spanned<u64>>,
    sink: &mut Sink,
    per_shot: &PerShot<'_, C>,
) -> C {
    let mut out = C::default();
    for c in &program.shots {
        expand_shot(c, program, batch_seed, sink, per_shot, &mut out);
    }
    out
}

/// Every combination of the matrix, in written key order (the last key varies fastest).
fn combinations(matrix: &[(String, Vec<Value>)]) -> Vec<Value> {
    let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (key, values) in matrix {
        let mut next = Vec::with_capacity(combos.len() * values.len());
        for combo in &combos {
            for v in values {
                let mut c = combo.clone();
                c.push((key.clone(), v.clone()));
                next.push(c);
            }
        }
        combos = next;
    }
    combos.into_iter().map(Value::from_pairs).collect()
}

fn expand_shot<C: Collect>(
    c: &CompiledShot<'_>,
    program: &Program<'_>,
    batch_seed: Option<&Spanned<u64>>,
    sink: &mut Sink,
    per_shot: &PerShot<'_, C>,
    out: &mut C,
) {
    let keys: Vec<Value> = c
        .table
        .map(|t| t.headers.iter().map(|h| Value::from(h.as_str())).collect())
        .unwrap_or_default();
    let rows: Vec<Option<&crate::manifest::Row>> = match c.table {
        None => vec![None],
        Some(t) => t.rows.iter().map(Some).collect(),
    };
    sink.id_template(c.id.loc, &c.id_text);
    let combos = if c.matrix.is_empty() {
        vec![Value::UNDEFINED]
    } else {
        combinations(&c.matrix)
    };
    out.reserve(
        rows.len()
            .saturating_mul(combos.len())
            .saturating_mul(c.takes as usize),
    );
    let job = RowJob {
        c,
        templates: &program.templates,
        vars: &program.vars,
        batch_seed,
        keys: &keys,
        combos: &combos,
        per_shot,
    };
    // Big tables render on two threads; results are joined back in row order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    if threads < 2 || rows.len() < PARALLEL_ROWS {
        let held = job.run(&rows, sink, out);
        warn_when_unmatched(c, held, sink);
        return;
    }
    let (first, second) = rows.split_at(rows.len() / 2);
    let mut second_sink = Sink::new(&sink.file);
    let mut second_out = C::default();
    second_out.reserve(second.len().saturating_mul(combos.len()));
    let held = std::thread::scope(|scope| {
        let later = scope.spawn(|| job.run(second, &mut second_sink, &mut second_out));
        job.run(first, sink, out) + later.join().unwrap_or(1)
    });
    sink.absorb(second_sink);
    out.append(second_out);
    warn_when_unmatched(c, held, sink);
}

/// A `when` that holds for no row makes no shot: said, since a typo in a value
/// (`row.active == 'Yes'`) would otherwise leave the shot out silently.
fn warn_when_unmatched(c: &CompiledShot<'_>, held: usize, sink: &mut Sink) {
    let (Some(when), Some(table)) = (&c.when, c.table) else {
        return;
    };
    if held == 0 && !table.rows.is_empty() {
        sink.warning(
            when.loc,
            format!(
                "when: holds for none of the {} rows of `{}`, so this shot makes no video",
                table.rows.len(),
                table.name,
            ),
        )
        .help("check the values it compares against the data (case and spaces count)");
    }
}

/// Tables at least this long are expanded on two threads.
const PARALLEL_ROWS: usize = 4096;

/// Everything a thread needs to expand some rows of one shot.
struct RowJob<'a, 'b, C> {
    c: &'a CompiledShot<'b>,
    templates: &'a Templates,
    vars: &'a Value,
    batch_seed: Option<&'a Spanned<u64>>,
    keys: &'a [Value],
    combos: &'a [Value],
    per_shot: &'a PerShot<'a, C>,
}

impl<C: Collect> RowJob<'_, '_, C> {
    /// Expands `rows`; how many of them `when` held for (or could not be decided: an error).
    fn run(&self, rows: &[Option<&crate::manifest::Row>], sink: &mut Sink, out: &mut C) -> usize {
        let mut held = 0;
        let RowJob {
            c,
            templates,
            vars,
            batch_seed,
            keys,
            combos,
            per_shot,
        } = *self;
        // One location for every row: only the row number changes.
        let mut data = c.table.map(|t| DataLocation {
            table: t.name.clone(),
            file: t.file.clone(),
            row: 0,
            line: None,
        });
        for &row in rows {
            if sink.saturated() {
                return held.max(1);
            }
            if let (Some(d), Some(r)) = (data.as_mut(), row) {
                d.row = r.number;
                d.line = r.line;
            }
            // Named by the row's first id: a row's other values may change without moving it.
            let mut group = None;
            let row_value = match row {
                Some(r) => Value::from_pairs(
                    keys.iter()
                        .cloned()
                        .zip(r.values.iter().map(|v| Value::from(v.as_str()))),
                ),
                None => Value::UNDEFINED,
            };
            for combo in combos {
                for take in 1..=c.takes {
                    let base = context! {
                        row => row_value.clone(),
                        matrix => combo.clone(),
                        take => take,
                        vars => vars.clone(),
                    };
                    let mut r = Renderer {
                        templates,
                        sink: &mut *sink,
                        data: data.as_ref(),
                        shot: None,
                        ok: true,
                    };
                    if let Some(w) = &c.when {
                        match templates.holds(&w.value, &base) {
                            Ok(true) => held += 1,
                            Ok(false) => continue,
                            Err(e) => {
                                held += 1;
                                r.fail(w.loc, format!("when: {}", e.message));
                                r.sink.unexpanded(&c.id_text);
                                continue;
                            }
                        }
                    }
                    let Some(mut id) = r.text("id", &c.id, &base) else {
                        r.sink.unexpanded(&c.id_text);
                        continue;
                    };
                    id = id.trim().to_owned();
                    let group = *group.get_or_insert_with(|| {
                        group_of(&c.id_text, data.as_ref().map(|d| d.table.as_str()), &id)
                    });
                    if c.takes > 1 && !c.id_uses_take {
                        id = format!("{id}-take{take}");
                    }
                    r.shot = Some(id.clone());
                    let ctx = context! { id => id.clone(), ..base };
                    let at = (take, matrix_values(c, combo));
                    match render_instance(c, &mut r, &ctx, id.clone(), batch_seed, at) {
                        Some(mut inst) => {
                            inst.group = group;
                            per_shot(inst, r.sink, out)
                        }
                        None => r.sink.unexpanded(&id),
                    }
                }
            }
        }
        held
    }
}

/// A shot's shard group ([`Instance::group`]): its entry's id template, its table, and the
/// first id its row rendered (the same for every take and matrix variant of that row).
fn group_of(id_text: &str, table: Option<&str>, first_id: &str) -> u64 {
    let mut h = blake3::Hasher::new();
    for part in [id_text, table.unwrap_or_default(), first_id] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    let bytes = h.finalize();
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
}

struct Renderer<'a, 'b> {
    templates: &'a Templates,
    sink: &'b mut Sink,
    data: Option<&'a DataLocation>,
    shot: Option<String>,
    ok: bool,
}

impl Renderer<'_, '_> {
    fn fail(&mut self, loc: Option<Loc>, message: String) -> &mut super::diagnostic::Diagnostic {
        self.ok = false;
        let shot = self.shot.clone();
        self.sink
            .error(loc, message)
            .shot(shot.as_deref())
            .data(self.data)
    }

    fn render(
        &mut self,
        field: &str,
        loc: Option<Loc>,
        t: &Compiled,
        ctx: &Value,
    ) -> Option<String> {
        match self.templates.render(t, ctx) {
            Ok(s) => Some(s),
            Err(e) => {
                self.fail(loc, format!("{field}: {}", e.message));
                None
            }
        }
    }

    fn text(&mut self, field: &str, f: &Field<Compiled>, ctx: &Value) -> Option<String> {
        self.render(field, f.loc, &f.value, ctx)
    }

    /// A templated scalar that must become a whole number.
    fn number(&mut self, field: &str, f: &Field<Num>, ctx: &Value, max: u64) -> Option<u64> {
        let (text, value) = match &f.value {
            Num::Fixed(i) => (i.to_string(), u64::try_from(*i).ok()),
            Num::Template(t) => {
                let text = self.render(field, f.loc, t, ctx)?;
                let value = text.trim().parse::<u64>().ok();
                (text, value)
            }
        };
        let from = || match (&f.value, self.data) {
            (Num::Template(_), Some(d)) => format!(" from {}", row_place(d)),
            _ => String::new(),
        };
        match value {
            None if text.trim().parse::<i64>().is_ok_and(|v| v < 0) => {
                let from = from();
                self.fail(f.loc, format!("{field}: {}{from} is negative", text.trim()))
                    .help(format!("{field} takes a whole number from 0 to {max}"));
                None
            }
            None => {
                let from = from();
                self.fail(
                    f.loc,
                    format!("{field}: {text:?}{from} is not a whole number"),
                )
                .help(format!("{field} takes a whole number, e.g. 5"));
                None
            }
            Some(v) if v > max => {
                let from = from();
                self.fail(
                    f.loc,
                    format!("{field}: {v}{from} is above the limit {max}"),
                );
                None
            }
            Some(v) => Some(v),
        }
    }

    fn flag(&mut self, field: &str, f: &Field<Flag>, ctx: &Value) -> Option<bool> {
        match &f.value {
            Flag::Fixed(b) => Some(*b),
            Flag::Template(t) => {
                let text = self.render(field, f.loc, t, ctx)?;
                match text.trim() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => {
                        self.fail(f.loc, format!("{field}: {text:?} is not true or false"))
                            .help(format!(
                                "write `{field}: true` or `{field}: false`; a template must render exactly `true` or `false` (not yes/no, 1/0 or other cases)"
                            ));
                        None
                    }
                }
            }
        }
    }
}

/// The matrix values of one combination, keys in written order.
fn matrix_values(c: &CompiledShot<'_>, combo: &Value) -> Vec<(String, String)> {
    c.matrix
        .iter()
        .map(|(k, _)| {
            let v = combo.get_attr(k).map(|v| v.to_string()).unwrap_or_default();
            (k.clone(), v)
        })
        .collect()
}

fn render_instance(
    c: &CompiledShot<'_>,
    r: &mut Renderer<'_, '_>,
    ctx: &Value,
    id: String,
    batch_seed: Option<&Spanned<u64>>,
    (take, matrix): (u32, Vec<(String, String)>),
) -> Option<Instance> {
    let model = match &c.model {
        None => {
            r.fail(c.id.loc, "this shot has no `model`".into())
                .help("set `model: t2v`, `i2v`, `r2v` or `edit` on the shot or in `defaults`");
            return None;
        }
        Some(f) => {
            let name = r.text("model", f, ctx)?;
            let name = name.trim();
            match model::resolve(name) {
                Some(m) => m,
                None => {
                    let names = model::names();
                    r.fail(f.loc, format!("model: unknown model `{name}`"))
                        .help(suggestion(name, &names, "models"));
                    return None;
                }
            }
        }
    };
    let prompt_field = c.prompt.as_ref()?;
    let prompt = r
        .text("prompt", prompt_field, ctx)
        .map(|p| p.trim_end().to_owned());
    let optional = |r: &mut Renderer<'_, '_>, name: &str, f: &Option<Field<Compiled>>| {
        let f = f.as_ref()?;
        let text = r.text(name, f, ctx)?;
        let text = text.trim();
        (!text.is_empty()).then(|| Field {
            loc: f.loc,
            from_defaults: f.from_defaults,
            value: text.to_owned(),
        })
    };
    let negative_prompt = optional(r, "negative_prompt", &c.negative_prompt);
    let audio_url = optional(r, "audio_url", &c.audio_url);
    let audio_setting = optional(r, "audio_setting", &c.audio_setting);
    let mut media = Vec::new();
    if let Some((_, items)) = &c.media {
        for item in items {
            let kind = match &item.kind.value {
                Compiled::Literal(k) => k.clone(),
                Compiled::Named(_) => String::new(),
            };
            let url = item
                .url
                .as_ref()
                .map(|u| (r.text("media.url", u, ctx), u.loc));
            let shot = item
                .shot
                .as_ref()
                .map(|s| (r.text("media.shot", s, ctx), s.loc));
            let voice = item.voice.as_ref().and_then(|v| {
                Some((
                    r.text("media.reference_voice", v, ctx)?.trim().to_owned(),
                    v.loc,
                ))
            });
            let (target, target_loc) = match (url, shot) {
                (Some(_), Some((_, loc))) => {
                    r.fail(
                        loc,
                        format!("media `{kind}`: give either `url` or `shot`, not both"),
                    );
                    continue;
                }
                (None, None) => {
                    r.fail(
                        item.loc,
                        format!("media `{kind}`: needs a `url` or a `shot`"),
                    )
                    .help(
                        "`{type: first_frame, url: https://…}` or `{type: first_clip, shot: <id>}`",
                    );
                    continue;
                }
                (Some((Some(u), loc)), None) => (Target::Url(u.trim().to_owned()), loc),
                (None, Some((Some(s), loc))) => (Target::Shot(s.trim().to_owned()), loc),
                _ => continue,
            };
            media.push(Media {
                kind: model::MediaKind::parse(&kind),
                type_name: kind,
                kind_loc: item.kind.loc,
                target,
                target_loc,
                voice,
            });
        }
    }
    let duration = match &c.duration {
        Some(f) => r
            .number("duration", f, ctx, u64::from(u32::MAX))
            .map(|d| Field {
                loc: f.loc,
                from_defaults: f.from_defaults,
                value: d as u32,
            }),
        None => Some(Field {
            loc: None,
            from_defaults: true,
            value: model.default_duration,
        }),
    };
    let resolution = match &c.resolution {
        Some(f) => r.text("resolution", f, ctx).map(|v| Field {
            loc: f.loc,
            from_defaults: f.from_defaults,
            value: v.trim().to_owned(),
        }),
        None => Some(Field {
            loc: None,
            from_defaults: true,
            value: "720P".into(),
        }),
    };
    let ratio = optional(r, "ratio", &c.ratio);
    let prompt_extend = match &c.prompt_extend {
        Some(f) => r.flag("prompt_extend", f, ctx).map(|v| Field {
            loc: f.loc,
            from_defaults: f.from_defaults,
            value: v,
        }),
        None => Some(Field {
            loc: None,
            from_defaults: true,
            value: true,
        }),
    };
    let watermark = match &c.watermark {
        Some(f) => r.flag("watermark", f, ctx),
        None => Some(false),
    };
    let (seed, seed_explicit) = match (&c.seed, batch_seed) {
        (Some(f), _) => (
            r.number("seed", f, ctx, model::MAX_SEED).map(|s| {
                Some(Field {
                    loc: f.loc,
                    from_defaults: f.from_defaults,
                    value: s as u32,
                })
            }),
            true,
        ),
        (None, Some(b)) => (
            Some(Some(Field {
                loc: Loc::of(b),
                from_defaults: true,
                value: super::seed::derive_seed(b.value, &id),
            })),
            false,
        ),
        (None, None) => (Some(None), false),
    };
    let file = r.text("output", &c.output, ctx).map(|f| Field {
        loc: c.output.loc,
        from_defaults: c.output.from_defaults,
        value: f.trim().to_owned(),
    });
    let (
        Some(prompt),
        Some(duration),
        Some(resolution),
        Some(prompt_extend),
        Some(watermark),
        Some(seed),
        Some(file),
        true,
    ) = (
        prompt,
        duration,
        resolution,
        prompt_extend,
        watermark,
        seed,
        file,
        r.ok,
    )
    else {
        return None;
    };
    Some(Instance {
        id,
        id_loc: c.id.loc,
        data: r.data.cloned(),
        model,
        prompt: Field {
            loc: prompt_field.loc,
            from_defaults: prompt_field.from_defaults,
            value: prompt,
        },
        negative_prompt,
        audio_url,
        media,
        media_loc: c.media.as_ref().and_then(|(l, _)| *l),
        duration,
        resolution,
        ratio,
        prompt_extend,
        watermark,
        audio_setting,
        seed,
        seed_explicit,
        file,
        take,
        matrix,
        group: 0,
    })
}
