//! Run settings resolved once, as ripgrep turns its low-level flags into `HiArgs`: the command
//! hands over flags, environment and config, and gets back the values the executor and the
//! client are built from. Precedence is flags > environment > config > defaults, here and
//! nowhere else, so a test can check it without a process or a network.

use std::time::Duration;

use crate::api::provider::KeyPlace;
use crate::api::{ApiKey, ClientConfig, DownloadLimits, ProviderId};
use crate::cli::RunArgs;
use crate::config::Config;
use crate::cost::{Money, PriceBook};
use crate::error::Error;
use crate::exec::{DEFAULT_CONCURRENCY, ProgressMode, ResumeFlags, RunOptions};

/// Flags every command shares.
#[derive(Debug, Clone, Default)]
pub struct Global {
    pub config: Option<std::path::PathBuf>,
    pub quiet: bool,
    pub verbose: u8,
}

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Poll interval of `--sim` runs when `--poll` is not given: the demo should be quick.
const SIM_POLL: Duration = Duration::from_millis(500);

/// Where the requests go.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// The in-process simulator of `--sim`: no key, nothing billed.
    Sim,
    Remote {
        base_url: String,
        key: ApiKey,
        /// Added to the provider's 401: where the key came from and where it must belong.
        key_hint: Option<String>,
        /// Where `base_url` came from, named when it cannot be reached.
        base_from: String,
    },
}

/// The environment variable of the gateway's base URL (not read for other providers).
pub const BASE_URL_ENV: &str = match crate::api::gravitex::PROVIDER.base_url_env {
    Some(name) => name,
    None => "",
};

/// Everything `shotlist run` needs beyond the plan.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub provider: ProviderId,
    /// DashScope's workspace id (`[api] workspace`).
    pub workspace: Option<String>,
    pub endpoint: Endpoint,
    /// Tasks in flight at most; at least 1.
    pub concurrency: usize,
    /// Fixed poll interval, if any.
    pub poll: Option<Duration>,
    /// Per-request timeout.
    pub timeout: Duration,
    pub submits_per_minute: Option<u32>,
    /// Queries per second shared by all polls.
    pub queries_per_second: u32,
    pub download: DownloadLimits,
    pub progress: ProgressMode,
    /// Spend no more than this (`--max-cost`, else `[run] max_cost`).
    pub max_cost: Option<Money>,
}

