//! Prometheus metrics. Names follow Prometheus conventions
//! (`openpanda_<thing>_<unit>`, `_total` for counters); every label value is
//! bounded (routes are patterns, not paths; profiles and clouds are ids or
//! names chosen by operators).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    300.0, 900.0, 3600.0,
                ])
                .expect("static buckets are valid")
                .install_recorder()
                .expect("the metrics recorder is installed once")
        })
        .clone()
}

/// The route pattern of a request path, for labels: ids become `:id`.
pub fn route_label(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("/v2") {
        let segments: Vec<&str> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches(".json"))
            .collect();
        let pattern: Vec<&str> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| if i % 2 == 1 { ":id" } else { s })
            .collect();
        return format!("/v2/{}", pattern.join("/"));
    }
    for prefix in ["/storage", "/upload", "/dashboard"] {
        if path.starts_with(prefix) {
            return format!("{prefix}/*");
        }
    }
    match path {
        "/healthz" | "/readyz" | "/metrics" => path.to_string(),
        _ => "other".to_string(),
    }
}

/// Counts every request by route, method and status, with its latency.
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("openpanda_http_requests_total",
        "route" => route.clone(), "method" => method, "status" => status)
    .increment(1);
    metrics::histogram!("openpanda_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// `GET /metrics`: refreshes the queue gauges from the database, then
/// renders everything in the Prometheus text format.
pub async fn render(State(app): State<std::sync::Arc<crate::app::App>>) -> Response {
    match app.db.job_counts().await {
        Ok(counts) => set_job_gauges(counts),
        Err(e) => tracing::warn!(error = %e, "could not count jobs for /metrics"),
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        install().render(),
    )
        .into_response()
}

/// Sets `openpanda_jobs{kind,state,cloud,profile}`, zeroing label sets that
/// had jobs at the previous scrape and have none now.
fn set_job_gauges(counts: Vec<crate::db::jobs::JobCount>) {
    type Labels = (String, String, String, String);
    static SEEN: std::sync::Mutex<Vec<Labels>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().expect("gauge label set");
    let now: Vec<(Labels, i64)> = counts
        .into_iter()
        .map(|c| ((c.kind, c.state, c.cloud_id, c.profile), c.count))
        .collect();
    for labels in seen.iter() {
        if !now.iter().any(|(l, _)| l == labels) {
            job_gauge(labels).set(0.0);
        }
    }
    for (labels, n) in &now {
        job_gauge(labels).set(*n as f64);
    }
    *seen = now.into_iter().map(|(l, _)| l).collect();
}

fn job_gauge(l: &(String, String, String, String)) -> metrics::Gauge {
    metrics::gauge!("openpanda_jobs",
        "kind" => l.0.clone(), "state" => l.1.clone(), "cloud" => l.2.clone(), "profile" => l.3.clone())
}

/// Records the end of an encoding: outcome counter, wall time and speed
/// (media seconds encoded per wall second).
pub fn encoding_finished(
    cloud: &str,
    profile: &str,
    outcome: &str,
    wall_secs: f64,
    media_ms: Option<i64>,
) {
    let labels = [
        ("cloud", cloud.to_string()),
        ("profile", profile.to_string()),
        ("outcome", outcome.to_string()),
    ];
    metrics::counter!("openpanda_encodings_total", &labels).increment(1);
    if outcome == "success" {
        let labels = [("profile", profile.to_string())];
        metrics::histogram!("openpanda_encoding_duration_seconds", &labels).record(wall_secs);
        if let Some(ms) = media_ms.filter(|_| wall_secs > 0.0) {
            metrics::histogram!("openpanda_encoding_speed_ratio", &labels)
                .record(ms as f64 / 1000.0 / wall_secs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn routes_are_patterns() {
        assert_eq!(route_label("/v2/videos.json"), "/v2/videos");
        assert_eq!(route_label("/v2/videos/abc123.json"), "/v2/videos/:id");
        assert_eq!(
            route_label("/v2/videos/abc/encodings.json"),
            "/v2/videos/:id/encodings"
        );
        assert_eq!(route_label("/storage/c/x.mp4"), "/storage/*");
        assert_eq!(route_label("/../../etc/passwd"), "other");
    }
}
