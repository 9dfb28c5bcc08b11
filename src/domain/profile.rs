//! Encoding profiles: the options a customer can set (spec §4.4), the presets
//! that supply their defaults (spec §8.1), and the merge of the two.

use serde::{Deserialize, Serialize};

use super::options::{Clip, FrameSelection, OptionError, Watermark};

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
    /// Still images of the original (JPEG or PNG), no video stream.
    Thumbnail,
    /// Whatever a custom profile's `command` writes (spec §8.4).
    Command,
}

impl OutputKind {
    /// The output carries an encoded video stream.
    pub fn has_video(self) -> bool {
        matches!(self, Self::Mp4H264 | Self::WebmVp8 | Self::OggTheora)
    }

    /// The output carries an encoded audio stream.
    pub fn has_audio(self) -> bool {
        !matches!(self, Self::Thumbnail | Self::Command)
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
    /// kbit/s; unused (0) for thumbnails.
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

/// The presets this build knows. Streaming presets (HLS, HSS) arrive with
/// their own issue; until then they are refused by name.
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
    Preset {
        name: "thumbnail",
        title: "Thumbnail",
        kind: OutputKind::Thumbnail,
        extname: ".jpg",
        // "Profile size": no default box, the source size unless set.
        width: None,
        height: None,
        video_bitrate: None,
        audio_bitrate: 0,
        h264_profile: None,
    },
];

/// Other names accepted for a preset: the API docs call the thumbnail
/// preset "JPEG preset" (spec §8.1).
pub const PRESET_ALIASES: &[(&str, &str)] = &[("jpeg", "thumbnail")];

/// The preset called `name` (or one of its aliases).
pub fn preset(name: &str) -> Option<&'static Preset> {
    let name = PRESET_ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, real)| real);
    PRESETS.iter().find(|p| p.name == name)
}

/// File extensions the thumbnail preset can write.
pub const THUMBNAIL_EXTNAMES: &[&str] = &[".jpg", ".jpeg", ".png"];

/// A profile with every default filled in and every text option parsed:
/// what the planner works from.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedProfile {
    /// The preset's canonical name; `None` for a custom command profile.
    pub preset: Option<&'static str>,
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
    /// Bitrate ceiling and buffer (kbit/s), when set.
    pub max_rate: Option<i64>,
    pub buffer_size: Option<i64>,
    /// Part of the source to encode.
    pub clip: Clip,
    /// The watermark to overlay on the picture, if any.
    pub watermark: Option<Watermark>,
    /// The stills a thumbnail profile takes (`Count(frame_count)` for
    /// other kinds, where it is the screenshot count).
    pub frames: FrameSelection,
    /// A custom profile's command lines (spec §8.4), unparsed.
    pub command: Option<String>,
}

/// Why a profile cannot be resolved.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    /// Neither `preset_name` nor `command`.
    #[error("the profile has neither a preset_name nor a command")]
    Incomplete,
    #[error("unknown preset_name {0:?}")]
    UnknownPreset(String),
    /// An option holds a value that cannot work.
    #[error(transparent)]
    Invalid(#[from] OptionError),
}

/// Default number of screenshots per encoding (spec §7).
pub const DEFAULT_FRAME_COUNT: i64 = 7;
/// Default audio sample rate (spec §4.4).
pub const DEFAULT_SAMPLE_RATE: i64 = 44100;
/// Default keyframe interval in frames (spec §4.4); the planner applies it
/// as a ceiling when the profile sets no spacing of its own.
pub const DEFAULT_KEYFRAME_INTERVAL: f64 = 250.0;
/// Audio bitrate of custom command profiles that set none (kbit/s), the
/// video presets' value, so `$audio_bitrate$` always means something.
pub const DEFAULT_COMMAND_AUDIO_BITRATE: i64 = 128;

impl ProfileSpec {
    /// Merges the spec over its preset (or, for a custom command profile,
    /// over the shared defaults) and parses every text option.
    pub fn resolve(&self) -> Result<ResolvedProfile, ProfileError> {
        match (&self.preset_name, &self.command) {
            (Some(name), _) => {
                let p = preset(name).ok_or_else(|| ProfileError::UnknownPreset(name.clone()))?;
                self.resolve_preset(p)
            }
            (None, Some(_)) => self.resolve_command(),
            (None, None) => Err(ProfileError::Incomplete),
        }
    }

