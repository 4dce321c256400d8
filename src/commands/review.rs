//! `shotlist review`: write the output folder's `review.html` and print where it is.

use std::path::Path;

use crate::cli::ReviewArgs;
use crate::commands::Global;
use crate::error::Error;
use crate::review;

pub fn run(global: &Global, args: &ReviewArgs) -> Result<u8, Error> {
    let mut plan = super::load_plan(global, &args.manifest)?;
    plan.out_dir = super::out_dir(&plan, args.out.as_deref(), None);
    let (page, shots) = review::write_for(plan)?;
    if !global.quiet {
        println!("{} ({shots} shot(s))", page.display());
    }
    if args.open {
        open(&page)?;
    }
    Ok(crate::error::exit::OK)
}

/// Opens `page` in the desktop's default browser.
fn open(page: &Path) -> Result<(), Error> {
    let page = std::path::absolute(page).map_err(|e| Error::io("cannot resolve the page", e))?;
    let mut cmd = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    cmd.arg(&page)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| Error::io(format!("cannot open {} in a browser", page.display()), e))
}
