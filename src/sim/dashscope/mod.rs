//! The simulator's second protocol: Alibaba DashScope's native API (`--provider dashscope`).
//! It shares the gateway simulator's task table, clock, faults, stats and video serving, and
//! has its own routes, body [`rules`], statuses and error shapes, so a native client is tested
//! against what Alibaba documents rather than against the gateway's forms.

pub mod rules;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::SimConfig;
use super::common::{Core, Shared, bad_gateway_page, stats_route};
use super::server::{draw_gen_time, file_response, json, lost_response};
use super::stats::{Outcome, Route};
use super::task::{NewTask, Phase, Task, TaskBook};
use super::video;
use rules::NativeModel;

/// The create path, under the base URL.
pub const CREATE_PATH: &str = "/api/v1/services/aigc/video-generation/video-synthesis";
/// The task query and list path.
pub const TASKS_PATH: &str = "/api/v1/tasks";
/// Seconds the simulator pretends an input video lasts (it never fetches media).
pub const INPUT_VIDEO_SECONDS: f64 = 5.02;
/// The widest list window DashScope accepts.
const MAX_WINDOW_MS: u64 = 24 * 3600 * 1000;
/// The zone of DashScope's wall-clock times (`submit_time`, list `start_time`): UTC+8.
const ZONE_OFFSET: Duration = Duration::from_secs(8 * 3600);
const MAX_PAGE_SIZE: u64 = 100;
/// What [`extended`] adds to a prompt.
pub const EXTEND_TAIL: &str = "Cinematic lighting, steady camera, rich detail.";

/// What the native protocol keeps per task beside the shared task table.
#[derive(Debug)]
pub struct Native {
    model: NativeModel,
    resolution: &'static str,
    duration: u32,
    ratio: Option<String>,
    has_input_video: bool,
    prompt_extend: bool,
    created_ms: u64,
    request_id: String,
    canceled: bool,
    /// The `api_key_id` of the key that made it.
    key_id: String,
}

/// [`Native`] as the state file holds it (`run --sim`: see [`super::persist`]); a cancel is
/// not kept.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedNative {
    model: String,
    resolution: String,
    duration: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ratio: Option<String>,
    has_input_video: bool,
    prompt_extend: bool,
    created_ms: u64,
    request_id: String,
    #[serde(default)]
    key_id: String,
}

impl Native {
    fn saved(&self) -> Option<Value> {
        serde_json::to_value(SavedNative {
            model: self.model.id().to_owned(),
            resolution: self.resolution.to_owned(),
            duration: self.duration,
            ratio: self.ratio.clone(),
            has_input_video: self.has_input_video,
            prompt_extend: self.prompt_extend,
            created_ms: self.created_ms,
            request_id: self.request_id.clone(),
            key_id: self.key_id.clone(),
        })
        .ok()
    }

    fn from_saved(saved: Value) -> Option<Native> {
        let s: SavedNative = serde_json::from_value(saved).ok()?;
        Some(Native {
            model: NativeModel::from_id(&s.model)?,
            resolution: if s.resolution == "720P" {
                "720P"
            } else {
                "1080P"
            },
            duration: s.duration,
            ratio: s.ratio,
            has_input_video: s.has_input_video,
            prompt_extend: s.prompt_extend,
            created_ms: s.created_ms,
            request_id: s.request_id,
            canceled: false,
            key_id: s.key_id,
        })
    }
}

/// The native simulator's state: the shared core with each task's [`Native`] record.
pub type Sim = Core<HashMap<String, Native>>;

impl Sim {
    pub fn new(config: SimConfig, addr: SocketAddr) -> Self {
        Sim::with_book(config, addr, TaskBook::default(), Vec::new(), None)
    }

    /// A simulator over `book` and the native records `saved` beside it (reloaded from
    /// `state`), appending new tasks to `state`. A task without its record is left out.
    pub fn with_book(
        config: SimConfig,
        addr: SocketAddr,
        book: TaskBook,
        saved: Vec<(String, Value)>,
        state: Option<std::fs::File>,
    ) -> Self {
        let native = saved
            .into_iter()
            .filter_map(|(id, record)| Some((id, Native::from_saved(record)?)))
            .collect();
        Core::assemble(config, addr, "da5c", book, state, native)
    }

