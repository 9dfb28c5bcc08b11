//! ffprobe to typed facts: which streams to encode, their geometry and
//! colour, and the *playable* duration (headers lie: fragmented MP4s and
//! cut-down files claim days, browser recordings claim nothing).
//!
//! [`probe`] runs ffprobe once for format and streams
//! ([`probe_args`]) and parses that with the pure
//! [`facts_from_ffprobe_json`]. When the header duration is missing,
//! implausible or only estimated, or the file shows damage, it also reads
//! packet timestamps ([`packet_scan_args`], parsed by the pure
//! [`scan_packets`]): first only the end of the file, the whole file when
//! that is not enough.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::process::{ProcessError, RunSpec, Runner, Tool};

/// What probing learnt about a media file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MediaFacts {
    /// ffprobe's `format_name`, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: Option<String>,
    /// Derived from the container and streams, e.g. `video/mp4`.
    pub mime_type: Option<String>,
    /// Playable duration of the chosen streams.
    pub duration_ms: Option<i64>,
    /// Size of the file in bytes.
    pub file_size: i64,
    /// Overall bitrate.
    pub bit_rate_kbps: Option<i64>,
    /// The video stream to encode, if any.
    pub video: Option<VideoFacts>,
    /// The audio stream to encode, if any.
    pub audio: Option<AudioFacts>,
    /// Container tags, without location tags.
    pub tags: BTreeMap<String, String>,
    /// The demuxer to force with `-f` when content detection got it wrong
    /// (decided from the file extension); `None` almost always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_format: Option<String>,
}

/// The video stream chosen for encoding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VideoFacts {
    /// Absolute stream index, for `-map 0:N`.
    pub index: usize,
    /// ffprobe codec name, e.g. `h264`.
    pub codec: String,
    /// Coded width.
    pub width: i64,
    /// Coded height.
    pub height: i64,
    /// Width a player shows: after sample aspect ratio and rotation.
    pub display_width: i64,
    /// Height a player shows: after sample aspect ratio and rotation.
    pub display_height: i64,
    /// Clockwise rotation a player applies: 0, 90, 180 or 270.
    pub rotation: i64,
    /// Frame rate, when one is known and believable.
    pub fps: Option<f64>,
    /// Pixel format, e.g. `yuv420p10le`.
    pub pix_fmt: Option<String>,
    /// Bits per sample of the pixel format.
    pub bit_depth: u8,
    /// HDR transfer, when the picture needs tone mapping.
    pub hdr: Option<Hdr>,
    /// Interlaced (field-coded) picture.
    pub interlaced: bool,
    /// Bitrate of the stream.
    pub bitrate_kbps: Option<i64>,
}

/// HDR transfer characteristics.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Hdr {
    /// SMPTE ST 2084 (HDR10, Dolby Vision base layers).
    Pq,
    /// ARIB STD-B67 hybrid log-gamma.
    Hlg,
}

/// The audio stream chosen for encoding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AudioFacts {
    /// Absolute stream index, for `-map 0:N`.
    pub index: usize,
    /// ffprobe codec name, e.g. `aac`.
    pub codec: String,
    /// Samples per second.
    pub sample_rate: i64,
    /// Channel count.
    pub channels: i64,
    /// Bitrate of the stream.
    pub bitrate_kbps: Option<i64>,
}

/// Why a file could not be probed.
#[derive(thiserror::Error, Debug)]
pub enum ProbeError {
    /// The file is not usable audio or video; the message says why.
    #[error("not a playable audio or video file: {0}")]
    NotMedia(String),
    /// ffprobe is missing, crashed or timed out.
    #[error("probing failed: {0}")]
    Tool(String),
}

/// Wall-clock limit for each ffprobe run.
const PROBE_TIME_LIMIT: Duration = Duration::from_secs(30);
/// Wall-clock limit for a whole-file packet scan.
const SCAN_TIME_LIMIT: Duration = Duration::from_secs(60);
/// Below this overall bitrate (bits/s) a header duration is not believed.
const IMPLAUSIBLE_BPS: f64 = 4000.0;
/// Frame rates above this are container timebases, not frame rates.
const MAX_BELIEVABLE_FPS: f64 = 240.0;
/// Demuxers that only estimate duration (from bitrate or the first frames).
const ESTIMATED_DURATION_FORMATS: &[&str] = &[
    "mp3",
    "aac",
    "ac3",
    "eac3",
    "dts",
    "amr",
    "amrnb",
    "amrwb",
    "h264",
    "hevc",
    "m4v",
    "mpegvideo",
    "loas",
    "mp2",
    "truehd",
    "mlp",
];
/// Demuxers that open other files or URLs: never accepted as an upload.
const REFERENCE_FORMATS: &[&str] = &["hls", "applehttp", "dash", "concat", "ffconcat", "tee"];

static PROBE_RUNNER: LazyLock<Runner> = LazyLock::new(|| Runner::new(1));

/// The ffprobe arguments for the format and stream report of `path`;
/// `forced_format` adds `-f`.
pub fn probe_args(path: &Path, forced_format: Option<&str>) -> Vec<String> {
    let mut args = strings(&[
        "-hide_banner",
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
    ]);
    if let Some(format) = forced_format {
        args.extend(strings(&["-f", format]));
    }
    args.push(file_url(path));
    args
}

/// The ffprobe arguments listing packet timestamps of `path`: only from the
/// last seek point when `end_only`, else the whole file.
pub fn packet_scan_args(path: &Path, forced_format: Option<&str>, end_only: bool) -> Vec<String> {
    let mut args = strings(&["-hide_banner", "-v", "error", "-protocol_whitelist", "file"]);
    if end_only {
        // Seeks to the last index point before "forever", i.e. near the end.
        args.extend(strings(&["-read_intervals", "99999999%"]));
    }
    args.extend(strings(&[
        "-show_entries",
        "packet=stream_index,pts_time,dts_time,duration_time",
        "-print_format",
        "compact=p=0",
    ]));
    if let Some(format) = forced_format {
        args.extend(strings(&["-f", format]));
    }
    args.push(file_url(path));
    args
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `file:` + the path, so that no name is read as a protocol.
fn file_url(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// Probes a local file: streams, geometry, colour, playable duration.
pub async fn probe(path: &Path) -> Result<MediaFacts, ProbeError> {
    let path = std::path::absolute(path)
        .map_err(|e| ProbeError::Tool(format!("cannot resolve {}: {e}", path.display())))?;
    let file_size = file_size(&path).await?;
    if file_size == 0 {
        return Err(ProbeError::NotMedia("the file is empty (0 bytes)".into()));
    }
    let workdir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut analysis = match run_probe(&path, &workdir, None).await {
        Ok(json) => analyse(&json, file_size),
        Err(e) => Err(e),
    };
    if let Some(format) = demuxer_for_extension(&path)
        && should_force_format(&analysis, format)
    {
        let forced = run_probe(&path, &workdir, Some(format))
            .await
            .and_then(|json| analyse(&json, file_size));
        if let Ok(mut forced) = forced {
            forced.facts.input_format = Some(format.to_string());
            forced.scan = forced.scan.max(Scan::EndOnly);
            analysis = Ok(forced);
        }
    }
    let analysis = analysis?;
    refine_duration(analysis, &path, &workdir).await
}

async fn file_size(path: &Path) -> Result<i64, ProbeError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| ProbeError::Tool(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(ProbeError::NotMedia("it is not a regular file".into()));
    }
    Ok(i64::try_from(meta.len()).unwrap_or(i64::MAX))
}

/// Content detection with a low score that disagrees with the extension is
/// retried with the extension's demuxer (an MP3 after junk bytes is otherwise
/// read as AMR noise).
fn should_force_format(analysis: &Result<Analysis, ProbeError>, ext_format: &str) -> bool {
    match analysis {
        Ok(a) => {
            let detected = a.facts.container.as_deref().unwrap_or("");
            a.probe_score.is_some_and(|s| s < 50) && !detected.split(',').any(|d| d == ext_format)
        }
        Err(ProbeError::NotMedia(_)) => false,
        Err(ProbeError::Tool(_)) => false,
    }
}

/// The demuxer that a file extension implies, for the few formats where
/// forcing it is safe and useful.
fn demuxer_for_extension(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "mp3" => "mp3",
        "aac" => "aac",
        "ac3" => "ac3",
        "flac" => "flac",
        "wav" => "wav",
        "ogg" | "oga" | "ogv" | "opus" => "ogg",
        _ => return None,
    })
}

