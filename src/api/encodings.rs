//! `/encodings…` (spec §3.3).

use axum::response::Response;

use super::error::{ApiError, ApiResult};
use super::request::Ctx;
use super::{list_body, ok, paging, views};
use crate::db::videos::ListQuery;
use crate::domain::model::Encoding;
use crate::storage::{Storage, StorageError};

pub async fn list(ctx: &Ctx) -> ApiResult<Response> {
    let mut filters = Vec::new();
    if let Some(v) = ctx.params.value("video_id") {
        filters.push(("video_id", v.to_string()));
    }
    list_filtered(ctx, filters).await
}

/// Lists the cloud's encodings with the common filters (status, profile_id,
/// profile_name) on top of `filters`.
pub async fn list_filtered(
    ctx: &Ctx,
    mut filters: Vec<(&'static str, String)>,
) -> ApiResult<Response> {
    let cloud = ctx.cloud()?;
    filters.insert(0, ("cloud_id", cloud.id.clone()));
    for key in ["status", "profile_id", "profile_name"] {
        if let Some(v) = ctx.params.value(key) {
            filters.push((key, v.to_string()));
        }
    }
    let (page, per_page) = paging(ctx);
    let q = ListQuery {
        filters,
        page,
        per_page,
    };
    let (list, total) = ctx.app.db.list_encodings(&q).await?;
    list_body(
        ctx,
        "encodings",
        list.iter().map(views::encoding).collect(),
        total,
    )
}

/// An encoding of the request's cloud, or 404.
pub async fn find(ctx: &Ctx, id: &str) -> ApiResult<Encoding> {
    let cloud = ctx.cloud()?;
    match ctx.app.db.encoding(id).await? {
        Some(e) if e.cloud_id == cloud.id => Ok(e),
        _ => Err(ApiError::not_found("Encoding", id)),
    }
}

pub async fn show(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    ok(views::encoding(&find(ctx, id).await?))
}

/// `POST /encodings.json`: adds an encoding to an existing video.
pub async fn create(ctx: &Ctx) -> ApiResult<Response> {
    let cloud = ctx.cloud()?;
    let video_id = ctx.params.value("video_id").ok_or_else(|| {
        ApiError::bad_request("All required parameters were not supplied: video_id")
    })?;
    let profile_key = ["profile_id", "profile_name", "profile"]
        .iter()
        .find_map(|k| ctx.params.value(k))
        .ok_or_else(|| {
            ApiError::bad_request(
                "All required parameters were not supplied: profile_id or profile_name",
            )
        })?;
    let video = super::videos::find(ctx, video_id).await?;
    let profile = ctx
        .app
        .db
        .profile_by_id_or_name(&cloud.id, profile_key)
        .await?
        .ok_or_else(|| ApiError::not_found("Profile", profile_key))?;
    let encoding = super::videos::new_encoding(&video, &profile)?;
    ctx.app
        .db
        .add_encoding(&encoding, &video, cloud.priority)
        .await?;
    ctx.app.wake_workers();
    ok(views::encoding(&encoding))
}

/// Stops an encoding that is still running or queued.
pub async fn cancel_running(ctx: &Ctx, e: &Encoding) -> ApiResult<bool> {
    let cancelled = ctx.app.db.cancel_encoding(&e.id).await?;
    ctx.app.cancel_local(&e.id);
    Ok(cancelled)
}

pub async fn cancel(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let e = find(ctx, id).await?;
    let cancelled = cancel_running(ctx, &e).await?;
    ok(serde_json::json!({ "canceled": cancelled }))
}

pub async fn retry(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let cloud = ctx.cloud()?;
    let e = find(ctx, id).await?;
    let video = super::videos::find(ctx, &e.video_id).await?;
    // A failed video cannot be encoded; a video still being ingested queues
    // the encoding itself when it is ready.
    let retried = video.status != "fail"
        && ctx
            .app
            .db
            .retry_encoding(&e, &video, cloud.priority)
            .await?;
    if retried {
        ctx.app.wake_workers();
    }
    ok(serde_json::json!({ "retried": retried }))
}

pub async fn delete(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let e = find(ctx, id).await?;
    cancel_running(ctx, &e).await?;
    delete_objects(ctx.app.storage(ctx.cloud()?).as_ref(), &e).await?;
    ctx.app.db.delete_encoding(&e.id).await?;
    ok(serde_json::json!({ "deleted": true }))
}

/// Removes every object an encoding may have written: its files, its
/// screenshots and its failure log.
pub async fn delete_objects(storage: &dyn Storage, e: &Encoding) -> Result<(), StorageError> {
    for key in &e.files {
        storage.delete(key).await?;
    }
    let shots = e
        .profile_spec
        .resolve()
        .map(|r| r.frame_count)
        .unwrap_or(7)
        .clamp(7, 1000);
    for n in 1..=shots {
        storage.delete(&format!("{}_{n}.jpg", e.path)).await?;
    }
    storage.delete(&format!("{}.log", e.path)).await
}
