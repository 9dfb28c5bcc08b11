//! Encoding workers: a pool of slots, each claiming jobs from the queue,
//! keeping the lease alive with heartbeats while the job runs, and stopping
//! the job when the lease is lost (cancelled, or taken by another worker).

pub mod command;
pub mod encode;
pub mod fetch;
pub mod ingest;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use crate::app::App;
use crate::db::jobs::{Job, JobKind};

/// How long an idle slot sleeps before looking at the queue again when no
/// wake-up arrives (another process may have queued work).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// A failure that may go away on its own (storage or database trouble):
/// the job is queued again with a back-off, up to `max_attempts`.
#[derive(Debug)]
pub struct Transient {
    pub class: &'static str,
    pub message: String,
}

impl Transient {
    pub fn storage(e: impl std::fmt::Display) -> Self {
        Self {
            class: "S3Error",
            message: format!("storage failed: {e}"),
        }
    }

    pub fn other(e: impl std::fmt::Display) -> Self {
        Self {
            class: "UnexpectedError",
            message: e.to_string(),
        }
    }
}

impl From<sqlx::Error> for Transient {
    fn from(e: sqlx::Error) -> Self {
        Self::other(format!("database error: {e}"))
    }
}

/// Starts `app.concurrency()` worker slots; they stop when `shutdown` fires,
/// letting running jobs finish.
pub fn spawn(app: Arc<App>, shutdown: CancellationToken) -> JoinSet<()> {
    let mut set = JoinSet::new();
    if app.db.backend == crate::db::Backend::Postgres {
        set.spawn(listen_for_jobs(app.clone(), shutdown.clone()));
    }
    for slot in 0..app.config.concurrency() {
        let app = app.clone();
        let shutdown = shutdown.clone();
        set.spawn(
            async move { slot_loop(app, shutdown).await }.instrument(info_span!("worker", slot)),
        );
    }
    set
}

/// Wakes this process's slots when any process queues a job (PostgreSQL
/// LISTEN/NOTIFY), so idle workers do not have to poll tightly.
async fn listen_for_jobs(app: Arc<App>, shutdown: CancellationToken) {
    let url = app.config.database_url();
    while !shutdown.is_cancelled() {
        let mut listener = match sqlx::postgres::PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for jobs; polling meanwhile");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(crate::db::jobs::JOBS_CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN failed; polling meanwhile");
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                n = listener.recv() => match n {
                    Ok(_) => app.wake_workers(),
                    Err(e) => {
                        tracing::warn!(error = %e, "job notifications lost; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}

async fn slot_loop(app: Arc<App>, shutdown: CancellationToken) {
    let lease = Duration::from_secs(app.config.workers.lease_secs.max(3));
    while !shutdown.is_cancelled() {
        let notified = app.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match app.db.claim_job(&app.worker_id, lease).await {
            Ok(Some(job)) => {
                run_job(&app, job, lease).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not claim a job"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = notified => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
}

/// Runs one claimed job with a heartbeat, then settles its outcome.
async fn run_job(app: &Arc<App>, job: Job, lease: Duration) {
    let span = info_span!(
        "job",
        job_id = %job.id,
        kind = ?job.kind,
        video_id = %job.video_id,
        encoding_id = job.encoding_id.as_deref().unwrap_or(""),
        worker_id = %app.worker_id,
        attempt = job.attempts,
    );
    async {
        let cancel = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(app.clone(), job.clone(), lease, cancel.clone()));
        if let Some(id) = &job.encoding_id {
            app.register_running(id, cancel.clone());
        }
        let scratch = Scratch::new(app.work_dir().join(&job.id)).await;
        let result = match (&scratch, job.kind) {
            (Err(e), _) => Err(Transient::other(format!(
                "cannot create a scratch directory: {e}"
            ))),
            (Ok(dir), JobKind::Ingest) => ingest::run(app, &job, &dir.0, &cancel).await,
            (Ok(dir), JobKind::Encode) => encode::run(app, &job, &dir.0, &cancel).await,
        };
        heartbeat.abort();
        if let Some(id) = &job.encoding_id {
            app.unregister_running(id);
        }
        drop(scratch);
        if let Err(t) = result {
            settle_transient(app, &job, t).await;
        }
    }
    .instrument(span)
    .await
}

/// Requeues a job after a transient failure, or ends it after too many.
async fn settle_transient(app: &Arc<App>, job: &Job, t: Transient) {
    tracing::warn!(error = %t.message, "job failed, may retry");
    if job.attempts < app.config.workers.max_attempts {
        let delay = Duration::from_secs(2u64.pow(job.attempts.clamp(0, 8) as u32));
        if let Err(e) = app
            .db
            .requeue_job(job, &app.worker_id, delay, &t.message)
            .await
        {
            tracing::error!(error = %e, "could not requeue the job");
        }
        return;
    }
    let r = match job.kind {
        JobKind::Ingest => ingest::give_up(app, job, t.class, &t.message).await,
        JobKind::Encode => encode::give_up(app, job, t.class, &t.message).await,
    };
    if let Err(e) = r {
        tracing::error!(error = %e.message, "could not record the job's failure");
    }
}

async fn heartbeat(app: Arc<App>, job: Job, lease: Duration, cancel: CancellationToken) {
    let every = lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match app.db.heartbeat(&job, &app.worker_id, lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!("lease lost (cancelled or taken over); stopping the job");
                cancel.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
    }
}

/// A per-job scratch directory, removed with everything in it on drop.
struct Scratch(PathBuf);

impl Scratch {
    async fn new(path: PathBuf) -> std::io::Result<Self> {
        let _ = tokio::fs::remove_dir_all(&path).await;
        tokio::fs::create_dir_all(&path).await?;
        Ok(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
