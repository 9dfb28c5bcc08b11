//! API errors: Panda's error names and statuses (spec §9.1), always as a JSON
//! body `{"error": …, "message": …}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub name: &'static str,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, name: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            name,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn not_authorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "NotAuthorized", message)
    }

    /// `Couldn't find <Kind> with ID=<id>` (the wording the gem's README shows).
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "RecordNotFound",
            format!("Couldn't find {kind} with ID={id}"),
        )
    }

    pub fn too_large(limit: i64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "FileSizeLimitExceeded",
            format!("File size limit for this account is set to {limit} bytes"),
        )
    }

    /// An unexpected failure. The detail goes to the log, not to the client.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "The server failed to handle the request; the error was logged",
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        Self::internal(e)
    }
}

impl From<super::params::ParamError> for ApiError {
    fn from(e: super::params::ParamError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.name, "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}
