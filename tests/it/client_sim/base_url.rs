//! The base URL forms users paste (trailing `/`, a `/v1` suffix, surrounding spaces) all reach
//! the simulator's API routes, never its fallback.

use super::bodies::t2v_multishot;
use super::{KEY, client_for, config, count, run_to_success, start, stats};

#[tokio::test]
async fn every_tolerated_base_url_form_reaches_the_api() {
    let sim = start(config(50)).await;
    let base = sim.base_url();
    let forms = [
        base.clone(),
        format!("{base}/"),
        format!("{base}/v1"),
        format!("{base}/v1/"),
        format!("  {base}\n"),
    ];
    for form in &forms {
        let client = client_for(form, KEY);
        let (_, url) = run_to_success(&client, &t2v_multishot()).await;
        assert!(
            url.starts_with(&format!("{base}/files/")),
            "{form:?}: {url}"
        );
    }
    let stats = stats(&sim).await;
    assert_eq!(stats["tasks_created"], forms.len());
    assert_eq!(count(&stats, "submit", "200"), forms.len() as u64);
    assert_eq!(count(&stats, "other", "404"), 0, "{stats:#}");
}
