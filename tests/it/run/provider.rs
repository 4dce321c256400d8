//! The provider as part of an output folder's identity, with the real binary: a folder run on
//! one provider is refused on the other (nothing sent), and `run --sim --provider dashscope`.

use crate::support::{Project, SimProcess, repo_root};

use super::cli::{SECRET, project};

/// `run` of the test project against `sim` as `provider`, its key in the provider's variable.
fn run_on(p: &Project, provider: &str, sim: &SimProcess) -> crate::support::Run {
    let mut cmd = p.cmd(&[
        "-q",
        "run",
        "batch.yaml",
        "--provider",
        provider,
        "--base-url",
        &sim.url,
        "--poll",
        "100ms",
    ]);
    cmd.env("GRAVITEX_API_KEY", SECRET)
        .env("DASHSCOPE_API_KEY", SECRET);
    crate::support::Run::from(cmd.output().expect("run shotlist"))
}

fn sims() -> (SimProcess, SimProcess) {
    (
        SimProcess::start(&["--gen-time", "100ms"]),
        SimProcess::start(&["--provider", "dashscope", "--gen-time", "100ms"]),
    )
}

#[test]
fn a_folder_run_on_dashscope_is_refused_on_gravitex_and_nothing_is_sent() {
    let (gravitex, dashscope) = sims();
    let p = project(2);
    run_on(&p, "dashscope", &dashscope).code(0);
    assert_eq!(dashscope.stats()["tasks_created"], 3);
    assert_eq!(p.read("out/batch/provider"), "dashscope\n");
    let plan = p.run(&["plan", "batch.yaml"]);
    plan.code(0);
    assert!(plan.stderr.contains("would be refused"), "{}", plan.stderr);

    let refused = run_on(&p, "gravitex", &gravitex);
    refused.code(2);
    for word in ["dashscope", "gravitex", "--out", "nothing was sent"] {
        assert!(refused.stderr.contains(word), "{word}: {}", refused.stderr);
    }
    assert_eq!(gravitex.stats()["tasks_created"], 0);
    assert_eq!(dashscope.stats()["tasks_created"], 3);
    assert_eq!(p.read("out/batch/provider"), "dashscope\n");

    run_on(&p, "dashscope", &dashscope).code(0);
    assert_eq!(
        dashscope.stats()["tasks_created"],
        3,
        "a rerun sends nothing"
    );
}

#[test]
fn a_folder_from_before_providers_counts_as_gravitex() {
    let (gravitex, dashscope) = sims();
    let p = project(1);
    run_on(&p, "gravitex", &gravitex).code(0);
    assert_eq!(gravitex.stats()["tasks_created"], 2);
    std::fs::remove_file(p.path("out/batch/provider")).unwrap();

    let refused = run_on(&p, "dashscope", &dashscope);
    refused.code(2);
    assert!(
        refused.stderr.contains("--provider gravitex"),
        "{}",
        refused.stderr
    );
    assert_eq!(dashscope.stats()["tasks_created"], 0);

    run_on(&p, "gravitex", &gravitex).code(0);
    assert_eq!(
        gravitex.stats()["tasks_created"],
        2,
        "a rerun sends nothing"
    );
    assert_eq!(p.read("out/batch/provider"), "gravitex\n");
}

#[test]
fn an_unknown_provider_record_is_refused() {
    let (gravitex, _dashscope) = sims();
    let p = project(1);
    p.file("out/batch/provider", "openai\n");
    let refused = run_on(&p, "gravitex", &gravitex);
    refused.code(2);
    assert!(refused.stderr.contains("openai"), "{}", refused.stderr);
    assert_eq!(gravitex.stats()["tasks_created"], 0);
}

