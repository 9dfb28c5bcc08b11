//! The `openpanda` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::{Config, Overrides};

#[derive(Parser, Debug)]
#[command(
    name = "openpanda",
    version,
    about = "Self-hosted video encoding with Panda's v2 API"
)]
struct Cli {
    /// Configuration file (TOML). Default: ./openpanda.toml if it exists.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP API and the encoding workers.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
        /// Directory for the database, stored files and scratch space.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Database URL (sqlite://… or postgres://…).
        #[arg(long)]
        database: Option<String>,
        /// Serve the API only; leave encoding to other processes.
        #[arg(long)]
        no_workers: bool,
    },
    /// Print the ffmpeg arguments a preset would run on a local file, as
    /// JSON (`{"passes": [[arg, ...], ...]}`), without running them.
    Plan {
        /// The input media file.
        input: PathBuf,
        /// Preset name, e.g. h264 or webm.
        #[arg(long)]
        preset: String,
        /// Where the output and screenshots would be written.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Encode a local file with a preset, exactly as the server's pipeline
    /// would, without a server: the output and its screenshots go to --out.
    Encode {
        /// The input media file.
        input: PathBuf,
        /// Preset name, e.g. h264 or webm.
        #[arg(long)]
        preset: String,
        /// Output directory (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Print the effective configuration (all layers merged) as TOML, with
    /// secrets masked.
    Config,
    /// Run encoding workers only (no API): claims jobs from the shared
    /// database. Start as many as the machines allow.
    Worker {
        /// Directory for scratch space (and SQLite, when used).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Database URL (sqlite://… or postgres://…).
        #[arg(long)]
        database: Option<String>,
    },
    /// Manage clouds.
    Cloud {
        #[command(subcommand)]
        command: CloudCommand,
    },
}

#[derive(Subcommand, Debug)]
enum CloudCommand {
    /// Create a cloud (and an account key pair unless one is given).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        database: Option<String>,
        /// Use this account's access key (with --secret-key) instead of a new pair.
        #[arg(long, requires = "secret_key")]
        access_key: Option<String>,
        #[arg(long, requires = "access_key")]
        secret_key: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("openpanda: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("openpanda: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            database,
            no_workers,
        } => {
            let overrides = Overrides {
                listen,
                data_dir,
                database_url: database,
            };
            let mut config = Config::load(cli.config.as_deref(), &overrides)?;
            if no_workers {
                config.workers.enabled = false;
            }
            init_tracing(&config);
            serve(config).await
        }
        Command::Worker { data_dir, database } => {
            let overrides = Overrides {
                data_dir,
                database_url: database,
                ..Default::default()
            };
            let config = Config::load(cli.config.as_deref(), &overrides)?;
            init_tracing(&config);
            run_worker(config).await
        }
        Command::Encode { input, preset, out } => {
            let config = Config::load(cli.config.as_deref(), &Overrides::default())?;
            encode_file(&config, &input, &preset, &out).await
        }
        Command::Config => {
            let config = Config::load(cli.config.as_deref(), &Overrides::default())?;
            print!("{}", config.to_masked_toml()?);
            Ok(())
        }
        Command::Plan { input, preset, out } => {
            let config = Config::load(cli.config.as_deref(), &Overrides::default())?;
            let target = PlanTarget::new(&input, &out, &preset)?;
            let plan = plan_for_file(&config, &input, &preset, &target).await?;
            println!("{}", serde_json::json!({ "passes": plan.passes }));
            Ok(())
        }
        Command::Cloud {
            command:
                CloudCommand::Create {
                    name,
                    data_dir,
                    database,
                    access_key,
                    secret_key,
                    json,
                },
        } => {
            let overrides = Overrides {
                data_dir,
                database_url: database,
                ..Default::default()
            };
            let config = Config::load(cli.config.as_deref(), &overrides)?;
            let app = App::open(config).await?;
            let keys = access_key.zip(secret_key);
            let (account, cloud) = app.create_cloud(&name, keys).await?;
            if json {
                let out = serde_json::json!({
                    "id": cloud.id,
                    "name": cloud.name,
                    "access_key": account.access_key,
                    "secret_key": account.secret_key,
                    "url": app.cloud_url(&cloud),
                    "data_dir": app.config.data_dir,
                    "database": crate::config::mask_url_password(&app.config.database_url()),
                });
                println!("{out}");
            } else {
                println!(
                    "created in {} (database {})",
                    app.config.data_dir.display(),
                    crate::config::mask_url_password(&app.config.database_url())
                );
                println!("cloud_id:   {}", cloud.id);
                println!("access_key: {}", account.access_key);
                println!("secret_key: {}", account.secret_key);
            }
            Ok(())
        }
    }
}

