//! `/profiles…` (spec §3.4): presets with overrides.

use axum::response::Response;

use super::error::{ApiError, ApiResult};
use super::params::Params;
use super::request::Ctx;
use super::{list_body, ok, views};
use crate::domain::ids::new_id;
use crate::domain::model::Profile;
use crate::domain::path_format;
use crate::domain::profile::{AspectMode, PRESETS, ProfileSpec, preset};
use crate::domain::time::now_ms;

pub async fn list(ctx: &Ctx) -> ApiResult<Response> {
    let cloud = ctx.cloud()?;
    let all = ctx.app.db.profiles(&cloud.id).await?;
    let total = all.len() as i64;
    let (page, per_page) = super::paging(ctx);
    let items = all
        .iter()
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .map(views::profile)
        .collect();
    list_body(ctx, "profiles", items, total)
}

pub async fn find(ctx: &Ctx, key: &str) -> ApiResult<Profile> {
    let cloud = ctx.cloud()?;
    ctx.app
        .db
        .profile_by_id_or_name(&cloud.id, key)
        .await?
        .ok_or_else(|| ApiError::not_found("Profile", key))
}

pub async fn show(ctx: &Ctx, key: &str) -> ApiResult<Response> {
    ok(views::profile(&find(ctx, key).await?))
}

pub async fn create(ctx: &Ctx) -> ApiResult<Response> {
    let cloud = ctx.cloud()?;
    let mut spec = apply_params(&ctx.params, ProfileSpec::default())?;
    let preset_name = ctx.params.value("preset_name").map(str::to_string);
    match &preset_name {
        Some(name) => check_preset(name)?,
        None => {
            return Err(ApiError::bad_request(
                "preset_name is required: custom command profiles are not supported by this \
                 server yet",
            ));
        }
    }
    spec.preset_name = preset_name.clone();
    let name = ctx.params.value("name").map(str::to_string).or(preset_name);
    if let Some(n) = &name {
        ensure_unique_name(ctx, n, None).await?;
    }
    let now = now_ms();
    let profile = Profile {
        id: new_id(),
        cloud_id: cloud.id.clone(),
        name,
        spec,
        created_at: now,
        updated_at: now,
    };
    ctx.app.db.insert_profile(&profile).await?;
    ok(views::profile(&profile))
}

pub async fn update(ctx: &Ctx, key: &str) -> ApiResult<Response> {
    let mut profile = find(ctx, key).await?;
    if let Some(new_preset) = ctx.params.value("preset_name")
        && Some(new_preset) != profile.spec.preset_name.as_deref()
    {
        return Err(ApiError::bad_request(
            "preset_name cannot be changed; create a new profile instead",
        ));
    }
    profile.spec = apply_params(&ctx.params, profile.spec)?;
    if ctx.params.get("name").is_some() {
        let name = ctx.params.value("name").map(str::to_string);
        if let Some(n) = &name {
            ensure_unique_name(ctx, n, Some(&profile.id)).await?;
        }
        profile.name = name;
    }
    profile.updated_at = now_ms();
    ctx.app.db.update_profile(&profile).await?;
    ok(views::profile(&profile))
}

pub async fn delete(ctx: &Ctx, key: &str) -> ApiResult<Response> {
    let profile = find(ctx, key).await?;
    ctx.app.db.delete_profile(&profile.id).await?;
    ok(serde_json::json!({ "deleted": true }))
}

fn check_preset(name: &str) -> ApiResult<()> {
    if preset(name).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    Err(ApiError::bad_request(format!(
        "Unknown preset_name {name:?}; this server knows: {}",
        known.join(", ")
    )))
}

async fn ensure_unique_name(ctx: &Ctx, name: &str, except: Option<&str>) -> ApiResult<()> {
    let cloud = ctx.cloud()?;
    let taken = ctx
        .app
        .db
        .profiles(&cloud.id)
        .await?
        .into_iter()
        .any(|p| p.name.as_deref() == Some(name) && Some(p.id.as_str()) != except);
    if taken {
        return Err(ApiError::bad_request(format!(
            "Name has already been taken: a profile named {name:?} exists"
        )));
    }
    Ok(())
}