impl RunSettings {
    /// Resolves the settings; `env` reads an environment variable.
    pub fn resolve(
        global: &Global,
        args: &RunArgs,
        env: impl Fn(&str) -> Option<String>,
        config: &Config,
    ) -> Result<RunSettings, Error> {
        let provider = args.provider.or(config.api.provider).unwrap_or_default();
        let concurrency = args
            .concurrency
            .or(config.run.concurrency)
            .unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(Error::Usage(
                "[run] concurrency must be at least 1 (in the config)".into(),
            ));
        }
        let poll = args
            .poll
            .or(config.run.poll)
            .or(args.sim.then_some(SIM_POLL));
        if let Some(p) = poll.filter(|&p| p < crate::exec::poll::MIN_POLL) {
            return Err(Error::Usage(format!(
                "--poll {} is below the floor of 100ms (flag or [run] poll in the config): \
                 polling faster gains nothing and spends the provider's request budget",
                humantime::format_duration(p)
            )));
        }
        // A rate of the whole account (DashScope's 20 per second) is shared by the shards.
        let requests = provider.provider().requests;
        let queries_per_second = config.run.queries_per_second.unwrap_or(match args.shard {
            Some(shard) if requests.per_account => (requests.per_second / shard.count).max(1),
            _ => requests.per_second,
        });
        if queries_per_second == 0 {
            return Err(Error::Usage(
                "[run] queries_per_second must be at least 1 (in the config)".into(),
            ));
        }
        let endpoint = if args.sim {
            Endpoint::Sim
        } else {
            remote(provider, args, env, config)?
        };
        Ok(RunSettings {
            provider,
            workspace: config.api.workspace.clone(),
            endpoint,
            concurrency: concurrency as usize,
            poll,
            timeout: config.api.timeout.unwrap_or(DEFAULT_TIMEOUT),
            submits_per_minute: config.run.submits_per_minute,
            queries_per_second,
            download: config.download_limits(),
            // Log lines would tear a bar, so `-v` prints plain progress lines.
            progress: match (global.quiet, global.verbose) {
                (true, _) => ProgressMode::Quiet,
                (false, 0) => ProgressMode::Auto,
                (false, _) => ProgressMode::Plain,
            },
            max_cost: match (args.max_cost, &config.run.max_cost) {
                (Some(m), _) => Some(m),
                (None, Some(m)) => Money::from_f64(*m.get_ref()),
                (None, None) => None,
            },
        })
    }

    /// The executor's options (`prices` price the totals and the spending).
    pub fn run_options(&self, args: &RunArgs, prices: PriceBook) -> RunOptions {
        RunOptions {
            concurrency: self.concurrency,
            poll: self.poll,
            queries_per_second: self.queries_per_second,
            retry_backoff: crate::exec::Backoff::PROVIDER,
            only: args.only.clone(),
            shard: args.shard,
            flags: ResumeFlags {
                retry_failed: args.retry_failed,
                resubmit_unknown: args.resubmit_unknown,
            },
            submits_per_minute: self.submits_per_minute,
            progress: self.progress,
            stop: None,
            skip_bad_journal_lines: args.skip_bad_journal_lines,
            prices,
            max_cost: self.max_cost,
            approved: Vec::new(),
            notes: Vec::new(),
            reconcile_wait: crate::exec::reconcile::DEFAULT_WAIT,
            attach: args.attach.clone(),
            siblings: Default::default(),
            events: args
                .events
                .as_deref()
                .map(crate::exec::events::EventsTo::parse),
        }
    }

    /// The client's settings for `base_url` and `key` (the simulator's when it runs in-process).
    pub fn client_config(&self, base_url: String, api_key: ApiKey) -> ClientConfig {
        ClientConfig {
            base_url,
            api_key,
            timeout: self.timeout,
        }
    }
}

/// Where each run setting that is not its default came from, for `-v`: `concurrency 8 (flag),
/// poll 2s (config)`. The config's file is named by [`Config::describe`].
pub fn sources(args: &RunArgs, config: &Config) -> String {
    let pick = |flag: bool, conf: bool| match (flag, conf) {
        (true, _) => Some("flag"),
        (false, true) => Some("config"),
        _ => None,
    };
    let r = &config.run;
    let a = &config.api;
    let rows = [
        (
            "provider",
            pick(args.provider.is_some(), a.provider.is_some()),
        ),
        (
            "concurrency",
            pick(args.concurrency.is_some(), r.concurrency.is_some()),
        ),
        ("poll", pick(args.poll.is_some(), r.poll.is_some())),
        (
            "max_cost",
            pick(args.max_cost.is_some(), r.max_cost.is_some()),
        ),
        ("timeout", pick(false, a.timeout.is_some())),
        (
            "submits_per_minute",
            pick(false, r.submits_per_minute.is_some()),
        ),
        (
            "queries_per_second",
            pick(false, r.queries_per_second.is_some()),
        ),
        (
            "download caps",
            pick(
                false,
                config.download.max_bytes.is_some() || config.download.timeout.is_some(),
            ),
        ),
        (
            "prices",
            pick(
                false,
                config.pricing.currency.is_some() || !config.pricing.models.is_empty(),
            ),
        ),
    ];
    let set: Vec<String> = rows
        .iter()
        .filter_map(|(name, from)| from.map(|f| format!("{name} ({f})")))
        .collect();
    if set.is_empty() {
        "settings: all defaults".to_owned()
    } else {
        format!("settings not at their default: {}", set.join(", "))
    }
}

