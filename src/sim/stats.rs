//! Counters behind `GET /__sim/stats`: what the simulator was asked and what it answered, so
//! tests can prove, for example, that no body was created twice or that a 429 created nothing.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::task::{Phase, TaskBook};

/// The routes requests are counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Route {
    Submit,
    Query,
    Download,
    Other,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Submit => "submit",
            Route::Query => "query",
            Route::Download => "download",
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

    /// The stats document; `with_tasks` adds the per-task list.
    pub fn render(&self, book: &TaskBook, now: Instant, with_tasks: bool) -> Value {
        let mut requests: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
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
        let mut by_status: BTreeMap<&str, u64> = Phase::ALL.iter().map(|p| (p.name(), 0)).collect();
        let mut list = Vec::new();
        for (id, task) in book.tasks() {
            let phase = task.phase_at(now);
            *by_status.entry(phase.name()).or_default() += 1;
            if with_tasks {
                list.push(json!({
                    "task_id": id,
                    "model": task.model.id(),
                    "prompt": &*task.prompt,
                    "seed": task.seed,
                    "status": phase.name(),
                }));
            }
        }
        let mut doc = json!({
            "tasks_created": book.len(),
            "by_status": by_status,
            "requests": requests,
            "lost_responses": self.lost_responses,
        });
        if with_tasks {
            doc["tasks"] = Value::Array(list);
        }
        doc
    }
}
