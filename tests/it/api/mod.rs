//! The provider client against loopback fakes: every response shape, every error class, the
//! transport failures that decide retry versus "unknown", downloads, and key secrecy.

mod download;
mod errors;
pub mod fake;
mod hostile;
mod query;
mod secrecy;
mod submit;
mod transport;
