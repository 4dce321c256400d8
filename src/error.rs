//! The one error type commands return, and the exit codes it maps to.

use std::path::PathBuf;

/// Documented exit codes.
pub mod exit {
    /// Every shot succeeded (or the command did what it was asked).
    pub const OK: u8 = 0;
    /// The run finished but some shot did not succeed.
    pub const SOME_FAILED: u8 = 1;
    /// Invalid input (manifest, data, config, flags); nothing was sent.
    pub const INVALID: u8 = 2;
    /// The run stopped on a fatal error (auth, disk).
    pub const FATAL: u8 = 3;
    /// Another run holds the output folder's lock; nothing was sent.
    pub const LOCKED: u8 = 4;
    /// `plan --check FILE`: the requests or the cost differ from the committed plan FILE.
    pub const PLAN_DIFFERS: u8 = 5;
    /// Interrupted by Ctrl-C (SIGINT); SIGTERM gives 143 and SIGHUP 129 (128 + the signal).
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// Bad flags or arguments.
    #[error("{0}")]
    Usage(String),
    /// The manifest (or its data) has errors; the diagnostics were already printed.
    #[error("{}: invalid, {}; nothing was sent", file.display(), crate::plan::count(*count, "error"))]
    Invalid { file: PathBuf, count: usize },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Another run holds the output folder.
    #[error("{0}")]
    Locked(String),
    /// The run had to stop: bad key, disk full, ...
    #[error("{0}")]
    Fatal(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Bad file content is invalid input (exit 2), a disk failure fatal (exit 3).
impl From<crate::review::ReviewError> for Error {
    fn from(e: crate::review::ReviewError) -> Self {
        if e.is_input() {
            Error::Usage(e.to_string())
        } else {
            Error::Fatal(e.to_string())
        }
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Invalid { .. } | Error::Config(_) => exit::INVALID,
            Error::Fatal(_) | Error::Io { .. } => exit::FATAL,
            Error::Locked(_) => exit::LOCKED,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
