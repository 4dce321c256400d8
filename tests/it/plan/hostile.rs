//! Hostile manifests, tables and templates: values stay as written, files stay inside the
//! manifest's folder, work is bounded, and every refusal is exit 2 with nothing sent.

use std::process::Command;

use crate::support::{Project, Run, SimProcess};

use super::{plan_in_temp, planned, rejected};

fn prompts(p: &shotlist::plan::Planned) -> Vec<String> {
    p.plan
        .shots
        .iter()
        .map(|s| s.body.value()["prompt"].as_str().unwrap().to_owned())
        .collect()
}

fn messages(r: &shotlist::plan::Rejected) -> String {
    r.diagnostics
        .iter()
        .map(|d| format!("{} | {}\n", d.message, d.help.as_deref().unwrap_or("")))
        .collect()
}

#[test]
fn values_reach_the_prompt_as_written() {
    let p = planned(
        "version: 1\nvars: {country: NO, flag: on, version: 1.10, mode: 0o17, n: 5, big: 1e3, none: ~}\n\
         data:\n  t: {rows: [{n: NO, y: 1.10, o: 0o17, f: on, e: }]}\n\
         shots:\n  - id: \"s-{{ matrix.m }}\"\n    for_each: t\n    model: t2v\n    matrix: {m: [y, 1.10]}\n\
         \x20   prompt: \"{{ vars.country }} {{ vars.flag }} {{ vars.version }} {{ vars.mode }} {{ vars.n + 1 }} {{ vars.big }} [{{ vars.none }}] \
         {{ row.n }} {{ row.y }} {{ row.o }} {{ row.f }} [{{ row.e }}] {{ matrix.m }}\"\n",
    );
    assert_eq!(
        prompts(&p),
        [
            "NO on 1.10 0o17 6 1e3 [~] NO 1.10 0o17 on [] y",
            "NO on 1.10 0o17 6 1e3 [~] NO 1.10 0o17 on [] 1.10",
        ]
    );
}

#[test]
fn yaml_1_1_booleans_are_not_booleans() {
    let r = rejected(
        "version: 1\nshots:\n  - {id: a, model: t2v, prompt: x, watermark: on}\n",
        &[],
    );
    let m = messages(&r);
    assert!(m.contains("watermark"), "{m}");
    assert!(m.contains("\"on\" is not true or false"), "{m}");
}

#[cfg(unix)]
#[test]
fn data_and_templates_never_leave_the_folder_nor_read_special_files() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.csv");
    std::fs::write(&secret, "a\nSECRET-CONTENT\n").unwrap();
    let manifest = "version: 1\ndata:\n  link: link.csv\n  pipe: pipe.csv\n  folder: folder\n\
                    shots:\n  - {id: a, model: t2v, prompt_file: inc.txt}\n";
    let (dir, _) = plan_in_temp(
        "version: 1\nshots: []\n",
        &[("inc.txt", b"{% include 'up.txt' %}")],
    );
    std::os::unix::fs::symlink(&secret, dir.path().join("link.csv")).unwrap();
    std::os::unix::fs::symlink(&secret, dir.path().join("up.txt")).unwrap();
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    let made = Command::new("mkfifo")
        .arg(dir.path().join("pipe.csv"))
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let path = dir.path().join("manifest.yaml");
    std::fs::write(&path, manifest).unwrap();
    let r = shotlist::plan::load_and_plan(&path).unwrap_err();
    let m = messages(&r);
    assert!(
        m.contains("`link.csv` leads outside the manifest's folder"),
        "{m}"
    );
    assert!(
        m.contains("`pipe.csv` is not a regular file (it is a named pipe)"),
        "{m}"
    );
    assert!(
        m.contains("`folder` is not a regular file (it is a folder)"),
        "{m}"
    );
    assert!(m.contains("`up.txt` leads outside"), "{m}");
    assert!(!m.contains("SECRET"), "{m}");
}

#[test]
fn the_manifest_itself_is_a_regular_file_within_the_cap() {
    let p = Project::new();
    p.file(
        "big.yaml",
        &format!("version: 1\n# {}\nshots: []\n", "x".repeat(2 << 20)),
    );
    let r = Run::from(
        p.cmd(&["validate", "big.yaml"])
            .env(shotlist::manifest::MAX_FILE_ENV, "1")
            .output()
            .unwrap(),
    );
    r.code(2);
    assert!(r.stderr.contains("larger than 1 MiB"), "{}", r.stderr);
    assert!(
        r.stderr.contains("SHOTLIST_MAX_FILE_MB=<MiB>"),
        "{}",
        r.stderr
    );
    let r = p.run(&["validate", "/dev/zero"]);
    r.code(2);
    assert!(
        r.stderr.contains("not a regular file (it is a device)"),
        "{}",
        r.stderr
    );
    let r = p.run(&["validate", "."]);
    r.code(2);
    assert!(r.stderr.contains("(it is a folder)"), "{}", r.stderr);
}

#[cfg(unix)]
#[test]
fn a_fifo_manifest_is_refused_at_once() {
    let p = Project::new();
    let made = Command::new("mkfifo").arg(p.path("m.yaml")).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    // Nobody ever writes to the pipe: reading it would block forever.
    let r = p.run(&["validate", "m.yaml"]);
    r.code(2);
    assert!(r.stderr.contains("named pipe"), "{}", r.stderr);
}

