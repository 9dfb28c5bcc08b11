//! The HTTP side: Panda's v2 API under `/v2`, the local storage's public
//! objects under `/storage`, and health checks.

pub mod auth;
pub mod clouds;
pub mod cors;
pub mod encodings;
pub mod error;
pub mod notifications;
pub mod params;
pub mod profiles;
pub mod request;
pub mod uploads;
pub mod videos;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tower_http::services::ServeDir;

use crate::app::App;
use error::{ApiError, ApiResult};
use request::Ctx;

/// The whole HTTP surface of `serve`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::telemetry::render))
        .route("/v2", any(panda).layer(from_fn(cors::cors)))
        .route("/v2/", any(panda).layer(from_fn(cors::cors)))
        .route("/v2/{*rest}", any(panda).layer(from_fn(cors::cors)))
        .route(
            "/upload/{id}",
            any(uploads::location).layer(from_fn(cors::cors)),
        )
        .nest(
            "/storage",
            Router::new()
                .fallback_service(ServeDir::new(app.storage_dir()))
                .layer(axum::middleware::map_response(harden_stored_object)),
        )
        .layer(axum::middleware::from_fn(crate::telemetry::track_http))
        .with_state(app)
}

/// Stored objects are customer uploads served from the API's own origin:
/// browsers must not sniff them into HTML or run anything they contain.
async fn harden_stored_object(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static("default-src 'none'; media-src 'self'; sandbox"),
    );
    resp
}

/// `GET /readyz`: 200 when the database answers, the storage directory is
/// writable and ffmpeg and ffprobe can be found; 503 naming what is not.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let mut problems = Vec::new();
    if let Err(e) = sqlx::query("SELECT 1").execute(&app.db.pool).await {
        problems.push(format!("database: {e}"));
    }
    let probe = app
        .tmp_dir()
        .join(format!(".ready-{}", crate::domain::ids::new_id()));
    match tokio::fs::write(&probe, b"ok").await {
        Ok(()) => {
            let _ = tokio::fs::remove_file(&probe).await;
        }
        Err(e) => problems.push(format!("storage: {e}")),
    }
    for tool in [
        crate::media::process::Tool::Ffmpeg,
        crate::media::process::Tool::Ffprobe,
    ] {
        if let Err(e) = tool.resolve() {
            problems.push(e.to_string());
        }
    }
    let body = serde_json::json!({ "ready": problems.is_empty(), "problems": problems });
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// A JSON 200 response.
pub fn ok(value: serde_json::Value) -> ApiResult<Response> {
    Ok(axum::Json(value).into_response())
}

async fn panda(State(app): State<Arc<App>>, req: Request) -> Response {
    use tracing::Instrument;
    // Parameters are never recorded: they carry signatures and keys.
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %crate::telemetry::route_label(req.uri().path()),
        cloud = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    async move {
        let resp = match handle(app, req).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        };
        tracing::Span::current().record("status", resp.status().as_u16());
        tracing::debug!("request handled");
        resp
    }
    .instrument(span)
    .await
}

async fn handle(app: Arc<App>, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let (signed_path, segments) = request::split_path(parts.uri.path())?;
    let query = parts.uri.query().unwrap_or("");
    let (params, upload) =
        request::collect(&app, &parts.method, &parts.headers, query, &segments, body).await?;
    let (account, cloud) = request::authenticate(
        &app,
        &parts.method,
        &parts.headers,
        &signed_path,
        &segments,
        &params,
    )
    .await?;
    if let Some(c) = &cloud {
        tracing::Span::current().record("cloud", c.id.as_str());
    }
    let base_url = uploads::base_url(&parts, &app.config.public_url());
    let ctx = Ctx {
        app,
        method: parts.method,
        params,
        account,
        cloud,
        upload,
        segments,
        base_url,
    };
    dispatch(ctx).await
}

async fn dispatch(ctx: Ctx) -> ApiResult<Response> {
    let segs: Vec<&str> = ctx.segments.iter().map(String::as_str).collect();
    let m = ctx.method.clone();
    match (m, segs.as_slice()) {
        (Method::GET, ["videos"]) => videos::list(&ctx).await,
        (Method::POST, ["videos"]) => videos::create(ctx).await,
        (Method::POST, ["videos", "upload"]) => uploads::create(&ctx).await,
        (Method::DELETE, ["videos", id, "source"]) => videos::delete_source(&ctx, id).await,
        (Method::GET, ["videos", id]) => videos::show(&ctx, id).await,
        (Method::DELETE, ["videos", id]) => videos::delete(&ctx, id).await,
        (Method::GET, ["videos", id, "encodings"]) => videos::encodings(&ctx, id).await,
        (Method::GET, ["videos", id, "metadata"]) => videos::metadata(&ctx, id).await,
        (Method::GET, ["encodings"]) => encodings::list(&ctx).await,
        (Method::POST, ["encodings"]) => encodings::create(&ctx).await,
        (Method::GET, ["encodings", id]) => encodings::show(&ctx, id).await,
        (Method::DELETE, ["encodings", id]) => encodings::delete(&ctx, id).await,
        (Method::POST, ["encodings", id, "cancel"]) => encodings::cancel(&ctx, id).await,
        (Method::POST, ["encodings", id, "retry"]) => encodings::retry(&ctx, id).await,
        (Method::GET, ["profiles"]) => profiles::list(&ctx).await,
        (Method::POST, ["profiles"]) => profiles::create(&ctx).await,
        (Method::GET, ["profiles", id]) => profiles::show(&ctx, id).await,
        (Method::PUT, ["profiles", id]) => profiles::update(&ctx, id).await,
        (Method::DELETE, ["profiles", id]) => profiles::delete(&ctx, id).await,
        (Method::GET, ["clouds"]) => clouds::list(&ctx).await,
        (Method::GET, ["clouds", id]) => clouds::show(&ctx, id).await,
        (Method::PUT, ["clouds", id]) => clouds::update(&ctx, id).await,
        (Method::GET, ["notifications"]) => notifications::show(&ctx).await,
        (Method::PUT, ["notifications"]) => notifications::update(&ctx).await,
        (Method::GET, ["notifications", "deliveries"]) => notifications::deliveries(&ctx).await,
        (Method::POST, ["notifications", "deliveries", id, "redeliver"]) => {
            notifications::redeliver(&ctx, id).await
        }
        (Method::GET, ["notifications", "stream"]) => notifications::stream(&ctx).await,
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "RecordNotFound",
            format!("No route for {} /{}", ctx.method, ctx.segments.join("/")),
        )),
    }
}

/// Page and per_page from the request (spec §3.1), clamped.
pub fn paging(ctx: &Ctx) -> (i64, i64) {
    let page = ctx.params.int("page").ok().flatten().unwrap_or(1).max(1);
    let per_page = ctx
        .params
        .int("per_page")
        .ok()
        .flatten()
        .unwrap_or(100)
        .clamp(1, 100);
    (page, per_page)
}

/// A list body: a bare array, or `{key: [...], page, per_page, total}` with
/// `include_root` (spec §3.1).
pub fn list_body(
    ctx: &Ctx,
    key: &str,
    items: Vec<serde_json::Value>,
    total: i64,
) -> ApiResult<Response> {
    let (page, per_page) = paging(ctx);
    if ctx
        .params
        .bool("include_root")
        .ok()
        .flatten()
        .unwrap_or(false)
    {
        ok(serde_json::json!({
            key: items, "page": page, "per_page": per_page, "total": total
        }))
    } else {
        ok(serde_json::Value::Array(items))
    }
}
