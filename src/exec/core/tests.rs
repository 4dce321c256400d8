//! The core fed by hand: each decision the end-to-end tests exercise, without tokio, a clock or
//! a folder.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::*;
use crate::api::{ApiError, Downloaded, TaskExtras};
use crate::exec::job::Event;
use crate::exec::reason::{Advice, Reason};
use crate::exec::reconcile::{Signature, Target, Verdict};
use crate::exec::resume::Start;
use crate::exec::testing::plan_of;
use crate::journal::EventKind;
use crate::report::ResultStatus;

const FAST: Backoff = Backoff {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(8),
};

fn w0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn setup(plan: &Plan) -> Setup {
    let n = plan.shots.len();
    Setup {
        records: (0..n).map(|_| ShotRecord::from_history(None)).collect(),
        selected: vec![true; n],
        first_search: vec![None; n],
        limiter: Limiter::new(4, FAST, None),
        backoff: FAST,
        provider: crate::api::gravitex::PROVIDER,
        resubmit_unknown: false,
        prices: PriceBook::default(),
        max_cost: None,
        spent_before: Money::ZERO,
        shard: None,
        known_tasks: HashSet::new(),
        started: w0(),
    }
}

/// A core with a hand-driven clock and every effect it pushed.
struct Run<'a> {
    plan: &'a Plan,
    core: Core<'a>,
    t0: Instant,
    elapsed: Duration,
}

impl<'a> Run<'a> {
    fn new(plan: &'a Plan, setup: Setup) -> Run<'a> {
        Run {
            plan,
            core: Core::new(plan, setup),
            t0: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    /// Every shot submits; started.
    fn started(plan: &'a Plan) -> Run<'a> {
        Run::started_with(plan, setup(plan))
    }

    fn started_with(plan: &'a Plan, setup: Setup) -> Run<'a> {
        let mut run = Run::new(plan, setup);
        run.start(vec![Start::Submit; plan.shots.len()]);
        run
    }

    fn now(&self) -> (Instant, SystemTime) {
        (self.t0 + self.elapsed, w0() + self.elapsed)
    }

    fn advance(&mut self, d: Duration) {
        self.elapsed += d;
    }

    /// Moves the clock to the core's next wake.
    fn wake(&mut self) {
        let at = self.core.next_wake().expect("something to wake for");
        self.elapsed = at.saturating_duration_since(self.t0);
    }

    fn collect(&mut self) -> Vec<Effect> {
        self.core.take_effects()
    }

    fn start(&mut self, starts: Vec<Start>) -> Vec<Effect> {
        let (_, wall) = self.now();
        self.core.start(starts, wall);
        self.collect()
    }

    fn choose(&mut self) -> Vec<Effect> {
        let (now, wall) = self.now();
        self.core.choose(now, wall);
        self.collect()
    }

    /// The shots `choose` submits now, in order.
    fn submits(&mut self) -> Vec<&'a str> {
        let plan = self.plan;
        submitted(&self.choose())
            .into_iter()
            .map(|i| plan.shots[i].id.as_str())
            .collect()
    }

    fn handle(&mut self, event: Event) -> Vec<Effect> {
        let (now, wall) = self.now();
        self.core.handle(event, now, wall);
        self.collect()
    }

    fn idx(&self, id: &str) -> usize {
        self.plan.shots.iter().position(|s| s.id == id).expect(id)
    }

    fn status(&self, id: &str) -> Status {
        self.core.record(self.idx(id)).status
    }

    fn reason(&self, id: &str) -> Option<Reason> {
        self.core.record(self.idx(id)).error.as_deref().cloned()
    }

    fn accept(&mut self, id: &str, task: &str) -> Vec<Effect> {
        let idx = self.idx(id);
        self.handle(Event::Submitted {
            idx,
            task_id: task.into(),
        })
    }

    fn refuse(&mut self, id: &str, error: ApiError) -> Vec<Effect> {
        let idx = self.idx(id);
        self.handle(Event::SubmitError { idx, error })
    }

    fn succeed(&mut self, id: &str) -> Vec<Effect> {
        let idx = self.idx(id);
        self.handle(Event::Succeeded {
            idx,
            url: format!("https://v/{id}.mp4"),
            extras: TaskExtras::default(),
        })
    }

    fn download(&mut self, id: &str) -> Vec<Effect> {
        let idx = self.idx(id);
        self.handle(Event::Downloaded {
            idx,
            done: Downloaded {
                sha256: "ab".repeat(32),
                bytes: 2048,
            },
        })
    }

    fn fail_task(&mut self, id: &str) -> Vec<Effect> {
        let idx = self.idx(id);
        self.handle(Event::Failed {
            idx,
            error: "content policy".into(),
        })
    }

    /// Submits, accepts, succeeds and downloads `id` (chosen now).
    fn finish(&mut self, id: &str) {
        self.accept(id, &format!("task-{id}"));
        self.succeed(id);
        self.download(id);
    }
}

fn submitted(effects: &[Effect]) -> Vec<usize> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Spawn(Job::Submit { idx, .. }) => Some(*idx),
            _ => None,
        })
        .collect()
}

/// The journal lines, as (event, shot id).
fn journal(effects: &[Effect]) -> Vec<(EventKind, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Journal(e) => Some((e.event, e.id.clone())),
            _ => None,
        })
        .collect()
}

fn entries(effects: &[Effect]) -> Vec<&Entry> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Journal(e) => Some(&**e),
            _ => None,
        })
        .collect()
}

fn held(effects: &[Effect]) -> Vec<(usize, Reason)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Held { idx, reason } => Some((*idx, reason.clone())),
            _ => None,
        })
        .collect()
}

fn notes(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Note(line) => Some(line.as_str()),
            _ => None,
        })
        .collect()
}

fn searches(effects: &[Effect]) -> Vec<&Vec<Target>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Spawn(Job::Search { targets, .. }) => Some(targets),
            _ => None,
        })
        .collect()
}

fn j(kind: EventKind, id: &str) -> (EventKind, String) {
    (kind, id.to_owned())
}

fn bad_request() -> ApiError {
    ApiError::Permanent {
        status: 400,
        message: "prompt too long".into(),
    }
}

fn bad_gateway() -> ApiError {
    ApiError::Transient {
        status: Some(502),
        message: "bad gateway".into(),
    }
}

fn too_many(retry_after: Option<Duration>) -> ApiError {
    ApiError::RateLimited { retry_after }
}

fn lost() -> ApiError {
    ApiError::Ambiguous {
        message: "connection reset".into(),
    }
}

fn price(plan: &Plan) -> Money {
    PriceBook::default()
        .shot(&plan.shots[0])
        .expect("the list prices t2v 720P")
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

// --- order and chains ---

#[test]
fn the_shot_heading_the_longest_chain_goes_first_then_plan_order() {
    let plan = plan_of(&[
        ("x", &[]),
        ("a", &[]),
        ("b", &["a"]),
        ("c", &["b"]),
        ("y", &[]),
        ("z", &["y"]),
    ]);
    let mut run = Run::started(&plan);
    assert_eq!(run.submits(), ["a", "y", "x"]);
    assert_eq!(run.status("b"), Status::Waiting);
    assert_eq!(run.status("c"), Status::Waiting);
}

#[test]
fn concurrency_bounds_the_submits_of_a_turn() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[]), ("e", &[])]);
    let mut s = setup(&plan);
    s.limiter = Limiter::new(2, FAST, None);
    let mut run = Run::started_with(&plan, s);
    assert_eq!(run.submits(), ["a", "b"]);
    assert_eq!(run.submits(), Vec::<&str>::new());
    run.accept("a", "t-a");
    assert_eq!(
        run.submits(),
        Vec::<&str>::new(),
        "a task polled holds its slot"
    );
    run.succeed("a");
    assert_eq!(run.submits(), ["c"], "a downloading task frees its slot");
}

