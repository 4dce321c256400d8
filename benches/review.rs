//! The review pages of a 100,000-shot output folder (a matrix shot, `plan.json` and a
//! `results.json` of every shot succeeded, a mark on every tenth): time and peak RSS (VmHWM)
//! of reading the folder and writing every page. Targets: < 5 s and < 500 MB, linear in shots.
//!
//! Run with `cargo bench --bench review` (optionally `-- 200000` for another shot count).

use std::time::Instant;

fn main() {
    let shots: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let b = 1000;
    let a = shots.div_ceil(b);
    let list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let manifest = dir.path().join("big.yaml");
    std::fs::write(
        &manifest,
        format!(
            "version: 1\nname: big\ndefaults: {{ model: t2v, prompt_extend: false }}\nshots:\n\
             \x20 - id: \"s-{{{{ matrix.a }}}}-{{{{ matrix.b }}}}\"\n\
             \x20   matrix: {{ a: [{}], b: [{}] }}\n\
             \x20   prompt: \"A city at night, number {{{{ matrix.a }}}} of {{{{ matrix.b }}}}\"\n",
            list(a),
            list(b)
        ),
    )
    .expect("write manifest");
    let mut plan = shotlist::plan::load_and_plan(&manifest)
        .unwrap_or_else(|r| panic!("{}", shotlist::plan::render_human(&r.diagnostics)))
        .plan;
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("videos")).expect("out");
    plan.out_dir = out.clone();
    let file = std::io::BufWriter::new(std::fs::File::create(out.join("plan.json")).unwrap());
    serde_json::to_writer(file, &plan).expect("plan.json");
    let rows: Vec<serde_json::Value> = (plan.shots.iter())
        .map(|s| {
            serde_json::json!({"id": s.id, "key": s.key, "status": "succeeded", "model": s.model,
                "duration": 5, "file": format!("{}.mp4", s.id), "cost": "0.50"})
        })
        .collect();
    let file = std::io::BufWriter::new(std::fs::File::create(out.join("results.json")).unwrap());
    serde_json::to_writer(file, &rows).expect("results.json");
    drop(rows);
    let mut marks = shotlist::review::Marks::default();
    for s in plan.shots.iter().step_by(10) {
        marks.apply(shotlist::review::Mark {
            id: s.id.clone(),
            key: s.key.clone(),
            mark: shotlist::review::Verdict::Rejected,
            note: Some("too dark".into()),
            at: None,
        });
    }
    marks
        .save(&out.join(shotlist::review::marks::FILE_NAME))
        .expect("marks");
    let rss_before = peak_rss_kb();
    let start = Instant::now();
    let (_, n) = shotlist::review::write_page(&out, (&plan).into(), &Default::default(), &|| false)
        .expect("pages");
    let took = start.elapsed();
    let pages = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("review") && name.ends_with(".html")
        })
        .count();
    let first = std::fs::metadata(out.join("review.html")).unwrap().len();
    println!(
        "shots={n} pages={pages} write={:.3}s first_page_bytes={first} peak_rss_mb_before={:.1} \
         peak_rss_mb={:.1}",
        took.as_secs_f64(),
        rss_before as f64 / 1024.0,
        peak_rss_kb() as f64 / 1024.0
    );
}

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
