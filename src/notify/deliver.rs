//! The delivery loop. It claims due events from the outbox (each with a
//! lease, so several processes can share it) and POSTs each one in its own
//! task: a slow receiver holds up only its own deliveries, and at most
//! `notify.per_cloud_concurrency` of them at once. A 2xx answer delivers an
//! event; anything else is retried with exponential back-off from the
//! cloud's `delay`, for `notify.max_age_secs` after the first attempt, and
//! then the event is dead (spec §6.3). Nothing is kept in memory that the
//! outbox does not also hold, so restarts and crashes lose nothing.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use super::sign::{SIGNATURE_HEADER, TIMESTAMP_HEADER, signature};
use crate::app::App;
use crate::config::NotifyConfig;
use crate::db::notifications::{Claimed, Settle};
use crate::domain::time::{Millis, now_ms};
use crate::outbound::{GuardedResolver, error_chain, is_forbidden, literal_ip};

/// How much of a receiver's answer is read; the rest is dropped unread.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How much of a non-2xx answer is kept in the delivery log.
const ERROR_EXCERPT_CHARS: usize = 200;
/// A new cloud's `delay`; the retry interval when the cloud cannot be read.
const DEFAULT_DELAY_SECS: i64 = 30;

/// Starts the delivery loop (when `notify.enabled`) and the task that ends
/// live streams when `shutdown` fires. The handle finishes once both are
/// done; attempts in flight get up to the delivery timeout to end.
pub fn spawn(app: Arc<App>, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let closer = {
            let app = app.clone();
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                app.db.feed.close();
            }
        };
        if app.config.notify.enabled {
            let delivery = delivery_loop(app.clone(), shutdown).instrument(info_span!("webhooks"));
            tokio::join!(closer, delivery);
        } else {
            closer.await;
        }
    })
}

async fn delivery_loop(app: Arc<App>, shutdown: CancellationToken) {
    let config = &app.config.notify;
    let client = match build_client(config, app.config.fetch.allow_private_networks) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "webhooks disabled: cannot build the HTTP client");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    while !shutdown.is_cancelled() {
        if let Err(e) = app.db.retire_stale_progress().await {
            tracing::warn!(error = %e, "could not retire stale progress notifications");
        }
        start_due(&app, &client, &permits, &mut tasks).await;
        while tasks.try_join_next().is_some() {}
        let pause = pause(&app).await;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = app.db.feed.rung() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    let grace = Duration::from_secs(config.timeout_secs + 1);
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!("webhook attempts still in flight at shutdown; their leases will expire");
    }
}

/// Claims and starts due deliveries while there are free slots.
async fn start_due(
    app: &Arc<App>,
    client: &reqwest::Client,
    permits: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
) {
    let config = &app.config.notify;
    let lease = Duration::from_secs(config.lease_secs.max(config.timeout_secs + 5));
    let per_cloud = config.per_cloud_concurrency.max(1) as i64;
    while let Ok(permit) = permits.clone().try_acquire_owned() {
        match app
            .db
            .claim_delivery(&app.worker_id, lease, per_cloud)
            .await
        {
            Ok(Some(claimed)) => {
                tasks.spawn(attempt(app.clone(), client.clone(), claimed, permit));
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim a webhook delivery");
                return;
            }
        }
    }
}

/// How long to wait for a ring before looking at the outbox again: until
/// the next retry falls due, at most `notify.poll_ms` (other processes
/// write to the outbox too, and do not ring our bell).
async fn pause(app: &App) -> Duration {
    let poll = Duration::from_millis(app.config.notify.poll_ms.max(10));
    match app.db.next_delivery_due().await {
        Ok(Some(due)) if due > now_ms() => poll.min(Duration::from_millis((due - now_ms()) as u64)),
        // Due already but not claimed: held up by a full slot or a busy
        // cloud; the attempt that frees it rings.
        Ok(_) => poll,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the outbox");
            poll
        }
    }
}

/// One attempt at one delivery, settled in the outbox.
async fn attempt(
    app: Arc<App>,
    client: reqwest::Client,
    claimed: Claimed,
    _slot: OwnedSemaphorePermit,
) {
    let span = info_span!(
        "webhook",
        delivery_id = %claimed.id,
        event = %claimed.event,
        video_id = %claimed.video_id,
        attempt = claimed.attempts,
    );
    async {
        let outcome = try_once(&app, &client, &claimed).await;
        match &outcome {
            Settle::Delivered { status } => tracing::info!(status, "webhook delivered"),
            Settle::Retry { status, error, .. } => {
                tracing::info!(status, error = %error, "webhook failed; will retry")
            }
            Settle::Dead { status, error } => {
                tracing::warn!(status, error = %error, "webhook failed; giving up")
            }
        }
        match app
            .db
            .settle_delivery(&claimed.id, &app.worker_id, &outcome)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::info!("the delivery's lease was lost; outcome not recorded"),
            Err(e) => tracing::error!(error = %e, "could not record the webhook outcome"),
        }
        app.db.feed.ring();
    }
    .instrument(span)
    .await
}

