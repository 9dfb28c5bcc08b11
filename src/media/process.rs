//! Running ffmpeg and ffprobe: the only place in the crate that spawns a
//! program.
//!
//! Programs come from a fixed allowlist ([`Tool`]) and get an argument vector,
//! never a shell line. Every run has a wall-clock limit, ffmpeg runs also a
//! stall limit (no output for too long), and all of them can be cancelled; in
//! each case the child is killed and reaped. Output is read concurrently and
//! bounded: stderr keeps only its tail, stdout is capped.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How much of stderr is kept (the tail).
pub const STDERR_TAIL_BYTES: usize = 64 * 1024;
/// How much of an ffprobe stdout is kept (the head); the rest is discarded.
pub const PROBE_STDOUT_CAP: usize = 16 * 1024 * 1024;
/// How much of an ffmpeg stdout (progress lines) is kept (the tail).
const FFMPEG_STDOUT_TAIL: usize = 64 * 1024;
/// Fallback search path when the service's own PATH is unset.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The programs this module may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `ffmpeg`, or the path in `OPENPANDA_FFMPEG`.
    Ffmpeg,
    /// `ffprobe`, or the path in `OPENPANDA_FFPROBE`.
    Ffprobe,
}

impl Tool {
    /// The program's name, as shown in logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ffmpeg => "ffmpeg",
            Self::Ffprobe => "ffprobe",
        }
    }

    /// The environment variable that can point at a specific binary.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::Ffmpeg => "OPENPANDA_FFMPEG",
            Self::Ffprobe => "OPENPANDA_FFPROBE",
        }
    }

    /// Finds the binary: the override variable if set, else a search of PATH.
    pub fn resolve(self) -> Result<PathBuf, ProcessError> {
        if let Some(path) = std::env::var_os(self.env_var()).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(ProcessError::NotFound(format!(
                    "{} is set to {} but there is no file there",
                    self.env_var(),
                    path.display()
                )))
            };
        }
        let search = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
        std::env::split_paths(&search)
            .map(|dir| dir.join(self.name()))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                ProcessError::NotFound(format!(
                    "{} was not found on PATH (install it or set {})",
                    self.name(),
                    self.env_var()
                ))
            })
    }
}

/// One program run.
pub struct RunSpec<'a> {
    /// Which program.
    pub program: Tool,
    /// Its arguments, without the program name.
    pub args: &'a [String],
    /// The working directory (the job's scratch directory); also its HOME.
    pub workdir: &'a Path,
    /// Wall-clock limit from the start of the process.
    pub time_limit: Duration,
    /// Kill ffmpeg when it writes nothing (progress or diagnostics) for this
    /// long. Not applied to ffprobe, which writes only at the end.
    pub stall_limit: Duration,
    /// Cancels the run (or the wait for a slot).
    pub cancel: CancellationToken,
    /// Expected duration of the output, to turn `-progress` times into percent.
    pub expected_duration_ms: Option<i64>,
    /// Called with 0..=100 whenever the percentage changes.
    pub on_progress: Option<&'a (dyn Fn(u8) + Send + Sync)>,
}

/// What a successful run produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// Standard output: whole (up to [`PROBE_STDOUT_CAP`]) for ffprobe, the
    /// tail of the progress lines for ffmpeg.
    pub stdout: String,
    /// True when stdout was longer than what is kept.
    pub stdout_truncated: bool,
    /// The last [`STDERR_TAIL_BYTES`] of standard error.
    pub stderr_tail: String,
    /// Wall-clock time of the process.
    pub elapsed: Duration,
    /// The command, shell-quoted, for the failure log.
    pub command_line: String,
}

