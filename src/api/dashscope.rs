//! Alibaba DashScope's native API, beside the gateway's (`api::gravitex`): the planner's request (the
//! gateway form, see `plan::body`) encoded as `{model, input, parameters}` with native model
//! ids, the native headers and region base URLs, and answers folded into the same
//! [`TaskState`]/[`ApiError`] the executor already handles. Talking to Alibaba directly keeps
//! `prompt_extend: false`, `watermark: false` and `seed: 0`, which gateways of this family drop,
//! and brings the task list, with which a submit whose answer was lost can be found again.
//!
//! Differences from the gateway that change policy: a 5xx on create is `Ambiguous` (a task may
//! exist: reconcile with [`DashScopeClient::list`] before re-sending), and `Arrearage` (account
//! overdue) is `Auth` so the whole run stops.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::download::Downloader;
use super::error_body::{parse_retry_after, reason, shorten};
use super::http::{
    Call, Endpoint, Refusal, exchange, http_client, pooled, setup, unreadable_submit,
};
use super::provider::{Auth, Capabilities, Connect, KeyPlace, Provider, Requests, Speaker, Timing};
pub use super::task_list::{
    ListQuery, ListedTask, MAX_PAGE_SIZE, MAX_PAGES, TaskDetail as NativeTask, TaskList, TaskPage,
    now_ms,
};
use super::{
    ApiError, ApiKey, DownloadLimits, Downloaded, Submitted, TaskExtras, TaskState, TaskStatus,
};
use crate::plan::model;

/// DashScope's particulars for the executor (`Client::for_provider`). `tasks_path` is the
/// query path; creates go to [`CREATE_PATH`]. Alibaba suggests polling every 15 s.
pub const PROVIDER: Provider = Provider {
    id: "dashscope",
    name: "DashScope",
    default_base_url: "https://dashscope-intl.aliyuncs.com",
    base_url_help: "`--base-url` or `[api] base_url` should be a DashScope root (or leave it \
                    unset and set `[api] region`): singapore https://dashscope-intl.aliyuncs.com, \
                    virginia https://dashscope-us.aliyuncs.com, beijing https://dashscope.aliyuncs.com",
    // `GRAVITEX_BASE_URL` is the gateway's: an exported simulator URL must not take a
    // DashScope key elsewhere.
    base_url_env: None,
    region_url: Some(region_url),
    key_env: "DASHSCOPE_API_KEY",
    key_hint: Some(key_hint),
    tasks_path: TASKS_PATH,
    base_suffix: "/api/v1",
    auth: Auth::Bearer,
    media_pointer: "/metadata/input/media",
    timing: Timing {
        poll_first: Duration::from_secs(5),
        poll_max: Duration::from_secs(15),
        task_ttl: Duration::from_secs(24 * 3600),
        url_ttl: Duration::from_secs(24 * 3600),
        feed_ttl: Duration::from_secs(23 * 3600),
    },
    // Create, query, list and cancel share 20 per second per account (all keys together).
    requests: Requests {
        per_second: QUERIES_PER_SECOND,
        per_account: true,
        submits_share: true,
    },
    billed_in,
    model_id: native_model,
    encode: Some(encode),
    capabilities: Capabilities { task_list: true },
    connect,
};

/// [`Provider::region_url`]: `[api] region`'s base URL.
fn region_url(name: &str) -> Option<&'static str> {
    Region::from_name(name).map(Region::base_url)
}

/// [`Provider::billed_in`]: Beijing bills in CNY, the international regions in USD.
fn billed_in(region: Option<&str>) -> Option<&'static str> {
    match Region::from_name(region?)? {
        Region::Beijing => Some("CNY"),
        Region::Singapore | Region::Virginia => Some("USD"),
    }
}

/// [`Provider::key_hint`]: [`refused_key_hint`] for the configured region.
fn key_hint(place: &KeyPlace) -> String {
    let region = place.region.and_then(Region::from_name).unwrap_or_default();
    refused_key_hint(place.key_from, region, place.base_given)
}

/// [`Provider::connect`].
fn connect(_: &Provider, c: Connect) -> Result<Arc<dyn Speaker>, ApiError> {
    Ok(Arc::new(DashScopeClient::new(DashScopeConfig {
        region: Region::default(),
        base_url: Some(c.base),
        api_key: c.key,
        workspace: c.workspace,
        timeout: c.timeout,
    })?))
}

