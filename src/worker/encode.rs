//! Encode: one encoding of one video, from the stored original to stored
//! outputs. For presets ffmpeg writes the output and the screenshots in one
//! run (the thumbnail preset: its images); the output is probed to record
//! its real size. Custom command profiles run in [`super::command`]. A
//! watermark is downloaded first, through the same guard as `source_url`s.
//! Failures leave `<path>.log`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::Transient;
use super::fetch::{self, FetchError};
use crate::app::App;
use crate::db::jobs::Job;
use crate::domain::model::{Encoding, ErrorClass};
use crate::domain::profile::{OutputKind, ResolvedProfile};
use crate::domain::time::now_ms;
use crate::media::plan::{self, EncodeRequest, WatermarkInput};
use crate::media::probe::{self, MediaFacts, ProbeError};
use crate::media::process::{ProcessError, RunSpec, Tool};
use crate::storage::{self, Storage};

/// How often the progress of a running encoding is written to the database.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Largest watermark image downloaded.
const WATERMARK_MAX_BYTES: i64 = 10 * 1024 * 1024;

/// Everything an encode works from, loaded and checked.
pub(super) struct EncodeJob<'a> {
    pub app: &'a Arc<App>,
    pub scratch: &'a Path,
    pub cancel: &'a CancellationToken,
    pub store: Arc<dyn Storage>,
    pub facts: MediaFacts,
    pub profile: ResolvedProfile,
    /// The original, as a local file.
    pub input: PathBuf,
    /// The downloaded watermark and its demuxer, when the profile has one.
    pub watermark: Option<(PathBuf, String)>,
}

impl EncodeJob<'_> {
    /// The watermark as the planner takes it.
    pub fn watermark_input(&self) -> Option<WatermarkInput<'_>> {
        self.watermark
            .as_ref()
            .map(|(path, format)| WatermarkInput { path, format })
    }
}

/// Why an encode stopped before success.
pub(super) enum Stop {
    /// The encoding fails for good, with this class, message and log.
    Fail {
        class: ErrorClass,
        message: String,
        log: Option<String>,
    },
    /// Storage or database trouble: the job is retried.
    Transient(Transient),
    /// Cancelled, or the lease was lost: nothing is recorded.
    Cancelled,
}

impl Stop {
    pub fn fail(class: ErrorClass, message: impl Into<String>) -> Self {
        Self::Fail {
            class,
            message: message.into(),
            log: None,
        }
    }
}

impl From<Transient> for Stop {
    fn from(t: Transient) -> Self {
        Self::Transient(t)
    }
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Self::Transient(e.into())
    }
}

/// What a successful encode stored.
pub(super) struct Outputs {
    /// Storage keys, the main output first.
    pub files: Vec<String>,
    /// Bytes of the main output.
    pub file_size: i64,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// Duration of the main output, for metrics.
    pub duration_ms: Option<i64>,
}

pub async fn run(
    app: &Arc<App>,
    job: &Job,
    scratch: &Path,
    cancel: &CancellationToken,
) -> Result<(), Transient> {
    let Some((mut enc, mut work)) = load(app, job, scratch, cancel).await? else {
        return Ok(());
    };
    let started = Instant::now();
    let result = match fetch_watermark(&work).await {
        Ok(watermark) => {
            work.watermark = watermark;
            match work.profile.kind {
                OutputKind::Command => super::command::encode(&work, &mut enc).await,
                _ => encode_planned(&work, &mut enc).await,
            }
        }
        Err(stop) => Err(stop),
    };
    match result {
        Ok(outputs) => succeed(app, job, enc, outputs, started).await,
        Err(Stop::Fail {
            class,
            message,
            log,
        }) => fail(app, job, enc, class, message, log).await,
        Err(Stop::Transient(t)) => Err(t),
        Err(Stop::Cancelled) => {
            tracing::info!("encoding stopped: cancelled or lease lost");
            Ok(())
        }
    }
}

