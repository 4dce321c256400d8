use std::process::ExitCode;

use clap::Parser;

/// Less resident memory than glibc's malloc for a long run (BENCHMARKS.md, issue 21).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    shotlist::alloc::tune();
    // Before parsing: a parse error quotes the argument.
    if let Err(err) = shotlist::settings::refuse_env_key_in_args() {
        eprintln!("{:?}", miette::Report::new(err));
        return ExitCode::from(shotlist::error::exit::INVALID);
    }
    let cli = shotlist::cli::Cli::parse();
    match shotlist::commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        // Its diagnostics were printed already: one line closes them, not a second error.
        Err(err @ shotlist::error::Error::Invalid { .. }) => {
            eprintln!("{err}");
            ExitCode::from(err.exit_code())
        }
        Err(err) => {
            let code = err.exit_code();
            eprintln!("{:?}", miette::Report::new(err));
            ExitCode::from(code)
        }
    }
}
