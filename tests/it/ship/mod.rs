//! Shipping: the GitHub Action run as GitHub runs it, the plan drift gate, and the release
//! workflow's and image's shotlist commands.

mod action;
mod drift;
mod release;
