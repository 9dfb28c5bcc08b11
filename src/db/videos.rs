//! Videos, and the filtered, paginated listing shared with encodings.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use sqlx::AssertSqlSafe;

use super::{Db, DbError};
use crate::domain::model::{Encoding, Video};
use crate::domain::time::now_ms;

/// Equality filters on text columns plus a page, for list endpoints.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub filters: Vec<(&'static str, String)>,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

impl ListQuery {
    /// `WHERE a = $1 AND b = $2 …` and the values to bind, in order.
    pub(crate) fn where_clause(&self) -> String {
        let parts: Vec<String> = self
            .filters
            .iter()
            .enumerate()
            .map(|(i, (col, _))| format!("{col} = ${}", i + 1))
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", parts.join(" AND "))
        }
    }

    pub(crate) fn limit_offset(&self) -> String {
        let per_page = self.per_page.clamp(1, 100);
        let page = self.page.max(1);
        format!("LIMIT {per_page} OFFSET {}", (page - 1) * per_page)
    }
}

fn video_from_row(row: &AnyRow) -> Result<Video, DbError> {
    Ok(Video {
        id: row.try_get("id")?,
        cloud_id: row.try_get("cloud_id")?,
        status: row.try_get("status")?,
        original_filename: row.try_get("original_filename")?,
        extname: row.try_get("extname")?,
        path: row.try_get("path")?,
        source_url: row.try_get("source_url")?,
        payload: row.try_get("payload")?,
        path_format: row.try_get("path_format")?,
        error_class: row.try_get("error_class")?,
        error_message: row.try_get("error_message")?,
        mime_type: row.try_get("mime_type")?,
        video_codec: row.try_get("video_codec")?,
        audio_codec: row.try_get("audio_codec")?,
        width: row.try_get("width")?,
        height: row.try_get("height")?,
        fps: row.try_get("fps")?,
        duration: row.try_get("duration")?,
        file_size: row.try_get("file_size")?,
        video_bitrate: row.try_get("video_bitrate")?,
        audio_bitrate: row.try_get("audio_bitrate")?,
        audio_channels: row.try_get("audio_channels")?,
        audio_sample_rate: row.try_get("audio_sample_rate")?,
        facts: row.try_get("facts")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Db {
    pub async fn video(&self, id: &str) -> Result<Option<Video>, DbError> {
        sqlx::query("SELECT * FROM videos WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| video_from_row(&r))
            .transpose()
    }

    pub async fn list_videos(&self, q: &ListQuery) -> Result<(Vec<Video>, i64), DbError> {
        let wh = q.where_clause();
        let sql = format!(
            "SELECT * FROM videos {wh} ORDER BY updated_at DESC, id {}",
            q.limit_offset()
        );
        let mut query = sqlx::query(AssertSqlSafe(sql.clone()));
        for (_, v) in &q.filters {
            query = query.bind(v.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let count_sql = format!("SELECT COUNT(*) AS n FROM videos {wh}");
        let mut count = sqlx::query(AssertSqlSafe(count_sql));
        for (_, v) in &q.filters {
            count = count.bind(v.clone());
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;
        let videos = rows.iter().map(video_from_row).collect::<Result<_, _>>()?;
        Ok((videos, total))
    }

    /// Records a new video with its encodings and its ingest job, atomically.
    pub async fn create_video(
        &self,
        video: &Video,
        encodings: &[Encoding],
        priority: i64,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        insert_video(&mut tx, video).await?;
        for e in encodings {
            super::encodings::insert_encoding(&mut tx, e).await?;
        }
        super::jobs::enqueue(&mut tx, super::jobs::JobKind::Ingest, video, None, priority).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a video and everything that hangs off it.
    pub async fn delete_video(&self, id: &str) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        for table in ["jobs", "encodings"] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE video_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM videos WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

pub(crate) async fn insert_video(tx: &mut Transaction<'_, Any>, v: &Video) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO videos (id, cloud_id, status, original_filename, extname, path, source_url, \
         payload, path_format, file_size, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&v.id)
    .bind(&v.cloud_id)
    .bind(&v.status)
    .bind(&v.original_filename)
    .bind(&v.extname)
    .bind(&v.path)
    .bind(&v.source_url)
    .bind(&v.payload)
    .bind(&v.path_format)
    .bind(v.file_size)
    .bind(v.created_at)
    .bind(v.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn update_video_tx(
    tx: &mut Transaction<'_, Any>,
    v: &Video,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE videos SET status = $2, error_class = $3, error_message = $4, mime_type = $5, \
         video_codec = $6, audio_codec = $7, width = $8, height = $9, fps = $10, duration = $11, \
         file_size = $12, video_bitrate = $13, audio_bitrate = $14, audio_channels = $15, \
         audio_sample_rate = $16, facts = $17, original_filename = $18, extname = $19, \
         updated_at = $20 WHERE id = $1",
    )
    .bind(&v.id)
    .bind(&v.status)
    .bind(&v.error_class)
    .bind(&v.error_message)
    .bind(&v.mime_type)
    .bind(&v.video_codec)
    .bind(&v.audio_codec)
    .bind(v.width)
    .bind(v.height)
    .bind(v.fps)
    .bind(v.duration)
    .bind(v.file_size)
    .bind(v.video_bitrate)
    .bind(v.audio_bitrate)
    .bind(v.audio_channels)
    .bind(v.audio_sample_rate)
    .bind(&v.facts)
    .bind(&v.original_filename)
    .bind(&v.extname)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Db {
    /// Ends an ingest job: saves the video and, when it succeeded, queues an
    /// encode job per pending encoding; when it failed, fails them with
    /// `VideoStatusInvalid`. False (and nothing written) when the job is no
    /// longer ours.
    pub async fn finish_ingest(
        &self,
        job: &super::jobs::Job,
        owner: &str,
        video: &Video,
        priority: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        if !super::jobs::finish_tx(&mut tx, job, owner).await? {
            return Ok(false);
        }
        update_video_tx(&mut tx, video).await?;
        let pending: Vec<String> = sqlx::query(
            "SELECT id FROM encodings WHERE video_id = $1 AND status = 'processing' \
             ORDER BY created_at, id",
        )
        .bind(&video.id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        if video.status == "success" {
            for id in &pending {
                super::jobs::enqueue(
                    &mut tx,
                    super::jobs::JobKind::Encode,
                    video,
                    Some(id),
                    priority,
                )
                .await?;
            }
        } else {
            sqlx::query(
                "UPDATE encodings SET status = 'fail', error_class = 'VideoStatusInvalid', \
                 error_message = $2, updated_at = $3 WHERE video_id = $1 AND status = 'processing'",
            )
            .bind(&video.id)
            .bind(format!(
                "the source video failed: {}",
                video.error_message.as_deref().unwrap_or("unknown error")
            ))
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        let failed = if video.status == "success" {
            &[][..]
        } else {
            &pending[..]
        };
        let events = super::notifications::after_ingest(&mut tx, video, failed).await?;
        tx.commit().await?;
        self.feed.announce(events);
        Ok(true)
    }

    /// Ends an encode job with the encoding's final record, once.
    pub async fn finish_encode(
        &self,
        job: &super::jobs::Job,
        owner: &str,
        encoding: &Encoding,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        if !super::jobs::finish_tx(&mut tx, job, owner).await? {
            return Ok(false);
        }
        super::encodings::update_encoding_tx(&mut tx, encoding).await?;
        let events = super::notifications::after_encode(&mut tx, encoding).await?;
        tx.commit().await?;
        self.feed.announce(events);
        Ok(true)
    }
}
