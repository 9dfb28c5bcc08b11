//! Ingest: get the original (download a `source_url`, or find the uploaded
//! file), probe it, and record the video as `success` (queueing its
//! encodings) or `fail` with the reason.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Transient;
use super::fetch::{self, FetchError};
use crate::app::App;
use crate::db::jobs::Job;
use crate::domain::model::{ErrorClass, Video};
use crate::media::probe::{self, MediaFacts, ProbeError};
use crate::storage::{self, StorageError};

pub async fn run(
    app: &Arc<App>,
    job: &Job,
    scratch: &Path,
    _cancel: &CancellationToken,
) -> Result<(), Transient> {
    let Some(mut video) = app.db.video(&job.video_id).await? else {
        app.db.finish_job(job, &app.worker_id).await?;
        return Ok(());
    };
    if video.status != "processing" {
        app.db.finish_job(job, &app.worker_id).await?;
        return Ok(());
    }
    let cloud = app
        .db
        .cloud(&video.cloud_id)
        .await?
        .ok_or_else(|| Transient::other("the video's cloud no longer exists"))?;
    let store = app.storage(&cloud);
    let key = video.original_key();

    let dest = scratch.join("original");
    if let Some(url) = &video.source_url {
        let limit = app
            .db
            .account_limit(&cloud.account_id)
            .await?
            .unwrap_or(app.config.limits.max_upload_bytes);
        let timeout = Duration::from_secs(app.config.limits.download_timeout_secs);
        let allow = app.config.fetch.allow_private_networks;
        match fetch::download(url, &dest, limit, timeout, allow).await {
            Ok(size) => video.file_size = Some(size as i64),
            Err(FetchError::Io(e)) => return Err(Transient::other(e)),
            Err(e) => {
                return fail(
                    app,
                    job,
                    &cloud.priority,
                    video,
                    ErrorClass::DownloadFailed,
                    e.to_string(),
                )
                .await;
            }
        }
        store
            .put_file(&key, &dest)
            .await
            .map_err(Transient::storage)?;
    }
    // The original as a local file (a download only for remote backends).
    let local = match storage::readable_file(store.as_ref(), &key, &dest).await {
        Ok(p) => p,
        Err(StorageError::NotFound(_)) => {
            let msg = format!("the original {key} is missing from storage");
            return fail(
                app,
                job,
                &cloud.priority,
                video,
                ErrorClass::FileNotFound,
                msg,
            )
            .await;
        }
        Err(e) => return Err(Transient::storage(e)),
    };

    let facts = match probe::probe(&local).await {
        Ok(f) => f,
        Err(ProbeError::NotMedia(reason)) => {
            let msg = format!("not a recognisable audio or video file: {reason}");
            return fail(
                app,
                job,
                &cloud.priority,
                video,
                ErrorClass::FormatNotRecognised,
                msg,
            )
            .await;
        }
        Err(e) => return Err(Transient::other(e)),
    };
    apply_facts(&mut video, &facts);
    video.status = "success".into();
    metrics::counter!("openpanda_videos_total", "outcome" => "success").increment(1);
    if app
        .db
        .finish_ingest(job, &app.worker_id, &video, cloud.priority)
        .await?
    {
        app.wake_workers();
        spawn_preview(app.clone(), video, facts, local, cloud);
    }
    Ok(())
}

/// Records a permanent failure of the video (its encodings fail with it).
async fn fail(
    app: &Arc<App>,
    job: &Job,
    priority: &i64,
    mut video: Video,
    class: ErrorClass,
    message: String,
) -> Result<(), Transient> {
    tracing::info!(error_class = class.as_str(), error = %message, "video failed");
    video.status = "fail".into();
    metrics::counter!("openpanda_videos_total", "outcome" => "fail").increment(1);
    video.error_class = Some(class.as_str().into());
    video.error_message = Some(message);
    app.db
        .finish_ingest(job, &app.worker_id, &video, *priority)
        .await?;
    Ok(())
}

/// Ends an ingest that kept failing for transient reasons.
pub async fn give_up(
    app: &Arc<App>,
    job: &Job,
    class: &str,
    message: &str,
) -> Result<(), Transient> {
    let Some(video) = app.db.video(&job.video_id).await? else {
        return Ok(());
    };
    let class = match class {
        "S3Error" => ErrorClass::S3Error,
        _ => ErrorClass::UnexpectedError,
    };
    fail(app, job, &0, video, class, message.to_string()).await
}

/// Copies the probe results onto the video's fields (spec §4.2).
pub fn apply_facts(video: &mut Video, f: &MediaFacts) {
    video.mime_type = f.mime_type.clone();
    video.duration = f.duration_ms;
    video.file_size = Some(f.file_size);
    if let Some(v) = &f.video {
        video.video_codec = Some(v.codec.clone());
        video.width = Some(v.display_width);
        video.height = Some(v.display_height);
        video.fps = v.fps.map(|x| (x * 100.0).round() / 100.0);
        video.video_bitrate = v.bitrate_kbps;
    }
    if let Some(a) = &f.audio {
        video.audio_codec = Some(a.codec.clone());
        video.audio_bitrate = a.bitrate_kbps;
        video.audio_channels = Some(a.channels);
        video.audio_sample_rate = Some(a.sample_rate);
    }
    video.facts = serde_json::to_string(f).ok();
}

/// Writes `<video.path>_1.jpg`, a still of the original (spec §7), without
/// holding up the video's encodings.
fn spawn_preview(
    app: Arc<App>,
    video: Video,
    facts: MediaFacts,
    local: std::path::PathBuf,
    cloud: crate::domain::model::Cloud,
) {
    tokio::spawn(async move {
        let dir = app.work_dir().join(format!("preview-{}", video.id));
        if tokio::fs::create_dir_all(&dir).await.is_err() {
            return;
        }
        let out = dir.join("preview.jpg");
        if let Some(args) = crate::media::plan::preview_args(&facts, &local, &out) {
            let result = app
                .light_runner
                .run(crate::media::process::RunSpec {
                    program: crate::media::process::Tool::Ffmpeg,
                    args: &args,
                    workdir: &dir,
                    time_limit: Duration::from_secs(60),
                    stall_limit: Duration::from_secs(60),
                    cancel: CancellationToken::new(),
                    expected_duration_ms: None,
                    on_progress: None,
                })
                .await;
            match result {
                Ok(_) => {
                    let key = format!("{}_1.jpg", video.path);
                    if let Err(e) = app.storage(&cloud).put_file(&key, &out).await {
                        tracing::warn!(error = %e, "could not store the preview");
                    }
                }
                Err(e) => tracing::warn!(error = %e, video_id = %video.id, "no preview"),
            }
        }
        let _ = tokio::fs::remove_dir_all(&dir).await;
    });
}
