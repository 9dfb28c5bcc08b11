//! A small harness for the upload tests: a real `openpanda serve` (HTTP and,
//! when asked, HTTPS with a self-signed certificate) with its own data
//! directory and settings, a signed API client (signatures from the crate's
//! own signer: these tests are about uploads, not signatures), and raw
//! requests to upload locations.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openpanda::api::auth;
use reqwest::Method;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_openpanda");

/// Settings of one server.
#[derive(Default, Clone)]
pub struct Opts {
    /// `uploads.session_ttl_secs`.
    pub session_ttl_secs: Option<u64>,
    /// Serve HTTPS too (self-signed).
    pub tls: bool,
    /// Run encoding workers (off unless a test needs encodes).
    pub workers: bool,
}

pub struct Server {
    child: Child,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub addr: String,
    pub tls_addr: Option<String>,
    pub cloud_id: String,
    pub access_key: String,
    pub secret_key: String,
    pub http: reqwest::Client,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn env(cmd: &mut Command, opts: &Opts, tls_addr: Option<&str>) {
    for (k, _) in std::env::vars() {
        if k.starts_with("OPENPANDA_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("OPENPANDA_ENCODING__X264_PRESET", "ultrafast")
        .env("OPENPANDA_WORKERS__CONCURRENCY", "1")
        .env("OPENPANDA_WORKERS__ENABLED", opts.workers.to_string())
        .env("OPENPANDA_NOTIFY__ENABLED", "false");
    if let Some(ttl) = opts.session_ttl_secs {
        cmd.env("OPENPANDA_UPLOADS__SESSION_TTL_SECS", ttl.to_string());
    }
    if let Some(addr) = tls_addr {
        cmd.env("OPENPANDA_TLS__LISTEN", addr)
            .env("OPENPANDA_TLS__SELF_SIGNED", "true");
    }
}

impl Server {
    pub async fn start(opts: Opts) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("openpanda-uploads-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let mut cmd = Command::new(BIN);
        cmd.args([
            "cloud",
            "create",
            "--name",
            "uploads",
            "--json",
            "--data-dir",
        ])
        .arg(&dir);
        env(&mut cmd, &opts, None);
        let out = cmd.output().expect("run openpanda cloud create");
        assert!(out.status.success(), "cloud create failed: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().rev().find(|l| l.starts_with('{')).unwrap();
        let cloud: Value = serde_json::from_str(line).unwrap();

        let addr = format!("127.0.0.1:{}", free_port());
        let tls_addr = opts.tls.then(|| format!("127.0.0.1:{}", free_port()));
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", &addr, "--data-dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("server.stdout")).unwrap())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap());
        env(&mut cmd, &opts, tls_addr.as_deref());
        let child = cmd.spawn().expect("spawn openpanda serve");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .tls_danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let s = |k: &str| cloud[k].as_str().unwrap().to_string();
        let server = Server {
            child,
            dir,
            _tmp: Some(tmp),
            addr,
            tls_addr,
            cloud_id: s("id"),
            access_key: s("access_key"),
            secret_key: s("secret_key"),
            http,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let start = Instant::now();
        let mut urls = vec![format!("http://{}/healthz", self.addr)];
        urls.extend(self.tls_addr.iter().map(|a| format!("https://{a}/healthz")));
        for url in urls {
            loop {
                if let Ok(r) = self.http.get(&url).send().await
                    && r.status() == 200
                {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "{url} did not answer within 60 s; log:\n{}",
                    self.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Partial upload files on disk (DIR/uploads).
    pub fn partial_files(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("uploads"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The stored object of a cloud (a storage key).
    pub fn object(&self, key: &str) -> PathBuf {
        self.dir.join("storage").join(&self.cloud_id).join(key)
    }

    /// A signed API request; params go in a form body for POST/PUT and in the
    /// query otherwise. Returns the status and the JSON body.
    pub async fn api(&self, method: Method, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
        self.api_at(&format!("http://{}", self.addr), method, path, params)
            .await
    }

    pub async fn api_at(
        &self,
        base: &str,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
    ) -> (u16, Value) {
        let ts = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs.push(("access_key".into(), self.access_key.clone()));
        pairs.push(("cloud_id".into(), self.cloud_id.clone()));
        pairs.push(("timestamp".into(), ts));
        let canonical = auth::canonical_query(&pairs, auth::Encoding::Strict);
        let to_sign = auth::string_to_sign(method.as_str(), "127.0.0.1", path, &canonical);
        let signature = auth::sign(&self.secret_key, &to_sign);
        pairs.push(("signature".into(), signature));
        let body = serde_urlencoded::to_string(&pairs).unwrap();
        let url = format!("{base}/v2{path}");
        let req = if method == Method::POST || method == Method::PUT {
            self.http
                .request(method.clone(), &url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        } else {
            self.http.request(method.clone(), format!("{url}?{body}"))
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: {status} {text:?} is not JSON ({e})"));
        (status, json)
    }

    /// Opens an upload session; returns (id, location).
    pub async fn open_session(&self, size: usize, extra: &[(&str, &str)]) -> (String, String) {
        let size = size.to_string();
        let mut params = vec![
            ("file_size", size.as_str()),
            ("file_name", "/home/me/clip.mp4"),
        ];
        params.extend_from_slice(extra);
        let (status, body) = self.api(Method::POST, "/videos/upload.json", &params).await;
        assert_eq!(status, 201, "POST /videos/upload.json: {body}");
        let id = body["id"].as_str().unwrap().to_string();
        let location = body["location"].as_str().unwrap().to_string();
        (id, location)
    }

    /// Polls a video until it is final.
    pub async fn wait_video(&self, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let (_, v) = self
                .api(Method::GET, &format!("/videos/{id}.json"), &[])
                .await;
            if v["status"] != "processing" {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "video {id} stuck: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls an encoding until it is final.
    pub async fn wait_encoding(&self, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let (_, e) = self
                .api(Method::GET, &format!("/encodings/{id}.json"), &[])
                .await;
            if e["status"] != "processing" {
                return e;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "encoding {id} stuck: {e}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- server log (last 60 lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            if let Some(tmp) = self._tmp.take() {
                eprintln!("data directory kept: {}", tmp.keep().display());
            }
        }
    }
}

/// An answer from an upload location.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub range: Option<String>,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{} {:?} is not JSON: {e}", self.status, self.body))
    }

    /// A 204 that says `received` bytes are stored and where to go next.
    #[track_caller]
    pub fn expect_more(&self, received: usize, location: &str) {
        assert_eq!(self.status, 204, "expected 204, got {self:?}");
        let want = (received > 0).then(|| format!("0-{}", received - 1));
        assert_eq!(self.range, want, "Range after {received} bytes: {self:?}");
        assert_eq!(
            self.location.as_deref(),
            Some(location),
            "Location: {self:?}"
        );
        assert!(self.body.is_empty(), "204 with a body: {self:?}");
    }

    /// A 200 with the Video JSON and the full Range.
    #[track_caller]
    pub fn expect_video(&self, size: usize) -> Value {
        assert_eq!(
            self.status, 200,
            "expected 200 with the video, got {self:?}"
        );
        assert_eq!(self.range, Some(format!("0-{}", size - 1)), "{self:?}");
        let v = self.json();
        assert!(v["id"].as_str().is_some_and(|id| id.len() == 32), "{v}");
        assert_eq!(v["file_size"], size as u64, "{v}");
        v
    }

    /// A 4xx JSON error whose message contains `needle`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, needle: &str) -> String {
        assert_eq!(self.status, status, "{self:?}");
        let v = self.json();
        let message = v["message"].as_str().unwrap_or_default().to_string();
        assert!(
            message.contains(needle),
            "expected a message about {needle:?}, got {v}"
        );
        message
    }
}

/// A raw request to an upload location.
pub async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut req = http.request(method.clone(), url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let h = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (range, location) = (h("range"), h("location"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    Answer {
        status,
        range,
        location,
        headers,
        body,
    }
}

/// A chunk as [upl2], [py] and [gem] send it.
pub async fn chunk(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    range: &str,
    bytes: &[u8],
) -> Answer {
    let headers = [
        ("content-type", "application/octet-stream"),
        ("content-range", range),
        ("cache-control", "no-cache"),
        ("x-requested-with", "XMLHttpRequest"),
    ];
    send(http, method, url, &headers, bytes.to_vec()).await
}

/// A status query (`bytes */L`, empty body).
pub async fn status_query(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    total: usize,
) -> Answer {
    let range = format!("bytes */{total}");
    let headers = [
        ("content-type", "application/octet-stream"),
        ("content-range", range.as_str()),
    ];
    send(http, method, url, &headers, Vec::new()).await
}

/// A short real clip (so the video's ingest succeeds), made with ffmpeg.
pub fn make_clip(dir: &Path, seconds: u32) -> Vec<u8> {
    let out = dir.join(format!("clip-{seconds}.mp4"));
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=160x120:rate=25:duration={seconds}"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(st.success(), "ffmpeg could not make a clip");
    std::fs::read(out).unwrap()
}

/// Deterministic non-media bytes (for sessions that only test the protocol).
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}
