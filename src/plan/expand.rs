//! Expansion: each raw shot over its table rows, `when` filter, matrix combinations and takes,
//! with every template compiled once and rendered per expanded shot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use minijinja::{Value, context};
use serde_saphyr::Spanned;

use super::diagnostic::{Annotate, DataLocation, Loc, Sink};
use super::graph::Plan;
use super::limits::Limits;
use super::model::{self, Model};
use crate::manifest::{
    BoolOrTemplate, DataSource, IntOrTemplate, RawDefaults, RawManifest, RawShot, Table, Written,
    closest_key,
};
use crate::template::{Compiled, Templates};

/// A value as written, with where it was written.
#[derive(Debug, Clone)]
pub struct Field<T> {
    pub loc: Option<Loc>,
    /// Reached the shot from `defaults`.
    pub from_defaults: bool,
    pub value: T,
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

struct CompiledMedia {
    loc: Option<Loc>,
    kind: Field<Compiled>,
    url: Option<Field<Compiled>>,
    shot: Option<Field<Compiled>>,
    voice: Option<Field<Compiled>>,
}

struct CompiledShot<'a> {
    id: Field<Compiled>,
    id_uses_take: bool,
    when: Option<Field<Compiled>>,
    table: Option<&'a Table>,
    matrix: Vec<(String, Vec<Value>)>,
    takes: u32,
    model: Option<Field<Compiled>>,
    prompt: Option<Field<Compiled>>,
    negative_prompt: Option<Field<Compiled>>,
    audio_url: Option<Field<Compiled>>,
    media: Option<(Option<Loc>, Vec<CompiledMedia>)>,
    duration: Option<Field<Num>>,
    resolution: Option<Field<Compiled>>,
    ratio: Option<Field<Compiled>>,
    prompt_extend: Option<Field<Flag>>,
    watermark: Option<Field<Flag>>,
    seed: Option<Field<Num>>,
    output: Field<Compiled>,
}

/// Where a media item's content comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Url(String),
    Shot(String),
}

#[derive(Debug, Clone)]
pub struct Media {
    pub kind: String,
    pub kind_loc: Option<Loc>,
    pub target: Target,
    pub target_loc: Option<Loc>,
    pub voice: Option<(String, Option<Loc>)>,
}

/// One expanded shot with every template rendered, not yet judged.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub id_loc: Option<Loc>,
    pub data: Option<DataLocation>,
    pub model: Model,
    pub prompt: Field<String>,
    pub negative_prompt: Option<Field<String>>,
    pub audio_url: Option<Field<String>>,
    pub media: Vec<Media>,
    pub media_loc: Option<Loc>,
    pub duration: Field<u32>,
    pub resolution: Field<String>,
    pub ratio: Option<Field<String>>,
    pub prompt_extend: Field<bool>,
    pub watermark: bool,
    /// The seed to send and whether the shot set it itself.
    pub seed: Option<Field<u32>>,
    pub seed_explicit: bool,
    pub file: Field<String>,
    /// 1-based take and the matrix values, for the results.
    pub take: u32,
    pub matrix: Vec<(String, String)>,
}

