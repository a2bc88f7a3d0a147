//! Lambda Invoke: the front door that rejects what Lambda would reject (unknown function, a
//! function still Pending, an oversized payload, tenant id rules, malformed JSON) before anything
//! runs, then hands the invocation to the runtime.
//!
//! This is the hot path of every benchmark and every API call a user makes through the app, so it
//! reads one in-memory record under a read lock and never touches SQLite or the deployment package.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::error::{ApiError, violation};
use super::model;
use crate::runtime::{FunctionSpec, Invocation, InvocationType, InvokeError, InvokeOutcome};
use crate::server::AppState;

/// Lambda's synchronous request payload limit.
const MAX_PAYLOAD: usize = 6_291_456;

/// What Lambda answers an invoke of a PER_TENANT function that names no tenant (recorded from
/// AWS).
const TENANT_MISSING: &str = "The invoked function is enabled with tenancy configuration. Add a valid tenant ID in your request and try again.";
/// The mirror case, a tenant sent to a function without tenancy: not recorded from AWS; the
/// sentence mirrors the recorded one (see ARCHITECTURE.md).
const TENANT_UNEXPECTED: &str = "The invoked function is not enabled with tenancy configuration. Remove the tenant ID from your request and try again.";

/// What Invoke returns to an API caller once validation passed and the runtime answered.
pub async fn invoke(
    State(app): State<Arc<AppState>>,
    Path(raw_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match run(&app, &raw_name, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

enum Kind {
    RequestResponse,
    Event,
    DryRun,
}

/// A function that may be invoked now: its spec, whether it is PER_TENANT, and its resource
/// policy statements (for callers such as API Gateway that must check them).
struct Invocable {
    spec: Arc<FunctionSpec>,
    per_tenant: bool,
    statements: Vec<serde_json::Value>,
}

/// Lambda's first checks, in Lambda's order: the function exists and is not Pending.
/// The function to invoke; its resource policy's statements only when a service's call must be
/// authorized against them (`with_statements`), so a direct invoke copies none.
fn invocable(app: &AppState, raw_name: &str, with_statements: bool) -> Result<Invocable, ApiError> {
    let name = model::resolve_function_name(raw_name);
    let map = super::read(&app.lambda.map);
    let Some(record) = map.get(name) else {
        drop(map);
        // Invoke names the version it looked for, `$LATEST` when none was given.
        return Err(ApiError::function_not_found(&format!(
            "{}:$LATEST",
            super::function_arn(app, name)
        )));
    };
    if record.is_pending(Instant::now()) {
        return Err(ApiError::conflict(model::PENDING_CONFLICT));
    }
    Ok(Invocable {
        spec: Arc::clone(&record.spec),
        per_tenant: record.per_tenant(),
        statements: if with_statements {
            record.permissions.iter().map(|(_, s)| s.clone()).collect()
        } else {
            Vec::new()
        },
    })
}

fn check_size(len: usize) -> Result<(), ApiError> {
    if len > MAX_PAYLOAD {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            format!(
                "Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"
            ),
        ));
    }
    Ok(())
}

/// The tenant id rules of the front door: a well-formed id, present exactly when the function
/// is PER_TENANT.
fn check_tenant(tenant: Option<String>, per_tenant: bool) -> Result<Option<String>, ApiError> {
    if let Some(tenant) = &tenant {
        let violations = model::tenant_violations(tenant);
        if !violations.is_empty() {
            return Err(ApiError::validation(&violations));
        }
    }
    match (per_tenant, tenant.is_some()) {
        (true, false) => return Err(ApiError::invalid_parameter(TENANT_MISSING)),
        (false, true) => return Err(ApiError::invalid_parameter(TENANT_UNEXPECTED)),
        _ => {}
    }
    Ok(tenant)
}

/// Lambda hands a function `{}` when the caller sent no payload at all; anything else must be
/// JSON.
fn check_payload(body: Bytes) -> Result<Vec<u8>, ApiError> {
    if body.is_empty() {
        return Ok(b"{}".to_vec());
    }
    if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return Err(ApiError::invalid_content(error));
    }
    Ok(Vec::from(body))
}

