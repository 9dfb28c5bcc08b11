//! Typed values of the profile options that arrive as free text (spec §4.4):
//! clip times, watermark lengths, thumbnail frame choices, keyframe spacing,
//! H.264 levels. Parsing lives here so that the API (when a profile is
//! saved) and the worker (when it runs) apply the same rules.

use super::profile::ProfileSpec;

/// A profile option that cannot be used; the message names the option and
/// the value.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct OptionError(pub String);

fn invalid(message: impl Into<String>) -> OptionError {
    OptionError(message.into())
}

// -- clip ---------------------------------------------------------------------

/// Part of the source to encode (profile `clip_offset` / `clip_length`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clip {
    /// Start, in milliseconds from the beginning of the source.
    pub offset_ms: Option<i64>,
    /// Length to encode, in milliseconds.
    pub length_ms: Option<i64>,
}

impl Clip {
    /// Parses the profile strings (`HH:MM:SS[.fff]`, `MM:SS` or seconds).
    pub fn parse(offset: Option<&str>, length: Option<&str>) -> Result<Self, OptionError> {
        let clip = Self {
            offset_ms: parse_clip_time("clip_offset", offset)?,
            length_ms: parse_clip_time("clip_length", length)?,
        };
        if clip.length_ms == Some(0) {
            return Err(invalid("clip_length is zero"));
        }
        Ok(clip)
    }
}

fn parse_clip_time(name: &str, value: Option<&str>) -> Result<Option<i64>, OptionError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse_timestamp_ms(v).map(Some).ok_or_else(|| {
            invalid(format!(
                "{name} {v:?} is not a time (use HH:MM:SS or seconds)"
            ))
        }),
    }
}

/// `HH:MM:SS[.fff]`, `MM:SS[.fff]` or `SS[.fff]` to milliseconds.
pub fn parse_timestamp_ms(value: &str) -> Option<i64> {
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() > 3 {
        return None;
    }
    let mut seconds = 0.0;
    for (i, part) in parts.iter().enumerate() {
        let v: f64 = part.trim().parse().ok()?;
        let last = i == parts.len() - 1;
        if !v.is_finite() || v < 0.0 || (!last && v.fract() != 0.0) {
            return None;
        }
        seconds = seconds * 60.0 + v;
    }
    (seconds < 1e9).then(|| (seconds * 1000.0).round() as i64)
}

// -- watermark ----------------------------------------------------------------

/// Largest watermark offset or size in pixels.
const MAX_PIXELS: f64 = 8192.0;

/// A CSS-like length: pixels, or a percentage of the output frame's width
/// (left, right, width) or height (top, bottom, height).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Length {
    Px(i64),
    Percent(f64),
}

impl Length {
    /// `12`, `12px` or `12%` (negative offsets are allowed, as in CSS).
    pub fn parse(name: &str, value: &str) -> Result<Self, OptionError> {
        let v = value.trim();
        let bad = || {
            invalid(format!(
                "{name} {value:?} is not a length (use pixels like 10 or 10px, or a percentage like 5%)"
            ))
        };
        let (number, percent) = match v.strip_suffix('%') {
            Some(n) => (n, true),
            None => (v.strip_suffix("px").unwrap_or(v), false),
        };
        let n: f64 = number.trim().parse().map_err(|_| bad())?;
        if !n.is_finite() {
            return Err(bad());
        }
        if percent {
            if n.abs() > 100.0 {
                return Err(invalid(format!(
                    "{name} {value:?} must be between -100% and 100%"
                )));
            }
            return Ok(Self::Percent(n));
        }
        if n.abs() > MAX_PIXELS {
            return Err(invalid(format!(
                "{name} {value:?} must be at most {MAX_PIXELS} pixels"
            )));
        }
        Ok(Self::Px(n.round() as i64))
    }

    /// Pixels, with percentages taken of `base`.
    pub fn pixels(self, base: i64) -> i64 {
        match self {
            Self::Px(px) => px,
            Self::Percent(p) => (base as f64 * p / 100.0).round() as i64,
        }
    }
}

/// A watermark image and where it goes on the output picture, like a CSS
/// absolutely positioned box: `left` wins over `right` and `top` over
/// `bottom`; with neither, the edge is 0 (top left). A missing width or
/// height keeps the image's ratio; with both `left` and `right` (or `top`
/// and `bottom`) and no size, the image stretches between them.
#[derive(Clone, Debug, PartialEq)]
pub struct Watermark {
    pub url: String,
    pub top: Option<Length>,
    pub bottom: Option<Length>,
    pub left: Option<Length>,
    pub right: Option<Length>,
    pub width: Option<Length>,
    pub height: Option<Length>,
}

