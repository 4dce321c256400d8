//! `run --attach SHOT=TASK`: an `unknown` shot attached by hand to the task it created is
//! polled and downloaded, never paid again; every refusal sends nothing.

use std::path::Path;
use std::time::Duration;

use shotlist::api::{ApiKey, Client, ClientConfig, dashscope};
use shotlist::exec::attach::Attachment;
use shotlist::exec::{ExecError, RunOptions};
use shotlist::journal::{Entry, EventKind, Journal};
use shotlist::plan::Plan;
use shotlist::sim::{SimConfig, SimHandle};

use super::dashscope::{
    error_of, events_of, lossy, lost_earlier, native_client, run_with, take, task_ids,
    two_lost_takes,
};
use super::*;

fn attach(pairs: &[(&str, &str)]) -> RunOptions {
    RunOptions {
        attach: pairs
            .iter()
            .map(|(shot, task)| Attachment {
                shot: (*shot).into(),
                task_id: (*task).into(),
            })
            .collect(),
        ..opts(2)
    }
}

/// The `reattached` lines the user gave: (shot, task).
fn attached_by_user(out: &Path) -> Vec<(String, String)> {
    journal_events(out)
        .iter()
        .filter(|e| e["event"] == "reattached" && e["by"] == "user")
        .map(|e| {
            let text = |f: &str| e[f].as_str().unwrap_or_default().to_owned();
            (text("id"), text("task_id"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takes_that_cannot_be_told_apart_are_attached_by_hand_and_paid_once() {
    let sim = start_sim(lossy(1.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (p, tasks) = two_lost_takes(&sim, &out).await;
    assert_eq!(run_with(&p, &sim, opts(2)).await.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown", "unknown"]);
    let error = error_of(&out, "t1");
    assert!(error.contains("--attach t1=TASK"), "{error}");

    let o = attach(&[("t1", &tasks[0]), ("t2", &tasks[1])]);
    let outcome = run_with(&p, &sim, o).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", results_json(&out));
    assert_eq!(statuses(&out), ["succeeded", "succeeded"]);
    assert_eq!(
        attached_by_user(&out),
        [
            ("t1".into(), tasks[0].clone()),
            ("t2".into(), tasks[1].clone())
        ]
    );
    assert_eq!(
        outcome.cost.spent,
        shotlist::cost::Money::ZERO,
        "paid earlier"
    );
    assert_eq!(stats_of(&sim).await["tasks_created"], 2);

    assert_eq!(run_with(&p, &sim, opts(2)).await.exit_code(), 0);
    assert_eq!(
        stats_of(&sim).await["tasks_created"],
        2,
        "a rerun sends nothing"
    );
    assert_eq!(events_of(&out, "reattached").len(), 2);
}

fn gateway_lossy() -> SimConfig {
    SimConfig {
        p_lost: 1.0,
        seed: 7,
        ..sim_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_gateway_create_is_attached_by_its_task_id() {
    let sim = start_sim(gateway_lossy()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(&out, vec![shot("a", "lost on the gateway", None)]);
    assert_eq!(execute(&p, &sim, opts(1)).await.exit_code(), 1);
    assert_eq!(statuses(&out), ["unknown"]);
    let tasks = task_ids(&stats_of(&sim).await);
    assert_eq!(tasks.len(), 1);

    let outcome = execute(&p, &sim, attach(&[("a", &tasks[0])])).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", results_json(&out));
    assert_eq!(statuses(&out), ["succeeded"]);
    assert!(out.join("videos/a.mp4").is_file());
    assert_eq!(attached_by_user(&out), [("a".into(), tasks[0].clone())]);
    assert_eq!(stats_of(&sim).await["tasks_created"], 1);
    assert_eq!(results_json(&out)[0]["task_id"], tasks[0].as_str());
}

/// Runs `plan` with `o` and returns the attach refusal, checking nothing was sent or journalled.
async fn refused(plan: &Plan, client: Client, sim: &SimHandle, o: RunOptions) -> String {
    let before = stats_of(sim).await["tasks_created"].clone();
    let journal = std::fs::read_to_string(plan.out_dir.join("journal.jsonl")).unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        shotlist::exec::execute(plan, client, o),
    )
    .await
    .expect("refused quickly");
    let error = match result {
        Err(ExecError::Attach(e)) => {
            assert!(e.is_usage(), "{e}");
            e.to_string()
        }
        other => panic!("not refused: {:?}", other.map(|o| o.counts)),
    };
    assert!(error.contains("--attach"), "{error}");
    assert!(error.contains("nothing was sent"), "{error}");
    assert!(!error.contains(KEY), "{error}");
    assert_eq!(stats_of(sim).await["tasks_created"], before, "{error}");
    assert_eq!(
        std::fs::read_to_string(plan.out_dir.join("journal.jsonl")).unwrap(),
        journal,
        "nothing journalled: {error}"
    );
    error
}

/// `submitting` and `unknown` lines for `shot`, as a run whose create answer was lost leaves.
fn journal_unknown(out: &Path, shot: &shotlist::plan::PlannedShot) {
    let mut journal = Journal::open(&out.join("journal.jsonl")).unwrap();
    journal
        .append(&Entry::new(EventKind::Submitting, &shot.id, &shot.key).attempt(1))
        .unwrap();
    journal
        .append(&Entry::new(EventKind::Unknown, &shot.id, &shot.key).error("answer lost"))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_names_the_flag_and_sends_nothing() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![
            shot("done", "already made", None),
            shot("lost", "answer lost", None),
            shot("fresh", "never sent", None),
        ],
    );
    let mut first = opts(1);
    first.only = vec!["done".into()];
    assert_eq!(execute(&p, &sim, first).await.exit_code(), 0);
    let done_task = task_ids(&stats_of(&sim).await)[0].clone();
    journal_unknown(&out, &p.shots[1]);
    let lost_task = client(&sim, KEY)
        .submit(&p.shots[1].body.value())
        .await
        .unwrap()
        .task_id;

    let only = |only: &str, pairs: &[(&str, &str)]| RunOptions {
        only: vec![only.into()],
        ..attach(pairs)
    };
    let cases: Vec<(RunOptions, &str)> = vec![
        (attach(&[("nope", &lost_task)]), "the plan has no such shot"),
        (
            only("done", &[("lost", &lost_task)]),
            "`lost` is not selected",
        ),
        (
            attach(&[("done", &lost_task)]),
            "`done` is succeeded, not unknown",
        ),
        (attach(&[("fresh", &lost_task)]), "`fresh` is pending"),
        (attach(&[("lost", "a/../b")]), "not a task id"),
        (
            attach(&[("lost", &done_task)]),
            "the journal already names task",
        ),
        (
            attach(&[("lost", &lost_task), ("lost", "other")]),
            "names shot `lost` twice",
        ),
        (
            attach(&[("lost", &lost_task), ("fresh", &lost_task)]),
            "for two shots",
        ),
        (
            attach(&[("lost", "no-such-task-0123")]),
            "the provider does not know task no-such-task-0123",
        ),
    ];
    for (o, says) in cases {
        let error = refused(&p, client(&sim, KEY), &sim, o).await;
        assert!(error.contains(says), "{says}: {error}");
    }
    assert!(attached_by_user(&out).is_empty());

    let outcome = execute(&p, &sim, attach(&[("lost", &lost_task)])).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", results_json(&out));
    assert_eq!(stats_of(&sim).await["tasks_created"], 3, "fresh sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashscope_task_showing_another_prompt_or_none_is_refused() {
    let sim = start_sim(lossy(0.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(&out, vec![take("t1", "my words", 1)]);
    lost_earlier(&out, &[&p.shots[0]], None, Duration::ZERO).await;
    let native = native_client(&sim);
    let other = native
        .submit(&take("x", "their words", 1).body.value())
        .await
        .unwrap()
        .task_id;
    let mine = native
        .submit(&p.shots[0].body.value())
        .await
        .unwrap()
        .task_id;
    for task in [&other, &mine] {
        while native.query(task).await.unwrap().status != shotlist::api::TaskStatus::Succeeded {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let client = || {
        Client::for_provider(
            dashscope::PROVIDER,
            ClientConfig {
                base_url: sim.base_url(),
                api_key: ApiKey::new(KEY),
                timeout: Duration::from_secs(10),
            },
        )
        .unwrap()
    };
    let error = refused(&p, client(), &sim, attach(&[("t1", &other)])).await;
    assert!(
        error.contains(&format!("task {other} is not `t1`'s")),
        "{error}"
    );
    let error = refused(&p, client(), &sim, attach(&[("t1", "0385dc79-gone")])).await;
    assert!(
        error.contains("does not know task 0385dc79-gone"),
        "{error}"
    );

    let outcome = run_with(&p, &sim, attach(&[("t1", &mine)])).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", results_json(&out));
    assert_eq!(attached_by_user(&out), [("t1".into(), mine.clone())]);
    assert_eq!(stats_of(&sim).await["tasks_created"], 2);
}

#[test]
fn attach_given_to_the_binary_polls_the_named_task_and_refusals_exit_2() {
    use crate::support::{Project, Run, SimProcess};
    const SECRET: &str = "sk-live-DO-NOT-LEAK-attach";
    let p = Project::new();
    p.file(
        "one.yaml",
        "version: 1\nname: one\nshots:\n  - id: a\n    model: t2v\n    prompt: lost once\n    \
         duration: 4\n",
    );
    let sim = SimProcess::start(&["--p-lost", "1", "--gen-time", "100ms"]);
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "one.yaml", "--base-url", &sim.url, "--poll", "100ms"];
        args.extend_from_slice(extra);
        let mut cmd = p.cmd(&args);
        cmd.env("GRAVITEX_API_KEY", SECRET);
        let run = Run::from(cmd.output().unwrap());
        assert!(!run.stderr.contains(SECRET) && !run.stdout.contains(SECRET));
        run
    };
    run(&[]).code(1);
    let tasks = sim.stats()["tasks"].as_array().unwrap().clone();
    let task = tasks[0]["task_id"].as_str().unwrap().to_owned();

    let bad = run(&["--attach", "a"]);
    bad.code(2);
    assert!(bad.stderr.contains("SHOT=TASK_ID"), "{}", bad.stderr);
    let gone = run(&["--attach", "a=no-such-task"]);
    gone.code(2);
    assert!(
        gone.stderr.contains("does not know task no-such-task"),
        "{}",
        gone.stderr
    );
    assert_eq!(sim.stats()["tasks_created"], 1);

    let attached = run(&["--attach", &format!("a={task}")]);
    attached.code(0);
    let said = format!("attached a to task {task} (--attach)");
    assert!(attached.stderr.contains(&said), "{}", attached.stderr);
    assert_eq!(sim.stats()["tasks_created"], 1);
    assert!(!p.read("out/one/journal.jsonl").contains(SECRET));
}
