//! The one integration test binary: real processes, real HTTP on loopback, temp dirs.

mod api;
mod client_sim;
mod layout;
mod plan;
mod review;
mod run;
mod shard;
mod ship;
mod sim;
mod support;
mod ux;