/// Loads the encoding and what it needs; `None` when there is nothing to do
/// (gone, no longer processing) or it has been failed here.
async fn load<'a>(
    app: &'a Arc<App>,
    job: &'a Job,
    scratch: &'a Path,
    cancel: &'a CancellationToken,
) -> Result<Option<(Encoding, EncodeJob<'a>)>, Transient> {
    let Some(encoding_id) = job.encoding_id.as_deref() else {
        return Err(Transient::other("encode job without an encoding"));
    };
    let Some(enc) = app.db.encoding(encoding_id).await? else {
        app.db.finish_job(job, &app.worker_id).await?;
        return Ok(None);
    };
    if enc.status != "processing" {
        app.db.finish_job(job, &app.worker_id).await?;
        return Ok(None);
    }
    let video = app.db.video(&enc.video_id).await?;
    let Some(video) = video.filter(|v| v.status == "success") else {
        let msg = "the source video is not available for encoding".to_string();
        fail(app, job, enc, ErrorClass::VideoStatusInvalid, msg, None).await?;
        return Ok(None);
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
        fail(app, job, enc, ErrorClass::UnexpectedError, msg, None).await?;
        return Ok(None);
    };
    let profile = match enc.profile_spec.resolve() {
        Ok(p) => p,
        Err(e) => {
            let msg = format!("profile {} cannot be used: {e}", enc.profile_name);
            fail(app, job, enc, ErrorClass::EncodingError, msg, None).await?;
            return Ok(None);
        }
    };

    // The original, as a local file.
    let key = video.original_key();
    let dest = scratch.join(format!("original{}", video.extname));
    let input = match storage::readable_file(store.as_ref(), &key, &dest).await {
        Ok(p) => p,
        Err(storage::StorageError::NotFound(_)) => {
            let msg = format!("the original {key} is missing from storage");
            fail(app, job, enc, ErrorClass::FileNotFound, msg, None).await?;
            return Ok(None);
        }
        Err(e) => return Err(Transient::storage(e)),
    };
    let work = EncodeJob {
        app,
        scratch,
        cancel,
        store,
        facts,
        profile,
        input,
        watermark: None,
    };
    Ok(Some((enc, work)))
}

/// Downloads the profile's watermark into the scratch directory (through
/// the private-network guard, size-capped) and checks it is an image; only
/// when the output will have a picture.
async fn fetch_watermark(work: &EncodeJob<'_>) -> Result<Option<(PathBuf, String)>, Stop> {
    let Some(wm) = &work.profile.watermark else {
        return Ok(None);
    };
    let kind = work.profile.kind;
    let pictures = kind.has_video() || matches!(kind, OutputKind::Thumbnail | OutputKind::Command);
    if !pictures || work.facts.video.is_none() {
        return Ok(None);
    }
    let config = &work.app.config;
    let dest = work.scratch.join("watermark");
    let timeout = Duration::from_secs(config.limits.download_timeout_secs);
    let allow_private = config.fetch.allow_private_networks;
    let url = &wm.url;
    let failed = |message: String| Stop::fail(ErrorClass::EncodingError, message);
    let download = fetch::download(url, &dest, WATERMARK_MAX_BYTES, timeout, allow_private);
    let downloaded = tokio::select! {
        _ = work.cancel.cancelled() => return Err(Stop::Cancelled),
        result = download => result,
    };
    match downloaded {
        Ok(_) => {}
        Err(FetchError::Io(e)) => return Err(Transient::other(e).into()),
        Err(FetchError::Forbidden { ip, .. }) => {
            return Err(failed(format!(
                "watermark_url {url} points at {ip}, a private, loopback or link-local address, \
                 which is not allowed"
            )));
        }
        Err(FetchError::BadUrl(_)) => {
            return Err(failed(format!(
                "watermark_url {url:?} is not an http or https URL"
            )));
        }
        Err(e) => return Err(failed(format!("could not download the watermark: {e}"))),
    }
    match probe::probe_image(&dest).await {
        Ok(image) => Ok(Some((dest, image.format))),
        Err(ProbeError::NotMedia(why)) => Err(failed(format!(
            "watermark_url {url} is not an image: {why}"
        ))),
        Err(e) => Err(Transient::other(e).into()),
    }
}

