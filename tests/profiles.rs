//! Profile options end to end: profiles created over the signed API with
//! every option of spec §8 (watermark, keyframes, two-pass, clip, H.264
//! tags), the thumbnail preset, and custom command profiles; one upload,
//! then the stored outputs, `files` and error classes are checked. Hostile
//! commands and watermark URLs on private addresses are refused when saved.
//!
//! Inputs are small: the 5 s `bbb-51.mp4`, clipped, at 320x180, ultrafast.

#[path = "integration/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::Value;

use common::client::Client;
use common::{SECS, Server, ServerOpts, ffprobe, media};

/// Serves `/wm.png` (a 40x40 red PNG made by ffmpeg) and `/text.png` (not
/// an image) on 127.0.0.1.
struct ImageServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ImageServer {
    async fn start(dir: &Path) -> ImageServer {
        let png = dir.join("red-40.png");
        let made = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "color=c=red:s=40x40",
            ])
            .args(["-frames:v", "1", "-c:v", "png", "-f", "image2"])
            .arg(&png)
            .status()
            .expect("run ffmpeg");
        assert!(made.success(), "ffmpeg could not make the watermark");
        let bytes = std::fs::read(&png).unwrap();
        let app = Router::new()
            .route(
                "/wm.png",
                axum::routing::get(move || {
                    let bytes = bytes.clone();
                    async move { ([(header::CONTENT_TYPE, "image/png")], bytes) }
                }),
            )
            .route(
                "/text.png",
                axum::routing::get(|| async { "this is not a picture" }),
            )
            .fallback(|| async { StatusCode::NOT_FOUND.into_response() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        ImageServer { addr, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// POST /profiles.json; returns the profile (checked to be 200).
async fn create_profile(c: &Client, params: &[(&str, &str)]) -> Value {
    c.post("/profiles.json", params).await.ok()
}

fn encoding<'a>(encs: &'a [Value], profile: &str) -> &'a Value {
    encs.iter()
        .find(|e| e["profile_name"] == profile)
        .unwrap_or_else(|| panic!("no encoding for profile {profile}: {encs:?}"))
}

#[track_caller]
fn assert_success(e: &Value) {
    assert_eq!(
        e["status"], "success",
        "encoding {}: {e}",
        e["profile_name"]
    );
}

fn files(e: &Value) -> Vec<String> {
    e["files"]
        .as_array()
        .unwrap_or_else(|| panic!("files is not an array: {e}"))
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

fn path_of(e: &Value) -> String {
    e["path"].as_str().unwrap().to_string()
}

/// ffprobe's JSON for a file, with extra arguments.
fn probe_json(file: &Path, args: &[&str]) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(file)
        .output()
        .expect("run ffprobe");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("ffprobe JSON: {e}"))
}