    /// DashScope's error body, with `status` recorded.
    fn error(&self, route: Route, status: StatusCode, code: &str, message: &str) -> Response {
        self.record(route, Outcome::Status(status.as_u16()));
        self.error_body(status, code, message)
    }

    fn error_body(&self, status: StatusCode, code: &str, message: &str) -> Response {
        json(
            status,
            &json!({"request_id": self.request_id(), "code": code, "message": message}),
        )
    }

    /// The `--p502` answer: nginx's HTML page or DashScope's JSON, at random.
    fn gateway_error(&self, route: Route) -> Option<Response> {
        let html = self.bad_gateway(route)?;
        Some(if html {
            bad_gateway_page()
        } else {
            self.error_body(
                StatusCode::BAD_GATEWAY,
                "InternalError",
                "An internal error has occured, please try again later (simulated by --p502).",
            )
        })
    }

    /// The key, or the 401 or the `--rps-limit` 429 DashScope answers.
    fn admit<'h>(&self, route: Route, headers: &'h HeaderMap) -> Result<&'h str, Box<Response>> {
        let key = self.bearer(headers).ok_or_else(|| {
            Box::new(self.error(
                route,
                StatusCode::UNAUTHORIZED,
                "InvalidApiKey",
                "Invalid API-key provided.",
            ))
        })?;
        match self.rps_refusal(key, route) {
            Some(response) => Err(Box::new(response)),
            None => Ok(key),
        }
    }

    /// Whether `key` sees a task `key_id` made: DashScope shows an account's tasks to each of
    /// its keys ([`SimConfig::account_keys`]).
    fn sees(&self, key: &str, key_id: &str) -> bool {
        let account = || self.config.key.iter().chain(&self.config.account_keys);
        api_key_id(key) == key_id
            || (account().any(|k| k == key) && account().any(|k| api_key_id(k) == key_id))
    }

    /// The `--rps-limit` answer (DashScope's per-account queries-per-second budget, also
    /// applied to creates): 429 `Throttling.RateQuota`, no `Retry-After` (none is documented).
    fn rps_refusal(&self, key: &str, route: Route) -> Option<Response> {
        self.over_rps(key, route).then(|| {
            self.error_body(
                StatusCode::TOO_MANY_REQUESTS,
                "Throttling.RateQuota",
                "Requests rate limit exceeded, please try again later.",
            )
        })
    }

    /// The native status word of a task at `now`.
    fn status(task: &Task, native: &Native, now: Instant) -> &'static str {
        if native.canceled {
            return "CANCELED";
        }
        match task.phase_at(now) {
            Phase::Queued => "PENDING",
            Phase::InProgress => "RUNNING",
            Phase::Succeeded => "SUCCEEDED",
            Phase::Failed => "FAILED",
        }
    }
}

/// The native routes, over shared state. The list answers with and without a trailing slash.
pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(CREATE_PATH, post(create))
        .route(TASKS_PATH, get(list))
        .route("/api/v1/tasks/", get(list))
        .route("/api/v1/tasks/{task_id}", get(query))
        .route("/api/v1/tasks/{task_id}/cancel", post(cancel))
        .route("/files/{file}", get(download))
        .route("/__sim/stats", get(stats_route))
        .fallback(unknown_route)
        .with_state(sim)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Epoch milliseconds as DashScope's `YYYY-MM-DD HH:MM:SS.mmm` in UTC+8.
pub fn wall_time(ms: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms) + ZONE_OFFSET;
    let text = humantime::format_rfc3339_millis(at).to_string();
    text.trim_end_matches('Z').replacen('T', " ", 1)
}

/// A list window bound `YYYYMMDDhhmmss` (UTC+8) as epoch milliseconds.
pub fn parse_window(text: &str) -> Option<u64> {
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[8..10],
        &text[10..12],
        &text[12..14]
    );
    let at = humantime::parse_rfc3339(&rfc).ok()?;
    let ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    ms.checked_sub(ZONE_OFFSET.as_millis() as u64)
}