    fn resolve_preset(&self, p: &'static Preset) -> Result<ResolvedProfile, ProfileError> {
        let mut r = self.shared_options(p.kind)?;
        r.preset = Some(p.name);
        r.extname = self
            .extname
            .clone()
            .unwrap_or_else(|| p.extname.to_string());
        r.width = self.width.or(p.width);
        r.height = self.height.or(p.height);
        r.video_bitrate = self.video_bitrate.or(p.video_bitrate);
        r.audio_bitrate = self.audio_bitrate.unwrap_or(p.audio_bitrate);
        r.h264_profile = self
            .h264_profile
            .clone()
            .or(p.h264_profile.map(str::to_string));
        if p.kind == OutputKind::Thumbnail {
            if !THUMBNAIL_EXTNAMES.contains(&r.extname.as_str()) {
                return Err(OptionError(format!(
                    "thumbnail profiles write {}; extname {:?} is not one of them",
                    THUMBNAIL_EXTNAMES.join(", "),
                    r.extname
                ))
                .into());
            }
            if let Some(frames) = FrameSelection::from_spec(self)? {
                r.frames = frames;
            }
        }
        Ok(r)
    }

    fn resolve_command(&self) -> Result<ResolvedProfile, ProfileError> {
        let mut r = self.shared_options(OutputKind::Command)?;
        r.extname = self
            .extname
            .clone()
            .ok_or_else(|| OptionError("a custom command profile needs an extname".into()))?;
        r.command = self.command.clone();
        Ok(r)
    }

    /// The options every kind shares (spec §8.2), with their defaults.
    fn shared_options(&self, kind: OutputKind) -> Result<ResolvedProfile, ProfileError> {
        let frame_count = self.frame_count.unwrap_or(DEFAULT_FRAME_COUNT);
        Ok(ResolvedProfile {
            preset: None,
            kind,
            extname: String::new(),
            width: self.width,
            height: self.height,
            upscale: self.upscale.unwrap_or(true),
            aspect_mode: self.aspect_mode.unwrap_or_default(),
            two_pass: self.two_pass.unwrap_or(false),
            video_bitrate: self.video_bitrate,
            audio_bitrate: self.audio_bitrate.unwrap_or(DEFAULT_COMMAND_AUDIO_BITRATE),
            fps: self.fps,
            keyframe_interval: self.keyframe_interval,
            keyframe_rate: self.keyframe_rate,
            audio_sample_rate: self.audio_sample_rate.unwrap_or(DEFAULT_SAMPLE_RATE),
            audio_channels: self.audio_channels,
            frame_count,
            h264_crf: self.h264_crf,
            h264_profile: self.h264_profile.clone(),
            h264_level: self.h264_level.clone(),
            max_rate: self.max_rate,
            buffer_size: self.buffer_size,
            clip: Clip::parse(self.clip_offset.as_deref(), self.clip_length.as_deref())?,
            watermark: Watermark::from_spec(self)?,
            frames: FrameSelection::Count(frame_count),
            command: None,
        })
    }

    /// The spec as the API shows it: preset defaults filled in where the
    /// customer set nothing, so clients see the effective values. Custom
    /// command profiles and unusable specs are shown as stored.
    pub fn with_preset_defaults(&self) -> ProfileSpec {
        let mut out = self.clone();
        let Ok(r) = self.resolve() else {
            return out;
        };
        let Some(p) = r.preset.and_then(preset) else {
            return out;
        };
        out.title = out.title.or(Some(p.title.to_string()));
        out.extname = Some(r.extname);
        out.width = r.width;
        out.height = r.height;
        out.upscale = Some(r.upscale);
        out.aspect_mode = Some(r.aspect_mode);
        if p.kind == OutputKind::Thumbnail {
            // Only the frame choice that is in force.
            if matches!(r.frames, FrameSelection::Count(_)) {
                out.frame_count = Some(r.frame_count);
            }
            return out;
        }
        out.two_pass = Some(r.two_pass);
        out.video_bitrate = r.video_bitrate;
        out.audio_bitrate = Some(r.audio_bitrate);
        out.keyframe_interval = r
            .keyframe_interval
            .or(p.kind.has_video().then_some(DEFAULT_KEYFRAME_INTERVAL));
        out.audio_sample_rate = Some(r.audio_sample_rate);
        out.frame_count = Some(r.frame_count);
        out.h264_profile = r.h264_profile;
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
        assert!(spec.resolve().is_err());
    }

