//! The thumbnail preset (spec §8.1): still images of the original at the
//! profile size, in one ffmpeg run. Pure, like the rest of the planner.
//!
//! - `frame_count` N: the screenshot rule of the presets (the picture at the
//!   middle of each of N equal slices), so exactly N images.
//! - `frame_offsets`: the first frame at or after each listed time, or the
//!   listed frame numbers. Images come out in time order; two offsets that
//!   land on the same frame give one image, offsets past the end none.
//! - `frame_interval`: the first frame of each interval from the start
//!   (a time interval), or every N-th frame from frame 0.
//!
//! Times count from the start of the clip when the profile clips.

use crate::domain::options::{FrameSelection, FrameTime};

use super::plan::{
    EncodeRequest, MAX_SCREENSHOTS, Plan, PlanError, expected_duration_ms, geometry, overlay_for,
    path_arg, picture_graph, screenshot_chain, video_inputs,
};
use super::probe::VideoFacts;

/// Frame rate assumed for frame-numbered intervals when the source's is
/// unknown.
const FALLBACK_FPS: f64 = 30.0;

/// Plans the thumbnail run: images `<req.output>_<n><extname>`, n from 1.
pub(super) fn plan_thumbnails(req: &EncodeRequest) -> Result<Plan, PlanError> {
    let profile = req.profile;
    let video = req.facts.video.as_ref().ok_or_else(|| {
        PlanError::NothingToEncode("the source has no video to take thumbnails from".into())
    })?;
    let duration_ms = expected_duration_ms(req.facts.duration_ms, profile.clip);
    let geometry = geometry(profile, video.display_width, video.display_height);
    let (selector, max) = selector(&profile.frames, duration_ms, video)?;
    let graph = format!(
        "{},{selector}[stills]",
        picture_graph(video, &geometry, overlay_for(req, geometry.frame)?.as_ref())
    );
    let args = video_inputs(req)?
        .opt("-filter_complex", graph)
        .words("-map [stills] -fps_mode passthrough")
        .then(image_codec(&profile.extname))
        .opt("-frames:v", max.to_string())
        .words("-start_number 1 -map_metadata -1 -map_chapters -1 -f image2")
        .arg(pattern(req)?);
    Ok(Plan {
        passes: vec![args.0],
        width: Some(geometry.frame.0),
        height: Some(geometry.frame.1),
        duration_ms,
        screenshot_count: 0,
        stills: max,
        has_video: false,
        has_audio: false,
    })
}

/// `file:<prefix>_%d<extname>`, `%` in the prefix escaped for image2.
fn pattern(req: &EncodeRequest) -> Result<String, PlanError> {
    let prefix = path_arg(req.output)?.replace('%', "%%");
    Ok(format!("{prefix}_%d{}", req.profile.extname))
}

fn image_codec(extname: &str) -> super::plan::Argv {
    let argv = super::plan::Argv::default();
    match extname {
        ".png" => argv.words("-c:v png"),
        _ => argv.words("-c:v mjpeg -q:v 3"),
    }
}

/// The filter that keeps the wanted frames, and the most images it gives.
fn selector(
    frames: &FrameSelection,
    duration_ms: Option<i64>,
    video: &VideoFacts,
) -> Result<(String, usize), PlanError> {
    match frames {
        FrameSelection::Count(n) if (1..=MAX_SCREENSHOTS).contains(n) => {
            let n = *n as usize;
            Ok((screenshot_chain(n, duration_ms), n))
        }
        FrameSelection::Count(n) => Err(PlanError::Invalid(format!(
            "frame_count {n} must be between 1 and {MAX_SCREENSHOTS} for thumbnails"
        ))),
        FrameSelection::Offsets(list) if list.is_empty() => Err(PlanError::Invalid(
            "frame_offsets lists no time or frame".into(),
        )),
        FrameSelection::Offsets(list) => {
            let terms: Vec<String> = list.iter().map(|t| at_offset(*t)).collect();
            Ok((select(&terms.join("+")), list.len()))
        }
        FrameSelection::Interval(every) => {
            let max = interval_count(*every, duration_ms, video.fps);
            Ok((select(&every_interval(*every)), max))
        }
    }
}

/// A `select` filter; the expression is quoted so its commas stay inside.
fn select(expr: &str) -> String {
    format!("select='{expr}'")
}

/// True for the frame at an offset: frame N, or the first frame whose time
/// is at or after T (the previous frame was before T, or there was none).
fn at_offset(offset: FrameTime) -> String {
    match offset {
        FrameTime::Frame(n) => format!("eq(n,{n})"),
        FrameTime::Seconds(t) => {
            format!("gte(t,{t:.3})*(isnan(prev_t)+lt(prev_t,{t:.3}))")
        }
    }
}

