//! `shotlist plan`: the request graph a manifest expands to, with totals and estimated cost;
//! with `--check FILE`, the drift gate against a committed plan.

mod check;

use std::fmt::Write as _;
use std::io::{BufWriter, Write};

use crate::cli::{PlanArgs, TextOrJson};
use crate::commands::Global;
use crate::config::Config;
use crate::cost::PriceBook;
use crate::error::{Error, exit};
use crate::exec::preview::{self, Action, ShotPreview};
use crate::exec::resume::{Start, keep_approved};
use crate::plan::{self, Plan, PlannedShot, ToSend, Totals};
use crate::review::retake::{self, Retake};

/// What `plan --shard K/N --format json` adds to the plan document: the shard and every shard's size.
#[derive(serde::Serialize)]
struct ShardJson<'a> {
    shard: String,
    shards: &'a [ShardSize],
}

#[derive(serde::Serialize)]
struct ShardSize {
    shard: u32,
    shots: usize,
    seconds: u64,
}

/// A shot's preview, and with `--provider dashscope` the body DashScope gets (or why none).
#[derive(serde::Serialize)]
struct NativeNote<'a> {
    #[serde(flatten)]
    preview: &'a ShotPreview,
    #[serde(skip_serializing_if = "Option::is_none")]
    native_body: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    native_error: Option<String>,
}

/// The body `provider` is sent for `body` (its row's `encode`: DashScope's native form); a
/// `shot:` item shows where its upstream's URL will go.
fn native_body(
    provider: &crate::api::Provider,
    encode: crate::api::provider::Encode,
    body: &crate::plan::Body,
) -> Result<serde_json::Value, crate::api::ApiError> {
    let mut value = body.value();
    let media = provider.media_pointer;
    if let Some(items) = value.pointer_mut(media).and_then(|m| m.as_array_mut()) {
        for item in items.iter_mut().filter_map(|i| i.as_object_mut()) {
            if let Some(shot) = item.remove("shot") {
                let shot = shot.as_str().unwrap_or_default().to_owned();
                item.insert("url".into(), format!("<the video of shot `{shot}`>").into());
            }
        }
    }
    encode(&value)
}

