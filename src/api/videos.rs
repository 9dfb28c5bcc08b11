//! `/videos…` (spec §3.2).

use axum::response::Response;

use super::error::{ApiError, ApiResult};
use super::request::{Ctx, Spooled};
use super::{list_body, ok, paging, views};
use crate::app::App;
use crate::db::videos::ListQuery;
use crate::domain::ids::new_id;
use crate::domain::model::{Cloud, Encoding, Profile, Video};
use crate::domain::path_format::{self, PathValues};
use crate::domain::time::{date_only, now_ms};

pub async fn list(ctx: &Ctx) -> ApiResult<Response> {
    let cloud = ctx.cloud()?;
    let (page, per_page) = paging(ctx);
    let mut filters = vec![("cloud_id", cloud.id.clone())];
    if let Some(status) = ctx.params.value("status") {
        filters.push(("status", status.to_string()));
    }
    let q = ListQuery {
        filters,
        page,
        per_page,
    };
    let (videos, total) = ctx.app.db.list_videos(&q).await?;
    list_body(
        ctx,
        "videos",
        videos.iter().map(views::video).collect(),
        total,
    )
}

/// A video of the request's cloud, or 404.
pub async fn find(ctx: &Ctx, id: &str) -> ApiResult<Video> {
    let cloud = ctx.cloud()?;
    match ctx.app.db.video(id).await? {
        Some(v) if v.cloud_id == cloud.id => Ok(v),
        _ => Err(ApiError::not_found("Video", id)),
    }
}

pub async fn show(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    ok(views::video(&find(ctx, id).await?))
}

pub async fn encodings(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let video = find(ctx, id).await?;
    super::encodings::list_filtered(ctx, vec![("video_id", video.id)]).await
}

pub async fn metadata(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let video = find(ctx, id).await?;
    let facts = video
        .facts
        .as_deref()
        .and_then(|f| serde_json::from_str::<crate::media::probe::MediaFacts>(f).ok());
    let map = facts
        .map(|f| crate::media::probe::metadata_json(&f))
        .unwrap_or_default();
    ok(serde_json::Value::Object(map))
}

pub async fn delete(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let video = find(ctx, id).await?;
    let storage = ctx.app.storage(ctx.cloud()?);
    let encodings = ctx.app.db.encodings_of_video(&video.id).await?;
    for e in &encodings {
        super::encodings::cancel_running(ctx, e).await?;
        super::encodings::delete_objects(storage.as_ref(), e).await?;
    }
    storage.delete(&video.original_key()).await?;
    storage.delete(&format!("{}_1.jpg", video.path)).await?;
    ctx.app.db.delete_video(&video.id).await?;
    ok(serde_json::json!({ "deleted": true }))
}

/// `DELETE /videos/:id/source.json` (spec §3.2 V6): removes only the
/// original from storage. The video stays; encodings queued or retried later
/// fail with `FileNotFound`, which the workers report for a missing original.
pub async fn delete_source(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let video = find(ctx, id).await?;
    let storage = ctx.app.storage(ctx.cloud()?);
    storage.delete(&video.original_key()).await?;
    ok(serde_json::json!({ "deleted": true }))
}

/// The profiles a new video is encoded with: `profiles` names or ids, `none`,
/// or every profile of the cloud when absent (spec §3.2 V3). `default_all`
/// is false for upload sessions, which encode nothing unless asked (V4).
pub async fn requested_profiles(ctx: &Ctx, default_all: bool) -> ApiResult<Vec<Profile>> {
    let cloud = ctx.cloud()?;
    let use_all = ctx.params.bool("use_all_profiles")?.unwrap_or(default_all);
    match ctx.params.value("profiles") {
        Some(list) if list.trim() == "none" => Ok(Vec::new()),
        Some(list) => {
            let mut out: Vec<Profile> = Vec::new();
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let p = ctx
                    .app
                    .db
                    .profile_by_id_or_name(&cloud.id, name)
                    .await?
                    .ok_or_else(|| ApiError::not_found("Profile", name))?;
                if !out.iter().any(|o| o.id == p.id) {
                    out.push(p);
                }
            }
            Ok(out)
        }
        None if use_all => {
            let mut all = ctx.app.db.profiles(&cloud.id).await?;
            all.sort_by_key(|p| p.created_at);
            Ok(all)
        }
        None => Ok(Vec::new()),
    }
}