/// Why a run did not succeed.
#[derive(thiserror::Error, Debug)]
pub enum ProcessError {
    /// The program is not installed or the override path is wrong.
    #[error("{0}")]
    NotFound(String),
    /// The operating system refused to start it.
    #[error("could not start the program: {0}")]
    Spawn(String),
    /// It ran and exited unsuccessfully.
    #[error("{tool} {}: {}", exit_words(*code), summarize_stderr(stderr_tail))]
    Failed {
        tool: &'static str,
        code: Option<i32>,
        stderr_tail: String,
        command_line: String,
    },
    /// It ran longer than the time limit and was killed.
    #[error("{tool} was stopped after running for {}s, its time limit", limit.as_secs())]
    TimedOut {
        tool: &'static str,
        limit: Duration,
        stderr_tail: String,
        command_line: String,
    },
    /// It wrote nothing for the stall limit and was killed.
    #[error("{tool} was stopped after making no progress for {}s", idle.as_secs())]
    Stalled {
        tool: &'static str,
        idle: Duration,
        stderr_tail: String,
        command_line: String,
    },
    /// The run was cancelled (and the process killed if it had started).
    #[error("cancelled")]
    Cancelled,
}

impl ProcessError {
    /// The stderr tail, when the process got to run.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            Self::Failed { stderr_tail, .. }
            | Self::TimedOut { stderr_tail, .. }
            | Self::Stalled { stderr_tail, .. } => Some(stderr_tail),
            _ => None,
        }
    }

    /// The command line, when the process got to run.
    pub fn command_line(&self) -> Option<&str> {
        match self {
            Self::Failed { command_line, .. }
            | Self::TimedOut { command_line, .. }
            | Self::Stalled { command_line, .. } => Some(command_line),
            _ => None,
        }
    }
}

fn exit_words(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exited with code {code}"),
        None => "was killed by a signal".to_string(),
    }
}

/// Lines ffmpeg prints after the real cause; they say nothing on their own.
const GENERIC_ERROR_LINES: &[&str] = &[
    "Conversion failed!",
    "Error marking filters as finished",
    "Error while filtering",
    "Error initializing complex filters.",
    "Error while processing the decoded data for stream",
    "Last message repeated",
    "Nothing was written into output file",
    "Exiting normally",
    "Error closing logfile",
];

/// The most telling line of an ffmpeg/ffprobe stderr, without the
/// `[component @ 0x…]` prefix, followed by its meaning in plain words when
/// it is a known terse one; a placeholder when stderr is empty.
pub fn summarize_stderr(stderr: &str) -> String {
    match telling_line(stderr) {
        Some(line) => match plain_words(line) {
            Some(hint) => format!("{line} ({hint})"),
            None => line.to_string(),
        },
        None => "no error message".to_string(),
    }
}

/// The last stderr line that says more than "it failed", without the
/// `[component @ 0x…]` prefix.
pub fn telling_line(stderr: &str) -> Option<&str> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| !GENERIC_ERROR_LINES.iter().any(|g| l.contains(g)))
        .or(lines.last())
        .map(|line| strip_component_prefix(line))
}

/// What some terse ffmpeg messages mean, in plain words.
fn plain_words(line: &str) -> Option<&'static str> {
    const MEANINGS: &[(&str, &str)] = &[
        ("partial file", "the file is truncated"),
        (
            "Invalid data found when processing input",
            "the data is damaged or not media",
        ),
        (
            "Cannot determine format of input stream",
            "a stream could not be decoded",
        ),
        (
            "Decoder (codec none) not found",
            "a stream has an unknown codec",
        ),
        ("No space left on device", "the disk is full"),
        ("does not contain any stream", "there was nothing to encode"),
        ("Permission denied", "a file could not be opened"),
    ];
    MEANINGS
        .iter()
        .find(|(needle, _)| line.contains(needle))
        .map(|(_, meaning)| *meaning)
}

fn strip_component_prefix(line: &str) -> &str {
    if line.starts_with('[')
        && let Some(end) = line.find("] ")
        && line[..end].contains(" @ ")
    {
        return &line[end + 2..];
    }
    line
}

