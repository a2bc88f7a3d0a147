//! What the AWS JSON protocols (DynamoDB's 1.0, CloudWatch Logs' 1.1) share: the response's
//! content type and request id, and reading a request body where an empty one means `{}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// A response with the protocol's content type (`application/x-amz-json-1.0` or `-1.1`) and a
/// request id, as the services send them.
pub fn response(content_type: &'static str, status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-RequestId", id);
    }
    response
}

/// An error answer: `{"__type": code, "message": ...}`, which the SDKs read the error's code
/// and message from.
pub fn error(
    content_type: &'static str,
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
) -> Response {
    let body = serde_json::json!({ "__type": code, "message": message.into() });
    response(content_type, status, body.to_string())
}

/// Parses a request body; the SDKs send nothing at all for an operation without input.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
}
