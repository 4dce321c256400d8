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
    rates: Rates,
}

/// Requests per second: counted in whole seconds since the first request, the busiest kept.
#[derive(Debug, Default)]
struct Rates {
    start: Option<Instant>,
    second: u64,
    /// This second's requests: all, then by route.
    now: [u64; RATE_SLOTS],
    max: [u64; RATE_SLOTS],
}

/// One slot for all requests, then one per [`Route`].
const RATE_SLOTS: usize = 1 + Route::Other as usize + 1;

impl Rates {
    fn record(&mut self, route: Route, at: Instant) {
        let start = *self.start.get_or_insert(at);
        let second = at.saturating_duration_since(start).as_secs();
        if second != self.second {
            self.second = second;
            self.now = [0; RATE_SLOTS];
        }
        for slot in [0, 1 + route as usize] {
            self.now[slot] += 1;
            self.max[slot] = self.max[slot].max(self.now[slot]);
        }
    }

    fn document(&self) -> BTreeMap<&'static str, u64> {
        let mut doc = BTreeMap::from([("max", self.max[0])]);
        for route in [Route::Submit, Route::Query, Route::Download] {
            doc.insert(route.name(), self.max[1 + route as usize]);
        }
        doc
    }
}

impl Stats {
    pub fn record(&mut self, route: Route, outcome: Outcome) {
        *self.requests.entry((route, outcome)).or_default() += 1;
        if outcome == Outcome::Lost {
            self.lost_responses += 1;
        }
        self.rates.record(route, Instant::now());
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
            requests_per_second: self.rates.document(),
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
    /// The most requests seen within one second (all routes, then each route).
    requests_per_second: BTreeMap<&'static str, u64>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_busiest_second_is_kept_per_route() {
        let mut rates = Rates::default();
        let t0 = Instant::now();
        for k in 0..7 {
            rates.record(Route::Query, t0 + Duration::from_millis(k * 100));
        }
        rates.record(Route::Submit, t0 + Duration::from_millis(900));
        for k in 0..3 {
            rates.record(Route::Query, t0 + Duration::from_millis(1000 + k * 10));
        }
        let doc = rates.document();
        assert_eq!(doc["max"], 8);
        assert_eq!(doc["query"], 7);
        assert_eq!(doc["submit"], 1);
        assert_eq!(doc["download"], 0);
    }
}