async fn run_ffprobe(
    args: &[String],
    workdir: &Path,
    time_limit: Duration,
) -> Result<super::process::RunOutput, ProcessError> {
    PROBE_RUNNER
        .run(RunSpec {
            program: Tool::Ffprobe,
            args,
            workdir,
            time_limit,
            stall_limit: time_limit,
            cancel: CancellationToken::new(),
            expected_duration_ms: None,
            on_progress: None,
        })
        .await
}

async fn run_probe(
    path: &Path,
    workdir: &Path,
    forced_format: Option<&str>,
) -> Result<String, ProbeError> {
    let args = probe_args(path, forced_format);
    match run_ffprobe(&args, workdir, PROBE_TIME_LIMIT).await {
        Ok(out) => Ok(out.stdout),
        Err(ProcessError::Failed { stderr_tail, .. }) => {
            Err(classify_ffprobe_failure(&stderr_tail))
        }
        Err(e) => Err(ProbeError::Tool(e.to_string())),
    }
}

/// An ffprobe error about the input means "not media"; one about our side
/// (missing file, permissions) is a tool error.
fn classify_ffprobe_failure(stderr: &str) -> ProbeError {
    let line = super::process::telling_line(stderr).unwrap_or("ffprobe failed silently");
    // ffprobe prints "<url>: <reason>"; keep the reason.
    let reason = line
        .strip_prefix("file:")
        .and_then(|rest| rest.rsplit_once(": ").map(|(_, r)| r))
        .unwrap_or(line)
        .trim()
        .to_string();
    let ours = [
        "No such file or directory",
        "Permission denied",
        "Protocol not found",
    ];
    if ours.iter().any(|o| reason.contains(o)) {
        return ProbeError::Tool(format!("ffprobe could not open the file: {reason}"));
    }
    let hint = match reason.as_str() {
        "End of file" => " (the file ends before its headers do: truncated or damaged)",
        "Invalid data found when processing input" => {
            " (not a known audio or video format, or damaged)"
        }
        _ => "",
    };
    ProbeError::NotMedia(format!("ffprobe could not read it: {reason}{hint}"))
}

/// How much packet scanning the duration needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scan {
    /// The header is good enough.
    None,
    /// Read the packets after the last seek point (cheap).
    EndOnly,
    /// Read every packet (only when the file is suspicious).
    Full,
}

/// The parsed report plus what it leaves open.
#[derive(Debug)]
struct Analysis {
    facts: MediaFacts,
    probe_score: Option<i64>,
    scan: Scan,
    /// Start of the chosen streams in seconds (where the timeline begins).
    start_s: f64,
    /// Header duration (believed or not), for messages.
    claimed_s: Option<f64>,
    /// Streams passed over as broken, in words.
    problems: Vec<String>,
}

async fn refine_duration(
    mut analysis: Analysis,
    path: &Path,
    workdir: &Path,
) -> Result<MediaFacts, ProbeError> {
    if analysis.scan == Scan::None {
        return Ok(analysis.facts);
    }
    let forced = analysis.facts.input_format.clone();
    let chosen = chosen_streams(&analysis.facts);
    let mut scanned = None;
    if analysis.scan == Scan::EndOnly {
        let args = packet_scan_args(path, forced.as_deref(), true);
        let out = run_ffprobe(&args, workdir, PROBE_TIME_LIMIT).await;
        if let Ok(out) = out {
            let scan = scan_packets(&out.stdout, &chosen);
            if scan.streams.values().any(|s| s.end_s.is_some()) {
                scanned = Some(scan);
            }
        }
    }
    if scanned.is_none() {
        let args = packet_scan_args(path, forced.as_deref(), false);
        match run_ffprobe(&args, workdir, SCAN_TIME_LIMIT).await {
            Ok(out) if !out.stdout_truncated => {
                reject_truncated_damage(&analysis, &out.stderr_tail)?;
                let scan = scan_packets(&out.stdout, &chosen);
                analysis = drop_empty_streams(analysis, &scan)?;
                scanned = Some(scan);
            }
            // Too long to scan, or the scan failed: keep the header's word.
            Ok(_) | Err(_) => {}
        }
    }
    if let Some(scan) = scanned {
        analysis.facts = apply_scan(analysis.facts, &scan, analysis.start_s);
    }
    if analysis.facts.duration_ms.is_none()
        && let Some(claimed) = analysis.claimed_s
        && claimed > 0.0
    {
        // Nothing better could be measured: fall back to the header.
        analysis.facts.duration_ms = Some((claimed * 1000.0).round() as i64);
    }
    Ok(analysis.facts)
}

/// A file that is both cut off and has broken streams is beyond use: what
/// is left decodes to noise.
fn reject_truncated_damage(analysis: &Analysis, scan_stderr: &str) -> Result<(), ProbeError> {
    if analysis.problems.is_empty() || !scan_stderr.contains("partial file") {
        return Ok(());
    }
    Err(ProbeError::NotMedia(format!(
        "the file is truncated and damaged: {}",
        analysis.problems.join("; ")
    )))
}

fn chosen_streams(facts: &MediaFacts) -> Vec<usize> {
    facts
        .video
        .iter()
        .map(|v| v.index)
        .chain(facts.audio.iter().map(|a| a.index))
        .collect()
}

/// After a whole-file scan: a chosen stream without a single packet holds
/// nothing to encode.
fn drop_empty_streams(mut analysis: Analysis, scan: &PacketScan) -> Result<Analysis, ProbeError> {
    let empty = |index: usize| scan.streams.get(&index).is_none_or(|s| s.packets == 0);
    let mut dropped = Vec::new();
    if let Some(v) = &analysis.facts.video
        && empty(v.index)
    {
        dropped.push(format!("the video stream ({}) holds no frames", v.codec));
        analysis.facts.video = None;
    }
    if let Some(a) = &analysis.facts.audio
        && empty(a.index)
    {
        dropped.push(format!("the audio stream ({}) holds no samples", a.codec));
        analysis.facts.audio = None;
    }
    if analysis.facts.video.is_none() && analysis.facts.audio.is_none() {
        let claim = match analysis.claimed_s {
            Some(s) if s > 0.0 => format!(" although the header claims {}", human_duration(s)),
            _ => String::new(),
        };
        let mut reasons = analysis.problems.clone();
        reasons.push(format!("{}{claim}", dropped.join(" and ")));
        return Err(ProbeError::NotMedia(format!(
            "{} (the file is truncated or damaged)",
            reasons.join("; ")
        )));
    }
    Ok(analysis)
}

/// Per-stream extent of the packets seen by a scan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamExtent {
    /// Packets seen.
    pub packets: usize,
    /// Earliest timestamp seen, seconds.
    pub start_s: Option<f64>,
    /// Latest timestamp plus that packet's duration, seconds.
    pub end_s: Option<f64>,
}

/// Result of a packet scan, for the streams asked about.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PacketScan {
    /// Extent by absolute stream index.
    pub streams: BTreeMap<usize, StreamExtent>,
}

