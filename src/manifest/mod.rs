//! The manifest stage: YAML and CSV into raw types that keep source locations.
//!
//! Nothing here judges meaning: the raw types mirror the YAML so the JSON Schema can be generated
//! from them, and the plan stage turns them into a validated request graph.

mod files;
mod keys;
mod load;
mod ordered;
mod raw;
mod table;
mod written;

pub use files::{FileError, MAX_FILE_ENV, read_inside, read_regular};
pub use keys::closest as closest_key;
pub use load::{LoadError, clip, parse_manifest};
pub use ordered::OrderedMap;
pub use raw::{
    BoolOrTemplate, DataSource, IntOrTemplate, RawDefaults, RawManifest, RawMedia, RawOutput,
    RawShot, Scalar,
};
pub use table::{Row, Table, TableError, read_csv_text};
pub use written::Written;