/// A preset: plan, run, store the output and its screenshots (or the
/// thumbnail preset's images).
async fn encode_planned(work: &EncodeJob<'_>, enc: &mut Encoding) -> Result<Outputs, Stop> {
    let thumbnails = work.profile.kind == OutputKind::Thumbnail;
    let output = match thumbnails {
        true => work.scratch.join("thumb"),
        false => work.scratch.join(format!("{}{}", enc.id, enc.extname)),
    };
    let shots = work.scratch.join("shot");
    let speed = work.app.config.encoding.speed();
    let request = EncodeRequest {
        profile: &work.profile,
        facts: &work.facts,
        input: &work.input,
        output: &output,
        screenshots: (!thumbnails && work.profile.frame_count > 0).then_some(shots.as_path()),
        speed: &speed,
        watermark: work.watermark_input(),
    };
    let planned =
        plan::plan(&request).map_err(|e| Stop::fail(ErrorClass::EncodingError, e.to_string()))?;
    let steps: Vec<(Tool, &[String])> = planned
        .passes
        .iter()
        .map(|a| (Tool::Ffmpeg, a.as_slice()))
        .collect();
    run_steps(work, enc, &steps, planned.duration_ms).await?;
    if thumbnails {
        return store_thumbnails(work, enc, &planned).await;
    }

    // What came out: probe it, then store it with its screenshots.
    let out_facts = probe::probe(&output).await.map_err(|e| {
        Stop::fail(
            ErrorClass::EncodingError,
            format!("the encoded output is unreadable: {e}"),
        )
    })?;
    store_screenshots(work, enc, planned.screenshot_count).await?;
    let main_key = format!("{}{}", enc.path, enc.extname);
    let size = put(work, &main_key, &output).await?;
    let picture = out_facts.video.as_ref();
    Ok(Outputs {
        files: vec![main_key],
        file_size: size as i64,
        width: Some(picture.map_or(0, |v| v.display_width)),
        height: Some(picture.map_or(0, |v| v.display_height)),
        duration_ms: out_facts.duration_ms,
    })
}

/// Stores `shot_1.jpg` … as `<path>_1.jpg` …, those that exist.
pub(super) async fn store_screenshots(
    work: &EncodeJob<'_>,
    enc: &Encoding,
    count: usize,
) -> Result<(), Stop> {
    for n in 1..=count {
        let shot = work.scratch.join(format!("shot_{n}.jpg"));
        if shot.exists() {
            put(work, &format!("{}_{n}.jpg", enc.path), &shot).await?;
        }
    }
    Ok(())
}

/// The thumbnail preset's images: `<path><extname>` when one was asked
/// for, else `<path>_<n><extname>`; all listed in `files`.
async fn store_thumbnails(
    work: &EncodeJob<'_>,
    enc: &Encoding,
    planned: &plan::Plan,
) -> Result<Outputs, Stop> {
    let single = work.profile.frames.is_single();
    let mut files = Vec::new();
    let mut first_size = None;
    for n in 1..=planned.stills {
        let image = work.scratch.join(format!("thumb_{n}{}", enc.extname));
        if !image.exists() {
            continue;
        }
        let key = match single {
            true => format!("{}{}", enc.path, enc.extname),
            false => format!("{}_{n}{}", enc.path, enc.extname),
        };
        let size = put(work, &key, &image).await?;
        first_size.get_or_insert(size as i64);
        files.push(key);
        if single {
            break;
        }
    }
    let Some(file_size) = first_size else {
        return Err(Stop::fail(
            ErrorClass::EncodingError,
            "no thumbnail was taken: every frame_offsets entry is past the end of the video",
        ));
    };
    Ok(Outputs {
        files,
        file_size,
        width: planned.width,
        height: planned.height,
        duration_ms: None,
    })
}

