use crate::cli::PlanArgs;
use crate::commands::Global;
use crate::error::Error;

pub fn run(_global: &Global, _args: &PlanArgs) -> Result<u8, Error> {
    todo!("issue 2")
}
