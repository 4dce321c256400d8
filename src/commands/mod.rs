//! One file per subcommand: each turns parsed flags into library calls and prints the data.

pub mod merge;
pub mod plan;
pub mod run;
pub mod schema;
pub mod sim;
pub mod status;
pub mod validate;

use std::path::{Path, PathBuf};

use crate::plan::Plan;
use crate::plan::shard::ShardSpec;

/// Flags every command shares.
#[derive(Debug, Clone, Default)]
pub struct Global {
    pub config: Option<PathBuf>,
    pub quiet: bool,
    pub verbose: u8,
}

/// The output folder: `--out`, else the manifest's, or under `--shard` its shard's folder there.
pub fn out_dir(plan: &Plan, out: Option<&Path>, shard: Option<ShardSpec>) -> PathBuf {
    match (out, shard) {
        (Some(out), _) => out.to_owned(),
        (None, Some(shard)) => plan.out_dir.join(shard.folder_name()),
        (None, None) => plan.out_dir.clone(),
    }
}
