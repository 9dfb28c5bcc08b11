//! The records Panda's API talks about. Field names follow spec §4.

use serde::{Deserialize, Serialize};

use super::profile::ProfileSpec;
use super::time::Millis;

/// An account owns an access key pair and any number of clouds (spec §2.8).
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub access_key: String,
    pub secret_key: String,
    /// Largest accepted upload in bytes (spec §3.2, 413 FileSizeLimitExceeded).
    pub file_size_limit: i64,
}

/// A cloud: a storage destination and the videos, profiles and settings in it.
#[derive(Clone, Debug)]
pub struct Cloud {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub s3_videos_bucket: Option<String>,
    pub s3_private_access: bool,
    /// 2..=200, lower runs first.
    pub priority: i64,
    pub notifications: Notifications,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Notification settings of a cloud (spec §4.6).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Notifications {
    pub url: Option<String>,
    pub events: NotificationEvents,
    /// Initial retry interval in seconds.
    pub delay: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NotificationEvents {
    pub video_created: bool,
    pub video_encoded: bool,
    pub encoding_progress: bool,
    pub encoding_completed: bool,
}

/// Video and encoding status as clients see it (spec §4.2, §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Processing,
    Success,
    Fail,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Success => "success",
            Self::Fail => "fail",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "processing" => Some(Self::Processing),
            "success" => Some(Self::Success),
            "fail" => Some(Self::Fail),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, Self::Processing)
    }
}

/// The failure classes of spec §9.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    S3Error,
    VideoStatusInvalid,
    CommandInvalid,
    EncodingError,
    FileNotFound,
    DownloadFailed,
    UnexpectedError,
    FormatNotRecognised,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S3Error => "S3Error",
            Self::VideoStatusInvalid => "VideoStatusInvalid",
            Self::CommandInvalid => "CommandInvalid",
            Self::EncodingError => "EncodingError",
            Self::FileNotFound => "FileNotFound",
            Self::DownloadFailed => "DownloadFailed",
            Self::UnexpectedError => "UnexpectedError",
            Self::FormatNotRecognised => "FormatNotRecognised",
        }
    }
}

/// An uploaded or fetched source video.
#[derive(Clone, Debug, Default)]
pub struct Video {
    pub id: String,
    pub cloud_id: String,
    pub status: String,
    pub original_filename: Option<String>,
    pub extname: String,
    pub path: String,
    pub source_url: Option<String>,
    pub payload: Option<String>,
    pub path_format: Option<String>,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub mime_type: Option<String>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub fps: Option<f64>,
    pub duration: Option<i64>,
    pub file_size: Option<i64>,
    pub video_bitrate: Option<i64>,
    pub audio_bitrate: Option<i64>,
    pub audio_channels: Option<i64>,
    pub audio_sample_rate: Option<i64>,
    /// The probe result as JSON (`media::probe::MediaFacts`).
    pub facts: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Video {
    /// Storage key of the original upload (spec §7).
    pub fn original_key(&self) -> String {
        format!("{}{}", self.path, self.extname)
    }
}

/// One output of a video in one profile.
#[derive(Clone, Debug, Default)]
pub struct Encoding {
    pub id: String,
    pub video_id: String,
    pub cloud_id: String,
    pub profile_id: String,
    pub profile_name: String,
    /// The profile as it was when the encoding was created.
    pub profile_spec: ProfileSpec,
    pub status: String,
    pub encoding_progress: i64,
    pub started_encoding_at: Option<Millis>,
    pub encoding_time: i64,
    pub extname: String,
    pub path: String,
    pub files: Vec<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub file_size: i64,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub worker_id: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A named set of encoding options in a cloud.
#[derive(Clone, Debug)]
pub struct Profile {
    pub id: String,
    pub cloud_id: String,
    pub name: Option<String>,
    pub spec: ProfileSpec,
    pub created_at: Millis,
    pub updated_at: Millis,
}
