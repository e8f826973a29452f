//! The one place where engine errors become HTTP statuses and Docker's `{"message": ...}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::ErrorResponse;
use berth_engine::{EngineError, ErrorKind};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    /// Status.
    pub status: StatusCode,
    /// Message (the whole error chain).
    pub message: String,
}

/// Maps an error kind to its HTTP status.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Unavailable | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub use berth_runtime::error_chain as chain;

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match e {
            EngineError::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => status_of(e.kind()),
        };
        if status.is_server_error() {
            tracing::error!(error = %chain(&e), "request failed");
        }
        ApiError {
            status,
            message: chain(&e),
        }
    }
}

impl ApiError {
    /// A 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A 404 with a message.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorResponse {
                message: self.message,
            }),
        )
            .into_response()
    }
}
