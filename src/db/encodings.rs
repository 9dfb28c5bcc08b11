//! Encodings: one output of a video in one profile.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use sqlx::AssertSqlSafe;

use super::videos::ListQuery;
use super::{Db, DbError};
use crate::domain::model::Encoding;
use crate::domain::time::now_ms;

fn encoding_from_row(row: &AnyRow) -> Result<Encoding, DbError> {
    let spec: String = row.try_get("profile_spec")?;
    let files: String = row.try_get("files")?;
    Ok(Encoding {
        id: row.try_get("id")?,
        video_id: row.try_get("video_id")?,
        cloud_id: row.try_get("cloud_id")?,
        profile_id: row.try_get("profile_id")?,
        profile_name: row.try_get("profile_name")?,
        profile_spec: serde_json::from_str(&spec).map_err(|e| DbError::Decode(Box::new(e)))?,
        status: row.try_get("status")?,
        encoding_progress: row.try_get("encoding_progress")?,
        started_encoding_at: row.try_get("started_encoding_at")?,
        encoding_time: row.try_get("encoding_time")?,
        extname: row.try_get("extname")?,
        path: row.try_get("path")?,
        files: serde_json::from_str(&files).map_err(|e| DbError::Decode(Box::new(e)))?,
        width: row.try_get("width")?,
        height: row.try_get("height")?,
        file_size: row.try_get("file_size")?,
        error_class: row.try_get("error_class")?,
        error_message: row.try_get("error_message")?,
        worker_id: row.try_get("worker_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) async fn insert_encoding(
    tx: &mut Transaction<'_, Any>,
    e: &Encoding,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO encodings (id, video_id, cloud_id, profile_id, profile_name, profile_spec, \
         status, encoding_progress, extname, path, files, width, height, file_size, \
         error_class, error_message, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&e.id)
    .bind(&e.video_id)
    .bind(&e.cloud_id)
    .bind(&e.profile_id)
    .bind(&e.profile_name)
    .bind(serde_json::to_string(&e.profile_spec).expect("serialisable"))
    .bind(&e.status)
    .bind(e.encoding_progress)
    .bind(&e.extname)
    .bind(&e.path)
    .bind(serde_json::to_string(&e.files).expect("serialisable"))
    .bind(e.width)
    .bind(e.height)
    .bind(e.file_size)
    .bind(&e.error_class)
    .bind(&e.error_message)
    .bind(e.created_at)
    .bind(e.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes every mutable field of an encoding.
pub(crate) async fn update_encoding_tx(
    tx: &mut Transaction<'_, Any>,
    e: &Encoding,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE encodings SET status = $2, encoding_progress = $3, started_encoding_at = $4, \
         encoding_time = $5, files = $6, width = $7, height = $8, file_size = $9, \
         error_class = $10, error_message = $11, worker_id = $12, updated_at = $13 \
         WHERE id = $1",
    )
    .bind(&e.id)
    .bind(&e.status)
    .bind(e.encoding_progress)
    .bind(e.started_encoding_at)
    .bind(e.encoding_time)
    .bind(serde_json::to_string(&e.files).expect("serialisable"))
    .bind(e.width)
    .bind(e.height)
    .bind(e.file_size)
    .bind(&e.error_class)
    .bind(&e.error_message)
    .bind(&e.worker_id)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Db {
    pub async fn encoding(&self, id: &str) -> Result<Option<Encoding>, DbError> {
        sqlx::query("SELECT * FROM encodings WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| encoding_from_row(&r))
            .transpose()
    }

    pub async fn encodings_of_video(&self, video_id: &str) -> Result<Vec<Encoding>, DbError> {
        sqlx::query("SELECT * FROM encodings WHERE video_id = $1 ORDER BY created_at, id")
            .bind(video_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(encoding_from_row)
            .collect()
    }

    pub async fn list_encodings(&self, q: &ListQuery) -> Result<(Vec<Encoding>, i64), DbError> {
        let wh = q.where_clause();
        let sql = format!(
            "SELECT * FROM encodings {wh} ORDER BY updated_at DESC, id {}",
            q.limit_offset()
        );
        let mut query = sqlx::query(AssertSqlSafe(sql.clone()));
        for (_, v) in &q.filters {
            query = query.bind(v.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let count_sql = format!("SELECT COUNT(*) AS n FROM encodings {wh}");
        let mut count = sqlx::query(AssertSqlSafe(count_sql));
        for (_, v) in &q.filters {
            count = count.bind(v.clone());
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;
        let list = rows
            .iter()
            .map(encoding_from_row)
            .collect::<Result<_, _>>()?;
        Ok((list, total))
    }

    /// Adds an encoding to an existing video; queues it when the video is ready.
    pub async fn add_encoding(
        &self,
        e: &Encoding,
        video: &crate::domain::model::Video,
        priority: i64,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        insert_encoding(&mut tx, e).await?;
        if e.status == "processing" && video.status == "success" {
            super::jobs::enqueue(
                &mut tx,
                super::jobs::JobKind::Encode,
                video,
                Some(&e.id),
                priority,
            )
            .await?;
        }
        tx.commit().await
    }

    /// Records that a worker started an encoding, unless it stopped being
    /// `processing` meanwhile (cancelled): false then.
    pub async fn mark_started(&self, e: &Encoding) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE encodings SET started_encoding_at = $2, worker_id = $3, \
             encoding_progress = 0, updated_at = $4 WHERE id = $1 AND status = 'processing'",
        )
        .bind(&e.id)
        .bind(e.started_encoding_at)
        .bind(&e.worker_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Writes only the progress of a running encoding (cheap, frequent).
    pub async fn set_progress(&self, id: &str, progress: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE encodings SET encoding_progress = $2, updated_at = $3 \
             WHERE id = $1 AND status = 'processing'",
        )
        .bind(id)
        .bind(progress)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Db {
    /// Cancels a queued or running encoding; false when it had already ended.
    pub async fn cancel_encoding(&self, id: &str) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE encodings SET status = 'cancelled', error_class = NULL, error_message = NULL, \
             updated_at = $2 WHERE id = $1 AND status = 'processing'",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', updated_at = $2 \
             WHERE encoding_id = $1 AND state IN ('queued', 'running')",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let cancelled = r.rows_affected() == 1;
        let events = super::notifications::after_cancel(&mut tx, id, cancelled).await?;
        tx.commit().await?;
        self.feed.announce(events);
        Ok(cancelled)
    }

    /// Queues a failed or cancelled encoding again; false when it is not in
    /// a retryable state.
    pub async fn retry_encoding(
        &self,
        e: &Encoding,
        video: &crate::domain::model::Video,
        priority: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        // Lock the video row first: an ingest finishing at the same moment
        // either sees this encoding pending or is seen here as finished.
        sqlx::query("UPDATE videos SET updated_at = updated_at WHERE id = $1")
            .bind(&video.id)
            .execute(&mut *tx)
            .await?;
        let status: String = sqlx::query("SELECT status FROM videos WHERE id = $1")
            .bind(&video.id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("status")?;
        if status == "fail" {
            return Ok(false);
        }
        let r = sqlx::query(
            "UPDATE encodings SET status = 'processing', encoding_progress = 0, \
             error_class = NULL, error_message = NULL, started_encoding_at = NULL, \
             encoding_time = 0, updated_at = $2 \
             WHERE id = $1 AND status IN ('fail', 'cancelled')",
        )
        .bind(&e.id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if status == "success" {
            super::jobs::enqueue(
                &mut tx,
                super::jobs::JobKind::Encode,
                video,
                Some(&e.id),
                priority,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn delete_encoding(&self, id: &str) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM jobs WHERE encoding_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM encodings WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}