#[test]
fn run_sim_provider_dashscope_runs_an_example_and_a_rerun_sends_nothing() {
    let p = Project::new();
    let manifest = repo_root().join("manifests/story.yaml");
    let manifest = manifest.to_str().unwrap();
    let args = [
        "run",
        manifest,
        "--sim",
        "--provider",
        "dashscope",
        "--out",
        "out",
        "--poll",
        "100ms",
    ];
    let first = p.run(&args);
    first.code(0);
    assert!(first.stderr.contains("3 succeeded"), "{}", first.stderr);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&p.read("out/results.json")).expect("results.json");
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:?}");
    assert_eq!(p.read("out/provider"), "dashscope\n");
    let journal = p.read("out/journal.jsonl");

    p.run(&args).code(0);
    let after = p.read("out/journal.jsonl");
    let submits = |text: &str| text.matches("\"submitting\"").count();
    assert_eq!(submits(&journal), 3, "{journal}");
    assert_eq!(submits(&after), 3, "a rerun sends nothing: {after}");
}

#[test]
fn a_wrong_dashscope_key_stops_the_run_without_leaking_it() {
    let sim = SimProcess::start(&["--provider", "dashscope", "--key", "sk-right"]);
    let p = project(1);
    let mut cmd = p.cmd(&[
        "run",
        "batch.yaml",
        "--provider",
        "dashscope",
        "--base-url",
        &sim.url,
    ]);
    cmd.env("DASHSCOPE_API_KEY", SECRET)
        .env("GRAVITEX_API_KEY", "sk-right");
    let run = crate::support::Run::from(cmd.output().unwrap());
    run.code(3);
    for hint in [
        "InvalidApiKey",
        "the key from the DASHSCOPE_API_KEY environment variable",
        "only in the region it was made in",
        "`[api] region`",
        "`--base-url`",
        "virginia https://dashscope-us.aliyuncs.com",
        "beijing https://dashscope.aliyuncs.com",
    ] {
        assert!(run.stderr.contains(hint), "{hint}: {}", run.stderr);
    }
    assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
    assert!(!p.read("out/batch/journal.jsonl").contains(SECRET));
    assert_eq!(sim.stats()["tasks_created"], 0);
}

