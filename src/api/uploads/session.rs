//! The engine behind upload locations: loading a session (and noticing its
//! expiry), the write lease that serialises requests, writing a chunk
//! through the storage's partial-object API, and finishing the upload into a
//! video exactly as `POST /videos.json` would (spec §5.6).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

use super::super::error::{ApiError, ApiResult};
use super::super::{videos, views};
use crate::app::App;
use crate::db::Db;
use crate::db::uploads::UploadSession;
use crate::domain::ids::new_id;
use crate::domain::time::now_ms;
use crate::storage::{ByteStream, Storage};

/// How long an expired session is remembered, at least.
const TOMBSTONE: Duration = Duration::from_secs(24 * 3600);
/// How long a write lease lasts without renewal: a process that dies while
/// writing blocks its session for at most this long.
const LEASE: Duration = Duration::from_secs(30);
/// How often a lease is renewed while its request streams.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How long a request waits for another one writing the same session (for
/// example the interrupted chunk a client is resuming after).
const WAIT_FOR_LEASE: Duration = Duration::from_secs(15);

/// A session that exists and has not expired, or 404 naming why not.
pub async fn load(app: &App, id: &str) -> ApiResult<UploadSession> {
    let session = app
        .db
        .upload_session(id)
        .await?
        .ok_or_else(|| ApiError::not_found("UploadSession", id))?;
    if session.expired_at.is_none() && now_ms() - session.updated_at <= ttl_ms(app) {
        return Ok(session);
    }
    expire(app, &session).await?;
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "RecordNotFound",
        format!(
            "Upload session {id} expired after {} s without activity and its data was removed; \
             open a new session with POST /videos/upload.json",
            app.config.uploads.session_ttl_secs
        ),
    ))
}

fn ttl_ms(app: &App) -> i64 {
    app.config.uploads.session_ttl_secs as i64 * 1000
}

/// Marks an inactive session expired and removes its partial data, unless
/// it came back to life (activity or a writer) in the meantime.
async fn expire(app: &App, session: &UploadSession) -> ApiResult<()> {
    let before = now_ms() - ttl_ms(app);
    if !app
        .db
        .mark_upload_session_expired(&session.id, before)
        .await?
    {
        return Ok(());
    }
    if !session.is_complete()
        && let Some(cloud) = app.db.cloud(&session.cloud_id).await?
    {
        app.storage(&cloud)
            .partial_abort(&session.storage_state)
            .await?;
    }
    tracing::info!(upload_session = %session.id, "upload session expired");
    Ok(())
}

/// Expires every inactive session, removing its partial data, and forgets
/// expired sessions after another lifetime (a day at least), until when
/// requests to them are told they expired; returns how many expired.
pub async fn sweep_expired(app: &App) -> ApiResult<usize> {
    let before = now_ms() - ttl_ms(app);
    let expired = app.db.expired_upload_sessions(before).await?;
    for session in &expired {
        expire(app, session).await?;
    }
    let keep_ms = ttl_ms(app).max(TOMBSTONE.as_millis() as i64);
    app.db
        .purge_expired_upload_sessions(now_ms() - keep_ms)
        .await?;
    Ok(expired.len())
}

/// Sweeps expired sessions periodically until `shutdown` (spec §5.2: a
/// session lives 24 h after its last activity by default).
pub fn spawn_sweeper(
    app: Arc<App>,
    shutdown: tokio_util::sync::CancellationToken,
) -> JoinHandle<()> {
    let ttl = Duration::from_secs(app.config.uploads.session_ttl_secs);
    let every = (ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(600));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = sweep_expired(&app).await {
                tracing::warn!(error = %e.message, "sweeping expired upload sessions failed");
            }
        }
    })
}

/// The session's write lease, renewed in the background while held. It is
/// released when dropped, so a request that fails or whose client goes away
/// never blocks the session.
pub struct Lease {
    db: Db,
    session_id: String,
    pub token: String,
    lost: Arc<AtomicBool>,
    heartbeat: JoinHandle<()>,
    held: bool,
}