/// Expands, checks and links a parsed manifest. Problems go to `sink`; the plan is only
/// meaningful when the sink holds no errors.
pub fn plan(manifest: &Path, raw: &RawManifest, limits: &Limits, sink: &mut Sink) -> Plan {
    let dir = match manifest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if raw.version.value != 1 {
        sink.error(
            Loc::of(&raw.version),
            format!("unsupported manifest version {}", raw.version.value),
        )
        .help("write `version: 1`");
    }
    let name = match &raw.name {
        Some(n) => {
            if !is_safe_component(&n.value) {
                sink.error(
                    Loc::of(n),
                    format!("name `{}` is not a usable folder name", n.value),
                )
                .help("use letters, digits, `.`, `_` and `-`, no `/` or `..`");
            }
            n.value.clone()
        }
        None => manifest
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "shotlist".into()),
    };
    let base = manifest.parent().unwrap_or(Path::new(""));
    let out_dir = match raw.output.as_ref().and_then(|o| o.dir.as_ref()) {
        Some(d) => base.join(&d.value),
        None => base.join("out").join(&name),
    };

    let tables = load_tables(&dir, raw, limits.max_file_bytes, sink);
    let var_keys: Vec<String> = raw.vars.keys().map(str::to_owned).collect();
    let vars = Value::from_pairs(
        raw.vars
            .iter()
            .map(|(k, v)| (k.value.clone(), written_value(&v.value))),
    );
    let mut templates = Templates::new(&dir, limits.max_file_bytes);
    let defaults = raw
        .defaults
        .as_ref()
        .map(|d| d.value.clone())
        .unwrap_or_default();
    let file_template = raw.output.as_ref().and_then(|o| o.file.as_ref());

    let mut instances = super::links::Collected::default();
    let mut expansion = Expansion {
        max: limits.max_shots,
        so_far: 0,
        exceeded: false,
    };
    // Every shot is compiled (and counted) before any is expanded, so a manifest over the cap
    // is refused before the work, not after.
    let compiled: Vec<CompiledShot<'_>> = raw
        .shots
        .value
        .iter()
        .enumerate()
        .filter_map(|(index, shot)| {
            compile_shot(
                index,
                shot,
                &mut expansion,
                &defaults,
                file_template,
                &tables,
                &var_keys,
                &mut templates,
                sink,
            )
        })
        .collect();
    if !expansion.exceeded {
        for c in &compiled {
            expand_shot(
                c,
                &templates,
                &vars,
                raw.seed.as_ref(),
                sink,
                &mut instances,
            );
        }
    }
    drop(compiled);
    if raw.shots.value.is_empty() {
        sink.error(Loc::of(&raw.shots), "the manifest has no shots")
            .help("add at least one entry under `shots:`");
    }
    // The tables and templates are no longer needed: free them before linking.
    drop(tables);
    drop(templates);
    let shots = super::links::link(instances, sink);
    Plan {
        name,
        manifest: manifest.to_owned(),
        out_dir,
        shots,
    }
}

/// Tables that loaded; a table that failed is reported once and its shots are skipped.
fn load_tables(
    dir: &Path,
    raw: &RawManifest,
    max_bytes: u64,
    sink: &mut Sink,
) -> HashMap<String, Option<Table>> {
    let mut tables = HashMap::new();
    for (name, source) in raw.data.iter() {
        let loc = Loc::of(source);
        let table = match &source.value {
            DataSource::Path(rel) => {
                let read = crate::manifest::read_inside(dir, rel, max_bytes).map_err(|e| {
                    crate::manifest::TableError {
                        message: format!("data `{}`: {e}", name.value),
                        row: None,
                        line: None,
                        help: Some(e.help()),
                    }
                });
                let parsed = read.and_then(|bytes| {
                    crate::manifest::read_csv_text(&name.value, &bytes).map_err(|e| {
                        crate::manifest::TableError {
                            message: format!("{rel}: {}", e.message),
                            ..e
                        }
                    })
                });
                match parsed {
                    Ok(mut t) => {
                        t.file = Some(PathBuf::from(rel));
                        t
                    }
                    Err(e) => {
                        let d = sink.error(loc, e.message).data(
                            e.row
                                .map(|row| DataLocation {
                                    table: name.value.clone(),
                                    file: Some(PathBuf::from(rel)),
                                    row,
                                })
                                .as_ref(),
                        );
                        if let Some(h) = e.help {
                            d.help(h);
                        }
                        tables.insert(name.value.clone(), None);
                        continue;
                    }
                }
            }
            DataSource::Inline(inline) => {
                let mut headers: Vec<String> = Vec::new();
                for row in &inline.rows {
                    for k in row.keys() {
                        if !headers.iter().any(|h| h == k) {
                            headers.push(k.to_owned());
                        }
                    }
                }
                let rows = inline
                    .rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| crate::manifest::Row {
                        number: i + 1,
                        values: headers
                            .iter()
                            .map(|h| r.get(h).cloned().flatten().unwrap_or_default())
                            .collect(),
                    })
                    .collect();
                Table {
                    name: name.value.clone(),
                    file: None,
                    headers,
                    rows,
                }
            }
        };
        tables.insert(name.value.clone(), Some(table));
    }
    tables
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
                self.check_names(field, &c, loc, allow_id);
                Some(Field {
                    loc,
                    from_defaults,
                    value: c,
                })
            }
            Err(e) => {
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

    fn fail(&mut self, loc: Option<Loc>, message: String) -> &mut super::Diagnostic {
        self.ok = false;
        self.sink.error(loc, message)
    }

    /// Refuses names that cannot exist for this shot: unknown columns, matrix keys, vars.
    fn check_names(&mut self, field: &str, c: &Compiled, loc: Option<Loc>, allow_id: bool) {
        let mut vars: Vec<String> = self.templates.variables(c).into_iter().collect();
        vars.sort();
        for var in vars {
            let mut parts = var.splitn(3, '.');
            let head = parts.next().unwrap_or_default();
            let attr = parts.next();
            match head {
                "row" => match (self.scope.table, attr) {
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
                    self.fail(loc, format!("{field}: `{other}` is not defined"))
                        .help("templates see row (with for_each), matrix, take, vars and, outside `id`, id");
                }
            }
        }
    }
}

