//! CORS for what browsers call directly: upload locations ([upl2], spec
//! §5.2) and `/v2` (the legacy uploader posts there, §5.8). No credentials
//! are ever sent, so any origin is allowed. Every answer carries the
//! headers, errors included, and preflights are answered here.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const ALLOW_METHODS: &str = "POST, PUT, DELETE, OPTIONS";
/// `X-File-Name` and `X-Query-Params` are the legacy uploader's (§5.8).
const ALLOW_HEADERS: &str =
    "Content-Type, Content-Range, Cache-Control, X-Requested-With, X-File-Name, X-Query-Params";
/// Without this a browser cannot read `Range` or `Location`, and [upl2]
/// cannot resume or find its next URL (spec §5.2).
const EXPOSE_HEADERS: &str = "Range, Location";

/// The middleware: answers `OPTIONS` itself, adds the headers to the rest.
pub async fn cors(req: Request, next: Next) -> Response {
    let mut resp = if req.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        next.run(req).await
    };
    add_headers(resp.headers_mut());
    resp
}

fn add_headers(headers: &mut HeaderMap) {
    for (name, value) in [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", ALLOW_METHODS),
        ("access-control-allow-headers", ALLOW_HEADERS),
        ("access-control-expose-headers", EXPOSE_HEADERS),
        ("access-control-max-age", "86400"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}