#[test]
fn a_submit_rate_spaces_submits_and_says_when_the_next_may_go() {
    let plan = plan_of(&[("a", &[]), ("b", &[])]);
    let mut s = setup(&plan);
    s.limiter = Limiter::new(4, FAST, Some(60));
    let mut run = Run::started_with(&plan, s);
    assert_eq!(run.submits(), ["a"]);
    assert_eq!(run.submits(), Vec::<&str>::new());
    let wake = run.core.next_wake().expect("the next submit's time");
    assert!(wake > run.now().0);
    run.wake();
    assert_eq!(run.submits(), ["b"]);
    assert_eq!(run.core.next_wake(), None);
}

#[test]
fn a_chain_waits_for_its_upstreams_url_then_queues() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut run = Run::started(&plan);
    assert_eq!(run.submits(), ["a"]);
    run.accept("a", "t-a");
    assert_eq!(run.submits(), Vec::<&str>::new());
    assert_eq!(run.status("b"), Status::Waiting);
    run.succeed("a");
    assert_eq!(run.status("b"), Status::Ready);
    assert_eq!(run.submits(), ["b"]);
}

#[test]
fn a_dependant_is_sent_its_upstreams_url() {
    let mut plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    plan.shots[1].body = serde_json::json!({
        "model": "wan2.7-r2v",
        "prompt": "b",
        "metadata": {"input": {"media": [{"type": "reference_video", "shot": "a"}]}}
    })
    .into();
    let mut run = Run::started(&plan);
    run.choose();
    run.accept("a", "t-a");
    run.succeed("a");
    let effects = run.choose();
    let body = effects
        .iter()
        .find_map(|e| match e {
            Effect::Spawn(Job::Submit { idx: 1, body }) => Some(body),
            _ => None,
        })
        .expect("b is submitted");
    assert_eq!(
        body.pointer("/metadata/input/media/0/url"),
        Some(&serde_json::json!("https://v/a.mp4"))
    );
    assert_eq!(body.pointer("/metadata/input/media/0/shot"), None);
}

#[test]
fn a_dependant_of_two_waits_for_both() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &["a", "b"])]);
    let mut run = Run::started(&plan);
    run.choose();
    run.finish("a");
    assert_eq!(run.status("c"), Status::Waiting);
    run.accept("b", "t-b");
    run.succeed("b");
    assert_eq!(run.submits(), ["c"]);
}

// --- skips ---

#[test]
fn a_failed_upstream_skips_its_dependants_transitively() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &[])]);
    let mut run = Run::started(&plan);
    run.choose();
    run.accept("a", "t-a");
    let effects = run.fail_task("a");
    assert_eq!(
        journal(&effects),
        [
            j(EventKind::Failed, "a"),
            j(EventKind::Skipped, "b"),
            j(EventKind::Skipped, "c")
        ]
    );
    assert_eq!(run.status("a"), Status::Failed);
    assert_eq!(
        run.reason("a"),
        Some(Reason::failed("content policy", Advice::RetryFailed))
    );
    assert_eq!(
        run.reason("b"),
        Some(Reason::Upstream {
            upstream: "a".into(),
            status: ResultStatus::Failed
        })
    );
    assert_eq!(
        run.reason("c"),
        Some(Reason::Upstream {
            upstream: "b".into(),
            status: ResultStatus::Skipped
        })
    );
    assert_eq!(
        run.status("d"),
        Status::Submitting,
        "an unrelated shot goes on"
    );
    let skipped = entries(&effects)[1];
    assert_eq!(
        skipped.error.as_deref(),
        Some(run.reason("b").unwrap().to_string().as_str())
    );
}

#[test]
fn an_upstream_that_gave_up_polling_leaves_its_dependant_skipped_as_unknown() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut run = Run::started(&plan);
    run.choose();
    run.accept("a", "t-a");
    let effects = run.handle(Event::GaveUp {
        idx: 0,
        error: "20 answers without news".into(),
    });
    assert_eq!(journal(&effects), [j(EventKind::Skipped, "b")]);
    assert_eq!(run.status("a"), Status::Unknown);
    assert_eq!(
        run.reason("b"),
        Some(Reason::Upstream {
            upstream: "a".into(),
            status: ResultStatus::Unknown
        })
    );
}

#[test]
fn an_upstream_failed_in_an_earlier_run_skips_at_the_start() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut run = Run::new(&plan, setup(&plan));
    let effects = run.start(vec![
        Start::Hold {
            status: ResultStatus::Failed,
            reason: Reason::FailedEarlier { error: None },
        },
        Start::Submit,
    ]);
    assert_eq!(journal(&effects), [j(EventKind::Skipped, "b")]);
    assert_eq!(run.status("b"), Status::Skipped);
    assert_eq!(run.submits(), Vec::<&str>::new());
}

#[test]
fn a_stale_upstream_skips_its_dependant() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut s = setup(&plan);
    let feed_ttl = s.provider.timing.feed_ttl;
    s.records[0].url = Some("https://v/a.mp4".into());
    s.records[0].finished_at = Some(rfc3339(w0() - feed_ttl - Duration::from_secs(60)).into());
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Done, Start::Submit]);
    let effects = run.choose();
    assert_eq!(submitted(&effects), Vec::<usize>::new());
    assert_eq!(journal(&effects), [j(EventKind::Skipped, "b")]);
    assert_eq!(
        run.reason("b"),
        Some(Reason::UpstreamStale {
            upstream: "a".into(),
            feed_ttl
        })
    );
}

#[test]
fn a_fresh_upstream_from_an_earlier_run_feeds_its_dependant() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut s = setup(&plan);
    s.records[0].url = Some("https://v/a.mp4".into());
    s.records[0].finished_at = Some(rfc3339(w0() - Duration::from_secs(3600)).into());
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Done, Start::Submit]);
    assert_eq!(run.submits(), ["b"]);
}

#[test]
fn an_upstream_goes_stale_while_its_dependant_waits_for_a_slot() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut s = setup(&plan);
    let feed_ttl = s.provider.timing.feed_ttl;
    s.records[0].url = Some("https://v/a.mp4".into());
    s.records[0].finished_at = Some(rfc3339(w0() - feed_ttl + Duration::from_secs(60)).into());
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Done, Start::Submit]);
    run.advance(Duration::from_secs(120));
    assert_eq!(run.submits(), Vec::<&str>::new());
    assert_eq!(run.status("b"), Status::Skipped);
}

// --- selection ---

#[test]
fn unselected_shots_are_never_spawned_nor_counted() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[])]);
    let mut s = setup(&plan);
    s.selected = vec![true, false, true];
    let mut run = Run::started_with(&plan, s);
    assert_eq!(run.submits(), ["a", "c"]);
    assert_eq!(run.status("b"), Status::Pending);
    assert_eq!(run.core.progress_counts().total, 2);
    assert_eq!(run.core.progress_counts().in_flight, 2);
}

#[test]
fn an_unselected_dependant_of_a_failed_shot_is_not_skipped() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut s = setup(&plan);
    s.selected = vec![true, false];
    let mut run = Run::started_with(&plan, s);
    run.choose();
    let effects = run.fail_task("a");
    assert_eq!(journal(&effects), [j(EventKind::Failed, "a")]);
    assert_eq!(run.status("b"), Status::Pending);
}

#[test]
fn an_unselected_shot_done_earlier_counts_as_succeeded_in_the_results_only() {
    let plan = plan_of(&[("a", &[]), ("b", &[])]);
    let mut s = setup(&plan);
    s.selected = vec![false, true];
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Done, Start::Submit]);
    assert_eq!(run.status("a"), Status::Succeeded);
    assert_eq!(run.core.progress_counts().succeeded, 0);
    assert_eq!(run.core.result_counts()[&ResultStatus::Succeeded], 1);
}

// --- first steps ---