impl Lease {
    /// Waits for the lease of session `id`; 409 if another request keeps it,
    /// 404 if the session went away.
    pub async fn take(app: &App, id: &str) -> ApiResult<Lease> {
        let token = new_id();
        let lease_ms = LEASE.as_millis() as i64;
        let deadline = Instant::now() + WAIT_FOR_LEASE;
        while !app.db.take_upload_lease(id, &token, lease_ms).await? {
            if app.db.upload_session(id).await?.is_none() {
                return Err(ApiError::not_found("UploadSession", id));
            }
            if Instant::now() >= deadline {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "UploadInProgress",
                    format!(
                        "another request has been writing to upload session {id} for more \
                         than {} s; retry once it has finished",
                        WAIT_FOR_LEASE.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(renew(
            app.db.clone(),
            id.to_string(),
            token.clone(),
            lost.clone(),
        ));
        Ok(Lease {
            db: app.db.clone(),
            session_id: id.to_string(),
            token,
            lost,
            heartbeat,
            held: true,
        })
    }

    /// False once a renewal failed: the session was aborted or expired, or
    /// another request took over after we stalled.
    pub fn is_held(&self) -> bool {
        !self.lost.load(Ordering::Relaxed)
    }

    pub async fn release(mut self) {
        self.heartbeat.abort();
        if let Err(e) = self
            .db
            .release_upload_lease(&self.session_id, &self.token)
            .await
        {
            tracing::warn!(error = %e, "could not release an upload session's lease");
        }
        self.held = false;
    }

    /// The lease was released by the transaction that completed the upload.
    pub fn released_by_completion(mut self) {
        self.heartbeat.abort();
        self.held = false;
    }
}

async fn renew(db: Db, id: String, token: String, lost: Arc<AtomicBool>) {
    let lease_ms = LEASE.as_millis() as i64;
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        if !matches!(db.renew_upload_lease(&id, &token, lease_ms).await, Ok(true)) {
            lost.store(true, Ordering::Relaxed);
            return;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
        // Dropped without `release`: the request failed or its client went
        // away. Release in the background (not at runtime shutdown, when the
        // lease simply expires).
        if self.held
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (db, id, token) = (self.db.clone(), self.session_id.clone(), self.token.clone());
            rt.spawn(async move {
                let _ = db.release_upload_lease(&id, &token).await;
            });
        }
    }
}

/// The 409 for a write whose lease was lost before it could be recorded.
pub fn lease_lost() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "UploadInProgress",
        "the upload session was aborted, expired or taken over by another request while this \
         chunk was written; query its status (Content-Range: bytes */L) and resume",
    )
}

/// One write to a session: where the body starts, the body, and what the
/// request promised about it.
pub struct Write {
    /// Offset of the body's first byte.
    pub start: u64,
    pub body: ByteStream,
    /// The body must be the whole file (no Content-Range, or multipart).
    pub whole: bool,
    /// The file name of a multipart part, which wins over the session's.
    pub file_name: Option<String>,
}

/// Where a session stands after a request.
pub enum Outcome {
    /// Still incomplete: this many bytes are stored.
    Partial(u64),
    /// Complete: the video JSON, and the file's size.
    Complete { video: serde_json::Value, size: u64 },
    /// Thrown away by `DELETE`.
    Aborted,
}