/// Base URL and key: flags > environment > config > defaults, each as the provider's row says.
/// A base URL variable (`GRAVITEX_BASE_URL`) is its provider's alone: a DashScope run never
/// reads it, so an exported simulator URL cannot take a DashScope key elsewhere.
fn remote(
    provider: ProviderId,
    args: &RunArgs,
    env: impl Fn(&str) -> Option<String>,
    config: &Config,
) -> Result<Endpoint, Error> {
    let row = provider.provider();
    let given = |u: &String| !u.trim().is_empty();
    let from_env = row
        .base_url_env
        .and_then(|name| Some((name, env(name).filter(given)?)));
    let in_config = config
        .path
        .as_ref()
        .map_or_else(String::new, |p| format!(" in {}", p.display()));
    let (base_url, base_from) = if let Some(flag) = args.base_url.clone().filter(given) {
        (flag, "`--base-url`".to_owned())
    } else if let Some((name, var)) = from_env {
        (var, format!("the {name} environment variable"))
    } else if let Some(url) = config.api.base_url.clone() {
        (url, format!("`[api] base_url`{in_config}"))
    } else {
        let region = config.region_name();
        match (row.region_url, region.and_then(|r| row.region_url?(r))) {
            (None, _) => (row.default_base_url.to_owned(), "the default".to_owned()),
            (Some(_), Some(url)) => (url.to_owned(), format!("`[api] region`{in_config}")),
            (Some(_), None) => (
                row.default_base_url.to_owned(),
                "the default region".to_owned(),
            ),
        }
    };
    let env_name = config.key_env(provider);
    let key = env(env_name)
        .filter(|k| !k.trim().is_empty())
        .or_else(|| config.api.api_key.clone().filter(|k| !k.trim().is_empty()));
    let key_from = match env(env_name).filter(|k| !k.trim().is_empty()) {
        Some(_) => format!("the {env_name} environment variable"),
        None => "`api_key` under [api] in the config".to_owned(),
    };
    let base_given = args.base_url.as_ref().is_some_and(given) || config.api.base_url.is_some();
    let key_hint = row.key_hint.map(|hint| {
        hint(&KeyPlace {
            key_from: &key_from,
            region: config.region_name(),
            base_given,
        })
    });
    match key {
        Some(key) => Ok(Endpoint::Remote {
            base_url,
            base_from,
            key: ApiKey::new(key.trim()),
            key_hint,
        }),
        None => Err(Error::Usage(format!(
            "no API key: set the {env_name} environment variable (or `api_key_env` / `api_key` \
             under [api] in the config), or try the built-in simulator with `shotlist run --sim \
             MANIFEST`; nothing was sent"
        ))),
    }
}

/// Shortest piece of the key an argument may hold before it is refused (a truncated paste).
const KEY_PIECE: usize = 12;

/// The position (1-based) of the first of `args` that holds `key` or a piece of it of at least
/// [`KEY_PIECE`] characters: an argument ends up in messages, the journal and requests (a task
/// id is sent in a URL), so a key pasted into one is refused before anything is printed or sent.
pub fn key_in_args<S: AsRef<str>>(key: &str, args: &[S]) -> Option<usize> {
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    // A key shorter than a piece (a test's) counts only as a whole word.
    let long = key.len() >= KEY_PIECE;
    let piece = |t: &str| {
        if long {
            t.len() >= KEY_PIECE && key.contains(t)
        } else {
            t == key
        }
    };
    args.iter()
        .position(|a| {
            let a = a.as_ref();
            long && a.contains(key)
                || a.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                    .any(piece)
        })
        .map(|i| i + 1)
}

/// The error for argument `n` holding the key: it never repeats the argument.
pub fn key_in_args_error(n: usize, from: &str) -> Error {
    Error::Usage(format!(
        "argument {n} holds the API key (from {from}) or a piece of it; refused so that it is \
         neither printed nor sent. Give the key only through the environment or the config; \
         nothing was sent"
    ))
}

