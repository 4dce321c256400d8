//! Executor benchmarks (`cargo bench --bench exec`): wall time against the ideal schedule,
//! HTTP requests per shot, pure overhead with instant tasks, and peak memory of a 100,000-shot
//! run. The simulator runs as a separate `shotlist sim` process so its memory and CPU are not
//! counted as the executor's. Numbers go into docs/executor.md (BENCHMARKS).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shotlist::api::{ApiKey, Client, ClientConfig};
use shotlist::exec::{ProgressMode, RunOptions};
use shotlist::plan::{Plan, PlannedShot};

struct Sim {
    child: Child,
    url: String,
}

impl Sim {
    fn start(gen_time: &str) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shotlist"))
            .args(["-q", "sim", "--port", "0", "--gen-time", gen_time])
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
                resolution: "720P".into(),
                ratio: Some("16:9".into()),
                seed: Some(i as u32),
                source: None,
                row: None,
                take: 1,
                matrix: Vec::new(),
                depends_on: Vec::new(),
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
    }
}

/// Runs `n` shots at `-j concurrency`; returns wall time and requests per shot.
fn run(sim: &Sim, n: usize, concurrency: usize, poll: Duration) -> (Duration, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = plan(&dir.path().join("out"), n);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let before = sim.requests();
    let started = Instant::now();
    let outcome = runtime.block_on(async {
        let client = Client::new(ClientConfig {
            base_url: sim.url.clone(),
            api_key: ApiKey::new("sk-bench"),
            timeout: Duration::from_secs(60),
        })
        .expect("client");
        let opts = RunOptions {
            concurrency,
            poll: Some(poll),
            progress: ProgressMode::Quiet,
            ..RunOptions::default()
        };
        shotlist::exec::execute(&plan, client, opts)
            .await
            .expect("run")
    });
    let elapsed = started.elapsed();
    assert_eq!(outcome.exit_code(), 0, "benchmark run failed");
    let per_shot = (sim.requests() - before) as f64 / n as f64;
    (elapsed, per_shot)
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

    let only_memory = std::env::var("SHOTLIST_BENCH_ONLY").is_ok_and(|v| v == "memory");
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
            "| memory (target < 300 MB) | {n} | 256 | 0 | 20 ms | {wall} s | - | {per_shot} |"
        );
        println!("\npeak RSS of the run process for {n} shots: {rss} MB");
    } else {
        println!(
            "\nmemory run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
