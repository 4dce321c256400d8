//! `shotlist schema`: the manifest's JSON Schema, generated from the raw serde types.

use crate::commands::Global;
use crate::error::{Error, exit};

/// The JSON Schema text (what `schemas/manifest.schema.json` holds).
pub fn schema_text() -> String {
    let schema = schemars::schema_for!(crate::manifest::RawManifest);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

pub fn run(_global: &Global) -> Result<u8, Error> {
    super::print(&schema_text())?;
    Ok(exit::OK)
}