/// Writes one chunk under the session's lease and finishes the upload when
/// its last byte arrived. Keeps only bytes from `received` on, compares a
/// re-sent overlap with what is stored, and stores nothing across a gap
/// (spec §5.3 b). Bad input leaves `received` where it was.
pub async fn write(app: &App, id: &str, w: Write) -> ApiResult<Outcome> {
    let lease = Lease::take(app, id).await?;
    let session = load(app, id).await?;
    let received = session.received as u64;
    if session.is_complete() || w.start > received {
        // A re-sent chunk of a finished upload, or a gap (the client
        // resynchronises from the Range we answer): nothing is stored, but
        // the body is read so the connection stays usable.
        lease.release().await;
        drain(w.body, session.file_size as u64).await;
        return outcome_of(app, &session).await;
    }
    let (now, state) = store(app, &session, w.start, w.body, w.whole).await?;
    if !lease.is_held()
        || !app
            .db
            .commit_upload_bytes(id, &lease.token, received as i64, now as i64, &state)
            .await?
    {
        return Err(lease_lost());
    }
    let size = session.file_size as u64;
    if now < size {
        lease.release().await;
        return Ok(Outcome::Partial(now));
    }
    let session = UploadSession {
        received: now as i64,
        storage_state: state,
        ..session
    };
    finish(app, session, lease, w.file_name).await
}