fn suggestion(word: &str, known: &[&str], what: &str) -> String {
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
    };
    let id = c.text("id", &shot.id, false, false);
    let when = shot.when.as_ref().and_then(|w| {
        let label = format!("shots[{index}].when");
        match c.templates.compile_condition(&label, &w.value) {
            Ok(compiled) => {
                c.check_names("when", &compiled, Loc::of(w), false);
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
                c.check_names("prompt_file", &compiled, Loc::of(f), true);
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
    let output = match pick(&shot.output, &defaults.output) {
        Some((s, d)) => c.text("output", s, d, true),
        None => match file_template {
            Some(f) => c.text("output.file", f, false, true),
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
        output,
    })
}

/// A template value that renders exactly as written: a number keeps its type only when
/// rendering it gives back its text (`5`, `1.5`), otherwise it is that text (`1.10`, `0o17`).
fn written_value(w: &Written) -> Value {
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

fn expand_shot(
    c: &CompiledShot<'_>,
    templates: &Templates,
    vars: &Value,
    batch_seed: Option<&Spanned<u64>>,
    sink: &mut Sink,
    out: &mut super::links::Collected,
) {
    let keys: Vec<Value> = c
        .table
        .map(|t| t.headers.iter().map(|h| Value::from(h.as_str())).collect())
        .unwrap_or_default();
    let rows: Vec<Option<&crate::manifest::Row>> = match c.table {
        None => vec![None],
        Some(t) => t.rows.iter().map(Some).collect(),
    };
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
        templates,
        vars,
        batch_seed,
        keys: &keys,
        combos: &combos,
    };
    // Big tables render on two threads; results are joined back in row order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    if threads < 2 || rows.len() < PARALLEL_ROWS {
        job.run(&rows, sink, out);
        return;
    }
    let (first, second) = rows.split_at(rows.len() / 2);
    let mut second_sink = Sink::new(&sink.file);
    let mut second_out = super::links::Collected::default();
    second_out.reserve(second.len().saturating_mul(combos.len()));
    std::thread::scope(|scope| {
        scope.spawn(|| job.run(second, &mut second_sink, &mut second_out));
        job.run(first, sink, out);
    });
    sink.absorb(second_sink);
    out.append(second_out);
}

/// Shots planned so far (rows × matrix combinations × takes, before `when`) against the cap.
struct Expansion {
    max: usize,
    so_far: usize,
    exceeded: bool,
}

/// Tables at least this long are expanded on two threads.
const PARALLEL_ROWS: usize = 4096;

/// Everything a thread needs to expand some rows of one shot.
struct RowJob<'a, 'b> {
    c: &'a CompiledShot<'b>,
    templates: &'a Templates,
    vars: &'a Value,
    batch_seed: Option<&'a Spanned<u64>>,
    keys: &'a [Value],
    combos: &'a [Value],
}

impl RowJob<'_, '_> {
    fn run(
        &self,
        rows: &[Option<&crate::manifest::Row>],
        sink: &mut Sink,
        out: &mut super::links::Collected,
    ) {
        let RowJob {
            c,
            templates,
            vars,
            batch_seed,
            keys,
            combos,
        } = *self;
        // One location for every row: only the row number changes.
        let mut data = c.table.map(|t| DataLocation {
            table: t.name.clone(),
            file: t.file.clone(),
            row: 0,
        });
        for &row in rows {
            if sink.saturated() {
                return;
            }
            if let (Some(d), Some(r)) = (data.as_mut(), row) {
                d.row = r.number;
            }
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
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(e) => {
                                r.fail(w.loc, format!("when: {}", e.message));
                                continue;
                            }
                        }
                    }
                    let Some(mut id) = r.text("id", &c.id, &base) else {
                        continue;
                    };
                    id = id.trim().to_owned();
                    if c.takes > 1 && !c.id_uses_take {
                        id = format!("{id}-take{take}");
                    }
                    r.shot = Some(id.clone());
                    let ctx = context! { id => id.clone(), ..base };
                    let at = (take, matrix_values(c, combo));
                    if let Some(inst) = render_instance(c, &mut r, &ctx, id, batch_seed, at) {
                        let body = super::check::check(&inst, r.sink);
                        out.push(inst, body);
                    }
                }
            }
        }
    }
}

