//! One file per subcommand: each turns parsed flags into library calls and prints the data.
//!
//! Data goes to stdout through [`print`] and [`ClosedPipeOk`]: a reader that stops early
//! (`| head -1`, `| true`) has seen what it wanted, so a closed pipe ends the output quietly
//! (as cargo and ripgrep do) and the command keeps its own exit code.

pub mod completions;
pub mod mark;
pub mod merge;
pub mod plan;
pub mod review;
pub mod run;
pub mod schema;
pub mod sim;
pub mod status;
pub mod validate;

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::plan::shard::ShardSpec;
use crate::plan::{Plan, load_and_plan, render_human};

pub use crate::settings::Global;

/// Plans the manifest; on errors prints them and returns the exit-2 error. Every command that
/// reads an output folder starts here.
pub fn load_plan(global: &Global, manifest: &Path) -> Result<Plan, Error> {
    match load_and_plan(manifest) {
        Ok(planned) => {
            if !planned.warnings.is_empty() && !global.quiet {
                eprint!("{}", render_human(&planned.warnings));
            }
            Ok(planned.plan)
        }
        Err(rejected) => {
            eprint!("{}", render_human(&rejected.diagnostics));
            let (count, _) = crate::plan::error_counts(&rejected.diagnostics);
            Err(Error::Invalid {
                file: manifest.to_owned(),
                count,
            })
        }
    }
}

/// The output folder: `--out`, else the manifest's, or under `--shard` its shard's folder there.
pub fn out_dir(plan: &Plan, out: Option<&Path>, shard: Option<ShardSpec>) -> PathBuf {
    match (out, shard) {
        (Some(out), _) => out.to_owned(),
        (None, Some(shard)) => plan.out_dir.join(shard.folder_name()),
        (None, None) => plan.out_dir.clone(),
    }
}

/// A writer that drops everything once its reader has gone (`BrokenPipe`).
pub struct ClosedPipeOk<W>(pub W);

impl<W: Write> Write for ClosedPipeOk<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.write(buf) {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

/// Stdout, buffered, quiet when its reader has closed the pipe.
pub fn stdout() -> std::io::BufWriter<ClosedPipeOk<std::io::Stdout>> {
    std::io::BufWriter::new(ClosedPipeOk(std::io::stdout()))
}

/// Writes `text` to stdout; a closed pipe is fine, any other failure is an error.
pub fn print(text: &str) -> Result<(), Error> {
    let mut out = stdout();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("cannot write stdout", e))
}

/// `println!` through [`print`], returning early with the error.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::print(&format!("{}\n", format_args!($($arg)*)))?
    };
}

/// Runs one parsed command and returns its exit code.
pub fn dispatch(cli: crate::cli::Cli) -> Result<u8, Error> {
    crate::settings::choose_colour(cli.color);
    let global = Global {
        config: cli.config,
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    match cli.command {
        crate::cli::Command::Validate(args) => validate::run(&global, &args),
        crate::cli::Command::Plan(args) => plan::run(&global, &args),
        crate::cli::Command::Run(args) => run::run(&global, &args),
        crate::cli::Command::Status(args) => status::run(&global, &args),
        crate::cli::Command::Merge(args) => merge::run(&global, &args),
        crate::cli::Command::Review(args) => review::run(&global, &args),
        crate::cli::Command::Mark(args) => mark::run(&global, &args),
        crate::cli::Command::Sim(args) => sim::run(&global, &args),
        crate::cli::Command::Schema => schema::run(&global),
        crate::cli::Command::Completions(args) => completions::completions(args.shell),
        crate::cli::Command::Man(args) => completions::man(args.dir.as_deref()),
    }
}
