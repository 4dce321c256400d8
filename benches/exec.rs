//! Executor benchmarks (`cargo bench --bench exec`): wall time against the ideal schedule,
//! HTTP requests per shot, pure overhead with instant tasks, peak memory of a 100,000-shot run,
//! and throughput under provider limits side by side with the naive thread pool of
//! `benches/naive_pool.py`. The simulator runs as a separate `shotlist sim` process so its
//! memory and CPU are not counted as the executor's. `SHOTLIST_BENCH_ONLY=memory|throughput|queries|storm|cap`
//! runs one part (`storm` and `cap`: one row of `throughput` alone, without the naive pool), and
//! `SHOTLIST_BENCH_ROWS=submits,both` only the `queries` rows whose name holds one of the words.
//! Numbers go into BENCHMARKS.md.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shotlist::api::{ApiKey, Client, ClientConfig};
use shotlist::exec::{ProgressMode, RunOptions};
use shotlist::plan::{Plan, PlannedShot};

/// The binary's allocator, so the memory row measures what `shotlist run` uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Sim {
    child: Child,
    url: String,
}

impl Sim {
    fn start(gen_time: &str) -> Sim {
        Sim::with(&["--gen-time", gen_time])
    }

    /// `shotlist sim --port 0` with these flags.
    fn with(args: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shotlist"))
            .args(["-q", "sim", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start shotlist sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("sim stdout"))
            .read_line(&mut line)
            .expect("sim prints its URL");
        let url = line
            .split_whitespace()
            .last()
            .expect("URL on the first line")
            .to_owned();
        Sim { child, url }
    }

    fn stats(&self) -> Value {
        let addr = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        write!(
            s,
            "GET /__sim/stats?summary=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        serde_json::from_str(text.split_once("\r\n\r\n").map_or("", |(_, b)| b)).expect("stats")
    }

    fn requests(&self) -> u64 {
        let stats = self.stats();
        ["submit", "query", "download"]
            .iter()
            .flat_map(|r| {
                stats["requests"][r]
                    .as_object()
                    .map(|m| m.values().filter_map(Value::as_u64).sum::<u64>())
            })
            .sum()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn plan(out: &Path, n: usize) -> Plan {
    let shots = (0..n)
        .map(|i| {
            let prompt = format!("benchmark shot {i}: a slow pan over a quiet harbour at dawn");
            let body = json!({
                "model": "wan2.7-t2v-2026-04-25",
                "prompt": prompt,
                "duration": 5,
                "metadata": {
                    "input": {"prompt": prompt},
                    "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 5,
                                   "prompt_extend": false, "watermark": false, "seed": i}
                }
            });
            PlannedShot {
                id: format!("shot-{i}"),
                key: blake3::hash(body.to_string().as_bytes())
                    .to_hex()
                    .to_string(),
                model: "wan2.7-t2v-2026-04-25".into(),
                duration: 5,
                input_video: None,
                resolution: "720P".into(),
                ratio: Some("16:9".into()),
                seed: Some(i as u32),
                source: None,
                row: None,
                take: 1,
                matrix: Vec::new(),
                depends_on: Vec::new(),
                group: 0,
                file: format!("shot-{i}.mp4"),
                body: body.into(),
            }
        })
        .collect();
    Plan {
        name: "bench".into(),
        manifest: "bench.yaml".into(),
        out_dir: out.to_owned(),
        shots,
        batch_seed: None,
    }
}

/// Runs `n` shots at `-j concurrency`; returns wall time and requests per shot.
fn run(sim: &Sim, n: usize, concurrency: usize, poll: Duration) -> (Duration, f64) {
    let opts = RunOptions {
        concurrency,
        poll: Some(poll),
        queries_per_second: 1_000_000,
        progress: ProgressMode::Quiet,
        ..RunOptions::default()
    };
    let (wall, per_shot, _) = run_with(sim, n, opts, None);
    (wall, per_shot)
}

/// Runs `n` shots with `opts` (stopping after `limit`, if given); returns wall time, requests
/// per shot and the tasks in flight (from the journal's timestamps).
fn run_with(
    sim: &Sim,
    n: usize,
    opts: RunOptions,
    limit: Option<Duration>,
) -> (Duration, f64, InFlight) {
    run_on(sim, false, n, opts, limit)
}

/// [`run_with`], speaking DashScope's native protocol when `dashscope`.
fn run_on(
    sim: &Sim,
    dashscope: bool,
    n: usize,
    opts: RunOptions,
    limit: Option<Duration>,
) -> (Duration, f64, InFlight) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let plan = plan(&out, n);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let before = sim.requests();
    let started = Instant::now();
    let outcome = runtime.block_on(async {
        let config = ClientConfig {
            base_url: sim.url.clone(),
            api_key: ApiKey::new("sk-bench"),
            timeout: Duration::from_secs(60),
        };
        let client = if dashscope {
            Client::for_provider(
                shotlist::api::dashscope::PROVIDER,
                ClientConfig {
                    base_url: format!("{}/api/v1", sim.url),
                    ..config
                },
            )
        } else {
            Client::new(config)
        }
        .expect("client");
        let run = shotlist::exec::execute(&plan, client, opts);
        match limit {
            Some(limit) => tokio::time::timeout(limit, run).await.ok(),
            None => Some(run.await),
        }
    });
    let elapsed = started.elapsed();
    if let Some(outcome) = outcome {
        assert_eq!(outcome.expect("run").exit_code(), 0, "benchmark run failed");
    }
    let per_shot = (sim.requests() - before) as f64 / n as f64;
    // The memory row's peak RSS is the run's: the plan and the runtime go before the journal
    // is read back.
    drop((plan, runtime));
    let in_flight = in_flight(&out.join("journal.jsonl"), n);
    (elapsed, per_shot, in_flight)
}

/// Tasks in flight over the run, from the journal: what the bound counts, a shot from each
/// `submitting` until that attempt is `refused`, or its task `succeeded`, `failed` or went
/// `unknown`. Returns the time-weighted mean over the makespan (first `submitting` to the last
/// of those lines) and the same mean up to the moment 95 % of the shots had succeeded.
fn in_flight(journal: &Path, shots: usize) -> InFlight {
    let mut steps: Vec<(f64, i64, bool)> = Vec::new();
    // Line by line: a 100,000-shot journal is ~100 MB.
    let lines = std::fs::File::open(journal).map(|f| BufReader::new(f).lines());
    for line in lines.into_iter().flatten().map_while(Result::ok) {
        let Ok(e) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(ts) = e["ts"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339(t).ok())
        else {
            continue;
        };
        let at = ts
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        match e["event"].as_str() {
            Some("submitting") => steps.push((at, 1, false)),
            Some("succeeded") => steps.push((at, -1, true)),
            Some("refused" | "failed" | "unknown") => steps.push((at, -1, false)),
            _ => {}
        }
    }
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
        return InFlight::default();
    };
    let (start, end) = (first.0, last.0);
    let (mut level, mut area, mut done, mut at) = (0i64, 0.0, 0usize, start);
    let mut until_95 = None;
    for &(t, step, succeeded) in &steps {
        area += level as f64 * (t - at);
        at = t;
        level += step;
        done += usize::from(succeeded);
        if until_95.is_none() && done * 100 >= shots * 95 {
            until_95 = Some((area / (t - start).max(f64::MIN_POSITIVE), t - start));
        }
    }
    let (mean_95, secs_95) = until_95.unwrap_or_default();
    InFlight {
        mean: area / (end - start).max(f64::MIN_POSITIVE),
        makespan: end - start,
        mean_95,
        secs_95,
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct InFlight {
    mean: f64,
    makespan: f64,
    mean_95: f64,
    secs_95: f64,
}

/// The naive pool of `benches/naive_pool.py` against `sim`: wall seconds and shots succeeded.
fn naive(sim: &Sim, shots: usize, workers: usize, poll: f64) -> (f64, u64) {
    naive_with(sim, shots, workers, poll, &[])
}

fn naive_with(sim: &Sim, shots: usize, workers: usize, poll: f64, extra: &[&str]) -> (f64, u64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/naive_pool.py");
    let output = Command::new("python3")
        .arg(script)
        .args(extra)
        .args(["--url", &sim.url, "--shots", &shots.to_string()])
        .args([
            "--workers",
            &workers.to_string(),
            "--poll",
            &poll.to_string(),
        ])
        .output()
        .expect("python3 benches/naive_pool.py");
    let line: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "naive pool: {e}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (
        line["wall"].as_f64().unwrap_or(f64::NAN),
        line["ok"].as_u64().unwrap_or(0),
    )
}

fn limited(concurrency: usize, poll: Option<Duration>, queries_per_second: u32) -> RunOptions {
    RunOptions {
        concurrency,
        poll,
        queries_per_second,
        progress: ProgressMode::Quiet,
        ..RunOptions::default()
    }
}

/// 60 × 2 s at `-j 10` against a server that holds 6 tasks per key; the naive pool beside it
/// when `naive_too`.
fn server_cap(naive_too: bool) {
    let (n, t) = (60, 2.0);
    let cap = ["--gen-time", "2s", "--rate-limit", "6"];
    let sim = Sim::with(&cap);
    let (wall, per_shot, _) = run_with(
        &sim,
        n,
        limited(10, Some(Duration::from_millis(500)), 20),
        None,
    );
    let naive = if naive_too {
        format!("{:.1} s", naive(&Sim::with(&cap), n, 10, 0.5).0)
    } else {
        "-".into()
    };
    let ideal = n.div_ceil(6) as f64 * t;
    println!(
        "| 60 × 2 s, -j 10, server cap 6 | ≤ {:.1} s (1.1 × {ideal:.0} s) | {:.1} s, {per_shot:.1} requests/shot | {naive} |",
        1.1 * ideal,
        wall.as_secs_f64()
    );
}

/// 20,000 instant shots at `-j 512` with 5 % 429s and 5 % 502s; the naive pool beside it when
/// `naive_too`.
fn storm(naive_too: bool) {
    let storm = [
        "--gen-time",
        "0s",
        "--p429",
        "0.05",
        "--p429-query",
        "0.05",
        "--p502",
        "0.05",
        "--seed",
        "5",
    ];
    let sim = Sim::with(&storm);
    let big = 20_000;
    let (wall, per_shot, f) = run_with(
        &sim,
        big,
        limited(512, Some(Duration::from_millis(100)), 100_000),
        None,
    );
    let created = sim.stats()["tasks_created"].as_u64().unwrap_or(0);
    let naive = if naive_too {
        let (naive_wall, naive_ok) = naive(&Sim::with(&storm), big, 512, 0.1);
        format!("{naive_wall:.1} s ({naive_ok} ok)")
    } else {
        "-".into()
    };
    println!(
        "| 20,000 × 0 s, -j 512, 5 % 429 + 5 % 502 on submits and queries | ≤ 30 s, in flight ≥ 410, created once | {:.1} s, in flight {:.0} (mean over {:.1} s makespan; {:.0} over the first {:.1} s, to 95 % done), {created} created, {per_shot:.2} requests/shot | {naive} |",
        wall.as_secs_f64(),
        f.mean,
        f.makespan,
        f.mean_95,
        f.secs_95
    );
}

/// Issue 10's four scenarios, shotlist and the naive pool side by side.
fn throughput() {
    println!("## BENCHMARKS (throughput under provider limits)\n");
    println!("| scenario | target | shotlist | naive pool |");
    println!("|---|---|---|---|");
    let half = Some(Duration::from_millis(500));
    let n = 60;

    let clean = Sim::with(&["--gen-time", "2s"]);
    let (base, _, _) = run_with(&clean, n, limited(10, half, 20), None);
    let (naive_base, _) = naive(&Sim::with(&["--gen-time", "2s"]), n, 10, 0.5);
    println!(
        "| 60 × 2 s, -j 10, no faults | - | {:.1} s | {naive_base:.1} s |",
        base.as_secs_f64()
    );
    let faults = ["--gen-time", "2s", "--p429", "0.2", "--seed", "3"];
    let sim = Sim::with(&faults);
    let (wall, _, _) = run_with(&sim, n, limited(10, half, 20), None);
    let (naive_wall, naive_ok) = naive(&Sim::with(&faults), n, 10, 0.5);
    println!(
        "| 60 × 2 s, -j 10, 20 % random 429 | ≤ {:.1} s (1.3 × no faults), < naive | {:.1} s ({:.2} ×), {} created | {naive_wall:.1} s ({naive_ok} ok) |",
        1.3 * base.as_secs_f64(),
        wall.as_secs_f64(),
        wall.as_secs_f64() / base.as_secs_f64(),
        sim.stats()["tasks_created"]
    );

    server_cap(true);

    storm(true);

    // Requests per shot at T = 60 s with the default schedule, from the schedule itself:
    // 1 submit + the polls until one lands at or after 60 s + 1 download.
    let draws = 100_000;
    let mut counts = Vec::with_capacity(draws);
    for _ in 0..draws {
        let mut schedule = shotlist::exec::poll::PollSchedule::new(
            None,
            &shotlist::api::gravitex::PROVIDER.timing,
        );
        let (mut at, mut polls) = (Duration::ZERO, 0u32);
        while at < Duration::from_secs(60) {
            at += schedule.next_wait();
            polls += 1;
        }
        counts.push(polls + 2);
    }
    let mean = counts.iter().map(|&c| f64::from(c)).sum::<f64>() / draws as f64;
    let over = counts.iter().filter(|&&c| c > 8).count() as f64 / draws as f64;
    println!(
        "| requests per shot, T = 60 s, default schedule | ≤ 8 | {mean:.3} mean, max {}, {:.2} % above 8 (computed, {draws} draws) | {} (every 0.5 s, computed) |",
        counts.iter().max().unwrap_or(&0),
        100.0 * over,
        2 + 120
    );

    let slow = Sim::with(&["--gen-time", "60s"]);
    let secs = 40;
    let _ = run_with(
        &slow,
        1000,
        limited(1000, None, shotlist::exec::DEFAULT_QUERIES_PER_SECOND),
        Some(Duration::from_secs(secs)),
    );
    let rps = &slow.stats()["requests_per_second"];
    println!(
        "| 1,000 tasks in flight, default budget | ≤ {} queries/s | busiest second: {} queries ({secs} s measured) | 2,000 queries/s (1,000 threads polling every 0.5 s, computed) |",
        shotlist::exec::DEFAULT_QUERIES_PER_SECOND,
        rps["query"]
    );
}

/// Issue 21's six rows: 60 × 2 s at `-j 10`, `--poll 500ms`, 429s on submits, on queries or
/// both, and DashScope's 20 requests per second; each shotlist run next to the naive pool
/// against a fresh simulator with the same flags, `SHOTLIST_BENCH_REPS` times (default 1),
/// interleaved. The simulator's random 429s carry `Retry-After: 1` half the time; two more rows
/// repeat the query rows with none, as the gateway's reference describes its 429s.
/// Repetition `k` (from 0) runs the simulator with `--seed 3+k`.
fn queries() {
    let reps: usize = std::env::var("SHOTLIST_BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let half = Some(Duration::from_millis(500));
    let n = 60;
    let default_qps = shotlist::exec::DEFAULT_QUERIES_PER_SECOND;
    let ds_qps = shotlist::api::dashscope::QUERIES_PER_SECOND;
    let rows: [(&str, Vec<&str>, u32, bool); 8] = [
        ("no faults, queries_per_second = 20", vec![], 20, false),
        ("no faults, default budget", vec![], default_qps, false),
        (
            "20 % 429 on submits only",
            vec!["--p429", "0.2"],
            default_qps,
            false,
        ),
        (
            "20 % 429 on task queries only",
            vec!["--p429-query", "0.2"],
            default_qps,
            false,
        ),
        (
            "20 % 429 on both",
            vec!["--p429", "0.2", "--p429-query", "0.2"],
            default_qps,
            false,
        ),
        (
            "20 % 429 on task queries, no Retry-After",
            vec!["--p429-query", "0.2", "--p-retry-after", "0"],
            default_qps,
            false,
        ),
        (
            "20 % 429 on both, no Retry-After",
            vec![
                "--p429",
                "0.2",
                "--p429-query",
                "0.2",
                "--p-retry-after",
                "0",
            ],
            default_qps,
            false,
        ),
        (
            "DashScope simulator --rps-limit 20",
            vec!["--provider", "dashscope", "--rps-limit", "20"],
            ds_qps,
            true,
        ),
    ];
    println!("## BENCHMARKS (issue 21: query refusals and one request budget)\n");
    println!(
        "| case | shotlist | naive pool | ratio | naive pool honouring Retry-After | shotlist: query 429s, created |"
    );
    println!("|---|---|---|---|---|---|");
    let wanted = std::env::var("SHOTLIST_BENCH_ROWS").unwrap_or_default();
    let wanted: Vec<&str> = wanted.split(',').filter(|w| !w.is_empty()).collect();
    for (name, faults, qps, dashscope) in rows {
        if !wanted.is_empty() && !wanted.iter().any(|w| name.contains(w)) {
            continue;
        }
        let mut args = vec!["--gen-time", "2s"];
        args.extend(&faults);
        let (mut ours, mut theirs, mut honouring) = (Vec::new(), Vec::new(), Vec::new());
        // Half the simulator's random query 429s carry `Retry-After: 1`, which shotlist waits
        // out and the naive pool does not: the pool under shotlist's rules too.
        let retry_after = faults.contains(&"--p429-query") && !faults.contains(&"--p-retry-after");
        let mut detail = String::new();
        for rep in 0..reps {
            // One seed a repetition, the same for shotlist and the pools: with one seed for all,
            // every repetition draws nearly the same refusals and says little more than one.
            let seed = (3 + rep).to_string();
            let args: Vec<&str> = args.iter().copied().chain(["--seed", &seed]).collect();
            let sim = Sim::with(&args);
            let (wall, _, _) = run_on(&sim, dashscope, n, limited(10, half, qps), None);
            ours.push(wall.as_secs_f64());
            let stats = sim.stats();
            let q429 = stats["requests"]["query"]["429"].as_u64().unwrap_or(0);
            let s429 = stats["requests"]["submit"]["429"].as_u64().unwrap_or(0);
            detail = format!(
                "{q429} query / {s429} submit 429s, {} created",
                stats["tasks_created"]
            );
            let extra: &[&str] = if dashscope { &["--dashscope"] } else { &[] };
            let (naive_wall, _) = naive_with(&Sim::with(&args), n, 10, 0.5, extra);
            theirs.push(naive_wall);
            if retry_after {
                let (wall, _) =
                    naive_with(&Sim::with(&args), n, 10, 0.5, &["--honour-retry-after"]);
                honouring.push(wall);
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let show = |v: &[f64]| {
            v.iter()
                .map(|w| format!("{w:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let honouring = if honouring.is_empty() {
            "-".to_owned()
        } else {
            format!("{} s", show(&honouring))
        };
        println!(
            "| {name} | {} s (mean {:.1}) | {} s (mean {:.1}) | {:.2} | {honouring} | {detail} |",
            show(&ours),
            mean(&ours),
            show(&theirs),
            mean(&theirs),
            mean(&ours) / mean(&theirs)
        );
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn current_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    shotlist::alloc::tune();
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--memory-child") {
        let n: usize = args[pos + 1].parse().expect("shot count");
        let baseline = current_rss_mb();
        let plan_only = plan(Path::new("unused"), n);
        let with_plan = current_rss_mb();
        drop(plan_only);
        eprintln!("plan of {n} shots alone: {:.1} MB", with_plan - baseline);
        let sim = Sim::start("0s");
        let (elapsed, per_shot) = run(&sim, n, 256, Duration::from_millis(20));
        println!(
            "{n} {:.2} {:.2} {:.1}",
            elapsed.as_secs_f64(),
            per_shot,
            peak_rss_mb()
        );
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and should stay quick.
    if !args.iter().any(|a| a == "--bench") {
        println!("exec benchmarks: run them with `cargo bench --bench exec`");
        return;
    }

    let only = std::env::var("SHOTLIST_BENCH_ONLY").unwrap_or_default();
    if only == "throughput" {
        throughput();
        return;
    }
    if only == "queries" {
        queries();
        return;
    }
    if only == "storm" {
        storm(false);
        return;
    }
    if only == "cap" {
        server_cap(false);
        return;
    }
    let only_memory = only == "memory";
    println!("## BENCHMARKS (executor)\n");
    println!("| scenario | shots | -j | gen time | poll | wall | ideal | requests/shot |");
    println!("|---|---|---|---|---|---|---|---|");
    let schedules: &[(usize, usize, f64, u64)] = if only_memory {
        &[]
    } else {
        &[(64, 16, 1.0, 100), (200, 50, 2.0, 250)]
    };
    for &(n, c, t, poll) in schedules {
        let sim = Sim::start(&format!("{t}s"));
        let (wall, per_shot) = run(&sim, n, c, Duration::from_millis(poll));
        let ideal = (n.div_ceil(c)) as f64 * t + poll as f64 / 1000.0;
        println!(
            "| schedule | {n} | {c} | {t} s | {poll} ms | {:.2} s | {ideal:.2} s | {per_shot:.2} |",
            wall.as_secs_f64()
        );
    }
    if !only_memory {
        let sim = Sim::start("0s");
        let (wall, per_shot) = run(&sim, 10_000, 256, Duration::from_millis(10));
        println!(
            "| overhead (target < 10 s) | 10000 | 256 | 0 | 10 ms | {:.2} s | - | {per_shot:.2} |",
            wall.as_secs_f64()
        );
    }

    let n = std::env::var("SHOTLIST_BENCH_MEMORY_SHOTS").unwrap_or_else(|_| "100000".into());
    let output = Command::new(std::env::current_exe().expect("bench binary"))
        .args(["--memory-child", &n])
        .stderr(Stdio::inherit())
        .output()
        .expect("memory run");
    let text = String::from_utf8_lossy(&output.stdout);
    let parts: Vec<&str> = text.split_whitespace().collect();
    if let [n, wall, per_shot, rss] = parts[..] {
        println!(
            "| memory (target ≤ 200 MB) | {n} | 256 | 0 | 20 ms | {wall} s | - | {per_shot} |"
        );
        println!("\npeak RSS of the run process for {n} shots: {rss} MB");
    } else {
        println!(
            "\nmemory run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
