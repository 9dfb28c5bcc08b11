//! Profile + probed facts to ffmpeg argument vectors. Pure: no I/O, no
//! processes; every number (sizes, pads, crops, screenshot times) is computed
//! here so tests can predict the outputs exactly.
//!
//! Choices worth knowing:
//! - Streams are always mapped explicitly; subtitles, data, cover art,
//!   chapters and all metadata (location included) are dropped.
//! - Audio keeps the source channel count up to 2; more is downmixed to
//!   stereo for browser playback unless the profile sets `audio_channels`.
//! - Geometry starts from the display size (ffmpeg autorotates; sample aspect
//!   ratio is applied by scaling to square pixels). See [`geometry`].
//! - Timing is kept (`-fps_mode vfr`) except for Theora, which needs a
//!   constant rate (the source's, at most 60), and when the profile sets fps.
//! - Screenshots come from the same run: the final picture is split, and the
//!   second branch is resampled to N frames at the midpoints of N equal
//!   slices of the output (`fps` filter), padded by cloning the last frame
//!   so that very short videos still give N pictures.
//! - A watermark is a second input, scaled and overlaid after the picture
//!   is scaled and framed, so its position is in output pixels.
//! - Keyframe spacing set by the profile is fixed (no scene-cut keyframes
//!   in between), which segmenters need; otherwise 250 frames is a ceiling.

use std::path::Path;

pub use crate::domain::options::Clip;
use crate::domain::options::{Keyframes, Length, OptionError, Watermark};
use crate::domain::profile::{AspectMode, DEFAULT_KEYFRAME_INTERVAL, OutputKind, ResolvedProfile};

use super::probe::{Hdr, MediaFacts, VideoFacts};

/// Options every ffmpeg run starts with (progress goes to stdout for
/// [`super::process`]).
pub const COMMON_ARGS: &[&str] = &[
    "-hide_banner",
    "-nostdin",
    "-y",
    "-v",
    "error",
    "-progress",
    "pipe:1",
    "-nostats",
];

/// Highest frame rate used for constant-rate (Theora) output.
const MAX_CFR_FPS: f64 = 60.0;
/// Frame rate assumed when the source's is unknown.
const FALLBACK_FPS: f64 = 30.0;
/// Output duration assumed for screenshot spacing when nothing is known.
const FALLBACK_DURATION_MS: i64 = 10_000;
/// Most screenshots (or thumbnails) one encoding may ask for.
pub(super) const MAX_SCREENSHOTS: i64 = 1000;
/// Videos at least this long get a fast input seek for the preview still.
const PREVIEW_SEEK_MIN_MS: i64 = 4000;
/// Deinterlacer for field-coded sources.
const DEINTERLACE: &str = "bwdif=mode=send_frame:parity=auto:deint=all";

/// Encoder speed: an operator setting, so tests can run fast.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderSpeed {
    /// x264 `-preset`, e.g. `medium` or `ultrafast`.
    pub x264_preset: String,
    /// libvpx `-cpu-used` (with `-deadline good`): 0 best .. 16 fastest.
    pub vpx_cpu_used: i64,
    /// Encoder threads; `None` lets the encoder decide.
    pub threads: Option<i64>,
}

impl Default for EncoderSpeed {
    fn default() -> Self {
        Self {
            x264_preset: "medium".into(),
            vpx_cpu_used: 4,
            threads: None,
        }
    }
}

/// Everything one encoding needs.
pub struct EncodeRequest<'a> {
    /// The resolved profile.
    pub profile: &'a ResolvedProfile,
    /// What probing learnt about the source.
    pub facts: &'a MediaFacts,
    /// The source file (absolute path recommended).
    pub input: &'a Path,
    /// The main output file; for the thumbnail preset, the prefix P of the
    /// images `P_1<extname>` … `P_N<extname>`.
    pub output: &'a Path,
    /// Screenshot path prefix P: screenshots are written as `P_1.jpg` ..
    /// `P_N.jpg`, N = `profile.frame_count`.
    pub screenshots: Option<&'a Path>,
    /// Encoder speed settings.
    pub speed: &'a EncoderSpeed,
    /// The downloaded watermark image; required when the profile has a
    /// watermark and the output has a picture.
    pub watermark: Option<WatermarkInput<'a>>,
}

/// A watermark image on local disk, checked to be an image.
#[derive(Clone, Copy, Debug)]
pub struct WatermarkInput<'a> {
    /// The file (in the job's scratch directory).
    pub path: &'a Path,
    /// Its demuxer as ffprobe named it (e.g. `png_pipe`), forced on input
    /// so the file is read as nothing but that image format.
    pub format: &'a str,
}

/// The ffmpeg runs for one encoding and what they will produce.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// ffmpeg argument vectors without the program name, run in order.
    pub passes: Vec<Vec<String>>,
    /// Output picture width; `None` for audio-only output.
    pub width: Option<i64>,
    /// Output picture height; `None` for audio-only output.
    pub height: Option<i64>,
    /// Expected output duration, for progress.
    pub duration_ms: Option<i64>,
    /// Screenshots the last pass writes.
    pub screenshot_count: usize,
    /// Thumbnail preset: the most images the pass may write (as
    /// `<output>_<n><extname>`, n from 1); fewer when offsets fall past the
    /// end. 0 for other kinds.
    pub stills: usize,
    /// The output has a video stream.
    pub has_video: bool,
    /// The output has an audio stream.
    pub has_audio: bool,
}

/// Why no plan could be made.
#[derive(thiserror::Error, Debug)]
pub enum PlanError {
    /// The source lacks what the profile encodes.
    #[error("{0}")]
    NothingToEncode(String),
    /// The profile or request holds a value that cannot work.
    #[error("{0}")]
    Invalid(String),
}

impl From<OptionError> for PlanError {
    fn from(e: OptionError) -> Self {
        Self::Invalid(e.0)
    }
}

/// How the scaled picture relates to the output frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The picture is the frame.
    Exact,
    /// The picture sits inside the frame, bars around it.
    Pad,
    /// The picture covers the frame, the overflow is cut.
    Crop,
}

/// The full geometry of an output picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Size the display picture is scaled to.
    pub scaled: (i64, i64),
    /// Output frame size.
    pub frame: (i64, i64),
    /// Top-left of the picture in the frame (Pad) or of the frame in the
    /// picture (Crop); even numbers.
    pub offset: (i64, i64),
    /// Whether bars are added or overflow cut.
    pub framing: Framing,
}

/// Output frame size for a display size (see [`geometry`]).
pub fn output_size(profile: &ResolvedProfile, display_w: i64, display_h: i64) -> (i64, i64) {
    geometry(profile, display_w, display_h).frame
}

/// Fits a display size into the profile's box according to the aspect mode.
///
/// - `preserve`: the display size.
/// - `constrain`: fit inside W×H keeping the ratio, no bars.
/// - `letterbox`: fit inside, then bars above and below up to H (the width
///   is the fitted width: no side bars).
/// - `pad`: fit inside, bars to exactly W×H.
/// - `crop`: cover W×H, cut the overflow (centred).
///
/// A missing W or H follows from the other and the source ratio; neither
/// means `preserve`. With `upscale=false` the picture keeps at most its
/// source size: the box shrinks by the same factor so its ratio (and thus
/// the bars or the cut) stays. All sizes are even, at least 2.
pub fn geometry(profile: &ResolvedProfile, display_w: i64, display_h: i64) -> Geometry {
    let (dw, dh) = (display_w.max(1) as f64, display_h.max(1) as f64);
    let Some((bw, bh)) = target_box(profile, dw, dh) else {
        return preserve(dw, dh);
    };
    let cover = profile.aspect_mode == AspectMode::Crop;
    let mut factor = if cover {
        (bw / dw).max(bh / dh)
    } else {
        (bw / dw).min(bh / dh)
    };
    let (mut bw, mut bh) = (bw, bh);
    if !profile.upscale && factor > 1.0 {
        bw /= factor;
        bh /= factor;
        factor = 1.0;
    }
    let box_size = (even(bw), even(bh));
    let picture = (even(dw * factor), even(dh * factor));
    match profile.aspect_mode {
        AspectMode::Crop => {
            let scaled = (picture.0.max(box_size.0), picture.1.max(box_size.1));
            framed(scaled, box_size, Framing::Crop)
        }
        AspectMode::Pad => framed(fit_within(picture, box_size), box_size, Framing::Pad),
        AspectMode::Letterbox => {
            let scaled = fit_within(picture, box_size);
            framed(scaled, (scaled.0, box_size.1), Framing::Pad)
        }
        AspectMode::Constrain | AspectMode::Preserve => {
            let scaled = fit_within(picture, box_size);
            framed(scaled, scaled, Framing::Exact)
        }
    }
}

/// The profile's W×H box, a missing side derived from the source ratio;
/// `None` when the picture keeps its size.
fn target_box(profile: &ResolvedProfile, dw: f64, dh: f64) -> Option<(f64, f64)> {
    if profile.aspect_mode == AspectMode::Preserve {
        return None;
    }
    let w = profile.width.filter(|w| *w > 0).map(|w| w as f64);
    let h = profile.height.filter(|h| *h > 0).map(|h| h as f64);
    match (w, h) {
        (Some(w), Some(h)) => Some((w, h)),
        (Some(w), None) => Some((w, w * dh / dw)),
        (None, Some(h)) => Some((h * dw / dh, h)),
        (None, None) => None,
    }
}

fn preserve(dw: f64, dh: f64) -> Geometry {
    let size = (even(dw), even(dh));
    framed(size, size, Framing::Exact)
}

fn fit_within(picture: (i64, i64), limit: (i64, i64)) -> (i64, i64) {
    (picture.0.min(limit.0), picture.1.min(limit.1))
}

fn framed(scaled: (i64, i64), frame: (i64, i64), framing: Framing) -> Geometry {
    let framing = if scaled == frame {
        Framing::Exact
    } else {
        framing
    };
    let half_even = |a: i64, b: i64| ((a - b).abs() / 2) & !1;
    Geometry {
        scaled,
        frame,
        offset: (half_even(frame.0, scaled.0), half_even(frame.1, scaled.1)),
        framing,
    }
}

/// Nearest even integer, at least 2.
fn even(x: f64) -> i64 {
    let x = if x.is_finite() { x } else { 2.0 };
    ((x / 2.0).round() as i64 * 2).max(2)
}