#[test]
fn first_steps_spawn_polls_and_downloads_and_count_what_is_done() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[])]);
    let mut s = setup(&plan);
    let submitted_at = w0() - Duration::from_secs(30);
    s.records[1].submitted_at = Some(rfc3339(submitted_at).into());
    let mut run = Run::new(&plan, s);
    let effects = run.start(vec![
        Start::Done,
        Start::Poll {
            task_id: "t-b".into(),
        },
        Start::Download {
            url: "https://v/c.mp4".into(),
        },
        Start::Submit,
    ]);
    let spawns: Vec<&Job> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Spawn(job) => Some(job),
            _ => None,
        })
        .collect();
    assert_eq!(
        spawns,
        [
            &Job::Poll {
                idx: 1,
                task_id: "t-b".into(),
                since: UNIX_EPOCH + Duration::from_millis(system_ms(submitted_at)),
            },
            &Job::Download {
                idx: 2,
                url: "https://v/c.mp4".into()
            }
        ]
    );
    let c = run.core.progress_counts();
    assert_eq!((c.succeeded, c.in_flight, c.pending), (1, 2, 1));
    assert!(
        notes(&effects)
            .iter()
            .any(|n| n.starts_with("sending 1 shot(s), 5 s of video")),
        "{:?}",
        notes(&effects)
    );
}

#[test]
fn a_poll_without_a_submit_time_counts_from_now() {
    let plan = plan_of(&[("a", &[])]);
    let mut run = Run::new(&plan, setup(&plan));
    run.advance(Duration::from_secs(5));
    let effects = run.start(vec![Start::Poll {
        task_id: "t-a".into(),
    }]);
    assert!(matches!(
        &effects[0],
        Effect::Spawn(Job::Poll { since, .. }) if *since == w0() + Duration::from_secs(5)
    ));
}

#[test]
fn an_unknown_hold_of_a_submit_cut_off_on_the_wire_is_journalled() {
    let plan = plan_of(&[("a", &[]), ("b", &[])]);
    let mut s = setup(&plan);
    s.records[0].submit_open = true;
    s.records[1].submit_open = true;
    let mut run = Run::new(&plan, s);
    let reason = Reason::UnknownSubmit { task_list: None };
    let effects = run.start(vec![
        Start::Hold {
            status: ResultStatus::Unknown,
            reason: reason.clone(),
        },
        Start::Hold {
            status: ResultStatus::Failed,
            reason: Reason::FailedEarlier { error: None },
        },
    ]);
    assert_eq!(journal(&effects), [j(EventKind::Unknown, "a")]);
    assert_eq!(run.status("a"), Status::Unknown);
    assert_eq!(run.reason("a"), Some(reason));
    assert_eq!(run.status("b"), Status::Failed);
}

// --- the journal lines ---

#[test]
fn a_submitting_line_carries_the_estimate_model_attempt_and_shard_at_the_time_given() {
    let plan = plan_of(&[("a", &[])]);
    let mut s = setup(&plan);
    s.shard = Some("2/3".into());
    s.records[0].attempts = 2;
    let mut run = Run::started_with(&plan, s);
    run.advance(Duration::from_millis(1500));
    let effects = run.choose();
    let e = entries(&effects)[0];
    assert_eq!(e.event, EventKind::Submitting);
    assert_eq!(e.ts, rfc3339(w0() + Duration::from_millis(1500)));
    assert_eq!(e.attempt, Some(3));
    assert_eq!(e.cost, Some(price(&plan)));
    assert_eq!(e.currency.as_deref(), Some("USD"));
    assert_eq!(e.model.as_deref(), Some("wan2.7-t2v-2026-04-25"));
    assert_eq!(e.shard.as_deref(), Some("2/3"));
    assert_eq!(
        run.core.record(0).submitting_at.as_ref().map(|t| t.text()),
        Some(e.ts.clone())
    );
    assert!(
        matches!(
            &effects[..],
            [
                Effect::Journal(_),
                Effect::Spawn(Job::Submit { idx: 0, .. })
            ]
        ),
        "the line comes before its submit: {effects:?}"
    );
}

#[test]
fn a_dashscope_run_journals_and_reports_the_native_model() {
    let plan = plan_of(&[("a", &[])]);
    let mut s = setup(&plan);
    s.provider = crate::api::dashscope::PROVIDER;
    let mut run = Run::started_with(&plan, s);
    let effects = run.choose();
    let native = crate::api::dashscope::native_model("wan2.7-t2v-2026-04-25").unwrap();
    assert_eq!(entries(&effects)[0].model.as_deref(), Some(native));
    assert_eq!(run.core.row(0).model, native);
}

#[test]
fn a_whole_shot_is_journalled_in_order_and_ends_succeeded() {
    let plan = plan_of(&[("a", &[])]);
    let mut run = Run::started(&plan);
    let mut effects = run.choose();
    effects.extend(run.accept("a", "t-a"));
    effects.extend(run.succeed("a"));
    effects.extend(run.download("a"));
    assert_eq!(
        journal(&effects),
        [
            j(EventKind::Submitting, "a"),
            j(EventKind::Submitted, "a"),
            j(EventKind::Succeeded, "a"),
            j(EventKind::Downloaded, "a"),
        ]
    );
    let r = run.core.record(0);
    assert_eq!(r.status, Status::Succeeded);
    assert_eq!(r.task_id.as_deref(), Some("t-a"));
    assert_eq!(r.url.as_deref(), Some("https://v/a.mp4"));
    assert_eq!(r.file.as_deref(), Some("a.mp4"));
    assert_eq!(r.bytes, Some(2048));
    let d = entries(&effects)[3];
    assert_eq!(d.task_id, None);
    assert_eq!(entries(&effects)[2].task_id.as_deref(), Some("t-a"));
    assert!(notes(&effects).contains(&"done a"));
    assert!(run.core.all_succeeded());
}

// --- counts ---

#[test]
fn counts_follow_every_state() {
    let plan = plan_of(&[
        ("a", &[]),
        ("b", &[]),
        ("c", &[]),
        ("d", &["c"]),
        ("e", &[]),
    ]);
    let mut s = setup(&plan);
    s.limiter = Limiter::new(3, FAST, None);
    let mut run = Run::started_with(&plan, s);
    let c = run.core.progress_counts();
    assert_eq!((c.total, c.pending, c.in_flight), (5, 5, 0));
    run.choose();
    run.finish("a");
    run.accept("b", "t-b");
    run.fail_task("c");
    let c = run.core.progress_counts();
    assert_eq!(
        (c.succeeded, c.in_flight, c.failed, c.skipped, c.pending),
        (1, 1, 1, 1, 1)
    );
    assert_eq!(c.remaining(), 2);
    run.choose();
    run.refuse("e", lost());
    let c = run.core.progress_counts();
    assert_eq!((c.unknown, c.in_flight, c.pending), (1, 1, 0));
    assert_eq!(run.core.polling(), 1);
    let counts = run.core.result_counts();
    assert_eq!(counts[&ResultStatus::Pending], 1, "b is still polled");
    assert_eq!(counts[&ResultStatus::Unknown], 1);
    assert!(!run.core.all_succeeded());
}

// --- answers to submits ---

#[test]
fn a_rejected_body_fails_with_no_cost_and_skips_its_dependants() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut run = Run::started(&plan);
    run.choose();
    assert_eq!(run.core.run_cost().spent, price(&plan));
    let effects = run.refuse("a", bad_request());
    assert_eq!(
        journal(&effects),
        [j(EventKind::Failed, "a"), j(EventKind::Skipped, "b")]
    );
    assert_eq!(run.core.run_cost().spent, Money::ZERO);
    assert_eq!(run.core.record(0).spent, Money::ZERO);
    assert_eq!(run.core.row(0).cost, None, "no task, no cost");
    assert_eq!(
        run.reason("a"),
        Some(Reason::failed(
            bad_request().to_string(),
            Advice::RetryFailed
        ))
    );
    assert!(
        run.reason("a")
            .unwrap()
            .to_string()
            .contains("--retry-failed")
    );
    assert_eq!(run.submits(), Vec::<&str>::new(), "never sent again");
}

