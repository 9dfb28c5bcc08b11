//! Upload sessions (spec §5): the state of a resumable upload, kept here so
//! that any API process can take the next chunk. Writes to one session are
//! serialised by a lease (`writer`, `writer_expires_at`), taken and released
//! with conditional UPDATEs; the byte count only moves forward through an
//! UPDATE that names both the lease holder and the count it started from.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError};
use crate::domain::model::{Encoding, Video};
use crate::domain::time::{Millis, now_ms};

/// One upload session row.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadSession {
    pub id: String,
    pub cloud_id: String,
    /// The client's file name, basename only.
    pub file_name: String,
    pub file_size: i64,
    /// Profiles to encode with once complete (resolved when opened).
    pub profile_ids: Vec<String>,
    pub path_format: Option<String>,
    pub payload: Option<String>,
    /// Bytes stored contiguously from offset 0.
    pub received: i64,
    /// The storage backend's opaque record of the partial object.
    pub storage_state: String,
    /// The video made from the upload, once complete.
    pub video_id: Option<String>,
    pub created_at: Millis,
    /// Last activity.
    pub updated_at: Millis,
    /// Set once the session expired and its partial data was removed.
    pub expired_at: Option<Millis>,
}

impl UploadSession {
    pub fn is_complete(&self) -> bool {
        self.video_id.is_some()
    }
}

fn session_from_row(row: &AnyRow) -> Result<UploadSession, DbError> {
    let profile_ids: String = row.try_get("profile_ids")?;
    Ok(UploadSession {
        id: row.try_get("id")?,
        cloud_id: row.try_get("cloud_id")?,
        file_name: row.try_get("file_name")?,
        file_size: row.try_get("file_size")?,
        profile_ids: serde_json::from_str(&profile_ids)
            .map_err(|e| DbError::Decode(Box::new(e)))?,
        path_format: row.try_get("path_format")?,
        payload: row.try_get("payload")?,
        received: row.try_get("received")?,
        storage_state: row.try_get("storage_state")?,
        video_id: row.try_get("video_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        expired_at: row.try_get("expired_at")?,
    })
}

impl Db {
    pub async fn insert_upload_session(&self, s: &UploadSession) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO upload_sessions (id, cloud_id, file_name, file_size, profile_ids, \
             path_format, payload, received, storage_state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&s.id)
        .bind(&s.cloud_id)
        .bind(&s.file_name)
        .bind(s.file_size)
        .bind(serde_json::to_string(&s.profile_ids).expect("a list of strings"))
        .bind(&s.path_format)
        .bind(&s.payload)
        .bind(s.received)
        .bind(&s.storage_state)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn upload_session(&self, id: &str) -> Result<Option<UploadSession>, DbError> {
        sqlx::query("SELECT * FROM upload_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| session_from_row(&r))
            .transpose()
    }

    /// Records activity (a status query), which postpones expiry.
    pub async fn touch_upload_session(&self, id: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE upload_sessions SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes the write lease of a session for `lease_ms`; false while another
    /// request holds an unexpired one (or the session is gone).
    pub async fn take_upload_lease(
        &self,
        id: &str,
        token: &str,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE upload_sessions SET writer = $2, writer_expires_at = $3 \
             WHERE id = $1 AND (writer IS NULL OR writer_expires_at < $4)",
        )
        .bind(id)
        .bind(token)
        .bind(now + lease_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Extends a lease we hold (bytes are arriving, which also counts as
    /// activity); false when it is no longer ours.
    pub async fn renew_upload_lease(
        &self,
        id: &str,
        token: &str,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE upload_sessions SET writer_expires_at = $3, updated_at = $4 \
             WHERE id = $1 AND writer = $2",
        )
        .bind(id)
        .bind(token)
        .bind(now_ms() + lease_ms)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn release_upload_lease(&self, id: &str, token: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE upload_sessions SET writer = NULL, writer_expires_at = NULL \
             WHERE id = $1 AND writer = $2",
        )
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves `received` from `from` to `to` with the backend's new state,
    /// only if we still hold the lease and nobody moved it meanwhile. The
    /// lease is kept: the caller releases it or completes the upload.
    pub async fn commit_upload_bytes(
        &self,
        id: &str,
        token: &str,
        from: i64,
        to: i64,
        storage_state: &str,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE upload_sessions SET received = $4, storage_state = $5, updated_at = $6 \
             WHERE id = $1 AND writer = $2 AND received = $3",
        )
        .bind(id)
        .bind(token)
        .bind(from)
        .bind(to)
        .bind(storage_state)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the video made from a complete upload, with its encodings and
    /// ingest job, and marks the session complete, all in one transaction
    /// (so a crash leaves either no video or a complete session). False, and
    /// nothing written, when the lease is no longer ours.
    pub async fn create_video_from_upload(
        &self,
        session_id: &str,
        token: &str,
        video: &Video,
        encodings: &[Encoding],
        priority: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE upload_sessions SET video_id = $3, writer = NULL, writer_expires_at = NULL, \
             updated_at = $4 WHERE id = $1 AND writer = $2 AND video_id IS NULL",
        )
        .bind(session_id)
        .bind(token)
        .bind(&video.id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        super::videos::insert_video(&mut tx, video).await?;
        for e in encodings {
            super::encodings::insert_encoding(&mut tx, e).await?;
        }
        super::jobs::enqueue(&mut tx, super::jobs::JobKind::Ingest, video, None, priority).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn delete_upload_session(&self, id: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM upload_sessions WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Live sessions without activity since `before` and not being
    /// written now.
    pub async fn expired_upload_sessions(
        &self,
        before: Millis,
    ) -> Result<Vec<UploadSession>, DbError> {
        sqlx::query(
            "SELECT * FROM upload_sessions WHERE expired_at IS NULL AND updated_at < $1 \
             AND (writer IS NULL OR writer_expires_at < $2) ORDER BY updated_at LIMIT 500",
        )
        .bind(before)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(session_from_row)
        .collect()
    }

    /// Marks a session expired unless it saw activity or a writer since it
    /// was listed; true when it was marked (the caller then removes its
    /// partial data).
    pub async fn mark_upload_session_expired(
        &self,
        id: &str,
        before: Millis,
    ) -> Result<bool, DbError> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE upload_sessions SET expired_at = $3, writer = NULL, writer_expires_at = NULL \
             WHERE id = $1 AND expired_at IS NULL AND updated_at < $2 \
             AND (writer IS NULL OR writer_expires_at < $3)",
        )
        .bind(id)
        .bind(before)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Forgets sessions that expired before `before`.
    pub async fn purge_expired_upload_sessions(&self, before: Millis) -> Result<u64, DbError> {
        let r = sqlx::query("DELETE FROM upload_sessions WHERE expired_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
