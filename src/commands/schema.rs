use crate::commands::Global;
use crate::error::Error;

pub fn run(_global: &Global) -> Result<u8, Error> {
    todo!("issue 2")
}
