//! The compile stage: every shot's templates compiled once, the names they read checked
//! against the shot's table, matrix and vars, and the expansion counted against the cap
//! before any shot is expanded.

use std::collections::HashMap;
use std::path::Path;

use minijinja::Value;
use serde_saphyr::Spanned;

use super::diagnostic::{Annotate, Loc, Sink};
use super::instance::Field;
use super::limits::Limits;
use crate::manifest::{
    BoolOrTemplate, IntOrTemplate, RawDefaults, RawManifest, RawShot, Table, Written, closest_key,
};
use crate::template::{Compiled, Templates};

/// Every shot compiled, with the templates and vars they render with.
pub struct Program<'a> {
    pub shots: Vec<CompiledShot<'a>>,
    pub templates: Templates,
    pub vars: Value,
}

/// Compiles every shot of the manifest. Every shot is compiled (and counted) before any is
/// expanded, so a manifest over the shot cap is refused before the work, not after: `None`
/// then.
pub fn compile<'a>(
    raw: &RawManifest,
    text: &str,
    dir: &Path,
    tables: &'a HashMap<String, Option<Table>>,
    limits: &Limits,
    sink: &mut Sink,
) -> Option<Program<'a>> {
    let var_keys: Vec<String> = raw.vars.keys().map(str::to_owned).collect();
    let vars = Value::from_pairs(
        raw.vars
            .iter()
            .map(|(k, v)| (k.value.clone(), written_value(&v.value))),
    );
    let mut templates = Templates::new(dir, limits.max_file_bytes);
    let defaults = raw
        .defaults
        .as_ref()
        .map(|d| d.value.clone())
        .unwrap_or_default();
    let file_template = raw.output.as_ref().and_then(|o| o.file.as_ref());
    let mut expansion = Expansion {
        max: limits.max_shots,
        so_far: 0,
        exceeded: false,
    };
    let shots: Vec<CompiledShot<'_>> = raw
        .shots
        .value
        .iter()
        .enumerate()
        .filter_map(|(index, shot)| {
            let compiled = compile_shot(
                index,
                shot,
                &mut expansion,
                &defaults,
                file_template,
                tables,
                &var_keys,
                text,
                &mut templates,
                sink,
            );
            if compiled.is_none() {
                sink.unexpanded(&shot.value.id.value);
            }
            compiled
        })
        .collect();
    (!expansion.exceeded).then_some(Program {
        shots,
        templates,
        vars,
    })
}

#[derive(Debug, Clone)]
pub enum Num {
    Fixed(i64),
    Template(Compiled),
}

#[derive(Debug, Clone)]
pub enum Flag {
    Fixed(bool),
    Template(Compiled),
}

/// A media item's templates.
pub struct CompiledMedia {
    pub loc: Option<Loc>,
    pub kind: Field<Compiled>,
    pub url: Option<Field<Compiled>>,
    pub shot: Option<Field<Compiled>>,
    pub voice: Option<Field<Compiled>>,
}

/// One raw shot with its defaults applied and every template compiled.
pub struct CompiledShot<'a> {
    pub id: Field<Compiled>,
    /// The id as written, for [`Sink::unexpanded`].
    pub id_text: String,
    pub id_uses_take: bool,
    pub when: Option<Field<Compiled>>,
    pub table: Option<&'a Table>,
    pub matrix: Vec<(String, Vec<Value>)>,
    pub takes: u32,
    pub model: Option<Field<Compiled>>,
    pub prompt: Option<Field<Compiled>>,
    pub negative_prompt: Option<Field<Compiled>>,
    pub audio_url: Option<Field<Compiled>>,
    pub media: Option<(Option<Loc>, Vec<CompiledMedia>)>,
    pub duration: Option<Field<Num>>,
    pub resolution: Option<Field<Compiled>>,
    pub ratio: Option<Field<Compiled>>,
    pub prompt_extend: Option<Field<Flag>>,
    pub watermark: Option<Field<Flag>>,
    pub seed: Option<Field<Num>>,
    pub audio_setting: Option<Field<Compiled>>,
    pub output: Field<Compiled>,
}

