//! `/clouds…` (spec §3.5) and the cloud's notification settings (§3.6).

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

pub async fn notifications(ctx: &Ctx) -> ApiResult<Response> {
    ok(views::notifications(ctx.cloud()?))
}

/// `PUT /notifications.json`: `url`, `delay` and `events` in any of the three
/// shapes clients send (nested keys, percent-encoded flat keys, or one JSON
/// string). Omitted events keep their setting.
pub async fn update_notifications(ctx: &Ctx) -> ApiResult<Response> {
    let mut cloud = ctx.cloud()?.clone();
    let n = &mut cloud.notifications;
    if ctx.params.get("url").is_some() {
        n.url = ctx.params.value("url").map(str::to_string);
        if let Some(url) = &n.url {
            url::Url::parse(url)
                .map_err(|e| ApiError::bad_request(format!("url {url:?} is not a URL: {e}")))?;
        }
    }
    if let Some(delay) = ctx.params.int("delay")? {
        if !(0..=86_400).contains(&delay) {
            return Err(ApiError::bad_request(format!(
                "delay must be between 0 and 86400 seconds; got {delay}"
            )));
        }
        n.delay = delay;
    }
    let mut events = ctx.params.nested("events");
    if let Some(json) = ctx.params.value("events") {
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(json).map_err(|_| {
                ApiError::bad_request("events must be a JSON object or events[...] keys")
            })?;
        for (k, v) in obj {
            let s = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            events.push((k, s));
        }
    }
    for (key, value) in events {
        let on = match value.as_str() {
            "true" | "1" | "True" | "TRUE" => true,
            "false" | "0" | "False" | "FALSE" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "events[{key}] must be true or false; got {other:?}"
                )));
            }
        };
        match key.as_str() {
            "video_created" => n.events.video_created = on,
            "video_encoded" => n.events.video_encoded = on,
            "encoding_progress" => n.events.encoding_progress = on,
            "encoding_completed" => n.events.encoding_completed = on,
            _ => {}
        }
    }
    ctx.app.db.update_cloud(&cloud).await?;
    ok(views::notifications(&cloud))
}
