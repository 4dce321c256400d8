//! The template loader: files inside the manifest's folder, nothing else.

use std::path::PathBuf;

use minijinja::{Error, ErrorKind};

use crate::manifest::read_inside;

/// A minijinja loader reading `name` relative to `root`: regular files of at most `max_bytes`,
/// no absolute paths, `..`, or symlinks that lead outside `root`.
pub fn sandboxed_loader(
    root: PathBuf,
    max_bytes: u64,
) -> impl Fn(&str) -> Result<Option<String>, Error> + Send + Sync + 'static {
    move |name: &str| match read_inside(&root, name, max_bytes) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("`{name}` is not valid UTF-8; save it as UTF-8"),
            )
        }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{e}; {}", e.help()),
        )),
    }
}
