//! A small builder: a temp project folder with files, and the shotlist binary run inside it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Writes `contents` at `rel` (creating folders) and returns self for chaining.
    pub fn file(&self, rel: &str, contents: &str) -> &Self {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// The shotlist binary, run in this folder with no provider settings from the environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = shotlist();
        cmd.current_dir(self.dir.path()).args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run shotlist"))
    }
}

/// The shotlist binary with a clean environment for provider settings.
pub fn shotlist() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shotlist"));
    cmd.env_remove("GRAVITEX_API_KEY")
        .env_remove("GRAVITEX_BASE_URL")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", "/nonexistent-shotlist-test");
    cmd
}

/// A finished process with its output decoded.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The repository root (for example manifests).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A `shotlist sim` child process on a free port; killed on drop.
pub struct SimProcess {
    pub child: std::process::Child,
    pub url: String,
}

impl SimProcess {
    /// Starts `shotlist sim --port 0 <args>` and reads the URL it prints.
    pub fn start(args: &[&str]) -> SimProcess {
        use std::io::BufRead;
        let mut child = shotlist()
            .args(["-q", "sim", "--port", "0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start shotlist sim");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("sim stdout"))
            .read_line(&mut line)
            .expect("sim prints its URL");
        let url = line
            .split_whitespace()
            .last()
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        SimProcess { child, url }
    }

    /// `GET /__sim/stats` (with the task list) over plain HTTP.
    pub fn stats(&self) -> serde_json::Value {
        sim_stats(&self.url)
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /__sim/stats` (with the task list) over plain HTTP, not the project's client.
pub fn sim_stats(base_url: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr = base_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to sim");
    write!(
        stream,
        "GET /__sim/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send stats request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read stats");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("stats JSON: {e}\n{text}"))
}

/// The request body shotlist builds for a plain t2v shot (720P, 16:9, 5 s, no prompt
/// rewriting, no watermark, no seed): the one body tests write by hand.
pub fn t2v_body(prompt: &str) -> serde_json::Value {
    serde_json::json!({
        "model": "wan2.7-t2v-2026-04-25",
        "prompt": prompt,
        "duration": 5,
        "metadata": {
            "input": {"prompt": prompt},
            "parameters": {"resolution": "720P", "ratio": "16:9", "duration": 5,
                           "prompt_extend": false, "watermark": false}
        }
    })
}
