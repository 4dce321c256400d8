//! The template loader: files inside the manifest's folder, nothing else.

use std::path::{Component, Path, PathBuf};

use minijinja::{Error, ErrorKind};

/// A minijinja loader reading `name` relative to `root`; refuses absolute paths, `..`, and
/// symlinks that lead outside `root`.
pub fn sandboxed_loader(
    root: PathBuf,
) -> impl Fn(&str) -> Result<Option<String>, Error> + Send + Sync + 'static {
    move |name: &str| {
        let rel = Path::new(name);
        let escapes = rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        if escapes || name.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "`{name}` is outside the manifest's folder; templates may only read files next to the manifest or below it"
                ),
            ));
        }
        let path = root.join(rel);
        let Ok(real) = path.canonicalize() else {
            return Ok(None);
        };
        let inside = root
            .canonicalize()
            .map(|r| real.starts_with(r))
            .unwrap_or(false);
        if !inside {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("`{name}` leads outside the manifest's folder"),
            ));
        }
        std::fs::read_to_string(&real).map(Some).map_err(|e| {
            Error::new(ErrorKind::InvalidOperation, format!("cannot read `{name}`")).with_source(e)
        })
    }
}
