//! Webhooks end to end: a real `openpanda serve`, a receiver of our own on
//! 127.0.0.1, and our own HMAC check of every delivery. The signed API
//! client and the media samples come from the shared harness; the server is
//! started here, because these tests need their own settings, a restart
//! and a SIGKILL.

#[path = "integration/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::Value;
use sha2::Sha256;

use common::client::Client;
use common::server::{CloudInfo, ServerOpts, create_cloud};

const BIN: &str = env!("CARGO_BIN_EXE_openpanda");

// ---------------------------------------------------------------- receiver

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Hit {
    at: Instant,
    content_type: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Hit {
    fn fields(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    fn field(&self, key: &str) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// `encoding_ids[0]`, `encoding_ids[1]`, … in index order.
    fn encoding_ids(&self) -> Vec<String> {
        (0..)
            .map_while(|i| self.field(&format!("encoding_ids[{i}]")))
            .collect()
    }

    /// Checks the signature with our own HMAC code, the way the README
    /// tells receivers to.
    #[track_caller]
    fn assert_signed(&self, secret: &str) {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{}.{}", self.timestamp, self.body).as_bytes());
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(
            self.signature, want,
            "X-Openpanda-Signature of {:?} (timestamp {:?}) does not verify",
            self.body, self.timestamp
        );
        let ts: i64 = self.timestamp.parse().unwrap_or_else(|_| {
            panic!(
                "X-Openpanda-Timestamp {:?} is not Unix seconds",
                self.timestamp
            )
        });
        let skew = (chrono::Utc::now().timestamp() - ts).abs();
        assert!(skew < 120, "X-Openpanda-Timestamp {ts} is {skew} s off");
        assert_eq!(self.content_type, "application/x-www-form-urlencoded");
    }
}

#[derive(Default)]
struct Inbox {
    hits: Mutex<Vec<Hit>>,
    /// Statuses to answer with, in order; 200 once empty.
    script: Mutex<VecDeque<u16>>,
    /// How long to take before answering.
    stall: Mutex<Duration>,
}

/// A webhook receiver on 127.0.0.1, stopped when dropped.
struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        Self::start_on(0).await
    }

    async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("receiver cannot listen on 127.0.0.1:{port}: {e}"));
        let addr = listener.local_addr().unwrap();
        let inbox = Arc::new(Inbox::default());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inbox.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, inbox, task }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn answer_with(&self, statuses: &[u16]) {
        self.inbox.script.lock().unwrap().extend(statuses);
    }

    fn stall_for(&self, d: Duration) {
        *self.inbox.stall.lock().unwrap() = d;
    }

    fn hits(&self) -> Vec<Hit> {
        self.inbox.hits.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived; returns them all.
    async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Hit> {
        let start = Instant::now();
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                start.elapsed() < timeout,
                "the receiver got {} of {n} expected webhooks in {timeout:?}: {:#?}",
                hits.len(),
                hits.iter().map(|h| &h.body).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Checks that no more than `n` requests arrive over `quiet`.
    async fn assert_stays_at(&self, n: usize, quiet: Duration) {
        tokio::time::sleep(quiet).await;
        let hits = self.hits();
        assert_eq!(
            hits.len(),
            n,
            "expected exactly {n} webhooks, got {}: {:#?}",
            hits.len(),
            hits.iter().map(|h| &h.body).collect::<Vec<_>>()
        );
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    inbox.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        content_type: header("content-type"),
        timestamp: header("x-openpanda-timestamp"),
        signature: header("x-openpanda-signature"),
        body,
    });
    let stall = *inbox.stall.lock().unwrap();
    tokio::time::sleep(stall).await;
    let status = inbox.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

// ------------------------------------------------------------------ server

/// Settings every server here gets, on top of the test's own.
const BASE_ENV: &[(&str, &str)] = &[
    ("OPENPANDA_ENCODING__X264_PRESET", "ultrafast"),
    ("OPENPANDA_ENCODING__VPX_CPU_USED", "8"),
    ("OPENPANDA_WORKERS__CONCURRENCY", "2"),
    ("OPENPANDA_NOTIFY__POLL_MS", "200"),
];

/// A data directory with one cloud, and the `openpanda serve` running on it
/// (restartable). The log is printed when a test fails.
struct Served {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    cloud: CloudInfo,
    env: Vec<(String, String)>,
    child: Option<Child>,
    client: Option<Client>,
    logs: usize,
}

impl Served {
    async fn start(env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("openpanda-notify-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let cloud = create_cloud(&dir, "t", &ServerOpts::default());
        let mut served = Served {
            dir,
            _tmp: tmp,
            cloud,
            env: BASE_ENV
                .iter()
                .chain(env)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            client: None,
            logs: 0,
        };
        served.boot().await;
        served
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir.join(format!("server-{n}.log"))
    }

    /// Starts `openpanda serve` on a free port and waits for /healthz.
    async fn boot(&mut self) {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        self.logs += 1;
        let log = self.log_path(self.logs);
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", &addr, "--data-dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, _) in std::env::vars() {
            if k.starts_with("OPENPANDA_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().expect("spawn openpanda serve");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("openpanda serve exited with {status}:\n{}", tail(&log));
            }
            let health = http.get(format!("http://{addr}/healthz")).send().await;
            if health.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "/healthz did not answer within 60 s:\n{}",
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = Some(child);
        self.client = Some(Client {
            http,
            addr,
            access_key: self.cloud.access_key.clone(),
            secret_key: self.cloud.secret_key.clone(),
            cloud_id: self.cloud.id.clone(),
            storage_url: self.cloud.url.clone(),
        });
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the server is running")
    }

    /// SIGKILL: no shutdown code runs, exactly like a crash.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            child.wait().unwrap();
        }
        self.client = None;
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            for n in 1..=self.logs {
                eprintln!(
                    "----- openpanda serve log {n} -----\n{}",
                    tail(&self.log_path(n))
                );
            }
        }
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(120)..].join("\n")
}

