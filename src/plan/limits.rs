//! Every cap planning applies to what a manifest can make it read, render or expand.
//!
//! A manifest, its tables and templates may come from someone else; these keep `validate` and
//! `run` to seconds and a bounded amount of memory. The two a legitimate batch may outgrow are
//! raised by environment variable (the machine's owner decides, not the manifest).

use crate::manifest::MAX_FILE_ENV;

/// Default cap on the manifest, each data file and each template file.
pub const DEFAULT_MAX_FILE_MB: u64 = 64;
/// Default cap on the shots one manifest expands to, all shots together.
pub const DEFAULT_MAX_SHOTS: usize = 1_000_000;
/// The environment variable that raises the shot cap.
pub const MAX_SHOTS_ENV: &str = "SHOTLIST_MAX_SHOTS";

/// Caps in force for one planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_shots: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_MB << 20,
            max_shots: DEFAULT_MAX_SHOTS,
        }
    }
}

impl Limits {
    /// The defaults, raised or lowered by `SHOTLIST_MAX_FILE_MB` and `SHOTLIST_MAX_SHOTS`.
    pub fn from_env() -> Result<Limits, String> {
        let mut limits = Limits::default();
        if let Some(mb) = env_number(MAX_FILE_ENV)? {
            limits.max_file_bytes = mb.saturating_mul(1 << 20);
        }
        if let Some(n) = env_number(MAX_SHOTS_ENV)? {
            limits.max_shots = usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(limits)
    }
}

fn env_number(name: &str) -> Result<Option<u64>, String> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!("{name} must be a whole number above 0")),
        },
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("{name} must be a whole number above 0"))
        }
    }
}
