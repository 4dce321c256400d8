//! The TOML config: where and how to run, never what to make.
//!
//! Looked up as `--config FILE`, else `shotlist.toml` beside the manifest, else
//! `./shotlist.toml`, else the user config dir's `shotlist/config.toml`: the first found is the
//! only one read, so a project's settings follow its manifest whatever the working directory.
//! Precedence is flags > environment > config > defaults; this module only reads the file,
//! [`crate::settings`] applies the precedence.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::api::DownloadLimits;

/// The config file's name beside a manifest or in the working directory.
pub const FILE_NAME: &str = "shotlist.toml";

/// Whether `a` and `b` name one file (both relative to the working directory when relative).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Default provider base URL.
pub const DEFAULT_BASE_URL: &str = crate::api::gravitex::PROVIDER.default_base_url;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub download: DownloadSection,
    /// Overrides of the list prices: `currency`, and `[pricing.<model or alias>] "720P" = 0.10`.
    #[serde(default)]
    pub pricing: PricingSection,
    /// Where this config was read from, if anywhere.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// `gravitex` (default) or `dashscope`.
    pub provider: Option<crate::api::ProviderId>,
    /// DashScope's region: `singapore` (default), `virginia` or `beijing`.
    pub region: Option<crate::api::dashscope::Region>,
    /// DashScope workspace id, sent as `X-DashScope-WorkSpace`.
    pub workspace: Option<String>,
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the key (default `GRAVITEX_API_KEY`, for
    /// dashscope `DASHSCOPE_API_KEY`).
    pub api_key_env: Option<String>,
    /// The key itself; prefer `api_key_env` so the key stays out of files.
    pub api_key: Option<String>,
    /// Per-request timeout, e.g. `30s`.
    #[serde(default, deserialize_with = "opt_duration")]
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for ApiSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSection")
            .field("provider", &self.provider)
            .field("region", &self.region)
            .field("workspace", &self.workspace)
            .field("base_url", &self.base_url)
            .field("api_key_env", &self.api_key_env)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    pub concurrency: Option<u32>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub poll: Option<Duration>,
    pub submits_per_minute: Option<u32>,
    /// Task queries per second shared by all polls (default 10).
    pub queries_per_second: Option<u32>,
    /// `--max-cost`: the estimated cost a run may submit, in the pricing currency.
    pub max_cost: Option<Spanned<f64>>,
}

/// `[pricing]` is the price book's section ([`crate::cost::PricingSection`]).
pub use crate::cost::PricingSection;

/// The price book reads only `[pricing]`: `PriceBook::new(&config)`.
impl<'a> From<&'a Config> for &'a PricingSection {
    fn from(config: &'a Config) -> &'a PricingSection {
        &config.pricing
    }
}

/// Caps on each download; see [`DownloadLimits`] for the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadSection {
    pub max_bytes: Option<u64>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    #[diagnostic(help("pass an existing file to --config, or remove the flag"))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    #[diagnostic(help("see the Config section of the README for the keys shotlist reads"))]
    Parse { path: PathBuf, message: String },
    /// What TOML or serde refused, at `path:line:column` as manifest errors are placed.
    #[error("invalid config {}{}: {message}", path.display(), place.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Syntax {
        path: PathBuf,
        /// Line and column, 1-based.
        place: Option<(usize, usize)>,
        message: String,
        #[help]
        help: String,
    },
    /// A `[pricing]` entry that could never apply: a typo would otherwise hide a cost.
    #[error("invalid config {path}, line {line}: {message}")]
    Pricing {
        path: PathBuf,
        line: usize,
        message: String,
        #[help]
        help: String,
    },
}

fn opt_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| {
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("`{s}`: {e} (write e.g. 30s)")))
    })
    .transpose()
}

impl Config {
    /// Why the prices may be in another currency than the account is billed in: a region
    /// whose provider bills in another currency than the list's (DashScope's `beijing`: CNY)
    /// with no `[pricing] currency` set. Setting one, whatever it is, is the user saying the
    /// prices are right (an account billed in USD in Beijing exists); `None` then.
    pub fn currency_hint(&self, provider: crate::api::ProviderId) -> Option<String> {
        let row = provider.provider();
        let region = self.region_name()?;
        let billed = (row.billed_in)(Some(region))?;
        let listed = crate::cost::LIST_CURRENCY;
        (self.pricing.currency.is_none() && billed != listed).then(|| {
            format!(
                "the {} region `{region}` bills in {billed}, but the prices are the \
                 built-in {listed} ones: costs and --max-cost would be in the wrong currency. \
                 Set `[pricing] currency = \"{billed}\"` with your prices per model in the \
                 config (or `currency = \"{listed}\"` to confirm {listed} is right)",
                row.name
            )
        })
    }