/// The create path under the base URL.
pub const CREATE_PATH: &str = "/api/v1/services/aigc/video-generation/video-synthesis";
/// The task query and list path under the base URL.
pub const TASKS_PATH: &str = "/api/v1/tasks";
/// Queries, lists and cancels allowed per second per Alibaba account (all keys together).
pub const QUERIES_PER_SECOND: u32 = 20;
/// The zone of DashScope's wall-clock times: UTC+8.
const ZONE_OFFSET: Duration = Duration::from_secs(8 * 3600);

/// Where the key and models live; model, endpoint and key must share a region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    #[default]
    Singapore,
    Virginia,
    Beijing,
}

impl Region {
    pub fn base_url(self) -> &'static str {
        match self {
            Region::Singapore => "https://dashscope-intl.aliyuncs.com",
            Region::Virginia => "https://dashscope-us.aliyuncs.com",
            Region::Beijing => "https://dashscope.aliyuncs.com",
        }
    }

    /// The name `[api] region` takes.
    pub fn name(self) -> &'static str {
        match self {
            Region::Singapore => "singapore",
            Region::Virginia => "virginia",
            Region::Beijing => "beijing",
        }
    }

    pub fn from_name(name: &str) -> Option<Region> {
        match name.trim().to_ascii_lowercase().as_str() {
            "singapore" => Some(Region::Singapore),
            "virginia" => Some(Region::Virginia),
            "beijing" => Some(Region::Beijing),
            _ => None,
        }
    }
}

/// What to check when DashScope refuses a key (401 `InvalidApiKey`): a key works only in the
/// region it was made in. `key_from` says where the key was read (never the key); with
/// `base_given` the base URL came from `--base-url` or `[api] base_url`, not from `region`.
pub fn refused_key_hint(key_from: &str, region: Region, base_given: bool) -> String {
    let all = [Region::Singapore, Region::Virginia, Region::Beijing];
    let listed = |r: &Region| format!("{} {}", r.name(), r.base_url());
    let (here, others): (String, Vec<String>) = if base_given {
        (
            "the base URL from `--base-url` or `[api] base_url`".into(),
            all.iter().map(listed).collect(),
        )
    } else {
        (
            format!("region {} ({})", region.name(), region.base_url()),
            all.iter().filter(|r| **r != region).map(listed).collect(),
        )
    };
    format!(
        "the key from {key_from} is not valid at {here}; a DashScope key works only in the \
         region it was made in: if it belongs to another ({}), set `[api] region` in the \
         config or `--base-url` to that region's URL, else check the key",
        others.join(", ")
    )
}

/// The native model id for a planner model id (dated gateway ids map to undated native ones),
/// from the model's row.
pub fn native_model(id: &str) -> Option<&'static str> {
    model::by_native_or_id(id)?.native_id
}

/// The native body for a planner body: `metadata.input` and `metadata.parameters` become
/// `input` and `parameters` as they are (every `false` and `0` kept), the model id is mapped,
/// and the gateway's top-level `prompt`/`duration` copies are left out. A body still holding a
/// `shot:` reference (not yet resolved to a URL) or naming an unknown model is refused.
pub fn encode(body: &Value) -> Result<Value, ApiError> {
    let refuse = |message: String| ApiError::Permanent { status: 0, message };
    let model = body["model"].as_str().unwrap_or_default();
    let native = native_model(model).ok_or_else(|| {
        let known: Vec<&str> = model::MODELS.iter().filter_map(|m| m.native_id).collect();
        refuse(format!(
            "model {model:?} has no DashScope native id ({})",
            known.join(", ")
        ))
    })?;
    let metadata = &body["metadata"];
    let mut input = match &metadata["input"] {
        Value::Object(input) => input.clone(),
        _ => Map::new(),
    };
    if !input.contains_key("prompt")
        && let Some(prompt) = body.get("prompt")
    {
        input.insert("prompt".into(), prompt.clone());
    }
    if let Some(Value::Array(media)) = input.get("media")
        && let Some(i) = media.iter().position(|m| m.get("shot").is_some())
    {
        return Err(refuse(format!(
            "input.media[{i}] still names a shot; send it once that shot's video URL is known"
        )));
    }
    let mut parameters = match &metadata["parameters"] {
        Value::Object(p) => p.clone(),
        _ => Map::new(),
    };
    if !parameters.contains_key("duration")
        && let Some(d) = body.get("duration")
    {
        parameters.insert("duration".into(), d.clone());
    }
    Ok(json!({"model": native, "input": input, "parameters": parameters}))
}

