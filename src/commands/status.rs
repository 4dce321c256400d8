use crate::cli::StatusArgs;
use crate::commands::Global;
use crate::error::Error;

pub fn run(_global: &Global, _args: &StatusArgs) -> Result<u8, Error> {
    todo!("issue 4")
}