#[test]
fn a_dashscope_run_at_the_gateway_url_stops_and_says_to_check_the_base_url() {
    let (gravitex, _dashscope) = sims();
    let p = project(1);
    let run = run_on(&p, "dashscope", &gravitex);
    run.code(3);
    for hint in [
        "404",
        "/api/v1/services/aigc/video-generation/video-synthesis",
        "check the base URL",
        "`[api] region`",
        "singapore https://dashscope-intl.aliyuncs.com",
    ] {
        assert!(run.stderr.contains(hint), "{hint}: {}", run.stderr);
    }
    assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
    assert_eq!(gravitex.stats()["tasks_created"], 0);
    let journal = p.read("out/batch/journal.jsonl");
    assert_eq!(
        journal.matches("\"submitting\"").count(),
        1,
        "one submit, then the stop: {journal}"
    );
    assert!(
        !journal.contains("\"failed\""),
        "no shot is failed by a wrong URL: {journal}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_at_the_base_url_stops_the_run_and_says_what_to_check() {
    let page = crate::api::fake::Fake::always(|| crate::api::fake::Reply {
        status: 404,
        headers: vec![("content-type", "text/html".into())],
        body: b"<!doctype html><html><body><h1>Page not found</h1></body></html>".to_vec(),
    })
    .await;
    let p = project(1);
    let url = page.base.clone();
    let run = tokio::task::spawn_blocking(move || {
        let mut cmd = p.cmd(&["-q", "run", "batch.yaml", "--base-url", &url]);
        cmd.env("GRAVITEX_API_KEY", SECRET);
        (crate::support::Run::from(cmd.output().unwrap()), p)
    });
    let (run, p) = run.await.unwrap();
    run.code(3);
    for hint in [
        "404",
        "Not Found",
        "check the base URL",
        "GRAVITEX_BASE_URL",
    ] {
        assert!(run.stderr.contains(hint), "{hint}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("<html"), "{}", run.stderr);
    assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
    assert_eq!(page.seen().len(), 1, "one submit, then the stop");
    assert!(!p.read("out/batch/journal.jsonl").contains(SECRET));
}

/// The real binary against `sim --provider dashscope` losing half the create answers, with
/// `-v`: every lost create is found and re-attached (each shot paid once), and the key is
/// nowhere: not on stderr, in the journal or in the results.
#[test]
fn lost_dashscope_creates_are_reattached_and_the_key_is_never_written() {
    let sim = SimProcess::start(&[
        "--provider",
        "dashscope",
        "--gen-time",
        "100ms",
        "--p-lost",
        "0.5",
        "--seed",
        "3",
    ]);
    let p = project(4);
    let mut cmd = p.cmd(&[
        "-v",
        "run",
        "batch.yaml",
        "--provider",
        "dashscope",
        "--base-url",
        &sim.url,
        "--poll",
        "100ms",
    ]);
    cmd.env("DASHSCOPE_API_KEY", SECRET);
    let run = crate::support::Run::from(cmd.output().expect("run shotlist"));
    run.code(0);
    let stats = sim.stats();
    let lost = stats["requests"]["submit"]["lost"].as_u64().unwrap_or(0);
    assert!(lost >= 1, "the seed loses some: {stats:#}");
    assert_eq!(stats["tasks_created"], 6, "each shot paid once: {stats:#}");
    assert!(
        run.stderr.contains("re-attached, not resent"),
        "{}",
        run.stderr
    );
    let journal = p.read("out/batch/journal.jsonl");
    assert_eq!(journal.matches("\"reattached\"").count() as u64, lost);
    // The results and the journal name the model as it was sent: DashScope's native id.
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&p.read("out/batch/results.json")).unwrap();
    for r in &rows {
        let model = r["model"].as_str().unwrap();
        assert!(["wan2.7-t2v", "wan2.7-i2v"].contains(&model), "{model}");
    }
    assert!(journal.contains(r#""model":"wan2.7-t2v""#), "{journal}");
    let written = run.stderr + &run.stdout + &journal + &p.read("out/batch/results.json");
    assert!(!written.contains(SECRET), "the key leaked: {written}");
}

/// A base URL nothing listens at (a port bound but not listening refuses every connection) stops
/// the run at the first submit, naming the URL and where it was set: nothing was sent, no shot
/// is failed, and a rerun at the right URL sends every shot.
#[test]
fn a_base_url_that_refuses_connections_stops_the_run_and_names_the_url() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", socket.local_addr().unwrap());
    let p = project(1);
    let started = std::time::Instant::now();
    let mut cmd = p.cmd(&["-q", "run", "batch.yaml", "--base-url", &url]);
    cmd.env("GRAVITEX_API_KEY", SECRET);
    let run = crate::support::Run::from(cmd.output().unwrap());
    run.code(3);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "no retries for 64 s"
    );
    for hint in [
        url.as_str(),
        "`--base-url`",
        "nothing was sent",
        "cannot connect",
    ] {
        assert!(run.stderr.contains(hint), "{hint}: {}", run.stderr);
    }
    let journal = p.read("out/batch/journal.jsonl");
    assert!(!journal.contains("\"failed\""), "{journal}");
    assert!(!journal.contains("\"unknown\""), "{journal}");
    assert!(!journal.contains(SECRET));

    let sim = SimProcess::start(&["--gen-time", "100ms"]);
    let mut cmd = p.cmd(&["-q", "run", "batch.yaml", "--poll", "100ms"]);
    cmd.env("GRAVITEX_API_KEY", SECRET)
        .env("GRAVITEX_BASE_URL", &sim.url);
    crate::support::Run::from(cmd.output().unwrap()).code(0);
    assert_eq!(sim.stats()["tasks_created"], 2, "every shot sent once");
}
