//! Upload sessions (spec §5): `POST /videos/upload.json` opens one (§3.2
//! V4) and answers with its location, an unsigned capability URL under
//! `/upload/<id>` that takes the file in chunks (`Content-Range`), in one
//! request, or as a multipart form, from any API process.

mod range;
mod session;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

use super::error::{ApiError, ApiResult};
use super::request::Ctx;
use super::videos;
use crate::app::App;
use crate::db::uploads::UploadSession;
use crate::domain::ids::new_id;
use crate::domain::time::now_ms;
use crate::storage::ByteStream;
use range::{ContentRange, range_header};
use session::{Outcome, Write};

pub use session::{lease_lost, spawn_sweeper, sweep_expired};

/// The scheme a request came in with: the HTTPS listener marks its requests
/// with `Scheme::Https`; unmarked requests came over plain HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// `<scheme>://<host>` as the client reached us (its Host header, or the
/// HTTP/2 authority), so an upload location works from where the client is
/// (spec §3.2 V4: it must be absolute). `fallback` serves requests that name
/// no usable host.
pub fn base_url(parts: &Parts, fallback: &str) -> String {
    let scheme = match parts.extensions.get::<Scheme>() {
        Some(Scheme::Https) => "https",
        _ => "http",
    };
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            let h = parts.headers.get(header::HOST)?.to_str().ok()?;
            h.parse::<axum::http::uri::Authority>()
                .ok()
                .map(|a| a.as_str().to_string())
        })
        .filter(|h| !h.contains('@'));
    match host {
        Some(host) => format!("{scheme}://{host}"),
        None => fallback.trim_end_matches('/').to_string(),
    }
}

/// `POST /videos/upload.json` (spec §3.2 V4): checks what the finished
/// upload will need (profiles, path_format, payload, size limit) now, while
/// the caller can still fix it, and answers 201 `{"id", "location"}`.
pub async fn create(ctx: &Ctx) -> ApiResult<Response> {
    let cloud = ctx.cloud()?;
    let file_size = ctx.params.int("file_size")?;
    let file_name = ctx
        .params
        .value("file_name")
        .map(videos::base_name)
        .filter(|n| !n.is_empty());
    let (file_size, file_name) = match (file_size, file_name) {
        (Some(size), Some(name)) => (size, name),
        (size, name) => {
            let missing: Vec<&str> = [("file_size", size.is_none()), ("file_name", name.is_none())]
                .into_iter()
                .filter_map(|(k, missing)| missing.then_some(k))
                .collect();
            return Err(ApiError::bad_request(format!(
                "All required parameters were not supplied: {}",
                missing.join(", ")
            )));
        }
    };
    if file_size <= 0 {
        return Err(ApiError::bad_request(format!(
            "file_size must be a positive number of bytes, got {file_size}"
        )));
    }
    if file_size > ctx.account.file_size_limit {
        return Err(ApiError::too_large(ctx.account.file_size_limit));
    }
    let (path_format, payload) = videos::path_format_and_payload(ctx)?;
    let profiles = videos::requested_profiles(ctx, false).await?;
    // The storage key this file will get must be valid: fail now, not
    // after the whole file has been sent.
    videos::new_video(
        &cloud.id,
        Some(file_name.clone()),
        None,
        path_format.clone(),
        payload.clone(),
    )?;
    let id = new_id();
    let storage_state = ctx.app.storage(cloud).partial_begin(&id).await?;
    let now = now_ms();
    let session = UploadSession {
        id: id.clone(),
        cloud_id: cloud.id.clone(),
        file_name,
        file_size,
        profile_ids: profiles.into_iter().map(|p| p.id).collect(),
        path_format,
        payload,
        received: 0,
        storage_state,
        video_id: None,
        created_at: now,
        updated_at: now,
        expired_at: None,
    };
    ctx.app.db.insert_upload_session(&session).await?;
    let location = format!("{}/upload/{id}", ctx.base_url);
    let body = serde_json::json!({ "id": id, "location": location });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// Every request to an upload location (`/upload/<id>`; CORS is added by
/// the router's layer).
pub async fn location(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let location = format!("{}/upload/{id}", base_url(&parts, &app.config.public_url()));
    let result = if !is_session_id(&id) {
        Err(ApiError::not_found("UploadSession", &id))
    } else {
        match parts.method {
            Method::PUT | Method::POST => upload(&app, &id, &parts.headers, body).await,
            Method::DELETE => abort(&app, &id).await,
            _ => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!(
                    "{} is not allowed on an upload location; use PUT or POST to upload and \
                     DELETE to abort",
                    parts.method
                ),
            )),
        }
    };
    match result {
        Ok(Outcome::Partial(received)) => incomplete(received, &location),
        Ok(Outcome::Complete { video, size }) => complete(video, size),
        Ok(Outcome::Aborted) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

fn is_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// 204 with the bytes stored so far and the location to use next (spec
/// §5.3: [upl2] sends its next chunk to the `Location` of the last 204).
fn incomplete(received: u64, location: &str) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, v);
    }
    if let Some(range) = range_header(received) {
        headers.insert(header::RANGE, HeaderValue::from_str(&range).expect("ASCII"));
    }
    resp
}