/// Checks `path_format` and `payload` (spec §3.2, §7).
pub fn path_format_and_payload(ctx: &Ctx) -> ApiResult<(Option<String>, Option<String>)> {
    let path_format = ctx.params.value("path_format").map(str::to_string);
    if let Some(pf) = &path_format {
        path_format::validate(pf).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let payload = ctx.params.value("payload").map(str::to_string);
    if payload.as_ref().is_some_and(|p| p.chars().count() > 256) {
        return Err(ApiError::bad_request(
            "payload is longer than 256 characters",
        ));
    }
    Ok((path_format, payload))
}

/// The basename of a client-supplied file name or URL path (spec §3.2 V4).
pub fn base_name(name: &str) -> String {
    let name = name.split(['?', '#']).next().unwrap_or(name);
    name.rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect()
}

/// `.ext` of a file name, lowercased and kept to safe characters; `""` if none.
pub fn extname_of(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= 10
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!(".{}", ext.to_ascii_lowercase())
        }
        _ => String::new(),
    }
}

/// A new video record (not yet stored).
pub fn new_video(
    cloud_id: &str,
    original_filename: Option<String>,
    source_url: Option<String>,
    path_format: Option<String>,
    payload: Option<String>,
) -> ApiResult<Video> {
    let id = new_id();
    let now = now_ms();
    let name = original_filename.clone().unwrap_or_default();
    let extname = extname_of(&name);
    let stem = name
        .strip_suffix(extname.as_str())
        .unwrap_or(&name)
        .to_string();
    let date = date_only(now);
    let values = PathValues {
        id: &id,
        video_id: &id,
        original: &stem,
        date: &date,
        profile: "original",
        kind: "original",
        resolution: "original",
    };
    let pattern = path_format.as_deref().unwrap_or(path_format::DEFAULT);
    let path =
        path_format::expand(pattern, &values).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Video {
        id,
        cloud_id: cloud_id.to_string(),
        status: "processing".into(),
        original_filename,
        extname,
        path,
        source_url,
        payload,
        path_format,
        created_at: now,
        updated_at: now,
        ..Default::default()
    })
}

/// A new encoding of `video` in `profile`, queued (`processing`), or failed
/// with `VideoStatusInvalid` when the video already failed (spec §3.3 E3).
pub fn new_encoding(video: &Video, profile: &Profile) -> ApiResult<Encoding> {
    let id = new_id();
    let now = now_ms();
    let resolved = profile.spec.resolve().ok();
    let extname = resolved
        .as_ref()
        .map(|r| r.extname.clone())
        .or_else(|| profile.spec.extname.clone())
        .unwrap_or_default();
    let (width, height) = resolved
        .as_ref()
        .map(|r| (r.width, r.height))
        .unwrap_or((profile.spec.width, profile.spec.height));
    let profile_name = profile.name.clone().unwrap_or_else(|| profile.id.clone());
    let resolution = match (width, height) {
        (Some(w), Some(h)) => format!("{w}x{h}"),
        _ => "original".to_string(),
    };
    let name = video.original_filename.clone().unwrap_or_default();
    let stem = name.strip_suffix(video.extname.as_str()).unwrap_or(&name);
    let date = date_only(video.created_at);
    let values = PathValues {
        id: &id,
        video_id: &video.id,
        original: stem,
        date: &date,
        profile: &profile_name,
        kind: "encodings",
        resolution: &resolution,
    };
    let pattern = profile
        .spec
        .path_format
        .as_deref()
        .or(video.path_format.as_deref())
        .unwrap_or(path_format::DEFAULT);
    let path =
        path_format::expand(pattern, &values).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let failed = video.status == "fail";
    Ok(Encoding {
        id,
        video_id: video.id.clone(),
        cloud_id: video.cloud_id.clone(),
        profile_id: profile.id.clone(),
        profile_name,
        profile_spec: profile.spec.clone(),
        status: if failed { "fail" } else { "processing" }.into(),
        extname,
        path,
        width,
        height,
        error_class: failed.then(|| "VideoStatusInvalid".to_string()),
        error_message: failed
            .then(|| "the source video failed, so it cannot be encoded".to_string()),
        created_at: now,
        updated_at: now,
        ..Default::default()
    })
}