fn pick<'a, T>(
    shot: &'a Option<Spanned<T>>,
    defaults: &'a Option<Spanned<T>>,
) -> Option<(&'a Spanned<T>, bool)> {
    match (shot, defaults) {
        (Some(s), _) => Some((s, false)),
        (None, Some(d)) => Some((d, true)),
        (None, None) => None,
    }
}

/// The names a shot's templates may read, for checks before any row is rendered.
struct Scope<'a> {
    table: Option<&'a Table>,
    matrix_keys: Vec<String>,
    var_keys: &'a [String],
}

struct Compiler<'a, 'b> {
    templates: &'b mut Templates,
    sink: &'b mut Sink,
    scope: &'b Scope<'a>,
    index: usize,
    ok: bool,
    /// The shot's id as written and where, for problems found in a value written outside it.
    shot_id: &'b Spanned<String>,
    /// The value being checked is written outside the shot (`defaults`, `output.file`).
    shared: bool,
    /// The manifest's text, to point inside multi-line values.
    text: &'b str,
}

impl Compiler<'_, '_> {
    fn text(
        &mut self,
        field: &str,
        s: &Spanned<String>,
        from_defaults: bool,
        allow_id: bool,
    ) -> Option<Field<Compiled>> {
        let loc = Loc::of(s);
        let label = format!("shots[{}].{field}", self.index);
        match self.templates.compile(&label, &s.value) {
            Ok(c) => {
                self.shared = from_defaults || field == OUTPUT_FILE;
                self.check_names(field, &c, loc, Some(&s.value), allow_id);
                self.shared = false;
                Some(Field {
                    loc,
                    from_defaults,
                    value: c,
                })
            }
            Err(e) => {
                let at = e.line.and_then(|n| line_start(&s.value, n));
                let loc = self.inside(loc, &s.value, at);
                self.fail(loc, format!("{field}: template error: {}", e.message));
                None
            }
        }
    }

    fn opt_text(
        &mut self,
        field: &str,
        shot: &Option<Spanned<String>>,
        defaults: &Option<Spanned<String>>,
    ) -> Option<Field<Compiled>> {
        let (s, d) = pick(shot, defaults)?;
        self.text(field, s, d, true)
    }

    fn num(
        &mut self,
        field: &str,
        shot: &Option<Spanned<IntOrTemplate>>,
        defaults: &Option<Spanned<IntOrTemplate>>,
    ) -> Option<Field<Num>> {
        self.scalar(field, shot, defaults, Num::Template, |v| match v {
            IntOrTemplate::Int(i) => Ok(Num::Fixed(*i)),
            IntOrTemplate::Template(t) => Err(t),
        })
    }

    fn flag(
        &mut self,
        field: &str,
        shot: &Option<Spanned<BoolOrTemplate>>,
        defaults: &Option<Spanned<BoolOrTemplate>>,
    ) -> Option<Field<Flag>> {
        self.scalar(field, shot, defaults, Flag::Template, |v| match v {
            BoolOrTemplate::Bool(b) => Ok(Flag::Fixed(*b)),
            BoolOrTemplate::Template(t) => Err(t),
        })
    }

    /// A typed scalar that may also be a template: `fixed` gives the value written in YAML,
    /// or the template text to compile and wrap with `templated`.
    fn scalar<Raw, Out>(
        &mut self,
        field: &str,
        shot: &Option<Spanned<Raw>>,
        defaults: &Option<Spanned<Raw>>,
        templated: fn(Compiled) -> Out,
        fixed: fn(&Raw) -> Result<Out, &String>,
    ) -> Option<Field<Out>> {
        let (s, d) = pick(shot, defaults)?;
        let value = match fixed(&s.value) {
            Ok(value) => value,
            Err(t) => {
                let spanned = Spanned::new(t.clone(), s.referenced, s.defined);
                templated(self.text(field, &spanned, d, true)?.value)
            }
        };
        Some(Field {
            loc: Loc::of(s),
            from_defaults: d,
            value,
        })
    }

