//! `shotlist review` and `shotlist mark`: the page in a real headless Chromium, an HTML
//! snapshot of a small hand-made output folder, and marks through the CLI.

mod browser;
mod hostile;
mod mark;
mod page;
mod retake;

use crate::support::Project;

/// A manifest of three t2v shots (one with two takes) and the output folder `out`.
pub const SMALL: &str = r#"
version: 1
name: small
seed: 7
defaults: { model: t2v, prompt_extend: false }
data:
  looks: { rows: [{ look: noir }, { look: neon }] }
shots:
  - id: "city-{{ row.look }}-{{ matrix.ratio | replace(':', 'x') }}"
    for_each: looks
    matrix: { ratio: ["16:9", "9:16"] }
    ratio: "{{ matrix.ratio }}"
    prompt: "A {{ row.look }} city at night"
  - id: hero
    takes: 2
    prompt: "A hero walks in </script><script>document.title='pwned'</script> <img src=x onerror=\"document.title='pwned'\"> & more"
output: { dir: out }
"#;

/// A project holding [`SMALL`] as `m.yaml`.
pub fn small() -> Project {
    let p = Project::new();
    p.file("m.yaml", SMALL);
    p
}

/// The shot ids and keys of `m.yaml`, from `shotlist plan --format json`.
pub fn keys(p: &Project) -> Vec<(String, String)> {
    let run = p.run(&["plan", "m.yaml", "--format", "json"]);
    run.code(0);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    plan["shots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
