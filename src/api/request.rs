//! One Panda API request, from raw HTTP to an authenticated context: path
//! normalisation (spec §1.1), parameter collection from every place clients
//! put them (§1.2), upload spooling, signature, timestamp and replay checks
//! (§2), and the cloud the request acts on (§2.6).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, header};
use futures::TryStreamExt;
use tokio::io::AsyncWriteExt;

use super::auth;
use super::error::{ApiError, ApiResult};
use super::params::{self, Params};
use crate::app::App;
use crate::domain::model::{Account, Cloud};

/// Largest non-file body we read into memory.
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// A file received with the request, spooled to the scratch directory. The
/// file is removed when this is dropped, unless it was handed to storage.
pub struct Spooled {
    pub path: PathBuf,
    pub file_name: Option<String>,
    pub size: u64,
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Everything a resource handler needs.
pub struct Ctx {
    pub app: Arc<App>,
    pub method: Method,
    pub params: Params,
    pub account: Account,
    pub cloud: Option<Cloud>,
    pub upload: Option<Spooled>,
    /// The request path without `/v2` and the format suffix, split on `/`.
    pub segments: Vec<String>,
    /// `<scheme>://<host>` as the client reached us (upload locations).
    pub base_url: String,
}

impl Ctx {
    /// The cloud named by `cloud_id` (present for every route but `/clouds…`).
    pub fn cloud(&self) -> ApiResult<&Cloud> {
        self.cloud.as_ref().ok_or_else(|| {
            ApiError::bad_request("All required parameters were not supplied: cloud_id")
        })
    }
}

/// Strips `/v2`, collapses slashes and checks the format suffix. Returns the
/// path as the client signed it and the route segments.
pub fn split_path(full: &str) -> ApiResult<(String, Vec<String>)> {
    let rest = full.strip_prefix("/v2").unwrap_or(full);
    let signed = auth::normalize_path(rest);
    let routed = auth::route_path(&signed);
    let mut trimmed = routed.trim_matches('/').to_string();
    if let Some(stripped) = trimmed.strip_suffix(".json") {
        trimmed = stripped.to_string();
    } else if let Some((_, ext)) = trimmed.rsplit_once('.')
        && matches!(
            ext,
            "xml" | "yaml" | "yml" | "html" | "txt" | "csv" | "js" | "rss" | "atom"
        )
    {
        return Err(ApiError::bad_request(
            "Currently only .json is supported as a format",
        ));
    }
    let segments = trimmed
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Ok((signed, segments))
}

/// Reads the body into parameters, spooling a file upload to disk when the
/// route takes one.
pub async fn collect(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    query: &str,
    segments: &[String],
    body: Body,
) -> ApiResult<(Params, Option<Spooled>)> {
    let query_pairs = params::parse_urlencoded(query.as_bytes());
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let takes_file = *method == Method::POST && segments == ["videos"];
    let limit = app.config.limits.max_upload_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        && takes_file
        && len > limit + MAX_FORM_BYTES as i64
    {
        return Err(ApiError::too_large(limit));
    }

    if content_type.starts_with("multipart/") {
        let raw_ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let boundary = params::multipart_boundary(raw_ct)
            .ok_or_else(|| ApiError::bad_request("multipart body without a boundary"))?;
        let (pairs, file) = read_multipart(app, body, boundary, takes_file, limit).await?;
        if file.is_none()
            && takes_file
            && let Some((_, v)) = pairs.iter().find(|(k, _)| k == "file")
            && v.starts_with('@')
        {
            return Err(ApiError::bad_request(
                "file was not uploaded: the request carried the text \"@path\" instead \
                         of the file's contents",
            ));
        }
        return Ok((Params::new(query_pairs, pairs), file));
    }

    if takes_file && content_type.starts_with("application/octet-stream") {
        // The legacy uploader 1.x: raw body, params in X-Query-Params (§5.8).
        let pairs = headers
            .get("x-query-params")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| params::parse_json_object(v.as_bytes()))
            .unwrap_or_default();
        let name = headers
            .get("x-file-name")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let stream = TryStreamExt::map_err(body.into_data_stream(), std::io::Error::other);
        let file = spool(app, stream, name, limit).await?;
        return Ok((Params::new(query_pairs, pairs), Some(file)));
    }

    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| ApiError::bad_request("request body too large for a form"))?;
    let body_pairs = if content_type.starts_with("application/json") {
        params::parse_json_object(&bytes)
            .ok_or_else(|| ApiError::bad_request("the JSON body must be an object"))?
    } else {
        params::parse_urlencoded(&bytes)
    };
    Ok((Params::new(query_pairs, body_pairs), None))
}

