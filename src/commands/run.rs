//! `shotlist run`: plan, then execute against the provider (or the in-process simulator).
//!
//! Signals and the process's exit belong here, not in the library: SIGINT, SIGTERM and SIGHUP
//! all ask the executor to stop gracefully (no new submits, answers of submits on the wire
//! journalled, results written); a second one quits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::api::{ApiKey, Client};
use crate::cli::RunArgs;
use crate::commands::{Global, load_plan};
use crate::config::Config;
use crate::cost::{Money, PriceBook};
use crate::error::Error;
use crate::exec::{self, ExecError, Outcome, OutputLock, Stop};
use crate::plan;
use crate::settings::{Endpoint, RunSettings};

pub fn run(global: &Global, args: &RunArgs) -> Result<u8, Error> {
    init_tracing(global);
    let config = Config::load(global.config.as_deref(), &args.manifest)?;
    let mut plan = load_plan(global, &args.manifest)?;
    plan.out_dir = super::out_dir(&plan, args.out.as_deref(), args.shard);
    let settings = RunSettings::resolve(global, args, |name| std::env::var(name).ok(), &config)?;
    if let crate::settings::Endpoint::Remote { key, .. } = &settings.endpoint {
        let argv: Vec<String> = (std::env::args_os().skip(1))
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Some(n) = crate::settings::key_in_args(key.expose(), &argv) {
            return Err(crate::settings::key_in_args_error(
                n,
                "the config or environment",
            ));
        }
    }
    if global.verbose > 0 && !global.quiet {
        eprintln!("{}", config.describe());
        eprintln!("{}", crate::settings::sources(args, &config));
        if let Endpoint::Remote {
            base_url,
            base_from,
            ..
        } = &settings.endpoint
        {
            eprintln!("base URL: {base_url} (from {base_from})");
        }
    }
    exec::select::select(&plan, &args.only, |_| false).map_err(|e| Error::Usage(e.to_string()))?;
    let prices = PriceBook::new(&config);
    if let Some(hint) = config.currency_hint(settings.provider) {
        if settings.max_cost.is_some() {
            return Err(Error::Usage(format!(
                "--max-cost refused: {hint}; nothing was sent"
            )));
        }
        if !global.quiet {
            eprintln!("warning: {hint}");
        }
    }
    if settings.max_cost.is_some()
        && let Some(shot) = plan.shots.iter().find(|s| prices.shot(s).is_none())
    {
        return Err(Error::Usage(format!(
            "--max-cost needs a price for every shot, and `{}` ({} at {}) has none in {}: add it \
             under [pricing] in the config; nothing was sent",
            shot.id, shot.model, shot.resolution, prices.currency
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    // Taken before anything touches the folder (the simulator's state lives there too).
    let lock = OutputLock::acquire(&plan.out_dir)?;
    exec::outdir::check_paths(
        &plan.out_dir,
        &[crate::folder::SIM_STATE_FILE, crate::folder::PROVIDER_FILE],
    )?;
    crate::folder::claim_folder(&plan.out_dir, args.shard)?;
    crate::folder::claim_provider(&plan.out_dir, settings.provider)?;
    let mut opts = settings.run_options(args, prices);
    // A sibling's journal that cannot be read as one is invalid input: nothing is sent.
    opts.siblings = exec::outdir::Siblings::read(&plan.out_dir, args.shard.is_some())
        .map_err(|e| Error::Usage(format!("{e}; nothing was sent")))?;
    // Read once, under the lock: the retakes and the run see the same journal.
    let replayed = exec::replay_locked(&lock, opts.skip_bad_journal_lines).map_err(exec_error)?;
    let crate::review::retake::Applied {
        why,
        approved,
        replaces_approved,
    } = crate::review::retake::apply_in_folder(&mut plan, &replayed, args.retake_rejected)
        .map_err(|e| Error::Usage(e.to_string()))?;

    if let Some(old) = &lock.taken_over
        && !global.quiet
    {
        eprintln!(
            "note: took over the lock of {} left by an earlier run ({old}) that is no longer running",
            plan.out_dir.display()
        );
    }
    let first_signal = Arc::new(AtomicU8::new(0));
    opts.approved = approved;
    opts.notes = (why.iter().zip(&plan.shots))
        .map(|(why, shot)| why.as_ref()?.held_note(&args.manifest, &shot.id))
        .collect();
    if !global.quiet {
        for (note, shot) in opts.notes.iter().zip(&plan.shots) {
            if let Some(note) = note {
                eprintln!("held {}: {note}", shot.id);
            }
        }
        for (&replaces, shot) in replaces_approved.iter().zip(&plan.shots) {
            if replaces {
                eprintln!(
                    "send {}: its request changed; {}",
                    shot.id,
                    crate::review::retake::REPLACES_APPROVED
                );
            }
        }
    }
    // The page's badges; the rest of the retakes' per-shot state is not needed past here.
    let held = crate::review::held(&plan, &why);
    drop((why, replaces_approved));
    let outcome = runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        opts.stop = Some(stop_rx);
        let signals = Signals::new().map_err(|e| Error::io("cannot handle signals", e))?;
        tokio::spawn(watch_signals(signals, stop_tx, Arc::clone(&first_signal)));
        let (base_url, api_key, sim) = match &settings.endpoint {
            Endpoint::Remote { base_url, key, .. } => (base_url.clone(), key.clone(), None),
            Endpoint::Sim => {
                let sim = crate::sim::start(
                    crate::sim::SimConfig {
                        provider: settings.provider,
                        gen_time: Duration::from_secs(2),
                        state: Some(plan.out_dir.join(crate::folder::SIM_STATE_FILE)),
                        ..Default::default()
                    },
                    0,
                )
                .await
                .map_err(|e| Error::io("cannot start the simulator", e))?;
                if !global.quiet {
                    eprintln!(
                        "simulator listening on {} (nothing is billed)",
                        sim.base_url()
                    );
                }
                (sim.base_url(), ApiKey::new("sk-sim-demo"), Some(sim))
            }
        };
        let client = Client::for_provider(
            settings.provider.provider(),
            settings.client_config(base_url, api_key),
        )
        .and_then(|c| c.with_download_limits(settings.download))
        .and_then(|c| c.with_workspace(settings.workspace.clone()))
        .map(|c| match &settings.endpoint {
            Endpoint::Remote {
                key_hint,
                base_from,
                ..
            } => c
                .with_auth_hint(key_hint.clone())
                .with_base_source(Some(base_from.clone())),
            Endpoint::Sim => c,
        })
        .map_err(|e| Error::Usage(format!("cannot set up the HTTP client: {e}")))?;
        if !global.quiet {
            let shard = args.shard.map_or_else(String::new, |s| {
                let n = plan::shard::partition(&plan, s.count).shots_in(s.index);
                format!(", {n} of them in shard {s}")
            });
            eprintln!(
                "{} shot(s) planned from {}{shard}; up to {} in flight; output in {}",
                plan.shots.len(),
                args.manifest.display(),
                settings.concurrency,
                plan.out_dir.display()
            );
        }
        let outcome = exec::execute_locked(&plan, client, opts, &lock, replayed)
            .await
            .map_err(exec_error)?;
        if let Some(sim) = sim {
            sim.shutdown().await;
        }
        Ok::<Outcome, Error>(outcome)
    })?;
    // What the summary needs of the plan, taken before the plan goes: the run wrote
    // `plan.json`, which is what the page reads, so the in-memory plan (~80 MB at 100,000
    // shots) is dropped before the page builds its own per-shot data (issue 21). It stays only
    // as the page's fallback for a folder without `plan.json`.
    let other_shards = args.shard.map_or(0, |s| {
        plan.shots.len() - plan::shard::partition(&plan, s.count).shots_in(s.index)
    });
    let upper_bounds = plan.shots.iter().any(|s| s.upper_bound());
    let (out_dir, name, manifest) = (
        plan.out_dir.clone(),
        plan.name.clone(),
        plan.manifest.clone(),
    );
    let fallback = (!crate::review::has_plan_file(&out_dir)).then_some(plan);
    // Written under the folder's lock, and before the summary so that the summary closes the
    // output. The runtime (and its signal watcher) lives on: a signal that comes now stops the
    // page (a run interrupted earlier still gets its page; a second signal quits at once).
    let signal_before = first_signal.load(Ordering::SeqCst);
    let late_signal = signal_before != 0 && !matches!(outcome.stop, Stop::Interrupted);
    if !args.no_review && !late_signal {
        let stop = || first_signal.load(Ordering::SeqCst) != signal_before;
        let of = crate::review::PageOf {
            name: &name,
            manifest: &manifest,
            fallback: fallback.as_ref(),
        };
        match crate::review::write_held_for(&out_dir, of, &held, &stop) {
            Ok((page, _)) if !global.quiet => eprintln!("review: {}", page.display()),
            Ok(_) => {}
            Err(e) => eprintln!("warning: review page not written: {e}"),
        }
    }
    drop(fallback);
    drop(runtime);
    drop(lock);
    summarise(&out_dir, upper_bounds, &outcome, other_shards);
    // A signal exits 128 + its number, whenever it came (the results are written either way).
    match first_signal.load(Ordering::SeqCst) {
        signal @ 1.. => Ok(128 + signal),
        0 => Ok(outcome.exit_code()),
    }
}

/// The first SIGINT, SIGTERM or SIGHUP records its number and asks the run to stop; the second
/// quits at once with 128 + the first's number (the journal is on disk either way).
async fn watch_signals(
    mut signals: Signals,
    stop: tokio::sync::watch::Sender<bool>,
    first: Arc<AtomicU8>,
) {
    let signal = signals.next().await;
    first.store(signal, Ordering::SeqCst);
    let _ = stop.send(true);
    signals.next().await;
    eprintln!("interrupted again: quitting now");
    std::process::exit(128 + i32::from(signal));
}

/// The stop signals, handled from the moment this is built (before anything is sent).
#[cfg(unix)]
struct Signals([(tokio::signal::unix::Signal, u8); 3]);

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals([
            (signal(SignalKind::interrupt())?, 2),
            (signal(SignalKind::terminate())?, 15),
            (signal(SignalKind::hangup())?, 1),
        ]))
    }

    /// The number of the next signal.
    async fn next(&mut self) -> u8 {
        let [(int, a), (term, b), (hup, c)] = &mut self.0;
        tokio::select! {
            _ = int.recv() => *a,
            _ = term.recv() => *b,
            _ = hup.recv() => *c,
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn next(&mut self) -> u8 {
        let _ = tokio::signal::ctrl_c().await;
        2
    }
}

fn exec_error(e: ExecError) -> Error {
    match e {
        ExecError::Select(e) => Error::Usage(e.to_string()),
        ExecError::JournalRead(e) => Error::Usage(e.to_string()),
        ExecError::Attach(e) if e.is_usage() => Error::Usage(e.to_string()),
        ExecError::OutDir(e) => e.into(),
        other => Error::Fatal(other.to_string()),
    }
}

/// Warnings always; `-v` adds a line per submit, task outcome and download, `-vv` shotlist's
/// debug lines, `-vvv` the dependencies' (HTTP connections).
fn init_tracing(global: &Global) {
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;
    let own = match (global.quiet, global.verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, _) => LevelFilter::DEBUG,
    };
    let others = if global.verbose >= 3 {
        LevelFilter::DEBUG
    } else {
        LevelFilter::WARN
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(others)
        .with_target(env!("CARGO_CRATE_NAME"), own);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(crate::settings::stderr_colour())
        .with_target(global.verbose >= 3)
        .finish()
        .with(filter);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// `out_dir`: the plan's output folder; `upper_bounds`: some shot's cost is an upper bound;
/// `other_shards`: shots left to other shards (counted as pending in the outcome).
fn summarise(
    out_dir: &std::path::Path,
    upper_bounds: bool,
    outcome: &Outcome,
    other_shards: usize,
) {
    let results = out_dir.join(crate::report::CSV_FILE);
    match &outcome.stop {
        Stop::Finished => {}
        Stop::Interrupted => eprintln!(
            "interrupted: every submit is journalled; run the same command again to resume \
             (tasks already sent are polled, not resent):\n  {}",
            resume_command()
        ),
        Stop::Fatal(message) => eprintln!(
            "error: the run stopped: {message}\nstate is saved; fix the cause and run the same \
             command again to resume:\n  {}",
            resume_command()
        ),
    }
    let c = &outcome.cost;
    let show = |m: Money| format!("{m} {}", c.currency);
    let mut cost = format!(
        "cost: est. {} this run, {} for the batch",
        show(c.spent),
        show(c.billed)
    );
    if upper_bounds {
        cost.push_str(&format!(
            " (upper bounds: an edit input given by URL counts as {} s)",
            crate::plan::model::VIDEO_INPUT_DURATION.1
        ));
    }
    if c.unsent > 0 {
        cost.push_str(&format!(
            "; {} shot(s) left unsent by --max-cost, est. {}: a rerun with a higher cap sends them",
            c.unsent,
            show(c.unsent_cost)
        ));
    }
    eprintln!("{cost}");
    let q = &outcome.queries;
    if q.refused + q.failed > 0 {
        eprintln!(
            "task queries: {} refused by the provider (429), {} failed (5xx or transport); \
             each was asked again{}",
            q.refused,
            q.failed,
            if q.rate < f64::from(q.ceiling) {
                format!(
                    "; the request rate ended at {:.1}/s of {}/s",
                    q.rate, q.ceiling
                )
            } else {
                String::new()
            }
        );
    }
    if q.skipped > 0 {
        eprintln!(
            "task queries: {} poll(s) of tasks younger than the shortest task so far waited for \
             room in the request budget ({}/s), so that submits and tasks that may be done went \
             first",
            q.skipped, q.ceiling
        );
    }
    let mut tally = outcome.tally;
    tally.pending = tally.pending.saturating_sub(other_shards);
    let mut summary = exec::progress::summary(&tally, &results);
    if other_shards > 0 {
        summary.push_str(&format!("\n{other_shards} shot(s) left to other shards"));
    }
    eprintln!("{summary}");
}

fn resume_command() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\*?[]".contains(c))
            {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
