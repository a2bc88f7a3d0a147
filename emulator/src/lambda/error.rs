//! Lambda's REST-JSON errors: a status code, the `x-amzn-ErrorType` header the SDK classifies
//! by, and a `{"Type":"User","message":...}` body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// One Lambda API error, ready to be sent.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// Extra top-level body members, such as `Reason` on throttling errors.
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            reason: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    pub fn function_not_found(arn: &str) -> ApiError {
        ApiError::not_found(format!("Function not found: {arn}"))
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "ResourceConflictException", message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            message,
        )
    }

    /// `1 validation error detected: ...`, worded the way Lambda reports model constraint
    /// violations.
    pub fn validation(violations: &[String]) -> ApiError {
        let count = if violations.len() == 1 {
            "1 validation error detected".to_string()
        } else {
            format!("{} validation errors detected", violations.len())
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!("{count}: {}", violations.join("; ")),
        )
    }

    pub fn invalid_content(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            format!("Could not parse request body into json: {detail}"),
        )
    }

    pub fn too_many_requests() -> ApiError {
        ApiError {
            reason: Some("ConcurrentInvocationLimitExceeded"),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded.",
            )
        }
    }

    pub fn service(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            message,
        )
    }

    pub fn unknown_operation() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Unknown operation",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        tracing::error!(%error, "state database failure");
        ApiError::service(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "Type": "User", "message": self.message });
        if let Some(reason) = self.reason {
            body["Reason"] = reason.into();
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert("x-amzn-ErrorType", HeaderValue::from_static(self.kind));
        response
    }
}

/// A human-readable constraint violation: `Value 'x' at 'field' failed to satisfy constraint: ...`.
pub fn violation(value: Option<&str>, field: &str, constraint: &str) -> String {
    match value {
        Some(value) => {
            format!("Value '{value}' at '{field}' failed to satisfy constraint: {constraint}")
        }
        None => format!("Value null at '{field}' failed to satisfy constraint: {constraint}"),
    }
}