/// Keyframe times of a video file.
fn keyframe_times(file: &Path) -> Vec<f64> {
    let v = probe_json(
        file,
        &[
            "-select_streams",
            "v",
            "-skip_frame",
            "nokey",
            "-show_entries",
            "frame=pts_time",
        ],
    );
    v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["pts_time"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// The frame at `t` seconds as 320x180 RGB bytes.
fn rgb_frame(file: &Path, t: f64) -> Vec<u8> {
    Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{t}"), "-i"])
        .arg(file)
        .args([
            "-frames:v",
            "1",
            "-s",
            "320x180",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .unwrap()
        .stdout
}

/// Mean absolute difference of two 320x180 RGB frames over a 20x20 square.
fn square_diff(a: &[u8], b: &[u8], x0: usize, y0: usize) -> f64 {
    let mut sum = 0u64;
    for y in y0..y0 + 20 {
        for x in x0..x0 + 20 {
            for c in 0..3 {
                let i = (y * 320 + x) * 3 + c;
                sum += a[i].abs_diff(b[i]) as u64;
            }
        }
    }
    sum as f64 / 1200.0
}

fn stored(s: &Server, key: &str) -> PathBuf {
    let p = s.storage_dir().join(key);
    assert!(
        p.is_file(),
        "{key} should be stored; stored: {:?}",
        s.stored_keys()
    );
    p
}

const SMALL: [(&str, &str); 4] = [
    ("preset_name", "h264"),
    ("width", "320"),
    ("height", "180"),
    ("clip_length", "1"),
];

/// A profile with `extra` over `base`.
fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(extra).copied().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_option_end_to_end() {
    let s = Server::start_with(ServerOpts::default()).await;
    let c = s.client();
    let images = ImageServer::start(&s.dir).await;
    let wm_url = images.url("/wm.png");
    let text_url = images.url("/text.png");

    create_profile(&c, &with(&SMALL, &[("name", "plain")])).await;
    let wm = create_profile(
        &c,
        &with(
            &SMALL,
            &[
                ("name", "wm"),
                ("watermark_url", &wm_url),
                ("watermark_right", "10"),
                ("watermark_bottom", "10%"),
            ],
        ),
    )
    .await;
    assert_eq!(wm["watermark_bottom"], "10%", "{wm}");
    create_profile(
        &c,
        &with(
            &SMALL,
            &[("name", "notimage"), ("watermark_url", &text_url)],
        ),
    )
    .await;
    let kf = create_profile(
        &c,
        &[
            ("preset_name", "h264"),
            ("name", "kf"),
            ("width", "320"),
            ("height", "180"),
            ("clip_offset", "00:00:01"),
            ("clip_length", "3"),
            ("keyframe_rate", "1"),
            ("h264_profile", "main"),
            ("h264_level", "3.0"),
            ("two_pass", "true"),
            ("video_bitrate", "300"),
            ("frame_count", "2"),
        ],
    )
    .await;
    assert_eq!(
        (&kf["keyframe_rate"], &kf["two_pass"], &kf["h264_level"]),
        (&Value::from(1.0), &Value::from(true), &Value::from("3.0")),
        "{kf}"
    );
    let th = create_profile(
        &c,
        &[
            ("preset_name", "thumbnail"),
            ("name", "th-count"),
            ("width", "160"),
            ("height", "90"),
            ("aspect_mode", "pad"),
            ("frame_count", "3"),
        ],
    )
    .await;
    assert_eq!(
        (&th["extname"], &th["frame_count"]),
        (&Value::from(".jpg"), &Value::from(3)),
        "{th}"
    );
    let offsets = create_profile(
        &c,
        &[
            ("preset_name", "jpeg"),
            ("name", "th-offsets"),
            ("extname", ".png"),
            ("frame_offsets", "1s, 50f, 99s"),
        ],
    )
    .await;
    assert_eq!(
        offsets["frame_count"],
        Value::Null,
        "only the choice in force: {offsets}"
    );
    create_profile(
        &c,
        &[
            ("preset_name", "thumbnail"),
            ("name", "th-interval"),
            ("width", "160"),
            ("frame_interval", "2s"),
        ],
    )
    .await;
    create_profile(
        &c,
        &[
            ("preset_name", "thumbnail"),
            ("name", "th-one"),
            ("frame_count", "1"),
            ("watermark_url", &wm_url),
        ],
    )
    .await;
    let command = "ffmpeg $clip$ -i $input_file$ -c:v libx264 -preset ultrafast $filters$ \
                   $video_bitrate$ $keyframes$ -c:a aac $audio_bitrate$ -movflags +faststart \
                   $output_file$\n\
                   ffmpeg -i $output_file$ -c:v libx264 -preset ultrafast -vf scale=$width$/2:-2 \
                   -an $record_id$_low.mp4; ffmpeg -i $output_file$ -c copy tmp_copy.mp4";
    let custom = create_profile(
        &c,
        &[
            ("name", "custom"),
            ("command", command),
            ("extname", ".mp4"),
            ("width", "320"),
            ("height", "180"),
            ("video_bitrate", "300"),
            ("clip_length", "1"),
            ("frame_count", "3"),
        ],
    )
    .await;
    assert_eq!(
        (&custom["preset_name"], &custom["command"]),
        (&Value::Null, &Value::from(command))
    );
    create_profile(
        &c,
        &[
            ("name", "custom-broken"),
            (
                "command",
                "ffmpeg -i $input_file$ -c:v no-such-codec $output_file$",
            ),
            ("extname", ".mp4"),
        ],
    )
    .await;

    let profiles =
        "plain,wm,notimage,kf,th-count,th-offsets,th-interval,th-one,custom,custom-broken";
    let v = c
        .upload(&media("bbb-51.mp4"), &[("profiles", profiles)])
        .await;
    let encs = c.wait_encodings(v["id"].as_str().unwrap(), SECS(600)).await;

    // The watermark: the bottom-right corner differs from the same frame
    // without it, and is red; the top-left corner does not differ.
    let (plain, wm) = (encoding(&encs, "plain"), encoding(&encs, "wm"));
    assert_success(plain);
    assert_success(wm);
    let key = |e: &Value| format!("{}.mp4", path_of(e));
    let a = rgb_frame(&stored(&s, &key(plain)), 0.5);
    let b = rgb_frame(&stored(&s, &key(wm)), 0.5);
    assert_eq!((a.len(), b.len()), (320 * 180 * 3, 320 * 180 * 3));
    let corner = square_diff(&a, &b, 280, 132);
    let elsewhere = square_diff(&a, &b, 20, 20);
    assert!(
        corner > 40.0 && elsewhere < 8.0,
        "watermark diff {corner} vs {elsewhere}"
    );
    let (x, y) = (290, 142);
    let px = &b[(y * 320 + x) * 3..(y * 320 + x) * 3 + 3];
    assert!(
        px[0] > 200 && px[1] < 60 && px[2] < 60,
        "red at ({x},{y}): {px:?}"
    );

    let e = encoding(&encs, "notimage");
    assert_eq!(
        (e["status"].as_str(), e["error_class"].as_str()),
        (Some("fail"), Some("EncodingError")),
        "{e}"
    );
    assert!(
        e["error_message"]
            .as_str()
            .unwrap()
            .contains("is not an image"),
        "{e}"
    );

    // Clip, keyframes, two-pass, H.264 level.
    let e = encoding(&encs, "kf");
    assert_success(e);
    let out = stored(&s, &key(e));
    let info = ffprobe(&out).unwrap();
    let duration = info.duration.unwrap();
    assert!((duration - 3.0).abs() < 0.1, "clip of 3 s: {duration}");
    let times = keyframe_times(&out);
    assert_eq!(times.len(), 3, "a keyframe a second: {times:?}");
    for (i, t) in times.iter().enumerate() {
        assert!((t - i as f64).abs() < 0.05, "keyframe {i} at {t}");
    }
    let stream = &probe_json(&out, &["-select_streams", "v", "-show_streams"])["streams"][0];
    assert_eq!(stream["level"], 30, "{stream}");
    assert_ne!(stream["profile"], "High", "main is the ceiling: {stream}");
    assert_eq!(files(e), [key(e)]);
    for n in 1..=2 {
        stored(&s, &format!("{}_{n}.jpg", path_of(e)));
    }

    // Thumbnails: counts, sizes, names, all listed.
    let e = encoding(&encs, "th-count");
    assert_success(e);
    let p = path_of(e);
    assert_eq!(
        files(e),
        (1..=3).map(|n| format!("{p}_{n}.jpg")).collect::<Vec<_>>()
    );
    for f in files(e) {
        let size = ffprobe(&stored(&s, &f)).unwrap().display_size();
        assert_eq!(size, Some((160, 90)), "{f}");
    }
    assert_eq!(
        (&e["width"], &e["height"]),
        (&Value::from(160), &Value::from(90))
    );

    let e = encoding(&encs, "th-offsets");
    assert_success(e);
    let p = path_of(e);
    assert_eq!(
        files(e),
        [format!("{p}_1.png"), format!("{p}_2.png")],
        "99s is past the end"
    );
    let size = ffprobe(&stored(&s, &format!("{p}_2.png")))
        .unwrap()
        .display_size();
    assert_eq!(size, Some((1280, 720)), "the source size");

    let e = encoding(&encs, "th-interval");
    assert_success(e);
    assert_eq!(files(e).len(), 3, "5.3 s every 2 s: {e}");

    let e = encoding(&encs, "th-one");
    assert_success(e);
    assert_eq!(files(e), [format!("{}.jpg", path_of(e))]);
    assert!(
        !s.storage_dir()
            .join(format!("{}_1.jpg", path_of(e)))
            .exists(),
        "no screenshots of thumbnails"
    );

    // The custom command: both outputs, the main one first; screenshots.
    let e = encoding(&encs, "custom");
    assert_success(e);
    let p = path_of(e);
    assert_eq!(files(e), [format!("{p}.mp4"), format!("{p}_low.mp4")]);
    let main = ffprobe(&stored(&s, &format!("{p}.mp4"))).unwrap();
    assert_eq!(main.display_size(), Some((320, 180)));
    assert!(
        (main.duration.unwrap() - 1.0).abs() < 0.1,
        "{:?}",
        main.duration
    );
    let low = ffprobe(&stored(&s, &format!("{p}_low.mp4"))).unwrap();
    assert_eq!(low.display_size(), Some((160, 90)));
    for n in 1..=3 {
        stored(&s, &format!("{p}_{n}.jpg"));
    }
    assert!(
        !s.stored_keys().iter().any(|k| k.contains("tmp_copy")),
        "files without the id prefix stay behind"
    );

    let e = encoding(&encs, "custom-broken");
    assert_eq!(
        (e["status"].as_str(), e["error_class"].as_str()),
        (Some("fail"), Some("EncodingError")),
        "{e}"
    );
    let log = std::fs::read_to_string(stored(&s, &format!("{}.log", path_of(e)))).unwrap();
    assert!(log.contains("no-such-codec"), "{log}");
    s.assert_scratch_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_commands_and_private_watermarks_are_refused() {
    let s = Server::start_with(ServerOpts {
        allow_private: false,
        ..ServerOpts::default()
    })
    .await;
    let c = s.client();
    let ok = "ffmpeg -i $input_file$ $output_file$";
    for (command, word) in [
        ("ffmpeg -i $input_file$ $output_file$;rm -rf /", "rm"),
        ("ffmpeg -i $(id) $output_file$", "$(id)"),
        ("ffmpeg -i `id` $output_file$", "`id`"),
        ("ffmpeg -i /etc/passwd $output_file$", "/etc/passwd"),
        (
            "ffmpeg -i http://169.254.169.254/x $output_file$",
            "http://169.254.169.254/x",
        ),
        ("ffmpeg -i concat:a.mp4 $output_file$", "concat:a.mp4"),
        (
            "ffmpeg -i $input_file$ -vf movie=/etc/passwd $output_file$",
            "movie=/etc/passwd",
        ),
        ("ffmpeg -i $input_file$ ../../x.mp4", "../../x.mp4"),
        ("yamdi -i $input_file$ -o $output_file$", "yamdi"),
    ] {
        let message = c
            .post(
                "/profiles.json",
                &[("name", "bad"), ("command", command), ("extname", ".mp4")],
            )
            .await
            .err(400, "CommandInvalid");
        assert!(
            message.contains(word),
            "{command:?}: the message should name {word:?}: {message}"
        );
    }
    assert!(
        c.get("/profiles/bad.json", &[]).await.status == 404,
        "nothing was saved"
    );

    // A saved custom profile cannot be edited into a hostile one.
    create_profile(
        &c,
        &[("name", "custom"), ("command", ok), ("extname", ".mp4")],
    )
    .await;
    let message = c
        .put(
            "/profiles/custom.json",
            &[("command", "ffmpeg -i $input_file$ | sh")],
        )
        .await
        .err(400, "CommandInvalid");
    assert!(message.contains('|'), "{message}");
    c.put("/profiles/custom.json", &[("command", "")])
        .await
        .err(400, "BadRequest");
    c.post("/profiles.json", &[("command", ok)])
        .await
        .err(400, "BadRequest");
    c.post(
        "/profiles.json",
        &[("preset_name", "h264"), ("command", ok), ("name", "both")],
    )
    .await
    .err(400, "BadRequest");

    // Watermarks on this machine or the metadata service, by address or name.
    for (url, addresses) in [
        ("http://127.0.0.1:9/wm.png", &["127.0.0.1"][..]),
        ("http://169.254.169.254/latest/wm.png", &["169.254.169.254"]),
        ("http://localhost:9/wm.png", &["127.0.0.1", "::1"]),
    ] {
        let message = c
            .post(
                "/profiles.json",
                &[
                    ("preset_name", "h264"),
                    ("name", "wm"),
                    ("watermark_url", url),
                ],
            )
            .await
            .err(400, "BadRequest");
        assert!(
            addresses.iter().any(|a| message.contains(a)),
            "{url}: {message}"
        );
    }
    // Unusable option values are refused when saved, naming the option.
    for (key, value) in [
        ("watermark_url", "ftp://x/wm.png"),
        ("watermark_left", "ten"),
        ("clip_offset", "later"),
        ("h264_level", "9.9"),
        ("keyframe_interval", "0"),
    ] {
        let message = c
            .post(
                "/profiles.json",
                &[("preset_name", "h264"), ("name", "x"), (key, value)],
            )
            .await
            .err(400, "BadRequest");
        assert!(message.contains(key), "{key}={value}: {message}");
    }
    let message = c
        .post(
            "/profiles.json",
            &[
                ("preset_name", "thumbnail"),
                ("frame_count", "2"),
                ("frame_interval", "10s"),
            ],
        )
        .await
        .err(400, "BadRequest");
    assert!(message.contains("at most one"), "{message}");
    c.post(
        "/profiles.json",
        &[("preset_name", "thumbnail"), ("extname", ".gif")],
    )
    .await
    .err(400, "BadRequest");
    // Switching a thumbnail profile from a count to offsets.
    create_profile(
        &c,
        &[
            ("preset_name", "thumbnail"),
            ("name", "th"),
            ("frame_count", "2"),
        ],
    )
    .await;
    let th = c
        .put("/profiles/th.json", &[("frame_offsets", "1s, 2s")])
        .await
        .ok();
    assert_eq!(
        (&th["frame_offsets"], &th["frame_count"]),
        (&Value::from("1s, 2s"), &Value::Null),
        "{th}"
    );
}
