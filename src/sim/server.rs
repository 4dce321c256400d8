//! The gateway's HTTP routes over the shared [`Core`](super::common) (one std `Mutex` held only
//! for a few map operations, never across an await, so thousands of requests per second cost
//! next to nothing).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::SimConfig;
use super::common::{Core, Shared, bad_gateway_page, stats_route};
use super::rules;
use super::shape::{self, TaskView};
use super::stats::{Outcome, Route, Stats};
use super::task::{NewTask, Phase, TaskBook};
use super::video;

/// The response header that names the task a download belongs to.
pub const TASK_ID_HEADER: &str = "x-sim-task-id";

/// The gateway simulator's state: the shared core, nothing of its own beside the table.
pub type Sim = Core<()>;

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
        Core::assemble(config, addr, "5137", book, state, ())
    }

    /// The `--p502` answer: nginx's page or the gateway's JSON.
    fn gateway_error(&self, route: Route) -> Option<Response> {
        let html = self.bad_gateway(route)?;
        Some(if html {
            bad_gateway_page()
        } else {
            json(StatusCode::BAD_GATEWAY, &shape::bad_gateway())
        })
    }

    /// The `--rps-limit` answer: a 429 with `Retry-After: 1`.
    fn rps_refusal(&self, key: &str, route: Route) -> Option<Response> {
        if !self.over_rps(key, route) {
            return None;
        }
        let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        Some(response)
    }

    /// The key, or the 401 or the `--rps-limit` 429 the gateway answers.
    fn admit<'h>(&self, route: Route, headers: &'h HeaderMap) -> Result<&'h str, Box<Response>> {
        let Some(key) = self.bearer(headers) else {
            self.record(route, Outcome::Status(401));
            let refusal = json(StatusCode::UNAUTHORIZED, &shape::unauthorized());
            return Err(Box::new(refusal));
        };
        match self.rps_refusal(key, route) {
            Some(response) => Err(Box::new(response)),
            None => Ok(key),
        }
    }

    fn gen_time(&self, rng: &mut fastrand::Rng) -> Duration {
        draw_gen_time(&self.config, rng)
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
        .route("/__sim/stats", get(stats_route))
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
    if let Some(response) = sim.gateway_error(Route::Submit) {
        return response;
    }
    let key = match sim.admit(Route::Submit, &headers) {
        Ok(key) => key,
        Err(response) => return *response,
    };
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
        let retry_after = inner.rng.f64() < config.p_retry_after;
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

    let failure = inner.draw_failure(config, &accepted.prompt);
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
    let Shared { book, state, .. } = &mut *inner;
    super::persist::record(state.as_mut(), book, &id, key, None);
    let lost = inner.draw_lost(config);
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
    if let Some(response) = sim.gateway_error(Route::Query) {
        return response;
    }
    let key = match sim.admit(Route::Query, &headers) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    if sim.query_refused() {
        let retry_after = sim.lock().rng.f64() < sim.config.p_retry_after;
        let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
        if retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
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
    let Shared { book, stats, .. } = &mut *inner;
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
