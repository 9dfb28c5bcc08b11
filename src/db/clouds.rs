//! Accounts and clouds.

use sqlx::Row;
use sqlx::any::AnyRow;

use sqlx::AssertSqlSafe;

use super::{Db, DbError, flag};
use crate::domain::model::{Account, Cloud, NotificationEvents, Notifications};
use crate::domain::time::now_ms;

const CLOUD_COLUMNS: &str = "id, account_id, name, s3_videos_bucket, s3_private_access, \
    priority, notify_url, notify_events, notify_delay, created_at, updated_at";

fn account_from_row(row: &AnyRow) -> Result<Account, DbError> {
    Ok(Account {
        id: row.try_get("id")?,
        access_key: row.try_get("access_key")?,
        secret_key: row.try_get("secret_key")?,
        file_size_limit: row.try_get("file_size_limit")?,
    })
}

fn cloud_from_row(row: &AnyRow) -> Result<Cloud, DbError> {
    let events: String = row.try_get("notify_events")?;
    Ok(Cloud {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        s3_videos_bucket: row.try_get("s3_videos_bucket")?,
        s3_private_access: flag(row.try_get("s3_private_access")?),
        priority: row.try_get("priority")?,
        notifications: Notifications {
            url: row.try_get("notify_url")?,
            events: serde_json::from_str::<NotificationEvents>(&events).unwrap_or_default(),
            delay: row.try_get("notify_delay")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Db {
    pub async fn insert_account(&self, account: &Account) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO accounts (id, access_key, secret_key, file_size_limit, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&account.id)
        .bind(&account.access_key)
        .bind(&account.secret_key)
        .bind(account.file_size_limit)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn account_by_access_key(&self, key: &str) -> Result<Option<Account>, DbError> {
        sqlx::query("SELECT * FROM accounts WHERE access_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| account_from_row(&r))
            .transpose()
    }

    pub async fn count_clouds(&self) -> Result<i64, DbError> {
        sqlx::query("SELECT COUNT(*) AS n FROM clouds")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")
    }

    pub async fn insert_cloud(&self, cloud: &Cloud) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO clouds (id, account_id, name, s3_videos_bucket, s3_private_access, \
             priority, notify_url, notify_events, notify_delay, created_at, updated_at, \
             webhook_secret) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&cloud.id)
        .bind(&cloud.account_id)
        .bind(&cloud.name)
        .bind(&cloud.s3_videos_bucket)
        .bind(cloud.s3_private_access as i64)
        .bind(cloud.priority)
        .bind(&cloud.notifications.url)
        .bind(serde_json::to_string(&cloud.notifications.events).expect("serialisable"))
        .bind(cloud.notifications.delay)
        .bind(cloud.created_at)
        .bind(cloud.updated_at)
        .bind(crate::domain::ids::new_secret())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn update_cloud(&self, cloud: &Cloud) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE clouds SET name = $2, s3_videos_bucket = $3, s3_private_access = $4, \
             priority = $5, notify_url = $6, notify_events = $7, notify_delay = $8, \
             updated_at = $9 WHERE id = $1",
        )
        .bind(&cloud.id)
        .bind(&cloud.name)
        .bind(&cloud.s3_videos_bucket)
        .bind(cloud.s3_private_access as i64)
        .bind(cloud.priority)
        .bind(&cloud.notifications.url)
        .bind(serde_json::to_string(&cloud.notifications.events).expect("serialisable"))
        .bind(cloud.notifications.delay)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn cloud(&self, id: &str) -> Result<Option<Cloud>, DbError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {CLOUD_COLUMNS} FROM clouds WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| cloud_from_row(&r))
        .transpose()
    }

    pub async fn clouds_of_account(&self, account_id: &str) -> Result<Vec<Cloud>, DbError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {CLOUD_COLUMNS} FROM clouds WHERE account_id = $1 ORDER BY updated_at DESC, id"
        )))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(cloud_from_row)
        .collect()
    }
}

impl Db {
    /// The upload limit of an account.
    pub async fn account_limit(&self, account_id: &str) -> Result<Option<i64>, DbError> {
        sqlx::query("SELECT file_size_limit FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("file_size_limit"))
            .transpose()
    }
}
