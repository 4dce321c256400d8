//! The HTTP routes. All state sits behind one std `Mutex` held only for a few map operations
//! (never across an await), so thousands of requests per second cost next to nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::SimConfig;
use super::rules;
use super::shape::{self, TaskView};
use super::stats::{Outcome, Route, Stats};
use super::task::{FAIL_MARKER, Failure, NewTask, Phase, TaskBook};
use super::video;

/// The response header that names the task a download belongs to.
pub const TASK_ID_HEADER: &str = "x-sim-task-id";

/// The simulator's shared state.
pub struct Sim {
    config: SimConfig,
    base_url: String,
    requests: AtomicU64,
    inner: Mutex<Inner>,
    started: Instant,
}

struct Inner {
    rng: fastrand::Rng,
    book: TaskBook,
    stats: Stats,
    /// Per key: the second (since the simulator started) and the requests let through in it.
    rps: HashMap<String, (u64, u32)>,
    /// Where created tasks are appended (`SimConfig::state`).
    state: Option<std::fs::File>,
}

impl Sim {
    pub fn new(config: SimConfig, addr: SocketAddr) -> Self {
        Sim::with_book(config, addr, TaskBook::default(), None)
    }

    /// A simulator over `book` (tasks reloaded from `state`), appending new tasks to `state`.
    pub fn with_book(
        config: SimConfig,
        addr: SocketAddr,
        book: TaskBook,
        state: Option<std::fs::File>,
    ) -> Self {
        let rng = fastrand::Rng::with_seed(config.seed);
        Sim {
            config,
            base_url: format!("http://{addr}"),
            requests: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                rng,
                book,
                stats: Stats::default(),
                rps: HashMap::new(),
                state,
            }),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
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

    fn record(&self, route: Route, outcome: Outcome) {
        self.lock().stats.record(route, outcome);
    }

    fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-5137-4000-8000-{n:012x}", self.config.seed as u32)
    }

    /// The `--p502` draw, taken before anything else is looked at.
    fn bad_gateway(&self, route: Route) -> Option<Response> {
        if self.config.p502 <= 0.0 {
            return None;
        }
        let mut inner = self.lock();
        if inner.rng.f64() >= self.config.p502 {
            return None;
        }
        inner.stats.record(route, Outcome::Status(502));
        let html = inner.rng.bool();
        drop(inner);
        Some(if html {
            (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/html")],
                shape::BAD_GATEWAY_HTML,
            )
                .into_response()
        } else {
            json(StatusCode::BAD_GATEWAY, &shape::bad_gateway())
        })
    }

    /// The bearer key, if it is acceptable.
    fn authorize<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let key = value.strip_prefix("Bearer ")?.trim();
        if key.is_empty() {
            return None;
        }
        match &self.config.key {
            Some(expected) if expected != key => None,
            _ => Some(key),
        }
    }

    /// The `--rps-limit` check: a 429 (with `Retry-After: 1`) once `key` has made its allowance
    /// of requests in this second.
    fn over_rps(&self, key: &str, route: Route) -> Option<Response> {
        let limit = self.config.rps_limit?;
        let second = self.started.elapsed().as_secs();
        let mut inner = self.lock();
        if take_rps(&mut inner.rps, key, second, limit) {
            return None;
        }
        inner.stats.record(route, Outcome::Status(429));
        drop(inner);
        let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        Some(response)
    }

    fn unauthorized(&self, route: Route) -> Response {
        self.record(route, Outcome::Status(401));
        json(StatusCode::UNAUTHORIZED, &shape::unauthorized())
    }

    fn gen_time(&self, rng: &mut fastrand::Rng) -> Duration {
        draw_gen_time(&self.config, rng)
    }
}

/// Counts one request of `key` in `second` against `limit`; false once the allowance is spent.
pub(super) fn take_rps(
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

/// A task's generation time: `gen_time` spread by `jitter`.
pub(super) fn draw_gen_time(config: &SimConfig, rng: &mut fastrand::Rng) -> Duration {
    let base = config.gen_time.as_secs_f64();
    let jitter = config.jitter.clamp(0.0, 1.0);
    let factor = 1.0 + jitter * (2.0 * rng.f64() - 1.0);
    Duration::from_secs_f64((base * factor).max(0.0))
}

/// The routes, over shared state.
pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/v1/video/generations", post(submit))
        .route("/v1/video/generations/{task_id}", get(query))
        .route("/files/{file}", get(download))
        .route("/__sim/stats", get(stats))
        .fallback(unknown_route)
        .with_state(sim)
}

