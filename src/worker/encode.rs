//! Encode: one encoding of one video, from the stored original to stored
//! outputs. ffmpeg writes the output and the screenshots in one run; the
//! output is probed to record its real size; failures leave `<path>.log`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::Transient;
use crate::app::App;
use crate::db::jobs::Job;
use crate::domain::model::{Encoding, ErrorClass};
use crate::domain::time::now_ms;
use crate::media::plan::{self, Clip, EncodeRequest};
use crate::media::probe::{self, MediaFacts};
use crate::media::process::{ProcessError, RunSpec, Tool};
use crate::storage::{self, Storage};

/// How often the progress of a running encoding is written to the database.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub async fn run(
    app: &Arc<App>,
    job: &Job,
    scratch: &Path,
    cancel: &CancellationToken,
) -> Result<(), Transient> {
    let Some(encoding_id) = job.encoding_id.as_deref() else {
        return Err(Transient::other("encode job without an encoding"));
    };
    let Some(mut enc) = app.db.encoding(encoding_id).await? else {
        app.db.finish_job(job, &app.worker_id).await?;
        return Ok(());
    };
    if enc.status != "processing" {
        app.db.finish_job(job, &app.worker_id).await?;
        return Ok(());
    }
    let video = app.db.video(&enc.video_id).await?;
    let Some(video) = video.filter(|v| v.status == "success") else {
        let msg = "the source video is not available for encoding".to_string();
        return fail(app, job, enc, ErrorClass::VideoStatusInvalid, msg, None).await;
    };
    let cloud = app
        .db
        .cloud(&video.cloud_id)
        .await?
        .ok_or_else(|| Transient::other("the video's cloud no longer exists"))?;
    let store = app.storage(&cloud);
    let facts: Option<MediaFacts> = video
        .facts
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok());
    let Some(facts) = facts else {
        let msg = "the source video has no probe data".to_string();
        return fail(app, job, enc, ErrorClass::UnexpectedError, msg, None).await;
    };
    let Some(profile) = enc.profile_spec.resolve() else {
        let msg = format!(
            "profile {} has no preset this server can run",
            enc.profile_name
        );
        return fail(app, job, enc, ErrorClass::EncodingError, msg, None).await;
    };

    // The original, as a local file.
    let key = video.original_key();
    let input = match store.local_path(&key).filter(|p| p.exists()) {
        Some(p) => p,
        None if store.local_path(&key).is_some() => {
            let msg = format!("the original {key} is missing from storage");
            return fail(app, job, enc, ErrorClass::FileNotFound, msg, None).await;
        }
        None => {
            let dest = scratch.join(format!("original{}", video.extname));
            match storage::download_to(store.as_ref(), &key, &dest).await {
                Ok(_) => dest,
                Err(storage::StorageError::NotFound(_)) => {
                    let msg = format!("the original {key} is missing from storage");
                    return fail(app, job, enc, ErrorClass::FileNotFound, msg, None).await;
                }
                Err(e) => return Err(Transient::storage(e)),
            }
        }
    };

    let output = scratch.join(format!("{}{}", enc.id, enc.extname));
    let shots = scratch.join("shot");
    let speed = app.config.encoding.speed();
    let clip = match Clip::parse(
        enc.profile_spec.clip_offset.as_deref(),
        enc.profile_spec.clip_length.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                app,
                job,
                enc,
                ErrorClass::EncodingError,
                e.to_string(),
                None,
            )
            .await;
        }
    };
    let request = EncodeRequest {
        profile: &profile,
        facts: &facts,
        input: &input,
        output: &output,
        screenshots: (profile.frame_count > 0).then_some(shots.as_path()),
        speed: &speed,
        clip,
    };
    let planned = match plan::plan(&request) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                app,
                job,
                enc,
                ErrorClass::EncodingError,
                e.to_string(),
                None,
            )
            .await;
        }
    };

    enc.started_encoding_at = Some(now_ms());
    enc.worker_id = Some(app.worker_id.clone());
    enc.encoding_progress = 0;
    app.db.update_encoding(&enc).await?;
    let started = Instant::now();

    // ffmpeg, with progress written to the database about once a second.
    let progress = Arc::new(AtomicU8::new(0));
    let writer = spawn_progress_writer(app.clone(), &enc, progress.clone());
    let passes = planned.passes.len().max(1);
    let mut failure = None;
    for (i, args) in planned.passes.iter().enumerate() {
        let shown = progress.clone();
        let on_progress = move |p: u8| {
            let overall = ((i * 100 + p as usize) / passes).min(99) as u8;
            shown.store(overall, Ordering::Relaxed);
        };
        let result = app
            .runner
            .run(RunSpec {
                program: Tool::Ffmpeg,
                args,
                workdir: scratch,
                time_limit: Duration::from_secs(app.config.workers.job_time_limit_secs),
                stall_limit: Duration::from_secs(app.config.workers.stall_secs),
                cancel: cancel.clone(),
                expected_duration_ms: planned.duration_ms,
                on_progress: Some(&on_progress),
            })
            .await;
        if let Err(e) = result {
            failure = Some((e, args));
            break;
        }
    }
    writer.abort();
    if let Some((err, args)) = failure {
        if matches!(err, ProcessError::Cancelled) {
            tracing::info!("encoding stopped: cancelled or lease lost");
            return Ok(());
        }
        let log = failure_log(args, &err);
        let msg = format!("ffmpeg failed: {}", short_reason(&err));
        return fail(app, job, enc, ErrorClass::EncodingError, msg, Some(log)).await;
    }

    // What came out: probe it, then store it with its screenshots.
    let out_facts = match probe::probe(&output).await {
        Ok(f) => f,
        Err(e) => {
            let msg = format!("the encoded output is unreadable: {e}");
            return fail(app, job, enc, ErrorClass::EncodingError, msg, None).await;
        }
    };
    let main_key = format!("{}{}", enc.path, enc.extname);
    for n in 1..=planned.screenshot_count {
        let shot = scratch.join(format!("shot_{n}.jpg"));
        if shot.exists() {
            store
                .put_file(&format!("{}_{n}.jpg", enc.path), &shot)
                .await
                .map_err(Transient::storage)?;
        }
    }
    let size = store
        .put_file(&main_key, &output)
        .await
        .map_err(Transient::storage)?;

    enc.status = "success".into();
    enc.encoding_progress = 100;
    enc.files = vec![main_key];
    enc.file_size = size as i64;
    enc.width = out_facts
        .video
        .as_ref()
        .map(|v| v.display_width)
        .or(Some(0));
    enc.height = out_facts
        .video
        .as_ref()
        .map(|v| v.display_height)
        .or(Some(0));
    enc.encoding_time = started.elapsed().as_secs_f64().round() as i64;
    enc.error_class = None;
    enc.error_message = None;
    if app.db.finish_encode(job, &app.worker_id, &enc).await? {
        crate::telemetry::encoding_finished(
            &enc.cloud_id,
            &enc.profile_name,
            "success",
            started.elapsed().as_secs_f64(),
            out_facts.duration_ms,
        );
    } else {
        tracing::info!("encoding finished after its job was taken over; result discarded");
    }
    Ok(())
}

