//! Profiles of a cloud.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError};
use crate::domain::model::Profile;

fn profile_from_row(row: &AnyRow) -> Result<Profile, DbError> {
    let spec: String = row.try_get("spec")?;
    Ok(Profile {
        id: row.try_get("id")?,
        cloud_id: row.try_get("cloud_id")?,
        name: row.try_get("name")?,
        spec: serde_json::from_str(&spec).map_err(|e| DbError::Decode(Box::new(e)))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Db {
    pub async fn insert_profile(&self, p: &Profile) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO profiles (id, cloud_id, name, spec, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.id)
        .bind(&p.cloud_id)
        .bind(&p.name)
        .bind(serde_json::to_string(&p.spec).expect("serialisable"))
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn update_profile(&self, p: &Profile) -> Result<(), DbError> {
        sqlx::query("UPDATE profiles SET name = $2, spec = $3, updated_at = $4 WHERE id = $1")
            .bind(&p.id)
            .bind(&p.name)
            .bind(serde_json::to_string(&p.spec).expect("serialisable"))
            .bind(p.updated_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_profile(&self, id: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM profiles WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Looks a profile up by id first, then by name (spec §3.4 P2).
    pub async fn profile_by_id_or_name(
        &self,
        cloud_id: &str,
        key: &str,
    ) -> Result<Option<Profile>, DbError> {
        let by_id = sqlx::query("SELECT * FROM profiles WHERE cloud_id = $1 AND id = $2")
            .bind(cloud_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        let row = match by_id {
            Some(row) => Some(row),
            None => {
                sqlx::query("SELECT * FROM profiles WHERE cloud_id = $1 AND name = $2")
                    .bind(cloud_id)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        row.map(|r| profile_from_row(&r)).transpose()
    }

    pub async fn profiles(&self, cloud_id: &str) -> Result<Vec<Profile>, DbError> {
        sqlx::query("SELECT * FROM profiles WHERE cloud_id = $1 ORDER BY updated_at DESC, id")
            .bind(cloud_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(profile_from_row)
            .collect()
    }
}