#[test]
fn a_5xx_delays_the_shot_then_sends_it_again() {
    let plan = plan_of(&[("a", &[])]);
    let mut run = Run::started(&plan);
    run.choose();
    let effects = run.refuse("a", bad_gateway());
    assert_eq!(journal(&effects), [j(EventKind::Refused, "a")]);
    assert_eq!(run.status("a"), Status::Delayed);
    assert_eq!(run.core.run_cost().spent, Money::ZERO);
    assert_eq!(run.submits(), Vec::<&str>::new());
    let wake = run.core.next_wake().expect("the retry's time") - run.t0;
    assert!(
        wake >= FAST.base.mul_f64(0.8) && wake <= FAST.base.mul_f64(1.2),
        "{wake:?}"
    );
    run.wake();
    assert_eq!(run.submits(), ["a"]);
    assert_eq!(run.core.record(0).attempts, 2);
    assert_eq!(run.core.record(0).server_errors, 1);
}

#[test]
fn a_5xx_retry_goes_early_once_another_submit_is_accepted() {
    let plan = plan_of(&[("a", &[]), ("b", &[])]);
    let mut run = Run::started(&plan);
    run.choose();
    run.refuse("a", bad_gateway());
    assert_eq!(run.submits(), Vec::<&str>::new());
    run.accept("b", "t-b");
    assert_eq!(run.submits(), ["a"], "no wait for the backoff");
}

#[test]
fn a_shot_answered_5xx_too_often_fails() {
    let plan = plan_of(&[("a", &[])]);
    let mut run = Run::started(&plan);
    let retries = crate::exec::policy::MAX_SERVER_RETRIES;
    for _ in 0..retries {
        assert_eq!(run.submits(), ["a"]);
        run.refuse("a", bad_gateway());
        run.advance(FAST.cap * 2);
    }
    assert_eq!(run.submits(), ["a"]);
    let effects = run.refuse("a", bad_gateway());
    assert_eq!(
        journal(&effects),
        [j(EventKind::Refused, "a"), j(EventKind::Failed, "a")]
    );
    assert_eq!(run.status("a"), Status::Failed);
    assert_eq!(run.core.record(0).attempts, retries + 1);
    assert_eq!(run.core.run_cost().spent, Money::ZERO);
    assert!(
        run.reason("a")
            .unwrap()
            .to_string()
            .contains("--retry-failed")
    );
}

#[test]
fn a_429_with_nothing_in_flight_delays_the_shot_by_its_backoff() {
    let plan = plan_of(&[("a", &[])]);
    let mut run = Run::started(&plan);
    run.choose();
    let effects = run.refuse("a", too_many(None));
    assert_eq!(journal(&effects), [j(EventKind::Refused, "a")]);
    assert_eq!(run.status("a"), Status::Delayed);
    assert_eq!(run.core.record(0).rate_limited, 1);
    assert_eq!(run.core.limit(), 4, "a rate refusal leaves the bound alone");
    assert_eq!(run.submits(), Vec::<&str>::new());
    run.wake();
    assert_eq!(run.submits(), ["a"]);
}

#[test]
fn a_429_goes_early_after_another_accept_but_never_before_retry_after() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[])]);
    let mut run = Run::started(&plan);
    run.choose();
    run.refuse("a", too_many(None));
    run.refuse("b", too_many(Some(Duration::from_secs(30))));
    run.accept("c", "t-c");
    assert_eq!(run.submits(), ["a"], "b's Retry-After has not passed");
    run.advance(Duration::from_secs(29));
    assert_eq!(run.submits(), Vec::<&str>::new());
    run.advance(Duration::from_secs(1));
    assert_eq!(run.submits(), ["b"]);
}

#[test]
fn refusals_at_one_level_of_tasks_in_flight_lower_the_bound() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[]), ("e", &[])]);
    let mut s = setup(&plan);
    s.limiter = Limiter::new(5, FAST, None);
    let mut run = Run::started_with(&plan, s);
    assert_eq!(run.submits().len(), 5);
    run.accept("a", "t-a");
    run.accept("b", "t-b");
    for id in ["c", "d", "e"] {
        run.refuse(id, too_many(None));
    }
    assert_eq!(run.core.limit(), 2, "three refusals at two tasks in flight");
    for id in ["c", "d", "e"] {
        assert_ne!(run.status(id), Status::Submitting);
    }
    run.advance(FAST.cap * 2);
    assert_eq!(run.submits(), Vec::<&str>::new(), "the bound is full");
}

#[test]
fn a_refused_key_stops_the_run_and_keeps_the_shot_pending() {
    let plan = plan_of(&[("a", &[]), ("b", &[])]);
    let mut s = setup(&plan);
    s.limiter = Limiter::new(1, FAST, None);
    let mut run = Run::started_with(&plan, s);
    run.choose();
    let effects = run.refuse(
        "a",
        ApiError::Auth {
            status: 401,
            message: "bad key".into(),
        },
    );
    assert_eq!(journal(&effects), [j(EventKind::Refused, "a")]);
    assert_eq!(run.status("a"), Status::Pending);
    assert!(matches!(run.core.stop(), Some(Stop::Fatal(m)) if m.contains("API key")));
    assert_eq!(run.submits(), Vec::<&str>::new());
    assert_eq!(run.core.run_cost().spent, Money::ZERO);
}

#[test]
fn a_key_refused_while_polling_stops_the_run() {
    let plan = plan_of(&[("a", &[]), ("b", &[])]);
    let mut s = setup(&plan);
    s.limiter = Limiter::new(1, FAST, None);
    let mut run = Run::started_with(&plan, s);
    run.choose();
    run.accept("a", "t-a");
    let effects = run.handle(Event::AuthLost {
        idx: 0,
        error: "403".into(),
    });
    assert!(matches!(&effects[0], Effect::Error(line) if line.contains("a: 403")));
    assert_eq!(run.status("a"), Status::Pending);
    assert!(matches!(run.core.take_stop(), Stop::Fatal(_)));
}

// --- lost answers ---

#[test]
fn a_lost_answer_leaves_the_shot_unknown_counted_paid_with_advice() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut run = Run::started(&plan);
    run.choose();
    let effects = run.refuse("a", lost());
    assert_eq!(
        journal(&effects),
        [j(EventKind::Unknown, "a"), j(EventKind::Skipped, "b")]
    );
    assert_eq!(run.status("a"), Status::Unknown);
    assert_eq!(
        run.core.run_cost().spent,
        price(&plan),
        "it may have a task"
    );
    let reason = run.reason("a").unwrap();
    assert!(matches!(&reason, Reason::Failed { advice: None, .. }));
    assert!(
        reason.to_string().contains("--resubmit-unknown"),
        "{reason}"
    );
    assert_eq!(run.core.row(0).cost, Some(price(&plan)));
    run.advance(FAST.cap * 2);
    assert_eq!(run.submits(), Vec::<&str>::new(), "never resent on its own");
}

#[test]
fn on_dashscope_a_lost_answer_is_searched_for_once_nothing_is_left_to_send() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[])]);
    let mut s = setup(&plan);
    s.provider = crate::api::dashscope::PROVIDER;
    s.limiter = Limiter::new(2, FAST, None);
    let mut run = Run::started_with(&plan, s);
    run.choose();
    let effects = run.refuse("a", lost());
    assert_eq!(run.status("a"), Status::Reconciling);
    assert!(notes(&effects)[0].contains("looked for in DashScope's task list"));
    let effects = run.choose();
    assert_eq!(submitted(&effects), [2]);
    assert!(searches(&effects).is_empty(), "c is still on the wire");
    run.accept("b", "t-b");
    run.accept("c", "t-c");
    let effects = run.choose();
    let targets = searches(&effects);
    assert_eq!(targets.len(), 1);
    let t = &targets[0][0];
    assert_eq!(t.idx, 0);
    assert_eq!(
        *t.same_key,
        HashSet::from(["t-b".to_owned(), "t-c".to_owned()])
    );
    assert_eq!(t.before_ms, None);
    assert!(searches(&run.choose()).is_empty(), "searched once");
}