/// [`key_in_args`] for the process's arguments and the providers' default key variables: run
/// before the arguments are parsed, whose errors quote them.
pub fn refuse_env_key_in_args() -> Result<(), Error> {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for &provider in <ProviderId as clap::ValueEnum>::value_variants() {
        let name = provider.provider().key_env;
        if let Some(key) = std::env::var(name).ok()
            && let Some(n) = key_in_args(&key, &args)
        {
            return Err(key_in_args_error(
                n,
                &format!("the {name} environment variable"),
            ));
        }
    }
    Ok(())
}

/// `--color always` or `never`, once chosen; `auto` leaves it unset.
static COLOUR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Applies `--color`: to shotlist's own output and to the error report's.
pub fn choose_colour(choice: clap::ColorChoice) {
    let on = match choice {
        clap::ColorChoice::Auto => return,
        clap::ColorChoice::Always => true,
        clap::ColorChoice::Never => false,
    };
    let _ = COLOUR.set(on);
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(miette::MietteHandlerOpts::new().color(on).build())
    }));
}

/// Colour on stderr: as `--color` says, else only on a terminal, and not when `NO_COLOR` is set
/// to something.
pub fn stderr_colour() -> bool {
    use std::io::IsTerminal;
    if let Some(&on) = COLOUR.get() {
        return on;
    }
    colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod key_args_tests {
    use super::key_in_args;

    #[test]
    fn a_key_or_a_long_piece_of_it_in_any_argument_is_found() {
        let key = "sk-0123456789abcdefXYZ";
        assert_eq!(key_in_args(key, &["run", "m.yaml"]), None);
        assert_eq!(
            key_in_args(key, &["run", "--attach", &format!("a={key}")]),
            Some(3)
        );
        assert_eq!(
            key_in_args(key, &["--attach", "a=sk-0123456789ab"]),
            Some(2),
            "a prefix"
        );
        assert_eq!(
            key_in_args(key, &["x", "y/56789abcdefXYZ"]),
            Some(2),
            "a middle piece"
        );
        assert_eq!(
            key_in_args(key, &["sk-0123", "t2v", "abc"]),
            None,
            "short pieces"
        );
        assert_eq!(key_in_args("  ", &["anything"]), None);
        // A short key counts as a whole word only.
        assert_eq!(key_in_args("sk-short", &["a=sk-short"]), Some(1));
        assert_eq!(key_in_args("sk-short", &["a=sk-shor"]), None);
        assert_eq!(key_in_args("k", &["m.yaml", "--take"]), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::dashscope;
    use clap::Parser;
    use std::path::Path;

    fn args(flags: &[&str]) -> RunArgs {
        let cli = crate::cli::Cli::try_parse_from(
            ["shotlist", "run", "m.yaml"].iter().chain(flags).copied(),
        )
        .expect("flags parse");
        match cli.command {
            crate::cli::Command::Run(args) => args,
            _ => unreachable!(),
        }
    }

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("c.toml")).expect("config parses")
    }

    fn env(pairs: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        let pairs = pairs.to_vec();
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn resolve(flags: &[&str], vars: &[(&'static str, &'static str)], text: &str) -> RunSettings {
        RunSettings::resolve(&Global::default(), &args(flags), env(vars), &config(text))
            .expect("settings resolve")
    }

    fn remote_of(s: &RunSettings) -> (&str, &str) {
        match &s.endpoint {
            Endpoint::Remote { base_url, key, .. } => (base_url.as_str(), key.expose()),
            Endpoint::Sim => panic!("not remote"),
        }
    }

    const KEY: (&str, &str) = ("GRAVITEX_API_KEY", "sk-env");

    fn base_from(s: &RunSettings) -> &str {
        match &s.endpoint {
            Endpoint::Remote { base_from, .. } => base_from,
            Endpoint::Sim => panic!("not remote"),
        }
    }

    #[test]
    fn sources_name_what_set_each_setting() {
        let c = config("[run]\nconcurrency = 8\npoll = \"2s\"\n");
        assert_eq!(
            sources(&args(&["-j", "3"]), &c),
            "settings not at their default: concurrency (flag), poll (config)"
        );
        assert_eq!(sources(&args(&[]), &config("")), "settings: all defaults");
    }

    #[test]
    fn the_base_url_source_is_the_one_that_won() {
        let config = "[api]\nbase_url = \"http://config:1\"\n";
        let env_url = (BASE_URL_ENV, "http://env:1");
        let s = resolve(&["--base-url", "http://flag:1"], &[KEY, env_url], config);
        assert_eq!(base_from(&s), "`--base-url`");
        let s = resolve(&[], &[KEY, env_url], config);
        assert_eq!(base_from(&s), "the GRAVITEX_BASE_URL environment variable");
        let s = resolve(&[], &[KEY], config);
        assert_eq!(base_from(&s), "`[api] base_url` in c.toml");
        let s = resolve(&[], &[KEY], "");
        assert_eq!(base_from(&s), "the default");
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = resolve(&[], &[KEY], "");
        assert_eq!(s.concurrency, DEFAULT_CONCURRENCY as usize);
        assert_eq!(s.poll, None);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.submits_per_minute, None);
        assert_eq!(s.download, DownloadLimits::default());
        assert_eq!(s.progress, ProgressMode::Auto);
        assert_eq!(remote_of(&s), (crate::config::DEFAULT_BASE_URL, "sk-env"));
    }

    #[test]
    fn config_values_override_defaults() {
        let s = resolve(
            &[],
            &[KEY],
            "[api]\nbase_url = \"http://127.0.0.1:9\"\ntimeout = \"20s\"\n\
             [run]\nconcurrency = 8\npoll = \"2s\"\nsubmits_per_minute = 30\n\
             [download]\nmax_bytes = 1000\ntimeout = \"90s\"\n",
        );
        assert_eq!(s.concurrency, 8);
        assert_eq!(s.poll, Some(Duration::from_secs(2)));
        assert_eq!(s.timeout, Duration::from_secs(20));
        assert_eq!(s.submits_per_minute, Some(30));
        assert_eq!(
            s.download,
            DownloadLimits {
                max_bytes: 1000,
                timeout: Duration::from_secs(90)
            }
        );
        assert_eq!(remote_of(&s).0, "http://127.0.0.1:9");
    }

    #[test]
    fn flags_override_config() {
        let s = resolve(
            &["-j", "3", "--poll", "100ms", "--base-url", "http://flag:1"],
            &[KEY],
            "[api]\nbase_url = \"http://config:1\"\n[run]\nconcurrency = 8\npoll = \"2s\"\n",
        );
        assert_eq!(s.concurrency, 3);
        assert_eq!(s.poll, Some(Duration::from_millis(100)));
        assert_eq!(remote_of(&s).0, "http://flag:1");
    }

    #[test]
    fn an_empty_base_url_flag_falls_back_to_the_config() {
        let s = resolve(
            &["--base-url", " "],
            &[KEY],
            "[api]\nbase_url = \"http://config:1\"\n",
        );
        assert_eq!(remote_of(&s).0, "http://config:1");
    }

    #[test]
    fn the_environment_key_overrides_the_config_key() {
        let s = resolve(&[], &[KEY], "[api]\napi_key = \"sk-config\"\n");
        assert_eq!(remote_of(&s).1, "sk-env");
        let s = resolve(&[], &[], "[api]\napi_key = \" sk-config \"\n");
        assert_eq!(remote_of(&s).1, "sk-config");
        let s = resolve(
            &[],
            &[("GRAVITEX_API_KEY", "  ")],
            "[api]\napi_key = \"sk-config\"\n",
        );
        assert_eq!(remote_of(&s).1, "sk-config");
    }

    #[test]
    fn the_config_names_the_key_variable() {
        let s = resolve(
            &[],
            &[KEY, ("OTHER_KEY", "sk-other")],
            "[api]\napi_key_env = \"OTHER_KEY\"\n",
        );
        assert_eq!(remote_of(&s).1, "sk-other");
    }

    #[test]
    fn no_key_is_a_usage_error_naming_the_variable() {
        let err = RunSettings::resolve(&Global::default(), &args(&[]), env(&[]), &config(""))
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Usage(_)), "{text}");
        assert!(text.contains("GRAVITEX_API_KEY"), "{text}");
        assert!(text.contains("--sim"), "{text}");
    }

    #[test]
    fn sim_needs_no_key_and_polls_quickly_unless_told() {
        let s = resolve(&["--sim"], &[], "");
        assert!(matches!(s.endpoint, Endpoint::Sim));
        assert_eq!(s.poll, Some(SIM_POLL));
        let s = resolve(&["--sim"], &[], "[run]\npoll = \"3s\"\n");
        assert_eq!(s.poll, Some(Duration::from_secs(3)));
    }

    const DS_KEY: (&str, &str) = ("DASHSCOPE_API_KEY", "sk-ds");

    #[test]
    fn the_provider_flag_overrides_the_config_which_overrides_gravitex() {
        assert_eq!(resolve(&[], &[KEY], "").provider, ProviderId::Gravitex);
        let config = "[api]\nprovider = \"dashscope\"\n";
        assert_eq!(
            resolve(&[], &[DS_KEY], config).provider,
            ProviderId::Dashscope
        );
        let s = resolve(&["--provider", "gravitex"], &[KEY], config);
        assert_eq!(s.provider, ProviderId::Gravitex);
        assert_eq!(remote_of(&s), (crate::config::DEFAULT_BASE_URL, "sk-env"));
    }

    fn key_hint_of(s: &RunSettings) -> Option<&str> {
        match &s.endpoint {
            Endpoint::Remote { key_hint, .. } => key_hint.as_deref(),
            Endpoint::Sim => panic!("not remote"),
        }
    }

    #[test]
    fn a_refused_dashscope_key_names_its_source_and_the_other_regions_never_the_key() {
        let ds = ["--provider", "dashscope"];
        let s = resolve(&ds, &[DS_KEY], "[api]\nregion = \"beijing\"\n");
        let hint = key_hint_of(&s).expect("a hint");
        assert!(
            hint.contains("the DASHSCOPE_API_KEY environment variable"),
            "{hint}"
        );
        assert!(
            hint.contains("region beijing (https://dashscope.aliyuncs.com)"),
            "{hint}"
        );
        assert!(
            hint.contains("singapore https://dashscope-intl.aliyuncs.com, virginia"),
            "{hint}"
        );
        assert!(!hint.contains("beijing https://"), "{hint}");
        assert!(!hint.contains(DS_KEY.1), "{hint}");
        let s = resolve(
            &ds,
            &[],
            "[api]\napi_key = \"sk-in-config\"\nbase_url = \"http://x:1\"\n",
        );
        let hint = key_hint_of(&s).expect("a hint");
        assert!(
            hint.contains("`api_key` under [api] in the config"),
            "{hint}"
        );
        assert!(
            hint.contains("the base URL from `--base-url` or `[api] base_url`"),
            "{hint}"
        );
        assert!(!hint.contains("sk-in-config"), "{hint}");
        assert_eq!(
            key_hint_of(&resolve(&[], &[KEY], "")),
            None,
            "the gateway's 401 is its own"
        );
    }

    #[test]
    fn dashscope_takes_its_own_key_and_region_and_never_the_gateway_url_variable() {
        let vars = [KEY, DS_KEY, (BASE_URL_ENV, "http://gateway-sim:1")];
        let s = resolve(&["--provider", "dashscope"], &vars, "");
        assert_eq!(
            remote_of(&s),
            (dashscope::Region::Singapore.base_url(), "sk-ds")
        );
        assert_eq!(s.queries_per_second, dashscope::QUERIES_PER_SECOND);
        let s = resolve(
            &["--provider", "dashscope"],
            &vars,
            "[api]\nregion = \"beijing\"\nworkspace = \"ws-1\"\n",
        );
        assert_eq!(remote_of(&s).0, dashscope::Region::Beijing.base_url());
        assert_eq!(s.workspace.as_deref(), Some("ws-1"));
        let s = resolve(
            &["--provider", "dashscope"],
            &vars,
            "[api]\nbase_url = \"http://config:1\"\nregion = \"virginia\"\n",
        );
        assert_eq!(remote_of(&s).0, "http://config:1");
        let s = resolve(
            &["--provider", "dashscope", "--base-url", "http://flag:1"],
            &vars,
            "[run]\nqueries_per_second = 5\n",
        );
        assert_eq!(remote_of(&s).0, "http://flag:1");
        assert_eq!(s.queries_per_second, 5);
    }

    #[test]
    fn dashscope_shards_split_the_accounts_query_budget_unless_the_config_says() {
        let vars = [DS_KEY];
        let qps = |flags: &[&str], config: &str| resolve(flags, &vars, config).queries_per_second;
        let ds = ["--provider", "dashscope"];
        assert_eq!(qps(&[&ds[..], &["--shard", "2/4"]].concat(), ""), 5);
        assert_eq!(qps(&[&ds[..], &["--shard", "1/3"]].concat(), ""), 6);
        assert_eq!(qps(&[&ds[..], &["--shard", "7/40"]].concat(), ""), 1);
        let config = "[run]\nqueries_per_second = 12\n";
        assert_eq!(qps(&[&ds[..], &["--shard", "2/4"]].concat(), config), 12);
        let gateway = resolve(&["--shard", "2/4"], &[KEY], "").queries_per_second;
        assert_eq!(gateway, crate::exec::DEFAULT_QUERIES_PER_SECOND);
    }

    #[test]
    fn the_gateway_url_variable_sits_between_the_flag_and_the_config() {
        let vars = [KEY, (BASE_URL_ENV, "http://env:1")];
        let config = "[api]\nbase_url = \"http://config:1\"\n";
        assert_eq!(remote_of(&resolve(&[], &vars, config)).0, "http://env:1");
        let s = resolve(&["--base-url", "http://flag:1"], &vars, config);
        assert_eq!(remote_of(&s).0, "http://flag:1");
        assert_eq!(
            s.queries_per_second,
            crate::exec::DEFAULT_QUERIES_PER_SECOND
        );
    }

    #[test]
    fn without_a_dashscope_key_the_message_names_its_variable() {
        let err = RunSettings::resolve(
            &Global::default(),
            &args(&["--provider", "dashscope"]),
            env(&[KEY]),
            &config(""),
        )
        .unwrap_err();
        assert!(err.to_string().contains("DASHSCOPE_API_KEY"), "{err}");
    }

    #[test]
    fn unknown_providers_and_regions_in_the_config_are_config_errors() {
        for text in [
            "[api]\nprovider = \"openai\"\n",
            "[api]\nregion = \"mars\"\n",
        ] {
            let err = Config::parse(text, Path::new("c.toml")).unwrap_err();
            let shown = err.to_string();
            assert!(shown.contains("c.toml"), "{shown}");
        }
    }

    #[test]
    fn zero_concurrency_in_the_config_is_refused() {
        let err = RunSettings::resolve(
            &Global::default(),
            &args(&["--sim"]),
            env(&[]),
            &config("[run]\nconcurrency = 0\n"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("concurrency"), "{err}");
    }

    #[test]
    fn verbosity_picks_the_progress_mode() {
        let mode = |quiet, verbose| {
            let global = Global {
                quiet,
                verbose,
                ..Global::default()
            };
            RunSettings::resolve(&global, &args(&["--sim"]), env(&[]), &config(""))
                .unwrap()
                .progress
        };
        assert_eq!(mode(true, 0), ProgressMode::Quiet);
        assert_eq!(mode(false, 0), ProgressMode::Auto);
        assert_eq!(mode(false, 2), ProgressMode::Plain);
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }
}