/// How to reach DashScope.
#[derive(Debug, Clone)]
pub struct DashScopeConfig {
    pub region: Region,
    /// Overrides the region's base URL (e.g. a workspace domain, or the simulator).
    pub base_url: Option<String>,
    pub api_key: ApiKey,
    /// Sent as `X-DashScope-WorkSpace` when set.
    pub workspace: Option<String>,
    pub timeout: Duration,
}

/// The native client. Cheap to clone.
#[derive(Clone)]
pub struct DashScopeClient {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
    workspace: Option<String>,
    timeout: Duration,
    /// For [`DashScopeClient::download`] (result links carry no key).
    downloads: Downloader,
}

impl std::fmt::Debug for DashScopeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashScopeClient")
            .field("base", &self.base)
            .field("key", &self.key)
            .field("workspace", &self.workspace)
            .finish()
    }
}

impl DashScopeClient {
    /// Builds the client; a bad base URL, key or workspace id is `Permanent { status: 0 }`.
    /// A trailing `/` or `/api/v1` on the base URL is tolerated.
    pub fn new(config: DashScopeConfig) -> Result<DashScopeClient, ApiError> {
        let base_url = config
            .base_url
            .as_deref()
            .unwrap_or(config.region.base_url());
        let Endpoint { base, key, .. } =
            Endpoint::new(&PROVIDER, base_url, &config.api_key, config.timeout)?;
        if let Some(w) = &config.workspace
            && (w.is_empty()
                || !w
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(setup(format!(
                "workspace id {w:?} must be letters, digits, '-' or '_'"
            )));
        }
        // A redirected POST can turn into a GET; a redirect means a wrong base URL.
        let http = http_client(config.timeout, reqwest::redirect::Policy::none())?;
        let downloads = Downloader {
            http: pooled(config.timeout, format!("{base}{TASKS_PATH}"))?,
            key: key.clone(),
            limits: DownloadLimits::default(),
        };
        Ok(DashScopeClient {
            http,
            base,
            key,
            workspace: config.workspace,
            timeout: config.timeout,
            downloads,
        })
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `{base}{path}?params`.
    fn url(&self, path: &str, params: &[(&str, String)]) -> Result<reqwest::Url, ApiError> {
        let url = format!("{}{path}", self.base);
        let parsed = if params.is_empty() {
            reqwest::Url::parse(&url)
        } else {
            reqwest::Url::parse_with_params(&url, params)
        };
        parsed.map_err(|e| setup(format!("base URL {:?} is not a URL ({e})", self.base)))
    }

    fn request(&self, method: reqwest::Method, url: reqwest::Url) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.key.expose())
            .timeout(self.timeout);
        if let Some(w) = &self.workspace {
            request = request.header("X-DashScope-WorkSpace", w);
        }
        request
    }

    /// Encodes a planner body ([`encode`]) and creates its task.
    pub async fn submit(&self, body: &Value) -> Result<Submitted, ApiError> {
        self.submit_native(&encode(body)?).await
    }

    /// `POST {base}/api/v1/services/aigc/video-generation/video-synthesis` with
    /// `X-DashScope-Async: enable`. A 200 naming no task is `Ambiguous`.
    pub async fn submit_native(&self, native: &Value) -> Result<Submitted, ApiError> {
        let request = self
            .request(reqwest::Method::POST, self.url(CREATE_PATH, &[])?)
            .header("X-DashScope-Async", "enable")
            .json(native);
        let answer = self.call(request, Call::Submit).await?;
        let answer = serde_json::from_slice::<Value>(&answer).map_err(|e| ApiError::Ambiguous {
            message: unreadable_submit(&PROVIDER, &e),
        })?;
        let id = answer["output"]["task_id"]
            .as_str()
            .map(str::to_owned)
            .filter(|id| !id.trim().is_empty());
        match id {
            Some(id) if !self.key.appears_in(&id) => Ok(Submitted { task_id: id }),
            _ => Err(ApiError::Ambiguous {
                message: "the create was accepted but its answer names no usable output.task_id"
                    .into(),
            }),
        }
    }

    /// `GET {base}/api/v1/tasks/{id}`, normalised.
    pub async fn query(&self, task_id: &str) -> Result<TaskState, ApiError> {
        Ok(self.query_native(task_id).await?.state)
    }

    /// The query with DashScope's extras (prompts, usage). An unreadable 200 is `Transient`.
    pub async fn query_native(&self, task_id: &str) -> Result<NativeTask, ApiError> {
        if task_id.is_empty()
            || !task_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(setup(format!("task id {task_id:?} cannot be queried")));
        }
        let url = self.url(&format!("{TASKS_PATH}/{task_id}"), &[])?;
        let request = self.request(reqwest::Method::GET, url);
        let answer = self.call(request, Call::Read).await?;
        let body: Value = serde_json::from_slice(&answer).map_err(|e| ApiError::Transient {
            status: Some(200),
            message: format!("the query answer is not JSON ({e})"),
        })?;
        let mut task = native_task(&body).map_err(|message| ApiError::Transient {
            status: Some(200),
            message: self.key.scrub(message),
        })?;
        let state = &mut task.state;
        state.url = state.url.take().map(|u| self.key.scrub(u));
        state.error = state.error.take().map(|e| self.key.scrub(e));
        for prompt in [
            &mut state.extras.orig_prompt,
            &mut state.extras.actual_prompt,
            &mut task.orig_prompt,
            &mut task.actual_prompt,
        ] {
            *prompt = prompt.take().map(|p| self.key.scrub(p));
        }
        Ok(task)
    }

    /// One page of `GET {base}/api/v1/tasks` (page numbers from 1).
    pub async fn list(
        &self,
        query: &ListQuery,
        page_no: u32,
        page_size: u32,
    ) -> Result<TaskPage, ApiError> {
        let mut params: Vec<(&str, String)> = vec![
            ("page_no", page_no.max(1).to_string()),
            ("page_size", page_size.clamp(1, MAX_PAGE_SIZE).to_string()),
        ];
        if let Some(m) = &query.model {
            params.push(("model_name", m.clone()));
        }
        if let Some(s) = &query.status {
            params.push(("status", s.clone()));
        }
        if let Some((start, end)) = query.window_ms {
            params.push(("start_time", window_time(start)));
            params.push(("end_time", window_time(end)));
        }
        let request = self.request(reqwest::Method::GET, self.url(TASKS_PATH, &params)?);
        let answer = self.call(request, Call::Read).await?;
        let body: Value = serde_json::from_slice(&answer).map_err(|e| ApiError::Transient {
            status: Some(200),
            message: format!("the list answer is not JSON ({e})"),
        })?;
        let mut page = task_page(&body);
        page.tasks.retain(|t| !self.key.appears_in(&t.task_id));
        Ok(page)
    }

    /// Every page of the list (at most [`MAX_PAGES`] of [`MAX_PAGE_SIZE`]).
    pub async fn list_all(&self, query: &ListQuery) -> Result<Vec<ListedTask>, ApiError> {
        let mut tasks = Vec::new();
        for page_no in 1..=MAX_PAGES {
            let page = self.list(query, page_no, MAX_PAGE_SIZE).await?;
            let last = page.tasks.is_empty() || u64::from(page_no) >= page.total_page;
            tasks.extend(page.tasks);
            if last {
                break;
            }
        }
        Ok(tasks)
    }

    /// Downloads a result URL (pre-signed storage: no key is sent).
    pub async fn download(&self, url: &str, dest: &Path) -> Result<Downloaded, ApiError> {
        self.downloads.download(url, dest).await
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        call: Call,
    ) -> Result<Vec<u8>, ApiError> {
        match exchange(request, call, &self.key, &PROVIDER).await? {
            Ok(body) => Ok(body),
            Err(refusal) => Err(Speaker::classify(self, &refusal, call)),
        }
    }

    /// A non-2xx answer, by DashScope's table.
    fn classify_refusal(&self, refusal: &Refusal, call: Call) -> ApiError {
        let (status, body) = (refusal.status, refusal.body.as_slice());
        let retry_after = refusal.retry_after.as_deref().and_then(parse_retry_after);
        let message = self.key.scrub(reason(status, body));
        let code = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default();
        match status {
            429 => ApiError::RateLimited { retry_after },
            401 | 403 => ApiError::Auth { status, message },
            400 if code == "Arrearage" => ApiError::Auth { status, message },
            408 | 500..=599 => self.after_send(call, status, message),
            300..=399 => ApiError::Permanent {
                status,
                message: "the API redirects; check the base URL or region".into(),
            },
            _ => ApiError::Permanent { status, message },
        }
    }

    /// A failure once the request was sent: a create may have made a task.
    fn after_send(&self, call: Call, status: u16, message: String) -> ApiError {
        match call {
            Call::Submit => ApiError::Ambiguous {
                message: format!(
                    "HTTP {status}: {message} (a task may exist; look for it in the task list before sending again)"
                ),
            },
            Call::Read => ApiError::Transient {
                status: Some(status),
                message,
            },
        }
    }
}

