//! The running service's shared state and the operations the CLI and the
//! API both need (creating clouds, finding a cloud's storage).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::Db;
use crate::domain::ids::{new_id, new_secret};
use crate::domain::model::{Account, Cloud, Notifications, Profile};
use crate::domain::profile::ProfileSpec;
use crate::domain::time::now_ms;
use crate::media::process::Runner;
use crate::storage::Storage;
use crate::storage::local::LocalStorage;
use crate::storage::metered::Metered;

pub struct App {
    pub config: Config,
    pub db: Db,
    /// Runs encodes: at most `config.concurrency()` ffmpeg processes.
    pub runner: Runner,
    /// Runs small side jobs (previews) outside the encode slots.
    pub light_runner: Runner,
    /// Wakes idle worker slots when a job is queued.
    pub wake: Notify,
    /// This process's id in job leases and logs.
    pub worker_id: String,
    running: Mutex<HashMap<String, CancellationToken>>,
}

impl App {
    /// Opens the data directory and the database.
    pub async fn open(mut config: Config) -> anyhow::Result<Arc<Self>> {
        for dir in ["storage", "tmp", "work", "uploads"] {
            std::fs::create_dir_all(config.data_dir.join(dir)).map_err(|e| {
                anyhow::anyhow!("cannot create {}: {e}", config.data_dir.join(dir).display())
            })?;
        }
        // ffmpeg runs inside per-job scratch directories, so every path it
        // is given must be absolute.
        config.data_dir = std::fs::canonicalize(&config.data_dir)?;
        // The database holds the accounts' secret keys: keep the data
        // directory to its owner (objects are published over HTTP, not the
        // file system).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let db = Db::connect(&config.database_url()).await?;
        crate::telemetry::install();
        let concurrency = config.concurrency();
        Ok(Arc::new(Self {
            runner: Runner::new(concurrency),
            light_runner: Runner::new(2),
            wake: Notify::new(),
            worker_id: worker_id(),
            running: Mutex::new(HashMap::new()),
            db,
            config,
        }))
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.config.data_dir.join("storage")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.config.data_dir.join("tmp")
    }

    pub fn work_dir(&self) -> PathBuf {
        self.config.data_dir.join("work")
    }

    /// Partial uploads of open upload sessions (not scratch: they live as
    /// long as their session).
    pub fn uploads_dir(&self) -> PathBuf {
        self.config.data_dir.join("uploads")
    }

    /// The object store of a cloud.
    pub fn storage(&self, cloud: &Cloud) -> Arc<dyn Storage> {
        let local = LocalStorage::new(
            self.storage_dir().join(&cloud.id),
            self.tmp_dir(),
            self.cloud_url(cloud),
        )
        .with_partial_dir(self.uploads_dir());
        Arc::new(Metered::new(Arc::new(local), "local"))
    }

    /// Base URL of a cloud's objects, with a trailing slash (spec §4.5).
    pub fn cloud_url(&self, cloud: &Cloud) -> String {
        format!("{}/storage/{}/", self.config.public_url(), cloud.id)
    }

    pub fn wake_workers(&self) {
        self.wake.notify_waiters();
    }

    pub fn register_running(&self, encoding_id: &str, token: CancellationToken) {
        self.running
            .lock()
            .expect("running map")
            .insert(encoding_id.to_string(), token);
    }

    pub fn unregister_running(&self, encoding_id: &str) {
        self.running
            .lock()
            .expect("running map")
            .remove(encoding_id);
    }

    /// Stops an encoding running in this process at once (other processes
    /// notice through their heartbeat).
    pub fn cancel_local(&self, encoding_id: &str) {
        if let Some(t) = self.running.lock().expect("running map").get(encoding_id) {
            t.cancel();
        }
    }

    /// Creates a cloud, and an account for it unless `keys` names an
    /// existing one. New accounts get a fresh key pair; every new cloud gets
    /// the `h264` profile (spec §8.1: new accounts start with it).
    pub async fn create_cloud(
        &self,
        name: &str,
        keys: Option<(String, String)>,
    ) -> anyhow::Result<(Account, Cloud)> {
        let account = match &keys {
            Some((access, secret)) => match self.db.account_by_access_key(access).await? {
                Some(a) if &a.secret_key == secret => Some(a),
                Some(_) => anyhow::bail!("access key {access} exists with a different secret"),
                None => None,
            },
            None => None,
        };
        let account = match account {
            Some(a) => a,
            None => {
                let (access_key, secret_key) = keys.unwrap_or_else(|| (new_id(), new_secret()));
                let a = Account {
                    id: new_id(),
                    access_key,
                    secret_key,
                    file_size_limit: self.config.limits.max_upload_bytes,
                };
                self.db.insert_account(&a).await?;
                a
            }
        };
        let now = now_ms();
        let cloud = Cloud {
            id: new_id(),
            account_id: account.id.clone(),
            name: name.to_string(),
            s3_videos_bucket: None,
            s3_private_access: false,
            priority: 99,
            notifications: Notifications {
                delay: 30,
                ..Default::default()
            },
            created_at: now,
            updated_at: now,
        };
        self.db.insert_cloud(&cloud).await?;
        let profile = Profile {
            id: new_id(),
            cloud_id: cloud.id.clone(),
            name: Some("h264".into()),
            spec: ProfileSpec {
                preset_name: Some("h264".into()),
                ..Default::default()
            },
            created_at: now,
            updated_at: now,
        };
        self.db.insert_profile(&profile).await?;
        Ok((account, cloud))
    }
}

/// Removes scratch files older than a day from `tmp` and `work`: leftovers
/// of a process that was killed. Recent entries may belong to another
/// process sharing the data directory, so they stay.
pub fn sweep_scratch(app: &App) {
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    for dir in [app.tmp_dir(), app.work_dir()] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if old {
                let path = entry.path();
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
    }
}

/// `<hostname>-<pid>`: unique among live processes, readable in logs.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}