// ----------------------------------------------------------------- helpers

fn media(name: &str) -> PathBuf {
    common::media::media(name)
}

/// Points the cloud's webhooks at `url` with the given events on.
async fn subscribe(c: &Client, url: &str, events: &[&str]) -> Value {
    let mut params = vec![("url".to_string(), url.to_string())];
    for e in [
        "video_created",
        "video_encoded",
        "encoding_progress",
        "encoding_completed",
    ] {
        let on = events.contains(&e).to_string();
        params.push((format!("events[{e}]"), on));
    }
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    c.put("/notifications.json", &pairs).await.ok()
}

async fn webhook_secret(c: &Client) -> String {
    let n = c.get("/notifications.json", &[]).await.ok();
    let secret = n["webhook_secret"].as_str().unwrap_or_default().to_string();
    assert!(
        secret.len() >= 32,
        "GET /notifications.json should show a webhook_secret; got {n}"
    );
    secret
}

async fn deliveries(c: &Client) -> Vec<Value> {
    let list = c.get("/notifications/deliveries.json", &[]).await.ok();
    list.as_array()
        .unwrap_or_else(|| panic!("deliveries.json: expected an array, got {list}"))
        .clone()
}

/// Polls the delivery log until `check` accepts it.
async fn wait_log(c: &Client, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let list = deliveries(c).await;
        if check(&list) {
            return list;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "delivery log never showed {what}: {}",
            Value::Array(list)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Live-stream messages seen so far: (`event:`, `data:` as JSON).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// Reads `event:`/`data:` messages from the live stream into a list.
fn read_stream(c: &Client) -> (Seen, tokio::task::JoinHandle<()>) {
    let prepared = c
        .request(Method::GET, "/notifications/stream.json")
        .prepare();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let resp = reqwest::get(&prepared.url).await.expect("open the stream");
        assert_eq!(resp.status(), 200, "stream.json answered {}", resp.status());
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let message: String = buf.drain(..end + 2).collect();
                let field = |name: &str| {
                    message
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim_start().to_string())
                };
                if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                    let json = serde_json::from_str(&data).expect("data: is JSON");
                    out.lock().unwrap().push((event, json));
                }
            }
        }
    });
    (seen, task)
}

