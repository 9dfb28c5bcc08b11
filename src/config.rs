//! Settings, layered: built-in defaults < TOML file < `OPENPANDA_*`
//! environment variables < command-line flags. Unknown keys are errors, so a
//! typo in a file or a variable name is reported instead of ignored.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: String,
    /// Where the SQLite database, local storage and scratch files live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty means SQLite inside `data_dir`.
    pub database_url: Option<String>,
    /// Base URL clients reach this server at (cloud `url`, upload
    /// `location`s). Empty means `http://<listen>`.
    pub public_url: Option<String>,
    /// Extra host names accepted in request signatures (spec §2.4 h3).
    pub api_hosts: Vec<String>,
    pub workers: WorkersConfig,
    pub encoding: EncodingConfig,
    pub limits: LimitsConfig,
    pub fetch: FetchConfig,
    pub log: LogConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Run encoding workers inside `serve`.
    pub enabled: bool,
    /// Jobs (and ffmpeg processes) at once; 0 means half the cores, at least 1.
    pub concurrency: usize,
    /// Seconds a claimed job stays leased without a heartbeat.
    pub lease_secs: u64,
    /// Longest one ffmpeg run may take, in seconds.
    pub job_time_limit_secs: u64,
    /// Kill ffmpeg when it reports no progress for this many seconds.
    pub stall_secs: u64,
    /// Attempts before a job that keeps failing for transient reasons fails.
    pub max_attempts: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncodingConfig {
    /// x264 speed preset for H.264 presets (quality/speed trade-off).
    pub x264_preset: String,
    /// libvpx `-cpu-used` for WebM presets.
    pub vpx_cpu_used: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Default per-account upload limit in bytes (413 above it).
    pub max_upload_bytes: i64,
    /// Seconds allowed for downloading a `source_url`.
    pub download_timeout_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
pub struct FetchConfig {
    /// Allow `source_url`s that resolve to loopback, private or link-local
    /// addresses. Off in production; tests on loopback turn it on.
    pub allow_private_networks: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: String,
    /// A `tracing` filter, e.g. `info` or `openpanda=debug`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./openpanda-data"),
            database_url: None,
            public_url: None,
            api_hosts: Vec::new(),
            workers: WorkersConfig::default(),
            encoding: EncodingConfig::default(),
            limits: LimitsConfig::default(),
            fetch: FetchConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            concurrency: 0,
            lease_secs: 30,
            job_time_limit_secs: 6 * 3600,
            stall_secs: 300,
            max_attempts: 5,
        }
    }
}

impl Default for EncodingConfig {
    fn default() -> Self {
        Self {
            x264_preset: "medium".into(),
            vpx_cpu_used: 4,
        }
    }
}

impl EncodingConfig {
    /// The encoder speed settings the planner uses.
    pub fn speed(&self) -> crate::media::plan::EncoderSpeed {
        crate::media::plan::EncoderSpeed {
            x264_preset: self.x264_preset.clone(),
            vpx_cpu_used: self.vpx_cpu_used,
            threads: None,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 20 * 1024 * 1024 * 1024,
            download_timeout_secs: 3600,
        }
    }
}


impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "human".into(),
            level: "info".into(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    /// Loads the layers. `file` is read when given (it must then exist), else
    /// `openpanda.toml` in the working directory is read if present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(path.exists(), "config file {} not found", path.display());
                fig = fig.merge(Toml::file_exact(path));
            }
            None => fig = fig.merge(Toml::file("openpanda.toml")),
        }
        let config: Config = fig
            .merge(Env::prefixed("OPENPANDA_").split("__"))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            matches!(self.log.format.as_str(), "human" | "json"),
            "log.format must be \"human\" or \"json\", got {:?}",
            self.log.format
        );
        Ok(())
    }

    /// The database to use: the configured URL, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("openpanda.sqlite3").display()
            ),
        }
    }

    /// The base URL of this server, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) if !url.is_empty() => url.trim_end_matches('/').to_string(),
            _ => format!("http://{}", self.listen),
        }
    }

    /// Worker slots: the configured number, or half the cores (at least one).
    pub fn concurrency(&self) -> usize {
        match self.workers.concurrency {
            0 => std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1),
            n => n,
        }
    }
}
