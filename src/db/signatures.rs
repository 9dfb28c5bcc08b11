//! The replay guard for POST signatures (spec §2.7).

use super::{Db, DbError};
use crate::domain::time::now_ms;

impl Db {
    /// Records a POST signature; false when it was already used.
    pub async fn use_signature(
        &self,
        access_key: &str,
        signature: &str,
        expires_at: i64,
    ) -> Result<bool, DbError> {
        let now = now_ms();
        sqlx::query("DELETE FROM used_signatures WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let r = sqlx::query(
            "INSERT INTO used_signatures (access_key, signature, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (access_key, signature) DO NOTHING",
        )
        .bind(access_key)
        .bind(signature)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