/// Copies every profile option present in the request onto `spec`. A key
/// sent as `""`, `None` or `null` clears the option; read-only and unknown
/// keys are ignored (spec §3.4 P4, §4.4).
pub fn apply_params(p: &Params, mut spec: ProfileSpec) -> ApiResult<ProfileSpec> {
    macro_rules! text {
        ($($f:ident),*) => {$(
            if p.get(stringify!($f)).is_some() {
                spec.$f = p.value(stringify!($f)).map(str::to_string);
            }
        )*};
    }
    macro_rules! typed {
        ($kind:ident: $($f:ident),*) => {$(
            if p.get(stringify!($f)).is_some() && p.get(stringify!($f)) != Some("auto") {
                spec.$f = p.$kind(stringify!($f))?;
            }
        )*};
    }
    text!(
        title,
        clip_length,
        clip_offset,
        frame_offsets,
        frame_interval,
        watermark_url,
        watermark_top,
        watermark_bottom,
        watermark_left,
        watermark_right,
        watermark_width,
        watermark_height,
        h264_profile,
        h264_level,
        variants,
        encryption_key,
        encryption_iv,
        encryption_key_url,
        stack
    );
    typed!(int: width, height, video_bitrate, audio_bitrate, audio_sample_rate, audio_channels,
        frame_count, h264_crf, max_rate, buffer_size);
    typed!(float: fps, keyframe_interval, keyframe_rate);
    typed!(bool: upscale, two_pass, encryption);
    if p.get("aspect_mode").is_some() {
        spec.aspect_mode = match p.value("aspect_mode") {
            None => None,
            Some(m) => Some(AspectMode::parse(m).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "aspect_mode must be one of letterbox, pad, crop, preserve, constrain; got {m:?}"
                ))
            })?),
        };
    }
    if p.get("extname").is_some() {
        spec.extname = match p.value("extname") {
            None => None,
            Some(e) => Some(check_extname(e)?),
        };
    }
    if p.get("path_format").is_some() {
        spec.path_format = p.value("path_format").map(str::to_string);
        if let Some(pf) = &spec.path_format {
            path_format::validate(pf).map_err(|e| ApiError::bad_request(e.to_string()))?;
        }
    }
    check_ranges(&spec)?;
    Ok(spec)
}

fn check_extname(e: &str) -> ApiResult<String> {
    let ok = e.starts_with('.')
        && e.len() >= 2
        && e.len() <= 12
        && e[1..].chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(e.to_ascii_lowercase())
    } else {
        Err(ApiError::bad_request(format!(
            "extname must look like \".mp4\" (a dot and up to 11 letters or digits); got {e:?}"
        )))
    }
}

fn check_ranges(s: &ProfileSpec) -> ApiResult<()> {
    let in_range = |name: &str, v: Option<i64>, lo: i64, hi: i64| match v {
        Some(x) if x < lo || x > hi => Err(ApiError::bad_request(format!(
            "{name} must be between {lo} and {hi}; got {x}"
        ))),
        _ => Ok(()),
    };
    in_range("width", s.width, 2, 8192)?;
    in_range("height", s.height, 2, 8192)?;
    in_range("video_bitrate", s.video_bitrate, 1, 200_000)?;
    in_range("audio_bitrate", s.audio_bitrate, 1, 1_000)?;
    in_range("audio_sample_rate", s.audio_sample_rate, 8_000, 192_000)?;
    in_range("audio_channels", s.audio_channels, 1, 8)?;
    in_range("frame_count", s.frame_count, 0, 1000)?;
    in_range("h264_crf", s.h264_crf, 0, 51)?;
    if let Some(fps) = s.fps
        && !(fps > 0.0 && fps <= 240.0)
    {
        return Err(ApiError::bad_request(format!(
            "fps must be between 0 and 240; got {fps}"
        )));
    }
    if let Some(p) = &s.h264_profile
        && !matches!(p.as_str(), "baseline" | "main" | "high")
    {
        return Err(ApiError::bad_request(format!(
            "h264_profile must be baseline, main or high; got {p:?}"
        )));
    }
    Ok(())
}