/// `POST /videos.json`: a multipart `file`, a raw legacy upload, or a
/// `source_url` to fetch.
pub async fn create(mut ctx: Ctx) -> ApiResult<Response> {
    let cloud = ctx.cloud()?.clone();
    let upload = ctx.upload.take();
    let source_url = ctx.params.value("source_url").map(fix_double_escaped);
    if upload.is_none() && source_url.is_none() {
        return Err(ApiError::bad_request(
            "All required parameters were not supplied: file or source_url",
        ));
    }
    if let Some(file) = &upload
        && file.size as i64 > ctx.account.file_size_limit
    {
        return Err(ApiError::too_large(ctx.account.file_size_limit));
    }
    if let Some(url) = &source_url {
        crate::worker::fetch::check_url_syntax(url)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let (path_format, payload) = path_format_and_payload(&ctx)?;
    let profiles = requested_profiles(&ctx, true).await?;
    let original_filename = match (&upload, &source_url) {
        (Some(f), _) => f.file_name.as_deref().map(base_name),
        (None, Some(url)) => Some(base_name(
            url::Url::parse(url)
                .map(|u| u.path().to_string())
                .as_deref()
                .unwrap_or(url),
        )),
        (None, None) => None,
    }
    .filter(|n| !n.is_empty());
    let mut video = new_video(
        &cloud.id,
        original_filename,
        source_url,
        path_format,
        payload,
    )?;
    let encodings = profiles
        .iter()
        .map(|p| new_encoding(&video, p))
        .collect::<ApiResult<Vec<_>>>()?;
    let original = upload.map(Original::Spooled);
    create_with_original(&ctx.app, &cloud, &mut video, &encodings, original).await?;
    ok(views::video(&video))
}

/// Where the original of a new video comes from.
pub enum Original {
    /// A file spooled with the request (`POST /videos.json`).
    Spooled(Spooled),
    /// A complete upload session (spec §5.6): its partial object becomes the
    /// original, and the session is marked complete in the same transaction
    /// that records the video. `lease` is the session's write lease, held by
    /// the caller.
    Session {
        id: String,
        lease: String,
        storage_state: String,
        size: u64,
    },
}

/// Stores the original (when uploaded), records the video, its encodings and
/// its ingest job, and wakes a worker. Shared with upload sessions.
pub async fn create_with_original(
    app: &App,
    cloud: &Cloud,
    video: &mut Video,
    encodings: &[Encoding],
    original: Option<Original>,
) -> ApiResult<()> {
    let storage = app.storage(cloud);
    let key = video.original_key();
    match &original {
        Some(Original::Spooled(file)) => {
            video.file_size = Some(file.size as i64);
            storage.put_file(&key, &file.path).await?;
        }
        Some(Original::Session {
            storage_state,
            size,
            ..
        }) => {
            video.file_size = Some(*size as i64);
            storage.partial_complete(storage_state, *size, &key).await?;
        }
        None => {}
    }
    let recorded = match &original {
        Some(Original::Session { id, lease, .. }) => app
            .db
            .create_video_from_upload(id, lease, video, encodings, cloud.priority)
            .await
            .map_err(ApiError::from)
            .and_then(|done| done.then_some(()).ok_or_else(super::uploads::lease_lost)),
        _ => app
            .db
            .create_video(video, encodings, cloud.priority)
            .await
            .map_err(ApiError::from),
    };
    if let Err(e) = recorded {
        if original.is_some() {
            let _ = storage.delete(&key).await;
        }
        return Err(e);
    }
    tracing::info!(video_id = %video.id, encodings = encodings.len(), "video received");
    app.wake_workers();
    Ok(())
}

/// The Go client double-escapes values; a `source_url` that arrives as
/// `http%3A%2F%2F…` is decoded once more (spec §10 #5).
fn fix_double_escaped(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http%3a") || lower.starts_with("https%3a") {
        percent_encoding::percent_decode_str(url)
            .decode_utf8_lossy()
            .into_owned()
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_the_basename() {
        assert_eq!(base_name("/home/me/My Movie.MOV"), "My Movie.MOV");
        assert_eq!(base_name("C:\\clips\\a.mp4"), "a.mp4");
        assert_eq!(base_name("/path/clip.mp4?x=1"), "clip.mp4");
        assert_eq!(extname_of("My Movie.MOV"), ".mov");
        assert_eq!(extname_of("noext"), "");
        assert_eq!(extname_of(".hidden"), "");
        assert_eq!(extname_of("evil.m p4"), "");
    }

    #[test]
    fn go_double_escaped_urls_are_decoded_once() {
        assert_eq!(
            fix_double_escaped("http%3A%2F%2Fexample.com%2Fa.mp4"),
            "http://example.com/a.mp4"
        );
        assert_eq!(
            fix_double_escaped("http://x/a%20b.mp4"),
            "http://x/a%20b.mp4"
        );
    }
}
