//! The vocabulary of Panda: clouds, videos, encodings, profiles, presets and
//! storage paths. Knows nothing of HTTP, SQL or ffmpeg.

pub mod ids;
pub mod model;
pub mod options;
pub mod path_format;
pub mod profile;
pub mod time;