/// Runs programs, at most `max_concurrent` ffmpeg processes at a time.
/// ffprobe runs are short and do not take a slot.
#[derive(Clone, Debug)]
pub struct Runner {
    slots: Arc<Semaphore>,
}

impl Default for Runner {
    fn default() -> Self {
        Self::new(Self::default_concurrency())
    }
}

impl Runner {
    /// A runner allowing `max_concurrent` (at least 1) ffmpeg processes.
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// Half the CPU cores, at least 1: x264 and libvpx use several threads.
    pub fn default_concurrency() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get() / 2)
            .unwrap_or(1)
            .max(1)
    }

    /// Runs the program to completion, or until cancelled, timed out or
    /// stalled (in which case it is killed).
    pub async fn run(&self, spec: RunSpec<'_>) -> Result<RunOutput, ProcessError> {
        let program = spec.program.resolve()?;
        let command_line = command_line(spec.program, spec.args);
        let _slot = match spec.program {
            Tool::Ffmpeg => Some(self.take_slot(&spec.cancel).await?),
            Tool::Ffprobe => None,
        };
        let span = tracing::info_span!("run", tool = spec.program.name(), command = %command_line);
        run_process(&program, &spec, command_line)
            .instrument(span)
            .await
    }

    async fn take_slot(
        &self,
        cancel: &CancellationToken,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ProcessError> {
        tokio::select! {
            _ = cancel.cancelled() => Err(ProcessError::Cancelled),
            permit = self.slots.clone().acquire_owned() => {
                permit.map_err(|_| ProcessError::Spawn("the runner is shut down".into()))
            }
        }
    }
}

/// The command as one shell-quoted line (for logs; it is never executed).
pub fn command_line(tool: Tool, args: &[String]) -> String {
    std::iter::once(tool.name().to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=+,%@".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn build_command(program: &Path, spec: &RunSpec<'_>) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(spec.args)
        .current_dir(spec.workdir)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        )
        .env("HOME", spec.workdir)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// How the run ended, before it is turned into a result.
enum Ending {
    Exited(std::process::ExitStatus),
    Cancelled,
    TimedOut,
    Stalled,
    /// Waiting for the child failed (it is killed to be sure).
    Lost(std::io::Error),
}

async fn run_process(
    program: &Path,
    spec: &RunSpec<'_>,
    command_line: String,
) -> Result<RunOutput, ProcessError> {
    let tool = spec.program.name();
    let mut child = build_command(program, spec)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                ProcessError::NotFound(format!("{tool} could not be started: {e}"))
            }
            _ => ProcessError::Spawn(format!("{tool}: {e}")),
        })?;
    let started = Instant::now();
    let mut stdout_sink = match spec.program {
        Tool::Ffprobe => Sink::head(PROBE_STDOUT_CAP),
        Tool::Ffmpeg => Sink::tail(FFMPEG_STDOUT_TAIL),
    };
    let mut stderr_sink = Sink::tail(STDERR_TAIL_BYTES);
    let mut progress = Progress::new(spec.expected_duration_ms, spec.on_progress);

    let ending = pump(
        &mut child,
        spec,
        started,
        &mut stdout_sink,
        &mut stderr_sink,
        &mut progress,
    )
    .await;
    if !matches!(ending, Ending::Exited(_)) {
        kill_and_reap(&mut child).await;
    }
    let elapsed = started.elapsed();
    let stderr_tail = stderr_sink.into_string();
    tracing::debug!(elapsed_ms = elapsed.as_millis() as u64, "process finished");
    match ending {
        Ending::Exited(status) if status.success() => {
            progress.finish();
            let stdout_truncated = stdout_sink.truncated;
            Ok(RunOutput {
                stdout: stdout_sink.into_string(),
                stdout_truncated,
                stderr_tail,
                elapsed,
                command_line,
            })
        }
        Ending::Exited(status) => {
            tracing::info!(code = ?status.code(), "process failed");
            Err(ProcessError::Failed {
                tool,
                code: status.code(),
                stderr_tail,
                command_line,
            })
        }
        Ending::Cancelled => Err(ProcessError::Cancelled),
        Ending::Lost(e) => Err(ProcessError::Spawn(format!("lost track of {tool}: {e}"))),
        Ending::TimedOut => {
            tracing::warn!("process timed out");
            Err(ProcessError::TimedOut {
                tool,
                limit: spec.time_limit,
                stderr_tail,
                command_line,
            })
        }
        Ending::Stalled => {
            tracing::warn!("process stalled");
            Err(ProcessError::Stalled {
                tool,
                idle: spec.stall_limit,
                stderr_tail,
                command_line,
            })
        }
    }
}

