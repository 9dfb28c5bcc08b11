//! A custom command profile's encode (spec §8.4): the command is parsed and
//! checked again (the rules may be stricter than when it was saved), its
//! tokens expanded, its steps run in the job's scratch directory. Every file
//! there whose name starts with the encoding id is an output (spec §7):
//! `<id>_low.mp4` is stored as `<path>_low.mp4`, the main output
//! `<id><extname>` first. Screenshots are taken from the main output in a
//! separate small run when it has video.

use std::path::Path;

use super::encode::{EncodeJob, Outputs, Stop, put, run_steps, store_screenshots};
use crate::domain::model::{Encoding, ErrorClass};
use crate::media::command::{self, CommandError};
use crate::media::plan::{self, EncodeRequest};
use crate::media::probe::{self, MediaFacts};
use crate::media::process::{RunSpec, Tool};

/// Most files one command may leave for upload.
const MAX_OUTPUTS: usize = 10_000;

pub(super) async fn encode(work: &EncodeJob<'_>, enc: &mut Encoding) -> Result<Outputs, Stop> {
    let text = work.profile.command.as_deref().unwrap_or_default();
    let template = command::parse(text).map_err(|e| refused(text, &e))?;
    let main_name = format!("{}{}", enc.id, enc.extname);
    let output = work.scratch.join(&main_name);
    let speed = work.app.config.encoding.speed();
    let request = EncodeRequest {
        profile: &work.profile,
        facts: &work.facts,
        input: &work.input,
        output: &output,
        screenshots: None,
        speed: &speed,
        watermark: work.watermark_input(),
    };
    let values = command::token_values(&request, &enc.id)
        .map_err(|e| Stop::fail(ErrorClass::EncodingError, e.to_string()))?;
    let steps = template.expand(&values).map_err(|e| refused(text, &e))?;
    let runs: Vec<(Tool, &[String])> = steps.iter().map(|s| (s.tool, s.args.as_slice())).collect();
    let duration = plan::expected_duration_ms(work.facts.duration_ms, work.profile.clip);
    run_steps(work, enc, &runs, duration).await?;

    if !output.is_file() {
        return Err(Stop::fail(
            ErrorClass::EncodingError,
            format!("the command did not write $output_file$ ({main_name})"),
        ));
    }
    let extra = other_outputs(work.scratch, &enc.id, &main_name)?;
    let out_facts = match probe::probe(&output).await {
        Ok(f) => Some(f),
        Err(e) => {
            // The customer's command decides the format; a main output
            // ffprobe cannot read is stored as is, without screenshots.
            tracing::info!(error = %e, "the command's main output is not readable media");
            None
        }
    };
    if let Some(facts) = &out_facts {
        let count = take_screenshots(work, facts, &output).await?;
        store_screenshots(work, enc, count).await?;
    }

    let mut files = Vec::with_capacity(extra.len() + 1);
    let main_key = format!("{}{}", enc.path, enc.extname);
    for name in &extra {
        let key = format!("{}{}", enc.path, &name[enc.id.len()..]);
        put(work, &key, &work.scratch.join(name)).await?;
        files.push(key);
    }
    let size = put(work, &main_key, &output).await?;
    files.insert(0, main_key);
    let picture = out_facts.as_ref().and_then(|f| f.video.as_ref());
    Ok(Outputs {
        files,
        file_size: size as i64,
        width: Some(picture.map_or(values.width.unwrap_or(0), |v| v.display_width)),
        height: Some(picture.map_or(values.height.unwrap_or(0), |v| v.display_height)),
        duration_ms: out_facts.and_then(|f| f.duration_ms),
    })
}

/// A command refused at run time: `CommandInvalid`, the reason in the log.
fn refused(text: &str, err: &CommandError) -> Stop {
    Stop::Fail {
        class: ErrorClass::CommandInvalid,
        message: err.to_string(),
        log: Some(format!(
            "the profile's command was refused: {err}\n\n--- command ---\n{text}\n"
        )),
    }
}

/// The files the command left besides the main output whose names start
/// with the encoding id, sorted. Names outside the storage key alphabet are
/// skipped (and logged).
fn other_outputs(scratch: &Path, id: &str, main_name: &str) -> Result<Vec<String>, Stop> {
    let entries = std::fs::read_dir(scratch).map_err(|e| {
        Stop::Transient(super::Transient::other(format!(
            "cannot list the scratch directory: {e}"
        )))
    })?;
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_file || !name.starts_with(id) || name == main_name {
            continue;
        }
        let suffix = &name[id.len()..];
        if !suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            tracing::warn!(file = %name, "output name has characters a storage key cannot hold; skipped");
            continue;
        }
        names.push(name);
    }
    if names.len() > MAX_OUTPUTS {
        return Err(Stop::fail(
            ErrorClass::EncodingError,
            format!(
                "the command left {} output files; at most {MAX_OUTPUTS} are stored",
                names.len()
            ),
        ));
    }
    names.sort();
    Ok(names)
}

/// Screenshots of the main output (`shot_N.jpg`), like the presets'. A
/// failure here does not fail the encoding: the outputs are what the
/// customer asked for. Returns how many were asked of ffmpeg.
async fn take_screenshots(
    work: &EncodeJob<'_>,
    facts: &MediaFacts,
    output: &Path,
) -> Result<usize, Stop> {
    let prefix = work.scratch.join("shot");
    let args = plan::screenshot_args(facts, output, &prefix, work.profile.frame_count)
        .map_err(|e| Stop::fail(ErrorClass::EncodingError, e.to_string()))?;
    let Some(args) = args else {
        return Ok(0);
    };
    let app = work.app;
    let result = app
        .runner
        .run(RunSpec {
            program: Tool::Ffmpeg,
            args: &args,
            workdir: work.scratch,
            time_limit: std::time::Duration::from_secs(app.config.workers.job_time_limit_secs),
            stall_limit: std::time::Duration::from_secs(app.config.workers.stall_secs),
            cancel: work.cancel.clone(),
            expected_duration_ms: facts.duration_ms,
            on_progress: None,
        })
        .await;
    match result {
        Ok(_) => Ok(work.profile.frame_count.clamp(0, 1000) as usize),
        Err(crate::media::process::ProcessError::Cancelled) => Err(Stop::Cancelled),
        Err(e) => {
            tracing::warn!(error = %e, "screenshots of the command's output failed");
            Ok(0)
        }
    }
}
