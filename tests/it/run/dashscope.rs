//! The executor over the provider seam with DashScope's native protocol: the same plan (the
//! gateway-form bodies the planner writes) runs against `sim --provider dashscope`, chains
//! included, and each shot is paid once.

use std::time::Duration;

use shotlist::api::{ApiKey, Client, ClientConfig, dashscope};
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
