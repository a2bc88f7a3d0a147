//! DynamoDB's JSON 1.0 errors: HTTP 400 (500 for the emulator's own failures) with a body of
//! `{"__type":"<namespace>#<Code>","message":...}`, the shape the SDK classifies by.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// DynamoDB's own exceptions carry this namespace in `__type`.
const DYNAMODB: &str = "com.amazonaws.dynamodb.v20120810";
/// Input validation errors come from the service framework, under its own namespace.
const VALIDATE: &str = "com.amazon.coral.validate";
/// Protocol errors (unreadable JSON, an unknown operation).
const SERVICE: &str = "com.amazon.coral.service";

/// One DynamoDB API error, ready to be sent.
#[derive(Debug, Clone)]
pub struct DynamoError {
    status: StatusCode,
    namespace: &'static str,
    code: &'static str,
    message: String,
}

impl DynamoError {
    fn new(
        status: StatusCode,
        namespace: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> DynamoError {
        DynamoError {
            status,
            namespace,
            code,
            message: message.into(),
        }
    }

    /// What DynamoDB answers for an item operation on a table that does not exist.
    pub fn resource_not_found() -> DynamoError {
        DynamoError::table_not_found_message("Requested resource not found")
    }

    /// What DynamoDB answers for a table-level operation (DescribeTable, DeleteTable) on a
    /// table that does not exist.
    pub fn table_not_found(name: &str) -> DynamoError {
        DynamoError::table_not_found_message(format!(
            "Requested resource not found: Table: {name} not found"
        ))
    }

    pub fn table_not_found_message(message: impl Into<String>) -> DynamoError {
        DynamoError::new(
            StatusCode::BAD_REQUEST,
            DYNAMODB,
            "ResourceNotFoundException",
            message,
        )
    }

    pub fn resource_in_use(message: impl Into<String>) -> DynamoError {
        DynamoError::new(
            StatusCode::BAD_REQUEST,
            DYNAMODB,
            "ResourceInUseException",
            message,
        )
    }

    /// A semantic validation error, worded as DynamoDB words it.
    pub fn validation(message: impl Into<String>) -> DynamoError {
        DynamoError::new(
            StatusCode::BAD_REQUEST,
            VALIDATE,
            "ValidationException",
            message,
        )
    }

    /// `1 validation error detected: Value '...' at '...' failed to satisfy constraint: ...`,
    /// DynamoDB's wording for a violated model constraint.
    pub fn constraint(value: &str, field: &str, constraint: &str) -> DynamoError {
        DynamoError::validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ))
    }

    /// The emulator does not implement a parameter; saying so beats silently ignoring it.
    pub fn unsupported(what: &str) -> DynamoError {
        DynamoError::validation(format!("The emulator does not support {what}"))
    }

    pub fn serialization(detail: impl std::fmt::Display) -> DynamoError {
        DynamoError::new(
            StatusCode::BAD_REQUEST,
            SERVICE,
            "SerializationException",
            format!("Could not read the request body as DynamoDB JSON: {detail}"),
        )
    }

    pub fn unknown_operation(operation: &str) -> DynamoError {
        DynamoError::new(
            StatusCode::BAD_REQUEST,
            SERVICE,
            "UnknownOperationException",
            format!("The emulator does not implement DynamoDB_20120810.{operation}"),
        )
    }

    pub fn internal(message: impl Into<String>) -> DynamoError {
        DynamoError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            DYNAMODB,
            "InternalServerError",
            message,
        )
    }
}

impl From<StoreError> for DynamoError {
    fn from(error: StoreError) -> DynamoError {
        tracing::error!(%error, "state database failure");
        DynamoError::internal(error.to_string())
    }
}

impl IntoResponse for DynamoError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "__type": format!("{}#{}", self.namespace, self.code),
            "message": self.message,
        });
        super::json_response(self.status, body.to_string())
    }
}