#[test]
fn an_interrupted_run_does_not_search() {
    let plan = plan_of(&[("a", &[])]);
    let mut s = setup(&plan);
    s.provider = crate::api::dashscope::PROVIDER;
    let mut run = Run::started_with(&plan, s);
    run.choose();
    run.refuse("a", lost());
    run.core.interrupt();
    assert!(searches(&run.choose()).is_empty());
}

fn target(plan: &Plan, idx: usize, before_ms: Option<u64>) -> Target {
    let t0_ms = system_ms(w0()) - 3_600_000;
    Target {
        idx,
        signature: Signature::of(&plan.shots[idx]).expect("a prompt"),
        t0_ms,
        t1_ms: t0_ms + 30_000,
        same_key: Arc::default(),
        before_ms,
    }
}

/// A DashScope run whose shots' journals say each submit's outcome is unknown.
fn searching(plan: &Plan, resubmit: bool) -> Setup {
    let mut s = setup(plan);
    s.provider = crate::api::dashscope::PROVIDER;
    s.resubmit_unknown = resubmit;
    s.first_search = (0..plan.shots.len())
        .map(|i| Some(target(plan, i, Some(system_ms(w0())))))
        .collect();
    s
}

fn matched(idx: usize, task: &str, created_ms: u64) -> Event {
    Event::Reconciled {
        idx,
        verdict: Verdict::Matched {
            task_id: task.into(),
            created_ms,
        },
    }
}

#[test]
fn earlier_unknown_submits_are_searched_for_at_the_start_with_the_unselected_as_rivals() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &["a"])]);
    let mut s = searching(&plan, false);
    s.selected = vec![true, false, true];
    s.first_search[2] = None;
    s.records[0].submit_open = true;
    let mut run = Run::new(&plan, s);
    let effects = run.start(vec![
        Start::Hold {
            status: ResultStatus::Unknown,
            reason: Reason::Searching {
                task_list: "DashScope",
            },
        },
        Start::Submit,
        Start::Submit,
    ]);
    assert_eq!(journal(&effects), [j(EventKind::Unknown, "a")]);
    let targets = searches(&effects);
    assert_eq!(targets.len(), 1);
    let idxs: Vec<usize> = targets[0].iter().map(|t| t.idx).collect();
    assert_eq!(idxs, [0, 1], "b's search rides along as a rival");
    assert_eq!(run.status("a"), Status::Reconciling);
    assert_eq!(
        run.reason("a"),
        Some(Reason::Searching {
            task_list: "DashScope"
        })
    );
    assert_eq!(run.status("c"), Status::Waiting);
    assert_eq!(run.core.progress_counts().unknown, 1);
    run.handle(Event::Reconciled {
        idx: 1,
        verdict: Verdict::NoMatch {
            unfinished: vec![],
            no_prompt: vec![],
        },
    });
    assert_eq!(
        run.status("b"),
        Status::Pending,
        "a rival's verdict is dropped"
    );
}

#[test]
fn a_sure_match_reattaches_and_polls_the_task_unsent() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut s = searching(&plan, false);
    s.first_search[1] = None;
    s.records[0].submitting_at = Some(rfc3339(w0() - Duration::from_secs(3600)).into());
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Submit, Start::Submit]);
    let created_ms = system_ms(w0()) - 3_590_000;
    let effects = run.handle(matched(0, "t-found", created_ms));
    assert_eq!(journal(&effects), [j(EventKind::Reattached, "a")]);
    assert_eq!(entries(&effects)[0].task_id.as_deref(), Some("t-found"));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Spawn(Job::Poll { idx: 0, task_id, since })
            if task_id == "t-found" && *since == UNIX_EPOCH + Duration::from_millis(created_ms)
    )));
    let r = run.core.record(0);
    assert_eq!(r.status, Status::InFlight);
    assert_eq!(r.task_id.as_deref(), Some("t-found"));
    assert_eq!(r.submitted_at, r.submitting_at);
    assert_eq!(r.error, None);
    assert_eq!(run.submits(), Vec::<&str>::new(), "a is never resent");
    run.succeed("a");
    assert_eq!(run.submits(), ["b"]);
}

#[test]
fn a_match_on_a_task_the_journal_names_is_not_taken() {
    let plan = plan_of(&[("a", &[])]);
    let mut s = searching(&plan, true);
    s.known_tasks.insert("t-other".into());
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Submit]);
    let effects = run.handle(matched(0, "t-other", system_ms(w0()) - 3_590_000));
    assert_eq!(journal(&effects), Vec::new());
    assert_eq!(run.status("a"), Status::Unknown);
    assert_eq!(
        run.submits(),
        Vec::<&str>::new(),
        "not resent: that task fits it"
    );
}

#[test]
fn resubmit_unknown_sends_again_only_when_no_task_fits() {
    let plan = plan_of(&[("a", &[]), ("b", &[])]);
    let mut run = Run::new(&plan, searching(&plan, true));
    run.start(vec![Start::Submit, Start::Submit]);
    let effects = run.handle(Event::Reconciled {
        idx: 0,
        verdict: Verdict::NoMatch {
            unfinished: vec![],
            no_prompt: vec![],
        },
    });
    assert!(notes(&effects)[0].contains("sending it again as asked"));
    run.handle(Event::Reconciled {
        idx: 1,
        verdict: Verdict::NoMatch {
            unfinished: vec!["t-running".into()],
            no_prompt: vec![],
        },
    });
    assert_eq!(run.submits(), ["a"]);
    assert_eq!(
        run.status("b"),
        Status::Unknown,
        "a running task may be its own"
    );
}

#[test]
fn without_resubmit_unknown_an_unfound_submit_stays_unknown_saying_why() {
    let plan = plan_of(&[("a", &[])]);
    let mut run = Run::new(&plan, searching(&plan, false));
    run.start(vec![Start::Submit]);
    let verdict = Verdict::NoMatch {
        unfinished: vec![],
        no_prompt: vec![],
    };
    run.handle(Event::Reconciled {
        idx: 0,
        verdict: verdict.clone(),
    });
    assert_eq!(run.status("a"), Status::Unknown);
    assert_eq!(
        run.reason("a"),
        Some(Reason::explained(verdict.explain(
            "a",
            "DashScope",
            std::time::Duration::from_secs(24 * 3600)
        )))
    );
}

#[test]
fn a_match_created_as_this_run_began_with_the_same_prompt_open_may_be_ours() {
    let mut plan = plan_of(&[("a", &[]), ("b", &[])]);
    plan.shots[1].body = plan.shots[0].body.clone();
    let mut s = searching(&plan, false);
    s.first_search[1] = None;
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Submit, Start::Submit]);
    assert_eq!(run.submits(), ["b"]);
    let effects = run.handle(matched(0, "t-new", system_ms(w0()) + 1_000));
    assert_eq!(journal(&effects), Vec::new());
    assert_eq!(run.status("a"), Status::Unknown);
    assert!(
        run.reason("a").unwrap().to_string().contains("t-new"),
        "{:?}",
        run.reason("a")
    );
}

