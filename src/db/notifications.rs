//! The webhook outbox (spec §6). An event is a row written in the same
//! transaction as the state change that causes it, so a crash keeps both or
//! neither. The delivery loop (`notify::deliver`) claims due rows with a
//! lease, like jobs, so several processes can share the outbox.
//!
//! Order: a video's events carry a `seq` allocated under a lock on the
//! video's row, and an event is not claimed while an earlier event of its
//! video is still pending. Progress events are the exception that keeps a
//! failing receiver from stalling a video for a day: one that is waiting
//! (not in flight) is retired as soon as it is stale — a later event of its
//! encoding exists, or the encoding has ended.

use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::videos::ListQuery;
use super::{Backend, Db, DbError};
use crate::domain::ids::{new_id, new_secret};
use crate::domain::model::{Encoding, NotificationEvents, Video};
use crate::domain::time::{Millis, now_ms};
use crate::notify::event::Event;
use crate::notify::feed::Recorded;

/// One row of the delivery log.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub cloud_id: String,
    pub video_id: String,
    pub encoding_id: Option<String>,
    pub event: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    /// HTTP status of the last answer; none when there was no answer.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Millis,
    pub first_attempt_at: Option<Millis>,
    pub delivered_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A delivery claimed for one attempt.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: String,
    pub cloud_id: String,
    pub video_id: String,
    pub event: String,
    /// The form body, fixed when the event was recorded.
    pub body: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub first_attempt_at: Millis,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settle {
    Delivered {
        status: u16,
    },
    /// Failed; try again at `at`.
    Retry {
        status: Option<u16>,
        error: String,
        at: Millis,
    },
    /// Failed for the last time.
    Dead {
        status: Option<u16>,
        error: String,
    },
}

const DELIVERY_COLUMNS: &str = "id, cloud_id, video_id, encoding_id, event, status, attempts, \
    last_status, last_error, next_attempt_at, first_attempt_at, delivered_at, created_at, updated_at";

/// No earlier event of the same video is still pending (ordering per video).
const IN_ORDER: &str = "NOT EXISTS (SELECT 1 FROM notifications b \
    WHERE b.video_id = n.video_id AND b.seq < n.seq AND b.status = 'pending')";