/// An ffmpeg argument vector under construction.
#[derive(Clone, Debug, Default)]
pub(super) struct Argv(pub(super) Vec<String>);

impl Argv {
    /// Appends constant arguments written as one space-separated string.
    pub(super) fn words(mut self, words: &str) -> Self {
        self.0.extend(words.split_whitespace().map(str::to_string));
        self
    }

    /// Appends `flag value`.
    pub(super) fn opt(mut self, flag: &str, value: impl Into<String>) -> Self {
        self.0.push(flag.to_string());
        self.0.push(value.into());
        self
    }

    /// Appends `flag value` when there is a value.
    pub(super) fn opt_if(self, flag: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.opt(flag, v),
            None => self,
        }
    }

    /// Appends another vector.
    pub(super) fn then(mut self, more: Argv) -> Self {
        self.0.extend(more.0);
        self
    }

    /// Appends one argument.
    pub(super) fn arg(mut self, arg: impl Into<String>) -> Self {
        self.0.push(arg.into());
        self
    }
}

/// Builds the ffmpeg runs for one encoding.
pub fn plan(req: &EncodeRequest) -> Result<Plan, PlanError> {
    validate_speed(req.speed)?;
    validate_clip(req.profile.clip, req.facts.duration_ms)?;
    let kind = req.profile.kind;
    match kind {
        OutputKind::Thumbnail => return super::thumbnails::plan_thumbnails(req),
        OutputKind::Command => {
            return Err(PlanError::Invalid(
                "custom command profiles run their own commands (see media::command)".into(),
            ));
        }
        _ => {}
    }
    let video = req.facts.video.as_ref().filter(|_| kind.has_video());
    match (video, &req.facts.audio) {
        (Some(video), _) => plan_video(req, video),
        (None, Some(_)) => plan_audio_only(req),
        (None, None) if kind.has_video() => Err(PlanError::NothingToEncode(
            "the source has neither video nor audio to encode".into(),
        )),
        (None, None) => Err(PlanError::NothingToEncode(format!(
            "the source has no audio stream to encode as {}",
            kind_name(kind)
        ))),
    }
}

/// A clip must start inside the source.
pub(super) fn validate_clip(clip: Clip, source_ms: Option<i64>) -> Result<(), PlanError> {
    match (clip.offset_ms, source_ms) {
        (Some(offset), Some(total)) if offset > 0 && offset >= total => {
            Err(PlanError::Invalid(format!(
                "clip_offset {} s is past the end of the source ({} s)",
                seconds(offset),
                seconds(total)
            )))
        }
        _ => Ok(()),
    }
}

/// An audio profile, or a video profile on a source without video.
fn plan_audio_only(req: &EncodeRequest) -> Result<Plan, PlanError> {
    let audio = req
        .facts
        .audio
        .as_ref()
        .ok_or_else(|| PlanError::NothingToEncode("the source has no audio stream".into()))?;
    let args = input_args(req)?
        .opt("-map", format!("0:{}", audio.index))
        .arg("-vn")
        .then(audio_codec_args(req.profile, audio.channels)?)
        .then(output_tail(
            req.profile.kind,
            req.speed,
            &path_arg(req.output)?,
        ));
    Ok(Plan {
        passes: vec![args.0],
        width: None,
        height: None,
        duration_ms: expected_duration_ms(req.facts.duration_ms, req.profile.clip),
        screenshot_count: 0,
        stills: 0,
        has_video: false,
        has_audio: true,
    })
}

/// A video profile on a source with video (and maybe audio).
fn plan_video(req: &EncodeRequest, video: &VideoFacts) -> Result<Plan, PlanError> {
    let profile = req.profile;
    let duration_ms = expected_duration_ms(req.facts.duration_ms, profile.clip);
    let geometry = geometry(profile, video.display_width, video.display_height);
    let out_fps = output_fps(profile, video)?;
    let video_pass = VideoPass {
        inputs: video_inputs(req)?,
        picture: picture_graph(video, &geometry, overlay_for(req, geometry.frame)?.as_ref()),
        encode: video_codec_args(profile, req.speed, video, out_fps)?
            .then(frame_rate_args(profile, out_fps)),
        passlog: format!("{}.passlog", req.output.display()),
    };
    let shots = match req.screenshots {
        Some(prefix) => screenshot_count(profile).map(|n| (prefix, n)),
        None => None,
    };
    // Short sources get their screenshots from the encoding run itself. In a
    // long one, ffmpeg 5.1 reports no progress until the first screenshot
    // (D/2N into the video) and then reports the screenshot branch's time,
    // which would starve progress and the stall watchdog; their screenshots
    // come from a quick run over the finished output instead.
    let inline = duration_ms.is_some_and(|d| d <= INLINE_SCREENSHOTS_MAX_MS);
    let mut passes = Vec::new();
    if profile.two_pass {
        passes.push(first_pass(&video_pass)?.0);
    }
    let main_shots = shots.filter(|_| inline);
    passes.push(main_pass(req, video, &video_pass, main_shots, duration_ms)?.0);
    if let (Some((prefix, n)), false) = (shots, inline) {
        let output = output_facts(geometry.frame, out_fps, duration_ms);
        if let Some(args) = screenshot_args(&output, req.output, prefix, n as i64)? {
            passes.push(args);
        }
    }
    Ok(Plan {
        passes,
        width: Some(geometry.frame.0),
        height: Some(geometry.frame.1),
        duration_ms,
        screenshot_count: shots.map_or(0, |(_, n)| n),
        stills: 0,
        has_video: true,
        has_audio: req.facts.audio.is_some(),
    })
}

/// The source and, when the profile has one, the watermark image.
pub(super) fn video_inputs(req: &EncodeRequest) -> Result<Argv, PlanError> {
    let inputs = input_args(req)?;
    match (&req.profile.watermark, req.watermark) {
        (None, _) => Ok(inputs),
        (Some(_), Some(wm)) => Ok(inputs
            .words("-protocol_whitelist file")
            .opt("-f", wm.format)
            .opt("-i", path_arg(wm.path)?)),
        (Some(w), None) => Err(PlanError::Invalid(format!(
            "the watermark {} was not downloaded before planning",
            w.url
        ))),
    }
}

/// The overlay for the profile's watermark on a frame of `frame` pixels;
/// the image is input 1.
pub(super) fn overlay_for(
    req: &EncodeRequest,
    frame: (i64, i64),
) -> Result<Option<Overlay>, PlanError> {
    req.profile
        .watermark
        .as_ref()
        .map(|w| watermark_overlay(w, frame, 1))
        .transpose()
}

/// What both passes of a video encoding share.
struct VideoPass {
    /// The inputs: the source, then the watermark image if any.
    inputs: Argv,
    /// `[0:N]` + the picture filters (+ the watermark overlay), ending in
    /// an unlabelled output.
    picture: String,
    /// Video encoder and frame rate options.
    encode: Argv,
    /// Two-pass statistics file prefix.
    passlog: String,
}

/// Two-pass analysis: video only, to the null muxer.
fn first_pass(pass: &VideoPass) -> Result<Argv, PlanError> {
    Ok(pass
        .inputs
        .clone()
        .opt("-filter_complex", format!("{}[v]", pass.picture))
        .words("-map [v] -an")
        .then(pass.encode.clone())
        .words("-pass 1")
        .opt("-passlogfile", &pass.passlog)
        .words("-f null /dev/null"))
}

/// The real encoding, with audio and the screenshot branch.
fn main_pass(
    req: &EncodeRequest,
    video: &VideoFacts,
    pass: &VideoPass,
    shots: Option<(&Path, usize)>,
    duration_ms: Option<i64>,
) -> Result<Argv, PlanError> {
    let graph = match shots {
        Some((_, n)) => format!(
            "{},split=2[v][s];[s]{}[shots]",
            pass.picture,
            screenshot_chain(n, duration_ms)
        ),
        None => format!("{}[v]", pass.picture),
    };
    let audio = req.facts.audio.as_ref();
    let mut main = pass
        .inputs
        .clone()
        .opt("-filter_complex", graph)
        .words("-map [v]")
        .opt_if("-map", audio.map(|a| format!("0:{}", a.index)))
        .then(pass.encode.clone());
    if video.hdr.is_some() {
        main = main.words("-color_primaries bt709 -color_trc bt709 -colorspace bt709");
    }
    if req.profile.two_pass {
        main = main.words("-pass 2").opt("-passlogfile", &pass.passlog);
    }
    if let Some(audio) = audio {
        main = main.then(audio_codec_args(req.profile, audio.channels)?);
    }
    main = main.then(output_tail(
        req.profile.kind,
        req.speed,
        &path_arg(req.output)?,
    ));
    match shots {
        Some((prefix, n)) => Ok(main.then(screenshot_output(prefix, n)?)),
        None => Ok(main),
    }
}

fn kind_name(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::Mp4H264 => "MP4 (H.264)",
        OutputKind::WebmVp8 => "WebM (VP8)",
        OutputKind::OggTheora => "Ogg (Theora)",
        OutputKind::Mp3 => "mp3",
        OutputKind::Aac => "aac",
        OutputKind::Vorbis => "vorbis",
        OutputKind::Thumbnail => "thumbnail",
        OutputKind::Command => "custom command",
    }
}

/// `file:` + the path (never read as a protocol); refuses non-UTF-8 paths.
pub(super) fn path_arg(path: &Path) -> Result<String, PlanError> {
    path.to_str()
        .map(|p| format!("file:{p}"))
        .ok_or_else(|| PlanError::Invalid(format!("path {} is not UTF-8", path.display())))
}

