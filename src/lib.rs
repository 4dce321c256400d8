//! shotlist: a declarative batch runner for Wan 2.7 video generation.
//!
//! The pipeline is load → expand → validate → plan → execute → report, one module per stage:
//! [`manifest`] reads YAML and CSV into raw types, [`template`] renders minijinja, [`plan`] turns
//! raw types into a validated request graph without touching the network, [`api`] speaks to the
//! provider, [`exec`] owns run state (the only async stage), [`journal`] and [`report`] write
//! what happened, [`review`] shows it for approval, and [`sim`] is a strict stand-in for the
//! provider.

pub mod alloc;
pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cost;
pub mod error;
pub mod exec;
pub mod folder;
pub mod journal;
pub mod manifest;
pub mod plan;
pub mod report;
pub mod review;
pub mod settings;
pub mod sim;
pub mod template;

pub use error::Error;
