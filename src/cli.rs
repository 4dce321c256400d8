//! Command-line flags (clap derive); [`crate::commands::dispatch`] runs them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::plan::shard::ShardSpec;

#[derive(Debug, Parser)]
#[command(
    name = "shotlist",
    version,
    about = "Declarative batch runner for Wan 2.7 video generation",
    after_help = "Exit codes: 0 done, 1 some shot did not succeed, 2 invalid input (nothing sent), \
                  3 stopped on a fatal error (state saved), 4 another run holds the output \
                  folder (nothing sent), 5 `plan --check`: the plan differs, 130 interrupted by \
                  Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (state saved).\n\
                  Try it without a key: shotlist run MANIFEST --sim"
)]
pub struct Cli {
    /// Config file (TOML); default shotlist.toml beside the manifest, else ./shotlist.toml, else
    /// the user config dir's shotlist/config.toml (`-v` names the one read).
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,
    /// Less output: errors and the final summary only.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    pub quiet: bool,
    /// More output: -v names the config and base URL and logs each request; -vv adds debug
    /// lines; -vvv the HTTP library's.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,
    /// Colour on stderr: auto (on a terminal, unless NO_COLOR is set), always or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto", help_heading = GLOBAL)]
    pub color: clap::ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

/// The help heading of the flags every command takes.
const GLOBAL: &str = "Global options";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests without sending anything; exit 2 when any has an error.
    Validate(ValidateArgs),
    /// Show the request graph a manifest expands to, its cost, and what a run would do in the
    /// output folder (read only).
    Plan(PlanArgs),
    /// Run a manifest: submit, poll, download, write results.
    Run(RunArgs),
    /// Summarise a manifest's journal against its plan, without network.
    Status(StatusArgs),
    /// Merge the output folders of `run --shard K/N` into one.
    Merge(MergeArgs),
    /// Write the output folder's review.html: every take side by side, with marks.
    Review(ReviewArgs),
    /// Approve, reject or clear shots' videos in the output folder's marks.json.
    Mark(MarkArgs),
    /// Serve the built-in simulator of the provider API.
    Sim(SimArgs),
    /// Print the JSON Schema of the manifest (for editors' YAML language servers).
    Schema,
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(CompletionsArgs),
    /// Print the man page (roff), or with --dir write one page per command there.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write shotlist.1 and a shotlist-COMMAND.1 for every command into DIR (created if
    /// missing), e.g. `shotlist man --dir ~/.local/share/man/man1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Human,
    Json,
    Github,
    Markdown,
    Sarif,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files (YAML) to check.
    #[arg(required = true, value_name = "MANIFEST")]
    pub manifests: Vec<PathBuf>,
    /// human: a report on stderr; json: an array on stdout; github: Actions annotations (10
    /// per level, as GitHub shows); markdown: a table of every problem (a step summary);
    /// sarif: SARIF 2.1.0 for code scanning.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Human)]
    pub format: ValidateFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The manifest file (YAML).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// The output folder (of a run) to compare the plan against (default: the manifest's
    /// output.dir); read only. Not -o, which names the file the plan is written to.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Output format (default: json when FILE ends in .json, else text).
    #[arg(long, value_enum)]
    pub format: Option<TextOrJson>,
    /// Write the plan to FILE instead of stdout (not --out, the run's output folder).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Compare with FILE, a plan written by `plan -o FILE.json`: list the shots added, removed
    /// or changed (request or cost) and the cost difference; exit 5 when any differ.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["output", "format"])]
    pub check: Option<PathBuf>,
    /// Show shard K of N (1-based) and the size of every shard.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<ShardSpec>,
    /// Show what `run --retake-rejected` would send.
    #[arg(long)]
    pub retake_rejected: bool,
    /// gravitex or dashscope (default: `[api] provider` in the config, else gravitex); with
    /// dashscope, JSON shows each shot's native body as `native_body`.
    #[arg(long, value_enum, value_name = "NAME", hide_possible_values = true)]
    pub provider: Option<crate::api::ProviderId>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The API key is read from the GRAVITEX_API_KEY environment variable, or \
                  DASHSCOPE_API_KEY with --provider dashscope (or the one named by `api_key_env` \
                  under [api] in the config); --sim needs none."
)]
pub struct RunArgs {
    /// The manifest file (YAML).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// Run against the built-in simulator, started in this process (no key needed);
    /// takes priority over --base-url and GRAVITEX_BASE_URL.
    #[arg(long)]
    pub sim: bool,
    /// gravitex or dashscope (default: `[api] provider` in the config, else gravitex); an
    /// output folder stays with the provider it was first run on.
    #[arg(long, value_enum, value_name = "NAME", hide_possible_values = true)]
    pub provider: Option<crate::api::ProviderId>,
    /// Provider base URL (default: GRAVITEX_BASE_URL for gravitex, then `[api] base_url`, then
    /// the provider's, for dashscope its `[api] region`'s).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Tasks in flight at most (default: `[run] concurrency` in the config, else 4).
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: Option<u32>,
    /// Output folder (default: the manifest's output.dir).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Fixed poll interval, e.g. 200ms or 5s (default: 5s growing to 15s).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub poll: Option<Duration>,
    /// Only shots whose id matches GLOB (repeatable); the upstreams they need come along.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Submit shots that failed in an earlier run again.
    #[arg(long)]
    pub retry_failed: bool,
    /// Submit shots whose earlier submit has an unknown outcome again (may pay twice; on
    /// DashScope only when the task list shows no task that fits).
    #[arg(long)]
    pub resubmit_unknown: bool,
    /// Send no shot that would take this run's estimated cost past AMOUNT (pricing currency);
    /// the rest stay pending for a rerun with a higher cap.
    #[arg(long, value_name = "AMOUNT", value_parser = parse_money)]
    pub max_cost: Option<crate::cost::Money>,
    /// Only shard K of N (1-based; chains of `shot:` stay together); default output folder
    /// <output.dir>/shard-K-of-N.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<ShardSpec>,
    /// Attach shot SHOT, whose submit's outcome is unknown, to the task TASK_ID it created, as
    /// found in the provider's console (repeatable): it is polled and downloaded, not resent.
    #[arg(long, value_name = "SHOT=TASK_ID", value_parser = parse_attachment)]
    pub attach: Vec<crate::exec::attach::Attachment>,
    /// Go on past unreadable journal lines instead of refusing (a lost `submitting` line may
    /// lead to a paid resend).
    #[arg(long)]
    pub skip_bad_journal_lines: bool,
    /// Generate each shot whose newest video is marked rejected again with a new seed (its
    /// dependants too); approved and unmarked shots are not touched.
    #[arg(long)]
    pub retake_rejected: bool,
    /// Do not write review.html at the end.
    #[arg(long)]
    pub no_review: bool,
    /// Write the run's events as JSON Lines to FILE (appended) or `-` (standard output), one
    /// flushed line each (schema: schemas/events.schema.json).
    #[arg(long, value_name = "FILE|-")]
    pub events: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The manifest file (YAML) whose output folder to review.
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// Output folder (default: the manifest's output.dir).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("verdict").required(true).args(["approve", "reject", "clear", "import", "prune"]))]
pub struct MarkArgs {
    /// The manifest file (YAML) whose output folder holds the videos.
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// Shot ids or globs (`'teaser-*'`); each must match a shot.
    #[arg(
        value_name = "ID_OR_GLOB",
        required_unless_present_any = ["import", "prune"],
        conflicts_with_all = ["import", "prune"]
    )]
    pub ids: Vec<String>,
    /// Approve the videos.
    #[arg(long)]
    pub approve: bool,
    /// Reject the videos.
    #[arg(long)]
    pub reject: bool,
    /// Remove the mark.
    #[arg(long)]
    pub clear: bool,
    /// A note kept with the mark (why it was rejected, what to change).
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["clear", "import"])]
    pub note: Option<String>,
    /// Apply the marks of FILE (a marks.json downloaded from review.html).
    #[arg(long, value_name = "FILE")]
    pub import: Option<PathBuf>,
    /// Remove the marks of shots no longer in the plan (`status` counts them).
    #[arg(long, conflicts_with_all = ["note", "import"])]
    pub prune: bool,
    /// Output folder (default: the manifest's output.dir).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The manifest file (YAML) whose output folder to read.
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
    /// Output folder (default: the manifest's output.dir).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only shard K of N (1-based; chains of `shot:` stay together); default output folder
    /// <output.dir>/shard-K-of-N.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<ShardSpec>,
    /// Go on past unreadable journal lines instead of refusing.
    #[arg(long)]
    pub skip_bad_journal_lines: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The manifest file (YAML) the shards were run from.
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// The shard folders (made by `run --shard K/N`).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Merged output folder (default: the manifest's output.dir).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The simulator's `--shape`; the simulator has its own [`crate::sim::Shape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Shape {
    /// Flat bodies, as on the provider's public page.
    #[default]
    Doc,
    /// `{code, message, data}` envelope of the gateway source.
    Envelope,
    /// Legacy envelope with upper-case statuses and `fail_reason`.
    Legacy,
}

