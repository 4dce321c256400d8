use crate::cli::ValidateArgs;
use crate::commands::Global;
use crate::error::Error;

pub fn run(_global: &Global, _args: &ValidateArgs) -> Result<u8, Error> {
    todo!("issue 2")
}
