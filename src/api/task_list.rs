//! The task-list capability: a provider that lists an account's tasks lets a run find the task
//! of a submit whose answer was lost (`exec::reconcile`) and check a task `--attach` names
//! (`exec::attach`) instead of paying for it twice. The executor reaches it only through
//! [`Client::task_list`](super::Client::task_list), never through a provider's own type.

use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use super::{ApiError, TaskState, TaskStatus};

/// Largest list page asked for (DashScope documents no maximum).
pub const MAX_PAGE_SIZE: u32 = 100;
/// Pages one search reads at most, whatever the answers: memory stays bounded.
pub const MAX_PAGES: u32 = 50;

/// A provider's task list.
pub trait TaskList: Send + Sync {
    /// One page of the account's tasks (page numbers from 1, at most [`MAX_PAGE_SIZE`] each).
    fn list<'a>(
        &'a self,
        query: &'a ListQuery,
        page_no: u32,
        page_size: u32,
    ) -> BoxFuture<'a, Result<TaskPage, ApiError>>;

    /// One task's query with what shows whose it is (the prompt as sent, its parameters).
    fn detail<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<TaskDetail, ApiError>>;
}

/// What to list: a model, a status word and a window of epoch milliseconds (at most 24 h;
/// none: the last 24 h).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub model: Option<String>,
    pub status: Option<String>,
    pub window_ms: Option<(u64, u64)>,
}

/// One task of the account, as the list shows it (no prompt, parameters or result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTask {
    pub task_id: String,
    pub status: TaskStatus,
    pub model: String,
    /// Epoch milliseconds of the create.
    pub created_ms: Option<u64>,
    pub api_key_id: Option<String>,
}

/// One page of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPage {
    pub total: u64,
    pub total_page: u64,
    pub tasks: Vec<ListedTask>,
}

/// A task's query with what it shows about its request: the provider-neutral state plus the
/// prompt as sent and the parameters a search compares.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDetail {
    pub state: TaskState,
    /// The prompt as sent (on success).
    pub orig_prompt: Option<String>,
    /// The rewritten prompt, when the provider gives it.
    pub actual_prompt: Option<String>,
    /// Billed seconds (input + output seconds), on success.
    pub usage_seconds: Option<f64>,
    pub output_seconds: Option<f64>,
    /// 720 or 1080.
    pub resolution: Option<u32>,
    pub ratio: Option<String>,
}

/// Now, in epoch milliseconds (the list's clock unit).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
