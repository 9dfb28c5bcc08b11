//! Shared helpers: the server harness, the signer, the client, ffprobe.
#![allow(dead_code)]

pub mod client;
pub mod media;
pub mod probe;
pub mod server;
pub mod sign;

pub use client::{Client, Placement, Resp, is_final_encoding, now_timestamp};
pub use media::{MEDIA_DIR, make_clip, media, media_bytes};
pub use probe::{ffprobe, moov_before_mdat};
pub use server::{Server, ServerOpts};
pub use sign::Variant;

use std::time::Duration;

pub const SECS: fn(u64) -> Duration = Duration::from_secs;

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