#[test]
fn a_later_submit_answer_naming_the_same_task_detaches_the_reattached_shot() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &["a"])]);
    let mut s = searching(&plan, false);
    s.first_search[1] = None;
    s.first_search[2] = None;
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Submit, Start::Submit, Start::Submit]);
    run.handle(matched(0, "t-1", system_ms(w0()) - 3_590_000));
    run.succeed("a");
    run.download("a");
    assert_eq!(run.submits(), ["b", "c"]);
    let effects = run.accept("b", "t-1");
    assert_eq!(
        journal(&effects),
        [j(EventKind::Unknown, "a"), j(EventKind::Submitted, "b")]
    );
    assert_eq!(entries(&effects)[0].task_id.as_deref(), Some("t-1"));
    assert_eq!(
        held(&effects).len() + submitted(&effects).len(),
        0,
        "nothing held, nothing sent"
    );
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Supersede { idx: 0, file, task_id, bytes: Some(2048), .. }
            if file == "a.mp4" && task_id == "t-1"
    )));
    let r = run.core.record(0);
    assert_eq!(r.status, Status::Unknown);
    assert_eq!(
        (r.task_id.as_ref(), r.url.as_ref(), r.file.as_ref()),
        (None, None, None)
    );
    assert!(matches!(
        r.error.as_deref(),
        Some(Reason::Failed {
            advice: Some(Advice::ResubmitUnknown),
            ..
        })
    ));
    assert_eq!(run.status("c"), Status::Submitting, "c was sent before");
    let late = Event::Downloaded {
        idx: 0,
        done: Downloaded {
            sha256: "cd".repeat(32),
            bytes: 1,
        },
    };
    assert!(!run.core.wants(&late));
    assert!(
        run.handle(late).is_empty(),
        "a detached shot's reports are dropped"
    );
    assert_eq!(run.status("a"), Status::Unknown);
}

#[test]
fn a_second_sure_match_of_the_same_task_detaches_the_first_and_takes_neither() {
    let plan = plan_of(&[("a", &[]), ("b", &[])]);
    let mut run = Run::new(&plan, searching(&plan, false));
    run.start(vec![Start::Submit, Start::Submit]);
    let created = system_ms(w0()) - 3_590_000;
    run.handle(matched(0, "t-1", created));
    let effects = run.handle(matched(1, "t-1", created));
    assert_eq!(journal(&effects), [j(EventKind::Unknown, "a")]);
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Supersede { .. })),
        "nothing was downloaded"
    );
    assert_eq!(run.status("a"), Status::Unknown);
    assert_eq!(run.status("b"), Status::Unknown);
    assert!(
        run.reason("a")
            .unwrap()
            .to_string()
            .contains("the search for `b`")
    );
}

// --- --max-cost ---

#[test]
fn max_cost_holds_the_shot_past_it_and_what_waits_below() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &["b"]), ("d", &["c"])]);
    let mut s = setup(&plan);
    let p = price(&plan);
    s.max_cost = Some(p);
    let mut run = Run::started_with(&plan, s);
    let effects = run.choose();
    assert_eq!(submitted(&effects), [1], "b heads the longest chain");
    let holds = held(&effects);
    let ids: Vec<&str> = holds
        .iter()
        .map(|(i, _)| plan.shots[*i].id.as_str())
        .collect();
    assert_eq!(ids, ["a"]);
    assert!(
        matches!(&holds[0].1, Reason::OverBudget { cap, .. } if *cap == PriceBook::default().show(p))
    );
    assert_eq!(run.status("a"), Status::Pending);
    run.accept("b", "t-b");
    run.succeed("b");
    let effects = run.choose();
    let ids: Vec<usize> = held(&effects).iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, [2, 3], "c, then d below it");
    assert_eq!(
        run.reason("d"),
        Some(Reason::BudgetUpstream {
            upstream: "c".into()
        })
    );
    let cost = run.core.run_cost();
    assert_eq!(
        (cost.spent, cost.unsent, cost.unsent_cost),
        (p, 3, p + p + p)
    );
    assert_eq!(journal(&effects), Vec::new(), "a hold is not journalled");
}

#[test]
fn a_refused_submit_gives_its_estimate_back_to_the_next_that_fits_in_plan_order() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[])]);
    let mut s = setup(&plan);
    s.max_cost = Some(price(&plan));
    let mut run = Run::started_with(&plan, s);
    assert_eq!(run.submits(), ["a"]);
    assert_eq!(run.core.run_cost().unsent, 2);
    run.refuse("a", bad_request());
    assert_eq!(run.status("b"), Status::Ready);
    assert_eq!(run.status("c"), Status::Ready);
    let effects = run.choose();
    assert_eq!(submitted(&effects), [1]);
    assert_eq!(held(&effects).len(), 1);
    assert_eq!(run.status("c"), Status::Pending);
    assert_eq!(run.core.run_cost().unsent, 1);
}

#[test]
fn a_429_gives_its_estimate_back_but_the_shot_keeps_its_turn() {
    let plan = plan_of(&[("a", &[]), ("b", &[])]);
    let mut s = setup(&plan);
    s.max_cost = Some(price(&plan));
    let mut run = Run::started_with(&plan, s);
    assert_eq!(run.submits(), ["a"]);
    run.refuse("a", too_many(None));
    assert_eq!(run.core.run_cost().spent, Money::ZERO);
    assert_eq!(run.status("b"), Status::Pending, "still held");
    run.wake();
    assert_eq!(run.submits(), ["a"]);
    assert_eq!(run.core.run_cost().unsent, 1);
}

#[test]
fn a_stopped_run_does_not_unhold() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[])]);
    let mut s = setup(&plan);
    s.max_cost = Some(price(&plan));
    let mut run = Run::started_with(&plan, s);
    run.choose();
    run.core.interrupt();
    run.refuse("a", bad_request());
    assert_eq!(run.status("b"), Status::Pending);
    assert_eq!(run.submits(), Vec::<&str>::new());
    assert_eq!(run.core.run_cost().unsent, 2);
}

#[test]
fn a_held_shot_whose_other_upstream_fails_is_skipped_and_no_longer_unsent() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &["a", "b"])]);
    let mut s = setup(&plan);
    s.max_cost = Some(price(&plan));
    let mut run = Run::started_with(&plan, s);
    assert_eq!(run.submits(), ["a"]);
    assert_eq!(run.status("c"), Status::Pending, "held below b");
    assert_eq!(run.core.run_cost().unsent, 2);
    run.accept("a", "t-a");
    let effects = run.fail_task("a");
    assert_eq!(
        journal(&effects),
        [j(EventKind::Failed, "a"), j(EventKind::Skipped, "c")]
    );
    assert_eq!(run.core.run_cost().unsent, 1, "only b is left unsent");
}

#[test]
fn a_shot_sent_again_after_a_search_waits_behind_a_held_upstream() {
    let plan = plan_of(&[("a", &[]), ("d", &["a"]), ("b", &[]), ("c", &["b"])]);
    let mut s = searching(&plan, true);
    for i in 0..3 {
        s.first_search[i] = None;
    }
    s.max_cost = Some(price(&plan));
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Submit; 4]);
    assert_eq!(run.status("c"), Status::Reconciling);
    assert_eq!(run.submits(), ["a"]);
    assert_eq!(run.status("b"), Status::Pending);
    let effects = run.handle(Event::Reconciled {
        idx: 3,
        verdict: Verdict::NoMatch {
            unfinished: vec![],
            no_prompt: vec![],
        },
    });
    assert_eq!(held(&effects).len(), 1);
    assert_eq!(run.status("c"), Status::Pending);
    assert_eq!(
        run.reason("c"),
        Some(Reason::BudgetUpstream {
            upstream: "b".into()
        })
    );
    assert_eq!(run.core.run_cost().unsent, 2);
}

#[test]
fn spent_before_adds_to_what_this_run_bills() {
    let plan = plan_of(&[("a", &[])]);
    let mut s = setup(&plan);
    let p = price(&plan);
    s.spent_before = p + p;
    let mut run = Run::started_with(&plan, s);
    run.choose();
    let cost = run.core.run_cost();
    assert_eq!((cost.spent, cost.billed), (p, p + p + p));
    assert_eq!(run.core.record(0).spent, p);
}

// --- interrupts ---

