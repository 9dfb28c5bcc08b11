//! Runs a real `openpanda serve` on a free 127.0.0.1 port with its own data
//! directory, and stops it when dropped. When a test fails, the tail of the
//! server's log is printed and the data directory is kept for inspection.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::Client;

pub const BIN: &str = env!("CARGO_BIN_EXE_openpanda");

/// Settings for one server; the defaults are what most tests want.
#[derive(Clone, Debug)]
pub struct ServerOpts {
    /// OPENPANDA_FETCH__ALLOW_PRIVATE_NETWORKS (so source_url may hit our test servers).
    pub allow_private: bool,
    /// ultrafast x264 and cpu-used 8 for VP8.
    pub fast_encoding: bool,
    pub concurrency: usize,
    pub download_timeout_secs: Option<u64>,
    pub max_upload_bytes: Option<u64>,
    /// OPENPANDA_LOG__LEVEL (a tracing filter such as "trace").
    pub log_level: Option<String>,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            allow_private: true,
            fast_encoding: true,
            concurrency: 2,
            download_timeout_secs: None,
            max_upload_bytes: None,
            log_level: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct CloudInfo {
    pub id: String,
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
    pub url: String,
}

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub addr: String,
    /// The data directory (SQLite, storage/, tmp/, work/, server.log).
    pub dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
    pub cloud: CloudInfo,
    log: PathBuf,
    client: Client,
}

