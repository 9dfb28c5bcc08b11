//! Encoding profiles: the options a customer can set (spec §4.4), the presets
//! that supply their defaults (spec §8.1), and the merge of the two.

use serde::{Deserialize, Serialize};

/// How the picture is fitted into the profile's width and height (spec §8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AspectMode {
    /// Keep the ratio, fill up to the profile height with bars above and below.
    #[default]
    Letterbox,
    /// Keep the ratio and pad to the full width x height.
    Pad,
    /// Keep the ratio, fill width x height and crop the overflow.
    Crop,
    /// Keep the source size and ratio.
    Preserve,
    /// Fit inside width x height, no bars.
    Constrain,
}

impl AspectMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "letterbox" => Some(Self::Letterbox),
            "pad" => Some(Self::Pad),
            "crop" => Some(Self::Crop),
            "preserve" => Some(Self::Preserve),
            "constrain" => Some(Self::Constrain),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Letterbox => "letterbox",
            Self::Pad => "pad",
            Self::Crop => "crop",
            Self::Preserve => "preserve",
            Self::Constrain => "constrain",
        }
    }
}

/// Every option a profile may carry. All optional: a preset fills the gaps
/// (see [`ProfileSpec::resolve`]). Stored as JSON in the database so that a new
/// option needs no migration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileSpec {
    pub preset_name: Option<String>,
    pub title: Option<String>,
    pub extname: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub upscale: Option<bool>,
    pub aspect_mode: Option<AspectMode>,
    pub two_pass: Option<bool>,
    pub video_bitrate: Option<i64>,
    pub audio_bitrate: Option<i64>,
    pub fps: Option<f64>,
    pub keyframe_interval: Option<f64>,
    pub keyframe_rate: Option<f64>,
    pub audio_sample_rate: Option<i64>,
    pub audio_channels: Option<i64>,
    pub clip_length: Option<String>,
    pub clip_offset: Option<String>,
    pub frame_count: Option<i64>,
    pub frame_offsets: Option<String>,
    pub frame_interval: Option<String>,
    pub watermark_url: Option<String>,
    pub watermark_top: Option<String>,
    pub watermark_bottom: Option<String>,
    pub watermark_left: Option<String>,
    pub watermark_right: Option<String>,
    pub watermark_width: Option<String>,
    pub watermark_height: Option<String>,
    pub h264_crf: Option<i64>,
    pub h264_profile: Option<String>,
    pub h264_level: Option<String>,
    pub max_rate: Option<i64>,
    pub buffer_size: Option<i64>,
    pub variants: Option<String>,
    pub encryption: Option<bool>,
    pub encryption_key: Option<String>,
    pub encryption_iv: Option<String>,
    pub encryption_key_url: Option<String>,
    pub command: Option<String>,
    pub stack: Option<String>,
    pub path_format: Option<String>,
}

/// What kind of output a preset produces; the planner branches on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// MP4 with H.264 video and AAC audio.
    Mp4H264,
    /// WebM with VP8 video and Vorbis audio.
    WebmVp8,
    /// Ogg with Theora video and Vorbis audio.
    OggTheora,
    /// MP3 audio only.
    Mp3,
    /// AAC audio in an MP4 (.m4a) container.
    Aac,
    /// Vorbis audio in Ogg.
    Vorbis,
}

impl OutputKind {
    pub fn has_video(self) -> bool {
        matches!(self, Self::Mp4H264 | Self::WebmVp8 | Self::OggTheora)
    }
}

/// A preset's built-in defaults (spec §8.1).
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    pub title: &'static str,
    pub kind: OutputKind,
    pub extname: &'static str,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub video_bitrate: Option<i64>,
    pub audio_bitrate: i64,
    pub h264_profile: Option<&'static str>,
}

const fn video(
    name: &'static str,
    title: &'static str,
    kind: OutputKind,
    extname: &'static str,
    size: (i64, i64),
    video_bitrate: i64,
) -> Preset {
    Preset {
        name,
        title,
        kind,
        extname,
        width: Some(size.0),
        height: Some(size.1),
        video_bitrate: Some(video_bitrate),
        audio_bitrate: 128,
        h264_profile: match kind {
            OutputKind::Mp4H264 => Some("high"),
            _ => None,
        },
    }
}

const fn audio(
    name: &'static str,
    title: &'static str,
    kind: OutputKind,
    ext: &'static str,
) -> Preset {
    Preset {
        name,
        title,
        kind,
        extname: ext,
        width: None,
        height: None,
        video_bitrate: None,
        audio_bitrate: 192,
        h264_profile: None,
    }
}

