//! Everything that touches media files: `probe` (ffprobe to typed facts),
//! `plan` (profile + facts to ffmpeg argument vectors, a pure function) and
//! `process` (the only place that spawns a program).

pub mod plan;
pub mod probe;
pub mod process;