#[test]
fn an_interrupt_sends_nothing_more_but_waits_for_submits_on_the_wire() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[])]);
    let mut s = setup(&plan);
    s.limiter = Limiter::new(2, FAST, None);
    let mut run = Run::started_with(&plan, s);
    assert_eq!(run.submits(), ["a", "b"]);
    run.core.interrupt();
    let effects = run.collect();
    assert!(matches!(&effects[..], [Effect::Error(line)] if line.starts_with("interrupted")));
    assert_eq!(run.core.stop(), Some(&Stop::Interrupted));
    assert_eq!(run.core.submitting(), 2);
    let effects = run.accept("a", "t-a");
    assert_eq!(journal(&effects), [j(EventKind::Submitted, "a")]);
    run.refuse("b", bad_request());
    assert_eq!(run.core.submitting(), 0);
    assert_eq!(run.submits(), Vec::<&str>::new());
    assert_eq!(run.status("c"), Status::Ready);
    assert_eq!(run.core.take_stop(), Stop::Interrupted);
}

#[test]
fn a_fatal_stop_is_not_turned_into_an_interrupt() {
    let plan = plan_of(&[("a", &[])]);
    let mut run = Run::started(&plan);
    run.choose();
    run.refuse(
        "a",
        ApiError::Auth {
            status: 401,
            message: "bad".into(),
        },
    );
    run.core.interrupt();
    assert!(matches!(run.core.take_stop(), Stop::Fatal(_)));
}

// --- downloads ---

#[test]
fn an_expired_url_expires_the_shot_and_skips_its_dependants() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut run = Run::started(&plan);
    run.choose();
    run.accept("a", "t-a");
    run.succeed("a");
    assert_eq!(run.submits(), ["b"], "a URL feeds at once");
    let effects = run.handle(Event::DownloadError {
        idx: 0,
        error: ApiError::Gone { status: 410 },
    });
    assert_eq!(journal(&effects), [j(EventKind::Expired, "a")]);
    assert_eq!(run.status("a"), Status::Expired);
    assert_eq!(run.status("b"), Status::Submitting, "already sent");
}

#[test]
fn a_disk_error_while_downloading_fails_the_shot_and_stops_the_run() {
    let plan = plan_of(&[("a", &[])]);
    let mut run = Run::started(&plan);
    run.choose();
    run.accept("a", "t-a");
    run.succeed("a");
    let effects = run.handle(Event::DownloadError {
        idx: 0,
        error: ApiError::Io {
            path: "a.mp4".into(),
            message: "disk full".into(),
        },
    });
    assert_eq!(journal(&effects), Vec::new(), "a rerun downloads it again");
    assert_eq!(run.status("a"), Status::Failed);
    assert!(matches!(run.core.stop(), Some(Stop::Fatal(m)) if m.contains("disk full")));
}

#[test]
fn changed_rows_are_reported_once() {
    let plan = plan_of(&[("a", &[]), ("b", &[]), ("c", &[])]);
    let mut s = setup(&plan);
    s.limiter = Limiter::new(1, FAST, None);
    let mut run = Run::started_with(&plan, s);
    run.core.take_changed();
    run.choose();
    let mut changed = run.core.take_changed();
    changed.sort_unstable();
    assert_eq!(changed, [0]);
    assert!(run.core.take_changed().is_empty());
}

// --- invariants over random runs ---

mod random {
    use proptest::prelude::*;

    use super::*;

    /// A job the shell would have running.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Running {
        Submit(usize),
        Poll(usize),
        Download(usize),
    }

    #[derive(Debug, Clone)]
    enum Step {
        Choose,
        /// Answers the running job `pick` (modulo their number) the way `kind` says.
        Answer(usize, u8),
        Advance(u8),
        Interrupt,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => Just(Step::Choose),
            6 => (any::<usize>(), 0u8..10).prop_map(|(p, k)| Step::Answer(p, k)),
            1 => (0u8..90).prop_map(Step::Advance),
            1 => (0u8..20).prop_map(|n| if n == 0 { Step::Interrupt } else { Step::Choose }),
        ]
    }

    /// The shell's view of a run, checking every batch of effects as it applies it.
    struct Shell<'a> {
        run: Run<'a>,
        running: Vec<Running>,
        /// By plan index: a task exists or may (accepted, or its answer lost).
        paid: Vec<bool>,
        /// What this run's submits should be estimated at, from the answers given.
        charged: Money,
        price: Money,
        cap: Option<Money>,
        selected: Vec<bool>,
        tasks: usize,
    }

    impl Shell<'_> {
        fn apply(&mut self, effects: &[Effect]) {
            let mut journalled = HashSet::new();
            for e in effects {
                match e {
                    Effect::Journal(e) if e.event == EventKind::Submitting => {
                        journalled.insert(e.id.clone());
                    }
                    Effect::Spawn(Job::Submit { idx, .. }) => {
                        let i = *idx;
                        let id = &self.run.plan.shots[i].id;
                        assert!(journalled.contains(id), "{id} sent before its line");
                        assert!(self.selected[i], "{id} is not selected");
                        assert!(!self.paid[i], "{id} sent again though it has a task");
                        assert!(
                            !self.running.contains(&Running::Submit(i)),
                            "{id} sent twice at once"
                        );
                        assert!(self.run.core.stop().is_none(), "sent after a stop");
                        self.charged += self.price;
                        self.running.push(Running::Submit(i));
                    }
                    Effect::Spawn(Job::Poll { idx, .. }) => self.running.push(Running::Poll(*idx)),
                    Effect::Spawn(Job::Download { idx, .. }) => {
                        self.running.push(Running::Download(*idx))
                    }
                    _ => {}
                }
            }
            self.check();
        }

        fn check(&self) {
            let core = &self.run.core;
            let c = core.progress_counts();
            let sum = c.succeeded
                + c.in_flight
                + c.pending
                + c.failed
                + c.skipped
                + c.unknown
                + c.expired;
            assert_eq!(c.total, self.selected.iter().filter(|&&s| s).count());
            assert_eq!(sum, c.total, "{c:?}");
            assert_eq!(core.run_cost().spent, self.charged);
            if let Some(cap) = self.cap {
                assert!(self.charged <= cap, "{} over {cap}", self.charged);
            }
            let submits = (self.running.iter())
                .filter(|r| matches!(r, Running::Submit(_)))
                .count();
            assert_eq!(core.submitting(), submits);
            for r in &self.running {
                if let Running::Submit(i) = r {
                    assert_eq!(core.record(*i).status, Status::Submitting);
                }
            }
        }

        fn choose(&mut self) {
            let effects = self.run.choose();
            self.apply(&effects);
        }

        fn answer(&mut self, pick: usize, kind: u8) {
            if self.running.is_empty() {
                return;
            }
            let job = self.running.remove(pick % self.running.len());
            let effects = match job {
                Running::Submit(i) => {
                    let id = self.run.plan.shots[i].id.clone();
                    let error = match kind {
                        0..=3 => None,
                        4 => Some(too_many(None)),
                        5 => Some(bad_gateway()),
                        6 => Some(bad_request()),
                        7 => Some(lost()),
                        8 => Some(too_many(Some(Duration::from_secs(3)))),
                        _ => Some(ApiError::Auth {
                            status: 401,
                            message: "no".into(),
                        }),
                    };
                    match error {
                        None => {
                            self.paid[i] = true;
                            self.tasks += 1;
                            self.running.push(Running::Poll(i));
                            self.run.accept(&id, &format!("t{}", self.tasks))
                        }
                        Some(e @ ApiError::Ambiguous { .. }) => {
                            self.paid[i] = true;
                            self.run.refuse(&id, e)
                        }
                        Some(e) => {
                            self.charged = self.charged.saturating_sub(self.price);
                            self.run.refuse(&id, e)
                        }
                    }
                }
                Running::Poll(i) => match kind {
                    0..=6 => {
                        self.running.push(Running::Download(i));
                        let id = self.run.plan.shots[i].id.clone();
                        self.run.succeed(&id)
                    }
                    7 | 8 => self.run.handle(Event::Failed {
                        idx: i,
                        error: "failed".into(),
                    }),
                    _ => self.run.handle(Event::GaveUp {
                        idx: i,
                        error: "no news".into(),
                    }),
                },
                Running::Download(i) => match kind {
                    0..=7 => {
                        let id = self.run.plan.shots[i].id.clone();
                        self.run.download(&id)
                    }
                    8 => self.run.handle(Event::DownloadError {
                        idx: i,
                        error: ApiError::Gone { status: 404 },
                    }),
                    _ => self.run.handle(Event::DownloadError {
                        idx: i,
                        error: ApiError::Unusable {
                            message: "not a video".into(),
                            retry: false,
                        },
                    }),
                },
            };
            self.apply(&effects);
        }
    }

    fn plan_from(edges: &[Vec<bool>], n: usize) -> Plan {
        let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let ups: Vec<Vec<&str>> = (0..n)
            .map(|i| {
                (0..i)
                    .filter(|&j| edges[i][j])
                    .map(|j| ids[j].as_str())
                    .collect()
            })
            .collect();
        let shots: Vec<(&str, &[&str])> = (0..n)
            .map(|i| (ids[i].as_str(), ups[i].as_slice()))
            .collect();
        plan_of(&shots)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the provider answers and in whatever order: a submit is journalled
        /// before it leaves, never sent twice at once nor again once it has (or may have) a
        /// task, never after a stop or past `--max-cost`; the estimate follows the answers;
        /// the counts add up; and a run that is left alone ends with every shot settled.
        #[test]
        fn no_run_sends_a_task_twice_or_loses_one(
            n in 1usize..8,
            edges in proptest::collection::vec(
                proptest::collection::vec(proptest::bool::weighted(0.3), 8), 8),
            unselected in proptest::collection::vec(proptest::bool::weighted(0.15), 8),
            concurrency in 1usize..4,
            cap in proptest::option::weighted(0.3, 1u64..5),
            steps in proptest::collection::vec(step(), 0..80),
        ) {
            let plan = plan_from(&edges, n);
            let price = price(&plan);
            let mut s = setup(&plan);
            s.limiter = Limiter::new(concurrency, FAST, None);
            // A selection brings the upstreams its shots need along (`select`).
            s.selected = (0..n).map(|i| !unselected[i]).collect();
            for i in (0..n).rev() {
                if s.selected[i] {
                    for &u in &plan.shots[i].depends_on {
                        s.selected[u] = true;
                    }
                }
            }
            let cap = cap.map(|k| (0..k).map(|_| price).sum::<Money>());
            s.max_cost = cap;
            let selected = s.selected.clone();
            let run = Run::started_with(&plan, s);
            let mut shell = Shell {
                run,
                running: Vec::new(),
                paid: vec![false; n],
                charged: Money::ZERO,
                price,
                cap,
                selected,
                tasks: 0,
            };
            for step in steps {
                match step {
                    Step::Choose => shell.choose(),
                    Step::Answer(pick, kind) => shell.answer(pick, kind),
                    Step::Advance(s) => shell.run.advance(Duration::from_secs(u64::from(s))),
                    Step::Interrupt => {
                        shell.run.core.interrupt();
                        shell.run.collect();
                    }
                }
            }
            // Left alone: every job answers well and the clock runs to each wake.
            for _ in 0..1000 {
                shell.choose();
                if !shell.running.is_empty() {
                    shell.answer(0, 0);
                } else if shell.run.core.next_wake().is_some() {
                    shell.run.wake();
                } else {
                    break;
                }
            }
            prop_assert!(shell.running.is_empty());
            let core = &shell.run.core;
            for i in 0..n {
                let status = core.record(i).status;
                if !shell.selected[i] {
                    prop_assert_eq!(status, Status::Pending);
                    continue;
                }
                let unsent = matches!(
                    status,
                    Status::Waiting | Status::Ready | Status::Delayed
                );
                prop_assert!(
                    status.is_terminal()
                        || status == Status::Pending
                        || (unsent && core.stop().is_some()),
                    "s{} is left {:?} ({:?})", i, status, core.stop()
                );
                if status == Status::Pending && core.stop().is_none() {
                    prop_assert!(cap.is_some(), "s{} pending without a cap or a stop", i);
                    prop_assert!(core.record(i).error.is_some(), "s{} held saying why", i);
                }
            }
            if core.stop().is_none() && cap.is_none() {
                prop_assert_eq!(core.progress_counts().remaining(), 0);
            }
        }
    }
}

