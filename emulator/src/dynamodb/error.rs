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
    /// Members of the body besides the message: a failed condition's `Item`, a cancelled
    /// transaction's `CancellationReasons`.
    extra: Box<serde_json::Map<String, serde_json::Value>>,
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
            extra: Box::default(),
        }
    }

    /// `ConditionalCheckFailedException`, with the item when the request asked for it
    /// (`ReturnValuesOnConditionCheckFailure: ALL_OLD`).
    pub fn conditional_check_failed(item: Option<serde_json::Value>) -> DynamoError {
        let mut error = DynamoError::new(
            StatusCode::BAD_REQUEST,
            DYNAMODB,
            "ConditionalCheckFailedException",
            "The conditional request failed",
        );
        if let Some(item) = item {
            error.extra.insert("Item".into(), item);
        }
        error
    }

    /// `TransactionCanceledException` with one reason per action, in request order.
    pub fn transaction_canceled(reasons: Vec<serde_json::Value>) -> DynamoError {
        let codes: Vec<&str> = reasons
            .iter()
            .map(|r| r["Code"].as_str().unwrap_or("None"))
            .collect();
        let mut error = DynamoError::new(
            StatusCode::BAD_REQUEST,
            DYNAMODB,
            "TransactionCanceledException",
            format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            ),
        );
        error.extra.insert(
            "CancellationReasons".into(),
            serde_json::Value::Array(reasons),
        );
        error
    }

    /// Whether this is a failed condition (a transaction reports it as a cancellation reason).
    pub fn is_conditional_check_failed(&self) -> bool {
        self.code == "ConditionalCheckFailedException"
    }

    /// The item a failed condition carries, if any.
    pub fn item(&self) -> Option<&serde_json::Value> {
        self.extra.get("Item")
    }

    pub fn message(&self) -> &str {
        &self.message
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

    /// IAM's refusal of a call its caller's policies do not allow.
    pub fn access_denied(message: impl Into<String>) -> DynamoError {
        DynamoError::new(
            StatusCode::BAD_REQUEST,
            SERVICE,
            "AccessDeniedException",
            message,
        )
    }

    pub fn expired_token() -> DynamoError {
        DynamoError::new(
            StatusCode::BAD_REQUEST,
            SERVICE,
            "ExpiredTokenException",
            "The security token included in the request is expired",
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
        let mut body = *self.extra;
        body.insert(
            "__type".into(),
            format!("{}#{}", self.namespace, self.code).into(),
        );
        body.insert("message".into(), self.message.into());
        let body = serde_json::Value::Object(body);
        super::json_response(self.status, body.to_string())
    }
}