// ------------------------------------------------------------------- tests

/// An upload with two profiles sends exactly video-created (both encoding
/// ids), encoding-complete twice, then video-encoded (both ids), each
/// signed; the live stream shows the same events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_sends_the_four_events_in_order_signed() {
    let receiver = Receiver::start().await;
    let server = Served::start(&[("OPENPANDA_FETCH__ALLOW_PRIVATE_NETWORKS", "true")]).await;
    let c = server.client();
    let secret = webhook_secret(c).await;
    let settings = subscribe(
        c,
        &receiver.url(),
        &["video_created", "video_encoded", "encoding_completed"],
    )
    .await;
    assert_eq!(settings["url"], receiver.url().as_str(), "{settings}");
    assert_eq!(settings["webhook_secret"], secret.as_str(), "{settings}");
    c.post(
        "/profiles.json",
        &[
            ("name", "small"),
            ("preset_name", "h264"),
            ("width", "96"),
            ("height", "72"),
        ],
    )
    .await
    .ok();
    let (stream, stream_task) = read_stream(c);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let video = c
        .upload(&media("mpeg4-qcif.mp4"), &[("profiles", "h264,small")])
        .await;
    let video_id = video["id"].as_str().unwrap().to_string();
    let hits = receiver.wait_for(4, Duration::from_secs(120)).await;
    receiver
        .assert_stays_at(4, Duration::from_millis(1500))
        .await;
    for hit in &hits {
        hit.assert_signed(&secret);
    }

    let mut ids: Vec<String> = c
        .encodings_of(&video_id)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let names: Vec<String> = hits.iter().map(|h| h.field("event").unwrap()).collect();
    assert_eq!(
        names,
        [
            "video-created",
            "encoding-complete",
            "encoding-complete",
            "video-encoded"
        ]
    );
    for hit in [&hits[0], &hits[3]] {
        let keys: Vec<String> = hit.fields().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["event", "video_id", "encoding_ids[0]", "encoding_ids[1]"],
            "{}",
            hit.body
        );
        assert_eq!(hit.field("video_id").as_deref(), Some(video_id.as_str()));
        let mut got = hit.encoding_ids();
        got.sort();
        assert_eq!(got, ids, "{}", hit.body);
    }
    let mut completed: Vec<String> = hits[1..3]
        .iter()
        .map(|hit| {
            let keys: Vec<String> = hit.fields().into_iter().map(|(k, _)| k).collect();
            assert_eq!(keys, ["event", "encoding_id", "video_id"], "{}", hit.body);
            assert_eq!(hit.field("video_id").as_deref(), Some(video_id.as_str()));
            hit.field("encoding_id").unwrap()
        })
        .collect();
    completed.sort();
    assert_eq!(completed, ids);

    let log = deliveries(c).await;
    assert_eq!(log.len(), 4, "{}", Value::Array(log.clone()));
    for d in &log {
        assert_eq!(
            (&d["status"], &d["attempts"], &d["last_status"]),
            (&"delivered".into(), &1.into(), &200.into()),
            "{d}"
        );
        assert_eq!(d["video_id"], video_id.as_str());
    }

    let live: Vec<(String, Value)> = stream
        .lock()
        .unwrap()
        .iter()
        .filter(|(e, _)| e != "encoding-progress")
        .cloned()
        .collect();
    stream_task.abort();
    let live_names: Vec<&str> = live.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(live_names, names, "live stream: {live:?}");
    assert_eq!(live[0].1["video_id"], video_id.as_str());
    assert_eq!(live[3].1["encoding_ids"].as_array().map(Vec::len), Some(2));
}