/// Where a local encode writes: `<out>/<input stem><extname>` and
/// screenshots `<out>/<input stem>_N.jpg`.
pub struct PlanTarget {
    pub output: PathBuf,
    pub shots: PathBuf,
}

impl PlanTarget {
    pub fn new(
        input: &std::path::Path,
        out: &std::path::Path,
        preset: &str,
    ) -> anyhow::Result<Self> {
        let ext = crate::domain::profile::preset(preset)
            .ok_or_else(|| anyhow::anyhow!("unknown preset {preset:?}"))?
            .extname;
        let stem = input
            .file_stem()
            .map(|s| crate::domain::path_format::sanitize(&s.to_string_lossy()))
            .unwrap_or_else(|| "output".into());
        let out = std::path::absolute(out)?;
        Ok(Self {
            output: out.join(format!("{stem}{ext}")),
            shots: out.join(stem),
        })
    }
}

/// The ffmpeg runs the server's pipeline would do for `input` in `preset`:
/// the same probe, the same planner, the same encoder settings.
pub async fn plan_for_file(
    config: &Config,
    input: &std::path::Path,
    preset: &str,
    target: &PlanTarget,
) -> anyhow::Result<crate::media::plan::Plan> {
    use crate::domain::profile::ProfileSpec;
    use crate::media::plan::{EncodeRequest, plan};
    let spec = ProfileSpec {
        preset_name: Some(preset.to_string()),
        ..Default::default()
    };
    let profile = spec.resolve().map_err(|e| anyhow::anyhow!("{e}"))?;
    let input = std::path::absolute(input)?;
    let facts = crate::media::probe::probe(&input).await?;
    let speed = config.encoding.speed();
    let request = EncodeRequest {
        profile: &profile,
        facts: &facts,
        input: &input,
        output: &target.output,
        screenshots: (profile.frame_count > 0).then_some(target.shots.as_path()),
        speed: &speed,
        watermark: None,
    };
    Ok(plan(&request)?)
}

/// `openpanda encode`: plan and run locally, with a progress bar on a
/// terminal and plain progress lines otherwise.
async fn encode_file(
    config: &Config,
    input: &std::path::Path,
    preset: &str,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    std::fs::create_dir_all(out)?;
    let target = PlanTarget::new(input, out, preset)?;
    let plan = plan_for_file(config, input, preset, &target).await?;
    let runner = crate::media::process::Runner::new(1);
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(100);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos:>3}% {elapsed}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(preset.to_string());
        bar
    });
    let passes = plan.passes.len().max(1);
    let last = std::sync::atomic::AtomicU8::new(u8::MAX);
    for (i, args) in plan.passes.iter().enumerate() {
        let on_progress = |p: u8| {
            let overall = ((i * 100 + p as usize) / passes) as u8;
            match &bar {
                Some(bar) => bar.set_position(overall as u64),
                None => {
                    if last.swap(overall, std::sync::atomic::Ordering::Relaxed) != overall {
                        eprintln!("progress {overall}%");
                    }
                }
            }
        };
        runner
            .run(crate::media::process::RunSpec {
                program: crate::media::process::Tool::Ffmpeg,
                args,
                workdir: out,
                time_limit: Duration::from_secs(config.workers.job_time_limit_secs),
                stall_limit: Duration::from_secs(config.workers.stall_secs),
                cancel: CancellationToken::new(),
                expected_duration_ms: plan.duration_ms,
                on_progress: Some(&on_progress),
            })
            .await?;
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    println!("{}", target.output.display());
    for n in 1..=plan.screenshot_count {
        let shot = format!("{}_{n}.jpg", target.shots.display());
        if std::path::Path::new(&shot).exists() {
            println!("{shot}");
        }
    }
    Ok(())
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let app = App::open(config).await?;
    crate::app::sweep_scratch(&app);
    if app.db.count_clouds().await? == 0 {
        let (account, cloud) = app.create_cloud("default", None).await?;
        print_welcome(&app, &account, &cloud);
    }
    let shutdown = CancellationToken::new();
    let mut workers = if app.config.workers.enabled {
        Some(crate::worker::spawn(app.clone(), shutdown.clone()))
    } else {
        None
    };
    let webhooks = crate::notify::spawn(app.clone(), shutdown.clone());
    let https = crate::tls::spawn_https(app.clone(), shutdown.clone()).await?;
    crate::api::uploads::spawn_sweeper(app.clone(), shutdown.clone());
    tracing::info!(
        listen = %app.config.listen,
        workers = if app.config.workers.enabled { app.config.concurrency() } else { 0 },
        worker_id = %app.worker_id,
        "openpanda is listening on {}",
        app.config.public_url()
    );
    let router = crate::api::router(app.clone());
    let stop = shutdown.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: no new jobs are claimed");
            stop.cancel();
        })
        .await?;
    if let Some(set) = workers.as_mut() {
        drain_workers(&app, set).await;
    }
    let _ = webhooks.await;
    if let Some(https) = https {
        let _ = https.await;
    }
    Ok(())
}

