//! `/profiles…` (spec §3.4): presets with overrides, and custom command
//! profiles (spec §8.4) whose command is checked before it is saved.

use axum::http::StatusCode;
use axum::response::Response;

use super::error::{ApiError, ApiResult};
use super::params::Params;
use super::request::Ctx;
use super::{list_body, ok, views};
use crate::domain::ids::new_id;
use crate::domain::model::Profile;
use crate::domain::options::{FrameSelection, is_h264_level};
use crate::domain::path_format;
use crate::domain::profile::{
    AspectMode, OutputKind, PRESET_ALIASES, PRESETS, ProfileError, ProfileSpec, preset,
};
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
    match (&preset_name, &spec.command) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either preset_name (a preset profile) or command (a custom profile), not both",
            ));
        }
        (Some(name), None) => check_preset(name)?,
        (None, Some(_)) if spec.extname.is_none() => {
            return Err(ApiError::bad_request(
                "extname is required for a custom command profile, e.g. extname=.mp4",
            ));
        }
        (None, Some(_)) => {}
        (None, None) => {
            return Err(ApiError::bad_request(
                "preset_name is required, or command and extname for a custom command profile",
            ));
        }
    }
    spec.preset_name = preset_name.clone();
    settle_frame_choice(&ctx.params, &mut spec)?;
    check_profile(ctx, &spec).await?;
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
    match (&profile.spec.preset_name, &profile.spec.command) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "a preset profile cannot have a command; create a custom profile instead",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "command is required for a custom command profile",
            ));
        }
        _ => {}
    }
    settle_frame_choice(&ctx.params, &mut profile.spec)?;
    check_profile(ctx, &profile.spec).await?;
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
    let known: Vec<&str> = PRESETS
        .iter()
        .map(|p| p.name)
        .chain(PRESET_ALIASES.iter().map(|(alias, _)| *alias))
        .collect();
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

/// The options of a profile about to be saved must all be usable: the same
/// parsing the worker does (clip times, watermark lengths, thumbnail
/// choices, extnames), and a watermark URL must not point at this machine
/// or its networks (checked again when it is downloaded).
async fn check_profile(ctx: &Ctx, spec: &ProfileSpec) -> ApiResult<()> {
    let resolved = spec.resolve().map_err(|e| match e {
        ProfileError::Invalid(e) => ApiError::bad_request(e.to_string()),
        other => ApiError::bad_request(other.to_string()),
    })?;
    if resolved.kind == OutputKind::Thumbnail
        && let FrameSelection::Count(n) = resolved.frames
        && n < 1
    {
        return Err(ApiError::bad_request(format!(
            "frame_count must be at least 1 for a thumbnail profile; got {n}"
        )));
    }
    match &resolved.watermark {
        Some(wm) => check_watermark_url(ctx, &wm.url).await,
        None => Ok(()),
    }
}

/// A watermark URL must be http(s), and unless the operator allows private
/// networks its host must not be (or resolve to) a loopback, private or
/// link-local address. A name that does not resolve now is accepted: the
/// worker's guarded download decides.
async fn check_watermark_url(ctx: &Ctx, raw: &str) -> ApiResult<()> {
    let url = crate::worker::fetch::check_url_syntax(raw).map_err(|_| {
        ApiError::bad_request(format!(
            "watermark_url {raw:?} must be an http or https URL"
        ))
    })?;
    if ctx.app.config.fetch.allow_private_networks {
        return Ok(());
    }
    match crate::outbound::check_public(&url).await {
        Err(refused @ crate::outbound::Refused::Forbidden { .. }) => Err(ApiError::bad_request(
            format!("watermark_url {raw} is not allowed: {refused}"),
        )),
        _ => Ok(()),
    }
}

/// Thumbnail profiles take at most one of `frame_count`, `frame_offsets`
/// and `frame_interval` (spec §8.1). Several in one request are refused;
/// one replaces whichever was stored before, so a client can switch.
fn settle_frame_choice(p: &Params, spec: &mut ProfileSpec) -> ApiResult<()> {
    let thumbnail = spec
        .preset_name
        .as_deref()
        .and_then(preset)
        .is_some_and(|p| p.kind == OutputKind::Thumbnail);
    if !thumbnail {
        return Ok(());
    }
    let given: Vec<&str> = ["frame_count", "frame_offsets", "frame_interval"]
        .into_iter()
        .filter(|k| p.value(k).is_some())
        .collect();
    match given.as_slice() {
        [] => {}
        ["frame_count"] => (spec.frame_offsets, spec.frame_interval) = (None, None),
        ["frame_offsets"] => (spec.frame_count, spec.frame_interval) = (None, None),
        ["frame_interval"] => (spec.frame_count, spec.frame_offsets) = (None, None),
        several => {
            return Err(ApiError::bad_request(format!(
                "give at most one of frame_count, frame_offsets and frame_interval; got {}",
                several.join(", ")
            )));
        }
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
    if p.get("command").is_some() {
        spec.command = p.value("command").map(str::to_string);
        if let Some(command) = &spec.command {
            crate::media::command::parse(command).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "CommandInvalid", e.to_string())
            })?;
        }
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
    if let Some(level) = &s.h264_level
        && !is_h264_level(level)
    {
        return Err(ApiError::bad_request(format!(
            "h264_level must be a level like 3.0 or 3.1; got {level:?}"
        )));
    }
    for (name, value) in [
        ("keyframe_interval", s.keyframe_interval),
        ("keyframe_rate", s.keyframe_rate),
    ] {
        if let Some(v) = value
            && !(v.is_finite() && v > 0.0 && v <= 100_000.0)
        {
            return Err(ApiError::bad_request(format!(
                "{name} must be a positive number; got {v}"
            )));
        }
    }
    if s.two_pass == Some(true) && s.h264_crf.is_some() {
        return Err(ApiError::bad_request(
            "h264_crf and two_pass cannot be combined: two-pass encoding aims at video_bitrate",
        ));
    }
    in_range("max_rate", s.max_rate, 1, 200_000)?;
    in_range("buffer_size", s.buffer_size, 1, 400_000)?;
    Ok(())
}
