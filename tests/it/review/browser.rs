//! review.html in a real headless Chromium (Debian's `chromium`; `.ci/run` installs it): the
//! DOM after the page's script ran, no network, escaping that holds, and a screenshot.
//! Skipped, saying why, only where no Chromium is installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Project, repo_root};

pub(super) fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "skipped: no Chromium (/usr/bin/chromium or $CHROMIUM); install Debian's `chromium` \
             package (.ci/run does) to run the browser tests"
        );
    }
    found
}

/// What headless Chromium printed: the DOM (stdout) and its log with console messages (stderr).
pub(super) struct Shown {
    pub dom: String,
    pub log: String,
}

/// Runs headless Chromium on `url` with `extra` flags, a fresh profile and no background
/// networking; the page gets 5 s of virtual time for its script and observers.
pub(super) fn headless(bin: &Path, url: &str, extra: &[&str]) -> Shown {
    // One Chromium at a time: two at once on a busy machine run out of virtual time.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("stdout");
    let err = tmp.path().join("stderr");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--window-size=1280,900",
        ])
        .arg(format!(
            "--user-data-dir={}",
            tmp.path().join("profile").display()
        ))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Shown {
        dom: std::fs::read_to_string(out).unwrap(),
        log: std::fs::read_to_string(err).unwrap(),
    }
}

pub(super) fn file_url(path: &Path) -> String {
    format!("file://{}", std::path::absolute(path).unwrap().display())
}