/// Parses the output of [`packet_scan_args`] (`compact=p=0` lines of
/// `stream_index=…|pts_time=…|dts_time=…|duration_time=…`) for the given
/// streams. Pure.
pub fn scan_packets(output: &str, streams: &[usize]) -> PacketScan {
    let mut scan = PacketScan {
        streams: streams
            .iter()
            .map(|i| (*i, StreamExtent::default()))
            .collect(),
    };
    for line in output.lines() {
        let mut index = None;
        let (mut pts, mut dts, mut dur) = (None, None, None);
        for field in line.split('|') {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            match key {
                "stream_index" => index = value.parse::<usize>().ok(),
                "pts_time" => pts = parse_finite(value),
                "dts_time" => dts = parse_finite(value),
                "duration_time" => dur = parse_finite(value),
                _ => {}
            }
        }
        let Some(extent) = index.and_then(|i| scan.streams.get_mut(&i)) else {
            continue;
        };
        extent.packets += 1;
        if let Some(t) = pts.or(dts) {
            extent.start_s = Some(extent.start_s.map_or(t, |s| s.min(t)));
            let end = t + dur.unwrap_or(0.0).max(0.0);
            extent.end_s = Some(extent.end_s.map_or(end, |e| e.max(end)));
        }
    }
    scan
}

fn parse_finite(value: &str) -> Option<f64> {
    value.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Sets the duration from a scan: the latest end among the chosen streams,
/// from the start of the timeline.
fn apply_scan(mut facts: MediaFacts, scan: &PacketScan, header_start_s: f64) -> MediaFacts {
    let chosen = chosen_streams(&facts);
    let extents: Vec<&StreamExtent> = chosen.iter().filter_map(|i| scan.streams.get(i)).collect();
    let end = extents.iter().filter_map(|e| e.end_s).fold(None, max_opt);
    let scanned_start = extents.iter().filter_map(|e| e.start_s).fold(None, min_opt);
    // An end-only scan does not see the start; the header's start is used then.
    let start = match scanned_start {
        Some(s) => s.min(header_start_s),
        None => header_start_s,
    };
    // A single frame without a duration measures zero: keep the header's word.
    if let Some(end) = end.filter(|e| *e > start) {
        let seconds = end - start;
        facts.duration_ms = Some((seconds * 1000.0).round() as i64);
        if facts.bit_rate_kbps.is_none() && seconds > 0.0 {
            facts.bit_rate_kbps =
                Some((facts.file_size as f64 * 8.0 / seconds / 1000.0).round() as i64);
        }
    }
    facts
}

fn max_opt(acc: Option<f64>, v: f64) -> Option<f64> {
    Some(acc.map_or(v, |a| a.max(v)))
}

fn min_opt(acc: Option<f64>, v: f64) -> Option<f64> {
    Some(acc.map_or(v, |a| a.min(v)))
}

// ---------------------------------------------------------------------------
// The ffprobe JSON report.

#[derive(Deserialize, Default)]
struct Report {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Deserialize, Default)]
struct RawFormat {
    format_name: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
    probe_score: Option<i64>,
    #[serde(default)]
    tags: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct RawStream {
    index: usize,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<i64>,
    height: Option<i64>,
    pix_fmt: Option<String>,
    sample_aspect_ratio: Option<String>,
    r_frame_rate: Option<String>,
    avg_frame_rate: Option<String>,
    field_order: Option<String>,
    color_transfer: Option<String>,
    bits_per_raw_sample: Option<String>,
    sample_rate: Option<String>,
    channels: Option<i64>,
    bit_rate: Option<String>,
    start_time: Option<String>,
    duration: Option<String>,
    nb_frames: Option<String>,
    #[serde(default)]
    disposition: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    tags: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    side_data_list: Vec<BTreeMap<String, serde_json::Value>>,
}

impl RawStream {
    fn kind(&self) -> &str {
        self.codec_type.as_deref().unwrap_or("")
    }

    fn codec(&self) -> Option<&str> {
        self.codec_name
            .as_deref()
            .filter(|c| !c.is_empty() && *c != "none")
    }

    fn is_cover_art(&self) -> bool {
        self.disposition
            .get("attached_pic")
            .and_then(serde_json::Value::as_i64)
            == Some(1)
    }

    fn duration_s(&self) -> Option<f64> {
        self.duration
            .as_deref()
            .and_then(parse_finite)
            .filter(|d| *d > 0.0)
    }

    fn start_s(&self) -> f64 {
        self.start_time
            .as_deref()
            .and_then(parse_finite)
            .unwrap_or(0.0)
    }

    fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str())
    }

    fn bitrate_kbps(&self) -> Option<i64> {
        let bps = self
            .bit_rate
            .as_deref()
            .or_else(|| self.tag("BPS"))
            .and_then(|b| b.parse::<f64>().ok())?;
        (bps > 0.0).then(|| (bps / 1000.0).round() as i64)
    }

    /// Describes the stream in a few words for messages, e.g. `vp9 320x240`.
    fn label(&self) -> String {
        let codec = self.codec().unwrap_or("unknown codec");
        match (self.width, self.height) {
            (Some(w), Some(h)) if self.kind() == "video" => format!("{codec} {w}x{h}"),
            _ => codec.to_string(),
        }
    }
}

/// Builds [`MediaFacts`] from ffprobe's JSON report ([`probe_args`]). Pure.
///
/// `duration_ms` here is the header's word when it is believable and `None`
/// when it is missing or implausible; [`probe`] then measures it.
pub fn facts_from_ffprobe_json(json: &str, file_size: i64) -> Result<MediaFacts, ProbeError> {
    analyse(json, file_size).map(|a| a.facts)
}

fn analyse(json: &str, file_size: i64) -> Result<Analysis, ProbeError> {
    let report: Report = serde_json::from_str(json)
        .map_err(|e| ProbeError::Tool(format!("ffprobe printed something unreadable: {e}")))?;
    let format = report.format.unwrap_or_default();
    let container = format.format_name.clone();
    reject_unsupported_container(container.as_deref(), &report.streams)?;

    let mut problems = Vec::new();
    let video = choose_video(&report.streams, &mut problems);
    let audio = choose_audio(&report.streams, &mut problems);
    if video.is_none() && audio.is_none() {
        return Err(ProbeError::NotMedia(nothing_playable(
            &report.streams,
            &problems,
        )));
    }
    let chosen: Vec<&RawStream> = report
        .streams
        .iter()
        .filter(|s| {
            Some(s.index) == video.as_ref().map(|v| v.index)
                || Some(s.index) == audio.as_ref().map(|a| a.index)
        })
        .collect();

    let header = header_duration(&format, &chosen);
    let start_s = chosen
        .iter()
        .map(|s| s.start_s())
        .fold(f64::INFINITY, f64::min);
    let start_s = if start_s.is_finite() { start_s } else { 0.0 };
    let believable = header.filter(|d| plausible(*d, file_size));
    let scan = scan_needed(&format, &chosen, header, believable, !problems.is_empty());

    let bit_rate_kbps = format
        .bit_rate
        .as_deref()
        .and_then(|b| b.parse::<f64>().ok())
        .filter(|b| *b > 0.0 && believable.is_some())
        .map(|b| (b / 1000.0).round() as i64)
        .or_else(|| believable.map(|d| (file_size as f64 * 8.0 / d / 1000.0).round() as i64));

    let mime_type = mime_type(
        container.as_deref(),
        &format,
        video.as_ref(),
        audio.as_ref(),
    );
    let facts = MediaFacts {
        container,
        mime_type,
        duration_ms: believable.map(|d| (d * 1000.0).round() as i64),
        file_size,
        bit_rate_kbps,
        video,
        audio,
        tags: safe_tags(&format.tags),
        input_format: None,
    };
    Ok(Analysis {
        facts,
        probe_score: format.probe_score,
        scan,
        start_s,
        claimed_s: header,
        problems,
    })
}

fn reject_unsupported_container(
    container: Option<&str>,
    streams: &[RawStream],
) -> Result<(), ProbeError> {
    let Some(container) = container else {
        return Ok(());
    };
    let names: Vec<&str> = container.split(',').collect();
    if names.iter().any(|n| REFERENCE_FORMATS.contains(n)) {
        return Err(ProbeError::NotMedia(format!(
            "it is a playlist or manifest ({container}) that points at other files; upload the media file itself"
        )));
    }
    let still_demuxer = names.iter().any(|n| *n == "image2" || n.ends_with("_pipe"));
    let single_frame_gif = container == "gif"
        && streams
            .iter()
            .any(|s| s.kind() == "video" && s.nb_frames.as_deref() == Some("1"));
    if still_demuxer || single_frame_gif {
        let codec = streams.iter().find_map(|s| s.codec()).unwrap_or("image");
        return Err(ProbeError::NotMedia(format!(
            "it is a still image ({codec}), not audio or video"
        )));
    }
    Ok(())
}