async fn create(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = sim.gateway_error(Route::Submit) {
        return response;
    }
    let key = match sim.admit(Route::Submit, &headers) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let asynchronous = headers
        .get("x-dashscope-async")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("enable"));
    if !asynchronous {
        return sim.error(
            Route::Submit,
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "current user api does not support synchronous calls",
        );
    }
    let accepted = match rules::check(&body) {
        Ok(accepted) => accepted,
        Err(refusal) => {
            return sim.error(
                Route::Submit,
                StatusCode::BAD_REQUEST,
                refusal.code,
                &refusal.message,
            );
        }
    };

    let now = Instant::now();
    let config = &sim.config;
    let mut inner = sim.lock();
    let over_limit = config
        .rate_limit
        .is_some_and(|limit| inner.book.in_flight(key, now) >= limit);
    if over_limit || (config.p429 > 0.0 && inner.rng.f64() < config.p429) {
        let (code, message) = match inner.rng.u32(..) % 3 {
            0 => ("Throttling", "Requests throttling triggered."),
            1 => (
                "Throttling.RateQuota",
                "Requests rate limit exceeded, please try again later.",
            ),
            _ => (
                "Throttling.AllocationQuota",
                "Request rate increased too quickly, please slow down.",
            ),
        };
        drop(inner);
        return sim.error(Route::Submit, StatusCode::TOO_MANY_REQUESTS, code, message);
    }

    let failure = inner.draw_failure(config, &accepted.prompt);
    let gen_time = draw_gen_time(config, &mut inner.rng);
    let token = inner.rng.u64(..);
    let created_ms = now_ms();
    // The shared table holds gateway models; the native id lives in `Native`. A videoedit
    // task is filed as r2v there (only the stats task list shows that id).
    let book_model = match accepted.model {
        NativeModel::T2v => super::rules::Model::T2v,
        NativeModel::I2v => super::rules::Model::I2v,
        NativeModel::R2v | NativeModel::VideoEdit => super::rules::Model::R2v,
    };
    let id = inner.book.create(
        NewTask {
            key: key.to_owned(),
            model: book_model,
            seed: accepted.seed,
            prompt: accepted.prompt,
            gen_time,
            failure,
            token,
            created_unix: created_ms / 1000,
        },
        now,
    );
    drop(inner);
    let request_id = sim.request_id();
    let native = Native {
        model: accepted.model,
        resolution: accepted.resolution,
        duration: accepted.duration,
        ratio: accepted.ratio,
        has_input_video: accepted.has_input_video,
        prompt_extend: accepted.prompt_extend,
        created_ms,
        request_id: request_id.clone(),
        canceled: false,
        key_id: api_key_id(key),
    };
    let mut inner = sim.lock();
    let Shared { book, state, .. } = &mut *inner;
    super::persist::record(state.as_mut(), book, &id, key, native.saved());
    inner.protocol.insert(id.clone(), native);
    let lost = inner.draw_lost(config);
    drop(inner);
    if lost {
        return lost_response();
    }
    json(
        StatusCode::OK,
        &json!({"request_id": request_id,
                "output": {"task_id": id, "task_status": "PENDING"}}),
    )
}