/// Writes progress changes to the database and reports them for the live
/// stream and `encoding-progress` webhooks.
fn spawn_progress_writer(
    app: Arc<App>,
    enc: &Encoding,
    progress: Arc<AtomicU8>,
) -> tokio::task::JoinHandle<()> {
    let encoding_id = enc.id.clone();
    let mut reporter = crate::notify::progress::ProgressReporter::new(app.clone(), enc);
    tokio::spawn(async move {
        let mut last = 0u8;
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            let now = progress.load(Ordering::Relaxed);
            if now != last {
                last = now;
                if let Err(e) = app.db.set_progress(&encoding_id, now as i64).await {
                    tracing::warn!(error = %e, "could not record progress");
                }
                reporter.report(now).await;
            }
        }
    })
}

fn failure_log(args: &[String], err: &ProcessError) -> String {
    let command = err
        .command_line()
        .map(str::to_string)
        .unwrap_or_else(|| crate::media::process::command_line(Tool::Ffmpeg, args));
    format!(
        "command: {command}\nresult: {err}\n\n--- end of ffmpeg's output ---\n{}\n",
        err.stderr_tail().unwrap_or("")
    )
}

/// The telling line of ffmpeg's complaint, for `error_message`.
fn short_reason(err: &ProcessError) -> String {
    match err.stderr_tail() {
        Some(tail) if !tail.trim().is_empty() => crate::media::process::summarize_stderr(tail),
        _ => err.to_string(),
    }
}

/// Records a permanent failure of an encoding, with its log when there is one.
async fn fail(
    app: &Arc<App>,
    job: &Job,
    mut enc: Encoding,
    class: ErrorClass,
    message: String,
    log: Option<String>,
) -> Result<(), Transient> {
    tracing::info!(error_class = class.as_str(), error = %message, "encoding failed");
    if let Some(log) = log
        && let Some(cloud) = app.db.cloud(&enc.cloud_id).await?
    {
        let store = app.storage(&cloud);
        put_bytes(store.as_ref(), &format!("{}.log", enc.path), log).await;
    }
    enc.status = "fail".into();
    enc.error_class = Some(class.as_str().into());
    enc.error_message = Some(message);
    if app.db.finish_encode(job, &app.worker_id, &enc).await? {
        crate::telemetry::encoding_finished(&enc.cloud_id, &enc.profile_name, "fail", 0.0, None);
    }
    Ok(())
}

async fn put_bytes(store: &dyn Storage, key: &str, text: String) {
    let body = Box::pin(futures::stream::once(async move {
        Ok::<_, std::io::Error>(Bytes::from(text))
    }));
    if let Err(e) = store.put(key, body).await {
        tracing::warn!(error = %e, key, "could not store the failure log");
    }
}

/// Ends an encode that kept failing for transient reasons.
pub async fn give_up(
    app: &Arc<App>,
    job: &Job,
    class: &str,
    message: &str,
) -> Result<(), Transient> {
    let Some(id) = job.encoding_id.as_deref() else {
        return Ok(());
    };
    let Some(enc) = app.db.encoding(id).await? else {
        return Ok(());
    };
    let class = match class {
        "S3Error" => ErrorClass::S3Error,
        _ => ErrorClass::UnexpectedError,
    };
    fail(app, job, enc, class, message.to_string(), None).await
}
