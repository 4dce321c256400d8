//! One file per subcommand: each turns parsed flags into library calls and prints the data.

pub mod mark;
pub mod plan;
pub mod review;
pub mod run;
pub mod schema;
pub mod sim;
pub mod status;
pub mod validate;

use std::path::PathBuf;

/// Flags every command shares.
#[derive(Debug, Clone, Default)]
pub struct Global {
    pub config: Option<PathBuf>,
    pub quiet: bool,
    pub verbose: u8,
}
