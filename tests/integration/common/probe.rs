//! What ffprobe (and a quick look at the bytes) says about a media file.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[derive(Clone, Debug)]
pub struct StreamInfo {
    pub codec_type: String,
    pub codec_name: String,
    pub width: u32,
    pub height: u32,
    pub pix_fmt: String,
    /// Sample aspect ratio, when set and meaningful.
    pub sar: Option<(u32, u32)>,
    /// Display-matrix rotation in degrees, when present.
    pub rotation: Option<f64>,
    pub attached_pic: bool,
}

#[derive(Clone, Debug)]
pub struct Probe {
    pub format_name: String,
    pub duration: Option<f64>,
    pub tags: serde_json::Map<String, Value>,
    pub streams: Vec<StreamInfo>,
}

impl Probe {
    /// The first real video stream (cover art does not count).
    pub fn video(&self) -> Option<&StreamInfo> {
        self.streams
            .iter()
            .find(|s| s.codec_type == "video" && !s.attached_pic)
    }
    pub fn audio(&self) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.codec_type == "audio")
    }
    /// Width × height as displayed: sample aspect ratio and rotation applied.
    pub fn display_size(&self) -> Option<(u32, u32)> {
        let v = self.video()?;
        let (mut w, mut h) = (v.width as f64, v.height as f64);
        if let Some((n, d)) = v.sar
            && n > 0
            && d > 0
        {
            w = w * n as f64 / d as f64;
        }
        if v.rotation
            .is_some_and(|r| (r.abs() % 180.0 - 90.0).abs() < 1.0)
        {
            std::mem::swap(&mut w, &mut h);
        }
        Some((w.round() as u32, h.round() as u32))
    }
    /// Keys of format and stream tags that carry a location.
    pub fn location_tags(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().contains("location"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

pub fn ffprobe(path: &Path) -> Result<Probe, String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run ffprobe: {e}"))?;
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "ffprobe {}: no JSON ({e}); stderr: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if !out.status.success() || json.get("format").is_none() {
        return Err(format!(
            "ffprobe {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let f = &json["format"];
    let mut tags = f["tags"].as_object().cloned().unwrap_or_default();
    let mut streams = Vec::new();
    for s in json["streams"].as_array().cloned().unwrap_or_default() {
        if let Some(t) = s["tags"].as_object() {
            for (k, v) in t {
                tags.insert(format!("stream{}:{k}", s["index"]), v.clone());
            }
        }
        let sar = s["sample_aspect_ratio"].as_str().and_then(|r| {
            let (n, d) = r.split_once(':')?;
            let (n, d) = (n.parse().ok()?, d.parse().ok()?);
            (n > 0 && d > 0).then_some((n, d))
        });
        let rotation = s["side_data_list"]
            .as_array()
            .and_then(|l| l.iter().find_map(|sd| sd["rotation"].as_f64()))
            .or_else(|| s["tags"]["rotate"].as_str().and_then(|r| r.parse().ok()))
            .filter(|r: &f64| r.abs() > 0.5);
        streams.push(StreamInfo {
            codec_type: s["codec_type"].as_str().unwrap_or("").to_string(),
            codec_name: s["codec_name"].as_str().unwrap_or("").to_string(),
            width: s["width"].as_u64().unwrap_or(0) as u32,
            height: s["height"].as_u64().unwrap_or(0) as u32,
            pix_fmt: s["pix_fmt"].as_str().unwrap_or("").to_string(),
            sar,
            rotation,
            attached_pic: s["disposition"]["attached_pic"].as_i64() == Some(1),
        });
    }
    Ok(Probe {
        format_name: f["format_name"].as_str().unwrap_or("").to_string(),
        duration: f["duration"].as_str().and_then(|d| d.parse().ok()),
        tags,
        streams,
    })
}

/// For an MP4/MOV: is the `moov` box before the `mdat` box (faststart)?
/// `None` when either box is missing from the top level.
pub fn moov_before_mdat(bytes: &[u8]) -> Option<bool> {
    let mut pos = 0usize;
    let (mut moov, mut mdat) = (None, None);
    while pos + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let size = match size32 {
            0 => bytes.len() - pos,
            1 if pos + 16 <= bytes.len() => {
                u64::from_be_bytes(bytes[pos + 8..pos + 16].try_into().unwrap()) as usize
            }
            n => n,
        };
        if kind == b"moov" && moov.is_none() {
            moov = Some(pos);
        }
        if kind == b"mdat" && mdat.is_none() {
            mdat = Some(pos);
        }
        if size < 8 {
            break;
        }
        pos += size;
    }
    Some(moov? < mdat?)
}

/// A 16×16 grey thumbnail of the frame at `t` seconds, after `filters`
/// (ffmpeg applies the display rotation unless `noautorotate`).
pub fn gray_thumb(path: &Path, t: f64, filters: &str) -> Vec<u8> {
    let vf = if filters.is_empty() {
        "scale=16:16:flags=area,format=gray".to_string()
    } else {
        format!("{filters},scale=16:16:flags=area,format=gray")
    };
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{t:.3}"), "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-vf", &vf, "-f", "rawvideo", "-"])
        .output()
        .expect("run ffmpeg");
    out.stdout
}

/// Mean absolute difference of two thumbnails (0–255).
pub fn thumb_diff(a: &[u8], b: &[u8]) -> f64 {
    if a.is_empty() || a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .sum::<f64>()
        / a.len() as f64
}