    /// `vars.x`, `row.x` or `matrix.x` when a bare `x` names one of them.
    fn qualified(&self, name: &str) -> Option<String> {
        if self.scope.var_keys.iter().any(|k| k == name) {
            Some(format!("vars.{name}"))
        } else if self
            .scope
            .table
            .is_some_and(|t| t.headers.iter().any(|h| h == name))
        {
            Some(format!("row.{name}"))
        } else if self.scope.matrix_keys.iter().any(|k| k == name) {
            Some(format!("matrix.{name}"))
        } else {
            None
        }
    }

    /// `loc` moved to byte `at` of `value` when it can be found in the manifest.
    fn inside(&self, loc: Option<Loc>, value: &str, at: Option<usize>) -> Option<Loc> {
        match (loc, at) {
            (Some(l), Some(at)) => l.inside(self.text, value, at).or(loc),
            _ => loc,
        }
    }

    fn fail(&mut self, loc: Option<Loc>, message: String) -> &mut super::diagnostic::Diagnostic {
        self.ok = false;
        self.sink.error(loc, message)
    }

    /// Refuses names that cannot exist for this shot: unknown columns, matrix keys, vars.
    /// `src` is the template as written in the manifest, to point at each name in it.
    fn check_names(
        &mut self,
        field: &str,
        c: &Compiled,
        at: Option<Loc>,
        src: Option<&str>,
        allow_id: bool,
    ) {
        let mut vars: Vec<String> = self.templates.variables(c).into_iter().collect();
        vars.sort();
        for var in vars {
            let loc = match src {
                Some(src) => self.inside(at, src, name_at(src, &var)),
                None => at,
            };
            let mut parts = var.splitn(3, '.');
            let head = parts.next().unwrap_or_default();
            let attr = parts.next();
            match head {
                "row" => match (self.scope.table, attr) {
                    (None, _) if self.shared => {
                        let id = self.shot_id;
                        let line = Loc::of(id)
                            .map(|l| format!(" (line {})", l.line))
                            .unwrap_or_default();
                        self.fail(loc, format!("{field}: `row` is only defined in a shot with `for_each`"))
                            .shot(Some(&id.value))
                            .help(format!("shot `{}`{line} has no `for_each`: add `for_each: <table>` to it, or remove `row.` from `{field}`", id.value));
                    }
                    (None, _) => {
                        self.fail(loc, format!("{field}: `row` is only defined in a shot with `for_each`"))
                            .help("add `for_each: <table>` to this shot, or remove `row.` from the template");
                    }
                    (Some(t), Some(col)) if !t.headers.iter().any(|h| h == col) => {
                        let cols: Vec<&str> = t.headers.iter().map(String::as_str).collect();
                        let help = suggestion(col, &cols, "columns");
                        self.fail(
                            loc,
                            format!("{field}: table `{}` has no column `{col}`", t.name),
                        )
                        .help(help);
                    }
                    _ => {}
                },
                "matrix" => {
                    let keys: Vec<&str> =
                        self.scope.matrix_keys.iter().map(String::as_str).collect();
                    if keys.is_empty() {
                        self.fail(
                            loc,
                            format!("{field}: `matrix` is only defined in a shot with `matrix:`"),
                        );
                    } else if let Some(k) = attr
                        && !keys.contains(&k)
                    {
                        let help = suggestion(k, &keys, "matrix keys");
                        self.fail(loc, format!("{field}: the matrix has no key `{k}`"))
                            .help(help);
                    }
                }
                "vars" => {
                    let keys: Vec<&str> = self.scope.var_keys.iter().map(String::as_str).collect();
                    if let Some(k) = attr
                        && !keys.contains(&k)
                    {
                        let help = suggestion(k, &keys, "vars");
                        self.fail(loc, format!("{field}: `vars` has no `{k}`"))
                            .help(help);
                    }
                }
                "id" if !allow_id => {
                    self.fail(loc, "id: the id template cannot use `id`".into())
                        .help("build the id from row, matrix, take and vars");
                }
                "id" | "take" | "range" | "dict" | "namespace" | "debug" | "loop" | "self"
                | "super" | "varargs" | "kwargs" | "caller" => {}
                other => {
                    let help = match self.qualified(other) {
                        Some(q) => format!("did you mean `{q}`?"),
                        None => "templates see row (with for_each), matrix, take, vars and, outside `id`, id".into(),
                    };
                    self.fail(loc, format!("{field}: `{other}` is not defined"))
                        .help(help);
                }
            }
        }
    }
}

