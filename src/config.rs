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
    /// Base URL clients reach this server at (cloud `url`). Empty means
    /// `http://<listen>`. Upload `location`s follow the scheme and Host the
    /// client came in with instead.
    pub public_url: Option<String>,
    /// Extra host names accepted in request signatures (spec §2.4 h3).
    pub api_hosts: Vec<String>,
    pub workers: WorkersConfig,
    pub encoding: EncodingConfig,
    pub limits: LimitsConfig,
    pub fetch: FetchConfig,
    pub notify: NotifyConfig,
    pub log: LogConfig,
    pub uploads: UploadsConfig,
    pub tls: TlsConfig,
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
    /// Seconds running jobs get to finish on SIGTERM before they are handed back.
    pub shutdown_grace_secs: u64,
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

/// Webhook delivery (spec §6). The defaults follow Panda: retries for a day,
/// starting at the cloud's `delay` and doubling up to an hour.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Deliver webhooks from `serve`.
    pub enabled: bool,
    /// Seconds one delivery may take, answer included.
    pub timeout_secs: u64,
    /// Keep retrying for this many seconds after the first attempt.
    pub max_age_secs: u64,
    /// Longest wait between two attempts (before jitter).
    pub max_backoff_secs: u64,
    /// First retry interval for every cloud instead of its `delay`, in
    /// seconds (fractions allowed, for tests); 0 means each cloud's `delay`.
    pub retry_base_secs_override: f64,
    /// Seconds between two `encoding-progress` events of one encoding.
    pub progress_every_secs: f64,
    /// Deliveries in flight at once in this process.
    pub concurrency: usize,
    /// Deliveries in flight at once for one cloud (all processes).
    pub per_cloud_concurrency: usize,
    /// Seconds a claimed delivery stays leased (longer than `timeout_secs`).
    pub lease_secs: u64,
    /// Milliseconds between looks at the outbox when nothing rings.
    pub poll_ms: u64,
}

/// Resumable upload sessions (spec §5).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadsConfig {
    /// Seconds without activity after which a session expires and its
    /// partial data is removed (spec §5.2 suggests a day).
    pub session_ttl_secs: u64,
}

/// HTTPS served by `serve` itself, on its own port beside plain HTTP
/// (spec §1.1: some clients only speak HTTPS, others only HTTP).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Address the HTTPS listener binds, e.g. `0.0.0.0:443`; unset means
    /// no HTTPS.
    pub listen: Option<String>,
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Use a self-signed certificate kept in `data_dir/tls/` (made on first
    /// use) instead of `cert` and `key`: for local use and tests.
    pub self_signed: bool,
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
            notify: NotifyConfig::default(),
            log: LogConfig::default(),
            uploads: UploadsConfig::default(),
            tls: TlsConfig::default(),
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
            shutdown_grace_secs: 30,
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

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout_secs: 10,
            max_age_secs: 24 * 3600,
            max_backoff_secs: 3600,
            retry_base_secs_override: 0.0,
            progress_every_secs: 10.0,
            concurrency: 32,
            per_cloud_concurrency: 4,
            lease_secs: 60,
            poll_ms: 1000,
        }
    }
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 24 * 3600,
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
        anyhow::ensure!(
            self.uploads.session_ttl_secs > 0,
            "uploads.session_ttl_secs must be at least 1"
        );
        if self.tls.listen.is_some() {
            anyhow::ensure!(
                self.tls.self_signed || (self.tls.cert.is_some() && self.tls.key.is_some()),
                "tls.listen needs tls.cert and tls.key, or tls.self_signed = true"
            );
        }
        Ok(())
    }

    /// The configuration as TOML, with passwords in URLs replaced by `****`.
    pub fn to_masked_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        shown.database_url = Some(mask_url_password(&self.database_url()));
        shown.public_url = Some(self.public_url());
        shown.workers.concurrency = self.concurrency();
        Ok(toml::to_string_pretty(&shown)?)
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

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`.
pub fn mask_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of the configuration is documented in docs/openpanda.toml
    /// (as `# key = default` under its `[section]`), and nothing else is.
    #[test]
    fn reference_file_lists_every_key() {
        let doc = include_str!("../docs/openpanda.toml");
        let mut documented = std::collections::BTreeSet::new();
        let mut section = String::new();
        for line in doc.lines() {
            let line = line.trim_start_matches('#').trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = format!("{name}.");
            } else if let Some((key, _)) = line.split_once(" = ")
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                documented.insert(format!("{section}{key}"));
            }
        }
        let value = toml::Value::try_from(Config::default()).unwrap();
        let mut actual = std::collections::BTreeSet::new();
        collect_keys(&value, "", &mut actual);
        // Keys whose default is empty do not serialise; list them by hand.
        actual.extend(
            [
                "database_url",
                "public_url",
                "tls.listen",
                "tls.cert",
                "tls.key",
            ]
            .map(String::from),
        );
        assert_eq!(documented, actual, "docs/openpanda.toml is out of date");
    }

    fn collect_keys(v: &toml::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                match v {
                    toml::Value::Table(_) => collect_keys(v, &format!("{prefix}{k}."), out),
                    _ => {
                        out.insert(format!("{prefix}{k}"));
                    }
                }
            }
        }
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_url_password("postgres://op:hunter2@db:5432/openpanda"),
            "postgres://op:****@db:5432/openpanda"
        );
        assert_eq!(mask_url_password("sqlite:///x.db"), "sqlite:///x.db");
    }
}
