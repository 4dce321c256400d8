//! The built-in simulator of the provider API: a strict stand-in over real HTTP. It validates
//! bodies with its own rules, written from the reference, never with the planner's.

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::cli::Shape;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub key: Option<String>,
    pub gen_time: Duration,
    pub jitter: f64,
    pub shape: Shape,
    pub rate_limit: Option<usize>,
    pub p429: f64,
    pub p502: f64,
    pub p_lost: f64,
    pub fail_rate: f64,
    pub url_ttl: Duration,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            key: None,
            gen_time: Duration::from_secs(3),
            jitter: 0.0,
            shape: Shape::Doc,
            rate_limit: None,
            p429: 0.0,
            p502: 0.0,
            p_lost: 0.0,
            fail_rate: 0.0,
            url_ttl: Duration::from_secs(24 * 3600),
            seed: 0,
        }
    }
}

/// A running simulator; dropping it (or `shutdown`) stops the server.
pub struct SimHandle {
    pub addr: SocketAddr,
    _private: (),
}

impl SimHandle {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(self) {
        todo!("issue 3")
    }
}

/// Binds 127.0.0.1:`port` (0 picks one) and serves in the background on the current runtime.
pub async fn start(_config: SimConfig, _port: u16) -> std::io::Result<SimHandle> {
    todo!("issue 3")
}