const SUPERSEDED: &str =
    "superseded: a later event of this encoding was recorded, or the encoding ended";

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, DbError> {
    Ok(Delivery {
        id: row.try_get("id")?,
        cloud_id: row.try_get("cloud_id")?,
        video_id: row.try_get("video_id")?,
        encoding_id: row.try_get("encoding_id")?,
        event: row.try_get("event")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        first_attempt_at: row.try_get("first_attempt_at")?,
        delivered_at: row.try_get("delivered_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Events of an ended ingest: `video-created`, an `encoding-complete` for
/// each encoding that failed with the video, and `video-encoded` when that
/// left nothing running.
pub(crate) async fn after_ingest(
    tx: &mut Transaction<'_, Any>,
    video: &Video,
    failed_encodings: &[String],
) -> Result<Recorded, DbError> {
    lock_video(tx, &video.id).await?;
    let ids = encoding_ids(tx, &video.id).await?;
    let mut events = vec![Event::VideoCreated {
        video_id: video.id.clone(),
        encoding_ids: ids.clone(),
    }];
    events.extend(failed_encodings.iter().map(|id| Event::EncodingComplete {
        video_id: video.id.clone(),
        encoding_id: id.clone(),
    }));
    if video_finished(tx, &video.id).await? {
        events.push(Event::VideoEncoded {
            video_id: video.id.clone(),
            encoding_ids: ids,
        });
    }
    record(tx, &video.cloud_id, &video.id, events).await
}

/// Events of an ended encoding: `encoding-complete`, and `video-encoded`
/// when it was the last one running.
pub(crate) async fn after_encode(
    tx: &mut Transaction<'_, Any>,
    encoding: &Encoding,
) -> Result<Recorded, DbError> {
    lock_video(tx, &encoding.video_id).await?;
    let mut events = vec![Event::EncodingComplete {
        video_id: encoding.video_id.clone(),
        encoding_id: encoding.id.clone(),
    }];
    if let Some(done) = video_encoded(tx, &encoding.video_id).await? {
        events.push(done);
    }
    record(tx, &encoding.cloud_id, &encoding.video_id, events).await
}

/// Events of a cancellation: `video-encoded` when it ended the last
/// running encoding. Panda sends no `encoding-complete` for a cancel.
pub(crate) async fn after_cancel(
    tx: &mut Transaction<'_, Any>,
    encoding_id: &str,
    cancelled: bool,
) -> Result<Recorded, DbError> {
    if !cancelled {
        return Ok(Recorded::default());
    }
    let Some(row) = sqlx::query("SELECT video_id, cloud_id FROM encodings WHERE id = $1")
        .bind(encoding_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(Recorded::default());
    };
    let video_id: String = row.try_get("video_id")?;
    let cloud_id: String = row.try_get("cloud_id")?;
    lock_video(tx, &video_id).await?;
    let events = video_encoded(tx, &video_id).await?.into_iter().collect();
    record(tx, &cloud_id, &video_id, events).await
}

/// Takes the video row's lock with a write that changes nothing. On
/// PostgreSQL this serialises the transactions of one video, so two
/// encodings ending at once cannot both miss being the last one, and `seq`
/// is allocated one after the other. (SQLite has one writer at a time.)
async fn lock_video(tx: &mut Transaction<'_, Any>, video_id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE videos SET updated_at = updated_at WHERE id = $1")
        .bind(video_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn encoding_ids(
    tx: &mut Transaction<'_, Any>,
    video_id: &str,
) -> Result<Vec<String>, DbError> {
    sqlx::query("SELECT id FROM encodings WHERE video_id = $1 ORDER BY created_at, id")
        .bind(video_id)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect()
}

/// True when the video is final and none of its encodings is running.
async fn video_finished(tx: &mut Transaction<'_, Any>, video_id: &str) -> Result<bool, DbError> {
    let row = sqlx::query(
        "SELECT v.status AS status, (SELECT COUNT(*) FROM encodings e \
         WHERE e.video_id = v.id AND e.status = 'processing') AS running \
         FROM videos v WHERE v.id = $1",
    )
    .bind(video_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let status: String = row.try_get("status")?;
    let running: i64 = row.try_get("running")?;
    Ok(status != "processing" && running == 0)
}

/// `video-encoded` with every encoding of the video, when it is finished.
async fn video_encoded(
    tx: &mut Transaction<'_, Any>,
    video_id: &str,
) -> Result<Option<Event>, DbError> {
    if !video_finished(tx, video_id).await? {
        return Ok(None);
    }
    Ok(Some(Event::VideoEncoded {
        video_id: video_id.to_string(),
        encoding_ids: encoding_ids(tx, video_id).await?,
    }))
}

/// The cloud's webhook URL and chosen events; none when there is no URL.
async fn webhook_settings<'e, E>(
    executor: E,
    cloud_id: &str,
) -> Result<Option<NotificationEvents>, DbError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let row = sqlx::query("SELECT notify_url, notify_events FROM clouds WHERE id = $1")
        .bind(cloud_id)
        .fetch_optional(executor)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let url: Option<String> = row.try_get("notify_url")?;
    if url.is_none_or(|u| u.is_empty()) {
        return Ok(None);
    }
    let events: String = row.try_get("notify_events")?;
    Ok(Some(serde_json::from_str(&events).unwrap_or_default()))
}

/// Puts the events the cloud wants into the outbox, in order. All of
/// `events` are returned for the live stream, wanted or not.
async fn record(
    tx: &mut Transaction<'_, Any>,
    cloud_id: &str,
    video_id: &str,
    events: Vec<Event>,
) -> Result<Recorded, DbError> {
    let wanted = match webhook_settings(&mut **tx, cloud_id).await? {
        Some(settings) => events.iter().filter(|e| e.enabled_in(&settings)).collect(),
        None => Vec::new(),
    };
    if !wanted.is_empty() {
        let mut seq: i64 = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM notifications WHERE video_id = $1",
        )
        .bind(video_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("next")?;
        let now = now_ms();
        for event in &wanted {
            insert(tx, cloud_id, event, seq, now).await?;
            seq += 1;
        }
    }
    Ok(Recorded {
        cloud_id: cloud_id.to_string(),
        queued: !wanted.is_empty(),
        events,
    })
}

async fn insert(
    tx: &mut Transaction<'_, Any>,
    cloud_id: &str,
    event: &Event,
    seq: i64,
    now: Millis,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO notifications (id, cloud_id, video_id, encoding_id, seq, event, body, \
         status, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $8)",
    )
    .bind(new_id())
    .bind(cloud_id)
    .bind(event.video_id())
    .bind(event.encoding_id())
    .bind(seq)
    .bind(event.name())
    .bind(event.form_body())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Db {
    /// Queues an `encoding-progress` event when the cloud wants them and the
    /// encoding is still running. True when one was queued.
    pub async fn record_progress(
        &self,
        video_id: &str,
        encoding_id: &str,
        progress: u8,
    ) -> Result<bool, DbError> {
        // Checked first, outside the transaction, so the common case (the
        // cloud does not want progress) writes nothing.
        let cloud_id: Option<String> = sqlx::query("SELECT cloud_id FROM encodings WHERE id = $1")
            .bind(encoding_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("cloud_id"))
            .transpose()?;
        let Some(cloud_id) = cloud_id else {
            return Ok(false);
        };
        let wants = webhook_settings(&self.pool, &cloud_id)
            .await?
            .is_some_and(|s| s.encoding_progress);
        if !wants {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        // Write first: a SQLite transaction that reads before its first
        // write can fail to upgrade when another writer got in between.
        lock_video(&mut tx, video_id).await?;
        let running =
            sqlx::query("SELECT 1 AS x FROM encodings WHERE id = $1 AND status = 'processing'")
                .bind(encoding_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        if !running {
            return Ok(false);
        }
        let event = Event::EncodingProgress {
            video_id: video_id.to_string(),
            encoding_id: encoding_id.to_string(),
            progress,
        };
        let recorded = record(&mut tx, &cloud_id, video_id, vec![event]).await?;
        tx.commit().await?;
        if recorded.queued {
            self.feed.ring();
        }
        Ok(recorded.queued)
    }

    /// Claims the next due delivery whose video has no earlier event
    /// pending, skipping clouds that already have `per_cloud` deliveries in
    /// flight (so one slow receiver cannot take every slot).
    pub async fn claim_delivery(
        &self,
        owner: &str,
        lease: Duration,
        per_cloud: i64,
    ) -> Result<Option<Claimed>, DbError> {
        let now = now_ms();
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE notifications SET lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, $3), \
             updated_at = $3 \
             WHERE id = (SELECT n.id FROM notifications n \
                 WHERE n.status = 'pending' AND n.next_attempt_at <= $3 \
                   AND (n.lease_expires_at IS NULL OR n.lease_expires_at < $3) \
                   AND {IN_ORDER} \
                   AND (SELECT COUNT(*) FROM notifications f WHERE f.cloud_id = n.cloud_id \
                        AND f.status = 'pending' AND f.lease_expires_at >= $3) < $4 \
                 ORDER BY n.next_attempt_at, n.created_at, n.seq LIMIT 1 {lock}) \
             RETURNING id, cloud_id, video_id, event, body, attempts, first_attempt_at"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(owner)
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .bind(per_cloud)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Claimed {
            id: row.try_get("id")?,
            cloud_id: row.try_get("cloud_id")?,
            video_id: row.try_get("video_id")?,
            event: row.try_get("event")?,
            body: row.try_get("body")?,
            attempts: row.try_get("attempts")?,
            first_attempt_at: row
                .try_get::<Option<i64>, _>("first_attempt_at")?
                .unwrap_or(now),
        }))
    }

    /// Records how an attempt ended, if `owner` still holds the lease.
    pub async fn settle_delivery(
        &self,
        id: &str,
        owner: &str,
        outcome: &Settle,
    ) -> Result<bool, DbError> {
        let now = now_ms();
        let (status, last_status, error, next) = match outcome {
            Settle::Delivered { status } => ("delivered", Some(*status), None, now),
            Settle::Retry { status, error, at } => ("pending", *status, Some(error), *at),
            Settle::Dead { status, error } => ("dead", *status, Some(error), now),
        };
        let r = sqlx::query(
            "UPDATE notifications SET status = $3, last_status = $4, last_error = $5, \
             next_attempt_at = $6, delivered_at = $7, lease_owner = NULL, \
             lease_expires_at = NULL, updated_at = $8 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'pending'",
        )
        .bind(id)
        .bind(owner)
        .bind(status)
        .bind(last_status.map(i64::from))
        .bind(error)
        .bind(next)
        .bind((status == "delivered").then_some(now))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Retires waiting progress events that are stale (see the module
    /// comment); returns how many.
    pub async fn retire_stale_progress(&self) -> Result<u64, DbError> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE notifications SET status = 'dead', last_error = $2, updated_at = $1 \
             WHERE status = 'pending' AND event = 'encoding-progress' \
               AND (lease_expires_at IS NULL OR lease_expires_at < $1) \
               AND (EXISTS (SELECT 1 FROM notifications l \
                        WHERE l.video_id = notifications.video_id \
                          AND l.seq > notifications.seq \
                          AND (l.encoding_id = notifications.encoding_id \
                               OR l.event = 'video-encoded')) \
                    OR NOT EXISTS (SELECT 1 FROM encodings e \
                        WHERE e.id = notifications.encoding_id AND e.status = 'processing'))",
        )
        .bind(now)
        .bind(SUPERSEDED)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// When the next delivery that is not held up by ordering falls due.
    pub async fn next_delivery_due(&self) -> Result<Option<Millis>, DbError> {
        let sql = format!(
            "SELECT MIN(n.next_attempt_at) AS due FROM notifications n \
             WHERE n.status = 'pending' \
               AND (n.lease_expires_at IS NULL OR n.lease_expires_at < $1) AND {IN_ORDER}"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(now_ms())
            .fetch_one(&self.pool)
            .await?
            .try_get("due")
    }

    /// The delivery log of a cloud, newest first (filters come from `q`).
    pub async fn list_deliveries(&self, q: &ListQuery) -> Result<(Vec<Delivery>, i64), DbError> {
        let wh = q.where_clause();
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM notifications {wh} \
             ORDER BY created_at DESC, seq DESC, id {}",
            q.limit_offset()
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (_, v) in &q.filters {
            query = query.bind(v.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut count = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM notifications {wh}"
        )));
        for (_, v) in &q.filters {
            count = count.bind(v.clone());
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;
        let list = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<_, _>>()?;
        Ok((list, total))
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>, DbError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM notifications WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| delivery_from_row(&r))
        .transpose()
    }

    /// Queues a delivered or dead event again with a fresh retry window.
    /// False when it is still pending.
    pub async fn redeliver(&self, id: &str) -> Result<bool, DbError> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE notifications SET status = 'pending', attempts = 0, first_attempt_at = NULL, \
             next_attempt_at = $2, delivered_at = NULL, lease_owner = NULL, \
             lease_expires_at = NULL, updated_at = $2 \
             WHERE id = $1 AND status IN ('delivered', 'dead')",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let queued = r.rows_affected() == 1;
        if queued {
            self.feed.ring();
        }
        Ok(queued)
    }

    /// The cloud's webhook secret. Clouds made before secrets existed get
    /// one on first use; the conditional write keeps two processes doing
    /// that at once from handing out different secrets.
    pub async fn webhook_secret(&self, cloud_id: &str) -> Result<Option<String>, DbError> {
        let read = || async {
            let row = sqlx::query("SELECT webhook_secret FROM clouds WHERE id = $1")
                .bind(cloud_id)
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| r.try_get::<Option<String>, _>("webhook_secret"))
                .transpose()
                .map(Option::flatten)
        };
        if let Some(secret) = read().await? {
            return Ok(Some(secret));
        }
        sqlx::query(
            "UPDATE clouds SET webhook_secret = $2 WHERE id = $1 AND webhook_secret IS NULL",
        )
        .bind(cloud_id)
        .bind(new_secret())
        .execute(&self.pool)
        .await?;
        read().await
    }
}