/// A receiver that fails five times gets the event a sixth time, at
/// intervals that grow, and then never again; the log shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_retries_at_growing_intervals() {
    let receiver = Receiver::start().await;
    receiver.answer_with(&[500, 500, 500, 500, 500]);
    let server = Served::start(&[
        ("OPENPANDA_FETCH__ALLOW_PRIVATE_NETWORKS", "true"),
        ("OPENPANDA_NOTIFY__RETRY_BASE_SECS_OVERRIDE", "0.2"),
    ])
    .await;
    let c = server.client();
    let secret = webhook_secret(c).await;
    subscribe(c, &receiver.url(), &["video_created"]).await;
    let video = c
        .upload(&media("mpeg4-qcif.mp4"), &[("profiles", "none")])
        .await;
    let video_id = video["id"].as_str().unwrap();

    let hits = receiver.wait_for(6, Duration::from_secs(60)).await;
    receiver.assert_stays_at(6, Duration::from_secs(2)).await;
    for hit in &hits {
        hit.assert_signed(&secret);
        assert_eq!(hit.body, hits[0].body, "every retry sends the same body");
    }
    assert_eq!(hits[0].field("video_id").as_deref(), Some(video_id));
    let gaps: Vec<Duration> = hits.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(190), "gaps {gaps:?}");
    for pair in gaps.windows(2) {
        assert!(pair[1] > pair[0], "retry intervals should grow: {gaps:?}");
    }

    let log = deliveries(c).await;
    assert_eq!(log.len(), 1, "{}", Value::Array(log.clone()));
    let d = &log[0];
    assert_eq!(
        (&d["event"], &d["status"], &d["attempts"], &d["last_status"]),
        (
            &"video-created".into(),
            &"delivered".into(),
            &6.into(),
            &200.into()
        ),
        "{d}"
    );

    // Sent again on request, with a fresh count.
    let id = d["id"].as_str().unwrap();
    let again = c
        .post(
            &format!("/notifications/deliveries/{id}/redeliver.json"),
            &[],
        )
        .await
        .ok();
    assert_eq!(again["status"], "pending", "{again}");
    assert_eq!(again["attempts"], 0, "{again}");
    let hits = receiver.wait_for(7, Duration::from_secs(30)).await;
    assert_eq!(hits[6].body, hits[0].body);
    wait_log(c, "the redelivery delivered", |l| {
        l[0]["status"] == "delivered" && l[0]["attempts"] == 1
    })
    .await;
    c.post("/notifications/deliveries/0123/redeliver.json", &[])
        .await
        .err(404, "RecordNotFound");
}

/// The event is recorded while the receiver is down; the server is killed
/// with SIGKILL before it could deliver; after a restart, with the receiver
/// back, the event arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_recorded_before_a_crash_is_delivered_after_restart() {
    let port = free_port(); // nothing listens there: connection refused
    let url = format!("http://127.0.0.1:{port}/hook");
    let mut server = Served::start(&[
        ("OPENPANDA_FETCH__ALLOW_PRIVATE_NETWORKS", "true"),
        ("OPENPANDA_NOTIFY__RETRY_BASE_SECS_OVERRIDE", "1"),
    ])
    .await;
    let c = server.client().clone();
    let secret = webhook_secret(&c).await;
    subscribe(&c, &url, &["video_created"]).await;
    let video = c
        .upload(&media("mpeg4-qcif.mp4"), &[("profiles", "none")])
        .await;
    let video_id = video["id"].as_str().unwrap().to_string();
    let log = wait_log(&c, "a failed attempt", |l| {
        l.len() == 1 && l[0]["attempts"].as_i64() >= Some(1) && !l[0]["last_error"].is_null()
    })
    .await;
    assert_eq!(log[0]["status"], "pending", "{}", log[0]);
    assert!(log[0]["last_status"].is_null(), "{}", log[0]);

    server.kill9();
    let receiver = Receiver::start_on(port).await;
    server.boot().await;
    let hits = receiver.wait_for(1, Duration::from_secs(30)).await;
    receiver.assert_stays_at(1, Duration::from_secs(2)).await;
    hits[0].assert_signed(&secret);
    assert_eq!(hits[0].field("event").as_deref(), Some("video-created"));
    assert_eq!(hits[0].field("video_id"), Some(video_id));
    let c = server.client();
    wait_log(c, "the event delivered", |l| {
        l.len() == 1 && l[0]["status"] == "delivered" && l[0]["last_status"] == 200
    })
    .await;
}