/// Streams a body starting at `start` into the session's partial object:
/// the overlap below `received` is compared and dropped, the rest appended,
/// never past `file_size`. Returns the new stored length and storage state,
/// to be committed by the caller; on an error nothing is to be committed.
async fn store(
    app: &App,
    session: &UploadSession,
    start: u64,
    body: ByteStream,
    whole: bool,
) -> ApiResult<(u64, String)> {
    let cloud = app
        .db
        .cloud(&session.cloud_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Cloud", &session.cloud_id))?;
    let storage = app.storage(&cloud);
    let (rest, overlap) = skip_overlap(storage.as_ref(), session, start, body).await?;
    let (received, size) = (session.received as u64, session.file_size as u64);
    let flags = Arc::new(BodyFlags::default());
    let limited = Limited {
        inner: rest,
        left: size - received,
        flags: flags.clone(),
    };
    let written = storage
        .partial_write(&session.storage_state, received, Box::pin(limited))
        .await;
    if flags.overflow.load(Ordering::Relaxed) {
        return Err(ApiError::bad_request(format!(
            "the chunk starting at byte {start} extends beyond the file's last byte {} \
             (file_size {size}); nothing of it was kept",
            size - 1
        )));
    }
    let written = written?;
    metrics::counter!("openpanda_upload_bytes_total").increment(written.bytes);
    let now = received + written.bytes;
    let interrupted = flags.interrupted.load(Ordering::Relaxed);
    if interrupted {
        tracing::info!(upload_session = %session.id, kept = now, "upload interrupted; keeping the bytes received");
    } else if whole && now != size {
        return Err(ApiError::bad_request(format!(
            "the body holds {} bytes but the session's file_size is {size}; send the whole \
             file, or chunks with Content-Range",
            overlap + written.bytes
        )));
    }
    Ok((now, written.state))
}

/// Recovers a session whose bytes are all stored but whose video was never
/// made (the process stopped in between).
pub async fn finish_stored(app: &App, id: &str) -> ApiResult<Outcome> {
    let lease = Lease::take(app, id).await?;
    let session = load(app, id).await?;
    if session.is_complete() || session.received < session.file_size {
        lease.release().await;
        return outcome_of(app, &session).await;
    }
    finish(app, session, lease, None).await
}

/// Where a session stands, without writing.
pub async fn outcome_of(app: &App, session: &UploadSession) -> ApiResult<Outcome> {
    if session.is_complete() {
        finished(app, session).await
    } else {
        Ok(Outcome::Partial(session.received as u64))
    }
}

/// The video of a complete session, as it is now (spec §5.6: later requests
/// get 200 with the Video JSON).
async fn finished(app: &App, session: &UploadSession) -> ApiResult<Outcome> {
    let video_id = session.video_id.as_deref().unwrap_or_default();
    let video = app
        .db
        .video(video_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Video", video_id))?;
    Ok(Outcome::Complete {
        video: views::video(&video),
        size: session.file_size as u64,
    })
}

/// Creates the video from the complete upload exactly as `POST /videos.json`
/// would, with the session's profiles, path_format and payload.
async fn finish(
    app: &App,
    session: UploadSession,
    lease: Lease,
    file_name: Option<String>,
) -> ApiResult<Outcome> {
    let cloud = app
        .db
        .cloud(&session.cloud_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Cloud", &session.cloud_id))?;
    let mut profiles = Vec::new();
    for id in &session.profile_ids {
        match app.db.profile_by_id_or_name(&cloud.id, id).await? {
            Some(p) => profiles.push(p),
            None => tracing::warn!(
                upload_session = %session.id, profile_id = %id,
                "a profile of the upload session was deleted; no encoding for it"
            ),
        }
    }
    let name = file_name
        .map(|n| videos::base_name(&n))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| session.file_name.clone());
    let mut video = videos::new_video(
        &cloud.id,
        Some(name),
        None,
        session.path_format.clone(),
        session.payload.clone(),
    )?;
    let encodings = profiles
        .iter()
        .map(|p| videos::new_encoding(&video, p))
        .collect::<ApiResult<Vec<_>>>()?;
    let original = videos::Original::Session {
        id: session.id.clone(),
        lease: lease.token.clone(),
        storage_state: session.storage_state.clone(),
        size: session.file_size as u64,
    };
    videos::create_with_original(app, &cloud, &mut video, &encodings, Some(original)).await?;
    lease.released_by_completion();
    tracing::info!(upload_session = %session.id, video_id = %video.id, "upload complete");
    Ok(Outcome::Complete {
        video: views::video(&video),
        size: session.file_size as u64,
    })
}

/// Reads and drops up to `limit` bytes of a body that is not stored.
async fn drain(mut body: ByteStream, limit: u64) {
    let mut seen = 0u64;
    while seen <= limit {
        match body.next().await {
            Some(Ok(frame)) => seen += frame.len() as u64,
            _ => return,
        }
    }
}

/// Consumes the part of the body below the session's `received` mark (a
/// re-sent overlap: [py] and [gem] re-send one byte on resume), checking it
/// equals what is stored. Returns the rest of the body and the overlap size.
async fn skip_overlap(
    storage: &dyn Storage,
    session: &UploadSession,
    start: u64,
    mut body: ByteStream,
) -> ApiResult<(ByteStream, u64)> {
    let received = session.received as u64;
    let mut at = start;
    while at < received {
        let Some(frame) = body.next().await else {
            break;
        };
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("the upload was interrupted: {e}")))?;
        let n = frame.len().min((received - at) as usize);
        let stored = storage.partial_read(&session.storage_state, at, n).await?;
        if let Some(i) = stored.iter().zip(&frame[..n]).position(|(a, b)| a != b) {
            return Err(ApiError::bad_request(format!(
                "byte {} differs from the byte already received at that offset: the chunk \
                 overlaps bytes {start}-{} received before, and re-sent bytes must be \
                 identical; the session keeps its first {received} bytes",
                at + i as u64,
                received - 1
            )));
        }
        at += n as u64;
        if n < frame.len() {
            let rest = futures::stream::once(async move { Ok(frame.slice(n..)) }).chain(body);
            return Ok((Box::pin(rest), at - start));
        }
    }
    Ok((body, at - start))
}

/// What happened to a body while it streamed into storage.
#[derive(Default)]
struct BodyFlags {
    /// It carried bytes beyond `file_size`.
    overflow: AtomicBool,
    /// The client went away mid-body; what arrived before is kept.
    interrupted: AtomicBool,
}

/// A body that stops with an error past `left` bytes and ends quietly when
/// the client goes away, so the bytes that did arrive can be recorded.
struct Limited {
    inner: ByteStream,
    left: u64,
    flags: Arc<BodyFlags>,
}

impl Stream for Limited {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) if chunk.len() as u64 > self.left => {
                self.flags.overflow.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(std::io::Error::other("beyond file_size"))))
            }
            Poll::Ready(Some(Ok(chunk))) => {
                self.left -= chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(_))) => {
                self.flags.interrupted.store(true, Ordering::Relaxed);
                Poll::Ready(None)
            }
            other => other,
        }
    }
}