#[test]
fn csv_with_an_unterminated_quote_names_the_row() {
    let r = rejected(
        "version: 1\ndata: {t: t.csv}\nshots:\n  - {id: \"a{{ row.k }}\", for_each: t, model: t2v, prompt: x}\n",
        &[("t.csv", b"k,v\n1,ok\n2,\"open\n3,merged\n")],
    );
    let d = &r.diagnostics[0];
    assert_eq!(
        d.message,
        "t.csv: row 2: a quote opened on line 3 is never closed"
    );
    assert_eq!(d.data.as_ref().map(|d| d.row), Some(2));
}

#[test]
fn library_wording_never_reaches_the_user() {
    let many = format!(
        "version: 1\nvars: {{a: [{}]}}\nshots: []\n",
        "1,".repeat(300_000)
    );
    let deep = format!(
        "version: 1\nvars: {{a: {}1{}}}\nshots: []\n",
        "[".repeat(300),
        "]".repeat(300)
    );
    for text in [
        many,
        deep,
        "version: 1\ndata: {t: {rows: [{n: 1, n: 2}]}}\nshots: []\n".to_owned(),
        format!("version: 1\nshots: {}\n", "x".repeat(100_000)),
        format!("version: {}\nshots: []\n", "9".repeat(100_000)),
    ] {
        let r = rejected(&text, &[]);
        let m = messages(&r);
        for word in [
            "budget",
            "Nodes",
            "DuplicateKeyPolicy",
            "Options",
            "u32",
            "untagged",
        ] {
            assert!(!m.contains(word), "{word} in {m}");
        }
        assert!(m.len() < 1000, "a huge scalar is echoed: {} bytes", m.len());
    }
}

#[test]
fn output_file_names_longer_than_the_platform_takes_fail_validation() {
    let long = "x".repeat(252);
    let r = rejected(
        &format!(
            "version: 1\nshots:\n  - {{id: a, model: t2v, prompt: x}}\noutput: {{file: \"{{{{ id }}}}{long}.mp4\"}}\n"
        ),
        &[],
    );
    assert!(
        messages(&r).contains("257 bytes long, more than the 255"),
        "{}",
        messages(&r)
    );
    planned(&format!(
        "version: 1\nshots:\n  - {{id: a, model: t2v, prompt: x}}\noutput: {{file: \"{{{{ id }}}}{}.mp4\"}}\n",
        "x".repeat(250)
    ));
}

/// Runs `shotlist` with its address space capped at 1 GiB: a template or table that tried to
/// use more would abort the process instead of ending with exit 2.
#[cfg(target_os = "linux")]
fn run_in_1gib(p: &Project, args: &str) -> Run {
    let bin = env!("CARGO_BIN_EXE_shotlist");
    let mut cmd = crate::support::shotlist();
    cmd.current_dir(p.dir.path());
    let mut sh = Command::new("sh");
    sh.current_dir(p.dir.path())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("GRAVITEX_API_KEY", "sk-test")
        .args(["-c", &format!("ulimit -v 1048576 && exec {bin} {args}")]);
    Run::from(sh.output().unwrap())
}

#[cfg(target_os = "linux")]
#[test]
fn hostile_templates_and_tables_end_with_exit_2_in_bounded_memory_and_send_nothing() {
    let sim = SimProcess::start(&[]);
    let p = Project::new();
    let rows: String = (0..20).map(|i| format!("{i}\n")).collect();
    p.file("t.csv", &format!("k\n{rows}"));
    let cases = [
        "prompt: \"{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}\"",
        "prompt: \"{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}\"",
        "prompt: \"{% for i in range(100000) %}{% set y = 'x' * 1000000 %}{% endfor %}\"",
    ];
    for (n, case) in cases.iter().enumerate() {
        let name = format!("m{n}.yaml");
        p.file(
            &name,
            &format!("version: 1\ndata: {{t: t.csv}}\nshots:\n  - id: \"a{{{{ row.k }}}}\"\n    for_each: t\n    model: t2v\n    {case}\n"),
        );
        let r = run_in_1gib(&p, &format!("validate {name}"));
        r.code(2);
        assert!(r.stderr.contains("prompt: "), "{}", r.stderr);
        let r = run_in_1gib(&p, &format!("run {name} --base-url {}", sim.url));
        r.code(2);
    }
    p.file(
        "eight.yaml",
        &format!(
            "version: 1\nshots:\n{}",
            (0..8)
                .map(|i| format!("  - {{id: s{i}, model: t2v, prompt: \"{{{{ 'x' * 4000 }}}}\", takes: 1000000}}\n"))
                .collect::<String>()
        ),
    );
    let r = run_in_1gib(&p, &format!("run eight.yaml --base-url {}", sim.url));
    r.code(2);
    assert!(
        r.stderr
            .contains("which with the 1000000 before it makes 2000000"),
        "{}",
        r.stderr
    );
    assert_eq!(sim.stats()["tasks_created"], 0);
    assert!(!p.path("out").exists());
}