fn results(p: &Project) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&p.read("out/results.json"))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn product_launch_page_in_headless_chromium() {
    let Some(bin) = chromium() else { return };
    let p = Project::new();
    let manifest = repo_root().join("manifests/product-launch.yaml");
    p.run(&[
        "-q",
        "run",
        manifest.to_str().unwrap(),
        "--sim",
        "--out",
        "out",
    ])
    .code(0);
    let rows = results(&p);
    let downloaded = rows
        .iter()
        .filter(|r| r["status"] == "succeeded" && r["file"].is_string())
        .count();
    assert_eq!(downloaded, 12);
    let html = p.read("out/review.html");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page names no network address"
    );
    // Video decoding runs in real time, outside Chromium's virtual time: on a busy machine a
    // page may be dumped before any clip has loaded, so it is opened again (at most 3 times).
    let played = |shown: &Shown| shown.dom.matches(r#"data-loaded="1""#).count();
    let mut shown = headless(&bin, &file_url(&p.path("out/review.html")), &["--dump-dom"]);
    for _ in 0..2 {
        if played(&shown) > 0 {
            break;
        }
        shown = headless(&bin, &file_url(&p.path("out/review.html")), &["--dump-dom"]);
    }
    assert!(
        shown.dom.contains(r#"data-ready="1""#),
        "the script ran:\n{}",
        shown.log
    );
    assert_eq!(shown.dom.matches("<video ").count(), downloaded);
    for r in &rows {
        let id = r["id"].as_str().unwrap();
        assert!(shown.dom.contains(&format!(r#"data-id="{id}""#)), "{id}");
    }
    // Lazy loading gave the videos near the top their src; those far below wait.
    let loaded = shown.dom.matches(r#" src="videos/"#).count();
    assert!(loaded >= 2 && loaded < downloaded, "{loaded} videos loaded");
    // ... and they play: the simulator's clip is real H.264 and the policy allows it.
    assert!(
        (1..=loaded).contains(&played(&shown)),
        "{} of {loaded} played\n{}",
        played(&shown),
        shown.log
    );
    // The policy let the videos load and nothing else was attempted.
    assert!(
        !shown.log.contains("Content Security Policy"),
        "{}",
        shown.log
    );

    // A filter given in the address: only failed shots (none) are shown.
    let shown = headless(
        &bin,
        &format!("{}#status=failed", file_url(&p.path("out/review.html"))),
        &["--dump-dom"],
    );
    assert_eq!(shown.dom.matches(r#"class="card hidden""#).count(), 12);
    assert!(shown.dom.contains("0 of 12 shown"));

    marks_made_in_the_page_reach_marks_json(&bin, &p);

    let png = p.path("shot.png");
    headless(
        &bin,
        &file_url(&p.path("out/review.html")),
        &[&format!("--screenshot={}", png.display())],
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 5_000);
    if let Some(keep) = std::env::var_os("SHOTLIST_REVIEW_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}

#[test]
fn hostile_text_stays_text_in_chromium() {
    let Some(bin) = chromium() else { return };
    let canary = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    canary.set_nonblocking(true).unwrap();
    let url = format!("http://127.0.0.1:{}/", canary.local_addr().unwrap().port());
    let p = Project::new();
    p.file(
        "m.yaml",
        &super::SMALL
            .replace("src=x", &format!("src={url}prompt"))
            .replace("& more", "& more [sim:fail]"),
    );
    p.run(&["-q", "run", "m.yaml", "--sim", "--no-review"])
        .code(1);
    assert!(!p.path("out/review.html").exists(), "--no-review");
    // A provider error with markup, as a hostile server could send.
    let mut rows = results(&p);
    for r in rows.iter_mut().filter(|r| r["status"] == "failed") {
        r["error"] =
            format!("<img src={url}error onerror=\"document.title='pwned'\"></script>").into();
    }
    p.file("out/results.json", &serde_json::to_string(&rows).unwrap());
    p.run(&["review", "m.yaml"]).code(0);
    let html = p.read("out/review.html");
    assert_eq!(html.matches("http://").count(), html.matches(&url).count());
    assert!(!html.contains("https://"));

    let shown = headless(&bin, &file_url(&p.path("out/review.html")), &["--dump-dom"]);
    assert!(shown.dom.contains(r#"data-ready="1""#), "{}", shown.log);
    assert!(shown.dom.contains("<title>small · shotlist review</title>"));
    assert!(
        !shown.dom.contains("<img"),
        "markup in text became an element"
    );
    assert_eq!(shown.dom.matches("<video ").count(), 4);
    assert_eq!(shown.dom.matches(r#"data-status="failed""#).count(), 2);
    match canary.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the page made a request: {other:?}"),
    }
}

/// Drives a copy of the page (its policy removed so a driver script may run) with the keyboard:
/// reject the first shot with a note, approve the second; then runs the command the page
/// offers and imports the file it downloads, which must give the same marks.
fn marks_made_in_the_page_reach_marks_json(bin: &Path, p: &Project) {
    const DRIVER: &str = r#"<script>
window.prompt = function () { return "too 'dark' $HOME"; };
var blob = null;
URL.createObjectURL = function (b) { blob = b; return "about:blank"; };
HTMLAnchorElement.prototype.click = function () {};
function key(k) { document.dispatchEvent(new KeyboardEvent("keydown", { key: k })); }
key("j"); key("r"); key("n"); key("j"); key("a");
document.getElementById("download").click();
blob.text().then(function (t) {
  var out = document.createElement("pre");
  out.id = "driver";
  out.textContent = JSON.stringify({ download: t, command: document.getElementById("command").value });
  document.body.appendChild(out);
});
</script></body>"#;
    let html = p.read("out/review.html");
    let start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .unwrap();
    let end = start + html[start..].find('>').unwrap() + 1;
    let driven = format!("{}{}", &html[..start], &html[end..]).replace("</body>", DRIVER);
    p.file("out/driven.html", &driven);
    let shown = headless(bin, &file_url(&p.path("out/driven.html")), &["--dump-dom"]);
    let start = shown
        .dom
        .find("<pre id=\"driver\">")
        .expect("the driver ran")
        + 17;
    let end = start + shown.dom[start..].find("</pre>").unwrap();
    let text = shown.dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let driver: serde_json::Value = serde_json::from_str(&text).unwrap();
    let command = driver["command"].as_str().unwrap();
    let lines: Vec<&str> = command.lines().collect();
    assert_eq!(lines.len(), 2, "{command}");
    assert!(
        lines[0].ends_with("teaser-A1-16x9 --reject --note 'too '\\''dark'\\'' $HOME' --out out"),
        "{command}"
    );
    assert!(
        lines[1].ends_with("teaser-A1-9x16 --approve --out out"),
        "{command}"
    );

    let bin_dir = Path::new(env!("CARGO_BIN_EXE_shotlist")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for line in lines {
        let out = Command::new("sh")
            .args(["-c", line])
            .current_dir(p.dir.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let strip_times = |text: String| -> serde_json::Value {
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        for m in doc["marks"].as_array_mut().unwrap() {
            m.as_object_mut().unwrap().remove("at");
        }
        doc
    };
    let by_command = strip_times(p.read("out/marks.json"));
    assert_eq!(by_command["marks"][0]["note"], "too 'dark' $HOME");
    std::fs::remove_file(p.path("out/marks.json")).unwrap();
    p.file("marks-download.json", driver["download"].as_str().unwrap());
    let manifest = repo_root().join("manifests/product-launch.yaml");
    p.run(&[
        "-q",
        "mark",
        manifest.to_str().unwrap(),
        "--import",
        "marks-download.json",
        "--out",
        "out",
    ])
    .code(0);
    assert_eq!(strip_times(p.read("out/marks.json")), by_command);
}
