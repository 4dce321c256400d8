//! What both protocols' simulators share, so a fault or a limit behaves the same whichever
//! protocol is spoken: one std `Mutex` (held only for a few map operations, never across an
//! await) over the task table, stats, random draws, per-key request counts and the state file,
//! with each protocol's own records beside them; the key check, the `--p502`, `--p429-query`,
//! `--rps-limit`, failure and lost-answer draws; request ids; the stats route.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::SimConfig;
use super::shape::BAD_GATEWAY_HTML;
use super::stats::{Outcome, Route, Stats};
use super::task::{FAIL_MARKER, Failure, TaskBook};

/// One simulator's state; `P` is what its protocol keeps per task beside the shared table.
pub struct Core<P> {
    pub config: SimConfig,
    /// `http://127.0.0.1:<port>`, for result URLs.
    pub base_url: String,
    requests: AtomicU64,
    started: Instant,
    /// Four hex digits in every request id, telling the protocols' ids apart.
    tag: &'static str,
    inner: Mutex<Shared<P>>,
}

/// The state behind the lock.
pub struct Shared<P> {
    pub rng: fastrand::Rng,
    pub book: TaskBook,
    pub stats: Stats,
    /// Per key: the second (since the simulator started) and the requests let through in it.
    rps: HashMap<String, (u64, u32)>,
    /// Where created tasks are appended (`SimConfig::state`).
    pub state: Option<std::fs::File>,
    pub protocol: P,
}

impl<P> Core<P> {
    pub fn assemble(
        config: SimConfig,
        addr: SocketAddr,
        tag: &'static str,
        book: TaskBook,
        state: Option<std::fs::File>,
        protocol: P,
    ) -> Self {
        Core {
            inner: Mutex::new(Shared {
                rng: fastrand::Rng::with_seed(config.seed),
                book,
                stats: Stats::default(),
                rps: HashMap::new(),
                state,
                protocol,
            }),
            config,
            base_url: format!("http://{addr}"),
            requests: AtomicU64::new(0),
            started: Instant::now(),
            tag,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Shared<P>> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The stats document of `GET /__sim/stats`.
    pub fn stats(&self, with_tasks: bool) -> Value {
        let inner = self.lock();
        serde_json::to_value(
            inner
                .stats
                .document(&inner.book, Instant::now(), with_tasks),
        )
        .unwrap_or(Value::Null)
    }

    /// The same document as JSON text, written without an intermediate tree.
    pub fn stats_text(&self, with_tasks: bool) -> String {
        let inner = self.lock();
        serde_json::to_string(
            &inner
                .stats
                .document(&inner.book, Instant::now(), with_tasks),
        )
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn record(&self, route: Route, outcome: Outcome) {
        self.lock().stats.record(route, outcome);
    }

    pub fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:08x}-{}-4000-8000-{n:012x}",
            self.config.seed as u32, self.tag
        )
    }

    /// The `--p502` draw, taken before anything else is looked at: `Some(html)` when this
    /// request is answered 502 (recorded), as nginx's page or as the protocol's JSON.
    pub fn bad_gateway(&self, route: Route) -> Option<bool> {
        if self.config.p502 <= 0.0 {
            return None;
        }
        let mut inner = self.lock();
        if inner.rng.f64() >= self.config.p502 {
            return None;
        }
        inner.stats.record(route, Outcome::Status(502));
        Some(inner.rng.bool())
    }

    /// The `--p429-query` draw for a task query, recorded: true when it is refused.
    pub fn query_refused(&self) -> bool {
        if self.config.p429_query <= 0.0 {
            return false;
        }
        let mut inner = self.lock();
        if inner.rng.f64() >= self.config.p429_query {
            return false;
        }
        inner.stats.record(Route::Query, Outcome::Status(429));
        true
    }

    /// The bearer key, if it is acceptable (`--key` or one of `account_keys`, or any non-empty
    /// key without `--key`).
    pub fn bearer<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let key = value.strip_prefix("Bearer ")?.trim();
        if key.is_empty() {
            return None;
        }
        match &self.config.key {
            Some(expected)
                if expected != key && !self.config.account_keys.iter().any(|k| k == key) =>
            {
                None
            }
            _ => Some(key),
        }
    }

    /// The `--rps-limit` check: true (a 429 recorded) once `key` has made its allowance of
    /// requests in this second.
    pub fn over_rps(&self, key: &str, route: Route) -> bool {
        let Some(limit) = self.config.rps_limit else {
            return false;
        };
        let second = self.started.elapsed().as_secs();
        let mut inner = self.lock();
        if take_rps(&mut inner.rps, key, second, limit) {
            return false;
        }
        inner.stats.record(route, Outcome::Status(429));
        true
    }
}

impl<P> Shared<P> {
    /// The failure a new task will end in: moderation for a prompt with [`FAIL_MARKER`], else
    /// the `--fail-rate` draw.
    pub fn draw_failure(&mut self, config: &SimConfig, prompt: &str) -> Option<Failure> {
        if prompt.contains(FAIL_MARKER) {
            Some(Failure::Moderation)
        } else if config.fail_rate > 0.0 && self.rng.f64() < config.fail_rate {
            Some(Failure::Random)
        } else {
            None
        }
    }

    /// The `--p-lost` draw for an accepted submit, recorded: true when its answer is lost.
    pub fn draw_lost(&mut self, config: &SimConfig) -> bool {
        let lost = config.p_lost > 0.0 && self.rng.f64() < config.p_lost;
        let outcome = if lost {
            Outcome::Lost
        } else {
            Outcome::Status(200)
        };
        self.stats.record(Route::Submit, outcome);
        lost
    }
}

/// Counts one request of `key` in `second` against `limit`; false once the allowance is spent.
pub fn take_rps(
    seen: &mut HashMap<String, (u64, u32)>,
    key: &str,
    second: u64,
    limit: u32,
) -> bool {
    let (at, count) = seen.entry(key.to_owned()).or_insert((second, 0));
    if *at != second {
        (*at, *count) = (second, 0);
    }
    if *count < limit {
        *count += 1;
        true
    } else {
        false
    }
}

/// nginx's 502 page.
pub fn bad_gateway_page() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html")],
        BAD_GATEWAY_HTML,
    )
        .into_response()
}

/// `GET /__sim/stats` (`?summary=1` leaves the task list out).
pub async fn stats_route<P>(
    State(sim): State<Arc<Core<P>>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let summary = params
        .get("summary")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
    (
        [(header::CONTENT_TYPE, "application/json")],
        sim.stats_text(!summary),
    )
        .into_response()
}