struct Renderer<'a, 'b> {
    templates: &'a Templates,
    sink: &'b mut Sink,
    data: Option<&'a DataLocation>,
    shot: Option<String>,
    ok: bool,
}

impl Renderer<'_, '_> {
    fn fail(&mut self, loc: Option<Loc>, message: String) -> &mut super::Diagnostic {
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
            (Num::Template(_), Some(d)) => format!(
                " from {}",
                describe_row(d)
                    .trim_start()
                    .trim_start_matches("(from ")
                    .trim_end_matches(')')
            ),
            _ => String::new(),
        };
        match value {
            None => {
                let from = from();
                self.fail_plain(
                    f.loc,
                    format!("{field}: {text:?}{from} is not a whole number"),
                )
                .help(format!("{field} takes a whole number, e.g. 5"));
                None
            }
            Some(v) if v > max => {
                let from = from();
                self.fail_plain(
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
                match text.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => Some(true),
                    "false" | "no" | "0" => Some(false),
                    _ => {
                        self.fail(f.loc, format!("{field}: {text:?} is not true or false"));
                        None
                    }
                }
            }
        }
    }

    fn fail_plain(&mut self, loc: Option<Loc>, message: String) -> &mut super::Diagnostic {
        self.ok = false;
        let shot = self.shot.clone();
        self.sink
            .error(loc, message)
            .shot(shot.as_deref())
            .data(self.data)
    }
}

/// ` (from data/products.csv row 7)`: the data row behind a problem.
pub fn describe_row(d: &DataLocation) -> String {
    match &d.file {
        Some(f) => format!(" (from {} row {})", f.display(), d.row),
        None => format!(" (from table `{}` row {})", d.table, d.row),
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
                .help("set `model: t2v`, `i2v` or `r2v` on the shot or in `defaults`");
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
                kind,
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
            value: 5,
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
        seed,
        seed_explicit,
        file,
        take,
        matrix,
    })
}

/// The longest file or folder name most file systems take (Linux, macOS, Windows), in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// A file or folder name that stays inside its parent and that the file system takes: no
/// separators, no `.`/`..`, not empty, at most [`MAX_NAME_BYTES`].
pub fn is_safe_component(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control)
}