/// Sends a delivery once; what the outbox should record.
async fn try_once(app: &App, client: &reqwest::Client, claimed: &Claimed) -> Settle {
    let policy = RetryPolicy::new(&app.config.notify);
    let target = match target(app, claimed, &policy).await {
        Ok(target) => target,
        Err(outcome) => return outcome,
    };
    let allow_private = app.config.fetch.allow_private_networks;
    let sent = post(
        client,
        &target.url,
        &claimed.body,
        &target.secret,
        allow_private,
    )
    .await;
    match sent {
        Ok(answer) if (200..300).contains(&answer.status) => Settle::Delivered {
            status: answer.status,
        },
        Ok(answer) => {
            let error = format!("the receiver answered {}{}", answer.status, answer.excerpt);
            policy.after_failure(claimed, target.delay, Some(answer.status), error)
        }
        Err(error) => policy.after_failure(claimed, target.delay, None, error),
    }
}

/// Where a delivery goes now: the cloud's current settings, so fixing a
/// wrong URL also fixes the events still pending.
struct Target {
    url: String,
    secret: String,
    /// The cloud's `delay`: the first retry interval.
    delay: i64,
}

/// The cloud's target, or the outcome when it has none.
async fn target(app: &App, claimed: &Claimed, policy: &RetryPolicy) -> Result<Target, Settle> {
    let db_error = |e: sqlx::Error| {
        let error = format!("database error: {e}");
        policy.after_failure(claimed, DEFAULT_DELAY_SECS, None, error)
    };
    let cloud = app
        .db
        .cloud(&claimed.cloud_id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| dead("the cloud no longer exists"))?;
    let url = (cloud.notifications.url)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| dead("the cloud's notification url was cleared"))?;
    let secret = app
        .db
        .webhook_secret(&cloud.id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| dead("the cloud no longer exists"))?;
    Ok(Target {
        url,
        secret,
        delay: cloud.notifications.delay,
    })
}

fn dead(error: &str) -> Settle {
    Settle::Dead {
        status: None,
        error: error.to_string(),
    }
}

/// A receiver's answer: its status and the start of its body.
struct Answer {
    status: u16,
    /// `": <first characters>"`, or empty.
    excerpt: String,
}

/// POSTs a signed form body. Errors name the problem without the URL
/// (webhook URLs often carry tokens, and errors end up in logs).
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    secret: &str,
    allow_private: bool,
) -> Result<Answer, String> {
    let parsed =
        url::Url::parse(url).map_err(|e| format!("the notification url is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("the notification url is not an http or https URL".into());
    }
    if !allow_private && let Some(ip) = literal_ip(&parsed).filter(|ip| is_forbidden(*ip)) {
        return Err(format!(
            "the notification url points at {ip}, a loopback, private or link-local address"
        ));
    }
    let timestamp = chrono::Utc::now().timestamp();
    let resp = client
        .post(parsed)
        .header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        )
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature(secret, timestamp, body))
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| error_chain(&e.without_url()))?;
    let status = resp.status().as_u16();
    let excerpt = excerpt(&read_capped(resp).await);
    Ok(Answer { status, excerpt })
}

/// Reads at most [`MAX_ANSWER_BYTES`] of an answer; a body that fails
/// midway counts for what arrived (the status is what matters).
async fn read_capped(resp: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = MAX_ANSWER_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    body
}

/// `": <the first characters of the body, on one line>"`, or empty.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(ERROR_EXCERPT_CHARS)
        .collect();
    if line.is_empty() {
        line
    } else {
        format!(": {line}")
    }
}

fn build_client(config: &NotifyConfig, allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let timeout = Duration::from_secs(config.timeout_secs.max(1));
    // No redirects: a 3xx is not a delivery, and following one could lead
    // past the address guard's intent.
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("openpanda/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    builder.build()
}

/// Spec §6.3: the wait after a failure starts at the cloud's `delay` and
/// doubles, up to a cap; attempts stop `max_age` after the first one.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    base_override: Option<f64>,
    cap_secs: f64,
    max_age_ms: Millis,
}

