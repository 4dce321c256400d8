//! Tests that drive the real binary.