/// The query's `output` and `usage` for a task.
fn query_body(sim: &Sim, id: &str, task: &Task, native: &Native, now: Instant) -> Value {
    let status = Sim::status(task, native, now);
    let gen_ms = task.gen_time.as_millis() as u64;
    let mut output = json!({
        "task_id": id,
        "task_status": status,
        "submit_time": wall_time(native.created_ms),
    });
    if status != "PENDING" && !native.canceled {
        output["scheduled_time"] = json!(wall_time(native.created_ms + gen_ms / 3));
    }
    let mut body = json!({"request_id": sim.request_id()});
    match status {
        "SUCCEEDED" => {
            output["end_time"] = json!(wall_time(native.created_ms + gen_ms));
            output["orig_prompt"] = json!(task.prompt.as_ref());
            if native.prompt_extend {
                output["actual_prompt"] = json!(extended(&task.prompt));
            }
            output["video_url"] = json!(format!("{}{}", sim.base_url, video::path(id)));
            let input = if native.has_input_video {
                INPUT_VIDEO_SECONDS
            } else {
                0.0
            };
            let out = match (native.model, native.duration) {
                (NativeModel::VideoEdit, 0) => INPUT_VIDEO_SECONDS,
                (_, d) => f64::from(d),
            };
            let mut usage = json!({
                "duration": input + out,
                "input_video_duration": input,
                "output_video_duration": out,
                "video_count": 1,
                "SR": if native.resolution == "720P" { 720 } else { 1080 },
            });
            if native.model == NativeModel::R2v {
                usage["ratio"] = json!(native.ratio.as_deref().unwrap_or("16:9"));
            }
            body["usage"] = usage;
        }
        "FAILED" => {
            output["end_time"] = json!(wall_time(native.created_ms + gen_ms));
            if let Some(f) = task.failure {
                output["code"] = json!(f.code());
                output["message"] = json!(f.message());
            }
        }
        "CANCELED" => output["end_time"] = json!(wall_time(native.created_ms)),
        _ => {}
    }
    body["output"] = output;
    body
}

/// The simulator's prompt rewriting under `prompt_extend`: the prompt with a fixed tail.
pub fn extended(prompt: &str) -> String {
    format!("{prompt} {EXTEND_TAIL}")
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
        return sim.error_body(
            StatusCode::TOO_MANY_REQUESTS,
            "Throttling",
            "Requests throttling triggered.",
        );
    }
    let now = Instant::now();
    let mut inner = sim.lock();
    let found = (inner.book.get(&task_id))
        .zip(inner.protocol.get(&task_id))
        .filter(|(_, native)| sim.sees(key, &native.key_id));
    let body = match found {
        Some((task, native)) => query_body(&sim, &task_id, task, native, now),
        None => json!({"request_id": sim.request_id(),
                       "output": {"task_id": task_id, "task_status": "UNKNOWN"}}),
    };
    inner.stats.record(Route::Query, Outcome::Status(200));
    drop(inner);
    json(StatusCode::OK, &body)
}

