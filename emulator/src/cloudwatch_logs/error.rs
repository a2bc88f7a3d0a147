//! CloudWatch Logs' JSON 1.1 errors: HTTP 400 (500 for the emulator's own failures) with a body
//! of `{"__type":"<Code>","message":...}`, the shape the SDK classifies by.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// One CloudWatch Logs API error, ready to be sent.
#[derive(Debug, Clone)]
pub struct LogsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl LogsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> LogsError {
        LogsError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn group_not_found() -> LogsError {
        LogsError::new(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "The specified log group does not exist.",
        )
    }

    pub fn stream_not_found() -> LogsError {
        LogsError::new(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "The specified log stream does not exist.",
        )
    }

    pub fn already_exists(what: &str) -> LogsError {
        LogsError::new(
            StatusCode::BAD_REQUEST,
            "ResourceAlreadyExistsException",
            format!("The specified {what} already exists"),
        )
    }

    pub fn invalid(message: impl Into<String>) -> LogsError {
        LogsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            message,
        )
    }

    /// `1 validation error detected: Value '...' at '...' failed to satisfy constraint: ...`,
    /// the service's wording for a violated model constraint.
    pub fn constraint(value: &str, field: &str, constraint: &str) -> LogsError {
        LogsError::invalid(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ))
    }

    pub fn missing(field: &str) -> LogsError {
        LogsError::invalid(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    }

    pub fn invalid_token() -> LogsError {
        LogsError::invalid("The specified nextToken is invalid.")
    }

    pub fn serialization(detail: impl std::fmt::Display) -> LogsError {
        LogsError::new(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            format!("Could not read the request body as JSON: {detail}"),
        )
    }

    pub fn unknown_operation(operation: &str) -> LogsError {
        LogsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("The emulator does not implement Logs_20140328.{operation}"),
        )
    }

    pub fn internal(message: impl Into<String>) -> LogsError {
        LogsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceUnavailableException",
            message,
        )
    }
}

impl From<StoreError> for LogsError {
    fn from(error: StoreError) -> LogsError {
        tracing::error!(%error, "state database failure");
        LogsError::internal(error.to_string())
    }
}

impl IntoResponse for LogsError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.code, "message": self.message });
        super::json_response(self.status, body.to_string())
    }
}