/// 200 with the Video JSON, and the full `Range` ([py] and [gem] read it
/// after a status query, spec §5.3 a).
fn complete(video: serde_json::Value, size: u64) -> Response {
    let mut resp = axum::Json(video).into_response();
    if let Some(range) = range_header(size) {
        resp.headers_mut()
            .insert(header::RANGE, HeaderValue::from_str(&range).expect("ASCII"));
    }
    resp
}

/// `PUT`/`POST` to a location: a status query, a chunk, the whole file, or
/// a multipart form (spec §5.3, §5.5).
async fn upload(app: &App, id: &str, headers: &HeaderMap, body: Body) -> ApiResult<Outcome> {
    let session = session::load(app, id).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        return multipart(app, &session, content_type, body).await;
    }
    let range = match headers.get(header::CONTENT_RANGE) {
        Some(v) => Some(
            ContentRange::parse(v.to_str().unwrap_or("(not text)"))
                .map_err(ApiError::bad_request)?,
        ),
        None => None,
    };
    if let Some(total) = range.and_then(|r| r.total())
        && total != session.file_size as u64
    {
        return Err(ApiError::bad_request(format!(
            "Content-Range states a total of {total} bytes but the session's file_size is {}",
            session.file_size
        )));
    }
    if session.is_complete() {
        return session::outcome_of(app, &session).await;
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match range {
        Some(ContentRange::Query { .. }) => status(app, &session).await,
        Some(ContentRange::Chunk { start, .. }) => {
            check_fits(&session, start, length)?;
            let w = Write {
                start,
                body: byte_stream(body),
                whole: false,
                file_name: None,
            };
            session::write(app, id, w).await
        }
        None => {
            if let Some(n) = length
                && n != session.file_size as u64
            {
                return Err(ApiError::bad_request(format!(
                    "the body holds {n} bytes but the session's file_size is {}; send the \
                     whole file, or chunks with Content-Range",
                    session.file_size
                )));
            }
            let w = Write {
                start: 0,
                body: byte_stream(body),
                whole: true,
                file_name: None,
            };
            session::write(app, id, w).await
        }
    }
}

/// A status query: how much is stored (it counts as activity).
async fn status(app: &App, session: &UploadSession) -> ApiResult<Outcome> {
    app.db.touch_upload_session(&session.id).await?;
    if session.received == session.file_size {
        return session::finish_stored(app, &session.id).await;
    }
    session::outcome_of(app, session).await
}

/// Refuses, before reading it, a chunk that starts or (by its
/// Content-Length) ends beyond the file.
fn check_fits(session: &UploadSession, start: u64, length: Option<u64>) -> ApiResult<()> {
    let size = session.file_size as u64;
    if start >= size {
        return Err(ApiError::bad_request(format!(
            "the chunk starts at byte {start}, beyond the file's last byte {} (file_size {size})",
            size - 1
        )));
    }
    if let Some(n) = length
        && start + n > size
    {
        return Err(ApiError::bad_request(format!(
            "the chunk's {n} bytes at offset {start} extend beyond the file's last byte {} \
             (file_size {size})",
            size - 1
        )));
    }
    Ok(())
}

/// The multipart alternative (spec §5.5): the first part with a filename is
/// the whole file, whatever its field name; other fields are ignored.
async fn multipart(
    app: &App,
    session: &UploadSession,
    content_type: &str,
    body: Body,
) -> ApiResult<Outcome> {
    if session.is_complete() {
        return session::outcome_of(app, session).await;
    }
    let boundary = super::params::multipart_boundary(content_type)
        .ok_or_else(|| ApiError::bad_request("multipart body without a boundary"))?;
    let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
    let bad = |e: multer::Error| ApiError::bad_request(format!("malformed multipart body: {e}"));
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let Some(file_name) = field.file_name().map(str::to_string) else {
            continue;
        };
        let w = Write {
            start: 0,
            body: Box::pin(field.map_err(std::io::Error::other)),
            whole: true,
            file_name: Some(file_name),
        };
        return session::write(app, &session.id, w).await;
    }
    Err(ApiError::bad_request(
        "the multipart body has no file part (a part with a filename)",
    ))
}

/// `DELETE` on a location (spec §5.4): throws the session and its partial
/// data away; 200 with an empty body. A video already made stays.
async fn abort(app: &App, id: &str) -> ApiResult<Outcome> {
    let session = session::load(app, id).await?;
    app.db.delete_upload_session(id).await?;
    if !session.is_complete()
        && let Some(cloud) = app.db.cloud(&session.cloud_id).await?
    {
        app.storage(&cloud)
            .partial_abort(&session.storage_state)
            .await?;
    }
    tracing::info!(upload_session = %id, "upload session aborted");
    Ok(Outcome::Aborted)
}

fn byte_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}