pub(super) fn seconds(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// The common options, the file-only whitelist and the forced demuxer.
pub(super) fn common_input_options(facts: &MediaFacts) -> Argv {
    Argv::default()
        .words(&COMMON_ARGS.join(" "))
        .words("-protocol_whitelist file")
        .opt_if("-f", facts.input_format.as_deref())
}

/// Common options, input-side seek and limit, and the input.
pub(super) fn input_args(req: &EncodeRequest) -> Result<Argv, PlanError> {
    Ok(common_input_options(req.facts)
        .then(clip_args(req.profile.clip))
        .opt("-i", path_arg(req.input)?))
}

/// `-ss offset -t length` (input options: seek, then limit), or nothing.
pub(super) fn clip_args(clip: Clip) -> Argv {
    let offset = clip.offset_ms.filter(|o| *o > 0);
    Argv::default()
        .opt_if("-ss", offset.map(seconds))
        .opt_if("-t", clip.length_ms.map(seconds))
}

/// Expected output duration: the source's playable duration after the clip.
pub fn expected_duration_ms(source_ms: Option<i64>, clip: Clip) -> Option<i64> {
    let offset = clip.offset_ms.unwrap_or(0).max(0);
    let remaining = source_ms.map(|d| (d - offset).max(0));
    match (remaining, clip.length_ms) {
        (Some(r), Some(l)) => Some(r.min(l)),
        (Some(r), None) => Some(r),
        (None, length) => length,
    }
}

/// Deinterlace, tone-map, scale, frame, square pixels, 8-bit 4:2:0.
pub(super) fn picture_chain(video: &VideoFacts, geometry: &Geometry) -> String {
    let mut filters = Vec::new();
    if video.interlaced {
        filters.push(DEINTERLACE.to_string());
    }
    if let Some(hdr) = video.hdr {
        filters.push(tone_map_chain(hdr));
    }
    filters.push(format!("scale={}:{}", geometry.scaled.0, geometry.scaled.1));
    let (fw, fh) = geometry.frame;
    let (x, y) = geometry.offset;
    match geometry.framing {
        Framing::Exact => {}
        Framing::Pad => filters.push(format!("pad={fw}:{fh}:{x}:{y}:color=black")),
        Framing::Crop => filters.push(format!("crop={fw}:{fh}:{x}:{y}")),
    }
    filters.push("setsar=1".into());
    filters.push("format=yuv420p".into());
    filters.join(",")
}

/// The picture filters of video stream `video.index` of input 0, with the
/// watermark overlaid when there is one; the graph ends in an unlabelled
/// output (callers add `[v]` or a split).
pub(super) fn picture_graph(
    video: &VideoFacts,
    geometry: &Geometry,
    overlay: Option<&Overlay>,
) -> String {
    let picture = format!("[0:{}]{}", video.index, picture_chain(video, geometry));
    match overlay {
        None => picture,
        Some(o) => format!("{picture}[base];{}", o.graph("[base]")),
    }
}

/// A watermark overlay: the image input's (optional) scaling and where it
/// goes, in output pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Overlay {
    /// The image's input index in the ffmpeg run.
    pub input: usize,
    /// `scale=W:H` for the image (`-1` keeps its ratio), when resized.
    pub scale: Option<String>,
    /// The `overlay` filter with its position.
    pub overlay: String,
}

impl Overlay {
    /// `[base]` + the image → the picture, as a graph ending unlabelled in
    /// 8-bit 4:2:0.
    pub fn graph(&self, base: &str) -> String {
        let image = format!("[{}:v]", self.input);
        match &self.scale {
            Some(scale) => format!(
                "{image}{scale}[wm];{base}[wm]{},format=yuv420p",
                self.overlay
            ),
            None => format!("{base}{image}{},format=yuv420p", self.overlay),
        }
    }
}

/// Places a watermark like a CSS absolutely positioned box on a frame of
/// `frame` pixels: `left` before `right`, `top` before `bottom`, 0 when
/// neither; a size in percent is of the frame; a missing size keeps the
/// image's ratio, unless both opposite edges are set (then it stretches).
pub fn watermark_overlay(
    wm: &Watermark,
    frame: (i64, i64),
    input: usize,
) -> Result<Overlay, PlanError> {
    let (fw, fh) = frame;
    let px = |l: Option<Length>, base: i64| l.map(|l| l.pixels(base));
    let (left, right) = (px(wm.left, fw), px(wm.right, fw));
    let (top, bottom) = (px(wm.top, fh), px(wm.bottom, fh));
    let width = stretch(
        "watermark_left and watermark_right",
        px(wm.width, fw),
        left,
        right,
        fw,
    )?;
    let height = stretch(
        "watermark_top and watermark_bottom",
        px(wm.height, fh),
        top,
        bottom,
        fh,
    )?;
    let scale = match (width, height) {
        (None, None) => None,
        (w, h) => Some(format!("scale={}:{}", w.unwrap_or(-1), h.unwrap_or(-1))),
    };
    let x = edge(left, right, "W-w");
    let y = edge(top, bottom, "H-h");
    Ok(Overlay {
        input,
        scale,
        overlay: format!("overlay=x={x}:y={y}:eof_action=repeat"),
    })
}

/// The size along one axis: as given, or stretched between both edges.
fn stretch(
    edges: &str,
    size: Option<i64>,
    start: Option<i64>,
    end: Option<i64>,
    extent: i64,
) -> Result<Option<i64>, PlanError> {
    match (size, start, end) {
        (Some(s), _, _) => Ok(Some(s.max(1))),
        (None, Some(a), Some(b)) if extent - a - b >= 1 => Ok(Some(extent - a - b)),
        (None, Some(a), Some(b)) => Err(PlanError::Invalid(format!(
            "{edges} ({a} and {b} pixels) leave no room on a {extent}-pixel picture"
        ))),
        _ => Ok(None),
    }
}

/// An overlay coordinate: from the start edge, else from the end edge
/// (`far` is the expression of the far position, e.g. `W-w`), else 0.
fn edge(start: Option<i64>, end: Option<i64>, far: &str) -> String {
    match (start, end) {
        (Some(a), _) => a.to_string(),
        (None, Some(b)) if b >= 0 => format!("{far}-{b}"),
        (None, Some(b)) => format!("{far}+{}", -b),
        (None, None) => "0".into(),
    }
}

/// HDR (BT.2020 PQ or HLG) to SDR BT.709: linear light, Hable curve without
/// desaturation, BT.709 primaries and transfer, limited range 8-bit.
pub fn tone_map_chain(hdr: Hdr) -> String {
    let transfer = match hdr {
        Hdr::Pq => "smpte2084",
        Hdr::Hlg => "arib-std-b67",
    };
    format!(
        "zscale=tin={transfer}:min=bt2020nc:pin=bt2020:rin=tv:t=linear:npl=100,\
         format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,\
         zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
    )
}

/// Screenshots the profile asks for; `None` when it asks for none.
pub(super) fn screenshot_count(profile: &ResolvedProfile) -> Option<usize> {
    let n = profile.frame_count.clamp(0, MAX_SCREENSHOTS) as usize;
    (n > 0).then_some(n)
}

/// The screenshot branch: N frames, the i-th showing the picture at
/// T_i = D·(i−½)/N. Shifting timestamps by half a slice and resampling to
/// N/D fps (rounding down) makes slot k show the frame on screen at
/// T_(k+1); cloning the last frame covers sources with fewer than N frames.
pub(super) fn screenshot_chain(count: usize, duration_ms: Option<i64>) -> String {
    let ms = duration_ms
        .filter(|d| *d > 0)
        .unwrap_or(FALLBACK_DURATION_MS);
    let d = ms as f64 / 1000.0;
    let half_slice = d / count as f64 / 2.0;
    format!(
        "setpts=PTS+{half_slice:.6}/TB,fps=fps={count}/{d:.6}:round=down:eof_action=pass,\
         tpad=stop_mode=clone:stop={count}"
    )
}

pub(super) fn screenshot_output(prefix: &Path, count: usize) -> Result<Argv, PlanError> {
    let prefix = prefix
        .to_str()
        .ok_or_else(|| PlanError::Invalid("screenshot path is not UTF-8".into()))?;
    // `%` is special in image2 patterns.
    let pattern = format!("file:{}_%d.jpg", prefix.replace('%', "%%"));
    Ok(Argv::default()
        .words("-map [shots] -fps_mode passthrough -q:v 3")
        .opt("-frames:v", count.to_string())
        .words("-start_number 1 -map_metadata -1 -map_chapters -1 -f image2")
        .arg(pattern))
}

/// Frame rate of the output: the profile's, else (for constant-rate
/// containers) the source's capped at 60, else none (timing kept).
pub(super) fn output_fps(
    profile: &ResolvedProfile,
    video: &VideoFacts,
) -> Result<Option<f64>, PlanError> {
    if let Some(fps) = profile.fps {
        if !(fps.is_finite() && fps > 0.0 && fps <= 240.0) {
            return Err(PlanError::Invalid(format!(
                "fps {fps} is not between 0 and 240"
            )));
        }
        return Ok(Some(fps));
    }
    if profile.kind == OutputKind::OggTheora {
        return Ok(Some(video.fps.unwrap_or(FALLBACK_FPS).min(MAX_CFR_FPS)));
    }
    Ok(None)
}

/// Constant rate when one was decided, else source timing (VFR-safe).
fn frame_rate_args(profile: &ResolvedProfile, fps: Option<f64>) -> Argv {
    match fps {
        Some(fps) if profile.fps.is_some() || profile.kind == OutputKind::OggTheora => {
            Argv::default()
                .words("-fps_mode cfr")
                .opt("-r", format_number(fps))
        }
        _ => Argv::default().words("-fps_mode vfr"),
    }
}