impl Watermark {
    /// The profile's watermark; `None` without `watermark_url`. The
    /// positions and sizes are checked even without a URL, so a bad value
    /// is refused when it is saved, not when a URL is added later.
    pub fn from_spec(spec: &ProfileSpec) -> Result<Option<Self>, OptionError> {
        let length = |name: &str, v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| Length::parse(name, s))
                .transpose()
        };
        let wm = Self {
            url: String::new(),
            top: length("watermark_top", &spec.watermark_top)?,
            bottom: length("watermark_bottom", &spec.watermark_bottom)?,
            left: length("watermark_left", &spec.watermark_left)?,
            right: length("watermark_right", &spec.watermark_right)?,
            width: length("watermark_width", &spec.watermark_width)?,
            height: length("watermark_height", &spec.watermark_height)?,
        };
        for (name, size) in [
            ("watermark_width", wm.width),
            ("watermark_height", wm.height),
        ] {
            let positive = match size {
                Some(Length::Px(px)) => px > 0,
                Some(Length::Percent(p)) => p > 0.0,
                None => true,
            };
            if !positive {
                return Err(invalid(format!("{name} must be positive")));
            }
        }
        let url = spec.watermark_url.as_deref().map(str::trim).unwrap_or("");
        if url.is_empty() {
            return Ok(None);
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!(
                "watermark_url {url:?} must be an http or https URL"
            )));
        }
        Ok(Some(Self {
            url: url.to_string(),
            ..wm
        }))
    }
}

// -- thumbnails ---------------------------------------------------------------

/// Most entries in `frame_offsets`.
pub const MAX_FRAME_OFFSETS: usize = 100;

/// A point in a video: a time or a frame number (spec §4.4: `2s`, `250f`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FrameTime {
    /// Seconds from the start.
    Seconds(f64),
    /// Frame number, counted from 0.
    Frame(u64),
}

impl FrameTime {
    /// `2s`, `2.5s`, `2` (seconds), `00:01:05` or `250f`.
    pub fn parse(name: &str, value: &str) -> Result<Self, OptionError> {
        let v = value.trim();
        let bad = || {
            invalid(format!(
                "{name}: {value:?} is not a time or frame (use 2s, 00:00:02 or 250f)"
            ))
        };
        if let Some(frames) = v.strip_suffix('f') {
            return frames.trim().parse().map(Self::Frame).map_err(|_| bad());
        }
        let ms = parse_timestamp_ms(v.strip_suffix('s').unwrap_or(v).trim()).ok_or_else(bad)?;
        Ok(Self::Seconds(ms as f64 / 1000.0))
    }
}

/// Which still images a thumbnail profile takes (spec §8.1: at most one of
/// `frame_count`, `frame_offsets`, `frame_interval`).
#[derive(Clone, Debug, PartialEq)]
pub enum FrameSelection {
    /// N pictures evenly spaced through the video.
    Count(i64),
    /// One picture at each listed point, in time order.
    Offsets(Vec<FrameTime>),
    /// One picture every interval, from the start.
    Interval(FrameTime),
}

impl FrameSelection {
    /// The selection a spec asks for: `None` when it sets none of the three.
    pub fn from_spec(spec: &ProfileSpec) -> Result<Option<Self>, OptionError> {
        let offsets = spec
            .frame_offsets
            .as_deref()
            .filter(|s| !s.trim().is_empty());
        let interval = spec
            .frame_interval
            .as_deref()
            .filter(|s| !s.trim().is_empty());
        let given = [
            spec.frame_count.is_some(),
            offsets.is_some(),
            interval.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(invalid(
                "give at most one of frame_count, frame_offsets and frame_interval",
            ));
        }
        if let Some(list) = offsets {
            return parse_offsets(list).map(|o| Some(Self::Offsets(o)));
        }
        if let Some(every) = interval {
            return parse_interval(every).map(|i| Some(Self::Interval(i)));
        }
        Ok(spec.frame_count.map(Self::Count))
    }

    /// Exactly one picture is asked for (it is then stored as the main
    /// output `<path><extname>`, spec §7).
    pub fn is_single(&self) -> bool {
        match self {
            Self::Count(n) => *n == 1,
            Self::Offsets(list) => list.len() == 1,
            Self::Interval(_) => false,
        }
    }
}

fn parse_offsets(list: &str) -> Result<Vec<FrameTime>, OptionError> {
    let offsets = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| FrameTime::parse("frame_offsets", s))
        .collect::<Result<Vec<_>, _>>()?;
    if offsets.len() > MAX_FRAME_OFFSETS {
        return Err(invalid(format!(
            "frame_offsets lists {} points; at most {MAX_FRAME_OFFSETS} are allowed",
            offsets.len()
        )));
    }
    Ok(offsets)
}