pub fn run(global: &Global, args: &PlanArgs) -> Result<u8, Error> {
    let committed = match &args.check {
        Some(file) => Some(check::read(file).map_err(|e| Error::Usage(e.to_string()))?),
        None => None,
    };
    let color = crate::settings::stderr_colour();
    let planned = match plan::load_and_plan(&args.manifest) {
        Ok(p) => p,
        Err(rejected) => {
            eprint!("{}", plan::render_human_with(&rejected.diagnostics, color));
            return Ok(exit::INVALID);
        }
    };
    if !planned.warnings.is_empty() && !global.quiet {
        eprint!("{}", plan::render_human_with(&planned.warnings, color));
    }
    let config = Config::load(global.config.as_deref(), &args.manifest)?;
    if (config.path.is_some() || global.verbose > 0) && !global.quiet {
        eprintln!("{}", config.describe());
    }
    let prices = PriceBook::new(&config);
    let mut plan = planned.plan;
    let mut shards = Vec::new();
    if let Some(spec) = args.shard {
        let part = plan::shard::partition(&plan, spec.count);
        shards = (1..=spec.count)
            .map(|k| ShardSize {
                shard: k,
                shots: part.shots_in(k),
                seconds: part.seconds[k as usize - 1],
            })
            .collect();
        plan.retain(&part.mask(spec.index));
    }
    plan.out_dir = super::out_dir(&plan, args.out.as_deref(), args.shard);
    if let Some(out) = &args.out
        && !plan.out_dir.exists()
        && !global.quiet
    {
        eprintln!(
            "note: --out {}: the folder does not exist, so every shot is planned as new (-o \
             names the file to write the plan to)",
            out.display()
        );
    }
    let provider = args.provider.or(config.api.provider).unwrap_or_default();
    if let Some(hint) = config.currency_hint(provider)
        && !global.quiet
    {
        eprintln!("warning: {hint}");
    }
    match crate::folder::folder_provider(&plan.out_dir) {
        Ok(Some(held)) if held != provider => eprintln!(
            "warning: {} holds tasks sent to {held}: a run for {provider} there would be \
             refused; use --provider {held}, or another --out",
            plan.out_dir.display()
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: a run there would be refused: {e}"),
    }
    // Read once for the retakes and the preview; unreadable lines are skipped here and named.
    let replayed = crate::folder::replay(&plan.out_dir, true)?;
    let applied = retake::apply_in_folder(&mut plan, &replayed, args.retake_rejected)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let mut preview = preview::preview(
        &plan,
        &plan.out_dir,
        &replayed,
        &provider.provider(),
        Default::default(),
        &prices,
    );
    if !replayed.skipped.is_empty() && !global.quiet {
        let lines: Vec<String> = replayed.skipped.iter().map(|n| n.to_string()).collect();
        eprintln!(
            "note: journal line(s) {} are unreadable and were skipped here; `run` refuses the \
             folder unless --skip-bad-journal-lines",
            lines.join(", ")
        );
    }
    let spent = prices.spent(&plan, &replayed.ledger);
    drop(replayed);
    for ((((p, why), &approved), &replaces), shot) in (preview.shots.iter_mut())
        .zip(&applied.why)
        .zip(&applied.approved)
        .zip(&applied.replaces_approved)
        .zip(&plan.shots)
    {
        match (p.action, why) {
            (Action::Send, None) if replaces => {
                p.reason = format!("{}; {}", p.reason, retake::REPLACES_APPROVED);
            }
            (Action::Send, _) if approved => {
                if let Start::Hold { reason, .. } = keep_approved(Start::Submit, true) {
                    (p.action, p.reason) = (Action::Held, reason.to_string());
                }
            }
            (Action::Done, Some(why @ Retake::Held(_))) => {
                (p.action, p.reason) = (Action::Held, why.reason(&args.manifest, &shot.id));
            }
            (Action::Send, Some(why)) => p.reason = why.reason(&args.manifest, &shot.id),
            _ => {}
        }
    }
    let mut totals = Totals::of(&plan, &prices);
    let sending =
        || (plan.shots.iter().zip(&preview.shots)).filter(|(_, p)| p.action == Action::Send);
    totals.to_send = Some(ToSend {
        shots: sending().count(),
        seconds: sending().map(|(s, _)| u64::from(s.output_seconds())).sum(),
        actions: Action::ALL
            .iter()
            .map(|&a| (a.as_str(), preview.count(a)))
            .collect(),
    });
    totals.cost.to_send = Some(sending().filter_map(|(_, p)| p.cost).sum());
    totals.cost.spent = (spent.tasks > 0).then_some(spent.amount);
    let mut checked = Vec::new();
    let mut out: Box<dyn Write + '_> = match &args.output {
        _ if committed.is_some() => Box::new(&mut checked),
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?,
        )),
        None => Box::new(super::stdout()),
    };
    let written = match format(args) {
        TextOrJson::Json => {
            let extra = args.shard.map(|spec| ShardJson {
                shard: spec.to_string(),
                shards: &shards,
            });
            let row = provider.provider();
            crate::report::write_plan_json_with(
                &mut out,
                &plan,
                &totals,
                |i| {
                    let encoded = (row.encode).map(|e| native_body(&row, e, &plan.shots[i].body));
                    NativeNote {
                        preview: &preview.shots[i],
                        native_error: encoded
                            .as_ref()
                            .and_then(|e| e.as_ref().err())
                            .map(|e| e.to_string()),
                        native_body: encoded.and_then(Result::ok),
                    }
                },
                extra,
            )
        }
        TextOrJson::Text => {
            let mut text = render_text(&plan, &totals, &prices, &preview.shots);
            if let Some(spec) = args.shard {
                let _ = writeln!(text, "shard {spec}; every shard (seconds of video, shots):");
                for s in &shards {
                    let _ = writeln!(
                        text,
                        "  {}/{}: {} s, {} shot(s)",
                        s.shard, spec.count, s.seconds, s.shots
                    );
                }
            }
            out.write_all(text.as_bytes())
        }
    };
    let target = args
        .output
        .as_ref()
        .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    written
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(format!("cannot write {target}"), e))?;
    drop(out);
    if let (Some(old), Some(file)) = (committed, &args.check) {
        let new: serde_json::Value = serde_json::from_slice(&checked)
            .map_err(|e| Error::Fatal(format!("the plan document did not parse back: {e}")))?;
        let drift = check::compare(&old, &new);
        super::print(&check::report(&drift, file, &args.manifest, &new))?;
        if !drift.is_empty() {
            return Ok(exit::PLAN_DIFFERS);
        }
    }
    Ok(exit::OK)
}

/// `--format`, else json for an output file named `*.json`, else text.
fn format(args: &PlanArgs) -> TextOrJson {
    let json_file = args
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    match args.format {
        _ if args.check.is_some() => TextOrJson::Json,
        Some(f) => f,
        None if json_file => TextOrJson::Json,
        None => TextOrJson::Text,
    }
}

