//! The database layer: one set of portable SQL on SQLite (embedded default)
//! and PostgreSQL (fleets), through sqlx's `Any` driver. Queries use `$N`
//! placeholders, which both back ends accept. The only dialect-specific SQL
//! is in the claims of the job queue and the webhook outbox (`SKIP LOCKED`
//! on PostgreSQL).

pub mod clouds;
pub mod encodings;
pub mod jobs;
pub mod notifications;
pub mod profiles;
pub mod signatures;
pub mod uploads;
pub mod videos;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;

pub use sqlx::Error as DbError;

/// Which SQL engine is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// Announces committed webhook events (live stream, delivery loop).
    pub feed: std::sync::Arc<crate::notify::feed::Feed>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Db {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else if url.starts_with("sqlite") {
            Backend::Sqlite
        } else {
            anyhow::bail!("unsupported database URL (use sqlite:// or postgres://)");
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers and one writer (possibly another
                        // process, e.g. `cloud create`) work side by side.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            feed: Default::default(),
        })
    }
}

/// Decodes a 0/1 column.
pub(crate) fn flag(v: i64) -> bool {
    v != 0
}
