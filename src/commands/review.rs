//! `shotlist review`: write the output folder's `review.html` and print where it is.

use std::path::{Path, PathBuf};

use crate::cli::ReviewArgs;
use crate::commands::Global;
use crate::error::Error;
use crate::plan::Plan;
use crate::review::{self, ReviewError};

pub fn run(global: &Global, args: &ReviewArgs) -> Result<u8, Error> {
    let mut plan = super::load_plan(global, &args.manifest)?;
    plan.out_dir = super::out_dir(&plan, args.out.as_deref(), None);
    let (page, shots) = write(&plan)?;
    if !global.quiet {
        println!("{} ({shots} shot(s))", page.display());
    }
    if args.open {
        open(&page)?;
    }
    Ok(crate::error::exit::OK)
}

/// Writes the page into the plan's output folder, for `plan` as the manifest describes it (its
/// retakes found in the folder); returns its path and its number of shots.
pub fn write(plan: &Plan) -> Result<(PathBuf, usize), Error> {
    let held = review::held_in_folder(&plan.out_dir, plan).map_err(error)?;
    write_held(plan, &held, &|| false)
}

/// [`write`] for a plan whose retakes are applied already, with the shots they hold; stops
/// when `stop` says so.
pub fn write_held(
    plan: &Plan,
    held: &review::Held,
    stop: &dyn Fn() -> bool,
) -> Result<(PathBuf, usize), Error> {
    if !plan.out_dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} does not exist: run the batch first (`shotlist run {}`), or pass --out DIR",
            plan.out_dir.display(),
            plan.manifest.display()
        )));
    }
    review::write_page(&plan.out_dir, plan, held, stop).map_err(error)
}

/// A review error as a command error: bad file content is invalid input (exit 2), a disk
/// failure is fatal (exit 3).
pub fn error(e: ReviewError) -> Error {
    if e.is_input() {
        Error::Usage(e.to_string())
    } else {
        Error::Fatal(e.to_string())
    }
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