/// True for the first frame of each interval.
fn every_interval(every: FrameTime) -> String {
    match every {
        FrameTime::Frame(n) => format!("not(mod(n,{n}))"),
        FrameTime::Seconds(s) => {
            format!("isnan(prev_t)+lt(floor(prev_t/{s:.3}),floor(t/{s:.3}))")
        }
    }
}

/// How many intervals the video spans (at least 1, at most the cap).
fn interval_count(every: FrameTime, duration_ms: Option<i64>, fps: Option<f64>) -> usize {
    let Some(seconds) = duration_ms.filter(|d| *d > 0).map(|d| d as f64 / 1000.0) else {
        return MAX_SCREENSHOTS as usize;
    };
    let span = match every {
        FrameTime::Seconds(s) => seconds / s,
        FrameTime::Frame(n) => seconds * fps.unwrap_or(FALLBACK_FPS) / n as f64,
    };
    (span.ceil() as i64).clamp(1, MAX_SCREENSHOTS) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::profile::{ProfileSpec, ResolvedProfile};
    use crate::media::plan::{EncoderSpeed, WatermarkInput, plan};
    use crate::media::probe::{MediaFacts, probe};
    use std::path::{Path, PathBuf};

    fn thumbnail(spec: ProfileSpec) -> ResolvedProfile {
        ProfileSpec {
            preset_name: Some("thumbnail".into()),
            ..spec
        }
        .resolve()
        .unwrap()
    }

    fn facts(duration_ms: i64) -> MediaFacts {
        MediaFacts {
            container: None,
            mime_type: None,
            duration_ms: Some(duration_ms),
            file_size: 1000,
            bit_rate_kbps: None,
            audio: None,
            tags: Default::default(),
            input_format: None,
            video: Some(VideoFacts {
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
            }),
        }
    }

    fn plan_for(profile: &ResolvedProfile, facts: &MediaFacts) -> Result<Plan, PlanError> {
        plan(&EncodeRequest {
            profile,
            facts,
            input: Path::new("/in/a.mp4"),
            output: Path::new("/out/th"),
            screenshots: None,
            speed: &EncoderSpeed::default(),
            watermark: None,
        })
    }

    fn graph(p: &Plan) -> &str {
        let a = &p.passes[0];
        let i = a.iter().position(|x| x == "-filter_complex").unwrap();
        &a[i + 1]
    }

    #[test]
    fn count_reuses_the_screenshot_spacing_at_the_profile_size() {
        let prof = thumbnail(ProfileSpec {
            width: Some(320),
            height: Some(240),
            frame_count: Some(3),
            ..Default::default()
        });
        let p = plan_for(&prof, &facts(9000)).unwrap();
        assert_eq!((p.width, p.height, p.stills), (Some(320), Some(240), 3));
        assert!(graph(&p).contains("fps=fps=3/9.000000"), "{}", graph(&p));
        assert!(graph(&p).starts_with("[0:0]scale=320:180,pad=320:240:0:30"));
        let a = &p.passes[0];
        assert!(a.contains(&"file:/out/th_%d.jpg".to_string()));
        assert!(a.windows(2).any(|w| w == ["-frames:v", "3"]));
        assert!(a.windows(2).any(|w| w == ["-c:v", "mjpeg"]));
        assert!(!p.has_video && !p.has_audio && p.screenshot_count == 0);
    }

    #[test]
    fn offsets_select_times_and_frames() {
        let prof = thumbnail(ProfileSpec {
            frame_offsets: Some("2s, 10s, 250f".into()),
            extname: Some(".png".into()),
            ..Default::default()
        });
        let p = plan_for(&prof, &facts(20_000)).unwrap();
        assert_eq!(p.stills, 3);
        let g = graph(&p);
        assert!(
            g.ends_with(
                ",select='gte(t,2.000)*(isnan(prev_t)+lt(prev_t,2.000))+\
                 gte(t,10.000)*(isnan(prev_t)+lt(prev_t,10.000))+eq(n,250)'[stills]"
            ),
            "{g}"
        );
        assert_eq!((p.width, p.height), (Some(1920), Some(1080)), "source size");
        assert!(p.passes[0].contains(&"file:/out/th_%d.png".to_string()));
    }

    #[test]
    fn intervals_count_what_the_video_spans() {
        let prof = thumbnail(ProfileSpec {
            frame_interval: Some("4s".into()),
            ..Default::default()
        });
        let p = plan_for(&prof, &facts(10_000)).unwrap();
        assert_eq!(p.stills, 3);
        assert!(
            graph(&p).contains("select='isnan(prev_t)+lt(floor(prev_t/4.000),floor(t/4.000))'")
        );
        let prof = thumbnail(ProfileSpec {
            frame_interval: Some("100f".into()),
            ..Default::default()
        });
        let p = plan_for(&prof, &facts(10_000)).unwrap();
        assert_eq!(p.stills, 3, "250 frames in steps of 100");
        assert!(graph(&p).contains("select='not(mod(n,100))'"));
        assert_eq!(
            interval_count(FrameTime::Seconds(1.0), None, None),
            MAX_SCREENSHOTS as usize
        );
    }

    #[test]
    fn no_video_no_thumbnails() {
        let mut f = facts(1000);
        f.video = None;
        let err = plan_for(&thumbnail(ProfileSpec::default()), &f).unwrap_err();
        assert!(matches!(err, PlanError::NothingToEncode(_)), "{err}");
        let zero = thumbnail(ProfileSpec {
            frame_count: Some(0),
            ..Default::default()
        });
        assert!(matches!(
            plan_for(&zero, &facts(1000)),
            Err(PlanError::Invalid(_))
        ));
    }

    #[test]
    fn a_watermark_is_a_second_input() {
        let prof = thumbnail(ProfileSpec {
            watermark_url: Some("http://x/wm.png".into()),
            watermark_right: Some("10".into()),
            ..Default::default()
        });
        let f = facts(1000);
        let err = plan_for(&prof, &f).unwrap_err();
        assert!(err.to_string().contains("not downloaded"), "{err}");
        let p = plan(&EncodeRequest {
            profile: &prof,
            facts: &f,
            input: Path::new("/in/a.mp4"),
            output: Path::new("/out/th"),
            screenshots: None,
            speed: &EncoderSpeed::default(),
            watermark: Some(WatermarkInput {
                path: Path::new("/job/watermark"),
                format: "png_pipe",
            }),
        })
        .unwrap();
        let a = &p.passes[0];
        assert!(a.windows(2).any(|w| w == ["-f", "png_pipe"]));
        assert!(a.windows(2).any(|w| w == ["-i", "file:/job/watermark"]));
        assert!(
            graph(&p).contains("[base];[base][1:v]overlay=x=W-w-10:y=0:eof_action=repeat"),
            "{}",
            graph(&p)
        );
    }

    // -- real ffmpeg runs -----------------------------------------------------

    const MEDIA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/media");

    /// Takes thumbnails of `odd-161x121.webm` (1 s, 161x121) with `spec`;
    /// returns the images written, in order.
    async fn take(spec: ProfileSpec) -> (Plan, Vec<PathBuf>, tempfile::TempDir) {
        use crate::media::process::{RunSpec, Runner, Tool};
        let dir = tempfile::tempdir().unwrap();
        let input = PathBuf::from(MEDIA).join("odd-161x121.webm");
        let source = probe(&input).await.unwrap();
        let prof = thumbnail(spec);
        let prefix = dir.path().join("th");
        let p = plan(&EncodeRequest {
            profile: &prof,
            facts: &source,
            input: &input,
            output: &prefix,
            screenshots: None,
            speed: &EncoderSpeed::default(),
            watermark: None,
        })
        .unwrap();
        Runner::new(1)
            .run(RunSpec {
                program: Tool::Ffmpeg,
                args: &p.passes[0],
                workdir: dir.path(),
                time_limit: std::time::Duration::from_secs(60),
                stall_limit: std::time::Duration::from_secs(60),
                cancel: Default::default(),
                expected_duration_ms: p.duration_ms,
                on_progress: None,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{:?}", e.stderr_tail()));
        let images = (1..=p.stills)
            .map(|n| dir.path().join(format!("th_{n}{}", prof.extname)))
            .filter(|f| f.exists())
            .collect();
        (p, images, dir)
    }

    async fn size_of(image: &Path) -> (i64, i64) {
        let facts = crate::media::probe::probe_image(image).await.unwrap();
        (facts.width, facts.height)
    }

    #[tokio::test]
    async fn real_thumbnails_by_count_offsets_and_interval() {
        let (p, images, _dir) = take(ProfileSpec {
            width: Some(80),
            height: Some(60),
            aspect_mode: Some(crate::domain::profile::AspectMode::Pad),
            frame_count: Some(3),
            ..Default::default()
        })
        .await;
        assert_eq!((images.len(), p.stills), (3, 3));
        assert_eq!(size_of(&images[0]).await, (80, 60));

        // The sample is 1 s at 30 fps: 0.5 s, frame 3, and one past the end.
        let (_, images, _dir) = take(ProfileSpec {
            frame_offsets: Some("0.5s, 3f, 30s".into()),
            extname: Some(".png".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(images.len(), 2, "{images:?}");
        assert_eq!(size_of(&images[1]).await, (162, 122));

        let (p, images, _dir) = take(ProfileSpec {
            frame_interval: Some("10f".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(images.len(), p.stills, "{images:?}");
        assert!(images.len() >= 2);
    }
}