fn nothing_playable(streams: &[RawStream], problems: &[String]) -> String {
    if streams.is_empty() {
        return "no audio or video stream found".into();
    }
    if problems.is_empty() {
        let mut kinds: Vec<String> = streams
            .iter()
            .map(|s| {
                if s.is_cover_art() {
                    "cover picture".to_string()
                } else {
                    s.codec_type.clone().unwrap_or_else(|| "unknown".into())
                }
            })
            .collect();
        kinds.dedup();
        return format!("no audio or video stream found (only {})", kinds.join(", "));
    }
    problems.join("; ")
}

/// First real video stream: not cover art, with a size and a pixel format
/// (no pixel format means ffprobe could not decode a single frame).
fn choose_video(streams: &[RawStream], problems: &mut Vec<String>) -> Option<VideoFacts> {
    let mut chosen = None;
    let mut rejected = Vec::new();
    for s in streams
        .iter()
        .filter(|s| s.kind() == "video" && !s.is_cover_art())
    {
        match video_problem(s) {
            Some(problem) => rejected.push(format!("the video stream ({}) {problem}", s.label())),
            None if chosen.is_none() => chosen = Some(video_facts(s)),
            None => {}
        }
    }
    // A broken extra track beside a good one makes the file suspicious too.
    problems.extend(rejected);
    chosen
}

fn video_problem(s: &RawStream) -> Option<&'static str> {
    if s.codec().is_none() {
        return Some("uses an unknown codec");
    }
    let (w, h) = (s.width.unwrap_or(0), s.height.unwrap_or(0));
    if w <= 0 || h <= 0 {
        return Some("has no picture size (its header is incomplete)");
    }
    if s.pix_fmt
        .as_deref()
        .is_none_or(|p| p.is_empty() || p == "none")
    {
        return Some("cannot be decoded: no frame could be read (the data is damaged or empty)");
    }
    None
}

fn video_facts(s: &RawStream) -> VideoFacts {
    let width = s.width.unwrap_or(0);
    let height = s.height.unwrap_or(0);
    let rotation = rotation(s);
    let (display_width, display_height) = display_size(
        width,
        height,
        parse_ratio(s.sample_aspect_ratio.as_deref()),
        rotation,
    );
    let pix_fmt = s.pix_fmt.clone();
    VideoFacts {
        index: s.index,
        codec: s.codec().unwrap_or("unknown").to_string(),
        width,
        height,
        display_width,
        display_height,
        rotation,
        fps: frame_rate(s),
        bit_depth: bit_depth(pix_fmt.as_deref(), s.bits_per_raw_sample.as_deref()),
        hdr: hdr(s),
        interlaced: matches!(s.field_order.as_deref(), Some("tt" | "bb" | "tb" | "bt")),
        bitrate_kbps: s.bitrate_kbps(),
        pix_fmt,
    }
}

/// First audio stream a decoder can work with.
fn choose_audio(streams: &[RawStream], problems: &mut Vec<String>) -> Option<AudioFacts> {
    let mut chosen = None;
    for s in streams.iter().filter(|s| s.kind() == "audio") {
        let sample_rate = s
            .sample_rate
            .as_deref()
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0);
        let channels = s.channels.unwrap_or(0);
        let problem = if s.codec().is_none() {
            Some("has no usable codec description (codec unknown, 0 Hz, 0 channels)")
        } else if sample_rate <= 0 || channels <= 0 {
            Some("has no sample rate or channel count")
        } else {
            None
        };
        match problem {
            Some(p) => problems.push(format!("the audio stream ({}) {p}", s.label())),
            None if chosen.is_none() => {
                chosen = Some(AudioFacts {
                    index: s.index,
                    codec: s.codec().unwrap_or("unknown").to_string(),
                    sample_rate,
                    channels,
                    bitrate_kbps: s.bitrate_kbps(),
                })
            }
            None => {}
        }
    }
    chosen
}

/// Clockwise degrees a player turns the picture: from the display matrix
/// (ffprobe reports it counter-clockwise) or the legacy `rotate` tag.
fn rotation(s: &RawStream) -> i64 {
    let from_matrix = s
        .side_data_list
        .iter()
        .filter(|d| d.get("side_data_type").and_then(|t| t.as_str()) == Some("Display Matrix"))
        .find_map(|d| d.get("rotation").and_then(serde_json::Value::as_f64))
        .map(|ccw| -ccw);
    let degrees = from_matrix
        .or_else(|| s.tag("rotate").and_then(parse_finite))
        .unwrap_or(0.0);
    let quarter = (degrees / 90.0).round() as i64;
    (quarter.rem_euclid(4)) * 90
}

fn parse_ratio(value: Option<&str>) -> Option<f64> {
    let (num, den) = value?.split_once([':', '/'])?;
    let (num, den) = (
        num.trim().parse::<f64>().ok()?,
        den.trim().parse::<f64>().ok()?,
    );
    (num > 0.0 && den > 0.0)
        .then_some(num / den)
        .filter(|r| r.is_finite())
}

/// What a player shows: the width stretched by the sample aspect ratio, then
/// the sides swapped for quarter turns.
fn display_size(width: i64, height: i64, sar: Option<f64>, rotation: i64) -> (i64, i64) {
    let sar = sar.filter(|r| (0.1..=10.0).contains(r)).unwrap_or(1.0);
    let w = ((width as f64 * sar).round() as i64).max(1);
    let h = height.max(1);
    if rotation % 180 == 90 { (h, w) } else { (w, h) }
}

/// The believable frame rate: average, else nominal, else frames/duration.
fn frame_rate(s: &RawStream) -> Option<f64> {
    let believable = |r: f64| r > 0.0 && r <= MAX_BELIEVABLE_FPS;
    let counted = || {
        let frames: f64 = s.nb_frames.as_deref()?.parse().ok()?;
        let duration = s.duration_s()?;
        (frames > 1.0).then(|| frames / duration)
    };
    [
        parse_ratio(s.avg_frame_rate.as_deref()),
        parse_ratio(s.r_frame_rate.as_deref()),
        counted(),
    ]
    .into_iter()
    .flatten()
    .find(|r| believable(*r))
    .map(|r| (r * 1000.0).round() / 1000.0)
}

fn bit_depth(pix_fmt: Option<&str>, bits_per_raw_sample: Option<&str>) -> u8 {
    if let Some(p) = pix_fmt {
        for (marker, depth) in [("16", 16), ("14", 14), ("12", 12), ("10", 10), ("9", 9)] {
            if p.contains(&format!("p{marker}"))
                || p.ends_with(&format!("{marker}le"))
                || p.ends_with(&format!("{marker}be"))
            {
                return depth;
            }
        }
        return 8;
    }
    bits_per_raw_sample
        .and_then(|b| b.parse::<u8>().ok())
        .filter(|b| (8..=16).contains(b))
        .unwrap_or(8)
}

/// HDR from the transfer characteristics; HDR10 mastering metadata on a
/// deep-colour stream without transfer information counts as PQ.
fn hdr(s: &RawStream) -> Option<Hdr> {
    match s.color_transfer.as_deref() {
        Some("smpte2084") => return Some(Hdr::Pq),
        Some("arib-std-b67") => return Some(Hdr::Hlg),
        Some(t) if !t.is_empty() && t != "unknown" => return None,
        _ => {}
    }
    let deep = bit_depth(s.pix_fmt.as_deref(), s.bits_per_raw_sample.as_deref()) >= 10;
    let mastering = s.side_data_list.iter().any(|d| {
        matches!(
            d.get("side_data_type").and_then(|t| t.as_str()),
            Some("Mastering display metadata" | "Content light level metadata")
        )
    });
    (deep && mastering).then_some(Hdr::Pq)
}

