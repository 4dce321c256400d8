use crate::cli::SimArgs;
use crate::commands::Global;
use crate::error::Error;

pub fn run(_global: &Global, _args: &SimArgs) -> Result<u8, Error> {
    todo!("issue 3")
}
