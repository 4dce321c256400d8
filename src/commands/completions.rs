//! `shotlist completions SHELL` and `shotlist man`: generated from the clap definition, so they
//! never drift from the flags. The top page names `shotlist-run(1)` and the others, so
//! `man --dir` writes those pages too.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, exit};

pub fn completions(shell: clap_complete::Shell) -> Result<u8, Error> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "shotlist", &mut script);
    super::print(&String::from_utf8_lossy(&script))?;
    Ok(exit::OK)
}

/// The top page on stdout; with `dir`, every page written there and their names printed.
pub fn man(dir: Option<&Path>) -> Result<u8, Error> {
    if let Some(dir) = dir {
        let failed = |e| {
            Error::io(
                format!("cannot write the man pages to {}", dir.display()),
                e,
            )
        };
        std::fs::create_dir_all(dir).map_err(failed)?;
        clap_mangen::generate_to(Cli::command(), dir).map_err(failed)?;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(failed)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("shotlist") && n.ends_with(".1"))
            .collect();
        names.sort();
        super::print(&format!("{}\n", names.join("\n")))?;
        return Ok(exit::OK);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Error::io("cannot render the man page", e))?;
    super::print(&String::from_utf8_lossy(&page))?;
    Ok(exit::OK)
}
