//! The provider page's five requests, as shotlist builds them, go through the whole cycle:
//! accepted by the simulator's strict rules, generated, downloaded as the real clip.

use std::collections::HashMap;
use std::path::Path;

use futures::future::join_all;
use serde_json::Value;

use super::bodies::{self, Example};
use super::{assert_is_the_clip, client, config, count, run_to_success, start, stats};

#[tokio::test]
async fn each_provider_request_is_accepted_generated_and_downloaded_as_a_real_mp4() {
    let sim = start(config(200)).await;
    let client = client(&sim);
    let out = tempfile::tempdir().unwrap();
    let examples = bodies::all();
    let base = sim.base_url();
    let base = base.as_str();

    let runs = examples.iter().map(|Example { manifest, body }| {
        let client = client.clone();
        let dest = out.path().join(format!("{manifest}.mp4"));
        async move {
            let (task_id, url) = run_to_success(&client, body).await;
            assert!(
                url.starts_with(&format!("{base}/")),
                "{manifest}: result URL {url} is not the simulator's"
            );
            let downloaded = client
                .download(&url, &dest)
                .await
                .unwrap_or_else(|e| panic!("{manifest}: download: {e}"));
            assert_is_the_clip(&dest, &downloaded);
            (task_id, *manifest)
        }
    });
    let task_of: HashMap<String, &str> = join_all(runs).await.into_iter().collect();
    assert_eq!(task_of.len(), examples.len(), "one distinct task per body");

    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], examples.len());
    assert_eq!(stats["by_status"]["succeeded"], examples.len());
    assert_eq!(count(&stats, "submit", "200"), examples.len() as u64);
    assert_eq!(count(&stats, "submit", "400"), 0, "{stats:#}");
    assert_eq!(count(&stats, "download", "200"), examples.len() as u64);
    for task in stats["tasks"].as_array().expect("task list") {
        let id = task["task_id"].as_str().expect("task id");
        let manifest = task_of[id];
        let body = &examples
            .iter()
            .find(|e| e.manifest == manifest)
            .unwrap()
            .body;
        assert_eq!(task["model"], body["model"], "{manifest}");
        assert_eq!(
            task["prompt"], body["prompt"],
            "{manifest}: the prompt arrived intact"
        );
    }
}

/// The bodies above are what the planner builds from `manifests/`: the cross test sends what
/// shotlist itself would send, not a hand-made approximation.
#[test]
fn the_planner_builds_exactly_these_bodies_from_the_example_manifests() {
    for Example { manifest, body } in bodies::all() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests")
            .join(format!("{manifest}.yaml"));
        let planned = shotlist::plan::load_and_plan(&path).unwrap_or_else(|rejected| {
            panic!(
                "{manifest}: {}",
                shotlist::plan::render_human(&rejected.diagnostics)
            )
        });
        let shots = &planned.plan.shots;
        assert_eq!(shots.len(), 1, "{manifest}");
        let sent: Value = shots[0].resolved_body(|_| None).expect("no upstreams");
        assert_eq!(sent, body, "{manifest}");
        if body["model"] == "wan2.7-i2v-2026-04-25" {
            assert!(
                sent["metadata"]["parameters"].get("ratio").is_none(),
                "{manifest}: ratio is never sent for i2v"
            );
        }
    }
}
