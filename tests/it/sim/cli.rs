//! The real `shotlist sim` binary: it prints the URL it listens on, serves, and refuses bad flags.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use serde_json::Value;

use super::super::support::shotlist;
use super::{KEY, client, t2v};

/// Kills the child when the test ends, whatever happens.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shotlist_sim_prints_its_url_and_serves_it() {
    let child = shotlist()
        .args([
            "sim",
            "--port",
            "0",
            "--gen-time",
            "0s",
            "--key",
            KEY,
            "--shape",
            "envelope",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shotlist sim");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .expect("read the first line");
    let base = line
        .trim()
        .strip_prefix("shotlist sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(!base.ends_with(":0"), "{base}");

    let client = client();
    let submitted: Value = client
        .post(format!("{base}/v1/video/generations"))
        .bearer_auth(KEY)
        .json(&t2v("from the binary"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        submitted["object"], "video",
        "--shape envelope applies: {submitted}"
    );
    let wrong = client
        .post(format!("{base}/v1/video/generations"))
        .bearer_auth("sk-not-it")
        .json(&t2v("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401, "--key applies");
    let stats: Value = client
        .get(format!("{base}/__sim/stats?summary=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["tasks_created"], 1);
    assert!(stats.get("tasks").is_none(), "summary omits the list");

    let pid = running.0.id().to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(signalled.success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "sim did not stop on SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    std::io::Read::read_to_string(running.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("--base-url"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(!stderr.contains(KEY), "the key is never printed: {stderr}");
}

#[test]
fn shotlist_sim_refuses_senseless_flags_with_exit_2() {
    for (args, expected) in [
        (vec!["sim", "--rate-limit", "0"], "--rate-limit"),
        (vec!["sim", "--key", ""], "--key"),
        (vec!["sim", "--p502", "1.5"], "between 0 and 1"),
        (vec!["sim", "--gen-time", "soon"], "5s"),
    ] {
        let output = shotlist().args(&args).output().expect("run shotlist sim");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn shotlist_sim_reports_a_busy_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = shotlist()
        .args(["sim", "--port", &port])
        .output()
        .expect("run shotlist sim");
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("--port 0"), "{stderr}");
}

#[test]
fn every_flag_reaches_the_simulator_config() {
    use clap::Parser;
    use shotlist::cli::{Cli, Command};
    use shotlist::sim::Shape;
    use std::time::Duration;

    let cli = Cli::try_parse_from([
        "shotlist",
        "sim",
        "--port",
        "0",
        "--key",
        "sk-k",
        "--gen-time",
        "250ms",
        "--jitter",
        "0.25",
        "--shape",
        "legacy",
        "--rate-limit",
        "7",
        "--p429",
        "0.1",
        "--p429-query",
        "0.15",
        "--p502",
        "0.2",
        "--p-lost",
        "0.3",
        "--fail-rate",
        "0.4",
        "--url-ttl",
        "2m",
        "--seed",
        "99",
    ])
    .expect("flags parse");
    let Command::Sim(args) = cli.command else {
        panic!("not the sim command");
    };
    let config = shotlist::commands::sim::config(&args).expect("valid flags");
    assert_eq!(config.key.as_deref(), Some("sk-k"));
    assert_eq!(config.gen_time, Duration::from_millis(250));
    assert_eq!(config.jitter, 0.25);
    assert_eq!(config.shape, Shape::Legacy);
    assert_eq!(config.rate_limit, Some(7));
    assert_eq!(
        (config.p429, config.p502, config.p_lost, config.fail_rate),
        (0.1, 0.2, 0.3, 0.4)
    );
    assert_eq!(config.p429_query, 0.15);
    assert_eq!(config.url_ttl, Duration::from_secs(120));
    assert_eq!(config.seed, 99);
    assert_eq!(args.port, 0);
}

/// `run` against `shotlist sim --p429-query`: the summary counts the refused queries exactly as
/// the simulator does, `-v` says what they did to the rate, and each shot was created once.
#[test]
fn refused_queries_are_in_the_summary_and_each_shot_is_created_once() {
    use crate::support::SimProcess;
    let sim = SimProcess::start(&["--gen-time", "300ms", "--p429-query", "0.5", "--seed", "4"]);
    let p = eight_shots();
    let mut cmd = p.cmd(&[
        "-v",
        "run",
        "m.yaml",
        "--base-url",
        &sim.url,
        "--poll",
        "100ms",
        "-j",
        "8",
    ]);
    cmd.env("GRAVITEX_API_KEY", "sk-queries");
    let run = crate::support::Run::from(cmd.output().unwrap());
    run.code(0);
    let stats = sim.stats();
    assert_eq!(stats["tasks_created"], 8, "{stats}");
    let refused = stats["requests"]["query"]["429"].as_u64().unwrap();
    assert!(refused > 0, "{stats}");
    assert!(
        run.stderr.contains(&format!(
            "task queries: {refused} refused by the provider (429), 0 failed"
        )),
        "{}",
        run.stderr
    );
}

/// An explicit `--poll` the request budget cannot honour is said once, with the interval the
/// budget allows instead.
#[test]
fn a_poll_the_budget_cannot_honour_is_said_once() {
    use crate::support::SimProcess;
    let sim = SimProcess::start(&["--gen-time", "1500ms"]);
    let p = eight_shots();
    p.file("c.toml", "[run]\nqueries_per_second = 4\n");
    let mut cmd = p.cmd(&[
        "run",
        "m.yaml",
        "--base-url",
        &sim.url,
        "--poll",
        "100ms",
        "-j",
        "8",
        "--config",
        "c.toml",
    ]);
    cmd.env("GRAVITEX_API_KEY", "sk-poll");
    let run = crate::support::Run::from(cmd.output().unwrap());
    run.code(0);
    let said = run.stderr.matches("--poll 100ms: ").count();
    assert_eq!(said, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("more than the request budget of 4.0/s"),
        "{}",
        run.stderr
    );
}

/// A project whose `m.yaml` has eight text-to-video shots, `s0` to `s7`, written to `out`.
fn eight_shots() -> crate::support::Project {
    let p = crate::support::Project::new();
    let shots: String = (0..8)
        .map(|i| format!("  - {{ id: s{i}, prompt: Shot {i}. }}\n"))
        .collect();
    p.file(
        "m.yaml",
        &format!(
            "version: 1\nname: m\ndefaults: {{ model: t2v, duration: 4 }}\nshots:\n{shots}\
             output: {{ dir: out }}\n"
        ),
    );
    p
}