    /// `[api] region` by name, as a provider's row reads it.
    pub fn region_name(&self) -> Option<&'static str> {
        self.api.region.map(crate::api::dashscope::Region::name)
    }

    /// Reads the config for `manifest`: `explicit`, else the first of [`Config::candidates`]
    /// that is a file; none found is not an error.
    pub fn load(explicit: Option<&Path>, manifest: &Path) -> Result<Config, ConfigError> {
        if let Some(path) = explicit {
            return Self::read(path);
        }
        let user = dirs::config_dir().map(|d| d.join("shotlist").join("config.toml"));
        match Self::candidates(manifest, user)
            .into_iter()
            .find(|p| p.is_file())
        {
            Some(path) => Self::read(&path),
            None => Ok(Config::default()),
        }
    }

    /// Where a config is looked for, first first: `shotlist.toml` beside `manifest`, in the
    /// working directory, then `user` (the user config dir's `shotlist/config.toml`).
    pub fn candidates(manifest: &Path, user: Option<PathBuf>) -> Vec<PathBuf> {
        let beside = match manifest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(FILE_NAME),
            _ => PathBuf::from(FILE_NAME),
        };
        let mut found = vec![beside];
        let local = PathBuf::from(FILE_NAME);
        if !same_file(&found[0], &local) {
            found.push(local);
        }
        found.extend(user);
        found
    }

    /// The settings this config sets, as `[section] key` (never a value: one may be the key).
    pub fn set_keys(&self) -> Vec<&'static str> {
        let a = &self.api;
        let r = &self.run;
        let d = &self.download;
        [
            (a.provider.is_some(), "[api] provider"),
            (a.region.is_some(), "[api] region"),
            (a.workspace.is_some(), "[api] workspace"),
            (a.base_url.is_some(), "[api] base_url"),
            (a.api_key_env.is_some(), "[api] api_key_env"),
            (a.api_key.is_some(), "[api] api_key"),
            (a.timeout.is_some(), "[api] timeout"),
            (r.concurrency.is_some(), "[run] concurrency"),
            (r.poll.is_some(), "[run] poll"),
            (r.submits_per_minute.is_some(), "[run] submits_per_minute"),
            (r.queries_per_second.is_some(), "[run] queries_per_second"),
            (r.max_cost.is_some(), "[run] max_cost"),
            (d.max_bytes.is_some(), "[download] max_bytes"),
            (d.timeout.is_some(), "[download] timeout"),
            (self.pricing.currency.is_some(), "[pricing] currency"),
            (!self.pricing.models.is_empty(), "[pricing.<model>] prices"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }

    /// One line naming the config read and what it sets, or that none was found.
    pub fn describe(&self) -> String {
        match &self.path {
            None => format!(
                "config: none found ({FILE_NAME} beside the manifest or here, or the user \
                 config dir's shotlist/config.toml): defaults apply"
            ),
            Some(path) => {
                let keys = self.set_keys();
                let sets = if keys.is_empty() {
                    "nothing".to_owned()
                } else {
                    keys.join(", ")
                };
                format!("config: {} sets {sets}", path.display())
            }
        }
    }

    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| syntax(text, path, &e))?;
        config.check_pricing(text, path)?;
        if config.download.max_bytes == Some(0) || config.download.timeout == Some(Duration::ZERO) {
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                message: "[download] max_bytes and timeout must be more than 0".into(),
            });
        }
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// The download caps: the config's, else the defaults.
    pub fn download_limits(&self) -> DownloadLimits {
        let default = DownloadLimits::default();
        DownloadLimits {
            max_bytes: self.download.max_bytes.unwrap_or(default.max_bytes),
            timeout: self.download.timeout.unwrap_or(default.timeout),
        }
    }

    /// Refuses unknown models and resolutions and prices that are not a number ≥ 0.
    fn check_pricing(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        use crate::plan::model;
        let fail = |at: std::ops::Range<usize>, message: String, help: String| {
            let line = text.as_bytes()[..at.start.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            ConfigError::Pricing {
                path: path.to_owned(),
                line,
                message,
                help,
            }
        };
        if let Some(currency) = &self.pricing.currency {
            let c = currency.get_ref();
            if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
                return Err(fail(
                    currency.span(),
                    format!("[pricing] currency = \"{c}\": not a currency code"),
                    "write a three-letter code such as USD or EUR; the built-in prices are in USD"
                        .into(),
                ));
            }
        }
        if let Some(max) = &self.run.max_cost
            && crate::cost::Money::from_f64(*max.get_ref()).is_none()
        {
            return Err(fail(
                max.span(),
                format!("[run] max_cost = {}: not an amount", max.get_ref()),
                "write the most a run may spend, a number of 0 or more, e.g. 25.00".into(),
            ));
        }
        for (name, prices) in &self.pricing.models {
            if model::resolve(name.get_ref()).is_none() {
                let names = model::names();
                return Err(fail(
                    name.span(),
                    format!("[pricing.{}]: unknown model", name.get_ref()),
                    did_you_mean(name.get_ref(), &names, "models"),
                ));
            }
            for (resolution, price) in prices {
                if !model::RESOLUTIONS.contains(&resolution.get_ref().as_str()) {
                    return Err(fail(
                        resolution.span(),
                        format!(
                            "[pricing.{}] \"{}\": unknown resolution",
                            name.get_ref(),
                            resolution.get_ref()
                        ),
                        did_you_mean(resolution.get_ref(), &model::RESOLUTIONS, "resolutions"),
                    ));
                }
                let p = *price.get_ref();
                if !(p.is_finite() && (0.0..=crate::cost::MAX_PRICE_PER_SECOND as f64).contains(&p))
                {
                    return Err(fail(
                        price.span(),
                        format!(
                            "[pricing.{}] \"{}\" = {p}: not a price",
                            name.get_ref(),
                            resolution.get_ref()
                        ),
                        format!(
                            "write the price per second of video, a number from 0 to {}, e.g. 0.10",
                            crate::cost::MAX_PRICE_PER_SECOND
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The environment variable `provider`'s key is read from.
    pub fn key_env(&self, provider: crate::api::ProviderId) -> &str {
        self.api
            .api_key_env
            .as_deref()
            .unwrap_or(provider.provider().key_env)
    }
}

/// "did you mean `x`?" when a known name is close, then every known name.
fn did_you_mean(word: &str, known: &[&str], what: &str) -> String {
    let list = known.join(", ");
    match crate::manifest::closest_key(word, known) {
        Some(close) => format!("did you mean `{close}`? {what}: {list}"),
        None => format!("{what}: {list}"),
    }
}

/// A parse error at its line and column, without the source snippet toml would show (the line
/// may hold a key, e.g. `api_key = sk-...` unquoted), with every value of a secret-looking
/// setting replaced by `***` (serde's messages quote wrong-typed values), and for an unknown key
/// the manifest's "did you mean" over the keys of its section.
fn syntax(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let mut message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let place = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        (line, column)
    });
    for value in secret_values(text) {
        message = message.replace(value, "***");
    }
    let readme = "see the Config section of the README for the keys shotlist reads";
    let help = match unknown_field(&message) {
        Some((word, known)) => {
            let help = did_you_mean(word, &known, "keys here");
            message = format!("unknown key `{word}`");
            help
        }
        None => readme.to_owned(),
    };
    ConfigError::Syntax {
        path: path.to_owned(),
        place,
        message,
        help,
    }
}

/// The unknown key and the expected ones of serde's "unknown field `x`, expected one of `a`,
/// `b`" (or "expected `a` or `b`").
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (word, rest) = rest.split_once('`')?;
    let known = rest.split('`').skip(1).step_by(2).collect();
    Some((word, known))
}

/// The raw values of `name = value` lines whose name says key, token, secret or password (at
/// least 4 characters, so a placeholder does not blank the message).
fn secret_values(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| {
        let (name, value) = line.split_once('=')?;
        let name = name.to_ascii_lowercase();
        let secret = ["key", "token", "secret", "password"]
            .iter()
            .any(|w| name.contains(w));
        let value = value.trim().trim_matches(['"', '\'']).trim();
        (secret && !name.contains("key_env") && value.len() >= 4).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The provider's row says what a region bills in; a `[pricing] currency` confirms.
    #[test]
    fn a_region_billed_in_another_currency_asks_for_prices_in_it() {
        use crate::api::ProviderId::{Dashscope, Gravitex};
        let parse = |text: &str| Config::parse(text, Path::new("c.toml")).unwrap();
        let beijing = parse("[api]\nregion = \"beijing\"\n");
        let hint = beijing.currency_hint(Dashscope).expect("a hint");
        assert!(
            hint.contains(
                "the DashScope region `beijing` bills in CNY, but the prices are the \
                 built-in USD ones"
            ),
            "{hint}"
        );
        assert!(hint.contains("`[pricing] currency = \"CNY\"`"), "{hint}");
        assert_eq!(
            beijing.currency_hint(Gravitex),
            None,
            "the gateway has no regions"
        );
        let singapore = parse("[api]\nregion = \"singapore\"\n");
        assert_eq!(singapore.currency_hint(Dashscope), None);
        assert_eq!(parse("").currency_hint(Dashscope), None);
        let confirmed = parse("[api]\nregion = \"beijing\"\n[pricing]\ncurrency = \"USD\"\n");
        assert_eq!(confirmed.currency_hint(Dashscope), None);
    }

    #[test]
    fn parses_all_sections() {
        let c = Config::parse(
            "[api]\nbase_url = \"http://127.0.0.1:1\"\ntimeout = \"20s\"\n[run]\nconcurrency = 8\npoll = \"2s\"\n[pricing.t2v]\n720P = 0.1\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.api.timeout, Some(Duration::from_secs(20)));
        assert_eq!(c.run.concurrency, Some(8));
        let book = crate::cost::PriceBook::new(&c);
        assert_eq!(
            book.per_second("wan2.7-t2v-2026-04-25", "720P"),
            crate::cost::Money::parse("0.1").ok()
        );
        assert_eq!(book.currency, "USD");
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let err = Config::parse("[run]\nconcurency = 8\n", Path::new("c.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("c.toml:2:1"), "{text}");
        assert!(text.contains("concurency"), "{text}");
    }

    #[test]
    fn configs_are_looked_for_beside_the_manifest_then_here_then_in_the_user_dir() {
        let user = PathBuf::from("/home/u/.config/shotlist/config.toml");
        assert_eq!(
            Config::candidates(Path::new("/nonexistent/proj/m.yaml"), Some(user.clone())),
            [
                PathBuf::from("/nonexistent/proj/shotlist.toml"),
                PathBuf::from("shotlist.toml"),
                user.clone()
            ]
        );
        assert_eq!(
            Config::candidates(Path::new("m.yaml"), Some(user.clone())),
            [PathBuf::from("shotlist.toml"), user]
        );
    }

    #[test]
    fn download_caps_default_and_override() {
        let c = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(c.download_limits(), DownloadLimits::default());
        let c = Config::parse(
            "[download]\nmax_bytes = 5_000_000\ntimeout = \"90s\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(
            c.download_limits(),
            DownloadLimits {
                max_bytes: 5_000_000,
                timeout: Duration::from_secs(90)
            }
        );
    }

    #[test]
    fn parse_errors_never_echo_a_key() {
        let key = "sk-live-CONFIG-3b9e-DO-NOT-LEAK";
        for text in [
            format!("[api]\napi_key = {key}\n"),
            format!("[api]\napi_key = \"{key}\"\ntimeout = 5\n"),
            format!("[api]\napi_key = \"{key}\"\nbase_url = 7\n"),
            format!("[api]\napi_kye = \"{key}\"\n"),
            format!("[run]\nconcurrency = \"{key}\"\n[api]\napi_key = \"{key}\"\n"),
            format!("[api]\ntoken = {key} x\n"),
        ] {
            let err = Config::parse(&text, Path::new("c.toml")).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("DO-NOT-LEAK"), "{text}\n{shown}");
            assert!(shown.contains("c.toml:"), "{shown}");
        }
        let c = Config::parse(
            &format!("[api]\napi_key = \"{key}\"\n"),
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains(key));
    }
}
