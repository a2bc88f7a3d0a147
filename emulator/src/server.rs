//! One loopback port, many services: routes Lambda's REST paths, the `POST /` services (IAM's
//! form-encoded Query protocol; JSON services, DynamoDB today, selected by `X-Amz-Target`), and
//! the emulator's own `/_emulator/` introspection endpoints.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::Config;
use crate::apigateway;
use crate::cloudwatch_logs;
use crate::dynamodb;
use crate::iam;
use crate::lambda::{self, ApiError};
use crate::runtime::Runtime;
use crate::store::{Store, StoreLogSink};

/// What every handler shares.
pub struct AppState {
    pub config: Config,
    /// `http://127.0.0.1:PORT`, for `Code.Location` and the functions' `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    pub store: Arc<Store>,
    pub runtime: Arc<Runtime>,
    pub log_sink: Arc<StoreLogSink>,
    pub work_dir: PathBuf,
    pub lambda: lambda::Functions,
    pub dynamodb: dynamodb::DynamoDb,
    pub apigateway: apigateway::RestApis,
    /// STS sessions and the principal of every call.
    pub sessions: Arc<crate::sts::Sessions>,
}

/// Large enough for a 50 MB deployment package base64-encoded in a CreateFunction body; Invoke
/// applies Lambda's own 6 MB limit itself so that callers get Lambda's error.
pub(crate) const BODY_LIMIT: usize = 80 * 1024 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    let routes = Router::new()
        .merge(lambda::routes())
        .merge(apigateway::routes())
        .route("/", post(root_post))
        .route("/_emulator/status", get(status))
        .route("/_emulator/health", get(|| async { "ok" }))
        .route("/_emulator/audit", get(crate::audit::handle))
        .fallback(unknown_operation)
        .method_not_allowed_fallback(unknown_operation);
    // Faults, when asked for, answer before (or, for a lost answer, after) every handler.
    let routes = match &state.config.faults {
        Some(spec) => routes.layer(axum::middleware::from_fn_with_state(
            crate::faults::Faults::new(spec.clone()),
            crate::faults::layer,
        )),
        None => routes,
    };
    routes
        .layer(axum::middleware::map_response(request_id))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Every AWS answer carries an `x-amzn-RequestId`; services that make their own (DynamoDB,
/// CloudWatch Logs) keep theirs.
async fn request_id(mut response: Response) -> Response {
    if !response.headers().contains_key("x-amzn-requestid")
        && let Ok(id) = header::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
    {
        response.headers_mut().insert("x-amzn-RequestId", id);
    }
    response
}

async fn unknown_operation() -> Response {
    ApiError::unknown_operation().into_response()
}

/// `POST /` carries every service that is not path-routed. JSON services name their operation
/// in `X-Amz-Target` (`DynamoDB_20120810.PutItem`, `Logs_20140328.GetLogEvents`); Query services
/// (IAM) send a form with `Action=`. New services add a branch here and a module of their own.
async fn root_post(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(target) = headers.get("x-amz-target") {
        let target = target.to_str().unwrap_or_default();
        return match target.split_once('.') {
            Some(("DynamoDB_20120810", operation)) => {
                if let Some(refused) = dynamodb::authorize(&app, &headers, operation, &body).await {
                    return refused;
                }
                dynamodb::handle(app, operation, &body).await
            }
            Some(("Logs_20140328", operation)) => {
                cloudwatch_logs::handle(app, operation, &body).await
            }
            Some(("secretsmanager", operation)) => {
                crate::secretsmanager::handle(app, operation, &body).await
            }
            Some(("CloudTrail_20131101", operation)) => {
                crate::cloudtrail::handle(app, operation, &body).await
            }
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                format!("The emulator does not implement {target} yet."),
            )
            .into_response(),
        };
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        if crate::sts::is_sts(&headers, &body) {
            return crate::sts::handle(app, &headers, &body).await;
        }
        return iam::handle(app, &body).await;
    }
    ApiError::unknown_operation().into_response()
}

async fn status(State(app): State<Arc<AppState>>) -> Response {
    let body = serde_json::json!({
        "endpoint": app.endpoint,
        "functions": app.lambda.count(),
        "environments": app.runtime.environments(),
        "dropped_log_lines": app.log_sink.dropped(),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
