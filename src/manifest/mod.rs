//! The manifest stage: YAML and CSV into raw types that keep source locations.