/// A synchronous `RequestResponse` invoke on behalf of another service, through the same checks
/// as the Invoke API (function state, payload size, tenant id rules, JSON payload). `authorize`
/// sees the function's resource-policy statements first and may refuse the call, as Lambda does
/// when the caller's service principal is not allowed.
pub async fn invoke_for_service(
    app: &Arc<AppState>,
    function: &str,
    tenant: Option<String>,
    payload: Vec<u8>,
    authorize: impl FnOnce(&[serde_json::Value]) -> Result<(), ApiError>,
) -> Result<InvokeOutcome, ApiError> {
    let target = invocable(app, function, true)?;
    authorize(&target.statements)?;
    check_size(payload.len())?;
    let tenant = check_tenant(tenant, target.per_tenant)?;
    let payload = check_payload(Bytes::from(payload))?;
    let invocation = Invocation {
        tenant,
        payload,
        invocation_type: InvocationType::RequestResponse,
        tail: false,
        client_context: None,
    };
    match app.runtime.invoke(target.spec, invocation).await {
        Ok(outcome) => Ok(outcome),
        Err(InvokeError::TooManyEnvironments) => Err(ApiError::too_many_requests()),
        Err(InvokeError::Internal(message)) => Err(ApiError::service(message)),
    }
}

async fn run(
    app: &Arc<AppState>,
    raw_name: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Invocable {
        spec, per_tenant, ..
    } = invocable(app, raw_name, false)?;
    check_size(body.len())?;
    // A header value may carry bytes that are not UTF-8; they can never satisfy the pattern, so
    // they are shown lossily in the message and rejected.
    let tenant = headers
        .get("x-amz-tenant-id")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let tenant = check_tenant(tenant, per_tenant)?;

    let kind = match header_str(headers, "x-amz-invocation-type") {
        None | Some("RequestResponse") => Kind::RequestResponse,
        Some("Event") => Kind::Event,
        Some("DryRun") => Kind::DryRun,
        Some(other) => {
            return Err(ApiError::validation(&[violation(
                Some(other),
                "invocationType",
                "Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
            )]));
        }
    };
    let tail = match header_str(headers, "x-amz-log-type") {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(ApiError::validation(&[violation(
                Some(other),
                "logType",
                "Member must satisfy enum value set: [None, Tail]",
            )]));
        }
    };

    let payload = check_payload(body)?;

    let client_context = match header_str(headers, "x-amz-client-context") {
        None => None,
        Some(encoded) => Some(
            BASE64
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
                .ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "Client context must be a valid Base64-encoded JSON object.",
                    )
                })?,
        ),
    };

    let invocation_type = match kind {
        Kind::DryRun => return Ok(StatusCode::NO_CONTENT.into_response()),
        Kind::Event => InvocationType::Event,
        Kind::RequestResponse => InvocationType::RequestResponse,
    };
    let invocation = Invocation {
        tenant,
        payload,
        invocation_type,
        tail,
        client_context,
    };

    if let InvocationType::Event = invocation_type {
        // Lambda queues asynchronous invokes and answers at once; a failure is the function's
        // business (its logs), not the caller's.
        let runtime = Arc::clone(&app.runtime);
        tokio::spawn(async move {
            if let Err(error) = runtime.invoke(spec, invocation).await {
                tracing::warn!(%error, "asynchronous invoke failed");
            }
        });
        return Ok(StatusCode::ACCEPTED.into_response());
    }

    match app.runtime.invoke(spec, invocation).await {
        Ok(outcome) => {
            let mut response = Response::new(Body::from(outcome.payload));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(
                "x-amz-executed-version",
                HeaderValue::from_static("$LATEST"),
            );
            if let Ok(id) = HeaderValue::from_str(&outcome.request_id) {
                headers.insert("x-amzn-requestid", id);
            }
            if let Some(Ok(value)) = outcome.function_error.map(|e| HeaderValue::from_str(&e)) {
                headers.insert("x-amz-function-error", value);
            }
            if let Some(Ok(value)) = outcome.log_tail.map(|l| HeaderValue::from_str(&l)) {
                headers.insert("x-amz-log-result", value);
            }
            Ok(response)
        }
        Err(InvokeError::TooManyEnvironments) => Err(ApiError::too_many_requests()),
        Err(InvokeError::Internal(message)) => Err(ApiError::service(message)),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or_default())
}
