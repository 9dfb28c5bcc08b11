//! What operators look at: Prometheus counters move by the right amounts
//! after an upload, and no secret reaches the logs even at trace level.

#[path = "integration/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::time::Duration;

use common::media::media;
use common::server::{Server, ServerOpts};

/// The value of one sample line `name{labels} value` whose labels include
/// every `want` pair; 0 when absent.
fn sample(metrics: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| {
            want.iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(server: &Server) -> String {
    reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_move_by_the_right_amounts_after_an_upload() {
    let server = Server::start().await;
    let c = server.client();
    let before = scrape(&server).await;

    let file = media("bbb-51.mp4");
    let size = std::fs::metadata(&file).unwrap().len() as f64;
    let video = c.upload(&file, &[("profiles", "h264")]).await;
    let id = video["id"].as_str().unwrap().to_string();
    let encodings = c.wait_encodings(&id, Duration::from_secs(120)).await;
    assert_eq!(encodings[0]["status"], "success", "{encodings:?}");
    let after = scrape(&server).await;

    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(
        delta("openpanda_upload_bytes_total", &[]),
        size,
        "upload bytes"
    );
    assert_eq!(
        delta("openpanda_videos_total", &[("outcome", "success")]),
        1.0,
        "one video ingested"
    );
    let cloud = server.cloud.id.as_str();
    assert_eq!(
        delta(
            "openpanda_encodings_total",
            &[
                ("cloud", cloud),
                ("profile", "h264"),
                ("outcome", "success")
            ]
        ),
        1.0,
        "one h264 encoding succeeded"
    );
    assert_eq!(
        delta(
            "openpanda_http_requests_total",
            &[
                ("route", "/v2/videos"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        1.0,
        "one upload request"
    );
    assert_eq!(
        delta(
            "openpanda_encoding_duration_seconds_count",
            &[("profile", "h264")]
        ),
        1.0,
        "one encoding duration observed"
    );
    assert!(
        delta(
            "openpanda_storage_operations_total",
            &[("backend", "local"), ("op", "put"), ("outcome", "ok")]
        ) >= 9.0,
        "original + output + 7 screenshots stored: {after}"
    );
    assert_eq!(
        sample(&after, "openpanda_jobs", &[("state", "queued")]),
        0.0,
        "nothing left in the queue"
    );
    let ready = reqwest::get(format!("http://{}/readyz", server.addr))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "/readyz should be ready");
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let server = Server::start_with(ServerOpts {
        log_level: Some("trace".into()),
        ..ServerOpts::default()
    })
    .await;
    let c = server.client();
    let video = c
        .upload(&media("video-only.mp4"), &[("profiles", "h264")])
        .await;
    let id = video["id"].as_str().unwrap().to_string();
    c.wait_encodings(&id, Duration::from_secs(120)).await;
    // A rejected request too: its signature must not be echoed either.
    let bad = c
        .request(reqwest::Method::GET, "/videos.json")
        .signature("c2VjcmV0LXNpZ25hdHVyZS1ub3QtdG8tYmUtbG9nZ2Vk")
        .send()
        .await;
    assert_eq!(bad.status, 401);
    let log = server.log_tail(100_000);
    assert!(!log.is_empty(), "the server wrote no log");
    for (what, secret) in [
        ("the secret key", server.cloud.secret_key.as_str()),
        (
            "a signature",
            "c2VjcmV0LXNpZ25hdHVyZS1ub3QtdG8tYmUtbG9nZ2Vk",
        ),
    ] {
        assert!(!log.contains(secret), "{what} appears in the server log");
    }
}