pub(super) fn format_number(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// GOP length in frames when the profile sets a spacing (keyframe_rate or
/// keyframe_interval, see [`Keyframes::from_options`]); `None` otherwise.
pub(super) fn keyframe_gop(profile: &ResolvedProfile, fps: f64) -> Result<Option<i64>, PlanError> {
    let spacing = Keyframes::from_options(profile.keyframe_interval, profile.keyframe_rate)?;
    Ok(spacing.map(|k| k.frames(fps)))
}

/// A spacing the profile sets is fixed: the minimum GOP equals the maximum
/// (and x264 adds no scene-cut keyframes), so keyframes fall exactly where
/// asked and segmenters can cut there. Without one, the default interval is
/// only a ceiling.
fn keyframe_args(profile: &ResolvedProfile, fps: f64) -> Result<Argv, PlanError> {
    let Some(gop) = keyframe_gop(profile, fps)? else {
        return Ok(Argv::default().opt("-g", format_number(DEFAULT_KEYFRAME_INTERVAL)));
    };
    let fixed = Argv::default()
        .opt("-g", gop.to_string())
        .opt("-keyint_min", gop.to_string());
    Ok(match profile.kind {
        OutputKind::Mp4H264 => fixed.words("-sc_threshold 0"),
        _ => fixed,
    })
}

pub(super) fn video_bitrate(profile: &ResolvedProfile) -> Result<Option<i64>, PlanError> {
    match profile.video_bitrate {
        Some(b) if b <= 0 => Err(PlanError::Invalid(format!(
            "video_bitrate {b} must be positive"
        ))),
        other => Ok(other),
    }
}

fn video_codec_args(
    profile: &ResolvedProfile,
    speed: &EncoderSpeed,
    video: &VideoFacts,
    out_fps: Option<f64>,
) -> Result<Argv, PlanError> {
    let fps = out_fps.or(video.fps).unwrap_or(FALLBACK_FPS);
    let bitrate = video_bitrate(profile)?;
    let kbps = |b: i64| format!("{b}k");
    let codec = match profile.kind {
        OutputKind::Mp4H264 => x264_args(profile, speed, bitrate)?,
        OutputKind::WebmVp8 => {
            let base = Argv::default()
                .words("-c:v libvpx -deadline good")
                .opt("-cpu-used", speed.vpx_cpu_used.to_string());
            match bitrate {
                Some(b) => base.opt("-b:v", kbps(b)),
                None => base.words("-crf 10 -b:v 1M"),
            }
        }
        OutputKind::OggTheora => {
            let base = Argv::default().words("-c:v libtheora");
            match bitrate {
                Some(b) => base.opt("-b:v", kbps(b)),
                None => base.words("-q:v 7"),
            }
        }
        _ => Argv::default(),
    };
    Ok(codec
        .then(keyframe_args(profile, fps)?)
        .words("-pix_fmt yuv420p")
        .opt_if("-threads", threads(speed)))
}

fn threads(speed: &EncoderSpeed) -> Option<String> {
    speed.threads.filter(|t| *t > 0).map(|t| t.to_string())
}

fn x264_args(
    profile: &ResolvedProfile,
    speed: &EncoderSpeed,
    bitrate: Option<i64>,
) -> Result<Argv, PlanError> {
    let h264_profile = profile
        .h264_profile
        .as_deref()
        .unwrap_or("high")
        .to_ascii_lowercase();
    if !matches!(h264_profile.as_str(), "baseline" | "main" | "high") {
        return Err(PlanError::Invalid(format!(
            "h264_profile {h264_profile:?} is not baseline, main or high"
        )));
    }
    let level = match &profile.h264_level {
        Some(level) if !valid_level(level) => {
            return Err(PlanError::Invalid(format!(
                "h264_level {level:?} is not a level like 3.1"
            )));
        }
        level => level.clone(),
    };
    let base = Argv::default()
        .words("-c:v libx264")
        .opt("-preset", &speed.x264_preset)
        .opt("-profile:v", h264_profile)
        .opt_if("-level", level);
    let rate = match (profile.h264_crf, bitrate) {
        // x264 refuses a constant rate factor with two-pass statistics.
        (Some(_), _) if profile.two_pass => {
            return Err(PlanError::Invalid(
                "h264_crf and two_pass cannot be combined: two-pass encoding aims at video_bitrate"
                    .into(),
            ));
        }
        (Some(crf), _) if !(0..=51).contains(&crf) => {
            return Err(PlanError::Invalid(format!(
                "h264_crf {crf} is not between 0 and 51"
            )));
        }
        // Quality-driven, capped by the bitrate when there is one.
        (Some(crf), cap) => Argv::default()
            .opt("-crf", crf.to_string())
            .opt_if(
                "-maxrate",
                profile.max_rate.or(cap).map(|b| format!("{b}k")),
            )
            .opt_if(
                "-bufsize",
                profile
                    .buffer_size
                    .or(cap.map(|b| b * 2))
                    .map(|b| format!("{b}k")),
            ),
        (None, Some(b)) => {
            let (max, buf) = rate_cap(profile).unwrap_or((b * 3 / 2, b * 2));
            Argv::default()
                .opt("-b:v", format!("{b}k"))
                .opt("-maxrate", format!("{max}k"))
                .opt("-bufsize", format!("{buf}k"))
        }
        (None, None) => Argv::default().words("-crf 23"),
    };
    Ok(base.then(rate))
}

/// The video bitrate ceiling and buffer (kbit/s): `max_rate` and
/// `buffer_size` when set, else 1.5× and 2× the video bitrate.
pub(super) fn rate_cap(profile: &ResolvedProfile) -> Option<(i64, i64)> {
    let max = profile
        .max_rate
        .or(profile.video_bitrate.map(|b| b * 3 / 2))?;
    let buffer = profile
        .buffer_size
        .or(profile.video_bitrate.map(|b| b * 2))
        .unwrap_or(max * 2);
    Some((max, buffer))
}

fn valid_level(level: &str) -> bool {
    crate::domain::options::is_h264_level(level)
}

fn validate_speed(speed: &EncoderSpeed) -> Result<(), PlanError> {
    const PRESETS: &[&str] = &[
        "ultrafast",
        "superfast",
        "veryfast",
        "faster",
        "fast",
        "medium",
        "slow",
        "slower",
        "veryslow",
        "placebo",
    ];
    if !PRESETS.contains(&speed.x264_preset.as_str()) {
        return Err(PlanError::Invalid(format!(
            "unknown x264 preset {:?}",
            speed.x264_preset
        )));
    }
    if !(-16..=16).contains(&speed.vpx_cpu_used) {
        return Err(PlanError::Invalid(format!(
            "vpx cpu-used {} is not between -16 and 16",
            speed.vpx_cpu_used
        )));
    }
    Ok(())
}

/// Sample rates each audio encoder accepts.
fn sample_rates(codec: &str) -> &'static [i64] {
    match codec {
        "libmp3lame" => &[8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000],
        "aac" => &[
            7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000,
        ],
        _ => &[
            8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000,
        ],
    }
}

fn audio_codec_args(profile: &ResolvedProfile, source_channels: i64) -> Result<Argv, PlanError> {
    let codec = match profile.kind {
        OutputKind::Mp4H264 | OutputKind::Aac => "aac",
        OutputKind::WebmVp8 | OutputKind::OggTheora | OutputKind::Vorbis => "libvorbis",
        OutputKind::Mp3 => "libmp3lame",
        OutputKind::Thumbnail | OutputKind::Command => {
            return Err(PlanError::Invalid(format!(
                "{} profiles have no audio encoder",
                kind_name(profile.kind)
            )));
        }
    };
    let rate = profile.audio_sample_rate;
    if !sample_rates(codec).contains(&rate) {
        return Err(PlanError::Invalid(format!(
            "audio_sample_rate {rate} is not supported by {codec}"
        )));
    }
    let max_channels = if codec == "libmp3lame" { 2 } else { 8 };
    let channels = match profile.audio_channels {
        Some(c) if (1..=max_channels).contains(&c) => c,
        Some(c) => {
            return Err(PlanError::Invalid(format!(
                "audio_channels {c} is not between 1 and {max_channels} for {codec}"
            )));
        }
        // Browser-safe: mono stays mono, more than stereo is downmixed.
        None => source_channels.clamp(1, 2),
    };
    let mut bitrate = profile.audio_bitrate;
    if bitrate <= 0 {
        return Err(PlanError::Invalid(format!(
            "audio_bitrate {bitrate} must be positive"
        )));
    }
    if codec == "libmp3lame" {
        // MPEG-2/2.5 layer III (below 32 kHz) stops at 160 kbit/s.
        bitrate = bitrate.min(if rate < 32000 { 160 } else { 320 });
    }
    Ok(Argv::default()
        .opt("-c:a", codec)
        .opt("-b:a", format!("{bitrate}k"))
        .opt("-ar", rate.to_string())
        .opt("-ac", channels.to_string()))
}

/// Metadata stripping, muxer and the main output.
fn output_tail(kind: OutputKind, speed: &EncoderSpeed, output: &str) -> Argv {
    let muxer = match kind {
        OutputKind::Mp4H264 => "-movflags +faststart -f mp4",
        OutputKind::WebmVp8 => "-f webm",
        OutputKind::OggTheora | OutputKind::Vorbis => "-f ogg",
        OutputKind::Mp3 => "-f mp3",
        OutputKind::Aac => "-movflags +faststart -f ipod",
        // Not reached: these kinds are planned elsewhere.
        OutputKind::Thumbnail => "-f image2",
        OutputKind::Command => "",
    };
    let audio_threads = threads(speed).filter(|_| !kind.has_video());
    Argv::default()
        .words("-map_metadata -1 -map_chapters -1")
        .opt_if("-threads", audio_threads)
        .words("-max_muxing_queue_size 4096")
        .words(muxer)
        .arg(output)
}

/// Longest expected output (ms) whose screenshots are taken in the encoding
/// run itself.
const INLINE_SCREENSHOTS_MAX_MS: i64 = 60_000;

/// What the planner knows of an output it is about to write: one 8-bit
/// upright video stream of `frame` pixels.
fn output_facts(frame: (i64, i64), fps: Option<f64>, duration_ms: Option<i64>) -> MediaFacts {
    MediaFacts {
        container: None,
        mime_type: None,
        duration_ms,
        file_size: 0,
        bit_rate_kbps: None,
        video: Some(VideoFacts {
            index: 0,
            codec: "h264".into(),
            width: frame.0,
            height: frame.1,
            display_width: frame.0,
            display_height: frame.1,
            rotation: 0,
            fps,
            pix_fmt: Some("yuv420p".into()),
            bit_depth: 8,
            hdr: None,
            interlaced: false,
            bitrate_kbps: None,
        }),
        audio: None,
        tags: Default::default(),
        input_format: None,
    }
}

/// A separate run taking `count` screenshots of an encoded file (the main
/// output of a custom command): spaced like the presets' screenshots, at the
/// file's display size. `None` when the file has no video or none are asked.
pub fn screenshot_args(
    facts: &MediaFacts,
    input: &Path,
    prefix: &Path,
    count: i64,
) -> Result<Option<Vec<String>>, PlanError> {
    let Some(video) = facts.video.as_ref() else {
        return Ok(None);
    };
    let n = count.clamp(0, MAX_SCREENSHOTS) as usize;
    if n == 0 {
        return Ok(None);
    }
    let display = preserve(video.display_width as f64, video.display_height as f64);
    let graph = format!(
        "{},{}[shots]",
        picture_graph(video, &display, None),
        screenshot_chain(n, facts.duration_ms)
    );
    let args = common_input_options(facts)
        .opt("-i", path_arg(input)?)
        .opt("-filter_complex", graph)
        .then(screenshot_output(prefix, n)?);
    Ok(Some(args.0))
}