/// Duration from the header: the chosen streams' extent when they all state
/// one, else the container's.
fn header_duration(format: &RawFormat, chosen: &[&RawStream]) -> Option<f64> {
    let ends: Option<Vec<(f64, f64)>> = chosen
        .iter()
        .map(|s| s.duration_s().map(|d| (s.start_s(), s.start_s() + d)))
        .collect();
    if let Some(ends) = ends.filter(|e| !e.is_empty()) {
        let start = ends.iter().map(|e| e.0).fold(f64::INFINITY, f64::min);
        let end = ends.iter().map(|e| e.1).fold(f64::NEG_INFINITY, f64::max);
        if end > start {
            return Some(end - start);
        }
    }
    format
        .duration
        .as_deref()
        .and_then(parse_finite)
        .filter(|d| *d > 0.0)
}

/// A header duration that the file's size cannot back is a lie (fragmented
/// MP4 placeholders, cut-down files).
fn plausible(duration_s: f64, file_size: i64) -> bool {
    duration_s > 0.0 && (file_size as f64 * 8.0 / duration_s) >= IMPLAUSIBLE_BPS
}

fn scan_needed(
    format: &RawFormat,
    chosen: &[&RawStream],
    header: Option<f64>,
    believable: Option<f64>,
    damaged: bool,
) -> Scan {
    if damaged || (header.is_some() && believable.is_none()) {
        return Scan::Full;
    }
    let estimated = format.format_name.as_deref().is_some_and(|f| {
        f.split(',')
            .any(|n| ESTIMATED_DURATION_FORMATS.contains(&n))
    });
    let stream_without_duration = chosen.iter().any(|s| s.duration_s().is_none());
    if believable.is_none() || estimated || stream_without_duration {
        return Scan::EndOnly;
    }
    Scan::None
}

/// Container tags minus anything that locates the recording.
fn safe_tags(tags: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| !is_location_tag(k))
        .filter_map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), value))
        })
        .collect()
}

/// Location, GPS and ISO 6709 tags in their many spellings.
pub fn is_location_tag(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "location",
        "gps",
        "iso6709",
        "xyz",
        "coordinates",
        "latitude",
        "longitude",
        "geo",
    ]
    .iter()
    .any(|needle| k.contains(needle))
}

fn mime_type(
    container: Option<&str>,
    format: &RawFormat,
    video: Option<&VideoFacts>,
    audio: Option<&AudioFacts>,
) -> Option<String> {
    let first = container?.split(',').next()?;
    let has_video = video.is_some();
    let av = |v: &'static str, a: &'static str| if has_video { v } else { a };
    let brand = format
        .tags
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("major_brand"))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mime = match first {
        "mov" => {
            if brand == "qt" {
                "video/quicktime"
            } else if brand.starts_with("3g") {
                av("video/3gpp", "audio/3gpp")
            } else {
                av("video/mp4", "audio/mp4")
            }
        }
        "matroska" => {
            let webm_video =
                video.is_none_or(|v| matches!(v.codec.as_str(), "vp8" | "vp9" | "av1"));
            let webm_audio = audio.is_none_or(|a| matches!(a.codec.as_str(), "vorbis" | "opus"));
            if webm_video && webm_audio {
                av("video/webm", "audio/webm")
            } else {
                av("video/x-matroska", "audio/x-matroska")
            }
        }
        "mp3" => "audio/mpeg",
        "ogg" => av("video/ogg", "audio/ogg"),
        "flac" => "audio/flac",
        "wav" => "audio/x-wav",
        "aiff" => "audio/x-aiff",
        "avi" => "video/x-msvideo",
        "flv" => "video/x-flv",
        "asf" => av("video/x-ms-wmv", "audio/x-ms-wma"),
        "mpegts" => "video/mp2t",
        "mpeg" => "video/mpeg",
        "gif" => "image/gif",
        "aac" => "audio/aac",
        "amr" | "amrnb" | "amrwb" => "audio/amr",
        "dv" => "video/x-dv",
        "ac3" => "audio/ac3",
        "rm" => "application/vnd.rn-realmedia",
        _ => return None,
    };
    Some(mime.to_string())
}

// ---------------------------------------------------------------------------
// metadata.json

/// The flat, exiftool-like object served as `GET /videos/:id/metadata.json`.
pub fn metadata_json(facts: &MediaFacts) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{Value, json};
    let mut m = serde_json::Map::new();
    for (key, value) in &facts.tags {
        if !is_location_tag(key) {
            m.insert(snake_case(key), Value::String(value.clone()));
        }
    }
    if let Some(mime) = &facts.mime_type {
        m.insert("mime_type".into(), json!(mime));
    }
    m.insert("file_size".into(), json!(human_file_size(facts.file_size)));
    if let Some(ms) = facts.duration_ms {
        m.insert("duration".into(), json!(human_duration(ms as f64 / 1000.0)));
    }
    if let Some(kbps) = facts.bit_rate_kbps {
        m.insert("avg_bitrate".into(), json!(format!("{kbps} kbps")));
    }
    if let Some(v) = &facts.video {
        m.insert("image_width".into(), json!(v.display_width));
        m.insert("image_height".into(), json!(v.display_height));
        m.insert("rotation".into(), json!(v.rotation));
        m.insert("video_codec".into(), json!(v.codec));
        m.insert("compressor_id".into(), json!(fourcc(&v.codec)));
        if let Some(fps) = v.fps {
            m.insert("video_frame_rate".into(), json!(fps));
        }
        if let Some(p) = &v.pix_fmt {
            m.insert("pixel_format".into(), json!(p));
        }
        m.insert("bit_depth".into(), json!(v.bit_depth));
        if let Some(hdr) = v.hdr {
            m.insert(
                "hdr".into(),
                json!(match hdr {
                    Hdr::Pq => "PQ",
                    Hdr::Hlg => "HLG",
                }),
            );
        }
    }
    if let Some(a) = &facts.audio {
        m.insert("audio_format".into(), json!(fourcc(&a.codec)));
        m.insert("audio_codec".into(), json!(a.codec));
        m.insert("audio_sample_rate".into(), json!(a.sample_rate));
        m.insert("audio_channels".into(), json!(a.channels));
    }
    m
}

/// The sample-entry code exiftool shows for common codecs, else the name.
fn fourcc(codec: &str) -> String {
    match codec {
        "h264" => "avc1",
        "hevc" => "hvc1",
        "av1" => "av01",
        "vp9" => "vp09",
        "vp8" => "vp08",
        "mpeg4" => "mp4v",
        "h263" => "s263",
        "aac" => "mp4a",
        "ac3" => "ac-3",
        "eac3" => "ec-3",
        "alac" => "alac",
        "opus" => "Opus",
        "mp3" => ".mp3",
        other => other,
    }
    .to_string()
}

fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut prev_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    out.trim_end_matches('_').to_string()
}

/// exiftool's duration style: `19.35 s` below half a minute, else `H:MM:SS`.
pub fn human_duration(seconds: f64) -> String {
    if seconds < 30.0 {
        format!("{seconds:.2} s")
    } else {
        let total = seconds.round() as i64;
        format!("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60)
    }
}

/// exiftool's file size style: `512 bytes`, `9.8 kB`, `1435 kB`, `2.3 MB`.
pub fn human_file_size(bytes: i64) -> String {
    let b = bytes as f64;
    const K: f64 = 1024.0;
    if bytes < 2048 {
        format!("{bytes} bytes")
    } else if b < 10.0 * K {
        format!("{:.1} kB", b / K)
    } else if b < 2.0 * K * K {
        format!("{:.0} kB", b / K)
    } else if b < 10.0 * K * K {
        format!("{:.1} MB", b / K / K)
    } else if b < 2.0 * K * K * K {
        format!("{:.0} MB", b / K / K)
    } else if b < 10.0 * K * K * K {
        format!("{:.1} GB", b / K / K / K)
    } else {
        format!("{:.0} GB", b / K / K / K)
    }
}

/// What ffprobe says about a still image (a watermark).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFacts {
    /// The demuxer, e.g. `png_pipe`; forced when the image is used, so the
    /// file is read as nothing else.
    pub format: String,
    /// The codec, e.g. `png`.
    pub codec: String,
    pub width: i64,
    pub height: i64,
}