/// `openpanda worker`: job slots and webhook delivery, no HTTP.
async fn run_worker(config: Config) -> anyhow::Result<()> {
    let app = App::open(config).await?;
    crate::app::sweep_scratch(&app);
    let shutdown = CancellationToken::new();
    let mut workers = crate::worker::spawn(app.clone(), shutdown.clone());
    let webhooks = crate::notify::spawn(app.clone(), shutdown.clone());
    tracing::info!(
        worker_id = %app.worker_id,
        slots = app.config.concurrency(),
        "openpanda worker is running"
    );
    wait_for_signal().await;
    tracing::info!("shutting down: no new jobs are claimed");
    shutdown.cancel();
    drain_workers(&app, &mut workers).await;
    let _ = webhooks.await;
    Ok(())
}

/// Lets running jobs finish within the grace period, then hands the rest
/// back to the queue so another worker takes them at once.
async fn drain_workers(app: &Arc<App>, set: &mut tokio::task::JoinSet<()>) {
    let grace = Duration::from_secs(app.config.workers.shutdown_grace_secs);
    let finished = tokio::time::timeout(grace, async { while set.join_next().await.is_some() {} });
    if finished.await.is_err() {
        set.abort_all();
        while set.join_next().await.is_some() {}
        match app.db.release_jobs(&app.worker_id).await {
            Ok(n) => tracing::warn!(jobs = n, "grace period over; running jobs handed back"),
            Err(e) => {
                tracing::error!(error = %e, "could not hand jobs back; their leases will expire")
            }
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn print_welcome(
    app: &Arc<App>,
    account: &crate::domain::model::Account,
    cloud: &crate::domain::model::Cloud,
) {
    let base = app.config.public_url();
    let host = base
        .split("://")
        .nth(1)
        .unwrap_or("127.0.0.1")
        .split(['/', ':'])
        .next()
        .unwrap_or("127.0.0.1");
    let (cid, ak, sk) = (&cloud.id, &account.access_key, &account.secret_key);
    let url = app.cloud_url(cloud);
    println!(
        r#"
openpanda created your first cloud.

  cloud_id:   {cid}
  access_key: {ak}
  secret_key: {sk}

Upload a video (bash; needs curl and openssl), then poll the video and its encodings:

  TS=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  SIG=$(printf 'POST\n%s\n/videos.json\naccess_key=%s&cloud_id=%s&profiles=h264&timestamp=%s' \
        {host} {ak} {cid} "${{TS//:/%3A}}" | openssl dgst -sha256 -hmac '{sk}' -binary | base64)
  curl -F access_key={ak} -F cloud_id={cid} -F profiles=h264 -F timestamp=$TS \
       -F signature=$SIG -F file=@your-video.mp4 {base}/v2/videos.json

Encodings appear under {url} (path + extname).
"#
    );
}