/// One JPEG still of the original from the middle of the video, at display
/// size and upright (tone-mapped when HDR); `None` without video.
pub fn preview_args(facts: &MediaFacts, input: &Path, output_jpg: &Path) -> Option<Vec<String>> {
    let video = facts.video.as_ref()?;
    let duration = facts.duration_ms.filter(|d| *d > 0);
    let mut filters = Vec::new();
    // Long videos: seek on the input. Short or unknown: decode from the
    // start and take the frame on screen at the middle (or the last one).
    let seek = match duration {
        Some(d) if d >= PREVIEW_SEEK_MIN_MS => Some(seconds(d / 2)),
        _ => {
            filters.push(screenshot_chain(1, duration));
            None
        }
    };
    if video.interlaced {
        filters.push(DEINTERLACE.to_string());
    }
    if let Some(hdr) = video.hdr {
        filters.push(tone_map_chain(hdr));
    }
    filters.push(format!(
        "scale={}:{}",
        video.display_width.max(1),
        video.display_height.max(1)
    ));
    filters.push("setsar=1".into());
    let args = common_input_options(facts)
        .opt_if("-ss", seek)
        .opt("-i", path_arg(input).ok()?)
        .opt("-map", format!("0:{}", video.index))
        .opt("-vf", filters.join(","))
        .words("-frames:v 1 -q:v 3 -an -map_metadata -1 -map_chapters -1 -f image2 -update 1")
        .arg(path_arg(output_jpg).ok()?);
    Some(args.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::profile::ProfileSpec;
    use crate::media::probe::{AudioFacts, probe};
    use std::path::PathBuf;

    fn profile(preset: &str) -> ResolvedProfile {
        ProfileSpec {
            preset_name: Some(preset.into()),
            ..Default::default()
        }
        .resolve()
        .unwrap()
    }

    fn boxed(w: Option<i64>, h: Option<i64>, mode: AspectMode, upscale: bool) -> ResolvedProfile {
        ResolvedProfile {
            width: w,
            height: h,
            aspect_mode: mode,
            upscale,
            ..profile("h264")
        }
    }

    fn geo(w: i64, h: i64, mode: AspectMode, upscale: bool, src: (i64, i64)) -> Geometry {
        geometry(&boxed(Some(w), Some(h), mode, upscale), src.0, src.1)
    }

    #[test]
    fn letterbox_fills_the_height_only() {
        let g = geo(640, 480, AspectMode::Letterbox, true, (1920, 1080));
        assert_eq!(
            (g.scaled, g.frame, g.offset, g.framing),
            ((640, 360), (640, 480), (0, 60), Framing::Pad)
        );
        // Portrait: no side bars, the width is the fitted width.
        let g = geo(640, 480, AspectMode::Letterbox, true, (720, 1280));
        assert_eq!(
            (g.scaled, g.frame, g.framing),
            ((270, 480), (270, 480), Framing::Exact)
        );
        let g = geo(640, 480, AspectMode::Letterbox, true, (1080, 720));
        assert_eq!(
            (g.scaled, g.frame, g.offset),
            ((640, 426), (640, 480), (0, 26))
        );
    }

    #[test]
    fn pad_fills_the_whole_box() {
        let g = geo(640, 480, AspectMode::Pad, true, (1920, 1080));
        assert_eq!(
            (g.scaled, g.frame, g.offset),
            ((640, 360), (640, 480), (0, 60))
        );
        let g = geo(640, 480, AspectMode::Pad, true, (720, 1280));
        assert_eq!(
            (g.scaled, g.frame, g.offset),
            ((270, 480), (640, 480), (184, 0))
        );
    }

    #[test]
    fn crop_covers_and_cuts() {
        let g = geo(640, 480, AspectMode::Crop, true, (1920, 1080));
        assert_eq!(
            (g.scaled, g.frame, g.offset, g.framing),
            ((854, 480), (640, 480), (106, 0), Framing::Crop)
        );
        let g = geo(640, 480, AspectMode::Crop, true, (720, 1280));
        assert_eq!(
            (g.scaled, g.frame, g.offset),
            ((640, 1138), (640, 480), (0, 328))
        );
    }

    #[test]
    fn constrain_and_preserve_add_no_bars() {
        let g = geo(640, 480, AspectMode::Constrain, true, (1920, 1080));
        assert_eq!(
            (g.scaled, g.frame, g.framing),
            ((640, 360), (640, 360), Framing::Exact)
        );
        let g = geo(640, 480, AspectMode::Preserve, true, (161, 121));
        assert_eq!(g.frame, (162, 122));
        let g = geo(640, 480, AspectMode::Preserve, true, (3840, 2160));
        assert_eq!(g.frame, (3840, 2160));
    }

    #[test]
    fn upscale_off_never_enlarges_the_picture() {
        let g = geo(640, 480, AspectMode::Letterbox, false, (320, 240));
        assert_eq!((g.scaled, g.frame), ((320, 240), (320, 240)));
        let g = geo(640, 360, AspectMode::Pad, false, (320, 240));
        assert_eq!(
            (g.scaled, g.frame, g.offset),
            ((320, 240), (426, 240), (52, 0))
        );
        let g = geo(640, 480, AspectMode::Crop, false, (600, 200));
        assert_eq!(
            (g.scaled, g.frame, g.offset),
            ((600, 200), (266, 200), (166, 0))
        );
        let g = geo(640, 480, AspectMode::Constrain, false, (161, 121));
        assert_eq!(g.frame, (162, 122));
        // Downscaling is unaffected.
        let g = geo(640, 480, AspectMode::Letterbox, false, (1920, 1080));
        assert_eq!(g.frame, (640, 480));
        // Upscale on enlarges tiny sources.
        assert_eq!(
            geo(640, 480, AspectMode::Letterbox, true, (1, 1)).frame,
            (480, 480)
        );
        assert_eq!(
            geo(640, 480, AspectMode::Letterbox, false, (1, 1)).frame,
            (2, 2)
        );
    }

    #[test]
    fn odd_sizes_become_even() {
        assert_eq!(
            geo(640, 480, AspectMode::Letterbox, true, (161, 121)).frame,
            (638, 480)
        );
        assert_eq!(
            geo(640, 480, AspectMode::Letterbox, true, (314, 273)).frame,
            (552, 480)
        );
        assert_eq!(
            geo(640, 480, AspectMode::Pad, true, (642, 642)).frame,
            (640, 480)
        );
        for (w, h) in [(1, 1), (3, 7), (161, 121), (853, 480), (1934, 2160)] {
            for mode in [
                AspectMode::Letterbox,
                AspectMode::Pad,
                AspectMode::Crop,
                AspectMode::Constrain,
                AspectMode::Preserve,
            ] {
                for up in [true, false] {
                    let g = geo(641, 479, mode, up, (w, h));
                    for v in [
                        g.scaled.0, g.scaled.1, g.frame.0, g.frame.1, g.offset.0, g.offset.1,
                    ] {
                        assert_eq!(v % 2, 0, "{w}x{h} {mode:?} {up}: {g:?}");
                    }
                    assert!(g.frame.0 >= 2 && g.frame.1 >= 2);
                }
            }
        }
    }

    #[test]
    fn a_missing_side_follows_the_ratio() {
        let only_w = boxed(Some(640), None, AspectMode::Letterbox, true);
        assert_eq!(output_size(&only_w, 1920, 1080), (640, 360));
        let only_h = boxed(None, Some(480), AspectMode::Pad, true);
        assert_eq!(output_size(&only_h, 1920, 1080), (854, 480));
        let neither = boxed(None, None, AspectMode::Crop, true);
        assert_eq!(output_size(&neither, 1280, 720), (1280, 720));
    }

    // -- argv ---------------------------------------------------------------

    fn video_facts() -> VideoFacts {
        VideoFacts {
            index: 0,
            codec: "h264".into(),
            width: 1920,
            height: 1080,
            display_width: 1920,
            display_height: 1080,
            rotation: 0,
            fps: Some(25.0),
            pix_fmt: Some("yuv420p".into()),
            bit_depth: 8,
            hdr: None,
            interlaced: false,
            bitrate_kbps: None,
        }
    }

    fn source(video: Option<VideoFacts>, audio_channels: Option<i64>) -> MediaFacts {
        MediaFacts {
            container: Some("mov,mp4,m4a,3gp,3g2,mj2".into()),
            mime_type: Some("video/mp4".into()),
            duration_ms: Some(10_000),
            file_size: 1_000_000,
            bit_rate_kbps: Some(800),
            video,
            audio: audio_channels.map(|channels| AudioFacts {
                index: 3,
                codec: "ac3".into(),
                sample_rate: 48000,
                channels,
                bitrate_kbps: None,
            }),
            tags: Default::default(),
            input_format: None,
        }
    }

    fn plan_for(
        profile: &ResolvedProfile,
        facts: &MediaFacts,
        shots: bool,
        clip: Clip,
    ) -> Result<Plan, PlanError> {
        let speed = EncoderSpeed::default();
        let profile = ResolvedProfile {
            clip,
            ..profile.clone()
        };
        plan(&EncodeRequest {
            profile: &profile,
            facts,
            input: Path::new("/in/a b.mov"),
            output: Path::new("/out/enc.mp4"),
            screenshots: shots.then_some(Path::new("/out/enc")),
            speed: &speed,
            watermark: None,
        })
    }

    fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    fn has(args: &[String], flag: &str, value: &str) -> bool {
        after(args, flag).contains(&value)
    }

    #[test]
    fn h264_argv_maps_streams_and_strips_metadata() {
        let p = plan_for(
            &profile("h264"),
            &source(Some(video_facts()), Some(6)),
            true,
            Clip::default(),
        )
        .unwrap();
        assert_eq!(p.passes.len(), 1);
        let a = &p.passes[0];
        assert_eq!(&a[..8], COMMON_ARGS);
        assert!(has(a, "-protocol_whitelist", "file"));
        assert!(has(a, "-i", "file:/in/a b.mov"));
        assert_eq!(after(a, "-map"), vec!["[v]", "0:3", "[shots]"]);
        assert_eq!(after(a, "-map_metadata"), vec!["-1", "-1"]);
        assert_eq!(after(a, "-map_chapters"), vec!["-1", "-1"]);
        assert!(
            has(a, "-c:v", "libx264")
                && has(a, "-preset", "medium")
                && has(a, "-profile:v", "high")
        );
        assert!(
            has(a, "-b:v", "500k") && has(a, "-maxrate", "750k") && has(a, "-bufsize", "1000k")
        );
        assert!(has(a, "-pix_fmt", "yuv420p") && has(a, "-g", "250"));
        assert!(has(a, "-c:a", "aac") && has(a, "-b:a", "128k") && has(a, "-ar", "44100"));
        assert!(has(a, "-ac", "2"), "5.1 is downmixed to stereo");
        assert!(has(a, "-movflags", "+faststart") && has(a, "-f", "mp4") && has(a, "-f", "image2"));
        assert!(a.contains(&"file:/out/enc.mp4".to_string()));
        assert!(a.contains(&"file:/out/enc_%d.jpg".to_string()));
        assert!(has(a, "-frames:v", "7") && has(a, "-start_number", "1"));
        let graph = after(a, "-filter_complex")[0];
        assert!(graph.starts_with("[0:0]scale=640:360,pad=640:480:0:60:color=black,setsar=1,format=yuv420p,split=2[v][s];[s]"), "{graph}");
        assert!(
            graph.contains("fps=fps=7/10.000000") && graph.contains("setpts=PTS+0.714286/TB"),
            "{graph}"
        );
        assert!(!graph.contains("zscale") && !graph.contains("bwdif"));
        assert_eq!(
            (p.width, p.height, p.duration_ms, p.screenshot_count),
            (Some(640), Some(480), Some(10_000), 7)
        );
        assert!(p.has_video && p.has_audio);
    }

    #[test]
    fn long_sources_take_screenshots_from_the_output_in_a_second_run() {
        let mut facts = source(Some(video_facts()), Some(6));
        facts.duration_ms = Some(3_600_000);
        let p = plan_for(&profile("h264"), &facts, true, Clip::default()).unwrap();
        assert_eq!(p.passes.len(), 2, "{:?}", p.passes);
        let (main, shots) = (&p.passes[0], &p.passes[1]);
        assert_eq!(
            after(main, "-map"),
            vec!["[v]", "0:3"],
            "no screenshot branch"
        );
        assert!(
            has(shots, "-i", "file:/out/enc.mp4"),
            "reads the output: {shots:?}"
        );
        assert!(shots.contains(&"file:/out/enc_%d.jpg".to_string()));
        let graph = after(shots, "-filter_complex")[0];
        assert!(
            graph.starts_with("[0:0]") && graph.contains("fps=fps=7/3600.000000"),
            "{graph}"
        );
        assert_eq!(p.screenshot_count, 7);
    }

    #[test]
    fn webm_and_theora_use_their_codecs_and_timing() {
        let facts = source(Some(video_facts()), Some(2));
        let a = &plan_for(&profile("webm"), &facts, false, Clip::default())
            .unwrap()
            .passes[0];
        assert!(
            has(a, "-c:v", "libvpx") && has(a, "-deadline", "good") && has(a, "-cpu-used", "4")
        );
        assert!(has(a, "-c:a", "libvorbis") && has(a, "-f", "webm") && has(a, "-fps_mode", "vfr"));
        assert_eq!(after(a, "-map"), vec!["[v]", "0:3"]);
        let a = &plan_for(&profile("ogg"), &facts, false, Clip::default())
            .unwrap()
            .passes[0];
        assert!(has(a, "-c:v", "libtheora") && has(a, "-f", "ogg"));
        assert!(has(a, "-fps_mode", "cfr") && has(a, "-r", "25"));
    }

    #[test]
    fn hdr_and_interlaced_sources_get_their_filters_first() {
        let mut v = video_facts();
        v.hdr = Some(Hdr::Hlg);
        v.interlaced = true;
        let a = &plan_for(
            &profile("h264"),
            &source(Some(v), None),
            false,
            Clip::default(),
        )
        .unwrap()
        .passes[0];
        let graph = after(a, "-filter_complex")[0];
        assert!(
            graph.starts_with(
                "[0:0]bwdif=mode=send_frame:parity=auto:deint=all,zscale=tin=arib-std-b67:"
            ),
            "{graph}"
        );
        assert!(
            graph.contains("tonemap=tonemap=hable:desat=0") && graph.ends_with("format=yuv420p[v]"),
            "{graph}"
        );
        assert!(has(a, "-color_trc", "bt709") && has(a, "-colorspace", "bt709"));
        assert_eq!(after(a, "-map"), vec!["[v]"]);
        assert!(tone_map_chain(Hdr::Pq).starts_with("zscale=tin=smpte2084:"));
    }

    #[test]
    fn audio_profiles_drop_video_and_need_audio() {
        let facts = source(Some(video_facts()), Some(1));
        let p = plan_for(&profile("mp3"), &facts, true, Clip::default()).unwrap();
        let a = &p.passes[0];
        assert_eq!(after(a, "-map"), vec!["0:3"]);
        assert!(
            a.contains(&"-vn".to_string())
                && has(a, "-c:a", "libmp3lame")
                && has(a, "-b:a", "192k")
        );
        assert!(has(a, "-ac", "1") && has(a, "-f", "mp3"));
        assert!(!a.iter().any(|x| x.contains("filter")));
        assert_eq!((p.width, p.screenshot_count, p.has_video), (None, 0, false));
        let a = &plan_for(&profile("aac"), &facts, false, Clip::default())
            .unwrap()
            .passes[0];
        assert!(has(a, "-c:a", "aac") && has(a, "-f", "ipod"));
        let a = &plan_for(&profile("vorbis"), &facts, false, Clip::default())
            .unwrap()
            .passes[0];
        assert!(has(a, "-c:a", "libvorbis") && has(a, "-f", "ogg"));

        let silent = source(Some(video_facts()), None);
        let err = plan_for(&profile("mp3"), &silent, false, Clip::default()).unwrap_err();
        assert!(
            matches!(&err, PlanError::NothingToEncode(m) if m == "the source has no audio stream to encode as mp3"),
            "{err}"
        );
    }

    #[test]
    fn video_profiles_follow_what_the_source_has() {
        let audio_only = source(None, Some(2));
        let p = plan_for(&profile("h264"), &audio_only, true, Clip::default()).unwrap();
        assert!(!p.has_video && p.has_audio && p.screenshot_count == 0);
        assert!(has(&p.passes[0], "-f", "mp4") && has(&p.passes[0], "-c:a", "aac"));
        assert!(!has(&p.passes[0], "-c:v", "libx264"));

        let video_only = source(Some(video_facts()), None);
        let p = plan_for(&profile("webm"), &video_only, true, Clip::default()).unwrap();
        assert!(p.has_video && !p.has_audio);
        assert!(!p.passes[0].iter().any(|a| a == "-c:a"));
    }

    #[test]
    fn two_pass_writes_a_log_then_encodes() {
        let mut prof = profile("h264");
        prof.two_pass = true;
        let p = plan_for(
            &prof,
            &source(Some(video_facts()), Some(2)),
            true,
            Clip::default(),
        )
        .unwrap();
        assert_eq!(p.passes.len(), 2);
        let (first, second) = (&p.passes[0], &p.passes[1]);
        assert!(has(first, "-pass", "1") && has(first, "-passlogfile", "/out/enc.mp4.passlog"));
        assert!(has(first, "-f", "null") && first.last().map(String::as_str) == Some("/dev/null"));
        assert!(first.contains(&"-an".to_string()) && !first.iter().any(|a| a.contains("[shots]")));
        assert!(has(second, "-pass", "2") && has(second, "-passlogfile", "/out/enc.mp4.passlog"));
        assert!(second.iter().any(|a| a.contains("[shots]")));
    }

    #[test]
    fn clips_seek_on_the_input_and_shorten_the_expectation() {
        let clip = Clip::parse(Some("00:00:02.5"), Some("3")).unwrap();
        assert_eq!(
            clip,
            Clip {
                offset_ms: Some(2500),
                length_ms: Some(3000)
            }
        );
        let p = plan_for(
            &profile("h264"),
            &source(Some(video_facts()), Some(2)),
            true,
            clip,
        )
        .unwrap();
        let a = &p.passes[0];
        let input_at = a.iter().position(|x| x == "-i").unwrap();
        let ss_at = a.iter().position(|x| x == "-ss").unwrap();
        assert!(ss_at < input_at && has(a, "-ss", "2.500") && has(a, "-t", "3.000"));
        assert_eq!(p.duration_ms, Some(3000));
        assert!(after(a, "-filter_complex")[0].contains("fps=fps=7/3.000000"));
        let late = Clip::parse(Some("9"), None).unwrap();
        assert_eq!(
            plan_for(
                &profile("h264"),
                &source(Some(video_facts()), None),
                false,
                late
            )
            .unwrap()
            .duration_ms,
            Some(1000)
        );
        assert_eq!(
            Clip::parse(Some("1:02:03"), None).unwrap().offset_ms,
            Some(3_723_000)
        );
        assert!(Clip::parse(Some("soon"), None).is_err());
        let past = Clip::parse(Some("10"), None).unwrap();
        let err = plan_for(
            &profile("h264"),
            &source(Some(video_facts()), None),
            false,
            past,
        );
        assert!(matches!(err, Err(PlanError::Invalid(m)) if m.contains("past the end")));
        assert!(Clip::parse(None, Some("00:00:00")).is_err());
    }

    #[test]
    fn keyframe_spacing_set_by_the_profile_is_fixed() {
        let facts = source(Some(video_facts()), None);
        let args = |prof: &ResolvedProfile| {
            plan_for(prof, &facts, false, Clip::default())
                .unwrap()
                .passes[0]
                .clone()
        };
        let a = args(&profile("h264"));
        assert!(has(&a, "-g", "250") && !a.contains(&"-keyint_min".to_string()));
        let fixed = ResolvedProfile {
            keyframe_interval: Some(48.0),
            ..profile("h264")
        };
        let a = args(&fixed);
        assert!(has(&a, "-g", "48") && has(&a, "-keyint_min", "48"));
        assert!(has(&a, "-sc_threshold", "0"));
        // pandastream-tools' 0.2: seconds, 5 frames at 25 fps.
        let fraction = ResolvedProfile {
            keyframe_interval: Some(0.2),
            ..profile("webm")
        };
        let a = args(&fraction);
        assert!(has(&a, "-g", "5") && has(&a, "-keyint_min", "5"));
        assert!(!a.contains(&"-sc_threshold".to_string()));
        let bad = ResolvedProfile {
            keyframe_interval: Some(-1.0),
            ..profile("h264")
        };
        assert!(plan_for(&bad, &facts, false, Clip::default()).is_err());
    }

    #[test]
    fn rate_caps_follow_max_rate_and_buffer_size() {
        let prof = ResolvedProfile {
            max_rate: Some(600),
            buffer_size: Some(300),
            ..profile("h264")
        };
        let a = &plan_for(
            &prof,
            &source(Some(video_facts()), None),
            false,
            Clip::default(),
        )
        .unwrap()
        .passes[0];
        assert!(has(a, "-b:v", "500k") && has(a, "-maxrate", "600k") && has(a, "-bufsize", "300k"));
        assert_eq!(rate_cap(&profile("h264")), Some((750, 1000)));
        assert_eq!(rate_cap(&profile("mp3")), None);
    }

    fn watermark(edges: [Option<&str>; 4], size: [Option<&str>; 2]) -> Watermark {
        let len = |v: Option<&str>| v.map(|s| Length::parse("x", s).unwrap());
        Watermark {
            url: "http://x/wm.png".into(),
            top: len(edges[0]),
            right: len(edges[1]),
            bottom: len(edges[2]),
            left: len(edges[3]),
            width: len(size[0]),
            height: len(size[1]),
        }
    }

    #[test]
    fn watermarks_are_placed_like_css_boxes() {
        let frame = (640, 360);
        let o = watermark_overlay(&watermark([None; 4], [None; 2]), frame, 1).unwrap();
        assert_eq!(
            (o.scale, o.overlay.as_str()),
            (None, "overlay=x=0:y=0:eof_action=repeat")
        );
        let o = watermark_overlay(
            &watermark([None, Some("10"), Some("5%"), None], [Some("25%"), None]),
            frame,
            1,
        )
        .unwrap();
        assert_eq!(o.scale.as_deref(), Some("scale=160:-1"));
        assert_eq!(o.overlay, "overlay=x=W-w-10:y=H-h-18:eof_action=repeat");
        // left wins over right; both with no width stretch.
        let o = watermark_overlay(
            &watermark(
                [Some("-4"), Some("20"), None, Some("20")],
                [None, Some("40")],
            ),
            frame,
            1,
        )
        .unwrap();
        assert_eq!(o.scale.as_deref(), Some("scale=600:40"));
        assert_eq!(o.overlay, "overlay=x=20:y=-4:eof_action=repeat");
        let o = watermark_overlay(
            &watermark([None, Some("-3"), None, None], [None; 2]),
            frame,
            1,
        )
        .unwrap();
        assert!(o.overlay.starts_with("overlay=x=W-w+3:"), "{}", o.overlay);
        let err = watermark_overlay(
            &watermark([None, Some("60%"), None, Some("50%")], [None; 2]),
            frame,
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("leave no room"), "{err}");
        assert_eq!(
            o.graph("[base]"),
            "[base][1:v]overlay=x=W-w+3:y=0:eof_action=repeat,format=yuv420p"
        );
    }

    #[test]
    fn a_watermark_joins_both_passes() {
        let prof = ResolvedProfile {
            two_pass: true,
            watermark: Some(watermark(
                [Some("0"), None, None, Some("0")],
                [Some("64"), None],
            )),
            ..profile("h264")
        };
        let speed = EncoderSpeed::default();
        let facts = source(Some(video_facts()), Some(2));
        let p = plan(&EncodeRequest {
            profile: &prof,
            facts: &facts,
            input: Path::new("/in/a.mov"),
            output: Path::new("/out/e.mp4"),
            screenshots: Some(Path::new("/out/e")),
            speed: &speed,
            watermark: Some(WatermarkInput {
                path: Path::new("/job/watermark"),
                format: "png_pipe",
            }),
        })
        .unwrap();
        for pass in &p.passes {
            assert_eq!(
                after(pass, "-i"),
                vec!["file:/in/a.mov", "file:/job/watermark"]
            );
            assert_eq!(after(pass, "-protocol_whitelist"), vec!["file", "file"]);
            let graph = after(pass, "-filter_complex")[0];
            assert!(
                graph.contains(
                    "setsar=1,format=yuv420p[base];[1:v]scale=64:-1[wm];[base][wm]overlay=x=0:y=0"
                ),
                "{graph}"
            );
        }
        assert!(after(&p.passes[1], "-filter_complex")[0].contains("split=2[v][s]"));
    }

    #[test]
    fn screenshots_of_a_finished_file() {
        let facts = source(Some(video_facts()), Some(2));
        let a = screenshot_args(&facts, Path::new("/job/e.mp4"), Path::new("/job/shot"), 3)
            .unwrap()
            .unwrap();
        let graph = after(&a, "-filter_complex")[0];
        assert!(
            graph.starts_with("[0:0]scale=1920:1080,setsar=1,format=yuv420p,setpts="),
            "{graph}"
        );
        assert!(a.contains(&"file:/job/shot_%d.jpg".to_string()) && has(&a, "-frames:v", "3"));
        assert!(
            screenshot_args(&facts, Path::new("/a"), Path::new("/b"), 0)
                .unwrap()
                .is_none()
        );
        let audio = source(None, Some(2));
        assert!(
            screenshot_args(&audio, Path::new("/a"), Path::new("/b"), 7)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn profile_options_reach_the_encoders() {
        let mut prof = profile("h264");
        prof.h264_crf = Some(20);
        prof.h264_profile = Some("baseline".into());
        prof.h264_level = Some("3.1".into());
        prof.keyframe_rate = Some(0.5);
        prof.fps = Some(30.0);
        prof.audio_channels = Some(1);
        prof.audio_sample_rate = 22050;
        let a = &plan_for(
            &prof,
            &source(Some(video_facts()), Some(2)),
            false,
            Clip::default(),
        )
        .unwrap()
        .passes[0];
        assert!(has(a, "-crf", "20") && has(a, "-maxrate", "500k") && !has(a, "-b:v", "500k"));
        assert!(has(a, "-profile:v", "baseline") && has(a, "-level", "3.1"));
        assert!(has(a, "-g", "60") && has(a, "-r", "30") && has(a, "-fps_mode", "cfr"));
        assert!(has(a, "-ac", "1") && has(a, "-ar", "22050"));

        for bad in [
            ResolvedProfile {
                h264_profile: Some("extreme".into()),
                ..profile("h264")
            },
            ResolvedProfile {
                h264_level: Some("3;rm".into()),
                ..profile("h264")
            },
            ResolvedProfile {
                audio_sample_rate: 12345,
                ..profile("h264")
            },
            ResolvedProfile {
                audio_channels: Some(6),
                ..profile("mp3")
            },
            ResolvedProfile {
                fps: Some(0.0),
                ..profile("h264")
            },
            ResolvedProfile {
                video_bitrate: Some(0),
                ..profile("webm")
            },
            ResolvedProfile {
                two_pass: true,
                h264_crf: Some(23),
                ..profile("h264")
            },
        ] {
            let err = plan_for(
                &bad,
                &source(Some(video_facts()), Some(2)),
                false,
                Clip::default(),
            );
            assert!(
                matches!(err, Err(PlanError::Invalid(_))),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn the_forced_demuxer_and_odd_paths_are_passed_safely() {
        let mut facts = source(None, Some(2));
        facts.input_format = Some("mp3".into());
        let a = &plan_for(&profile("mp3"), &facts, false, Clip::default())
            .unwrap()
            .passes[0];
        let f_at = a.iter().position(|x| x == "-f").unwrap();
        assert!(f_at < a.iter().position(|x| x == "-i").unwrap() && a[f_at + 1] == "mp3");

        let speed = EncoderSpeed::default();
        let p = plan(&EncodeRequest {
            profile: &profile("h264"),
            facts: &source(Some(video_facts()), None),
            input: Path::new("/in/http:evil"),
            output: Path::new("/out/x.mp4"),
            screenshots: Some(Path::new("/out/100%")),
            speed: &speed,
            watermark: None,
        })
        .unwrap();
        assert!(has(&p.passes[0], "-i", "file:/in/http:evil"));
        assert!(p.passes[0].contains(&"file:/out/100%%_%d.jpg".to_string()));
    }

    #[test]
    fn preview_is_one_upright_still_at_display_size() {
        let mut v = video_facts();
        v.display_width = 720;
        v.display_height = 1280;
        v.hdr = Some(Hdr::Pq);
        let a = preview_args(
            &source(Some(v), Some(2)),
            Path::new("/in/a.mov"),
            Path::new("/out/p_1.jpg"),
        )
        .unwrap();
        assert!(has(&a, "-ss", "5.000") && has(&a, "-map", "0:0") && has(&a, "-frames:v", "1"));
        let vf = after(&a, "-vf")[0];
        assert!(
            vf.starts_with("zscale=tin=smpte2084") && vf.ends_with("scale=720:1280,setsar=1"),
            "{vf}"
        );
        assert_eq!(a.last().map(String::as_str), Some("file:/out/p_1.jpg"));

        let mut short = source(Some(video_facts()), None);
        short.duration_ms = Some(1000);
        let a = preview_args(&short, Path::new("/in/a.mov"), Path::new("/out/p_1.jpg")).unwrap();
        assert!(!a.contains(&"-ss".to_string()));
        assert!(after(&a, "-vf")[0].starts_with("setpts=PTS+0.500000/TB,fps=fps=1/1.000000"));
        assert!(preview_args(&source(None, Some(2)), Path::new("/a"), Path::new("/b")).is_none());
    }

    // -- real ffmpeg runs -----------------------------------------------------

    const MEDIA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/media");

    fn fast() -> EncoderSpeed {
        EncoderSpeed {
            x264_preset: "ultrafast".into(),
            vpx_cpu_used: 8,
            threads: None,
        }
    }

    async fn run_passes(plan: &Plan, workdir: &Path) {
        use crate::media::process::{RunSpec, Runner, Tool};
        use std::time::Duration;
        let runner = Runner::new(1);
        for pass in &plan.passes {
            runner
                .run(RunSpec {
                    program: Tool::Ffmpeg,
                    args: pass,
                    workdir,
                    time_limit: Duration::from_secs(120),
                    stall_limit: Duration::from_secs(60),
                    cancel: Default::default(),
                    expected_duration_ms: plan.duration_ms,
                    on_progress: None,
                })
                .await
                .unwrap_or_else(|e| panic!("{e}\n{:?}", e.stderr_tail()));
        }
    }

    /// Encodes `name` with `preset` and checks the result with ffprobe.
    async fn encode_and_check(name: &str, preset: &str, expect: (Option<(i64, i64)>, bool)) {
        let dir = tempfile::tempdir().unwrap();
        let input = PathBuf::from(MEDIA).join(name);
        let source = probe(&input).await.unwrap();
        let prof = profile(preset);
        let output = dir.path().join(format!("out{}", prof.extname));
        let shots = dir.path().join("out");
        let speed = fast();
        let plan = plan(&EncodeRequest {
            profile: &prof,
            facts: &source,
            input: &input,
            output: &output,
            screenshots: Some(&shots),
            speed: &speed,
            watermark: None,
        })
        .unwrap();
        assert_eq!(
            plan.width.zip(plan.height),
            expect.0,
            "{name} {preset}: planned size"
        );
        run_passes(&plan, dir.path()).await;

        let out = probe(&output).await.unwrap();
        match (&out.video, expect.0) {
            (Some(v), Some(size)) => {
                assert_eq!((v.width, v.height), size, "{name} {preset}");
                assert_eq!(v.pix_fmt.as_deref(), Some("yuv420p"));
                assert_eq!(v.codec, if preset == "h264" { "h264" } else { "vp8" });
                assert_eq!(v.rotation, 0);
            }
            (None, None) => {}
            other => panic!("{name} {preset}: video {other:?}"),
        }
        assert_eq!(out.audio.is_some(), expect.1, "{name} {preset}: audio");
        assert_eq!(plan.has_audio, expect.1);
        let (got, want) = (out.duration_ms.unwrap(), source.duration_ms.unwrap());
        assert!(
            (got - want).abs() <= 250,
            "{name} {preset}: duration {got} vs {want}"
        );
        assert!(out.tags.keys().all(|k| !k.contains("location")));
        let written = (1..=20)
            .filter(|i| dir.path().join(format!("out_{i}.jpg")).exists())
            .count();
        let wanted = if expect.0.is_some() { 7 } else { 0 };
        assert_eq!(
            (written, plan.screenshot_count),
            (wanted, wanted),
            "{name} {preset}: screenshots"
        );
    }

    #[tokio::test]
    async fn real_encodes_come_out_as_planned() {
        for preset in ["h264", "webm"] {
            encode_and_check("iphone-hlg-rot90.mov", preset, (Some((270, 480)), true)).await;
            encode_and_check("odd-161x121.webm", preset, (Some((638, 480)), false)).await;
            encode_and_check("mp3-big-cover.mp3", preset, (None, true)).await;
            encode_and_check("missing-stsd.mp4", preset, (Some((640, 480)), false)).await;
        }
    }

    #[tokio::test]
    async fn preview_still_is_written_upright() {
        use crate::media::process::{RunSpec, Runner, Tool};
        let dir = tempfile::tempdir().unwrap();
        let input = PathBuf::from(MEDIA).join("iphone-hlg-rot90.mov");
        let facts = probe(&input).await.unwrap();
        let jpg = dir.path().join("p_1.jpg");
        let args = preview_args(&facts, &input, &jpg).unwrap();
        let plan = Plan {
            passes: vec![args],
            width: None,
            height: None,
            duration_ms: None,
            screenshot_count: 0,
            stills: 0,
            has_video: true,
            has_audio: false,
        };
        run_passes(&plan, dir.path()).await;
        let query: Vec<String> = [
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("file:{}", jpg.display())])
        .collect();
        let out = Runner::new(1)
            .run(RunSpec {
                program: Tool::Ffprobe,
                args: &query,
                workdir: dir.path(),
                time_limit: std::time::Duration::from_secs(30),
                stall_limit: std::time::Duration::from_secs(30),
                cancel: Default::default(),
                expected_duration_ms: None,
                on_progress: None,
            })
            .await
            .unwrap();
        assert_eq!(out.stdout.trim(), "720,1280", "portrait, upright");
    }

    // -- profile options, for real (tiny inputs, ultrafast) -------------------

    /// ffprobe's JSON for `path` with extra arguments.
    fn ffprobe_json(path: &Path, args: &[&str]) -> serde_json::Value {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-of", "json"])
            .args(args)
            .arg(path)
            .output()
            .expect("run ffprobe");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Encodes 1280x720 `bbb-51.mp4` (5.3 s) with `prof` at 320x180, x264
    /// `superfast` (ultrafast uses no Main-profile tool, so x264 would write
    /// Constrained Baseline whatever the profile asks).
    async fn encode_bbb(
        prof: ResolvedProfile,
        dir: &Path,
        wm: Option<WatermarkInput<'_>>,
    ) -> PathBuf {
        let input = PathBuf::from(MEDIA).join("bbb-51.mp4");
        let facts = probe(&input).await.unwrap();
        let prof = ResolvedProfile {
            width: Some(320),
            height: Some(180),
            ..prof
        };
        let output = dir.join("out.mp4");
        let shots = dir.join("shot");
        let speed = EncoderSpeed {
            x264_preset: "superfast".into(),
            ..fast()
        };
        let p = plan(&EncodeRequest {
            profile: &prof,
            facts: &facts,
            input: &input,
            output: &output,
            screenshots: Some(&shots),
            speed: &speed,
            watermark: wm,
        })
        .unwrap();
        run_passes(&p, dir).await;
        output
    }

    #[tokio::test]
    async fn real_clip_keyframes_and_h264_tags() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = ProfileSpec {
            preset_name: Some("h264".into()),
            clip_offset: Some("1".into()),
            clip_length: Some("3".into()),
            keyframe_rate: Some(1.0),
            h264_profile: Some("main".into()),
            h264_level: Some("3.0".into()),
            ..Default::default()
        };
        let out = encode_bbb(spec.resolve().unwrap(), dir.path(), None).await;
        let facts = probe(&out).await.unwrap();
        let duration = facts.duration_ms.unwrap();
        assert!(
            (2900..=3100).contains(&duration),
            "clip of 3 s: {duration} ms"
        );
        let stream = &ffprobe_json(&out, &["-select_streams", "v", "-show_streams"])["streams"][0];
        assert_eq!(stream["profile"], "Main");
        assert_eq!(stream["level"], 30);
        let frames = ffprobe_json(
            &out,
            &[
                "-select_streams",
                "v",
                "-skip_frame",
                "nokey",
                "-show_entries",
                "frame=pts_time",
            ],
        );
        let times: Vec<f64> = frames["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["pts_time"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(times.len(), 3, "one keyframe a second: {times:?}");
        for (i, t) in times.iter().enumerate() {
            assert!(
                (t - i as f64).abs() < 0.05,
                "keyframe {i} at {t}: {times:?}"
            );
        }

        // pandastream-tools' keyframe_interval 0.2: every 0.2 s (5 frames).
        spec.keyframe_rate = None;
        spec.keyframe_interval = Some(0.2);
        spec.clip_length = Some("1".into());
        let out = encode_bbb(spec.resolve().unwrap(), dir.path(), None).await;
        let frames = ffprobe_json(
            &out,
            &[
                "-select_streams",
                "v",
                "-skip_frame",
                "nokey",
                "-show_entries",
                "frame=pts_time",
            ],
        );
        assert_eq!(frames["frames"].as_array().unwrap().len(), 5, "{frames}");
    }

    #[tokio::test]
    async fn real_two_pass_with_a_watermark_in_the_corner() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("watermark");
        let made = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "color=c=red:s=40x40",
                "-frames:v",
                "1",
            ])
            .args(["-c:v", "png", "-f", "image2"])
            .arg(&png)
            .status()
            .unwrap();
        assert!(made.success());
        let spec = ProfileSpec {
            preset_name: Some("h264".into()),
            clip_length: Some("1".into()),
            two_pass: Some(true),
            watermark_url: Some("http://example.com/wm.png".into()),
            watermark_right: Some("10".into()),
            watermark_bottom: Some("10%".into()),
            ..Default::default()
        };
        let wm = WatermarkInput {
            path: &png,
            format: "png_pipe",
        };
        let out = encode_bbb(spec.resolve().unwrap(), dir.path(), Some(wm)).await;
        assert!(
            dir.path().join("out.mp4.passlog-0.log").exists(),
            "first pass ran"
        );
        let facts = probe(&out).await.unwrap();
        let duration = facts.duration_ms.unwrap();
        assert!((900..=1100).contains(&duration), "{duration} ms");
        assert_eq!(facts.video.map(|v| (v.width, v.height)), Some((320, 180)));

        // A frame as RGB: red where the watermark is (x 270..310, y 122..162).
        let raw = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-ss", "0.5", "-i"])
            .arg(&out)
            .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .output()
            .unwrap()
            .stdout;
        assert_eq!(raw.len(), 320 * 180 * 3);
        let mean = |x0: usize, y0: usize| {
            let mut sum = [0usize; 3];
            for y in y0..y0 + 20 {
                for x in x0..x0 + 20 {
                    for c in 0..3 {
                        sum[c] += raw[(y * 320 + x) * 3 + c] as usize;
                    }
                }
            }
            sum.map(|s| s / 400)
        };
        let inside = mean(280, 132);
        assert!(
            inside[0] > 200 && inside[1] < 60 && inside[2] < 60,
            "watermark: {inside:?}"
        );
        let outside = mean(20, 20);
        assert!(
            !(outside[0] > 200 && outside[1] < 60),
            "no red elsewhere: {outside:?}"
        );
        assert!(
            dir.path().join("shot_7.jpg").exists(),
            "screenshots still come out"
        );
    }
}
