//! What the tokens of a custom command stand for in one encoding: the same
//! numbers the presets use (geometry, bitrates, keyframes, clip), computed
//! by the planner's own functions. Pure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Picture, Token, TokenValues, WatermarkImage};
use crate::domain::profile::ResolvedProfile;
use crate::media::plan::{
    self, EncodeRequest, Geometry, PlanError, clip_args, format_number, keyframe_gop,
    picture_chain, rate_cap, video_bitrate, watermark_overlay,
};
use crate::media::probe::VideoFacts;

/// Frame rate assumed for `$keyframes$` when neither the profile nor the
/// source gives one.
const FALLBACK_FPS: f64 = 30.0;

/// The token values for `req` (its `output` is the main output file,
/// `<scratch>/<record_id><extname>`).
pub fn token_values(req: &EncodeRequest, record_id: &str) -> Result<TokenValues, PlanError> {
    let profile = req.profile;
    let video = req.facts.video.as_ref();
    let geometry = video.map(|v| plan::geometry(profile, v.display_width, v.display_height));
    let (width, height) = match geometry {
        Some(g) => (Some(g.frame.0), Some(g.frame.1)),
        None => (profile.width, profile.height),
    };
    let picture = match (video, geometry) {
        (Some(v), Some(g)) => Some(picture(req, v, &g)?),
        _ => None,
    };
    let fps = profile
        .fps
        .or(video.and_then(|v| v.fps))
        .unwrap_or(FALLBACK_FPS);
    Ok(TokenValues {
        input_file: absolute(req.input)?,
        source_format: req.facts.container.clone(),
        output_file: absolute(req.output)?,
        record_id: record_id.to_string(),
        width,
        height,
        picture,
        options: option_tokens(profile, fps)?,
    })
}

fn absolute(path: &Path) -> Result<PathBuf, PlanError> {
    std::path::absolute(path)
        .map_err(|e| PlanError::Invalid(format!("cannot resolve {}: {e}", path.display())))
}

/// `$filters$`: the presets' picture chain, and the watermark overlay.
fn picture(
    req: &EncodeRequest,
    video: &VideoFacts,
    geometry: &Geometry,
) -> Result<Picture, PlanError> {
    let watermark = match (&req.profile.watermark, req.watermark) {
        (None, _) => None,
        (Some(wm), Some(image)) => Some(WatermarkImage {
            input: plan::path_arg(image.path)?,
            format: image.format.to_string(),
            overlay: watermark_overlay(wm, geometry.frame, 0)?,
        }),
        (Some(wm), None) => {
            return Err(PlanError::Invalid(format!(
                "the watermark {} was not downloaded before planning",
                wm.url
            )));
        }
    };
    Ok(Picture {
        chain: picture_chain(video, geometry),
        stream: video.index,
        watermark,
    })
}

/// The words of every options token that has a value.
fn option_tokens(
    profile: &ResolvedProfile,
    fps: f64,
) -> Result<BTreeMap<Token, Vec<String>>, PlanError> {
    let mut out = BTreeMap::new();
    let mut set = |token: Token, words: Vec<String>| {
        if !words.is_empty() {
            out.insert(token, words);
        }
    };
    let kbps = |b: i64| format!("{b}k");
    let bitrate = video_bitrate(profile)?;
    set(Token::VideoBitrate, pair_if("-b:v", bitrate.map(kbps)));
    set(Token::VideoQuality, video_quality(profile, bitrate)?);
    if let Some((max, buffer)) = rate_cap(profile) {
        set(
            Token::MaxVideoBitrate,
            vec![
                "-maxrate".into(),
                kbps(max),
                "-bufsize".into(),
                kbps(buffer),
            ],
        );
    }
    // $max_audio_bitrate$ stays empty: ffmpeg has no general audio
    // bitrate ceiling (spec §8.4 leaves it to the implementation).
    let audio = profile.audio_bitrate;
    set(
        Token::AudioBitrate,
        pair_if("-b:a", (audio > 0).then(|| kbps(audio))),
    );
    set(
        Token::AudioSampleRate,
        pair_if("-ar", Some(profile.audio_sample_rate.to_string())),
    );
    set(
        Token::AudioChannels,
        pair_if("-ac", profile.audio_channels.map(|c| c.to_string())),
    );
    set(
        Token::Fps,
        pair_if("-r", checked_fps(profile)?.map(format_number)),
    );
    set(Token::Clip, clip_args(profile.clip).0);
    set(
        Token::H264Profile,
        pair_if("-profile:v", checked_h264_profile(profile)?),
    );
    set(
        Token::H264Level,
        pair_if("-level", checked_h264_level(profile)?),
    );
    set(
        Token::Keyframes,
        pair_if("-g", keyframe_gop(profile, fps)?.map(|g| g.to_string())),
    );
    Ok(out)
}

fn pair_if(flag: &str, value: Option<String>) -> Vec<String> {
    value.map(|v| vec![flag.to_string(), v]).unwrap_or_default()
}

/// `-crf` when the profile sets `h264_crf`, else the video bitrate.
fn video_quality(
    profile: &ResolvedProfile,
    bitrate: Option<i64>,
) -> Result<Vec<String>, PlanError> {
    match profile.h264_crf {
        Some(crf) if !(0..=51).contains(&crf) => Err(PlanError::Invalid(format!(
            "h264_crf {crf} is not between 0 and 51"
        ))),
        Some(crf) => Ok(pair_if("-crf", Some(crf.to_string()))),
        None => Ok(pair_if("-b:v", bitrate.map(|b| format!("{b}k")))),
    }
}

fn checked_fps(profile: &ResolvedProfile) -> Result<Option<f64>, PlanError> {
    match profile.fps {
        Some(fps) if !(fps.is_finite() && fps > 0.0 && fps <= 240.0) => Err(PlanError::Invalid(
            format!("fps {fps} is not between 0 and 240"),
        )),
        other => Ok(other),
    }
}

fn checked_h264_profile(profile: &ResolvedProfile) -> Result<Option<String>, PlanError> {
    match profile.h264_profile.as_deref().map(str::to_ascii_lowercase) {
        Some(p) if !matches!(p.as_str(), "baseline" | "main" | "high") => Err(PlanError::Invalid(
            format!("h264_profile {p:?} is not baseline, main or high"),
        )),
        other => Ok(other),
    }
}

fn checked_h264_level(profile: &ResolvedProfile) -> Result<Option<String>, PlanError> {
    match &profile.h264_level {
        Some(level) if !crate::domain::options::is_h264_level(level) => Err(PlanError::Invalid(
            format!("h264_level {level:?} is not a level like 3.1"),
        )),
        other => Ok(other.clone()),
    }
}
