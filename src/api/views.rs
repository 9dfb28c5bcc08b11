//! JSON bodies of the resources (spec §4). Every documented key is always
//! present, `null` where unknown; the .NET client's non-nullable integers get
//! `0` and `started_encoding_at` gets `""` before an encoding starts (§4.1).

use serde_json::{Value, json};

use crate::domain::model::{Cloud, Encoding, Profile, Video};
use crate::domain::profile::AspectMode;
use crate::domain::time::panda_format;

pub fn video(v: &Video) -> Value {
    json!({
        "id": v.id,
        "original_filename": v.original_filename,
        "extname": v.extname,
        "path": v.path,
        "source_url": v.source_url,
        "status": v.status,
        "error_class": v.error_class,
        "error_message": v.error_message,
        "payload": v.payload,
        "mime_type": v.mime_type,
        "video_codec": v.video_codec,
        "audio_codec": v.audio_codec,
        "width": v.width,
        "height": v.height,
        "fps": v.fps,
        "duration": v.duration,
        "file_size": v.file_size,
        "video_bitrate": v.video_bitrate,
        "audio_bitrate": v.audio_bitrate,
        "audio_channels": v.audio_channels,
        "audio_sample_rate": v.audio_sample_rate,
        "created_at": panda_format(v.created_at),
        "updated_at": panda_format(v.updated_at),
    })
}

pub fn encoding(e: &Encoding) -> Value {
    json!({
        "id": e.id,
        "video_id": e.video_id,
        "profile_id": e.profile_id,
        "profile_name": e.profile_name,
        "status": e.status,
        "encoding_progress": e.encoding_progress,
        "started_encoding_at": e.started_encoding_at.map(panda_format).unwrap_or_default(),
        "encoding_time": e.encoding_time,
        "extname": e.extname,
        "path": e.path,
        "files": e.files,
        "width": e.width.unwrap_or(0),
        "height": e.height.unwrap_or(0),
        "file_size": e.file_size,
        "error_class": e.error_class,
        "error_message": e.error_message,
        "worker_id": e.worker_id,
        "created_at": panda_format(e.created_at),
        "updated_at": panda_format(e.updated_at),
    })
}

pub fn profile(p: &Profile) -> Value {
    let s = p.spec.with_preset_defaults();
    json!({
        "id": p.id,
        "name": p.name,
        "title": s.title,
        "preset_name": s.preset_name,
        "extname": s.extname,
        "width": s.width,
        "height": s.height,
        "upscale": s.upscale,
        "aspect_mode": s.aspect_mode.map(AspectMode::as_str),
        "two_pass": s.two_pass,
        "video_bitrate": s.video_bitrate,
        "audio_bitrate": s.audio_bitrate,
        "fps": s.fps,
        "keyframe_interval": s.keyframe_interval,
        "keyframe_rate": s.keyframe_rate,
        "audio_sample_rate": s.audio_sample_rate,
        "audio_channels": s.audio_channels,
        "clip_length": s.clip_length,
        "clip_offset": s.clip_offset,
        "frame_count": s.frame_count,
        "frame_offsets": s.frame_offsets,
        "frame_interval": s.frame_interval,
        "watermark_url": s.watermark_url,
        "watermark_top": s.watermark_top,
        "watermark_bottom": s.watermark_bottom,
        "watermark_left": s.watermark_left,
        "watermark_right": s.watermark_right,
        "watermark_width": s.watermark_width,
        "watermark_height": s.watermark_height,
        "h264_crf": s.h264_crf,
        "h264_profile": s.h264_profile,
        "h264_level": s.h264_level,
        "max_rate": s.max_rate,
        "buffer_size": s.buffer_size,
        "variants": s.variants,
        "encryption": s.encryption,
        "encryption_key": s.encryption_key,
        "encryption_iv": s.encryption_iv,
        "encryption_key_url": s.encryption_key_url,
        "command": s.command,
        "stack": s.stack,
        "path_format": s.path_format,
        "created_at": panda_format(p.created_at),
        "updated_at": panda_format(p.updated_at),
    })
}

/// A cloud; `url` is the base URL of its stored objects (with a trailing `/`).
pub fn cloud(c: &Cloud, url: &str) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "s3_videos_bucket": c.s3_videos_bucket,
        "s3_private_access": c.s3_private_access,
        "url": url,
        "priority": c.priority,
        "created_at": panda_format(c.created_at),
        "updated_at": panda_format(c.updated_at),
    })
}

pub fn notifications(c: &Cloud) -> Value {
    let n = &c.notifications;
    json!({
        "url": n.url,
        "events": {
            "video_created": n.events.video_created,
            "video_encoded": n.events.video_encoded,
            "encoding_progress": n.events.encoding_progress,
            "encoding_completed": n.events.encoding_completed,
        },
        "delay": n.delay,
    })
}
