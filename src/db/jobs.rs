//! The job queue. Jobs are rows; a worker claims one by taking a lease
//! (`lease_owner`, `lease_expires_at`) and keeps it alive with heartbeats.
//! A lease that expires (worker killed, machine lost) makes the job claimable
//! again; `attempts` counts the claims. Every state change that ends a job is
//! guarded by the lease owner, so a job that ran twice finishes once.

use std::time::Duration;

use sqlx::{Any, Row, Transaction};

use sqlx::AssertSqlSafe;

use super::{Backend, Db, DbError};
use crate::domain::ids::new_id;
use crate::domain::model::Video;
use crate::domain::time::now_ms;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Fetch (for `source_url`), probe and validate an original.
    Ingest,
    /// Run one encoding.
    Encode,
}

impl JobKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Encode => "encode",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "ingest" => Some(Self::Ingest),
            "encode" => Some(Self::Encode),
            _ => None,
        }
    }
}

/// A claimed job.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub cloud_id: String,
    pub video_id: String,
    pub encoding_id: Option<String>,
    /// How many times the job has been claimed, this claim included.
    pub attempts: i64,
    pub last_error: Option<String>,
}

pub(crate) async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    kind: JobKind,
    video: &Video,
    encoding_id: Option<&str>,
    priority: i64,
) -> Result<(), DbError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO jobs (id, kind, cloud_id, video_id, encoding_id, priority, state, attempts, \
         run_after, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $7, $7)",
    )
    .bind(new_id())
    .bind(kind.as_str())
    .bind(&video.cloud_id)
    .bind(&video.id)
    .bind(encoding_id)
    .bind(priority)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if tx.backend_name() == "PostgreSQL" {
        // Delivered at commit to every listening worker process.
        sqlx::query("NOTIFY openpanda_jobs")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The channel workers LISTEN on for new jobs (PostgreSQL).
pub const JOBS_CHANNEL: &str = "openpanda_jobs";

/// Marks the job done if `owner` still holds it; false when it does not.
pub(crate) async fn finish_tx(
    tx: &mut Transaction<'_, Any>,
    job: &Job,
    owner: &str,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires_at = NULL, \
         updated_at = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(&job.id)
    .bind(owner)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Db {
    /// Claims the most urgent ready job: lowest cloud priority, then oldest.
    pub async fn claim_job(&self, owner: &str, lease: Duration) -> Result<Option<Job>, DbError> {
        let now = now_ms();
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1, updated_at = $3 \
             WHERE id = (SELECT id FROM jobs \
                 WHERE (state = 'queued' AND run_after <= $3) \
                    OR (state = 'running' AND lease_expires_at < $3) \
                 ORDER BY priority, created_at LIMIT 1 {lock}) \
             RETURNING id, kind, cloud_id, video_id, encoding_id, attempts, last_error"
        );
        let row = sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(owner)
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("kind")?;
        Ok(Some(Job {
            id: row.try_get("id")?,
            kind: JobKind::parse(&kind).ok_or_else(|| {
                DbError::Protocol(format!("unknown job kind {kind:?} in the queue"))
            })?,
            cloud_id: row.try_get("cloud_id")?,
            video_id: row.try_get("video_id")?,
            encoding_id: row.try_get("encoding_id")?,
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
        }))
    }

    /// Extends a lease. False means the job is no longer ours (it was
    /// cancelled, or the lease expired and another worker took it): stop.
    pub async fn heartbeat(
        &self,
        job: &Job,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, DbError> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET lease_expires_at = $3, updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(&job.id)
        .bind(owner)
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ends a job that has nothing left to do.
    pub async fn finish_job(&self, job: &Job, owner: &str) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        let ok = finish_tx(&mut tx, job, owner).await?;
        tx.commit().await?;
        Ok(ok)
    }

    /// Puts a job back in the queue to run again after `delay`.
    pub async fn requeue_job(
        &self,
        job: &Job,
        owner: &str,
        delay: Duration,
        error: &str,
    ) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, \
             run_after = $3, last_error = $4, updated_at = $5 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(&job.id)
        .bind(owner)
        .bind(now + delay.as_millis() as i64)
        .bind(error)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Hands every job `owner` holds back to the queue (a worker shutting
    /// down); returns how many.
    pub async fn release_jobs(&self, owner: &str) -> Result<u64, DbError> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, \
             attempts = attempts - 1, run_after = $2, updated_at = $2 \
             WHERE lease_owner = $1 AND state = 'running'",
        )
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}

impl Db {
    /// Unfinished jobs by kind, state, cloud and profile, for the queue gauges.
    pub async fn job_counts(&self) -> Result<Vec<JobCount>, DbError> {
        sqlx::query(
            "SELECT j.kind AS kind, j.state AS state, j.cloud_id AS cloud_id, \
             COALESCE(e.profile_name, '') AS profile, COUNT(*) AS n \
             FROM jobs j LEFT JOIN encodings e ON e.id = j.encoding_id \
             WHERE j.state IN ('queued', 'running') \
             GROUP BY j.kind, j.state, j.cloud_id, e.profile_name",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(JobCount {
                kind: r.try_get("kind")?,
                state: r.try_get("state")?,
                cloud_id: r.try_get("cloud_id")?,
                profile: r.try_get("profile")?,
                count: r.try_get("n")?,
            })
        })
        .collect()
    }
}

/// One row of [`Db::job_counts`].
#[derive(Debug, Clone)]
pub struct JobCount {
    pub kind: String,
    pub state: String,
    pub cloud_id: String,
    pub profile: String,
    pub count: i64,
}
