//! The built-in simulator of the provider API: a strict stand-in over real HTTP. It validates
//! bodies with its own rules, written from the reference, never with the planner's.
//!
//! [`rules`] judges submit bodies, [`task`] keeps task state, [`shape`] writes each response
//! variant, [`stats`] counts what happened, [`video`] is the clip served, [`common`] holds what
//! both protocols share (state, key check, fault draws), [`server`] wires the gateway's routes;
//! [`dashscope`] speaks Alibaba's native protocol instead (`--provider dashscope`) over the same
//! core. See `docs/simulator.md` for the knobs and the stats document.

pub mod common;
pub mod dashscope;
pub mod persist;
pub mod rules;
pub mod server;
pub mod shape;
pub mod stats;
pub mod task;
pub mod video;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use server::TASK_ID_HEADER;
pub use shape::Shape;
pub use task::FAIL_MARKER;

/// The protocol the simulator speaks.
pub use crate::api::ProviderId as SimProvider;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub provider: SimProvider,
    pub key: Option<String>,
    /// DashScope: further keys of `key`'s account (a colleague's), accepted too. DashScope lists
    /// and answers queries for an account's tasks, whichever of its keys made them; a key
    /// outside this set is an account of its own.
    pub account_keys: Vec<String>,
    pub gen_time: Duration,
    pub jitter: f64,
    pub shape: Shape,
    pub rate_limit: Option<usize>,
    /// API requests (submits and queries) per second per key; past it, 429.
    pub rps_limit: Option<u32>,
    /// Probability of a random 429 on a submit.
    pub p429: f64,
    /// Probability of a random 429 on a task query.
    pub p429_query: f64,
    /// The share of random 429s on the gateway (`p429`, `p429_query`) that carry
    /// `Retry-After: 1`.
    pub p_retry_after: f64,
    pub p502: f64,
    pub p_lost: f64,
    pub fail_rate: f64,
    pub url_ttl: Duration,
    pub seed: u64,
    /// Keep the task table in this file and reload it on start ([`persist`]): `run --sim`.
    pub state: Option<std::path::PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            provider: SimProvider::Gravitex,
            key: None,
            account_keys: Vec::new(),
            gen_time: Duration::from_secs(3),
            jitter: 0.0,
            shape: Shape::Doc,
            rate_limit: None,
            rps_limit: None,
            p429: 0.0,
            p429_query: 0.0,
            p_retry_after: 0.5,
            p502: 0.0,
            p_lost: 0.0,
            fail_rate: 0.0,
            url_ttl: Duration::from_secs(24 * 3600),
            seed: 0,
            state: None,
        }
    }
}

/// The protocol state behind a handle.
enum Backend {
    Gateway(Arc<server::Sim>),
    DashScope(Arc<dashscope::Sim>),
}

/// A running simulator; dropping it (or `shutdown`) stops the server.
pub struct SimHandle {
    pub addr: SocketAddr,
    sim: Backend,
    stop: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SimHandle {
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The document `GET /__sim/stats` serves, read in process; `with_tasks` adds the task list.
    pub fn stats(&self, with_tasks: bool) -> serde_json::Value {
        match &self.sim {
            Backend::Gateway(sim) => sim.stats(with_tasks),
            Backend::DashScope(sim) => sim.stats(with_tasks),
        }
    }

    /// Stops accepting, lets requests in progress finish (5 s at most), and returns once the
    /// port is closed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut serving) = self.serving.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut serving)
                .await
                .is_err()
        {
            serving.abort();
            let _ = serving.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds 127.0.0.1:`port` (0 picks one) and serves in the background on the current runtime.
/// With `config.state`, reloads the tasks recorded there and, given port 0, prefers the port
/// the earlier process used (so its result URLs work again).
pub async fn start(config: SimConfig, port: u16) -> std::io::Result<SimHandle> {
    let mut book = task::TaskBook::default();
    let saved = config
        .state
        .as_deref()
        .map(|path| persist::load(path, &mut book))
        .unwrap_or_default();
    let listener = match saved.port.filter(|_| port == 0) {
        Some(saved) => match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, saved)).await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?,
        },
        None => tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?,
    };
    let addr = listener.local_addr()?;
    let state = match &config.state {
        Some(path) => Some(persist::open(path, addr.port())?),
        None => None,
    };
    let (sim, app) = match config.provider {
        SimProvider::Gravitex => {
            let sim = Arc::new(server::Sim::with_book(config, addr, book, state));
            (Backend::Gateway(Arc::clone(&sim)), server::router(sim))
        }
        SimProvider::Dashscope => {
            let sim = Arc::new(dashscope::Sim::with_book(
                config,
                addr,
                book,
                saved.protocol,
                state,
            ));
            (Backend::DashScope(Arc::clone(&sim)), dashscope::router(sim))
        }
    };
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(SimHandle {
        addr,
        sim,
        stop: Some(stop),
        serving: Some(serving),
    })
}
