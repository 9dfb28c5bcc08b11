//! `/clouds…` (spec §3.5). The notification settings (§3.6) are in
//! `notifications.rs`.

use axum::response::Response;

use super::error::{ApiError, ApiResult};
use super::request::Ctx;
use super::{list_body, ok, views};
use crate::domain::model::Cloud;

pub async fn list(ctx: &Ctx) -> ApiResult<Response> {
    let clouds = ctx.app.db.clouds_of_account(&ctx.account.id).await?;
    let total = clouds.len() as i64;
    let items = clouds
        .iter()
        .map(|c| views::cloud(c, &ctx.app.cloud_url(c)))
        .collect();
    list_body(ctx, "clouds", items, total)
}

async fn find(ctx: &Ctx, id: &str) -> ApiResult<Cloud> {
    match ctx.app.db.cloud(id).await? {
        Some(c) if c.account_id == ctx.account.id => Ok(c),
        _ => Err(ApiError::not_found("Cloud", id)),
    }
}

pub async fn show(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let cloud = find(ctx, id).await?;
    ok(views::cloud(&cloud, &ctx.app.cloud_url(&cloud)))
}

/// `PUT /clouds/:id.json`: name and priority. Storage settings arrive with
/// the S3 backend.
pub async fn update(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let mut cloud = find(ctx, id).await?;
    if let Some(name) = ctx.params.value("name") {
        cloud.name = name.to_string();
    }
    if let Some(priority) = ctx.params.int("priority")? {
        if !(2..=200).contains(&priority) {
            return Err(ApiError::bad_request(format!(
                "priority must be between 2 and 200; got {priority}"
            )));
        }
        cloud.priority = priority;
    }
    for key in [
        "aws_access_key",
        "aws_secret_key",
        "user_aws_key",
        "user_aws_secret",
    ] {
        if ctx.params.value(key).is_some() {
            return Err(ApiError::bad_request(
                "this server stores videos on its own storage; S3 credentials are not accepted yet",
            ));
        }
    }
    ctx.app.db.update_cloud(&cloud).await?;
    let cloud = find(ctx, id).await?;
    ok(views::cloud(&cloud, &ctx.app.cloud_url(&cloud)))
}
