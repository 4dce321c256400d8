//! Counters behind `GET /__sim/stats`: what the simulator was asked and what it answered, so
//! tests can prove, for example, that no body was created twice or that a 429 created nothing.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use super::task::{Phase, TaskBook};

/// The routes requests are counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Route {
    Submit,
    Query,
    Download,
    /// DashScope's task list and cancel.
    List,
    Cancel,
    Other,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Submit => "submit",
            Route::Query => "query",
            Route::Download => "download",
            Route::List => "list",
            Route::Cancel => "cancel",
            Route::Other => "other",
        }
    }
}

/// How a request ended: an HTTP status, or a response that was never delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Status(u16),
    Lost,
}

#[derive(Debug, Default)]
pub struct Stats {
    requests: BTreeMap<(Route, Outcome), u64>,
    lost_responses: u64,
}

impl Stats {
    pub fn record(&mut self, route: Route, outcome: Outcome) {
        *self.requests.entry((route, outcome)).or_default() += 1;
        if outcome == Outcome::Lost {
            self.lost_responses += 1;
        }
    }

    /// The stats document; `with_tasks` adds the per-task list. It borrows the task book and
    /// serializes straight from it, so even 100,000 tasks cost no tree of JSON values.
    pub fn document<'a>(
        &'a self,
        book: &'a TaskBook,
        now: Instant,
        with_tasks: bool,
    ) -> Document<'a> {
        let mut requests: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
        for route in [Route::Submit, Route::Query, Route::Download] {
            requests.entry(route.name()).or_default();
        }
        for (&(route, outcome), &count) in &self.requests {
            let label = match outcome {
                Outcome::Status(code) => code.to_string(),
                Outcome::Lost => "lost".to_owned(),
            };
            requests
                .entry(route.name())
                .or_default()
                .insert(label, count);
        }
        let mut by_status: BTreeMap<&'static str, u64> =
            Phase::ALL.iter().map(|p| (p.name(), 0)).collect();
        for (_, task) in book.tasks() {
            *by_status.entry(task.phase_at(now).name()).or_default() += 1;
        }
        Document {
            tasks_created: book.len(),
            by_status,
            requests,
            lost_responses: self.lost_responses,
            tasks: with_tasks.then_some(TaskList { book, now }),
        }
    }
}

/// The `GET /__sim/stats` document.
#[derive(Serialize)]
pub struct Document<'a> {
    tasks_created: usize,
    by_status: BTreeMap<&'static str, u64>,
    requests: BTreeMap<&'static str, BTreeMap<String, u64>>,
    lost_responses: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<TaskList<'a>>,
}

/// Every task, in creation order, as `{task_id, model, prompt, seed, status}`.
pub struct TaskList<'a> {
    book: &'a TaskBook,
    now: Instant,
}

#[derive(Serialize)]
struct TaskRow<'a> {
    task_id: String,
    model: &'static str,
    prompt: &'a str,
    seed: Option<u32>,
    status: &'static str,
}

impl Serialize for TaskList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.book.len()))?;
        for (task_id, task) in self.book.tasks() {
            seq.serialize_element(&TaskRow {
                task_id,
                model: task.model.id(),
                prompt: &task.prompt,
                seed: task.seed,
                status: task.phase_at(self.now).name(),
            })?;
        }
        seq.end()
    }
}
