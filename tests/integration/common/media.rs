//! The shared real-world media samples, and small clips made with ffmpeg.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const MEDIA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/media");

pub fn media(name: &str) -> PathBuf {
    let p = Path::new(MEDIA_DIR).join(name);
    assert!(
        p.exists(),
        "media sample {} is missing (expected ../shared/media beside the repo)",
        p.display()
    );
    p
}

pub fn media_bytes(name: &str) -> Vec<u8> {
    std::fs::read(media(name)).unwrap()
}

/// Makes a test clip (testsrc2 + a sine tone) with ffmpeg.
pub fn make_clip(out: &Path, seconds: u32, width: u32, height: u32, with_audio: bool) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={width}x{height}:rate=25:duration={seconds}"
        ));
    if with_audio {
        cmd.args(["-f", "lavfi", "-i"])
            .arg(format!(
                "sine=frequency=440:sample_rate=44100:duration={seconds}"
            ))
            .args(["-c:a", "aac", "-b:a", "64k"]);
    }
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ])
    .arg(out);
    let st = cmd.output().expect("run ffmpeg");
    assert!(
        st.status.success(),
        "ffmpeg could not make a test clip: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}