fn parse_interval(every: &str) -> Result<FrameTime, OptionError> {
    let interval = FrameTime::parse("frame_interval", every)?;
    let positive = match interval {
        FrameTime::Seconds(s) => s > 0.0,
        FrameTime::Frame(n) => n > 0,
    };
    if !positive {
        return Err(invalid(format!(
            "frame_interval {every:?} must be more than zero"
        )));
    }
    Ok(interval)
}

// -- keyframes ----------------------------------------------------------------

/// The keyframe spacing a profile asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Keyframes {
    /// A keyframe every N frames.
    Frames(i64),
    /// A keyframe every so many seconds.
    Seconds(f64),
}

impl Keyframes {
    /// From `keyframe_rate` (keyframes per second, wins) or
    /// `keyframe_interval`.
    ///
    /// `keyframe_interval` counts frames (spec §4.4, default 250), but
    /// pandastream-tools sends `0.2` for its HLS profiles, which cannot be a
    /// number of frames. A value below 1 is therefore read as an interval in
    /// **seconds** (0.2 → a keyframe every 0.2 s, 6 frames at 30 fps); 1 and
    /// more are frames, rounded to the nearest whole frame.
    pub fn from_options(
        interval: Option<f64>,
        rate: Option<f64>,
    ) -> Result<Option<Self>, OptionError> {
        if let Some(rate) = rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(invalid(format!("keyframe_rate {rate} must be positive")));
            }
            return Ok(Some(Self::Seconds(1.0 / rate)));
        }
        match interval {
            None => Ok(None),
            Some(i) if !(i.is_finite() && i > 0.0) => {
                Err(invalid(format!("keyframe_interval {i} must be positive")))
            }
            Some(i) if i < 1.0 => Ok(Some(Self::Seconds(i))),
            Some(i) => Ok(Some(Self::Frames(i.round() as i64))),
        }
    }

    /// GOP length in frames at `fps` (at least 1).
    pub fn frames(self, fps: f64) -> i64 {
        match self {
            Self::Frames(n) => n.max(1),
            Self::Seconds(s) => ((fps * s).round() as i64).max(1),
        }
    }
}

// -- H.264 --------------------------------------------------------------------

