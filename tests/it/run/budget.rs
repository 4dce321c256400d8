//! `--max-cost`: this run's submits, estimated at the list price (0.50 USD for each 5 s 720P
//! shot here), never pass the cap, however many submits race; a rerun with a higher cap sends
//! the rest and nothing twice.

use shotlist::cost::Money;
use shotlist::sim::SimConfig;

use super::*;

fn capped(concurrency: usize, cap: &str) -> RunOptions {
    RunOptions {
        max_cost: Some(Money::parse(cap).unwrap()),
        ..opts(concurrency)
    }
}

fn errors(out: &Path) -> Vec<String> {
    results_json(out)
        .iter()
        .map(|r| r["error"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_racing_submits_never_pass_the_cap_and_a_higher_cap_sends_the_rest_once() {
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 12, "budget");

    let outcome = execute(&p, &sim, capped(8, "2.20")).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(stats_of(&sim).await["tasks_created"], 4);
    assert_eq!(outcome.cost.spent, Money::parse("2").unwrap());
    assert_eq!(outcome.cost.unsent, 8);
    assert_eq!(outcome.cost.unsent_cost, Money::parse("4").unwrap());
    let rows = results_json(&out);
    let (sent, held): (Vec<&Value>, Vec<&Value>) =
        rows.iter().partition(|r| r["status"] == "succeeded");
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().all(|r| r["cost"] == "0.50"));
    assert!(
        held.iter()
            .all(|r| r["status"] == "pending" && r["cost"].is_null())
    );
    assert!(
        errors(&out)
            .iter()
            .filter(|e| e.starts_with("budget: "))
            .count()
            == 8,
        "{:?}",
        errors(&out)
    );

    let outcome = execute(&p, &sim, capped(8, "3")).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(stats_of(&sim).await["tasks_created"], 10);
    assert_eq!(outcome.cost.billed, Money::parse("5").unwrap());

    let outcome = execute(&p, &sim, opts(8)).await;
    assert_eq!(outcome.exit_code(), 0);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 12);
    assert!(created_per_prompt(&stats).values().all(|&n| n == 1));
    assert!(errors(&out).iter().all(String::is_empty));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_submits_do_not_count_against_the_cap() {
    // Random 429s and 502s may spare the first five submits (about one draw order in 20, and a
    // busy machine changes the order), so the account's limit of 3 tasks refuses two for sure.
    let sim = start_sim(SimConfig {
        p429: 0.4,
        p502: 0.15,
        seed: 7,
        rate_limit: Some(3),
        gen_time: std::time::Duration::from_secs(1),
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 10, "refused");
    let outcome = execute(&p, &sim, capped(8, "2.50")).await;
    let stats = stats_of(&sim).await;
    assert!(count(&stats, "submit", "429") + count(&stats, "submit", "502") > 0);
    let seen = format!("{outcome:?}\n{:?}\n{:?}", statuses(&out), errors(&out));
    assert_eq!(stats["tasks_created"], 5, "{seen}");
    assert_eq!(outcome.cost.spent, Money::parse("2.5").unwrap(), "{seen}");
    // A shot whose 502s outlast its retries fails and hands its share to a held one.
    let failed = statuses(&out).iter().filter(|s| *s == "failed").count();
    assert_eq!(outcome.cost.unsent + failed, 5, "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_refused_for_good_gives_its_share_to_the_next_shot_that_fits() {
    // `b` heads the longest chain, so `b` and `bad` go first and `a` is held; `bad`'s 400
    // comes back long before `b` is made, and `a` takes its share; `c` no longer fits.
    let sim = start_sim(SimConfig {
        gen_time: std::time::Duration::from_millis(800),
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let bad = refused_shot("bad", "fifty seconds is refused");
    let p = plan(
        &out,
        vec![
            bad,
            shot("a", "first good", None),
            shot("b", "second good", None),
            shot("c", "after the second", Some("b")),
        ],
    );
    let outcome = execute(&p, &sim, capped(8, "1.00")).await;
    let stats = stats_of(&sim).await;
    assert_eq!(count(&stats, "submit", "400"), 1);
    assert_eq!(stats["tasks_created"], 2, "{outcome:?}");
    assert_eq!(
        statuses(&out),
        ["failed", "succeeded", "succeeded", "pending"]
    );
    assert_eq!(outcome.cost.spent, Money::parse("1").unwrap());
    assert_eq!(outcome.cost.unsent, 1);
    assert!(
        errors(&out)[3].starts_with("budget: "),
        "{:?}",
        errors(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_submits_count_and_so_do_resubmits_of_them() {
    let lossy = start_sim(SimConfig {
        p_lost: 1.0,
        ..sim_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = flat_plan(&out, 4, "unknown");
    let outcome = execute(&p, &lossy, capped(4, "1.20")).await;
    assert_eq!(stats_of(&lossy).await["tasks_created"], 2);
    assert_eq!(outcome.cost.spent, Money::parse("1").unwrap());
    let rows = results_json(&out);
    assert_eq!(statuses(&out), ["unknown", "unknown", "pending", "pending"]);
    assert_eq!(rows[0]["cost"], "0.50");

    let fine = start_sim(sim_config()).await;
    let mut o = capped(4, "1.00");
    o.flags = flags(false, true);
    let outcome = execute(&p, &fine, o).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(stats_of(&fine).await["tasks_created"], 2);
    assert_eq!(
        statuses(&out),
        ["succeeded", "succeeded", "pending", "pending"]
    );
}

#[test]
fn the_binary_says_what_it_will_spend_caps_it_and_status_shows_spent_and_left() {
    use crate::support::{Project, SimProcess};
    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let p = Project::new();
    p.file(
        "m.yaml",
        "version: 1\nname: m\ndefaults: { model: t2v, duration: 4 }\nshots:\n\
         \x20 - { id: a, prompt: A. }\n  - { id: b, prompt: B. }\n  - { id: c, prompt: C. }\n\
         \x20 - { id: d, prompt: D. }\n  - { id: e, prompt: E. }\n",
    )
    .file("c.toml", "[run]\nmax_cost = 5\n");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "m.yaml", "--base-url", &sim.url, "--poll", "100ms"];
        args.extend_from_slice(extra);
        let mut cmd = p.cmd(&args);
        cmd.env("GRAVITEX_API_KEY", "sk-budget");
        crate::support::Run::from(cmd.output().unwrap())
    };
    let r = run(&["-j", "8", "--max-cost", "1.20"]);
    r.code(1);
    assert!(
        r.stderr
            .contains("sending 5 shot(s), 20 s of video, est. 2.00 USD (--max-cost 1.20 USD)\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "\ncost: est. 1.20 USD this run, 1.20 USD for the batch; 2 shot(s) left unsent by \
             --max-cost, est. 0.80 USD: a rerun with a higher cap sends them\n3 succeeded"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(sim.stats()["tasks_created"], 3);
    let status = p.run(&["status", "m.yaml"]);
    assert!(
        status
            .stdout
            .contains("est. 1.20 USD spent on 3 task(s), 0.80 USD left to send\n"),
        "{}",
        status.stdout
    );

    let r = run(&["--config", "c.toml"]);
    r.code(0);
    assert!(
        r.stderr
            .contains("sending 2 shot(s), 8 s of video, est. 0.80 USD (--max-cost 5.00 USD)"),
        "{}",
        r.stderr
    );
    assert_eq!(sim.stats()["tasks_created"], 5);
    let r = run(&["--max-cost", "0.1", "--config", "c.toml"]);
    r.code(0);
    assert!(!r.stderr.contains("sending"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_held_below_a_held_shot_is_released_with_it_and_its_tail_held_again() {
    // `bad` heads the longest chain, so it alone fits the cap; `a` is held and `a2` with it.
    // `bad`'s 400 skips its chain and releases `a` and `a2`; `a` is sent, and once it is made
    // `a2` no longer fits and is held for its own cost.
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let bad = refused_shot("bad", "fifty seconds is refused");
    let p = plan(
        &out,
        vec![
            bad,
            shot("bad2", "after bad", Some("bad")),
            shot("bad3", "after bad2", Some("bad2")),
            shot("a", "the good one", None),
            shot("a2", "after a", Some("a")),
        ],
    );
    let outcome = execute(&p, &sim, capped(8, "0.50")).await;
    let stats = stats_of(&sim).await;
    assert_eq!(count(&stats, "submit", "400"), 1);
    assert_eq!(stats["tasks_created"], 1, "{outcome:?}");
    assert_eq!(created_per_prompt(&stats)["the good one"], 1);
    assert_eq!(
        statuses(&out),
        ["failed", "skipped", "skipped", "succeeded", "pending"]
    );
    let a2 = &errors(&out)[4];
    assert!(a2.starts_with("budget: its est. 0.50"), "{a2}");
    assert_eq!(outcome.cost.spent, Money::parse("0.5").unwrap());
    assert_eq!(outcome.cost.unsent, 1);

    let outcome = execute(&p, &sim, opts(8)).await;
    assert_eq!(outcome.exit_code(), 1);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 2, "only a2 is sent on the rerun");
    assert!(created_per_prompt(&stats).values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_resent_below_a_held_upstream_is_held_with_it_and_counted_once() {
    // `x`'s journalled submit made nothing; the search that says so answers after `u` is held,
    // and `x`, sent again as asked, waits for `u`: held below it, counted unsent.
    use super::dashscope::{lossy, lost_earlier, run_with};
    let sim = start_sim(lossy(0.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let p = plan(
        &out,
        vec![shot("u", "held up", None), shot("x", "after u", Some("u"))],
    );
    let ago = std::time::Duration::from_secs(600);
    lost_earlier(&out, &[&p.shots[1]], None, ago).await;
    let resend = |cap: Option<&str>| RunOptions {
        max_cost: cap.map(|c| Money::parse(c).unwrap()),
        flags: flags(false, true),
        ..opts(2)
    };
    let outcome = run_with(&p, &sim, resend(Some("0.40"))).await;
    let seen = format!("{outcome:?}\n{:?}", errors(&out));
    assert_eq!(stats_of(&sim).await["tasks_created"], 0);
    assert_eq!(statuses(&out), ["pending", "pending"], "{seen}");
    assert!(
        errors(&out)[0].starts_with("budget: its est. 0.50"),
        "{seen}"
    );
    assert_eq!(
        errors(&out)[1],
        "budget: waits for `u`, which --max-cost left unsent",
        "{seen}"
    );
    assert_eq!(outcome.cost.unsent, 2, "{seen}");
    assert_eq!(
        outcome.cost.unsent_cost,
        Money::parse("1").unwrap(),
        "{seen}"
    );

    let outcome = run_with(&p, &sim, resend(None)).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 2);
    assert!(created_per_prompt(&stats).values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shot_held_below_a_held_upstream_is_skipped_when_its_other_upstream_fails() {
    // `f` and `a` both head `d`'s chain; `f` goes first and fits, `a` is held and `d` below
    // it; `f`'s task then fails, so `d` can never be sent, whatever the cap.
    let sim = start_sim(sim_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut d = shot("d", "both", None);
    d.model = "wan2.7-r2v".into();
    d.body = json!({
        "model": "wan2.7-r2v",
        "prompt": "both",
        "duration": 5,
        "metadata": {
            "input": {"prompt": "both", "media": [
                {"type": "reference_video", "shot": "f"},
                {"type": "reference_video", "shot": "a"},
            ]},
            "parameters": {"resolution": "720P", "duration": 5, "watermark": false}
        }
    })
    .into();
    let p = plan(
        &out,
        vec![
            shot("f", "moderated [sim:fail]", None),
            shot("a", "held", None),
            d,
        ],
    );
    let outcome = execute(&p, &sim, capped(4, "0.50")).await;
    let seen = format!("{outcome:?}\n{:?}", errors(&out));
    assert_eq!(stats_of(&sim).await["tasks_created"], 1);
    assert_eq!(statuses(&out), ["failed", "pending", "skipped"], "{seen}");
    assert_eq!(errors(&out)[2], "upstream `f` is failed", "{seen}");
    assert_eq!(outcome.cost.unsent, 1, "{seen}");
    assert_eq!(
        outcome.cost.unsent_cost,
        Money::parse("0.5").unwrap(),
        "{seen}"
    );

    let outcome = execute(&p, &sim, opts(4)).await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["failed", "succeeded", "skipped"]);
    assert_eq!(stats_of(&sim).await["tasks_created"], 2, "only `a` is sent");

    let outcome = execute(
        &p,
        &sim,
        RunOptions {
            flags: flags(true, false),
            ..opts(4)
        },
    )
    .await;
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(statuses(&out), ["failed", "succeeded", "skipped"]);
    let stats = stats_of(&sim).await;
    assert_eq!(stats["tasks_created"], 3, "`f` is sent again, `d` never");
    assert_eq!(created_per_prompt(&stats)["moderated [sim:fail]"], 2);
    assert!(!created_per_prompt(&stats).contains_key("both"));
}
