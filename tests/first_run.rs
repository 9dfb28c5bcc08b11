//! What a new operator sees: the first `serve` on an empty data directory
//! creates a cloud and prints a ready-to-run signed upload, which works as
//! printed; `cloud create` works beside a running server; configuration
//! layers (defaults < file < environment) and unknown keys are reported.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_openpanda");

fn media(name: &str) -> String {
    format!("{}/../shared/media/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A command with no OPENPANDA_* variables inherited from the test's env.
fn openpanda(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("OPENPANDA_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn first_start_prints_keys_and_an_upload_that_works_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = openpanda(dir.path())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            "data",
        ])
        .env("OPENPANDA_ENCODING__X264_PRESET", "ultrafast")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openpanda serve");
    let stdout = child.stdout.take().unwrap();
    let _server = Killed(child);

    // Everything up to the "Encodings appear under" line is the welcome text.
    let mut welcome = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Encodings appear under");
        welcome.push(line);
        if done {
            break;
        }
    }
    let text = welcome.join("\n");
    for key in ["cloud_id:", "access_key:", "secret_key:"] {
        assert!(
            text.contains(key),
            "the welcome text should show {key}: {text}"
        );
    }
    let script: Vec<&str> = welcome
        .iter()
        .map(|l| l.trim_start())
        .skip_while(|l| !l.starts_with("TS="))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(script.len() >= 3, "no upload example in: {text}");
    std::fs::copy(media("bbb-51.mp4"), dir.path().join("your-video.mp4")).unwrap();

    // The server may still be binding when the text appears.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -e\n{}\n", script.join("\n")))
        .current_dir(dir.path())
        .output()
        .expect("run the printed example with bash");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the example failed: {body} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let video: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("the example should print the video JSON ({e}): {body}"));
    assert_eq!(video["status"], "processing", "{video}");
    assert_eq!(video["original_filename"], "your-video.mp4", "{video}");
    assert_eq!(video["id"].as_str().map(str::len), Some(32), "{video}");

    // A second cloud, created while the server runs on the same data dir.
    let out = openpanda(dir.path())
        .args([
            "cloud",
            "create",
            "--name",
            "second",
            "--data-dir",
            "data",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cloud create beside serve failed: {:?}",
        out
    );
    let cloud: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["id", "access_key", "secret_key", "url"] {
        assert!(
            cloud[key].is_string(),
            "cloud create --json lacks {key}: {cloud}"
        );
    }
}

#[test]
fn configuration_layers_and_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("openpanda.toml"),
        "listen = \"127.0.0.1:9999\"\n[workers]\nconcurrency = 3\n[log]\nlevel = \"debug\"\n",
    )
    .unwrap();
    let out = openpanda(dir.path())
        .arg("config")
        .env("OPENPANDA_WORKERS__CONCURRENCY", "5")
        .env(
            "OPENPANDA_DATABASE_URL",
            "postgres://op:hunter2@db.example/openpanda",
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let effective: toml::Value = toml::from_str(&text).unwrap();
    // The file beats the defaults, the environment beats the file.
    assert_eq!(effective["listen"].as_str(), Some("127.0.0.1:9999"));
    assert_eq!(effective["log"]["level"].as_str(), Some("debug"));
    assert_eq!(effective["workers"]["concurrency"].as_integer(), Some(5));
    // Secrets are masked.
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
    assert!(text.contains("op:****@db.example"), "{text}");

    std::fs::write(
        dir.path().join("openpanda.toml"),
        "[workers]\nconcurency = 3\n",
    )
    .unwrap();
    let out = openpanda(dir.path()).arg("config").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a misspelt key must be an error");
    assert!(
        err.contains("concurency"),
        "the error should name the unknown key: {err}"
    );

    std::fs::remove_file(dir.path().join("openpanda.toml")).unwrap();
    let out = openpanda(dir.path())
        .arg("config")
        .env("OPENPANDA_WORKRES__CONCURRENCY", "2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an unknown variable must be an error"
    );
    assert!(
        err.to_lowercase().contains("workres"),
        "the error should name it: {err}"
    );
}