/// Reads both pipes until they close and the child exits, or until a limit
/// or the cancel token ends the run.
async fn pump(
    child: &mut Child,
    spec: &RunSpec<'_>,
    started: Instant,
    stdout_sink: &mut Sink,
    stderr_sink: &mut Sink,
    progress: &mut Progress<'_>,
) -> Ending {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let deadline = tokio::time::Instant::from_std(started + spec.time_limit);
    let watch_stall = spec.program == Tool::Ffmpeg;
    let mut last_output = tokio::time::Instant::now();
    let mut out_buf = vec![0u8; 16 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    loop {
        let stall_at = last_output + spec.stall_limit;
        tokio::select! {
            _ = spec.cancel.cancelled() => return Ending::Cancelled,
            _ = tokio::time::sleep_until(deadline) => return Ending::TimedOut,
            _ = tokio::time::sleep_until(stall_at), if watch_stall => return Ending::Stalled,
            n = read_some(&mut stdout, &mut out_buf), if stdout.is_some() => {
                match n {
                    Some(n) => {
                        stdout_sink.push(&out_buf[..n]);
                        progress.feed(&out_buf[..n]);
                        last_output = tokio::time::Instant::now();
                    }
                    None => stdout = None,
                }
            }
            n = read_some(&mut stderr, &mut err_buf), if stderr.is_some() => {
                match n {
                    Some(n) => {
                        stderr_sink.push(&err_buf[..n]);
                        last_output = tokio::time::Instant::now();
                    }
                    None => stderr = None,
                }
            }
            status = child.wait(), if stdout.is_none() && stderr.is_none() => {
                return match status {
                    Ok(status) => Ending::Exited(status),
                    Err(e) => Ending::Lost(e),
                };
            }
        }
    }
}

/// One read from an optional pipe; `None` at end of file or on error.
async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    let pipe = pipe.as_mut()?;
    match pipe.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

async fn kill_and_reap(child: &mut Child) {
    // The child may already have exited; errors here are not interesting.
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

/// A bounded byte buffer keeping either the first or the last `cap` bytes.
struct Sink {
    data: VecDeque<u8>,
    cap: usize,
    keep_head: bool,
    truncated: bool,
}

impl Sink {
    fn head(cap: usize) -> Self {
        Self {
            data: VecDeque::new(),
            cap,
            keep_head: true,
            truncated: false,
        }
    }

    fn tail(cap: usize) -> Self {
        Self {
            keep_head: false,
            ..Self::head(cap)
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.keep_head {
            let room = self.cap.saturating_sub(self.data.len());
            self.truncated |= bytes.len() > room;
            self.data.extend(&bytes[..bytes.len().min(room)]);
        } else {
            self.data.extend(bytes);
            let excess = self.data.len().saturating_sub(self.cap);
            if excess > 0 {
                self.truncated = true;
                self.data.drain(..excess);
            }
        }
    }

    fn into_string(self) -> String {
        let truncated_tail = self.truncated && !self.keep_head;
        let bytes: Vec<u8> = self.data.into();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if truncated_tail {
            // Start the tail at a whole line.
            match text.find('\n') {
                Some(i) => text[i + 1..].to_string(),
                None => text,
            }
        } else {
            text
        }
    }
}

/// Turns ffmpeg's `-progress` key=value lines into percentages.
struct Progress<'a> {
    expected_us: Option<i64>,
    callback: Option<&'a (dyn Fn(u8) + Send + Sync)>,
    partial: Vec<u8>,
    last: Option<u8>,
}

impl<'a> Progress<'a> {
    fn new(expected_ms: Option<i64>, callback: Option<&'a (dyn Fn(u8) + Send + Sync)>) -> Self {
        Self {
            expected_us: expected_ms.filter(|ms| *ms > 0).map(|ms| ms * 1000),
            callback,
            partial: Vec::new(),
            last: None,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.callback.is_none() {
            return;
        }
        self.partial.extend_from_slice(bytes);
        while let Some(nl) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            if let Some(percent) =
                parse_progress_line(&String::from_utf8_lossy(&line), self.expected_us)
            {
                self.report(percent);
            }
        }
        // A line never gets this long; do not let garbage accumulate.
        if self.partial.len() > 4096 {
            self.partial.clear();
        }
    }

    fn finish(&mut self) {
        self.report(100);
    }

    fn report(&mut self, percent: u8) {
        if self.last != Some(percent)
            && let Some(callback) = self.callback
        {
            self.last = Some(percent);
            callback(percent);
        }
    }
}

/// The percentage a progress line stands for, if it carries one. Times count
/// up to 99; only `progress=end` (or a clean exit) gives 100.
fn parse_progress_line(line: &str, expected_us: Option<i64>) -> Option<u8> {
    let (key, value) = line.trim().split_once('=')?;
    match key {
        "progress" if value == "end" => Some(100),
        // In ffmpeg 5.x `out_time_ms` is (despite its name) microseconds too.
        "out_time_us" | "out_time_ms" => {
            let us: i64 = value.parse().ok()?;
            let expected = expected_us?;
            let percent = (us.max(0) as f64 / expected as f64 * 100.0).floor();
            Some(percent.clamp(0.0, 99.0) as u8)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn progress_lines_become_percentages() {
        assert_eq!(
            parse_progress_line("out_time_us=500000", Some(1_000_000)),
            Some(50)
        );
        assert_eq!(
            parse_progress_line("out_time_ms=2000000\n", Some(1_000_000)),
            Some(99)
        );
        assert_eq!(
            parse_progress_line("out_time_us=-5", Some(1_000_000)),
            Some(0)
        );
        assert_eq!(
            parse_progress_line("out_time_us=N/A", Some(1_000_000)),
            None
        );
        assert_eq!(parse_progress_line("out_time_us=5", None), None);
        assert_eq!(parse_progress_line("progress=end", None), Some(100));
        assert_eq!(parse_progress_line("progress=continue", None), None);
        assert_eq!(parse_progress_line("frame=12", Some(1)), None);
    }

    #[test]
    fn progress_reports_only_changes_across_split_reads() {
        let seen = Mutex::new(Vec::new());
        let cb = |p: u8| seen.lock().unwrap().push(p);
        let mut progress = Progress::new(Some(1000), Some(&cb));
        progress.feed(b"frame=1\nout_time_us=100");
        progress.feed(b"000\nout_time_us=100000\nout_time_us=500000\nprogress=e");
        progress.feed(b"nd\n");
        progress.finish();
        assert_eq!(*seen.lock().unwrap(), vec![10, 50, 100]);
    }

    #[test]
    fn sinks_keep_head_or_tail() {
        let mut head = Sink::head(4);
        head.push(b"abcdef");
        assert!(head.truncated);
        assert_eq!(head.into_string(), "abcd");
        let mut tail = Sink::tail(8);
        tail.push(b"line1\nline2\nli");
        tail.push(b"ne3\n");
        assert_eq!(tail.into_string(), "line3\n");
    }

    #[test]
    fn command_lines_are_quoted_for_reading() {
        let line = command_line(
            Tool::Ffmpeg,
            &args(&["-i", "file:/a b/c's.mp4", "-vf", "scale=2:2"]),
        );
        assert_eq!(line, r"ffmpeg -i 'file:/a b/c'\''s.mp4' -vf scale=2:2");
    }

    #[test]
    fn stderr_summary_skips_generic_lines_and_prefixes() {
        let stderr = "[vp9 @ 0x55d1] Invalid sync code\nCannot determine format of input stream 0:0 after EOF\nError marking filters as finished\nConversion failed!\n";
        assert_eq!(
            summarize_stderr(stderr),
            "Cannot determine format of input stream 0:0 after EOF (a stream could not be decoded)"
        );
        assert_eq!(
            summarize_stderr("[mp3 @ 0x1] Header missing\n"),
            "Header missing"
        );
        assert_eq!(summarize_stderr(""), "no error message");
        assert_eq!(
            summarize_stderr("[mov,mp4 @ 0x5] stream 0, offset 0x99c: partial file\n"),
            "stream 0, offset 0x99c: partial file (the file is truncated)"
        );
    }

    fn spec<'a>(tool: Tool, args: &'a [String], cancel: CancellationToken) -> RunSpec<'a> {
        RunSpec {
            program: tool,
            args,
            workdir: Path::new("/tmp"),
            time_limit: Duration::from_secs(30),
            stall_limit: Duration::from_secs(30),
            cancel,
            expected_duration_ms: None,
            on_progress: None,
        }
    }

    #[tokio::test]
    async fn runs_ffprobe_and_captures_stdout() {
        let a = args(&["-hide_banner", "-version"]);
        let out = Runner::new(1)
            .run(spec(Tool::Ffprobe, &a, CancellationToken::new()))
            .await
            .unwrap();
        assert!(out.stdout.contains("ffprobe version"), "{}", out.stdout);
        assert!(out.command_line.starts_with("ffprobe -hide_banner"));
    }

    #[tokio::test]
    async fn failure_carries_the_telling_stderr_line() {
        let a = args(&[
            "-hide_banner",
            "-v",
            "error",
            "-i",
            "file:/nonexistent/x.mp4",
        ]);
        let err = Runner::new(1)
            .run(spec(Tool::Ffprobe, &a, CancellationToken::new()))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exited with code 1"), "{text}");
        assert!(text.contains("No such file or directory"), "{text}");
    }

    /// An ffmpeg that would run for a minute (real-time pacing of a 60 s
    /// synthetic source).
    fn endless_ffmpeg() -> Vec<String> {
        args(&[
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=d=60",
            "-f",
            "null",
            "-",
        ])
    }

    #[tokio::test]
    async fn cancel_kills_the_process() {
        let a = endless_ffmpeg();
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            trigger.cancel();
        });
        let started = Instant::now();
        let err = Runner::new(1)
            .run(spec(Tool::Ffmpeg, &a, cancel))
            .await
            .unwrap_err();
        assert!(matches!(err, ProcessError::Cancelled), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn time_and_stall_limits_kill_the_process() {
        let a = endless_ffmpeg();
        let mut s = spec(Tool::Ffmpeg, &a, CancellationToken::new());
        s.time_limit = Duration::from_millis(400);
        let err = Runner::new(1).run(s).await.unwrap_err();
        assert!(matches!(err, ProcessError::TimedOut { .. }), "{err}");

        let mut s = spec(Tool::Ffmpeg, &a, CancellationToken::new());
        s.stall_limit = Duration::from_millis(400);
        let err = Runner::new(1).run(s).await.unwrap_err();
        assert!(matches!(err, ProcessError::Stalled { .. }), "{err}");
    }

    #[tokio::test]
    async fn waiting_for_a_slot_can_be_cancelled() {
        let runner = Runner::new(1);
        let _held = runner.slots.clone().acquire_owned().await.unwrap();
        let a = args(&["-version"]);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = runner
            .run(spec(Tool::Ffmpeg, &a, cancel))
            .await
            .unwrap_err();
        assert!(matches!(err, ProcessError::Cancelled));
    }
}