/// Events recorded while no delivery loop runs live only in the database:
/// a SIGKILL and a restart (with delivery on) still sends them, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_never_attempted_survive_a_sigkill() {
    let receiver = Receiver::start().await;
    let mut server = Served::start(&[
        ("OPENPANDA_FETCH__ALLOW_PRIVATE_NETWORKS", "true"),
        ("OPENPANDA_NOTIFY__ENABLED", "false"),
    ])
    .await;
    let c = server.client().clone();
    let secret = webhook_secret(&c).await;
    subscribe(&c, &receiver.url(), &["video_created", "video_encoded"]).await;
    let video = c
        .upload(&media("no-streams.mp4"), &[("profiles", "none")])
        .await;
    let video_id = video["id"].as_str().unwrap().to_string();
    assert_eq!(
        c.wait_video(&video_id, Duration::from_secs(60)).await["status"],
        "fail"
    );
    let log = wait_log(&c, "two pending events", |l| l.len() == 2).await;
    assert!(
        log.iter()
            .all(|d| d["status"] == "pending" && d["attempts"] == 0)
    );

    server.kill9();
    server.env.retain(|(k, _)| k != "OPENPANDA_NOTIFY__ENABLED");
    server.boot().await;
    let hits = receiver.wait_for(2, Duration::from_secs(30)).await;
    receiver.assert_stays_at(2, Duration::from_secs(1)).await;
    let names: Vec<String> = hits.iter().map(|h| h.field("event").unwrap()).collect();
    assert_eq!(names, ["video-created", "video-encoded"], "a failed video");
    for hit in &hits {
        hit.assert_signed(&secret);
        assert_eq!(hit.field("video_id"), Some(video_id.clone()));
        assert_eq!(hit.encoding_ids(), Vec::<String>::new());
    }
}

/// A receiver that takes its time holds up only its own cloud: another
/// cloud's event, recorded later, arrives first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_does_not_delay_another_cloud() {
    let slow = Receiver::start().await;
    slow.stall_for(Duration::from_secs(6));
    let fast = Receiver::start().await;
    let server = Served::start(&[("OPENPANDA_FETCH__ALLOW_PRIVATE_NETWORKS", "true")]).await;
    let a = server.client().clone();
    let other = create_cloud(&server.dir, "other", &ServerOpts::default());
    let b = Client {
        access_key: other.access_key,
        secret_key: other.secret_key,
        cloud_id: other.id,
        storage_url: other.url,
        ..a.clone()
    };
    subscribe(&a, &slow.url(), &["video_created"]).await;
    subscribe(&b, &fast.url(), &["video_created"]).await;
    let qcif = media("mpeg4-qcif.mp4");
    a.upload(&qcif, &[("profiles", "none")]).await;
    slow.wait_for(1, Duration::from_secs(30)).await; // the slow POST has begun
    let started = Instant::now();
    let video = b.upload(&qcif, &[("profiles", "none")]).await;
    let hits = fast.wait_for(1, Duration::from_secs(30)).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the other cloud's webhook took {:?}",
        started.elapsed()
    );
    assert_eq!(hits[0].field("video_id").as_deref(), video["id"].as_str());
    let log = wait_log(&a, "the slow delivery done", |l| {
        l[0]["status"] == "delivered"
    })
    .await;
    assert_eq!(log[0]["attempts"], 1, "6 s is within the 10 s timeout");
}