    #[test]
    fn thumbnail_preset_and_its_alias() {
        let spec = ProfileSpec {
            preset_name: Some("jpeg".into()),
            frame_offsets: Some("2s, 250f".into()),
            ..Default::default()
        };
        let r = spec.resolve().unwrap();
        assert_eq!(
            (r.preset, r.kind),
            (Some("thumbnail"), OutputKind::Thumbnail)
        );
        assert_eq!(
            (r.extname.as_str(), r.width, r.height),
            (".jpg", None, None)
        );
        assert!(matches!(&r.frames, FrameSelection::Offsets(o) if o.len() == 2));
        let shown = spec.with_preset_defaults();
        assert_eq!(shown.frame_count, None, "only the frame choice in force");
        assert_eq!((shown.audio_bitrate, shown.two_pass), (None, None));
        assert_eq!(shown.title.as_deref(), Some("Thumbnail"));

        let plain = ProfileSpec {
            preset_name: Some("thumbnail".into()),
            extname: Some(".png".into()),
            ..Default::default()
        };
        let r = plain.resolve().unwrap();
        assert_eq!(r.frames, FrameSelection::Count(7));
        assert_eq!(plain.with_preset_defaults().frame_count, Some(7));
        for bad in [
            ProfileSpec {
                extname: Some(".mp4".into()),
                ..plain.clone()
            },
            ProfileSpec {
                frame_count: Some(2),
                frame_interval: Some("10s".into()),
                ..plain.clone()
            },
        ] {
            assert!(
                matches!(bad.resolve(), Err(ProfileError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn custom_command_profiles_resolve_without_a_preset() {
        let spec = ProfileSpec {
            command: Some("ffmpeg -i $input_file$ $output_file$".into()),
            extname: Some(".mp4".into()),
            width: Some(320),
            clip_length: Some("5".into()),
            ..Default::default()
        };
        let r = spec.resolve().unwrap();
        assert_eq!((r.preset, r.kind), (None, OutputKind::Command));
        assert_eq!(
            (r.width, r.height, r.video_bitrate),
            (Some(320), None, None)
        );
        assert_eq!(r.audio_bitrate, DEFAULT_COMMAND_AUDIO_BITRATE);
        assert_eq!(r.clip.length_ms, Some(5000));
        assert_eq!(r.command, spec.command);
        assert_eq!(spec.with_preset_defaults(), spec, "shown as stored");
        let no_ext = ProfileSpec {
            extname: None,
            ..spec
        };
        assert!(
            no_ext
                .resolve()
                .unwrap_err()
                .to_string()
                .contains("extname")
        );
        assert_eq!(
            ProfileSpec::default().resolve(),
            Err(ProfileError::Incomplete)
        );
    }

    #[test]
    fn text_options_are_parsed_when_resolving() {
        let spec = ProfileSpec {
            preset_name: Some("h264".into()),
            clip_offset: Some("00:00:01".into()),
            watermark_url: Some("http://example.com/logo.png".into()),
            watermark_left: Some("10%".into()),
            ..Default::default()
        };
        let r = spec.resolve().unwrap();
        assert_eq!(r.clip.offset_ms, Some(1000));
        assert!(r.watermark.is_some());
        assert_eq!(r.keyframe_interval, None, "the default is the planner's");
        assert_eq!(
            spec.with_preset_defaults().keyframe_interval,
            Some(DEFAULT_KEYFRAME_INTERVAL)
        );
        let bad = ProfileSpec {
            clip_offset: Some("later".into()),
            ..spec
        };
        let err = bad.resolve().unwrap_err();
        assert!(err.to_string().contains("clip_offset"), "{err}");
    }
}