pub(super) fn json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn submit(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = sim.bad_gateway(Route::Submit) {
        return response;
    }
    let Some(key) = sim.authorize(&headers) else {
        return sim.unauthorized(Route::Submit);
    };
    if let Some(response) = sim.over_rps(key, Route::Submit) {
        return response;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let accepted = match rules::check_content_type(content_type).and_then(|()| rules::check(&body))
    {
        Ok(accepted) => accepted,
        Err(violation) => {
            sim.record(Route::Submit, Outcome::Status(400));
            return json(
                StatusCode::BAD_REQUEST,
                &shape::invalid(&violation, &sim.request_id()),
            );
        }
    };

    let now = Instant::now();
    let config = &sim.config;
    let mut inner = sim.lock();
    if let Some(limit) = config.rate_limit
        && inner.book.in_flight(key, now) >= limit
    {
        inner.stats.record(Route::Submit, Outcome::Status(429));
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    if config.p429 > 0.0 && inner.rng.f64() < config.p429 {
        inner.stats.record(Route::Submit, Outcome::Status(429));
        let variant = inner.rng.u32(..);
        let retry_after = inner.rng.bool();
        drop(inner);
        let mut response = match shape::rate_limited(variant, &sim.request_id()) {
            Some(body) => json(StatusCode::TOO_MANY_REQUESTS, &body),
            None => StatusCode::TOO_MANY_REQUESTS.into_response(),
        };
        if retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        return response;
    }

    let failure = if accepted.prompt.contains(FAIL_MARKER) {
        Some(Failure::Moderation)
    } else if config.fail_rate > 0.0 && inner.rng.f64() < config.fail_rate {
        Some(Failure::Random)
    } else {
        None
    };
    let gen_time = sim.gen_time(&mut inner.rng);
    let token = inner.rng.u64(..);
    let created_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let model = accepted.model;
    let id = inner.book.create(
        NewTask {
            key: key.to_owned(),
            model,
            seed: accepted.seed,
            prompt: accepted.prompt,
            gen_time,
            failure,
            token,
            created_unix,
        },
        now,
    );
    let Inner { book, state, .. } = &mut *inner;
    super::persist::record(state.as_mut(), book, &id, key, None);
    let lost = config.p_lost > 0.0 && inner.rng.f64() < config.p_lost;
    let outcome = if lost {
        Outcome::Lost
    } else {
        Outcome::Status(200)
    };
    inner.stats.record(Route::Submit, outcome);
    drop(inner);

    if lost {
        lost_response()
    } else {
        json(
            StatusCode::OK,
            &shape::submit(config.shape, &id, model, created_unix),
        )
    }
}

/// A response whose body fails before its first byte: hyper aborts the connection, so the
/// client never learns the task id although the task exists.
pub(super) fn lost_response() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other(
            "response lost (simulated by --p-lost)",
        ))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(failing),
    )
        .into_response()
}

async fn query(
    State(sim): State<Arc<Sim>>,
    Path(task_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = sim.bad_gateway(Route::Query) {
        return response;
    }
    let Some(key) = sim.authorize(&headers) else {
        return sim.unauthorized(Route::Query);
    };
    if let Some(response) = sim.over_rps(key, Route::Query) {
        return response;
    }
    let now = Instant::now();
    let mut inner = sim.lock();
    let body = match inner.book.get_for_key(&task_id, key) {
        None => None,
        Some(task) => {
            let phase = task.phase_at(now);
            let view = TaskView {
                id: &task_id,
                model: task.model,
                phase,
                progress: task.progress_at(now),
                url: (phase == Phase::Succeeded)
                    .then(|| format!("{}{}", sim.base_url, video::path(&task_id))),
                failure: task.failure,
            };
            Some(shape::query(sim.config.shape, &view))
        }
    };
    let status = if body.is_some() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    inner
        .stats
        .record(Route::Query, Outcome::Status(status.as_u16()));
    drop(inner);
    json(
        status,
        &body.unwrap_or_else(|| shape::task_not_exist(&task_id)),
    )
}

async fn download(State(sim): State<Arc<Sim>>, Path(file): Path<String>) -> Response {
    let mut inner = sim.lock();
    let Inner { book, stats, .. } = &mut *inner;
    file_response(book, stats, &file, sim.config.url_ttl)
}

/// A result download (`/files/{task_id}.mp4`): the clip while the URL lives, the object
/// store's XML errors after (403) or before success (404). Shared by both protocols.
pub(super) fn file_response(
    book: &TaskBook,
    stats: &mut Stats,
    file: &str,
    url_ttl: Duration,
) -> Response {
    let now = Instant::now();
    let task_id = file.strip_suffix(".mp4").unwrap_or(file);
    let status = match book.get(task_id) {
        Some(task) if task.phase_at(now) == Phase::Succeeded => {
            if now > task.finished_at() + url_ttl {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::OK
            }
        }
        _ => StatusCode::NOT_FOUND,
    };
    stats.record(Route::Download, Outcome::Status(status.as_u16()));
    let xml = [(header::CONTENT_TYPE, "application/xml")];
    match status {
        StatusCode::OK => {
            let mut response = (
                [(header::CONTENT_TYPE, video::CONTENT_TYPE)],
                Body::from(Bytes::from_static(video::CLIP)),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(task_id) {
                response.headers_mut().insert(TASK_ID_HEADER, value);
            }
            response
        }
        StatusCode::FORBIDDEN => (status, xml, shape::EXPIRED_XML).into_response(),
        _ => (status, xml, shape::NO_SUCH_KEY_XML).into_response(),
    }
}

async fn stats(
    State(sim): State<Arc<Sim>>,
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

async fn unknown_route(State(sim): State<Arc<Sim>>, method: Method, uri: Uri) -> Response {
    sim.record(Route::Other, Outcome::Status(404));
    json(
        StatusCode::NOT_FOUND,
        &shape::unknown_route(method.as_str(), uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_generation_times_around_gen_time() {
        let sim = Sim::new(
            SimConfig {
                gen_time: Duration::from_secs(10),
                jitter: 0.5,
                ..SimConfig::default()
            },
            SocketAddr::from(([127, 0, 0, 1], 1)),
        );
        let mut rng = fastrand::Rng::with_seed(1);
        let times: Vec<Duration> = (0..200).map(|_| sim.gen_time(&mut rng)).collect();
        let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
        assert!(*min >= Duration::from_secs(5) && *max <= Duration::from_secs(15));
        assert!(*min < Duration::from_secs(7) && *max > Duration::from_secs(13));
    }

    #[test]
    fn no_jitter_means_exactly_gen_time() {
        let sim = Sim::new(
            SimConfig {
                gen_time: Duration::from_millis(1500),
                ..SimConfig::default()
            },
            SocketAddr::from(([127, 0, 0, 1], 1)),
        );
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(sim.gen_time(&mut rng), Duration::from_millis(1500));
    }
}
