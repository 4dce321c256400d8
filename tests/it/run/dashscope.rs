//! The executor over the provider seam with DashScope's native protocol: the same plan (the
//! gateway-form bodies the planner writes) runs against `sim --provider dashscope`, chains
//! included, and each shot is paid once.

use std::time::Duration;

use std::path::Path;

use serde_json::Value;
use shotlist::api::{ApiError, ApiKey, Client, ClientConfig, dashscope};
use shotlist::exec::{Outcome, RunOptions};
use shotlist::plan::{Plan, PlannedShot};
use shotlist::sim::SimHandle;
use shotlist::sim::{SimConfig, SimProvider};

use super::*;

fn native(p429: f64) -> SimConfig {
    SimConfig {
        provider: SimProvider::Dashscope,
        p429,
        ..sim_config()
    }
}

async fn run_native(plan: &Plan, sim: &SimHandle) -> Outcome {
    let client = Client::for_provider(
        dashscope::PROVIDER,
        ClientConfig {
            base_url: format!("{}/api/v1", sim.base_url()),
            api_key: ApiKey::new(KEY),
            timeout: Duration::from_secs(10),
        },
    )
    .expect("client");
    tokio::time::timeout(
        Duration::from_secs(60),
        shotlist::exec::execute(plan, client, opts(3)),
    )
    .await
    .expect("run finished within a minute")
    .expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_runs_on_dashscope_and_each_shot_is_paid_once() {
    let sim = start_sim(native(0.3)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("a", "native a", None),
            shot("b", "native b", Some("a")),
            shot("c", "native c", None),
        ],
    );
    assert_eq!(run_native(&p, &sim).await.exit_code(), 0);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 3, "{stats:#}");
    assert_eq!(count(&stats, "submit", "400"), 0, "{stats:#}");
    assert_eq!(statuses(&out), ["succeeded", "succeeded", "succeeded"]);
    for id in ["a", "b", "c"] {
        assert_eq!(
            std::fs::read(out.join(format!("videos/{id}.mp4"))).unwrap(),
            shotlist::sim::video::CLIP
        );
    }
    assert_eq!(run_native(&p, &sim).await.exit_code(), 0);
    assert_eq!(
        stats_of(&sim).await["tasks_created"],
        3,
        "a rerun sends nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashscope_prompts_and_usage_seconds_reach_the_results_and_survive_a_rerun() {
    let sim = start_sim(native(0.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut extended = t2v_body("extend me");
    extended["metadata"]["parameters"]["prompt_extend"] = serde_json::json!(true);
    let mut a = shot("a", "extend me", None);
    a.body = extended.into();
    let p = plan(&out, vec![a, shot("b", "keep me", Some("a"))]);
    assert_eq!(run_native(&p, &sim).await.exit_code(), 0);

    let check = |out: &std::path::Path| {
        let rows = results_json(out);
        let tail = shotlist::sim::dashscope::EXTEND_TAIL;
        assert_eq!(rows[0]["orig_prompt"], "extend me", "{rows:#?}");
        assert_eq!(rows[0]["actual_prompt"], format!("extend me {tail}"));
        assert_eq!(rows[1]["orig_prompt"], "keep me");
        assert_eq!(
            rows[1]["actual_prompt"],
            Value::Null,
            "prompt_extend: false"
        );
        for row in &rows {
            assert_eq!(row["usage_s"], 5.0, "{row:#}");
            assert_eq!(row["input_s"], 0.0);
            assert_eq!(row["output_s"], 5.0);
        }
        let csv = results_csv(out);
        let mut r = csv::Reader::from_path(out.join("results.csv")).unwrap();
        let header = r.headers().unwrap().clone();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        assert_eq!(&csv[0][col("actual_prompt")], format!("extend me {tail}"));
        assert_eq!(&csv[1][col("usage_s")], "5.0");
    };
    check(&out);
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert_eq!(journal.matches("\"usage_s\":5.0").count(), 2, "{journal}");

    std::fs::remove_file(out.join("results.json")).unwrap();
    assert_eq!(run_native(&p, &sim).await.exit_code(), 0);
    assert_eq!(
        stats_of(&sim).await["tasks_created"],
        2,
        "a rerun sends nothing"
    );
    check(&out);
}

/// A native client of `sim` (for creating tasks by hand).
pub(super) fn native_client(sim: &SimHandle) -> dashscope::DashScopeClient {
    native_client_as(sim, KEY)
}

pub(super) fn native_client_as(sim: &SimHandle, key: &str) -> dashscope::DashScopeClient {
    dashscope::DashScopeClient::new(dashscope::DashScopeConfig {
        region: dashscope::Region::default(),
        base_url: Some(sim.base_url()),
        api_key: ApiKey::new(key),
        workspace: None,
        timeout: Duration::from_secs(10),
    })
    .expect("native client")
}

/// A t2v shot with a seed (takes: the same prompt, different seeds).
pub(super) fn take(id: &str, prompt: &str, seed: u32) -> PlannedShot {
    let mut s = shot(id, prompt, None);
    let mut body = t2v_body(prompt);
    body["metadata"]["parameters"]["seed"] = seed.into();
    s.key = blake3::hash(body.to_string().as_bytes())
        .to_hex()
        .to_string();
    s.seed = Some(seed);
    s.body = body.into();
    s
}

/// What an earlier run that crashed after losing these shots' create answers left: a
/// `submitting` line, the create itself sent `ago` earlier (when `sim` is given; its answer
/// lost, the task made), and an `unknown` line.
pub(super) async fn lost_earlier(
    out: &Path,
    shots: &[&PlannedShot],
    sim: Option<&SimHandle>,
    ago: Duration,
) {
    use shotlist::journal::{Entry, EventKind, Journal};
    std::fs::create_dir_all(out).unwrap();
    let mut journal = Journal::open(&out.join("journal.jsonl")).unwrap();
    let stamp = |t: std::time::SystemTime| humantime::format_rfc3339_millis(t).to_string();
    for s in shots {
        let t0 = std::time::SystemTime::now() - ago;
        let mut e = Entry::new(EventKind::Submitting, &s.id, &s.key).attempt(1);
        e.ts = stamp(t0);
        journal.append(&e).unwrap();
        if let Some(sim) = sim {
            let lost = native_client(sim).submit(&s.body.value()).await;
            assert!(matches!(lost, Err(ApiError::Ambiguous { .. })), "{lost:?}");
        }
        let mut e = Entry::new(EventKind::Unknown, &s.id, &s.key).error("answer lost");
        e.ts = stamp(t0 + Duration::from_millis(500));
        journal.append(&e).unwrap();
    }
}

pub(super) fn lossy(p_lost: f64) -> SimConfig {
    SimConfig {
        p_lost,
        seed: 7,
        ..native(0.0)
    }
}

pub(super) async fn run_with(plan: &Plan, sim: &SimHandle, o: RunOptions) -> Outcome {
    let client = Client::for_provider(
        dashscope::PROVIDER,
        ClientConfig {
            base_url: sim.base_url(),
            api_key: ApiKey::new(KEY),
            timeout: Duration::from_secs(10),
        },
    )
    .expect("client");
    tokio::time::timeout(
        Duration::from_secs(60),
        shotlist::exec::execute(plan, client, o),
    )
    .await
    .expect("run finished within a minute")
    .expect("run")
}

pub(super) fn events_of(out: &Path, event: &str) -> Vec<String> {
    journal_events(out)
        .iter()
        .filter(|e| e["event"] == event)
        .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(super) fn error_of(out: &Path, id: &str) -> String {
    results_json(out)
        .iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["error"].as_str())
        .unwrap_or_default()
        .to_owned()
}

pub(super) fn task_ids(stats: &Value) -> Vec<String> {
    stats["tasks"]
        .as_array()
        .expect("task list")
        .iter()
        .map(|t| t["task_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_create_answers_are_found_in_the_task_list_and_paid_once() {
    let sim = start_sim(lossy(0.5)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut shots = vec![
        shot("a", "lossy a", None),
        shot("b", "lossy b after a", Some("a")),
    ];
    shots.extend((0..5).map(|i| shot(&format!("s{i}"), &format!("lossy shot {i}"), None)));
    let p = plan(&out, shots);
    let outcome = run_with(&p, &sim, opts(3)).await;
    let stats = stats_of(&sim).await;
    let lost = count(&stats, "submit", "lost");
    assert!(lost >= 2, "the seed loses some answers: {stats:#}");
    assert_eq!(outcome.exit_code(), 0, "{:?}", results_json(&out));
    assert_eq!(stats["tasks_created"], 7, "{stats:#}");
    assert!(statuses(&out).iter().all(|s| s == "succeeded"));
    for s in &p.shots {
        assert!(out.join("videos").join(&s.file).is_file(), "{}", s.id);
    }
    assert_eq!(events_of(&out, "reattached").len() as u64, lost);
    assert_eq!(events_of(&out, "unknown").len() as u64, lost);

    assert_eq!(run_with(&p, &sim, opts(3)).await.exit_code(), 0);
    assert_eq!(
        stats_of(&sim).await["tasks_created"],
        7,
        "a rerun sends nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_reattaches_the_journals_unknowns_and_what_waited_for_them_runs() {
    let sim = start_sim(lossy(1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("a", "crashed a", None),
            shot("b", "crashed b after a", Some("a")),
            shot("c", "crashed c", None),
        ],
    );
    lost_earlier(
        &out,
        &[&p.shots[0], &p.shots[2]],
        Some(&sim),
        Duration::ZERO,
    )
    .await;
    assert_eq!(stats_of(&sim).await["tasks_created"], 2);
    std::fs::create_dir_all(out.join("videos")).unwrap();
    std::fs::write(out.join("videos/a.mp4"), "placed by hand").unwrap();

    let outcome = run_with(&p, &sim, opts(3)).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", results_json(&out));
    assert_eq!(statuses(&out), ["succeeded", "succeeded", "succeeded"]);
    assert_eq!(
        std::fs::read(out.join("videos/a.mp4")).unwrap(),
        shotlist::sim::video::CLIP
    );
    let moved = std::fs::read_dir(out.join("videos/superseded"))
        .unwrap()
        .count();
    assert_eq!(
        moved, 1,
        "the file in the way was moved aside, not overwritten"
    );
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 3, "{stats:#}");
    let mut reattached = events_of(&out, "reattached");
    reattached.sort();
    assert_eq!(reattached, ["a", "b", "c"], "b's own create was lost too");
    assert!(count(&stats, "list", "200") >= 2, "{stats:#}");
}

/// Two takes of one prompt, differing only by seed, whose creates on `sim` were both lost: the
/// plan and the two tasks made.
pub(super) async fn two_lost_takes(sim: &SimHandle, out: &Path) -> (Plan, Vec<String>) {
    let p = plan(
        out,
        vec![take("t1", "same words", 1), take("t2", "same words", 2)],
    );
    lost_earlier(out, &[&p.shots[0], &p.shots[1]], Some(sim), Duration::ZERO).await;
    let tasks = task_ids(&stats_of(sim).await);
    assert_eq!(tasks.len(), 2);
    (p, tasks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takes_that_differ_only_by_seed_stay_unknown_naming_their_candidates() {
    let sim = start_sim(lossy(1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (p, tasks) = two_lost_takes(&sim, &out).await;

    let mut o = opts(2);
    o.flags = flags(false, true);
    let outcome = run_with(&p, &sim, o).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown", "unknown"]);
    for id in ["t1", "t2"] {
        let error = error_of(&out, id);
        for task in &tasks {
            assert!(error.contains(task.as_str()), "{id} names {task}: {error}");
        }
        assert!(error.contains("cannot be told apart"), "{error}");
    }
    assert!(events_of(&out, "reattached").is_empty());
    assert_eq!(
        stats_of(&sim).await["tasks_created"],
        2,
        "nothing sent, not even with --resubmit-unknown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_without_a_task_is_resent_only_when_asked() {
    let sim = start_sim(lossy(0.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(&out, vec![shot("a", "never created", None)]);
    lost_earlier(&out, &[&p.shots[0]], None, Duration::from_secs(600)).await;

    assert_eq!(run_with(&p, &sim, opts(1)).await.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown"]);
    let error = error_of(&out, "a");
    assert!(error.contains("most likely created nothing"), "{error}");
    assert!(error.contains("--resubmit-unknown"), "{error}");
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 0);
    assert!(count(&stats, "list", "200") >= 1, "{stats:#}");

    let mut o = opts(1);
    o.flags = flags(false, true);
    assert_eq!(run_with(&p, &sim, o).await.exit_code(), 0);
    assert_eq!(statuses(&out), ["succeeded"]);
    assert_eq!(stats_of(&sim).await["tasks_created"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_older_than_a_day_is_reported_not_reconcilable() {
    let sim = start_sim(lossy(0.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(&out, vec![shot("a", "long ago", None)]);
    lost_earlier(&out, &[&p.shots[0]], None, Duration::from_secs(25 * 3600)).await;

    assert_eq!(run_with(&p, &sim, opts(1)).await.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown"]);
    let error = error_of(&out, "a");
    assert!(error.contains("over 24 h ago"), "{error}");
    assert!(error.contains("cannot be found"), "{error}");
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 0);
    assert_eq!(count(&stats, "list", "200"), 0, "{stats:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_a_search_that_waits_for_a_running_candidate() {
    let sim = start_sim(SimConfig {
        gen_time: Duration::from_secs(120),
        ..lossy(1.0)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(&out, vec![shot("a", "slow and lost", None)]);
    lost_earlier(&out, &[&p.shots[0]], Some(&sim), Duration::ZERO).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let o = RunOptions {
        stop: Some(rx),
        ..opts(1)
    };
    // Stopped once the search has queried the running candidate twice, not after a fixed delay
    // a slow machine may spend before the search starts.
    let url = sim.base_url();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let url = url.clone();
            let stats = tokio::task::spawn_blocking(move || crate::support::sim_stats(&url));
            if count(&stats.await.unwrap(), "query", "200") >= 2 {
                break;
            }
        }
        let _ = stop.send(true);
    });
    let started = std::time::Instant::now();
    let outcome = run_with(&p, &sim, o).await;
    assert_eq!(outcome.stop, shotlist::exec::Stop::Interrupted);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(statuses(&out), ["unknown"]);
    assert!(events_of(&out, "reattached").is_empty());
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 1);
    assert!(
        count(&stats, "query", "200") >= 2,
        "queried while it ran: {stats:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_queries_within_the_runs_query_budget() {
    let sim = start_sim(lossy(1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        (0..8)
            .map(|i| shot(&format!("s{i}"), &format!("budget {i}"), None))
            .collect(),
    );
    let all: Vec<&PlannedShot> = p.shots.iter().collect();
    lost_earlier(&out, &all, Some(&sim), Duration::ZERO).await;
    let o = RunOptions {
        queries_per_second: 4,
        ..opts(8)
    };
    assert_eq!(run_with(&p, &sim, o).await.exit_code(), 0);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 8);
    assert_eq!(events_of(&out, "reattached").len(), 8);
    assert!(count(&stats, "query", "200") >= 16, "{stats:#}");
    let busiest = stats["requests_per_second"]["query"].as_u64().unwrap();
    assert!(busiest <= 4, "{busiest} queries in one second: {stats:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowded_window_is_not_searched_task_by_task() {
    let sim = start_sim(lossy(1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(&out, vec![shot("a", "crowded", None)]);
    lost_earlier(&out, &[&p.shots[0]], Some(&sim), Duration::ZERO).await;
    let others = native_client(&sim);
    for i in 0..shotlist::exec::reconcile::MAX_CANDIDATES {
        let _ = others
            .submit(&t2v_body(&format!("a colleague's {i}")))
            .await;
    }
    let before = count(&stats_of(&sim).await, "query", "200");
    assert_eq!(run_with(&p, &sim, opts(1)).await.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown"]);
    let error = error_of(&out, "a");
    assert!(error.contains("more than the 20 checked"), "{error}");
    let stats = stats_of(&sim).await;
    assert_eq!(count(&stats, "query", "200"), before, "{stats:#}");
    assert_eq!(stats["tasks_created"], 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_task_list_is_read_a_bounded_number_of_pages() {
    use crate::api::fake::{Fake, json};
    let created = dashscope::now_ms() - 600_000;
    let fake = Fake::start(move |seen| {
        let data: Vec<Value> = (0..100)
            .map(|i| {
                serde_json::json!({"task_id": format!("t-{i}"), "status": "SUCCEEDED",
                    "model_name": "wan2.7-t2v", "gmt_create": created})
            })
            .collect();
        if seen.path.starts_with("/api/v1/tasks?") {
            json(
                200,
                serde_json::json!({"total": 1u64 << 40, "total_page": 1u64 << 40, "data": data}),
            )
        } else {
            json(
                500,
                serde_json::json!({"code": "InternalError", "message": "no"}),
            )
        }
    })
    .await;
    let (_dir, _out, error) = one_lost_against(&fake.base, "hostile", opts(1)).await;
    assert!(error.contains("could not be searched"), "{error}");
    let seen = fake.seen();
    assert_eq!(seen.len(), dashscope::MAX_PAGES as usize, "only list pages");
    assert!(seen.iter().all(|s| s.method == "GET"));
}

/// A colleague's key on our account sends the same prompt in the same minute as our lost
/// create: the list shows both. The journal's run also created `sib` with a normal answer,
/// which gives our key's `api_key_id`: the shot is re-attached to our task. A folder whose
/// journal shows no such task cannot tell the two apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_task_with_the_same_prompt_is_told_apart_by_key_id() {
    use shotlist::journal::{Entry, EventKind, Journal};
    const COLLEAGUE: &str = "sk-run-colleague-9876";
    let sim = start_sim(SimConfig {
        key: Some(KEY.into()),
        account_keys: vec![COLLEAGUE.into()],
        ..native(0.0)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (out, alone) = (dir.path().join("out"), dir.path().join("alone"));
    let p = plan(
        &out,
        vec![
            shot("a", "same words, same minute", None),
            shot("sib", "a sibling", None),
        ],
    );
    let (a, sib) = (&p.shots[0], &p.shots[1]);
    let submit = async |key: &str, s: &PlannedShot| {
        let made = native_client_as(&sim, key).submit(&s.body.value()).await;
        made.expect("created").task_id
    };
    let entry = |event, s: &PlannedShot| Entry::new(event, &s.id, &s.key).attempt(1);
    std::fs::create_dir_all(&out).unwrap();
    let mut journal = Journal::open(&out.join("journal.jsonl")).unwrap();
    journal.append(&entry(EventKind::Submitting, sib)).unwrap();
    journal.append(&entry(EventKind::Submitting, a)).unwrap();
    let ours = submit(KEY, a).await;
    let theirs = submit(COLLEAGUE, a).await;
    let sib_task = submit(KEY, sib).await;
    journal
        .append(&entry(EventKind::Submitted, sib).task_id(&sib_task))
        .unwrap();
    journal
        .append(&Entry::new(EventKind::Unknown, &a.id, &a.key).error("answer lost"))
        .unwrap();
    drop(journal);
    let lone = plan(&alone, vec![a.clone()]);
    lost_earlier(&alone, &[&lone.shots[0]], None, Duration::ZERO).await;
    assert_eq!(stats_of(&sim).await["tasks_created"], 3);

    assert_eq!(run_with(&lone, &sim, opts(2)).await.exit_code(), 1);
    assert_eq!(statuses(&alone), ["unknown"]);
    let error = error_of(&alone, "a");
    for task in [&ours, &theirs] {
        assert!(error.contains(task.as_str()), "names {task}: {error}");
    }

    let outcome = run_with(&p, &sim, opts(2)).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", results_json(&out));
    assert_eq!(statuses(&out), ["succeeded", "succeeded"]);
    let reattached: Vec<Value> = (journal_events(&out).into_iter())
        .filter(|e| e["event"] == "reattached")
        .collect();
    assert_eq!(reattached.len(), 1, "{reattached:?}");
    assert_eq!(
        (
            reattached[0]["id"].as_str(),
            reattached[0]["task_id"].as_str()
        ),
        (Some("a"), Some(ours.as_str()))
    );
    assert_eq!(
        stats_of(&sim).await["tasks_created"],
        3,
        "nothing sent twice"
    );
    let written = std::fs::read_to_string(out.join("journal.jsonl")).unwrap()
        + &std::fs::read_to_string(out.join("results.json")).unwrap();
    assert!(!written.contains("sim-"), "no key id is written: {written}");
}

/// A client of the axum fake at `base`, with a short timeout.
fn fake_client(base: &str) -> Client {
    Client::for_provider(
        dashscope::PROVIDER,
        ClientConfig {
            base_url: base.to_owned(),
            api_key: ApiKey::new(KEY),
            timeout: Duration::from_secs(5),
        },
    )
    .expect("client")
}

async fn run_bounded(plan: &Plan, client: Client, o: RunOptions, limit: Duration) -> Outcome {
    tokio::time::timeout(limit, shotlist::exec::execute(plan, client, o))
        .await
        .expect("the run ends in bounded time")
        .expect("run")
}

/// One shot whose create an earlier run lost, run against the fake at `base` with `o`: it ends
/// `unknown` (exit 1); gives the folder, the shot's `error` and the outcome.
async fn one_lost_against(
    base: &str,
    prompt: &str,
    o: RunOptions,
) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(&out, vec![shot("a", prompt, None)]);
    lost_earlier(&out, &[&p.shots[0]], None, Duration::from_secs(600)).await;
    let outcome = run_bounded(&p, fake_client(base), o, Duration::from_secs(60)).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown"]);
    let error = error_of(&out, "a");
    (dir, out, error)
}

/// The list answers 5xx, however often asked: the search cannot tell whether the lost create
/// made a task, so even `--resubmit-unknown` does not send it (that may pay twice); the next
/// run searches again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_that_errors_does_not_resend_even_when_asked() {
    use crate::api::fake::{Fake, json};
    let fake = Fake::start(|seen| match seen.method.as_str() {
        "GET" => json(
            503,
            serde_json::json!({"code": "ServiceUnavailable", "message": "busy"}),
        ),
        _ => json(
            200,
            serde_json::json!({"output": {"task_id": "would-be-paid-twice", "task_status": "PENDING"}}),
        ),
    })
    .await;
    let mut o = opts(1);
    o.flags = flags(false, true);
    let (_dir, _out, error) = one_lost_against(&fake.base, "list is down", o).await;
    assert!(error.contains("could not be searched"), "{error}");
    assert!(error.contains("running again searches again"), "{error}");
    let seen = fake.seen();
    assert!(
        seen.iter().all(|s| s.method == "GET"),
        "nothing created: {:?}",
        seen.iter().map(|s| &s.path).collect::<Vec<_>>()
    );
    assert!(seen.len() > 1, "the list was retried");
}

/// A list answering 429 with the longest Retry-After, for ever: the search gives up within
/// its wait (`reconcile_wait`), not after retries of minutes each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_on_the_task_list_ends_within_the_search_wait() {
    use crate::api::fake::{Fake, Reply};
    let fake = Fake::start(|_| Reply {
        status: 429,
        headers: vec![("retry-after", "3600".into())],
        body: br#"{"code": "Throttling", "message": "slow down"}"#.to_vec(),
    })
    .await;
    let o = RunOptions {
        reconcile_wait: Duration::from_secs(2),
        ..opts(1)
    };
    // Honouring the hour-long Retry-After would hold the run far past the helper's limit.
    let (_dir, _out, error) = one_lost_against(&fake.base, "throttled", o).await;
    assert!(error.contains("could not be searched"), "{error}");
    assert!(fake.seen().iter().all(|s| s.method == "GET"));
}

/// Takes t1 and t2 (the same prompt) were both lost; only t1's create made a task. `--only t2`
/// must not adopt t1's task: t1 is unknown too, out of the selection or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shot_out_of_the_selection_keeps_its_task_from_a_selected_take() {
    let sim = start_sim(lossy(1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![take("t1", "same words", 1), take("t2", "same words", 2)],
    );
    lost_earlier(&out, &[&p.shots[0]], Some(&sim), Duration::ZERO).await;
    lost_earlier(&out, &[&p.shots[1]], None, Duration::ZERO).await;
    let t1_task = task_ids(&stats_of(&sim).await);
    assert_eq!(t1_task.len(), 1);

    let mut o = opts(2);
    o.only = vec!["t2".into()];
    o.flags = flags(false, true);
    assert_eq!(run_with(&p, &sim, o).await.exit_code(), 1);
    assert!(
        events_of(&out, "reattached").is_empty(),
        "t1's task is not t2's"
    );
    let error = error_of(&out, "t2");
    assert!(error.contains(t1_task[0].as_str()), "{error}");
    assert_eq!(
        stats_of(&sim).await["tasks_created"],
        1,
        "nothing sent while a task fits"
    );
}

/// A hostile task list: ids with control characters, `/` and `..`, the key, an overlong id,
/// and one task listed 30 times (pages shift while an account is busy). None of it reaches a
/// query URL, the journal, the results or the logs; a task listed twice is one task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_task_list_is_read_safely() {
    use crate::api::fake::{Fake, json};
    let created = dashscope::now_ms() - 600_000;
    let fake = Fake::start(move |seen| {
        let item = |id: String| {
            serde_json::json!({"task_id": id, "status": "SUCCEEDED",
                "model_name": "wan2.7-t2v", "gmt_create": created})
        };
        let mut data: Vec<Value> = ["\u{1b}[2Jcleared", "../../services/x", "a/b", KEY]
            .iter()
            .map(|id| item((*id).to_owned()))
            .collect();
        data.push(item("x".repeat(300)));
        data.push(item(format!("t-{KEY}")));
        data.extend((0..30).map(|_| item("twice-listed".into())));
        if seen.path.starts_with("/api/v1/tasks?") {
            json(
                200,
                serde_json::json!({"total": 36, "total_page": 1, "data": data}),
            )
        } else if seen.path == "/api/v1/tasks/twice-listed" {
            json(
                200,
                serde_json::json!({"output": {"task_id": "twice-listed", "task_status": "SUCCEEDED",
                    "orig_prompt": "someone else's words", "video_url": "https://v/x.mp4"}}),
            )
        } else {
            json(
                404,
                serde_json::json!({"code": "NotFound", "message": "no"}),
            )
        }
    })
    .await;
    let (_dir, out, error) = one_lost_against(&fake.base, "hostile list", opts(1)).await;
    assert!(error.contains("most likely created nothing"), "{error}");
    let queried: Vec<String> = (fake.seen().into_iter())
        .filter(|s| s.path.starts_with("/api/v1/tasks/"))
        .map(|s| s.path)
        .collect();
    assert_eq!(queried, ["/api/v1/tasks/twice-listed"], "queried once");
    let written = std::fs::read_to_string(out.join("journal.jsonl")).unwrap()
        + &std::fs::read_to_string(out.join("results.json")).unwrap()
        + &std::fs::read_to_string(out.join("results.csv")).unwrap();
    for bad in ["\u{1b}", "\\u001b", "services/x", "a/b", KEY, "xxxxxxxxxx"] {
        assert!(!written.contains(bad), "{bad:?} written: {written}");
    }
}

/// Ctrl-C while a search waits for the running task, then a rerun: found once, paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_stopped_midway_finds_the_task_once_on_the_rerun() {
    let sim = start_sim(SimConfig {
        gen_time: Duration::from_secs(3),
        ..lossy(1.0)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("a", "stopped search", None),
            shot("b", "after a", Some("a")),
        ],
    );
    // b's create is lost too: only a's is made by hand, b is sent by the run.
    lost_earlier(&out, &[&p.shots[0]], Some(&sim), Duration::ZERO).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = stop.send(true);
    });
    let o = RunOptions {
        stop: Some(rx),
        ..opts(2)
    };
    let outcome = run_with(&p, &sim, o).await;
    assert_eq!(outcome.stop, shotlist::exec::Stop::Interrupted);
    assert!(events_of(&out, "reattached").is_empty());

    let outcome = run_with(&p, &sim, opts(2)).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", results_json(&out));
    assert_eq!(statuses(&out), ["succeeded", "succeeded"]);
    let mut reattached = events_of(&out, "reattached");
    reattached.sort();
    assert_eq!(reattached, ["a", "b"]);
    assert_eq!(stats_of(&sim).await["tasks_created"], 2, "each paid once");
    assert_eq!(run_with(&p, &sim, opts(2)).await.exit_code(), 0);
    assert_eq!(
        stats_of(&sim).await["tasks_created"],
        2,
        "a third run sends nothing"
    );
}

/// The lost create's task is still queued when the search's wait ends: it shows no prompt
/// yet, so it may be the shot's. `--resubmit-unknown` does not send the shot while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_still_running_when_the_wait_ends_is_not_paid_again() {
    let sim = start_sim(SimConfig {
        gen_time: Duration::from_secs(120),
        ..lossy(1.0)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(&out, vec![shot("a", "long queue", None)]);
    lost_earlier(&out, &[&p.shots[0]], Some(&sim), Duration::ZERO).await;
    let task = task_ids(&stats_of(&sim).await).remove(0);
    let mut o = RunOptions {
        reconcile_wait: Duration::from_secs(1),
        ..opts(1)
    };
    o.flags = flags(false, true);
    assert_eq!(run_with(&p, &sim, o).await.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown"]);
    let error = error_of(&out, "a");
    assert!(
        error.contains(&task) && error.contains("still running"),
        "{error}"
    );
    assert!(error.contains("does not send it"), "{error}");
    assert_eq!(stats_of(&sim).await["tasks_created"], 1, "not paid twice");
}

/// A list page holding far more tasks than asked for (each with a huge model name) is refused,
/// not kept: memory stays bounded and the shot stays `unknown` saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_list_page_is_refused() {
    use crate::api::fake::{Fake, json};
    let created = dashscope::now_ms() - 600_000;
    let fake = Fake::start(move |seen| {
        if !seen.path.starts_with("/api/v1/tasks?") {
            return json(
                404,
                serde_json::json!({"code": "NotFound", "message": "no"}),
            );
        }
        let data: Vec<Value> = (0..5000)
            .map(|i| {
                serde_json::json!({"task_id": format!("t{i}"), "status": "SUCCEEDED",
                    "model_name": "m".repeat(500), "gmt_create": created})
            })
            .collect();
        json(
            200,
            serde_json::json!({"total": 5000, "total_page": 1, "data": data}),
        )
    })
    .await;
    let (_dir, _out, error) = one_lost_against(&fake.base, "flooded", opts(1)).await;
    assert!(error.contains("5000 tasks for a page of 100"), "{error}");
    assert_eq!(fake.seen().len(), 1, "one page read, nothing queried");
}

/// A crash right after the `submitting` line (no `unknown` line): the rerun journals the
/// unknown, finds the task the create made and re-attaches it; nothing is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_create_is_reattached_without_an_unknown_line() {
    use shotlist::journal::{Entry, EventKind, Journal};
    let sim = start_sim(lossy(1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(&out, vec![shot("a", "cut mid create", None)]);
    let a = &p.shots[0];
    std::fs::create_dir_all(&out).unwrap();
    let mut journal = Journal::open(&out.join("journal.jsonl")).unwrap();
    let e = Entry::new(EventKind::Submitting, &a.id, &a.key).attempt(1);
    journal.append(&e).unwrap();
    drop(journal);
    let lost = native_client(&sim).submit(&a.body.value()).await;
    assert!(matches!(lost, Err(ApiError::Ambiguous { .. })), "{lost:?}");

    let mut o = opts(1);
    o.flags = flags(false, true);
    assert_eq!(run_with(&p, &sim, o).await.exit_code(), 0);
    assert_eq!(statuses(&out), ["succeeded"]);
    assert_eq!(events_of(&out, "unknown"), ["a"]);
    assert_eq!(events_of(&out, "reattached"), ["a"]);
    assert_eq!(stats_of(&sim).await["tasks_created"], 1, "not sent again");
}

/// An earlier run lost take t1's create (it made no task) and crashed just before this run,
/// which sends take t2 (the same prompt, another seed) and loses its answer too. t1's window
/// closes 3 s into the run, so its search lists again once t2's task exists: a task created as
/// this run began, while t2's answer is unknown, is not taken for t1's. t2 finds it; a rerun
/// sees it named by the journal, and `--resubmit-unknown` then sends t1, which made nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_right_after_a_crash_does_not_adopt_a_task_it_just_created() {
    let sim = start_sim(lossy(1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![take("t1", "one prompt", 1), take("t2", "one prompt", 2)],
    );
    let skew = shotlist::exec::reconcile::SKEW;
    lost_earlier(&out, &[&p.shots[0]], None, skew - Duration::from_secs(3)).await;
    let o = RunOptions {
        reconcile_wait: Duration::from_secs(20),
        ..opts(2)
    };
    assert_eq!(run_with(&p, &sim, o).await.exit_code(), 1);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 1, "{stats:#}");
    let t2_task = task_ids(&stats).remove(0);
    assert_eq!(statuses(&out), ["unknown", "succeeded"]);
    assert_eq!(events_of(&out, "reattached"), ["t2"]);
    let error = error_of(&out, "t1");
    assert!(
        error.contains(&t2_task) && error.contains("this run's own submit"),
        "{error}"
    );

    assert_eq!(run_with(&p, &sim, opts(2)).await.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown", "succeeded"]);
    assert!(
        error_of(&out, "t1").contains("most likely created nothing"),
        "{}",
        error_of(&out, "t1")
    );
    assert_eq!(stats_of(&sim).await["tasks_created"], 1, "nothing sent");

    let mut o = opts(2);
    o.flags = flags(false, true);
    assert_eq!(run_with(&p, &sim, o).await.exit_code(), 0);
    assert_eq!(statuses(&out), ["succeeded", "succeeded"]);
    assert_eq!(stats_of(&sim).await["tasks_created"], 2, "t1 paid once");
    let mut reattached = events_of(&out, "reattached");
    reattached.sort();
    assert_eq!(reattached, ["t1", "t2"], "t1's resent answer was lost too");
}

/// The task every create of [`slow_create_fake`] names, and the one it lists once told to.
const SLOW_TASK: &str = "0d5e-task";
const SLOW_OWN: &str = "0d5e-own";

/// A DashScope stand-in whose creates answer after 3 s naming [`SLOW_TASK`]; its list shows
/// [`SLOW_TASK`] (and [`SLOW_OWN`] once the returned flag is set) as made 5 minutes ago, and
/// every task has succeeded with the prompt "one prompt". Its base URL and count of creates.
async fn slow_create_fake() -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use axum::extract::{Path as UrlPath, State};
    use axum::routing::{get, post};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let creates = Arc::new(AtomicUsize::new(0));
    let own_listed = Arc::new(AtomicBool::new(false));
    let listed_at = dashscope::now_ms() - 300_000;
    let video_url = format!("{base}/v.mp4");
    let listing = own_listed.clone();
    let app = axum::Router::new()
        .route(
            "/api/v1/services/aigc/video-generation/video-synthesis",
            post(|State(n): State<Arc<AtomicUsize>>| async move {
                n.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(3)).await;
                axum::Json(serde_json::json!({"request_id": "r",
                    "output": {"task_id": SLOW_TASK, "task_status": "PENDING"}}))
            }),
        )
        .route(
            "/api/v1/tasks",
            get(move || async move {
                let mut ids = vec![SLOW_TASK];
                if listing.load(Ordering::SeqCst) {
                    ids.push(SLOW_OWN);
                }
                let data: Vec<Value> = (ids.iter())
                    .map(|id| {
                        serde_json::json!({"task_id": id, "status": "SUCCEEDED",
                            "model_name": "wan2.7-t2v", "gmt_create": listed_at.to_string()})
                    })
                    .collect();
                axum::Json(serde_json::json!({"total": data.len(), "total_page": 1,
                    "data": data}))
            }),
        )
        .route(
            "/api/v1/tasks/{id}",
            get(move |UrlPath(id): UrlPath<String>| async move {
                axum::Json(serde_json::json!({"output": {"task_id": id,
                    "task_status": "SUCCEEDED", "orig_prompt": "one prompt",
                    "video_url": video_url}}))
            }),
        )
        .route(
            "/v.mp4",
            get(|| async { crate::api::fake::mp4(b"the one video") }),
        )
        .with_state(creates.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, creates, own_listed)
}

/// A provider whose clock is far behind ours (past the skew allowance) lists a task created
/// after this run began as minutes old, and the search takes it for an earlier take's lost
/// create; then this run's create of another take (slow to answer) names that very task. The
/// re-attachment is undone and journalled, the submitted take keeps its task, the video
/// downloaded under the wrong shot is moved aside, and nothing is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_answer_naming_a_reattached_task_undoes_the_reattachment() {
    use std::sync::atomic::Ordering;

    let (base, creates, _) = slow_create_fake().await;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![take("t1", "one prompt", 1), take("t2", "one prompt", 2)],
    );
    lost_earlier(&out, &[&p.shots[0]], None, Duration::from_secs(305)).await;
    let limit = Duration::from_secs(60);
    let outcome = run_bounded(&p, fake_client(&base), opts(2), limit).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown", "succeeded"]);
    assert_eq!(creates.load(Ordering::SeqCst), 1);
    assert_eq!(events_of(&out, "reattached"), ["t1"]);
    let events = journal_events(&out);
    let undone = (events.iter())
        .rfind(|e| e["event"] == "unknown" && e["id"] == "t1")
        .expect("an unknown line");
    assert_eq!(undone["task_id"], SLOW_TASK, "{undone}");
    let error = error_of(&out, "t1");
    assert!(
        error.contains(SLOW_TASK) && error.contains("`t2`") && error.contains("undone"),
        "{error}"
    );
    let t1_file = out.join("videos").join(&p.shots[0].file);
    assert!(!t1_file.exists(), "t2's video is not kept as t1's");
    if events_of(&out, "downloaded").contains(&"t1".to_owned()) {
        let moved = (events.iter())
            .find(|e| e["event"] == "superseded" && e["id"] == "t1")
            .expect("a superseded line");
        let moved = out.join("videos").join(moved["file"].as_str().unwrap());
        assert_eq!(
            std::fs::read(moved).unwrap(),
            crate::api::fake::mp4(b"the one video")
        );
    }

    let outcome = run_bounded(&p, fake_client(&base), opts(2), limit).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown", "succeeded"]);
    assert_eq!(creates.load(Ordering::SeqCst), 1, "a rerun sends nothing");
    assert_eq!(
        events_of(&out, "reattached"),
        ["t1"],
        "not re-attached again"
    );
}

/// A shot renamed after a crash mid-create: its history is the old id's, whose `submitting`
/// has no answer. The run declares it `unknown` and searches; the candidate is still running,
/// so `--resubmit-unknown` does not send it. Nor may the next run: it searches again, since
/// the open submit's time is still known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_shot_lost_mid_create_is_searched_for_again_and_not_paid_twice() {
    use shotlist::journal::{Entry, EventKind, Journal};
    let sim = start_sim(SimConfig {
        gen_time: Duration::from_secs(120),
        ..lossy(1.0)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(&out, vec![shot("a", "renamed after a crash", None)]);
    std::fs::create_dir_all(&out).unwrap();
    let mut journal = Journal::open(&out.join("journal.jsonl")).unwrap();
    let open = Entry::new(EventKind::Submitting, "old-a", &p.shots[0].key).attempt(1);
    journal.append(&open).unwrap();
    drop(journal);
    let lost = native_client(&sim).submit(&p.shots[0].body.value()).await;
    assert!(matches!(lost, Err(ApiError::Ambiguous { .. })), "{lost:?}");
    let mut o = RunOptions {
        reconcile_wait: Duration::from_secs(1),
        ..opts(1)
    };
    o.flags = flags(false, true);
    for run in 1..=2 {
        assert_eq!(
            run_with(&p, &sim, o.clone()).await.exit_code(),
            1,
            "run {run}"
        );
        assert_eq!(statuses(&out), ["unknown"], "run {run}");
        let error = error_of(&out, "a");
        assert!(error.contains("still running"), "run {run}: {error}");
        assert_eq!(stats_of(&sim).await["tasks_created"], 1, "run {run}");
    }
}

/// A shot renamed after its create's answer was lost is re-attached under its new id, and the
/// re-attachment is undone in the same run (another take's create names that task). The next
/// run still knows when the lost create was sent: it searches again and finds the shot's own
/// task, instead of resending it blind with `--resubmit-unknown` (paid twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_shot_whose_reattachment_was_undone_is_searched_for_again() {
    use shotlist::journal::{Entry, EventKind, Journal};
    use std::sync::atomic::Ordering;

    let (base, creates, own_listed) = slow_create_fake().await;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![take("t1", "one prompt", 1), take("t2", "one prompt", 2)],
    );
    std::fs::create_dir_all(&out).unwrap();
    let mut journal = Journal::open(&out.join("journal.jsonl")).unwrap();
    let t0 = std::time::SystemTime::now() - Duration::from_secs(305);
    let stamp = |t: std::time::SystemTime| humantime::format_rfc3339_millis(t).to_string();
    let mut e = Entry::new(EventKind::Submitting, "old-t1", &p.shots[0].key).attempt(1);
    e.ts = stamp(t0);
    journal.append(&e).unwrap();
    let mut e = Entry::new(EventKind::Unknown, "old-t1", &p.shots[0].key).error("answer lost");
    e.ts = stamp(t0 + Duration::from_millis(500));
    journal.append(&e).unwrap();
    drop(journal);

    let limit = Duration::from_secs(60);
    let outcome = run_bounded(&p, fake_client(&base), opts(2), limit).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown", "succeeded"]);
    assert_eq!(events_of(&out, "reattached"), ["t1"]);
    assert_eq!(creates.load(Ordering::SeqCst), 1);

    own_listed.store(true, Ordering::SeqCst);
    let mut o = opts(2);
    o.flags = flags(false, true);
    let outcome = run_bounded(&p, fake_client(&base), o, limit).await;
    assert_eq!(creates.load(Ordering::SeqCst), 1, "t1 is not sent again");
    assert_eq!(outcome.exit_code(), 0, "{:?}", results_json(&out));
    let reattached: Vec<Value> = (journal_events(&out).into_iter())
        .filter(|e| e["event"] == "reattached")
        .collect();
    assert_eq!(reattached.len(), 2);
    assert_eq!(reattached[1]["task_id"], SLOW_OWN);
}