#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// The protocol to speak: the GravitexAI gateway, or Alibaba DashScope's native API.
    #[arg(long, value_enum, default_value_t = crate::sim::SimProvider::Gravitex)]
    pub provider: crate::sim::SimProvider,
    /// Port on 127.0.0.1; 0 picks a free one and prints it.
    #[arg(long, value_name = "N", default_value_t = 8787)]
    pub port: u16,
    /// Accept only this bearer key (default: any non-empty key).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Time a task takes from submit to success.
    #[arg(long, value_name = "DUR", default_value = "3s", value_parser = parse_duration)]
    pub gen_time: Duration,
    /// Relative jitter on gen-time, 0 to 1.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_fraction)]
    pub jitter: f64,
    /// Which response variant of the reference to answer with.
    #[arg(long, value_enum, default_value_t = Shape::Doc)]
    pub shape: Shape,
    /// Tasks in flight per key; past it, 429 and no task created.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<usize>,
    /// API requests (submits and queries) per second per key; past it, 429.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rps_limit: Option<u32>,
    /// Probability of a spurious 429 on submit (queries: --p429-query).
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_fraction)]
    pub p429: f64,
    /// Probability of a spurious 429 on a task query.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_fraction)]
    pub p429_query: f64,
    /// Share of the gateway's spurious 429s that carry `Retry-After: 1`.
    #[arg(long, value_name = "P", default_value_t = 0.5, value_parser = parse_fraction)]
    pub p_retry_after: f64,
    /// Probability of a 502 on any API request.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_fraction)]
    pub p502: f64,
    /// Probability that a submit creates its task but its response is lost.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_fraction)]
    pub p_lost: f64,
    /// Probability that a task ends failed.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_fraction)]
    pub fail_rate: f64,
    /// How long result URLs stay downloadable.
    #[arg(long, value_name = "DUR", default_value = "24h", value_parser = parse_duration)]
    pub url_ttl: Duration,
    /// Seed of the simulator's randomness: same seed, same run.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (write e.g. 300ms, 5s, 2m)"))
}

fn parse_money(s: &str) -> Result<crate::cost::Money, String> {
    crate::cost::Money::parse(s).map_err(|e| e.to_string())
}

fn parse_attachment(s: &str) -> Result<crate::exec::attach::Attachment, String> {
    s.parse()
        .map_err(|e: crate::exec::attach::AttachError| e.to_string())
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}` is not a number between 0 and 1")),
    }
}

impl From<Shape> for crate::sim::Shape {
    fn from(shape: Shape) -> Self {
        match shape {
            Shape::Doc => crate::sim::Shape::Doc,
            Shape::Envelope => crate::sim::Shape::Envelope,
            Shape::Legacy => crate::sim::Shape::Legacy,
        }
    }
}