impl RetryPolicy {
    pub fn new(config: &NotifyConfig) -> Self {
        Self {
            base_override: Some(config.retry_base_secs_override).filter(|s| *s > 0.0),
            cap_secs: config.max_backoff_secs as f64,
            max_age_ms: (config.max_age_secs as i64).saturating_mul(1000),
        }
    }

    /// Seconds to wait after the `attempts`-th failed attempt, before
    /// jitter. A `delay` of 0 would retry at once forever, so one second
    /// is the least.
    pub fn backoff_secs(&self, cloud_delay_secs: i64, attempts: i64) -> f64 {
        let base = self
            .base_override
            .unwrap_or(cloud_delay_secs.max(1) as f64)
            .max(0.001);
        let doublings = (attempts - 1).clamp(0, 40) as i32;
        (base * 2f64.powi(doublings)).min(self.cap_secs.max(base))
    }

    /// The outcome of a failed attempt: another one at a jittered time
    /// inside the window, or dead once the window has passed.
    pub fn after_failure(
        &self,
        claimed: &Claimed,
        cloud_delay_secs: i64,
        status: Option<u16>,
        error: String,
    ) -> Settle {
        self.after_failure_at(
            claimed,
            cloud_delay_secs,
            status,
            error,
            now_ms(),
            rand::random(),
        )
    }

    /// [`RetryPolicy::after_failure`] at time `now`, with `jitter` in [0, 1)
    /// stretching the wait by up to 20 % so receivers that come back are
    /// not hit by every sender at the same instant.
    fn after_failure_at(
        &self,
        claimed: &Claimed,
        cloud_delay_secs: i64,
        status: Option<u16>,
        error: String,
        now: Millis,
        jitter: f64,
    ) -> Settle {
        let deadline = claimed.first_attempt_at.saturating_add(self.max_age_ms);
        if now >= deadline {
            let hours = self.max_age_ms as f64 / 3_600_000.0;
            return Settle::Dead {
                status,
                error: format!(
                    "{error} (gave up after {} attempts over {hours:.3} h)",
                    claimed.attempts
                ),
            };
        }
        let wait = self.backoff_secs(cloud_delay_secs, claimed.attempts) * (1.0 + 0.2 * jitter);
        let at = now.saturating_add((wait * 1000.0) as i64).min(deadline);
        Settle::Retry { status, error, at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(attempts: i64, first: Millis) -> Claimed {
        Claimed {
            id: "d".into(),
            cloud_id: "c".into(),
            video_id: "v".into(),
            event: "video-created".into(),
            body: String::new(),
            attempts,
            first_attempt_at: first,
        }
    }

    #[test]
    fn backoff_doubles_from_the_cloud_delay_up_to_the_cap() {
        let policy = RetryPolicy::new(&NotifyConfig::default());
        let waits: Vec<f64> = (1..=9).map(|n| policy.backoff_secs(30, n)).collect();
        assert_eq!(
            waits,
            [
                30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0
            ]
        );
        assert_eq!(policy.backoff_secs(0, 1), 1.0, "a delay of 0 still waits");
        let fast = RetryPolicy::new(&NotifyConfig {
            retry_base_secs_override: 0.25,
            ..Default::default()
        });
        assert_eq!(fast.backoff_secs(30, 3), 1.0);
        assert!(policy.backoff_secs(30, i64::MAX).is_finite());
    }

    #[test]
    fn failures_retry_inside_the_window_then_die() {
        let policy = RetryPolicy::new(&NotifyConfig::default());
        let first = 1_000_000;
        let retry =
            policy.after_failure_at(&claimed(1, first), 30, Some(500), "x".into(), first, 0.5);
        assert_eq!(
            retry,
            Settle::Retry {
                status: Some(500),
                error: "x".into(),
                at: first + 33_000
            }
        );
        // The last retry is pulled in to the end of the window…
        let late = first + 24 * 3_600_000 - 10_000;
        let Settle::Retry { at, .. } =
            policy.after_failure_at(&claimed(20, first), 30, None, "x".into(), late, 0.0)
        else {
            panic!("expected a retry");
        };
        assert_eq!(at, first + 24 * 3_600_000);
        // …and a failure after it is final.
        let over = policy.after_failure_at(
            &claimed(21, first),
            30,
            None,
            "refused".into(),
            first + 24 * 3_600_000,
            0.0,
        );
        assert!(
            matches!(&over, Settle::Dead { error, .. } if error.starts_with("refused (gave up after 21 attempts")),
            "{over:?}"
        );
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b""), "");
        assert_eq!(excerpt(b"  oops\n\n  bad  "), ": oops bad");
        assert_eq!(excerpt(&[b'a'; 1000]).len(), 2 + ERROR_EXCERPT_CHARS);
    }
}