pub(super) async fn put(work: &EncodeJob<'_>, key: &str, file: &Path) -> Result<u64, Stop> {
    work.store
        .put_file(key, file)
        .await
        .map_err(|e| Stop::Transient(Transient::storage(e)))
}

/// Marks the encoding started, then runs the steps in order with progress
/// written about once a second (each step an equal share). A failing step
/// fails the encoding with its log.
pub(super) async fn run_steps(
    work: &EncodeJob<'_>,
    enc: &mut Encoding,
    steps: &[(Tool, &[String])],
    expected_duration_ms: Option<i64>,
) -> Result<(), Stop> {
    let app = work.app;
    enc.started_encoding_at = Some(now_ms());
    enc.worker_id = Some(app.worker_id.clone());
    enc.encoding_progress = 0;
    // Guarded: a cancel that landed since the job was claimed must win.
    if !app.db.mark_started(enc).await? {
        return Err(Stop::Cancelled);
    }

    let progress = Arc::new(AtomicU8::new(0));
    let writer = spawn_progress_writer(app.clone(), enc, progress.clone());
    let total = steps.len().max(1);
    let mut failure = None;
    for (i, (tool, args)) in steps.iter().enumerate() {
        let shown = progress.clone();
        let on_progress = move |p: u8| {
            let overall = ((i * 100 + p as usize) / total).min(99) as u8;
            shown.store(overall, Ordering::Relaxed);
        };
        let result = app
            .runner
            .run(RunSpec {
                program: *tool,
                args,
                workdir: work.scratch,
                time_limit: Duration::from_secs(app.config.workers.job_time_limit_secs),
                stall_limit: Duration::from_secs(app.config.workers.stall_secs),
                cancel: work.cancel.clone(),
                expected_duration_ms,
                on_progress: Some(&on_progress),
            })
            .await;
        if let Err(e) = result {
            failure = Some((e, *tool, *args));
            break;
        }
    }
    writer.abort();
    let Some((err, tool, args)) = failure else {
        return Ok(());
    };
    if matches!(err, ProcessError::Cancelled) {
        return Err(Stop::Cancelled);
    }
    Err(Stop::Fail {
        class: ErrorClass::EncodingError,
        message: format!("{} failed: {}", tool.name(), short_reason(&err)),
        log: Some(failure_log(tool, args, &err)),
    })
}

/// Records the success: files, sizes, time; the job ends in the same
/// transaction (guarded by the lease).
async fn succeed(
    app: &Arc<App>,
    job: &Job,
    mut enc: Encoding,
    outputs: Outputs,
    started: Instant,
) -> Result<(), Transient> {
    enc.status = "success".into();
    enc.encoding_progress = 100;
    enc.files = outputs.files;
    enc.file_size = outputs.file_size;
    enc.width = outputs.width;
    enc.height = outputs.height;
    enc.encoding_time = started.elapsed().as_secs_f64().round() as i64;
    enc.error_class = None;
    enc.error_message = None;
    if app.db.finish_encode(job, &app.worker_id, &enc).await? {
        tracing::info!(
            encoding_id = %enc.id,
            profile = %enc.profile_name,
            seconds = enc.encoding_time,
            "encoding succeeded"
        );
        crate::telemetry::encoding_finished(
            &enc.cloud_id,
            &enc.profile_name,
            "success",
            started.elapsed().as_secs_f64(),
            outputs.duration_ms,
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

fn failure_log(tool: Tool, args: &[String], err: &ProcessError) -> String {
    let command = err
        .command_line()
        .map(str::to_string)
        .unwrap_or_else(|| crate::media::process::command_line(tool, args));
    format!(
        "command: {command}\nresult: {err}\n\n--- end of {}'s output ---\n{}\n",
        tool.name(),
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
