//! `shotlist completions SHELL` and `shotlist man`: generated from the clap definition, so they
//! never drift from the flags.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, exit};

pub fn completions(shell: clap_complete::Shell) -> Result<u8, Error> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "shotlist", &mut script);
    super::print(&String::from_utf8_lossy(&script))?;
    Ok(exit::OK)
}

pub fn man() -> Result<u8, Error> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Error::io("cannot render the man page", e))?;
    super::print(&String::from_utf8_lossy(&page))?;
    Ok(exit::OK)
}
