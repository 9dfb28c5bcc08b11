//! Shared helpers: the server harness, the signer, the client, ffprobe.
#![allow(dead_code)]

pub mod client;
pub mod media;
pub mod probe;
pub mod server;
pub mod sign;

pub use client::{Client, is_final_encoding};
pub use media::{MEDIA_DIR, make_clip, media, media_bytes};
pub use probe::{ffprobe, moov_before_mdat};
pub use server::{Server, ServerOpts};
pub use sign::Variant;

use std::time::Duration;

pub const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Polls for a stored object that is written shortly after the status
/// change (the preview of the original); returns the last answer.
pub async fn download_soon(c: &Client, key: &str) -> (u16, Vec<u8>) {
    let start = std::time::Instant::now();
    loop {
        let got = c.download(key).await;
        if got.0 == 200 || start.elapsed() > Duration::from_secs(60) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks a stored object is downloadable at the cloud URL; returns its bytes.
#[track_caller]
pub fn expect_stored(what: &str, key: &str, got: (u16, Vec<u8>)) -> Vec<u8> {
    assert_eq!(
        got.0, 200,
        "{what}: expected GET <cloud url>{key} to answer 200, got {}",
        got.0
    );
    got.1
}