impl Speaker for DashScopeClient {
    fn submit<'a>(&'a self, wire: &'a Value) -> BoxFuture<'a, Result<Submitted, ApiError>> {
        Box::pin(self.submit_native(wire))
    }

    fn query<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskState, ApiError>> {
        Box::pin(DashScopeClient::query(self, task_id))
    }

    fn classify(&self, refusal: &Refusal, call: Call) -> ApiError {
        self.classify_refusal(refusal, call)
    }

    fn task_list(&self) -> Option<&dyn TaskList> {
        Some(self)
    }
}

impl TaskList for DashScopeClient {
    fn list<'a>(
        &'a self,
        query: &'a ListQuery,
        page_no: u32,
        page_size: u32,
    ) -> BoxFuture<'a, Result<TaskPage, ApiError>> {
        Box::pin(DashScopeClient::list(self, query, page_no, page_size))
    }

    fn detail<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<NativeTask, ApiError>> {
        Box::pin(self.query_native(task_id))
    }
}

/// A list window bound: epoch milliseconds as `YYYYMMDDhhmmss` in UTC+8.
pub fn window_time(ms: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms) + ZONE_OFFSET;
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// A native status word. `SUSPENDED` waits; `CANCELED` failed.
pub fn status_word(word: &str) -> TaskStatus {
    match word {
        "PENDING" | "SUSPENDED" => TaskStatus::Waiting,
        "RUNNING" => TaskStatus::Running,
        "SUCCEEDED" => TaskStatus::Succeeded,
        "FAILED" | "CANCELED" => TaskStatus::Failed,
        _ => TaskStatus::Unknown,
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A query body folded into [`NativeTask`]; `Err` when it carries no task status.
pub fn native_task(body: &Value) -> Result<NativeTask, String> {
    let output = &body["output"];
    let word = output["task_status"]
        .as_str()
        .ok_or_else(|| match text(&body["message"]) {
            Some(m) => format!("query answer has no task status: {}", shorten(&m)),
            None => "query answer has no task status".to_owned(),
        })?;
    let status = status_word(word);
    let error = match (word, text(&output["code"]), text(&output["message"])) {
        (_, _, _) if status != TaskStatus::Failed => None,
        ("CANCELED", _, _) => Some("canceled".to_owned()),
        (_, Some(c), Some(m)) => Some(shorten(&format!("{c}: {m}"))),
        (_, c, m) => Some(
            c.or(m)
                .map(|r| shorten(&r))
                .unwrap_or_else(|| "the task failed (no reason given)".into()),
        ),
    };
    let usage = &body["usage"];
    let seconds = |field: &str| usage[field].as_f64().filter(|s| s.is_finite() && *s >= 0.0);
    let extras = TaskExtras {
        orig_prompt: text(&output["orig_prompt"]).map(capped_prompt),
        actual_prompt: text(&output["actual_prompt"]).map(capped_prompt),
        usage_s: seconds("duration"),
        input_s: seconds("input_video_duration"),
        output_s: seconds("output_video_duration"),
    };
    Ok(NativeTask {
        orig_prompt: extras.orig_prompt.clone(),
        actual_prompt: extras.actual_prompt.clone(),
        usage_seconds: extras.usage_s,
        output_seconds: extras.output_s,
        state: TaskState {
            status,
            url: text(&output["video_url"]).filter(|_| status == TaskStatus::Succeeded),
            error,
            progress: None,
            extras,
        },
        resolution: usage["SR"].as_u64().map(|r| r as u32),
        ratio: text(&usage["ratio"]),
    })
}

/// A prompt the provider echoed, cut to [`TaskExtras::MAX_PROMPT_BYTES`] on a character boundary.
fn capped_prompt(mut prompt: String) -> String {
    if prompt.len() > TaskExtras::MAX_PROMPT_BYTES {
        let mut end = TaskExtras::MAX_PROMPT_BYTES;
        while !prompt.is_char_boundary(end) {
            end -= 1;
        }
        prompt.truncate(end);
        prompt.push('…');
    }
    prompt
}

/// Latest `gmt_create` taken as a time (year 9999): past it, a value is no time.
const MAX_EPOCH_MS: u64 = 253_402_300_799_999;

/// Epoch milliseconds given as a number or (through proxies that stringify numbers) a decimal
/// string; anything else (negative, fractional, past [`MAX_EPOCH_MS`], non-digits) is missing.
fn epoch_ms(v: &Value) -> Option<u64> {
    let ms = match v {
        Value::String(s)
            if (1..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok()
        }
        _ => v.as_u64(),
    };
    ms.filter(|&ms| ms <= MAX_EPOCH_MS)
}

/// A list body; items without a task id are skipped.
pub fn task_page(body: &Value) -> TaskPage {
    let tasks = body["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|item| {
            Some(ListedTask {
                task_id: text(&item["task_id"])?,
                status: status_word(item["status"].as_str().unwrap_or_default()),
                model: text(&item["model_name"]).unwrap_or_default(),
                created_ms: epoch_ms(&item["gmt_create"]),
                api_key_id: text(&item["api_key_id"]),
            })
        })
        .collect();
    TaskPage {
        total: body["total"].as_u64().unwrap_or(0),
        total_page: body["total_page"].as_u64().unwrap_or(1),
        tasks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_models_map() {
        assert_eq!(
            Region::default().base_url(),
            "https://dashscope-intl.aliyuncs.com"
        );
        assert_eq!(Region::from_name("Beijing"), Some(Region::Beijing));
        assert_eq!(Region::from_name("tokyo"), None);
        assert_eq!(native_model("wan2.7-t2v-2026-04-25"), Some("wan2.7-t2v"));
        assert_eq!(native_model("wan2.6-t2v"), None);
    }

    #[test]
    fn encoding_keeps_false_and_zero_and_refuses_unresolved_shots() {
        let planned = json!({"model": "wan2.7-t2v-2026-04-25", "prompt": "p", "duration": 5,
            "metadata": {"input": {"prompt": "p"},
                         "parameters": {"duration": 5, "prompt_extend": false, "seed": 0, "watermark": false}}});
        assert_eq!(
            encode(&planned).unwrap(),
            json!({"model": "wan2.7-t2v", "input": {"prompt": "p"},
                   "parameters": {"duration": 5, "prompt_extend": false, "seed": 0, "watermark": false}})
        );
        let chained = json!({"model": "wan2.7-videoedit", "metadata": {"input": {"prompt": "p",
            "media": [{"type": "video", "shot": "base"}]}}});
        assert!(
            encode(&chained)
                .unwrap_err()
                .to_string()
                .contains("media[0]")
        );
    }

    #[test]
    fn statuses_and_failures_normalise() {
        let failed = native_task(&json!({"output": {"task_status": "FAILED",
            "code": "DataInspectionFailed", "message": "blocked"}}))
        .unwrap();
        assert_eq!(failed.state.status, TaskStatus::Failed);
        assert_eq!(
            failed.state.error.as_deref(),
            Some("DataInspectionFailed: blocked")
        );
        let bare = native_task(&json!({"output": {"task_status": "FAILED"}})).unwrap();
        assert_eq!(
            bare.state.error.as_deref(),
            Some("the task failed (no reason given)")
        );
        let canceled = native_task(&json!({"output": {"task_status": "CANCELED"}})).unwrap();
        assert_eq!(canceled.state.error.as_deref(), Some("canceled"));
        assert_eq!(status_word("SUSPENDED"), TaskStatus::Waiting);
        assert_eq!(status_word("UNKNOWN"), TaskStatus::Unknown);
        assert!(native_task(&json!({"code": "InvalidParameter", "message": "x"})).is_err());
    }

    #[test]
    fn gmt_create_is_read_as_a_number_or_a_decimal_string() {
        let created = |v: Value| {
            let page = task_page(&json!({"data": [{"task_id": "t", "gmt_create": v}]}));
            page.tasks[0].created_ms
        };
        assert_eq!(created(json!(1745568428109_u64)), Some(1745568428109));
        assert_eq!(created(json!("1745568428109")), Some(1745568428109));
        for hostile in [
            json!("-1745568428109"),
            json!(-5),
            json!("+1745568428109"),
            json!(" 1745568428109"),
            json!("1745568428109.5"),
            json!(1745568428109.5),
            json!("1e12"),
            json!(""),
            json!("99999999999999999999999"),
            json!("999999999999999"),
            json!(u64::MAX),
            json!(null),
            json!({"ms": 1}),
        ] {
            assert_eq!(created(hostile.clone()), None, "{hostile}");
        }
    }

    #[test]
    fn window_times_are_utc_plus_8_digits() {
        assert_eq!(window_time(0), "19700101080000");
    }
}
