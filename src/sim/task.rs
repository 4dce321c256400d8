//! Task state: a task's phase is computed from the clock when asked (no timers, no background
//! work), and each task is a few dozen bytes plus its prompt, so 100,000 tasks stay small.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use super::rules::Model;

/// Where a task stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Queued,
    InProgress,
    Succeeded,
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Queued,
        Phase::InProgress,
        Phase::Succeeded,
        Phase::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::InProgress => "in_progress",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
        }
    }
}

/// Why a task ends failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The prompt carries the `[sim:fail]` marker: content moderation.
    Moderation,
    /// Drawn by `--fail-rate`.
    Random,
}

impl Failure {
    pub fn code(self) -> &'static str {
        match self {
            Failure::Moderation => "DataInspectionFailed",
            Failure::Random => "InternalError.Algo",
        }
    }

    /// The integer code the flat (doc) shape carries.
    pub fn int_code(self) -> u16 {
        match self {
            Failure::Moderation => 400,
            Failure::Random => 500,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Failure::Moderation => {
                "DataInspectionFailed: Output data may contain inappropriate content. (simulated by the [sim:fail] marker)"
            }
            Failure::Random => {
                "InternalError.Algo: An internal error occurred during video generation. (simulated by --fail-rate)"
            }
        }
    }
}

/// The prompt marker that makes a task fail with a moderation error.
pub const FAIL_MARKER: &str = "[sim:fail]";

/// One generation task.
#[derive(Debug)]
pub struct Task {
    /// Random part of the id, so ids cannot be guessed from their index.
    token: u64,
    key: u32,
    pub model: Model,
    pub seed: Option<u32>,
    pub created: Instant,
    pub created_unix: u64,
    pub gen_time: Duration,
    pub failure: Option<Failure>,
    pub prompt: Box<str>,
}

impl Task {
    pub fn finished_at(&self) -> Instant {
        self.created + self.gen_time
    }

    /// Queued for the first third of the generation time, then in progress, then done.
    pub fn phase_at(&self, now: Instant) -> Phase {
        let elapsed = now.saturating_duration_since(self.created);
        if elapsed >= self.gen_time {
            if self.failure.is_some() {
                Phase::Failed
            } else {
                Phase::Succeeded
            }
        } else if elapsed < self.gen_time / 3 {
            Phase::Queued
        } else {
            Phase::InProgress
        }
    }

    /// 0 to 100.
    pub fn progress_at(&self, now: Instant) -> u8 {
        if self.gen_time.is_zero() {
            return 100;
        }
        let elapsed = now.saturating_duration_since(self.created);
        let ratio = elapsed.as_secs_f64() / self.gen_time.as_secs_f64();
        (ratio.min(1.0) * 100.0) as u8
    }
}

/// Everything needed to create a task.
pub struct NewTask {
    pub key: String,
    pub model: Model,
    pub seed: Option<u32>,
    pub prompt: String,
    pub gen_time: Duration,
    pub failure: Option<Failure>,
    pub token: u64,
    pub created_unix: u64,
}

/// All tasks, the keys that made them, and the tasks in flight per key for the rate limit.
///
/// Ids start with a random per-book instance number, so two simulator processes never hand
/// out the same id and a resumed run cannot attach to another process's task.
#[derive(Debug)]
pub struct TaskBook {
    instance: u32,
    tasks: Vec<Task>,
    keys: HashMap<String, u32>,
    in_flight: Vec<BinaryHeap<Reverse<Instant>>>,
    /// Tasks reloaded from an earlier process, by their original ids.
    imported: HashMap<String, usize>,
}

impl Default for TaskBook {
    fn default() -> Self {
        TaskBook::with_instance(random_instance())
    }
}

/// A number that differs between processes (and books) with overwhelming odds.
fn random_instance() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = nanos ^ (u64::from(std::process::id()) << 32) ^ fastrand::u64(..);
    (mixed ^ (mixed >> 32)) as u32
}

const ID_PREFIX: &str = "video_";