/// The H.264 levels x264 knows, as written in profiles (`3`, `3.0`, `3.1`, `1b`).
pub fn is_h264_level(level: &str) -> bool {
    const LEVELS: &[&str] = &[
        "1", "1.0", "1b", "1.1", "1.2", "1.3", "2", "2.0", "2.1", "2.2", "3", "3.0", "3.1", "3.2",
        "4", "4.0", "4.1", "4.2", "5", "5.0", "5.1", "5.2", "6", "6.0", "6.1", "6.2",
    ];
    LEVELS.contains(&level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_times() {
        let clip = Clip::parse(Some("00:00:02.5"), Some("3")).unwrap();
        assert_eq!((clip.offset_ms, clip.length_ms), (Some(2500), Some(3000)));
        assert_eq!(
            Clip::parse(Some("1:02:03"), None).unwrap().offset_ms,
            Some(3_723_000)
        );
        assert_eq!(Clip::parse(Some(" "), None).unwrap(), Clip::default());
        for bad in ["soon", "1:2:3:4", "-1", "1.5:00", "NaN", "inf"] {
            let err = Clip::parse(Some(bad), None).unwrap_err();
            assert!(err.0.contains("clip_offset"), "{bad}: {err}");
        }
        assert!(Clip::parse(None, Some("00:00:00")).is_err());
    }

    #[test]
    fn lengths_are_pixels_or_percent() {
        assert_eq!(Length::parse("x", "10").unwrap(), Length::Px(10));
        assert_eq!(Length::parse("x", " 12px ").unwrap(), Length::Px(12));
        assert_eq!(Length::parse("x", "-4").unwrap(), Length::Px(-4));
        assert_eq!(Length::parse("x", "5%").unwrap(), Length::Percent(5.0));
        assert_eq!(Length::Percent(10.0).pixels(640), 64);
        assert_eq!(Length::Px(7).pixels(640), 7);
        for bad in ["", "ten", "10em", "101%", "99999", "1e400"] {
            let err = Length::parse("watermark_left", bad).unwrap_err();
            assert!(err.0.starts_with("watermark_left"), "{bad}: {err}");
        }
    }

    fn spec() -> ProfileSpec {
        ProfileSpec {
            preset_name: Some("h264".into()),
            ..Default::default()
        }
    }

    #[test]
    fn watermark_from_spec() {
        assert_eq!(Watermark::from_spec(&spec()).unwrap(), None);
        let no_url = ProfileSpec {
            watermark_left: Some("ten".into()),
            ..spec()
        };
        assert!(
            Watermark::from_spec(&no_url).is_err(),
            "lengths are checked without a URL"
        );
        let s = ProfileSpec {
            watermark_url: Some("https://cdn.example/logo.png".into()),
            watermark_right: Some("10".into()),
            watermark_bottom: Some("5%".into()),
            watermark_width: Some("".into()),
            ..spec()
        };
        let wm = Watermark::from_spec(&s).unwrap().unwrap();
        assert_eq!(wm.right, Some(Length::Px(10)));
        assert_eq!(wm.bottom, Some(Length::Percent(5.0)));
        assert_eq!((wm.left, wm.top, wm.width), (None, None, None));
        for (field, bad) in [
            ("url", "file:///etc/passwd"),
            ("url", "ftp://x/y.png"),
            ("width", "0"),
            ("width", "-5%"),
        ] {
            let mut s = s.clone();
            match field {
                "url" => s.watermark_url = Some(bad.into()),
                _ => s.watermark_width = Some(bad.into()),
            }
            assert!(Watermark::from_spec(&s).is_err(), "{field}={bad}");
        }
    }

    #[test]
    fn frame_selection() {
        let with = |count: Option<i64>, offsets: Option<&str>, interval: Option<&str>| {
            FrameSelection::from_spec(&ProfileSpec {
                frame_count: count,
                frame_offsets: offsets.map(str::to_string),
                frame_interval: interval.map(str::to_string),
                ..spec()
            })
        };
        assert_eq!(with(None, None, None).unwrap(), None);
        assert_eq!(
            with(Some(3), None, None).unwrap(),
            Some(FrameSelection::Count(3))
        );
        assert_eq!(
            with(None, Some("2s, 10s, 250f, 400f,"), None).unwrap(),
            Some(FrameSelection::Offsets(vec![
                FrameTime::Seconds(2.0),
                FrameTime::Seconds(10.0),
                FrameTime::Frame(250),
                FrameTime::Frame(400),
            ]))
        );
        assert_eq!(
            with(None, None, Some("1000f")).unwrap(),
            Some(FrameSelection::Interval(FrameTime::Frame(1000)))
        );
        assert_eq!(
            with(None, Some(""), Some("00:00:10")).unwrap(),
            Some(FrameSelection::Interval(FrameTime::Seconds(10.0)))
        );
        assert!(with(Some(1), Some("2s"), None).is_err());
        assert!(with(None, Some("2s"), Some("10s")).is_err());
        assert!(with(None, None, Some("0s")).is_err());
        assert!(with(None, None, Some("0f")).is_err());
        assert!(with(None, Some("2x"), None).is_err());
        let many = vec!["1s"; MAX_FRAME_OFFSETS + 1].join(",");
        assert!(with(None, Some(&many), None).is_err());
        assert!(FrameSelection::Offsets(vec![FrameTime::Frame(1)]).is_single());
        assert!(FrameSelection::Count(1).is_single());
        assert!(!FrameSelection::Count(2).is_single());
    }

    #[test]
    fn keyframe_spacing() {
        let k = |i, r| Keyframes::from_options(i, r).unwrap();
        assert_eq!(k(None, None), None);
        assert_eq!(k(Some(250.0), None), Some(Keyframes::Frames(250)));
        assert_eq!(k(Some(48.4), None), Some(Keyframes::Frames(48)));
        assert_eq!(k(Some(0.2), None), Some(Keyframes::Seconds(0.2)));
        assert_eq!(k(Some(250.0), Some(0.5)), Some(Keyframes::Seconds(2.0)));
        assert_eq!(Keyframes::Seconds(0.2).frames(30.0), 6);
        assert_eq!(Keyframes::Seconds(2.0).frames(25.0), 50);
        assert_eq!(Keyframes::Seconds(0.001).frames(25.0), 1);
        assert!(Keyframes::from_options(Some(0.0), None).is_err());
        assert!(Keyframes::from_options(None, Some(-1.0)).is_err());
    }

    #[test]
    fn h264_levels() {
        for ok in ["3", "3.0", "3.1", "1b", "5.2"] {
            assert!(is_h264_level(ok), "{ok}");
        }
        for bad in ["", "3;rm", "7", "3.11", "high"] {
            assert!(!is_h264_level(bad), "{bad}");
        }
    }
}