async fn cancel(
    State(sim): State<Arc<Sim>>,
    Path(task_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let key = match sim.admit(Route::Cancel, &headers) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let now = Instant::now();
    let mut inner = sim.lock();
    let pending = inner
        .book
        .get_for_key(&task_id, key)
        .is_some_and(|t| t.phase_at(now) == Phase::Queued);
    let canceled = match inner.protocol.get_mut(&task_id) {
        Some(native) if pending && !native.canceled => {
            native.canceled = true;
            true
        }
        _ => false,
    };
    drop(inner);
    if !canceled {
        return sim.error(
            Route::Cancel,
            StatusCode::BAD_REQUEST,
            "UnsupportedOperation",
            "Failed to cancel the task, please confirm if the task is in PENDING status.",
        );
    }
    sim.lock().stats.record(Route::Cancel, Outcome::Status(200));
    json(StatusCode::OK, &json!({"request_id": sim.request_id()}))
}

async fn list(
    State(sim): State<Arc<Sim>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = sim.gateway_error(Route::List) {
        return response;
    }
    let key = match sim.admit(Route::List, &headers) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let refuse = |message: String| {
        sim.error(
            Route::List,
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            &message,
        )
    };
    let bound = |name: &str| match params.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse_window(v)
            .map(Some)
            .ok_or_else(|| format!("{name} {v:?} is not YYYYMMDDhhmmss")),
    };
    let (start, end) = match (bound("start_time"), bound("end_time")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(m), _) | (_, Err(m)) => return refuse(m),
    };
    let end = end.map_or_else(now_ms, |e| e + 999);
    let start = start.unwrap_or_else(|| end.saturating_sub(MAX_WINDOW_MS));
    if end < start || end - start > MAX_WINDOW_MS + 999 {
        return refuse("the window from start_time to end_time must be 0 to 24 hours".into());
    }
    let number = |name: &str, default: u64| match params.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{name} {v:?} must be a positive integer")),
    };
    let (page_no, page_size) = match (number("page_no", 1), number("page_size", 10)) {
        (Ok(n), Ok(s)) if s <= MAX_PAGE_SIZE => (n, s),
        (Ok(_), Ok(s)) => return refuse(format!("page_size {s} is above {MAX_PAGE_SIZE}")),
        (Err(m), _) | (_, Err(m)) => return refuse(m),
    };
    let now = Instant::now();
    let mut inner = sim.lock();
    let mut rows: Vec<(u64, Value)> = Vec::new();
    for (id, task) in inner.book.tasks() {
        let Some(native) = inner.protocol.get(&id) else {
            continue;
        };
        if !sim.sees(key, &native.key_id) || native.created_ms < start || native.created_ms > end {
            continue;
        }
        let status = Sim::status(task, native, now);
        let keep = params
            .get("model_name")
            .is_none_or(|m| m == native.model.id())
            && params.get("status").is_none_or(|s| s == status)
            && params.get("task_id").is_none_or(|t| *t == id);
        if !keep {
            continue;
        }
        let gen_ms = task.gen_time.as_millis() as u64;
        let mut item = json!({
            "task_id": id,
            "status": status,
            "model_name": native.model.id(),
            "gmt_create": native.created_ms,
            "request_id": native.request_id,
            "api_key_id": native.key_id,
            "region": "ap-southeast-1",
        });
        if status != "PENDING" && !native.canceled {
            item["start_time"] = json!(native.created_ms + gen_ms / 3);
        }
        if matches!(status, "SUCCEEDED" | "FAILED") {
            item["end_time"] = json!(native.created_ms + gen_ms);
        }
        rows.push((native.created_ms, item));
    }
    inner.stats.record(Route::List, Outcome::Status(200));
    drop(inner);
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    let total = rows.len() as u64;
    let data: Vec<Value> = rows
        .into_iter()
        .skip(((page_no - 1) * page_size) as usize)
        .take(page_size as usize)
        .map(|(_, item)| item)
        .collect();
    json(
        StatusCode::OK,
        &json!({
            "request_id": sim.request_id(),
            "total": total,
            "total_page": total.div_ceil(page_size),
            "page_no": page_no,
            "page_size": page_size,
            "data": data,
        }),
    )
}

/// A stable, non-secret id for a key (the list's `api_key_id`).
fn api_key_id(key: &str) -> String {
    let digest = blake3::hash(key.as_bytes());
    format!("sim-{}", &digest.to_hex()[..12])
}

async fn download(State(sim): State<Arc<Sim>>, Path(file): Path<String>) -> Response {
    let mut inner = sim.lock();
    let Shared {
        book,
        stats,
        protocol: native,
        ..
    } = &mut *inner;
    let task_id = file.strip_suffix(".mp4").unwrap_or(&file);
    if native.get(task_id).is_some_and(|n| n.canceled) {
        return file_response(book, stats, "", sim.config.url_ttl);
    }
    file_response(book, stats, &file, sim.config.url_ttl)
}

async fn unknown_route(State(sim): State<Arc<Sim>>, method: Method, uri: Uri) -> Response {
    let mut response = sim.error(
        Route::Other,
        StatusCode::NOT_FOUND,
        "InvalidURL",
        &format!(
            "Invalid URL ({method} {}): no such DashScope route",
            uri.path()
        ),
    );
    response
        .headers_mut()
        .insert("x-sim-provider", HeaderValue::from_static("dashscope"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_are_utc_plus_8_and_windows_round_trip() {
        assert_eq!(wall_time(0), "1970-01-01 08:00:00.000");
        assert_eq!(parse_window("19700101080001"), Some(1000));
        assert_eq!(parse_window("2026-11-24"), None);
        assert_eq!(parse_window("20261399000000"), None);
    }
}