impl TaskBook {
    pub fn with_instance(instance: u32) -> TaskBook {
        TaskBook {
            instance,
            tasks: Vec::new(),
            keys: HashMap::new(),
            in_flight: Vec::new(),
            imported: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub fn tasks(&self) -> impl Iterator<Item = (String, &Task)> {
        let imported: HashMap<usize, &str> = self
            .imported
            .iter()
            .map(|(id, &i)| (i, id.as_str()))
            .collect();
        self.tasks.iter().enumerate().map(move |(i, t)| {
            let id = imported
                .get(&i)
                .map_or_else(|| task_id(self.instance, i, t.token), |id| (*id).to_owned());
            (id, t)
        })
    }

    fn key_index(&mut self, key: &str) -> u32 {
        if let Some(&k) = self.keys.get(key) {
            return k;
        }
        let k = self.in_flight.len() as u32;
        self.keys.insert(key.to_owned(), k);
        self.in_flight.push(BinaryHeap::new());
        k
    }

    /// Tasks of `key` still queued or in progress at `now`.
    pub fn in_flight(&mut self, key: &str, now: Instant) -> usize {
        match self.keys.get(key) {
            Some(&k) => self.prune(k, now),
            None => 0,
        }
    }

    /// Forgets the finish times of `key`'s finished tasks; returns how many are left.
    fn prune(&mut self, key: u32, now: Instant) -> usize {
        let heap = &mut self.in_flight[key as usize];
        while heap.peek().is_some_and(|Reverse(done)| *done <= now) {
            heap.pop();
        }
        heap.len()
    }

    /// Creates a task and returns its id.
    pub fn create(&mut self, new: NewTask, now: Instant) -> String {
        self.insert(new, now);
        task_id(
            self.instance,
            self.tasks.len() - 1,
            self.tasks[self.tasks.len() - 1].token,
        )
    }

    /// Takes in a task an earlier process created at `created`, under its id.
    pub fn import(&mut self, id: String, new: NewTask, created: Instant) {
        if self.get(&id).is_some() {
            return;
        }
        self.insert(new, created);
        self.imported.insert(id, self.tasks.len() - 1);
    }

    fn insert(&mut self, new: NewTask, now: Instant) {
        let key = self.key_index(&new.key);
        let task = Task {
            token: new.token,
            key,
            model: new.model,
            seed: new.seed,
            created: now,
            created_unix: new.created_unix,
            gen_time: new.gen_time,
            failure: new.failure,
            prompt: new.prompt.into_boxed_str(),
        };
        self.prune(key, now);
        self.in_flight[key as usize].push(Reverse(task.finished_at()));
        self.tasks.push(task);
    }

    /// The task with this id, whoever made it (result URLs need no key).
    pub fn get(&self, id: &str) -> Option<&Task> {
        if let Some(&i) = self.imported.get(id) {
            return self.tasks.get(i);
        }
        let (instance, index, token) = parse_task_id(id)?;
        if instance != self.instance {
            return None;
        }
        self.tasks.get(index).filter(|t| t.token == token)
    }

    /// The task with this id if `key` made it: other keys' tasks do not exist for them.
    pub fn get_for_key(&self, id: &str, key: &str) -> Option<&Task> {
        let k = *self.keys.get(key)?;
        self.get(id).filter(|t| t.key == k)
    }
}

fn task_id(instance: u32, index: usize, token: u64) -> String {
    format!("{ID_PREFIX}{instance:08x}{index:08x}{token:016x}")
}

fn parse_task_id(id: &str) -> Option<(u32, usize, u64)> {
    let hex = id.strip_prefix(ID_PREFIX)?;
    if hex.len() < 32 || !hex.is_ascii() {
        return None;
    }
    let (instance, rest) = hex.split_at(8);
    let (index, token) = rest.split_at(rest.len() - 16);
    Some((
        u32::from_str_radix(instance, 16).ok()?,
        usize::from_str_radix(index, 16).ok()?,
        u64::from_str_radix(token, 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_task(key: &str, gen_ms: u64, failure: Option<Failure>) -> NewTask {
        NewTask {
            key: key.into(),
            model: Model::T2v,
            seed: Some(7),
            prompt: "a cat".into(),
            gen_time: Duration::from_millis(gen_ms),
            failure,
            token: 0xdead_beef,
            created_unix: 0,
        }
    }

    #[test]
    fn ids_round_trip_and_reject_forgeries() {
        let mut book = TaskBook::default();
        let now = Instant::now();
        let id = book.create(new_task("k", 10, None), now);
        assert!(book.get(&id).is_some());
        assert!(book.get_for_key(&id, "k").is_some());
        assert!(book.get_for_key(&id, "other").is_none());
        let forged = format!("{}0", &id[..id.len() - 1]);
        assert!(book.get(&forged).is_none());
        assert!(book.get("video_zz").is_none());
        assert!(book.get("video_ü0000000000000000000000000").is_none());
    }

    #[test]
    fn ids_differ_between_books_and_imports_keep_theirs() {
        let now = Instant::now();
        let mut a = TaskBook::default();
        let mut b = TaskBook::default();
        let id_a = a.create(new_task("k", 10, None), now);
        let id_b = b.create(new_task("k", 10, None), now);
        assert_ne!(id_a, id_b);
        assert!(b.get(&id_a).is_none());
        b.import(id_a.clone(), new_task("k", 10, None), now);
        assert!(b.get_for_key(&id_a, "k").is_some());
        assert!(b.get(&id_b).is_some());
        assert_eq!(b.tasks().filter(|(id, _)| *id == id_a).count(), 1);
    }

    #[test]
    fn phases_follow_the_clock() {
        let mut book = TaskBook::default();
        let t0 = Instant::now();
        let ok = book.create(new_task("k", 300, None), t0);
        let bad = book.create(new_task("k", 300, Some(Failure::Random)), t0);
        let ok = book.get(&ok).unwrap();
        let bad = book.get(&bad).unwrap();
        assert_eq!(ok.phase_at(t0), Phase::Queued);
        assert_eq!(
            ok.phase_at(t0 + Duration::from_millis(150)),
            Phase::InProgress
        );
        assert_eq!(
            ok.phase_at(t0 + Duration::from_millis(300)),
            Phase::Succeeded
        );
        assert_eq!(bad.phase_at(t0 + Duration::from_millis(300)), Phase::Failed);
        assert_eq!(ok.progress_at(t0 + Duration::from_millis(150)), 50);
    }

    #[test]
    fn in_flight_counts_per_key_until_done() {
        let mut book = TaskBook::default();
        let t0 = Instant::now();
        book.create(new_task("a", 100, None), t0);
        book.create(new_task("a", 200, None), t0);
        book.create(new_task("b", 100, None), t0);
        assert_eq!(book.in_flight("a", t0), 2);
        assert_eq!(book.in_flight("b", t0), 1);
        assert_eq!(book.in_flight("a", t0 + Duration::from_millis(150)), 1);
        assert_eq!(book.in_flight("a", t0 + Duration::from_millis(200)), 0);
        assert_eq!(book.in_flight("nobody", t0), 0);
    }
}
