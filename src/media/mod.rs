//! Everything that touches media files: `probe` (ffprobe to typed facts),
//! `plan` (profile + facts to ffmpeg argument vectors, a pure function, with
//! `thumbnails` for the thumbnail preset), `command` (custom command
//! profiles: parsed, checked and expanded, also pure) and `process` (the
//! only place that spawns a program).

pub mod command;
pub mod plan;
pub mod probe;
pub mod process;
pub mod thumbnails;
