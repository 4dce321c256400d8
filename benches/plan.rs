//! Planning speed and memory: a manifest over a generated 100,000-row CSV, planned and
//! serialised to JSON. Prints seconds and peak RSS (VmHWM); targets are < 1 s and < 300 MB.
//!
//! Run with `cargo bench --bench plan` (optionally `-- 200000` for another row count).

use std::fmt::Write as _;
use std::time::Instant;

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut csv = String::from("sku,name,tagline,seconds,active\n");
    for i in 0..rows {
        let _ = writeln!(
            csv,
            "SKU{i:06},\"Product {i}, edition {}\",\"Made for \"\"day {}\"\"\",{},{}",
            i % 7,
            i % 365,
            2 + i % 9,
            if i % 10 == 0 { "no" } else { "yes" }
        );
    }
    std::fs::write(dir.path().join("products.csv"), &csv).expect("write csv");
    let manifest = dir.path().join("big.yaml");
    std::fs::write(
        &manifest,
        r#"version: 1
seed: 20261124
vars: { brand: Acme }
data: { products: products.csv }
defaults: { model: t2v, resolution: 720P, prompt_extend: false }
shots:
  - id: "teaser-{{ row.sku }}"
    for_each: products
    when: "row.active == 'yes'"
    prompt: "Shot 1 [0-2s] Wide: {{ row.name }}, {{ vars.brand }} style. Shot 2 [2-{{ row.seconds }}s] {{ row.tagline }}."
    duration: "{{ row.seconds }}"
    ratio: "16:9"
"#,
    )
    .expect("write manifest");

    let cpu_start = cpu_seconds();
    let start = Instant::now();
    let planned = shotlist::plan::load_and_plan(&manifest)
        .unwrap_or_else(|r| panic!("{}", shotlist::plan::render_human(&r.diagnostics)));
    let planned_at = start.elapsed();
    // Streamed to a file, as `shotlist plan --format json -o FILE` does.
    let out = dir.path().join("plan.json");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out).expect("create"));
    serde_json::to_writer(&mut file, &planned.plan).expect("serialise");
    std::io::Write::flush(&mut file).expect("flush");
    let total = start.elapsed();
    let cpu = cpu_seconds() - cpu_start;
    let json_len = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    println!(
        "rows={rows} shots={} plan={:.3}s plan+json={:.3}s cpu={cpu:.3}s json_bytes={} peak_rss_mb={:.1}",
        planned.plan.shots.len(),
        planned_at.as_secs_f64(),
        total.as_secs_f64(),
        json_len,
        peak_rss_kb() as f64 / 1024.0
    );
}

/// CPU time this process has used (on a shared machine, wall time also counts waiting).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

/// Peak resident set size of this process, from /proc/self/status (Linux).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