/// An open live stream does not hold up a graceful shutdown (SIGTERM).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_ends_at_shutdown() {
    let mut server = Served::start(&[]).await;
    let (_seen, stream_task) = read_stream(server.client());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!stream_task.is_finished(), "the stream should stay open");
    let mut child = server.child.take().unwrap();
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "serve did not exit within 8 s of SIGTERM with a live stream open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::timeout(Duration::from_secs(2), stream_task)
        .await
        .expect("the stream ends with the server")
        .unwrap();
}

/// With the address guard on, a webhook URL on loopback is refused when it
/// is set, naming the address; so is a name that resolves to loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_webhook_url_is_refused_at_put_time() {
    let server = Served::start(&[]).await;
    let c = server.client();
    let message = c
        .put("/notifications.json", &[("url", "http://127.0.0.1:9/hook")])
        .await
        .err(400, "BadRequest");
    assert!(message.contains("127.0.0.1"), "{message}");
    let message = c
        .put("/notifications.json", &[("url", "http://localhost:9/hook")])
        .await
        .err(400, "BadRequest");
    assert!(
        message.contains("localhost") && (message.contains("127.0.0.1") || message.contains("::1")),
        "{message}"
    );
    let message = c
        .put("/notifications.json", &[("url", "ftp://example.org/hook")])
        .await
        .err(400, "BadRequest");
    assert!(message.contains("http"), "{message}");
    let n = c.get("/notifications.json", &[]).await.ok();
    assert!(n["url"].is_null(), "a refused url must not be saved: {n}");
    // A public address is fine (nothing is sent without events).
    let n = c
        .put(
            "/notifications.json",
            &[("url", "http://93.184.216.34/hook")],
        )
        .await
        .ok();
    assert_eq!(n["url"], "http://93.184.216.34/hook");
}

/// While an encoding runs, `encoding-progress` events arrive with the four
/// fields of the spec, before the encoding's `encoding-complete`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_events_arrive_while_encoding() {
    let receiver = Receiver::start().await;
    let server = Served::start(&[
        ("OPENPANDA_FETCH__ALLOW_PRIVATE_NETWORKS", "true"),
        ("OPENPANDA_NOTIFY__PROGRESS_EVERY_SECS", "0.5"),
    ])
    .await;
    let c = server.client();
    let secret = webhook_secret(c).await;
    subscribe(
        c,
        &receiver.url(),
        &["encoding_progress", "encoding_completed"],
    )
    .await;
    let clip = server.dir.join("clip.mp4");
    common::media::make_clip(&clip, 30, 1280, 720, true);
    let video = c.upload(&clip, &[("profiles", "h264")]).await;
    let video_id = video["id"].as_str().unwrap().to_string();
    let encodings = c.wait_encodings(&video_id, Duration::from_secs(240)).await;
    let encoding_id = encodings[0]["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    let is_complete = |h: &Hit| h.field("event").as_deref() == Some("encoding-complete");
    while !receiver.hits().iter().any(is_complete) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no encoding-complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver
        .assert_stays_at(receiver.hits().len(), Duration::from_secs(1))
        .await;
    let hits = receiver.hits();
    assert!(
        is_complete(hits.last().unwrap()),
        "encoding-complete comes last"
    );
    let progress: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.field("event").as_deref() == Some("encoding-progress"))
        .collect();
    assert_eq!(
        progress.len(),
        hits.len() - 1,
        "only progress before the end"
    );
    assert!(
        !progress.is_empty(),
        "a {} s encoding should report progress: {hits:#?}",
        encodings[0]["encoding_time"]
    );
    let mut previous = 0;
    for hit in progress {
        hit.assert_signed(&secret);
        let keys: Vec<String> = hit.fields().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["event", "encoding_id", "progress", "video_id"]);
        assert_eq!(hit.field("encoding_id"), Some(encoding_id.clone()));
        assert_eq!(hit.field("video_id"), Some(video_id.clone()));
        let p: u32 = hit.field("progress").unwrap().parse().unwrap();
        assert!(p <= 100 && p >= previous, "progress {p} after {previous}");
        previous = p;
    }
}