/// The presets this build knows. Streaming presets (HLS, HSS) and thumbnails
/// arrive with their own issue; until then they are refused by name.
pub const PRESETS: &[Preset] = &[
    video(
        "h264",
        "MP4 (H.264)",
        OutputKind::Mp4H264,
        ".mp4",
        (640, 480),
        500,
    ),
    video(
        "h264.hi",
        "MP4 (H.264) HI",
        OutputKind::Mp4H264,
        ".mp4",
        (1280, 720),
        1000,
    ),
    video(
        "webm",
        "WebM (VP8)",
        OutputKind::WebmVp8,
        ".webm",
        (640, 480),
        500,
    ),
    video(
        "webm.hi",
        "WebM (VP8) HI",
        OutputKind::WebmVp8,
        ".webm",
        (1280, 720),
        1000,
    ),
    video(
        "ogg",
        "Ogg (Theora)",
        OutputKind::OggTheora,
        ".ogg",
        (640, 480),
        500,
    ),
    video(
        "ogg.hi",
        "Ogg (Theora) HI",
        OutputKind::OggTheora,
        ".ogg",
        (1280, 720),
        1000,
    ),
    audio("mp3", "MP3", OutputKind::Mp3, ".mp3"),
    audio("aac", "AAC", OutputKind::Aac, ".m4a"),
    audio("vorbis", "Ogg Vorbis", OutputKind::Vorbis, ".oga"),
];

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// A profile with every default filled in: what the planner works from.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedProfile {
    pub preset: &'static str,
    pub kind: OutputKind,
    pub extname: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub upscale: bool,
    pub aspect_mode: AspectMode,
    pub two_pass: bool,
    pub video_bitrate: Option<i64>,
    pub audio_bitrate: i64,
    pub fps: Option<f64>,
    pub keyframe_interval: Option<f64>,
    pub keyframe_rate: Option<f64>,
    pub audio_sample_rate: i64,
    pub audio_channels: Option<i64>,
    pub frame_count: i64,
    pub h264_crf: Option<i64>,
    pub h264_profile: Option<String>,
    pub h264_level: Option<String>,
}

/// Default number of screenshots per encoding (spec §7).
pub const DEFAULT_FRAME_COUNT: i64 = 7;
/// Default audio sample rate (spec §4.4).
pub const DEFAULT_SAMPLE_RATE: i64 = 44100;
/// Default keyframe interval in frames (spec §4.4).
pub const DEFAULT_KEYFRAME_INTERVAL: f64 = 250.0;

impl ProfileSpec {
    /// Merges the spec over its preset. `None` for a custom (command) profile
    /// or an unknown preset.
    pub fn resolve(&self) -> Option<ResolvedProfile> {
        let p = preset(self.preset_name.as_deref()?)?;
        Some(ResolvedProfile {
            preset: p.name,
            kind: p.kind,
            extname: self
                .extname
                .clone()
                .unwrap_or_else(|| p.extname.to_string()),
            width: self.width.or(p.width),
            height: self.height.or(p.height),
            upscale: self.upscale.unwrap_or(true),
            aspect_mode: self.aspect_mode.unwrap_or_default(),
            two_pass: self.two_pass.unwrap_or(false),
            video_bitrate: self.video_bitrate.or(p.video_bitrate),
            audio_bitrate: self.audio_bitrate.unwrap_or(p.audio_bitrate),
            fps: self.fps,
            keyframe_interval: self.keyframe_interval.or(match p.kind.has_video() {
                true => Some(DEFAULT_KEYFRAME_INTERVAL),
                false => None,
            }),
            keyframe_rate: self.keyframe_rate,
            audio_sample_rate: self.audio_sample_rate.unwrap_or(DEFAULT_SAMPLE_RATE),
            audio_channels: self.audio_channels,
            frame_count: self.frame_count.unwrap_or(DEFAULT_FRAME_COUNT),
            h264_crf: self.h264_crf,
            h264_profile: self
                .h264_profile
                .clone()
                .or(p.h264_profile.map(str::to_string)),
            h264_level: self.h264_level.clone(),
        })
    }

    /// The spec as the API shows it: preset defaults filled in where the
    /// customer set nothing, so clients see the effective values.
    pub fn with_preset_defaults(&self) -> ProfileSpec {
        let mut out = self.clone();
        if let Some(r) = self.resolve() {
            let p = preset(r.preset).expect("resolved preset exists");
            out.title = out.title.or(Some(p.title.to_string()));
            out.extname = Some(r.extname);
            out.width = r.width;
            out.height = r.height;
            out.upscale = Some(r.upscale);
            out.aspect_mode = Some(r.aspect_mode);
            out.two_pass = Some(r.two_pass);
            out.video_bitrate = r.video_bitrate;
            out.audio_bitrate = Some(r.audio_bitrate);
            out.keyframe_interval = r.keyframe_interval;
            out.audio_sample_rate = Some(r.audio_sample_rate);
            out.frame_count = Some(r.frame_count);
            out.h264_profile = r.h264_profile;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_preset_defaults_match_the_spec_table() {
        let spec = ProfileSpec {
            preset_name: Some("h264".into()),
            ..Default::default()
        };
        let r = spec.resolve().unwrap();
        assert_eq!((r.width, r.height), (Some(640), Some(480)));
        assert_eq!(r.video_bitrate, Some(500));
        assert_eq!(r.audio_bitrate, 128);
        assert_eq!(r.extname, ".mp4");
        assert_eq!(r.frame_count, 7);
        assert_eq!(r.aspect_mode, AspectMode::Letterbox);
        assert!(r.upscale);
    }

    #[test]
    fn overrides_win_over_the_preset() {
        let spec = ProfileSpec {
            preset_name: Some("webm.hi".into()),
            width: Some(320),
            audio_bitrate: Some(96),
            ..Default::default()
        };
        let r = spec.resolve().unwrap();
        assert_eq!((r.width, r.height), (Some(320), Some(720)));
        assert_eq!(r.audio_bitrate, 96);
        assert_eq!(r.kind, OutputKind::WebmVp8);
    }

    #[test]
    fn unknown_preset_does_not_resolve() {
        let spec = ProfileSpec {
            preset_name: Some("h266".into()),
            ..Default::default()
        };
        assert!(spec.resolve().is_none());
    }
}
