//! Videos created from a `source_url`, fetched from a tiny HTTP server that
//! the test runs on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::common::*;

/// The origin server: `/files/<name>` serves a media sample, `/redirect/<name>`
/// redirects there, `/slow/<name>` serves it after 5 s, `/hang.mp4` never
/// answers, anything else is 404. It
/// records every path it was asked for.
struct Origin {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn origin(State(hits): State<Arc<Mutex<Vec<String>>>>, uri: Uri) -> Response {
    let path = uri.path().to_string();
    hits.lock().unwrap().push(path.clone());
    if let Some(name) = path.strip_prefix("/files/") {
        match std::fs::read(std::path::Path::new(MEDIA_DIR).join(name)) {
            Ok(bytes) => {
                ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
            }
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    } else if let Some(name) = path.strip_prefix("/redirect/") {
        (
            StatusCode::FOUND,
            [(header::LOCATION, format!("/files/{name}"))],
        )
            .into_response()
    } else if let Some(name) = path.strip_prefix("/slow/") {
        // answers after 5 s: keeps the video "processing" meanwhile
        tokio::time::sleep(Duration::from_secs(5)).await;
        match std::fs::read(std::path::Path::new(MEDIA_DIR).join(name)) {
            Ok(bytes) => bytes.into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    } else if path == "/hang.mp4" {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        StatusCode::GATEWAY_TIMEOUT.into_response()
    } else {
        (StatusCode::NOT_FOUND, "not here").into_response()
    }
}

impl Origin {
    async fn start() -> Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(origin).with_state(hits.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Origin { addr, hits, task }
    }
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_file_is_fetched_and_encoded() {
    let origin = Origin::start().await;
    let s = Server::start().await;
    let c = s.client();
    let url = origin.url("/files/video-only.mp4");
    let v = c
        .post(
            "/videos.json",
            &[("source_url", &url), ("profiles", "h264")],
        )
        .await
        .ok();
    assert_eq!(v["source_url"], url.as_str(), "source_url is echoed: {v}");
    assert_eq!(v["original_filename"], "video-only.mp4", "{v}");
    assert_eq!(v["extname"], ".mp4", "{v}");
    let vid = v["id"].as_str().unwrap();
    let v = c.wait_video(vid, SECS(180)).await;
    assert_eq!(v["status"], "success", "{v}");
    let key = format!(
        "{}{}",
        v["path"].as_str().unwrap(),
        v["extname"].as_str().unwrap()
    );
    let stored = expect_stored("fetched original", &key, c.download(&key).await);
    assert!(
        stored == media_bytes("video-only.mp4"),
        "the stored original should equal the served file"
    );
    let encs = c.wait_encodings(vid, SECS(600)).await;
    assert_eq!(encs.len(), 1, "{encs:?}");
    assert_eq!(encs[0]["status"], "success", "{}", encs[0]);

    // redirects are followed
    let url = origin.url("/redirect/rf64.wav");
    let v = c
        .post(
            "/videos.json",
            &[("source_url", &url), ("profiles", "none")],
        )
        .await
        .ok();
    let v = c.wait_video(v["id"].as_str().unwrap(), SECS(180)).await;
    assert_eq!(v["status"], "success", "a source_url answering 302: {v}");
    s.assert_scratch_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_fails_the_video_with_download_failed() {
    let origin = Origin::start().await;
    let s = Server::start().await;
    let c = s.client();
    let url = origin.url("/missing.mp4");
    let v = c
        .post(
            "/videos.json",
            &[("source_url", &url), ("profiles", "h264")],
        )
        .await
        .ok();
    let vid = v["id"].as_str().unwrap();
    let v = c.wait_video(vid, SECS(180)).await;
    assert_eq!(
        (v["status"].as_str(), v["error_class"].as_str()),
        (Some("fail"), Some("DownloadFailed")),
        "{v}"
    );
    let msg = v["error_message"].as_str().unwrap_or("");
    assert!(
        msg.contains("404"),
        "the message should name the 404, got {msg:?}"
    );
    let encs = c.wait_encodings(vid, SECS(180)).await;
    for e in &encs {
        assert_eq!(
            (e["status"].as_str(), e["error_class"].as_str()),
            (Some("fail"), Some("VideoStatusInvalid")),
            "encodings of a failed video fail too: {e}"
        );
    }
    s.assert_scratch_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    let origin = Origin::start().await;
    let s = Server::start_with(ServerOpts {
        download_timeout_secs: Some(3),
        ..Default::default()
    })
    .await;
    let c = s.client();
    let url = origin.url("/hang.mp4");
    let v = c
        .post(
            "/videos.json",
            &[("source_url", &url), ("profiles", "none")],
        )
        .await
        .ok();
    let v = c.wait_video(v["id"].as_str().unwrap(), SECS(180)).await;
    assert_eq!(
        (v["status"].as_str(), v["error_class"].as_str()),
        (Some("fail"), Some("DownloadFailed")),
        "{v}"
    );
    let msg = v["error_message"].as_str().unwrap_or("").to_lowercase();
    assert!(
        ["timed out", "timeout", "time-out", "time out"]
            .iter()
            .any(|w| msg.contains(w)),
        "the message should say the download timed out, got {msg:?}"
    );
    let hits = origin.hits();
    assert!(
        !hits.is_empty() && hits.iter().all(|h| h == "/hang.mp4"),
        "the server should have asked for /hang.mp4 (and nothing else), asked for {hits:?}"
    );
    s.assert_scratch_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_the_size_limit_fails() {
    let origin = Origin::start().await;
    let s = Server::start_with(ServerOpts {
        max_upload_bytes: Some(100_000),
        ..Default::default()
    })
    .await;
    let c = s.client();
    let url = origin.url("/files/rotate-reflect.mp4"); // 101674 bytes
    let r = c
        .post(
            "/videos.json",
            &[("source_url", &url), ("profiles", "none")],
        )
        .await;
    let v = c
        .wait_video(r.ok()["id"].as_str().unwrap(), SECS(180))
        .await;
    assert_eq!(
        v["status"], "fail",
        "a 101674-byte source with a 100000-byte limit: {v}"
    );
    let class = v["error_class"].as_str().unwrap_or("");
    assert!(
        ["DownloadFailed", "FileSizeLimitExceeded"].contains(&class),
        "expected DownloadFailed (or FileSizeLimitExceeded), got {class:?}: {v}"
    );
    s.assert_scratch_empty().await;
}

/// Without OPENPANDA_FETCH__ALLOW_PRIVATE_NETWORKS, source URLs pointing at
/// this machine are refused: either the POST gets 400, or the video fails
/// with DownloadFailed; either way the message says why, and no request
/// reaches the address.
///
/// The cloud metadata address 169.254.169.254 belongs here too, but this
/// test deliberately targets loopback addresses only: if the server had the
/// bug under test it would really connect, and this workplace allows test
/// traffic to loopback addresses only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_by_default() {
    let origin = Origin::start().await;
    let s = Server::start_with(ServerOpts {
        allow_private: false,
        ..Default::default()
    })
    .await;
    let c = s.client();
    let port = origin.addr.port();
    let targets = [
        (
            "127.0.0.1",
            format!("http://127.0.0.1:{port}/files/video-only.mp4"),
        ),
        (
            "localhost",
            format!("http://localhost:{port}/files/h264-aac.flv"),
        ),
        ("0.0.0.0", format!("http://0.0.0.0:{port}/files/rf64.wav")),
        ("::1", format!("http://[::1]:{port}/files/vorbis.ogg")),
    ];
    for (host, url) in &targets {
        let r = c
            .post("/videos.json", &[("source_url", url), ("profiles", "none")])
            .await;
        let msg = if r.status == 400 {
            r.err(400, "BadRequest")
        } else {
            let v = r.ok();
            let v = c.wait_video(v["id"].as_str().unwrap(), SECS(180)).await;
            assert_eq!(
                (v["status"].as_str(), v["error_class"].as_str()),
                (Some("fail"), Some("DownloadFailed")),
                "source_url {url} without allow-private: expected 400 or a DownloadFailed video, got {v}"
            );
            v["error_message"].as_str().unwrap_or("").to_string()
        };
        let lower = msg.to_lowercase();
        let names_it = lower.contains(host)
            || [
                "private",
                "loopback",
                "local",
                "not allowed",
                "forbidden",
                "blocked",
                "refus",
            ]
            .iter()
            .any(|w| lower.contains(w));
        assert!(
            names_it,
            "source_url {url}: the message should name the forbidden address or say why, got {msg:?}"
        );
    }
    assert_eq!(
        origin.hits(),
        Vec::<String>::new(),
        "no request may reach a private address when it is not allowed"
    );
    s.assert_scratch_empty().await;
}

/// A user cancels an encoding while its video is still being fetched, then
/// changes their mind: the retried encoding runs once the video is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoding_retried_before_its_video_is_ready_still_runs() {
    let origin = Origin::start().await;
    let s = Server::start().await;
    let c = s.client();
    let url = origin.url("/slow/video-only.mp4");
    let v = c
        .post(
            "/videos.json",
            &[("source_url", &url), ("profiles", "h264")],
        )
        .await
        .ok();
    let vid = v["id"].as_str().unwrap().to_string();
    let encs = c.encodings_of(&vid).await;
    assert_eq!(encs.len(), 1, "{encs:?}");
    let eid = encs[0]["id"].as_str().unwrap().to_string();

    let r = c
        .post(&format!("/encodings/{eid}/cancel.json"), &[])
        .await
        .ok();
    assert_eq!(
        r,
        serde_json::json!({"canceled": true}),
        "cancel of a queued encoding"
    );
    let e = c.encoding(&eid).await;
    assert_eq!(e["status"], "cancelled", "{e}");
    let v = c.video(&vid).await;
    assert_eq!(
        v["status"], "processing",
        "the source is still downloading: {v}"
    );

    let r = c
        .post(&format!("/encodings/{eid}/retry.json"), &[])
        .await
        .ok();
    assert_eq!(
        r,
        serde_json::json!({"retried": true}),
        "retry of a cancelled encoding while its video is still processing"
    );
    let e = c.wait_encoding(&eid, SECS(600)).await;
    assert_eq!(e["status"], "success", "the retried encoding: {e}");
    s.assert_scratch_empty().await;
}