/// Demuxers of still images accepted as watermarks, and their codecs.
const IMAGE_FORMATS: &[(&str, &str)] = &[
    ("png_pipe", "png"),
    ("jpeg_pipe", "mjpeg"),
    ("gif", "gif"),
    ("webp_pipe", "webp"),
    ("bmp_pipe", "bmp"),
    ("tiff_pipe", "tiff"),
];
/// Largest watermark side in pixels.
const MAX_IMAGE_SIDE: i64 = 8192;

/// Probes a file that must be a single still image (PNG, JPEG, GIF, WebP,
/// BMP or TIFF): a downloaded watermark is checked before ffmpeg reads it
/// as an overlay input.
pub async fn probe_image(path: &Path) -> Result<ImageFacts, ProbeError> {
    let path = std::path::absolute(path)
        .map_err(|e| ProbeError::Tool(format!("cannot resolve {}: {e}", path.display())))?;
    if file_size(&path).await? == 0 {
        return Err(ProbeError::NotMedia("the file is empty (0 bytes)".into()));
    }
    let workdir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let json = run_probe(&path, &workdir, None).await?;
    image_facts(&json)
}

/// The image facts of an ffprobe report, or why it is not an image.
fn image_facts(json: &str) -> Result<ImageFacts, ProbeError> {
    let report: Report = serde_json::from_str(json)
        .map_err(|e| ProbeError::Tool(format!("ffprobe printed unreadable JSON: {e}")))?;
    let format = report
        .format
        .and_then(|f| f.format_name)
        .unwrap_or_default();
    // `image2` is what ffprobe names a picture by its file extension.
    let codec_of_image2 = report.streams.first().and_then(|s| s.codec_name.as_deref());
    let by_extension = IMAGE_FORMATS
        .iter()
        .find(|(_, c)| format == "image2" && Some(*c) == codec_of_image2);
    let Some((_, codec)) = IMAGE_FORMATS
        .iter()
        .find(|(f, _)| *f == format)
        .or(by_extension)
    else {
        let known: Vec<&str> = IMAGE_FORMATS.iter().map(|(f, _)| *f).collect();
        return Err(ProbeError::NotMedia(format!(
            "it is {format:?}, not a still image ({})",
            known.join(", ")
        )));
    };
    let [stream] = report.streams.as_slice() else {
        return Err(ProbeError::NotMedia(format!(
            "an image has one stream; this file has {}",
            report.streams.len()
        )));
    };
    let (width, height) = (stream.width.unwrap_or(0), stream.height.unwrap_or(0));
    let sides_ok = (1..=MAX_IMAGE_SIDE).contains(&width) && (1..=MAX_IMAGE_SIDE).contains(&height);
    if stream.kind() != "video" || stream.codec_name.as_deref() != Some(codec) || !sides_ok {
        return Err(ProbeError::NotMedia(format!(
            "the {format} stream is not a usable {codec} picture ({width}x{height})"
        )));
    }
    Ok(ImageFacts {
        format: format.to_string(),
        codec: codec.to_string(),
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const MEDIA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/media");
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ffprobe");

    /// Files with a golden `probe_args` report in `tests/fixtures/ffprobe`.
    const GOLDEN: &[&str] = &[
        "audiobook-bad-duration.m4b",
        "covers-2x2.m4a",
        "empty-track.mp4",
        "flac-cover.flac",
        "fragmented.mp4",
        "garbage-prefix.mp3",
        "h264-aac.flv",
        "hdr10-av1-mdcv.mp4",
        "hdr10-hevc-sdr-container.mp4",
        "header-only.wav",
        "hlg-1080p10.mp4",
        "interlaced-480i-bff.mkv",
        "iphone-hlg-rot90.mov",
        "many-subs.mp4",
        "missing-stsd.mp4",
        "motion-photo.jpg",
        "mp3-big-cover.mp3",
        "no-duration.webm",
        "no-streams.mp4",
        "odd-161x121.webm",
        "phone-rot180-vfr.mp4",
        "portrait-4k60-rot90.mp4",
        "rotate-reflect.mp4",
        "stub-dv.dv",
        "stub-qt.mov",
        "tiny.avi",
        "two-audio-tracks.mp4",
        "vp9-corrupt.webm",
    ];
    /// Files with a golden packet scan: (file, end_only).
    const GOLDEN_SCANS: &[(&str, bool)] = &[
        ("fragmented.mp4", true),
        ("no-duration.webm", true),
        ("audiobook-bad-duration.m4b", false),
        ("header-only.wav", false),
    ];

    fn media(name: &str) -> PathBuf {
        PathBuf::from(MEDIA).join(name)
    }

    fn scan_fixture_name(name: &str, end_only: bool) -> String {
        format!(
            "{name}.packets-{}.txt",
            if end_only { "end" } else { "all" }
        )
    }

    /// Rewrites the golden files from the media with the exact arguments
    /// `probe` uses: `cargo test --lib media::probe -- --ignored regenerate`.
    #[test]
    #[ignore = "rewrites tests/fixtures/ffprobe from ../shared/media"]
    fn regenerate_golden_fixtures() {
        let run = |args: Vec<String>| {
            let out = std::process::Command::new("ffprobe")
                .args(&args)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        std::fs::create_dir_all(FIXTURES).unwrap();
        for name in GOLDEN {
            let path = media(name);
            let json =
                run(probe_args(&path, None)).replace(&format!("file:{}", path.display()), name);
            std::fs::write(PathBuf::from(FIXTURES).join(format!("{name}.json")), json).unwrap();
        }
        for (name, end_only) in GOLDEN_SCANS {
            let text = run(packet_scan_args(&media(name), None, *end_only));
            std::fs::write(
                PathBuf::from(FIXTURES).join(scan_fixture_name(name, *end_only)),
                text,
            )
            .unwrap();
        }
    }

    fn golden(name: &str) -> String {
        std::fs::read_to_string(PathBuf::from(FIXTURES).join(format!("{name}.json")))
            .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    fn size(name: &str) -> i64 {
        std::fs::metadata(media(name))
            .map(|m| m.len() as i64)
            .unwrap_or(100_000)
    }

    fn facts(name: &str) -> MediaFacts {
        facts_from_ffprobe_json(&golden(name), size(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn not_media(name: &str) -> String {
        match facts_from_ffprobe_json(&golden(name), size(name)) {
            Err(ProbeError::NotMedia(m)) => m,
            other => panic!("{name}: expected NotMedia, got {other:?}"),
        }
    }

    fn golden_scan(name: &str, end_only: bool, streams: &[usize]) -> PacketScan {
        let text = std::fs::read_to_string(
            PathBuf::from(FIXTURES).join(scan_fixture_name(name, end_only)),
        )
        .unwrap();
        scan_packets(&text, streams)
    }

    #[test]
    fn every_golden_file_parses_or_is_refused_in_words() {
        for name in GOLDEN {
            match facts_from_ffprobe_json(&golden(name), size(name)) {
                Ok(_) => {}
                Err(ProbeError::NotMedia(m)) => assert!(m.len() > 20, "{name}: {m}"),
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }

    #[test]
    fn iphone_portrait_hlg_is_rotated_and_located_nowhere() {
        let f = facts("iphone-hlg-rot90.mov");
        let v = f.video.as_ref().unwrap();
        assert_eq!((v.index, v.codec.as_str()), (0, "hevc"));
        assert_eq!((v.width, v.height), (1280, 720));
        assert_eq!(
            (v.display_width, v.display_height, v.rotation),
            (720, 1280, 90)
        );
        assert_eq!((v.hdr, v.bit_depth), (Some(Hdr::Hlg), 10));
        assert_eq!(v.fps, Some(30.0));
        assert_eq!(f.audio.as_ref().map(|a| a.index), Some(1));
        assert_eq!(f.mime_type.as_deref(), Some("video/quicktime"));
        assert_eq!(f.duration_ms, Some(107));
        assert!(
            f.tags
                .keys()
                .all(|k| !k.to_lowercase().contains("location")),
            "{:?}",
            f.tags
        );
        assert_eq!(
            f.tags.get("com.apple.quicktime.make").map(String::as_str),
            Some("Apple")
        );
    }

    #[test]
    fn rotations_are_normalised_clockwise() {
        let portrait = facts("portrait-4k60-rot90.mp4").video.unwrap();
        assert_eq!(
            (
                portrait.display_width,
                portrait.display_height,
                portrait.rotation
            ),
            (2160, 3840, 90)
        );
        let upside_down = facts("phone-rot180-vfr.mp4");
        let v = upside_down.video.as_ref().unwrap();
        assert_eq!(
            (v.display_width, v.display_height, v.rotation),
            (1280, 720, 180)
        );
        assert_eq!(v.fps, Some(10.505));
        assert!(!upside_down.tags.contains_key("location"));
        assert!(!upside_down.tags.contains_key("location-eng"));
        let mirrored = facts("rotate-reflect.mp4").video.unwrap();
        assert_eq!(
            (mirrored.display_width, mirrored.display_height),
            (720, 1080)
        );
    }

    #[test]
    fn hdr_is_recognised_from_stream_colour_information() {
        assert_eq!(
            facts("hdr10-hevc-sdr-container.mp4").video.unwrap().hdr,
            Some(Hdr::Pq)
        );
        assert_eq!(
            facts("hdr10-av1-mdcv.mp4").video.unwrap().hdr,
            Some(Hdr::Pq)
        );
        let hlg = facts("hlg-1080p10.mp4");
        assert_eq!(
            hlg.video.as_ref().map(|v| (v.index, v.hdr)),
            Some((1, Some(Hdr::Hlg)))
        );
        assert_eq!(hlg.audio.map(|a| a.index), Some(0));
        assert_eq!(facts("odd-161x121.webm").video.unwrap().hdr, None);
    }

    #[test]
    fn mastering_metadata_without_transfer_counts_as_pq() {
        let json = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"hevc","width":64,"height":64,
            "pix_fmt":"yuv420p10le","side_data_list":[{"side_data_type":"Mastering display metadata"}]}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"1.0"}}"#;
        assert_eq!(
            facts_from_ffprobe_json(json, 100_000)
                .unwrap()
                .video
                .unwrap()
                .hdr,
            Some(Hdr::Pq)
        );
    }

    #[test]
    fn interlaced_anamorphic_dvd_gets_square_pixel_display_size() {
        let v = facts("interlaced-480i-bff.mkv").video.unwrap();
        assert!(v.interlaced);
        assert_eq!((v.display_width, v.display_height), (853, 480));
        let dv = facts("stub-dv.dv").video.unwrap();
        assert_eq!((dv.display_width, dv.display_height), (1024, 576));
    }

    #[test]
    fn cover_art_is_not_video() {
        for name in ["mp3-big-cover.mp3", "covers-2x2.m4a", "flac-cover.flac"] {
            let f = facts(name);
            assert!(f.video.is_none(), "{name}");
            assert!(f.audio.is_some(), "{name}");
        }
        assert_eq!(
            facts("mp3-big-cover.mp3").mime_type.as_deref(),
            Some("audio/mpeg")
        );
        assert_eq!(
            facts("covers-2x2.m4a").mime_type.as_deref(),
            Some("audio/mp4")
        );
    }

    #[test]
    fn broken_and_empty_tracks_are_skipped() {
        let f = facts("missing-stsd.mp4");
        assert!(f.audio.is_none());
        assert_eq!(f.video.map(|v| v.index), Some(0));
        let f = facts("empty-track.mp4");
        assert_eq!(f.video.map(|v| v.index), Some(0));
        assert_eq!(f.audio.map(|a| a.index), Some(2));
        let f = facts("two-audio-tracks.mp4");
        assert_eq!(
            f.audio.map(|a| (a.index, a.codec, a.channels)),
            Some((0, "ac3".into(), 6))
        );
        let f = facts("many-subs.mp4");
        assert_eq!(f.video.map(|v| v.index), Some(0));
        assert!(f.audio.is_none());
    }

    #[test]
    fn suspicious_files_ask_for_a_full_scan() {
        let scan_of = |name: &str| analyse(&golden(name), size(name)).unwrap().scan;
        assert_eq!(scan_of("stub-qt.mov"), Scan::Full);
        assert_eq!(scan_of("missing-stsd.mp4"), Scan::Full);
        assert_eq!(scan_of("fragmented.mp4"), Scan::Full);
        assert_eq!(scan_of("audiobook-bad-duration.m4b"), Scan::Full);
        assert_eq!(scan_of("no-duration.webm"), Scan::EndOnly);
        assert_eq!(scan_of("h264-aac.flv"), Scan::EndOnly);
        assert_eq!(scan_of("mp3-big-cover.mp3"), Scan::EndOnly);
        assert_eq!(scan_of("iphone-hlg-rot90.mov"), Scan::None);
    }

    #[test]
    fn lying_header_durations_are_not_believed_and_packets_tell_the_truth() {
        let f = facts("fragmented.mp4");
        assert_eq!(f.duration_ms, None, "143165 s in 106 kB is a lie");
        let scanned = apply_scan(f, &golden_scan("fragmented.mp4", true, &[0, 1]), 0.0);
        assert_eq!(scanned.duration_ms, Some(1068));

        let f = facts("no-duration.webm");
        assert_eq!(f.duration_ms, None);
        let scanned = apply_scan(f, &golden_scan("no-duration.webm", true, &[0, 1]), 0.0);
        let ms = scanned.duration_ms.unwrap();
        assert!((4850..=4950).contains(&ms), "{ms}");
    }

    #[test]
    fn streams_without_packets_are_found_empty() {
        let a = analyse(
            &golden("audiobook-bad-duration.m4b"),
            size("audiobook-bad-duration.m4b"),
        )
        .unwrap();
        assert_eq!(a.facts.duration_ms, None);
        let scan = golden_scan("audiobook-bad-duration.m4b", false, &[0]);
        assert_eq!(scan.streams[&0].packets, 0);
        let err = drop_empty_streams(a, &scan).unwrap_err().to_string();
        assert!(
            err.contains("holds no samples") && err.contains("46:57:03"),
            "{err}"
        );

        let a = analyse(&golden("header-only.wav"), 44).unwrap();
        let scan = golden_scan("header-only.wav", false, &[0]);
        let err = drop_empty_streams(a, &scan).unwrap_err().to_string();
        assert!(err.contains("holds no samples"), "{err}");
    }

    #[test]
    fn undecodable_or_absent_streams_are_not_media() {
        assert!(
            not_media("vp9-corrupt.webm").contains("video stream (vp9 320x240) cannot be decoded")
        );
        assert!(not_media("tiny.avi").contains("cannot be decoded"));
        assert_eq!(
            not_media("no-streams.mp4"),
            "no audio or video stream found"
        );
        assert!(not_media("motion-photo.jpg").contains("still image"));
    }

    #[test]
    fn misdetected_mp3_is_retried_with_its_extension() {
        let a = analyse(&golden("garbage-prefix.mp3"), size("garbage-prefix.mp3"));
        assert_eq!(
            a.as_ref().unwrap().facts.container.as_deref(),
            Some("amrnb")
        );
        assert!(should_force_format(&a, "mp3"));
        let mpeg = analyse(&golden("mp3-big-cover.mp3"), size("mp3-big-cover.mp3"));
        assert!(!should_force_format(&mpeg, "mp3"));
        assert_eq!(demuxer_for_extension(Path::new("/x/a.MP3")), Some("mp3"));
        assert_eq!(demuxer_for_extension(Path::new("/x/a.mp4")), None);
    }

    #[test]
    fn frame_rates_skip_container_timebases() {
        assert_eq!(facts("h264-aac.flv").video.unwrap().fps, Some(60.0));
        assert_eq!(facts("odd-161x121.webm").video.unwrap().fps, Some(29.97));
    }

    #[test]
    fn packet_scans_use_dts_when_pts_is_missing() {
        let text = "stream_index=0|pts_time=N/A|dts_time=1.000000|duration_time=0.040000\n\
                    stream_index=1|pts_time=0.500000|dts_time=0.500000|duration_time=N/A\n\
                    stream_index=2|pts_time=9.000000|dts_time=9.000000|duration_time=1.0\n\
                    garbage line\n";
        let scan = scan_packets(text, &[0, 1]);
        assert_eq!(scan.streams[&0].end_s, Some(1.04));
        assert_eq!(scan.streams[&1].end_s, Some(0.5));
        assert!(!scan.streams.contains_key(&2));
    }

    #[test]
    fn ffprobe_failures_are_told_apart() {
        let stderr =
            "[matroska,webm @ 0x55] Duplicate element\nfile:/tmp/x/broken.mkv: End of file\n";
        match classify_ffprobe_failure(stderr) {
            ProbeError::NotMedia(m) => assert!(
                m.starts_with("ffprobe could not read it: End of file"),
                "{m}"
            ),
            e => panic!("{e:?}"),
        }
        let stderr = "file:/tmp/x/a.wmv: Invalid data found when processing input\n";
        assert!(
            matches!(classify_ffprobe_failure(stderr), ProbeError::NotMedia(m) if m.contains("Invalid data found"))
        );
        let stderr = "file:/tmp/nope.mp4: No such file or directory\n";
        assert!(matches!(
            classify_ffprobe_failure(stderr),
            ProbeError::Tool(_)
        ));
    }

    #[test]
    fn location_tags_are_recognised() {
        for key in [
            "location",
            "location-eng",
            "com.apple.quicktime.location.ISO6709",
            "GPSLatitude",
            "©xyz",
        ] {
            assert!(is_location_tag(key), "{key}");
        }
        for key in [
            "title",
            "creation_time",
            "com.apple.quicktime.make",
            "encoder",
        ] {
            assert!(!is_location_tag(key), "{key}");
        }
    }

    #[test]
    fn metadata_json_is_flat_and_exiftool_like() {
        let m = metadata_json(&facts("iphone-hlg-rot90.mov"));
        assert_eq!(m["image_width"], 720);
        assert_eq!(m["image_height"], 1280);
        assert_eq!(m["rotation"], 90);
        assert_eq!(m["video_frame_rate"], 30.0);
        assert_eq!(m["duration"], "0.11 s");
        assert_eq!(m["file_size"], "63 kB");
        assert_eq!(m["mime_type"], "video/quicktime");
        assert_eq!(m["compressor_id"], "hvc1");
        assert_eq!(m["audio_format"], "mp4a");
        assert_eq!(m["audio_sample_rate"], 44100);
        assert_eq!(m["audio_channels"], 2);
        assert_eq!(m["com_apple_quicktime_make"], "Apple");
        assert!(m.keys().all(|k| !k.contains("location")), "{:?}", m.keys());
        assert!(m.values().all(|v| !v.is_object() && !v.is_array()));
    }

    #[test]
    fn human_units_follow_exiftool() {
        assert_eq!(human_duration(19.349), "19.35 s");
        assert_eq!(human_duration(3725.0), "1:02:05");
        assert_eq!(human_file_size(512), "512 bytes");
        assert_eq!(human_file_size(10_000), "9.8 kB");
        assert_eq!(human_file_size(1_469_440), "1435 kB");
        assert_eq!(human_file_size(2_411_724), "2.3 MB");
        assert_eq!(snake_case("MAJOR_BRAND"), "major_brand");
        assert_eq!(snake_case("CreateDate"), "create_date");
        assert_eq!(
            snake_case("com.apple.quicktime.make"),
            "com_apple_quicktime_make"
        );
    }

    #[tokio::test]
    async fn probe_measures_real_durations() {
        let f = probe(&media("fragmented.mp4")).await.unwrap();
        assert_eq!(f.duration_ms, Some(1068));
        let f = probe(&media("no-duration.webm")).await.unwrap();
        assert!(
            (4850..=4950).contains(&f.duration_ms.unwrap()),
            "{:?}",
            f.duration_ms
        );
        let f = probe(&media("garbage-prefix.mp3")).await.unwrap();
        assert_eq!(f.input_format.as_deref(), Some("mp3"));
        assert!(
            (1000..=1100).contains(&f.duration_ms.unwrap()),
            "{:?}",
            f.duration_ms
        );
        assert_eq!(f.audio.map(|a| a.codec), Some("mp3".into()));
    }

    #[tokio::test]
    async fn probe_refuses_non_media_in_words() {
        for (name, words) in [
            ("empty.mp3", "the file is empty (0 bytes)"),
            ("header-only.wav", "holds no samples"),
            ("no-streams.mp4", "no audio or video stream found"),
            (
                "stub-asf.wmv",
                "ffprobe could not read it: Invalid data found",
            ),
            (
                "stub-real.rm",
                "ffprobe could not read it: Invalid data found",
            ),
            ("stub-mkv.mkv", "ffprobe could not read it: End of file"),
            ("broken.mkv", "ffprobe could not read it"),
            (
                "audiobook-bad-duration.m4b",
                "holds no samples although the header claims",
            ),
            ("stub-qt.mov", "cannot be decoded"),
            ("vp9-corrupt.webm", "cannot be decoded"),
            ("truncated-64bit.mp4", "the file is truncated and damaged"),
        ] {
            match probe(&media(name)).await {
                Err(ProbeError::NotMedia(m)) => assert!(m.contains(words), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn image_facts_accept_only_still_images() {
        let png = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"png","width":40,"height":20}],
                      "format":{"format_name":"png_pipe"}}"#;
        assert_eq!(
            image_facts(png).unwrap(),
            ImageFacts {
                format: "png_pipe".into(),
                codec: "png".into(),
                width: 40,
                height: 20
            }
        );
        let video = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":40,"height":20}],
                        "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2"}}"#;
        assert!(
            matches!(image_facts(video), Err(ProbeError::NotMedia(m)) if m.contains("not a still image"))
        );
        let lying = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":40,"height":20}],
                        "format":{"format_name":"png_pipe"}}"#;
        assert!(image_facts(lying).is_err());
        let huge = png.replace("\"width\":40", "\"width\":90000");
        assert!(image_facts(&huge).is_err());
    }

    #[tokio::test]
    async fn a_real_png_is_an_image_and_a_video_is_not() {
        use crate::media::process::{RunSpec, Runner, Tool};
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("wm");
        let args: Vec<String> = [
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=24x16",
            "-frames:v",
            "1",
            "-f",
            "image2",
            "-c:v",
            "png",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("file:{}", png.display())])
        .collect();
        Runner::new(1)
            .run(RunSpec {
                program: Tool::Ffmpeg,
                args: &args,
                workdir: dir.path(),
                time_limit: Duration::from_secs(30),
                stall_limit: Duration::from_secs(30),
                cancel: Default::default(),
                expected_duration_ms: None,
                on_progress: None,
            })
            .await
            .unwrap();
        let facts = probe_image(&png).await.unwrap();
        assert_eq!(
            (facts.format.as_str(), facts.width, facts.height),
            ("png_pipe", 24, 16)
        );
        let movie = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/media/odd-161x121.webm"
        ));
        assert!(matches!(
            probe_image(movie).await,
            Err(ProbeError::NotMedia(_))
        ));
    }
}