async fn read_multipart(
    app: &App,
    body: Body,
    boundary: String,
    takes_file: bool,
    limit: i64,
) -> ApiResult<(params::Pairs, Option<Spooled>)> {
    let stream = body.into_data_stream();
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut pairs = Vec::new();
    let mut file = None;
    let bad = |e: multer::Error| ApiError::bad_request(format!("malformed multipart body: {e}"));
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if let Some(file_name) = field.file_name().map(str::to_string) {
            // The first part with a filename is the file, whatever its name
            // (the Go client names it after the local path).
            if takes_file && file.is_none() {
                let stream = Box::pin(field.map_err(std::io::Error::other));
                file = Some(spool(app, stream, Some(file_name), limit).await?);
            } else {
                while field.chunk().await.map_err(bad)?.is_some() {}
            }
        } else {
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                if value.len() + chunk.len() > MAX_FORM_BYTES {
                    return Err(ApiError::bad_request("a form field is larger than 1 MiB"));
                }
                value.extend_from_slice(&chunk);
            }
            pairs.push((name, String::from_utf8_lossy(&value).into_owned()));
        }
    }
    Ok((pairs, file))
}

/// Streams a body to a scratch file, refusing more than `limit` bytes.
async fn spool<S>(app: &App, stream: S, file_name: Option<String>, limit: i64) -> ApiResult<Spooled>
where
    S: futures::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin,
{
    let dir = app.tmp_dir();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ApiError::internal)?;
    let path = dir.join(format!("upload-{}", crate::domain::ids::new_id()));
    let mut out = tokio::fs::File::create(&path)
        .await
        .map_err(ApiError::internal)?;
    let mut spooled = Spooled {
        path,
        file_name,
        size: 0,
    };
    let mut stream = stream;
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| ApiError::bad_request(format!("the upload was interrupted: {e}")))?
    {
        spooled.size += chunk.len() as u64;
        metrics::counter!("openpanda_upload_bytes_total").increment(chunk.len() as u64);
        if spooled.size as i64 > limit {
            return Err(ApiError::too_large(limit));
        }
        out.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    out.flush().await.map_err(ApiError::internal)?;
    Ok(spooled)
}

/// Checks the signature, timestamp and replay rule, and finds the cloud.
pub async fn authenticate(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    signed_path: &str,
    segments: &[String],
    params: &Params,
) -> ApiResult<(Account, Option<Cloud>)> {
    let missing: Vec<&str> = ["access_key", "signature", "timestamp"]
        .into_iter()
        .filter(|k| params.get(k).is_none_or(str::is_empty))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!(
            "All required parameters were not supplied: {}",
            missing.join(", ")
        )));
    }
    let access_key = params.get("access_key").unwrap_or_default();
    let signature = params.get("signature").unwrap_or_default();
    let timestamp = params.get("timestamp").unwrap_or_default();
    let mismatch = || ApiError::not_authorized("Signatures do not match");

    let account = app
        .db
        .account_by_access_key(access_key)
        .await?
        .ok_or_else(mismatch)?;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let hosts = auth::host_candidates(host, &app.config.api_hosts);
    let pairs = params.signing_pairs();
    let input = auth::VerifyInput {
        method: method.as_str(),
        path: signed_path,
        hosts: &hosts,
        pairs: &pairs,
        secret: &account.secret_key,
        signature,
    };
    if !auth::verify(&input) {
        return Err(mismatch());
    }
    let window = auth::expiry_window(method.as_str(), signed_path);
    match auth::check_timestamp(timestamp, chrono::Utc::now(), window) {
        auth::TimestampCheck::Ok => {}
        auth::TimestampCheck::Unparseable => {
            return Err(ApiError::bad_request(format!(
                "timestamp {timestamp:?} is not an ISO 8601 time"
            )));
        }
        auth::TimestampCheck::Expired | auth::TimestampCheck::Future => {
            return Err(ApiError::not_authorized("Signatures expired"));
        }
    }
    if *method == Method::POST {
        let expires = chrono::Utc::now().timestamp_millis() + 2 * window.num_milliseconds();
        if !app.db.use_signature(access_key, signature, expires).await? {
            return Err(ApiError::not_authorized("Signature already used"));
        }
    }

    let on_clouds = segments.first().is_some_and(|s| s == "clouds");
    let cloud = match params.value("cloud_id") {
        Some(id) => {
            let cloud = app.db.cloud(id).await?;
            match cloud {
                Some(c) if c.account_id == account.id => Some(c),
                _ if on_clouds => None,
                _ => return Err(ApiError::not_found("Cloud", id)),
            }
        }
        None if on_clouds => None,
        None => {
            return Err(ApiError::bad_request(
                "All required parameters were not supplied: cloud_id",
            ));
        }
    };
    Ok((account, cloud))
}
