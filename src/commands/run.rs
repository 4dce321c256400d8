use crate::cli::RunArgs;
use crate::commands::Global;
use crate::error::Error;

pub fn run(_global: &Global, _args: &RunArgs) -> Result<u8, Error> {
    todo!("issue 4")
}