/// A table of shots in execution order, then totals.
pub fn render_text(
    plan: &Plan,
    totals: &Totals,
    prices: &PriceBook,
    preview: &[ShotPreview],
) -> String {
    let header = [
        "#",
        "id",
        "model",
        "dur",
        "res",
        "ratio",
        "seed",
        "cost",
        "action",
        "depends on",
    ];
    let order = plan.topological_order();
    let rows: Vec<[String; 10]> = order
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let s = &plan.shots[i];
            let alias = plan::model::by_id(&s.model).map_or(s.model.as_str(), |m| m.alias);
            [
                (n + 1).to_string(),
                s.id.clone(),
                alias.to_owned(),
                match (s.duration, s.output_upper_bound()) {
                    (0, false) => format!("keep {}s", s.output_seconds()),
                    (0, true) => format!("keep <={}s", s.output_seconds()),
                    (d, _) => format!("{d}s"),
                },
                s.resolution.clone(),
                s.ratio.clone().unwrap_or_else(|| "-".into()),
                s.seed.map_or_else(|| "-".into(), |v| v.to_string()),
                match preview[i].cost {
                    None => "-".into(),
                    Some(c) if s.upper_bound() => format!("<={c}"),
                    Some(c) => c.to_string(),
                },
                preview[i].action.as_str().to_owned(),
                if s.depends_on.is_empty() {
                    "-".into()
                } else {
                    let ids: Vec<&str> = s
                        .depends_on
                        .iter()
                        .map(|&u| plan.shots[u].id.as_str())
                        .collect();
                    ids.join(", ")
                },
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[&str], out: &mut String| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header, &mut out);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells, &mut out);
    }
    let at_most = |bound: bool| if bound { "at most " } else { "" };
    let _ = writeln!(
        out,
        "\n{} shot(s), {}{} s of video -> {}",
        totals.shots,
        at_most(plan.shots.iter().any(PlannedShot::output_upper_bound)),
        totals.seconds,
        plan.out_dir.display()
    );
    for l in &totals.by_model {
        let bound = if l.upper_bound { " (upper bound)" } else { "" };
        let cost = l.cost.map_or_else(
            || ", no price".to_owned(),
            |c| format!(", est. {}{bound}", prices.show(c)),
        );
        let input = match l.input_seconds {
            0 => String::new(),
            n => format!(" + {n} s input video"),
        };
        let _ = writeln!(
            out,
            "  {} {}: {} shot(s), {} s{input}{cost}",
            l.model, l.resolution, l.shots, l.seconds
        );
    }
    let _ = write!(out, "estimated cost: {}", prices.show(totals.cost.total));
    if totals.cost.upper_bound {
        let _ = write!(
            out,
            " (an upper bound: an edit input given by URL counts as {} s)",
            plan::model::VIDEO_INPUT_DURATION.1
        );
    }
    let _ = match totals.cost.unpriced {
        0 => writeln!(out),
        n => writeln!(
            out,
            " ({n} shot(s) have no price: add them under [pricing] in the config)"
        ),
    };
    let notes: Vec<String> = order
        .iter()
        .map(|&i| (&plan.shots[i], &preview[i]))
        .filter(|(_, p)| {
            !(p.action == Action::Done || p.action == Action::Send && p.reason == preview::NEW)
        })
        .map(|(s, p)| format!("  {} {}: {}", p.action.as_str(), s.id, p.reason))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\n{}", notes.join("\n"));
    }
    if let Some(to_send) = &totals.to_send {
        let sent = |bound: fn(&PlannedShot) -> bool| {
            at_most(
                plan.shots
                    .iter()
                    .zip(preview)
                    .any(|(s, p)| p.action == Action::Send && bound(s)),
            )
        };
        let mut parts = vec![format!(
            "{} to send ({}{} s, est. {}{})",
            to_send.shots,
            sent(PlannedShot::output_upper_bound),
            to_send.seconds,
            sent(PlannedShot::upper_bound),
            prices.show(totals.cost.to_send.unwrap_or_default())
        )];
        for a in [Action::Poll, Action::Download, Action::Held, Action::Done] {
            match to_send.actions.get(a.as_str()) {
                Some(&n) if n > 0 => parts.push(format!("{n} {}", summary_word(a))),
                _ => {}
            }
        }
        if let Some(spent) = totals.cost.spent {
            parts.push(format!("est. {} spent already", prices.show(spent)));
        }
        let _ = writeln!(out, "\nPlan: {}.", parts.join(", "));
    }
    out
}

fn summary_word(a: Action) -> &'static str {
    match a {
        Action::Send => "to send",
        Action::Poll => "to poll",
        Action::Download => "to download",
        Action::Held => "held",
        Action::Done => "done",
    }
}