// --- more first steps and searches ---

#[test]
fn the_sending_line_names_the_cap() {
    let plan = plan_of(&[("a", &[]), ("b", &[])]);
    let mut s = setup(&plan);
    let p = price(&plan);
    s.max_cost = Some(p);
    let mut run = Run::new(&plan, s);
    let effects = run.start(vec![Start::Submit, Start::Submit]);
    let book = PriceBook::default();
    let line = format!(
        "sending 2 shot(s), 10 s of video, est. {} (--max-cost {})",
        book.show(p + p),
        book.show(p)
    );
    assert_eq!(notes(&effects), [line.as_str()]);
}

#[test]
fn a_shot_a_sibling_shard_sent_is_skipped_and_so_is_what_needs_it() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut run = Run::new(&plan, setup(&plan));
    let effects = run.start(vec![
        Start::Hold {
            status: ResultStatus::Skipped,
            reason: Reason::SentFromSibling {
                dir: "../shard-1-of-2".into(),
            },
        },
        Start::Submit,
    ]);
    assert_eq!(journal(&effects), [j(EventKind::Skipped, "b")]);
    let c = run.core.progress_counts();
    assert_eq!((c.skipped, c.pending), (2, 0));
    assert_eq!(run.submits(), Vec::<&str>::new());
}

#[test]
fn a_dependant_waits_for_its_upstreams_search_and_goes_once_it_is_reattached_and_done() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut s = searching(&plan, false);
    s.first_search[1] = None;
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Submit, Start::Submit]);
    assert_eq!(run.status("b"), Status::Waiting);
    assert_eq!(run.submits(), Vec::<&str>::new());
    run.handle(matched(0, "t-a", system_ms(w0()) - 3_590_000));
    assert_eq!(run.submits(), Vec::<&str>::new(), "a has no URL yet");
    run.succeed("a");
    assert_eq!(run.submits(), ["b"]);
}

#[test]
fn an_upstream_whose_search_finds_nothing_skips_its_dependant_as_unknown() {
    let plan = plan_of(&[("a", &[]), ("b", &["a"])]);
    let mut s = searching(&plan, false);
    s.first_search[1] = None;
    let mut run = Run::new(&plan, s);
    run.start(vec![Start::Submit, Start::Submit]);
    let effects = run.handle(Event::Reconciled {
        idx: 0,
        verdict: Verdict::Ambiguous {
            candidates: vec!["t-1".into(), "t-2".into()],
        },
    });
    assert_eq!(journal(&effects), [j(EventKind::Skipped, "b")]);
    assert_eq!(
        run.reason("b"),
        Some(Reason::Upstream {
            upstream: "a".into(),
            status: ResultStatus::Unknown
        })
    );
    assert!(run.reason("a").unwrap().to_string().contains("t-1, t-2"));
}

#[test]
fn a_search_verdict_for_a_shot_no_longer_searched_changes_nothing() {
    let plan = plan_of(&[("a", &[])]);
    let mut run = Run::new(&plan, searching(&plan, false));
    run.start(vec![Start::Submit]);
    run.handle(Event::Reconciled {
        idx: 0,
        verdict: Verdict::TooMany { count: 500 },
    });
    let before = run.reason("a");
    let effects = run.handle(matched(0, "t-late", system_ms(w0()) - 3_590_000));
    assert!(journal(&effects).is_empty());
    assert_eq!(run.reason("a"), before);
    assert_eq!(run.status("a"), Status::Unknown);
}