fn env_for(cmd: &mut Command, opts: &ServerOpts) {
    for (k, _) in std::env::vars() {
        if k.starts_with("OPENPANDA_") {
            cmd.env_remove(k);
        }
    }
    if opts.allow_private {
        cmd.env("OPENPANDA_FETCH__ALLOW_PRIVATE_NETWORKS", "true");
    }
    if opts.fast_encoding {
        cmd.env("OPENPANDA_ENCODING__X264_PRESET", "ultrafast");
        cmd.env("OPENPANDA_ENCODING__VPX_CPU_USED", "8");
    }
    cmd.env(
        "OPENPANDA_WORKERS__CONCURRENCY",
        opts.concurrency.to_string(),
    );
    if let Some(t) = opts.download_timeout_secs {
        cmd.env("OPENPANDA_LIMITS__DOWNLOAD_TIMEOUT_SECS", t.to_string());
    }
    if let Some(n) = opts.max_upload_bytes {
        cmd.env("OPENPANDA_LIMITS__MAX_UPLOAD_BYTES", n.to_string());
    }
    if let Some(level) = &opts.log_level {
        cmd.env("OPENPANDA_LOG__LEVEL", level);
        cmd.env_remove("RUST_LOG");
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Creates a cloud with `openpanda cloud create --json` in `dir`.
pub fn create_cloud(dir: &Path, name: &str, opts: &ServerOpts) -> CloudInfo {
    let mut cmd = Command::new(BIN);
    cmd.args(["cloud", "create", "--name", name, "--data-dir"])
        .arg(dir)
        .arg("--json")
        .stdin(Stdio::null());
    env_for(&mut cmd, opts);
    let out = cmd.output().expect("run openpanda cloud create");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "openpanda cloud create failed ({}): {}{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("cloud create --json printed no JSON object: {stdout:?}"));
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("cloud create --json printed invalid JSON ({e}): {line}"));
    let field = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("cloud create --json: missing string {k:?} in {v}"))
            .to_string()
    };
    CloudInfo {
        id: field("id"),
        name: field("name"),
        access_key: field("access_key"),
        secret_key: field("secret_key"),
        url: field("url"),
    }
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(ServerOpts::default()).await
    }

    pub async fn start_with(opts: ServerOpts) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("openpanda-test-")
            .tempdir()
            .expect("create a temp dir");
        let dir = tmp.path().to_path_buf();
        let cloud = create_cloud(&dir, "test", &opts);
        let log = dir.join("server.log");
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let mut cmd = Command::new(BIN);
            cmd.args(["serve", "--listen", &addr, "--data-dir"])
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(dir.join("server.stdout")).unwrap())
                .stderr(std::fs::File::create(&log).unwrap());
            env_for(&mut cmd, &opts);
            let mut child = cmd.spawn().expect("spawn openpanda serve");
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap();
            let start = Instant::now();
            let mut ready = false;
            while start.elapsed() < Duration::from_secs(60) {
                if let Some(status) = child.try_wait().unwrap() {
                    last_error = format!(
                        "openpanda serve exited with {status} before /healthz answered; log:\n{}",
                        tail(&log, 60)
                    );
                    break;
                }
                if let Ok(r) = http.get(format!("http://{addr}/healthz")).send().await
                    && r.status().as_u16() == 200
                {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !ready {
                let _ = child.kill();
                let _ = child.wait();
                if last_error.is_empty() {
                    last_error = format!(
                        "GET /healthz did not answer 200 within 60 s; log:\n{}",
                        tail(&log, 60)
                    );
                }
                continue;
            }
            let client = Client {
                http,
                addr: addr.clone(),
                access_key: cloud.access_key.clone(),
                secret_key: cloud.secret_key.clone(),
                cloud_id: cloud.id.clone(),
                storage_url: cloud.url.clone(),
            };
            let mut server = Server {
                child: Some(child),
                port,
                addr,
                dir,
                tmp: Some(tmp),
                cloud,
                log,
                client,
            };
            // The storage URL the server itself reports is the one clients use.
            let c = server
                .client
                .get(&format!("/clouds/{}.json", server.cloud.id), &[])
                .await
                .ok();
            if let Some(url) = c["url"].as_str() {
                server.cloud.url = url.to_string();
                server.client.storage_url = url.to_string();
            }
            return server;
        }
        panic!("could not start openpanda serve: {last_error}");
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// `DIR/storage/<cloud_id>`: where the cloud's objects live on disk.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.join("storage").join(&self.cloud.id)
    }

    /// Every stored object's key (path relative to the cloud's storage dir).
    pub fn stored_keys(&self) -> Vec<String> {
        let root = self.storage_dir();
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        out.sort();
        out
    }

    pub async fn healthz(&self) -> u16 {
        match self
            .client
            .http
            .get(format!("http://{}/healthz", self.addr))
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// The server is still up and answering.
    #[track_caller]
    pub fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait().unwrap()
        {
            panic!(
                "openpanda serve has exited ({status}); log tail:\n{}",
                tail(&self.log, 80)
            );
        }
    }

    /// Files left in the scratch directories DIR/tmp and DIR/work.
    pub fn scratch_leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for d in ["tmp", "work"] {
            let root = self.dir.join(d);
            let mut files = Vec::new();
            walk_all(&root, &root, &mut files);
            out.extend(files.into_iter().map(|f| format!("{d}/{f}")));
        }
        out
    }

    /// Waits (up to a minute: a still of the original may still be being
    /// made) for DIR/tmp and DIR/work to be empty once all jobs
    /// are final, and fails naming what was left behind.
    pub async fn assert_scratch_empty(&self) {
        let start = Instant::now();
        loop {
            let left = self.scratch_leftovers();
            if left.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "DIR/tmp and DIR/work should be empty when all jobs are done; left behind: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

/// Like `walk`, but empty directories count too (as "name/").
fn walk_all(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            let before = out.len();
            walk_all(root, &p, out);
            if out.len() == before {
                out.push(format!("{rel}/"));
            }
        } else {
            out.push(rel);
        }
    }
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- openpanda serve log ({}), last 150 lines -----\n{}\n----- end of log -----",
                self.log.display(),
                tail(&self.log, 150)
            );
            if let Some(tmp) = self.tmp.take() {
                let kept = tmp.keep();
                eprintln!("data directory kept for inspection: {}", kept.display());
            }
        }
    }
}