/// Byte offset of the first use of the dotted name `var` in template `src` (after the first
/// `{{` or `{%` when there is one): not part of a longer name.
fn name_at(src: &str, var: &str) -> Option<usize> {
    let start = ["{{", "{%"]
        .iter()
        .filter_map(|o| src.find(o))
        .min()
        .unwrap_or(0);
    let word = |c: char| c.is_alphanumeric() || c == '_';
    src[start..]
        .match_indices(var)
        .map(|(i, _)| start + i)
        .find(|&i| {
            !src[..i].ends_with(|c: char| word(c) || c == '.')
                && !src[i + var.len()..].starts_with(word)
        })
}

/// Byte offset of the first non-blank character of 1-based line `n` of `text`.
fn line_start(text: &str, n: usize) -> Option<usize> {
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == n {
            return Some(offset + (line.len() - line.trim_start().len()));
        }
        offset += line.len();
    }
    None
}

/// The field name of the top-level output file template.
const OUTPUT_FILE: &str = "output.file";

pub fn suggestion(word: &str, known: &[&str], what: &str) -> String {
    let list = if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    };
    match closest_key(word, known) {
        Some(s) => format!("did you mean `{s}`? {what}: {list}"),
        None => format!("{what}: {list}"),
    }
}

#[allow(clippy::too_many_arguments)]
fn compile_shot<'a>(
    index: usize,
    shot_spanned: &Spanned<RawShot>,
    expansion: &mut Expansion,
    defaults: &RawDefaults,
    file_template: Option<&Spanned<String>>,
    tables: &'a HashMap<String, Option<Table>>,
    var_keys: &[String],
    text: &str,
    templates: &mut Templates,
    sink: &mut Sink,
) -> Option<CompiledShot<'a>> {
    let shot = &shot_spanned.value;
    let mut ok = true;
    let table = match &shot.for_each {
        None => None,
        Some(fe) => match tables.get(&fe.value) {
            Some(Some(t)) => Some(t),
            Some(None) => return None,
            None => {
                let mut names: Vec<&str> = tables.keys().map(String::as_str).collect();
                names.sort();
                sink.error(
                    Loc::of(fe),
                    format!("for_each: no data table named `{}`", fe.value),
                )
                .help(suggestion(&fe.value, &names, "tables under `data:`"));
                return None;
            }
        },
    };
    let mut matrix = Vec::new();
    if let Some(m) = &shot.matrix {
        if m.value.is_empty() {
            sink.error(
                Loc::of(m),
                "matrix: needs at least one key with a list of values",
            );
            ok = false;
        }
        for (key, values) in m.value.iter() {
            if values.is_empty() {
                sink.error(
                    Loc::of(key),
                    format!("matrix.{}: the list of values is empty", key.value),
                )
                .help("an empty list would expand this shot to nothing");
                ok = false;
            }
            if let Some(bad) = values.iter().find(|v| !v.value.is_scalar()) {
                sink.error(
                    Loc::of(bad),
                    format!("matrix.{}: a value is a list or mapping", key.value),
                )
                .help("matrix values are plain values: text, numbers or true/false");
                ok = false;
            }
            matrix.push((
                key.value.clone(),
                values
                    .iter()
                    .map(|v| written_value(&v.value))
                    .collect::<Vec<_>>(),
            ));
        }
    }
    let takes = match &shot.takes {
        Some(t) if t.value == 0 => {
            sink.error(Loc::of(t), "takes: must be 1 or more");
            return None;
        }
        Some(t) => t.value,
        None => 1,
    };
    let expansions = table
        .map_or(1, |t| t.rows.len())
        .saturating_mul(
            matrix
                .iter()
                .map(|(_, v)| v.len().max(1))
                .product::<usize>(),
        )
        .saturating_mul(takes as usize);
    let total = expansion.so_far.saturating_add(expansions);
    if total > expansion.max {
        expansion.exceeded = true;
        let loc = shot.takes.as_ref().map_or(Loc::of(&shot.id), Loc::of);
        let max = expansion.max;
        let message = if expansion.so_far == 0 {
            format!(
                "this shot expands to {expansions} shots, more than the {max} one manifest may plan"
            )
        } else {
            format!(
                "this shot expands to {expansions} shots, which with the {} before it makes {total}, more than the {max} one manifest may plan",
                expansion.so_far
            )
        };
        sink.error(loc, message).help(format!(
            "split the table or lower `takes` / the matrix; or raise the cap with {}=<shots>",
            super::limits::MAX_SHOTS_ENV
        ));
        return None;
    }
    expansion.so_far = total;
    let scope = Scope {
        table,
        matrix_keys: matrix.iter().map(|(k, _)| k.clone()).collect(),
        var_keys,
    };
    let mut c = Compiler {
        templates,
        sink,
        scope: &scope,
        index,
        ok,
        shot_id: &shot.id,
        shared: false,
        text,
    };
    let id = c.text("id", &shot.id, false, false);
    let when = shot.when.as_ref().and_then(|w| {
        let label = format!("shots[{index}].when");
        match c.templates.compile_condition(&label, &w.value) {
            Ok(compiled) => {
                c.check_names("when", &compiled, Loc::of(w), Some(&w.value), false);
                Some(Field {
                    loc: Loc::of(w),
                    from_defaults: false,
                    value: compiled,
                })
            }
            Err(e) => {
                c.fail(Loc::of(w), format!("when: {}", e.message));
                None
            }
        }
    });
    let model = c.opt_text("model", &shot.model, &defaults.model);
    let prompt = match (
        pick(&shot.prompt, &defaults.prompt),
        pick(&shot.prompt_file, &defaults.prompt_file),
    ) {
        (Some((p, _)), Some((f, _))) if shot.prompt.is_some() == shot.prompt_file.is_some() => {
            c.fail(
                Loc::of(f),
                "a shot has either `prompt` or `prompt_file`, not both".into(),
            )
            .help(format!(
                "remove one of them (prompt at line {})",
                p.referenced.line()
            ));
            None
        }
        (Some((p, d)), f) if f.is_none() || shot.prompt.is_some() => c.text("prompt", p, d, true),
        (_, Some((f, d))) => match c.templates.compile_file(&f.value) {
            Ok(compiled) => {
                c.check_names("prompt_file", &compiled, Loc::of(f), None, true);
                Some(Field {
                    loc: Loc::of(f),
                    from_defaults: d,
                    value: compiled,
                })
            }
            Err(e) => {
                c.fail(
                    Loc::of(f),
                    format!("prompt_file `{}`: {}", f.value, e.message),
                )
                .help("prompt files are read relative to the manifest's folder");
                None
            }
        },
        (None, None) => {
            c.fail(
                Loc::of(&shot.id),
                "this shot has no `prompt` (or `prompt_file`)".into(),
            )
            .help("every model needs a prompt; add `prompt:` to the shot or to `defaults`");
            None
        }
        _ => None,
    };
    let negative_prompt = c.opt_text(
        "negative_prompt",
        &shot.negative_prompt,
        &defaults.negative_prompt,
    );
    let audio_url = c.opt_text("audio_url", &shot.audio_url, &defaults.audio_url);
    let media = pick(&shot.media, &defaults.media).map(|(list, d)| {
        let items = list
            .value
            .iter()
            .map(|item| {
                let m = &item.value;
                CompiledMedia {
                    loc: Loc::of(item),
                    kind: Field {
                        loc: Loc::of(&m.kind),
                        from_defaults: d,
                        value: Compiled::Literal(m.kind.value.clone()),
                    },
                    url: m.url.as_ref().and_then(|u| c.text("media.url", u, d, true)),
                    shot: m
                        .shot
                        .as_ref()
                        .and_then(|u| c.text("media.shot", u, d, true)),
                    voice: m
                        .reference_voice
                        .as_ref()
                        .and_then(|u| c.text("media.reference_voice", u, d, true)),
                }
            })
            .collect();
        (Loc::of(list), items)
    });
    let duration = c.num("duration", &shot.duration, &defaults.duration);
    let seed = c.num("seed", &shot.seed, &defaults.seed);
    let resolution = c.opt_text("resolution", &shot.resolution, &defaults.resolution);
    let ratio = c.opt_text("ratio", &shot.ratio, &defaults.ratio);
    let prompt_extend = c.flag(
        "prompt_extend",
        &shot.prompt_extend,
        &defaults.prompt_extend,
    );
    let watermark = c.flag("watermark", &shot.watermark, &defaults.watermark);
    let audio_setting = c.opt_text(
        "audio_setting",
        &shot.audio_setting,
        &defaults.audio_setting,
    );
    let output = match pick(&shot.output, &defaults.output) {
        Some((s, d)) => c.text("output", s, d, true),
        None => match file_template {
            Some(f) => c.text(OUTPUT_FILE, f, false, true),
            None => Some(Field {
                loc: None,
                from_defaults: true,
                value: c
                    .templates
                    .compile("default output", "{{ id }}.mp4")
                    .unwrap_or(Compiled::Literal("shot.mp4".into())),
            }),
        },
    };
    let ok = c.ok;
    let (Some(id), Some(prompt), Some(output), true) = (id, prompt, output, ok) else {
        return None;
    };
    let id_uses_take = templates.uses(&id.value, "take");
    Some(CompiledShot {
        id,
        id_text: shot.id.value.clone(),
        id_uses_take,
        when,
        table,
        matrix,
        takes,
        model,
        prompt: Some(prompt),
        negative_prompt,
        audio_url,
        media,
        duration,
        resolution,
        ratio,
        prompt_extend,
        watermark,
        seed,
        audio_setting,
        output,
    })
}

/// A template value that renders exactly as written: a number keeps its type only when
/// rendering it gives back its text (`5`, `1.5`), otherwise it is that text (`1.10`, `0o17`).
pub fn written_value(w: &Written) -> Value {
    let as_written = |v: Value, text: &str| {
        if v.to_string() == text {
            v
        } else {
            Value::from(text)
        }
    };
    match w {
        Written::Text(s) | Written::Null(s) => Value::from(s.as_str()),
        Written::Bool(b) => Value::from(*b),
        Written::Int(i, text) => as_written(Value::from(*i), text),
        Written::Float(f, text) => as_written(Value::from(*f), text),
        Written::List(items) => items.iter().map(|i| written_value(&i.value)).collect(),
        Written::Map(map) => Value::from_pairs(
            map.iter()
                .map(|(k, v)| (k.value.clone(), written_value(&v.value))),
        ),
    }
}

/// Shots planned so far (rows × matrix combinations × takes, before `when`) against the cap.
struct Expansion {
    max: usize,
    so_far: usize,
    exceeded: bool,
}
