//! `/notifications…`: the cloud's webhook settings (spec §3.6, plus the
//! webhook secret), and beyond Panda the delivery log and a live stream of
//! the cloud's events.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::error::{ApiError, ApiResult};
use super::request::Ctx;
use super::{list_body, ok, paging, views};
use crate::db::notifications::Delivery;
use crate::db::videos::ListQuery;
use crate::domain::model::{Cloud, Notifications};
use crate::domain::time::panda_format;
use crate::notify::event::Event;

/// `GET /notifications.json`: the settings, plus `webhook_secret` (an extra
/// key; clients ignore it) to verify the `X-Openpanda-Signature` header.
pub async fn show(ctx: &Ctx) -> ApiResult<Response> {
    settings_body(ctx, ctx.cloud()?).await
}

async fn settings_body(ctx: &Ctx, cloud: &Cloud) -> ApiResult<Response> {
    let secret = ctx.app.db.webhook_secret(&cloud.id).await?;
    let mut body = views::notifications(cloud);
    body["webhook_secret"] = json!(secret);
    ok(body)
}

/// `PUT /notifications.json`: `url`, `delay` and `events` in any of the three
/// shapes clients send (nested keys, percent-encoded flat keys, or one JSON
/// string). Omitted events keep their setting.
pub async fn update(ctx: &Ctx) -> ApiResult<Response> {
    let mut cloud = ctx.cloud()?.clone();
    let n = &mut cloud.notifications;
    if ctx.params.get("url").is_some() {
        n.url = ctx.params.value("url").map(str::to_string);
        if let Some(url) = &n.url {
            check_url(ctx, url).await?;
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
    apply_events(ctx, n)?;
    ctx.app.db.update_cloud(&cloud).await?;
    settings_body(ctx, &cloud).await
}

/// A webhook URL must be http(s) and, unless the operator allows private
/// networks, name only public addresses now (delivery checks again at
/// connect time, since a name can change what it resolves to).
async fn check_url(ctx: &Ctx, raw: &str) -> ApiResult<()> {
    let url = url::Url::parse(raw)
        .map_err(|e| ApiError::bad_request(format!("url {raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::bad_request(format!(
            "url {raw:?} must be an http or https URL"
        )));
    }
    if ctx.app.config.fetch.allow_private_networks {
        return Ok(());
    }
    crate::outbound::check_public(&url).await.map_err(|e| {
        ApiError::bad_request(format!(
            "url {raw:?} is refused: {e}; notifications are only sent to public addresses"
        ))
    })
}

/// `events` as nested keys, flat keys or the Python client's JSON string.
fn apply_events(ctx: &Ctx, n: &mut Notifications) -> ApiResult<()> {
    // `nested` reads all three shapes alike; a plain `events` value that is
    // not a JSON object is a mistake worth reporting.
    if let Some(raw) = ctx.params.value("events")
        && serde_json::from_str::<serde_json::Map<String, Value>>(raw).is_err()
    {
        return Err(ApiError::bad_request(
            "events must be a JSON object or events[...] keys",
        ));
    }
    for (key, value) in ctx.params.nested("events") {
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
    Ok(())
}

/// `GET /notifications/deliveries.json`: the cloud's delivery log, newest
/// first, filtered by `status`, `event`, `video_id` or `encoding_id`.
pub async fn deliveries(ctx: &Ctx) -> ApiResult<Response> {
    let cloud = ctx.cloud()?;
    let mut filters = vec![("cloud_id", cloud.id.clone())];
    for key in ["status", "event", "video_id", "encoding_id"] {
        if let Some(v) = ctx.params.value(key) {
            filters.push((key, v.to_string()));
        }
    }
    let (page, per_page) = paging(ctx);
    let q = ListQuery {
        filters,
        page,
        per_page,
    };
    let (list, total) = ctx.app.db.list_deliveries(&q).await?;
    let items = list.iter().map(delivery_view).collect();
    list_body(ctx, "deliveries", items, total)
}

/// `POST /notifications/deliveries/:id/redeliver.json`: sends a delivered
/// or dead event again, with a fresh retry window.
pub async fn redeliver(ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let cloud = ctx.cloud()?;
    let not_found = || ApiError::not_found("Delivery", id);
    match ctx.app.db.delivery(id).await? {
        Some(d) if d.cloud_id == cloud.id => {}
        _ => return Err(not_found()),
    }
    if !ctx.app.db.redeliver(id).await? {
        return Err(ApiError::bad_request(format!(
            "delivery {id} is still pending; only delivered or dead deliveries can be sent again"
        )));
    }
    let d = ctx.app.db.delivery(id).await?.ok_or_else(not_found)?;
    ok(delivery_view(&d))
}

fn delivery_view(d: &Delivery) -> Value {
    let pending = d.status == "pending";
    json!({
        "id": d.id,
        "event": d.event,
        "video_id": d.video_id,
        "encoding_id": d.encoding_id,
        "status": d.status,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "next_attempt_at": pending.then(|| panda_format(d.next_attempt_at)),
        "delivered_at": d.delivered_at.map(panda_format),
        "created_at": panda_format(d.created_at),
        "updated_at": panda_format(d.updated_at),
    })
}

/// `GET /notifications/stream.json`: Server-Sent Events, one message per
/// event of the cloud as it happens (`event: <name>`, `data: <json>`),
/// whatever the webhook settings, with progress about once a second. Only
/// events of this process are seen (API and workers in one `serve`).
pub async fn stream(ctx: &Ctx) -> ApiResult<Response> {
    let cloud_id = ctx.cloud()?.id.clone();
    let feed = ctx.app.db.feed.clone();
    let live = feed.subscribe();
    let messages = futures::stream::unfold((live, cloud_id), |(mut live, cloud_id)| async move {
        loop {
            let message = match live.recv().await {
                Ok(e) if e.cloud_id == cloud_id => sse_message(&e.event),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => SseEvent::default()
                    .comment(format!("{n} events skipped: the reader fell behind")),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok::<_, Infallible>(message), (live, cloud_id)));
        }
    });
    let until_shutdown = futures::StreamExt::take_until(messages, async move {
        feed.closed().await;
    });
    Ok(Sse::new(until_shutdown)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn sse_message(event: &Event) -> SseEvent {
    SseEvent::default()
        .event(event.name())
        .data(event.to_json().to_string())
}
