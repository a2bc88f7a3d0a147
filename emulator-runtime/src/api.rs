//! The Lambda Runtime API of one execution environment, served on its own loopback listener so
//! that a `bootstrap` can only ever see the invocations handed to its environment.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot, watch};

/// Lambda's response payload limit, plus the 100 bytes of slack the official emulator allows.
pub(crate) const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;

/// One invocation waiting to be picked up by `GET /runtime/invocation/next`.
#[derive(Debug)]
pub(crate) struct Pending {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: i64,
    pub trace_id: String,
    pub client_context: Option<String>,
}

/// What the runtime said about the invocation in flight.
#[derive(Debug)]
pub(crate) enum Completion {
    Response(Bytes),
    Error {
        error_type: Option<String>,
        body: Bytes,
    },
    /// The response was larger than Lambda accepts.
    TooLarge,
}

/// The invocation in flight and where its completion goes.
struct Current {
    request_id: String,
    done: oneshot::Sender<Completion>,
}

/// An init failure reported through `POST /runtime/init/error`.
#[derive(Debug, Clone)]
pub(crate) struct InitFailure {
    pub error_type: Option<String>,
    pub body: Bytes,
}

/// State shared between an environment's Runtime API handlers and the invoker.
pub(crate) struct Shared {
    next: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    current: Mutex<Option<Current>>,
    /// Set when the runtime first asks for an invocation: its init is over.
    ready: watch::Sender<bool>,
    ready_at: OnceLock<Instant>,
    init_failure: Mutex<Option<InitFailure>>,
    /// Asks the environment's supervisor to kill the process.
    pub stop: tokio::sync::Notify,
    /// Holds the exit description once the process has exited, so a pending long poll ends.
    exited: watch::Receiver<Option<String>>,
    arn: HeaderValue,
    tenant: Option<HeaderValue>,
}

impl Shared {
    pub(crate) fn new(
        next: mpsc::Receiver<Pending>,
        exited: watch::Receiver<Option<String>>,
        arn: &str,
        tenant: Option<&str>,
    ) -> Arc<Self> {
        Arc::new(Shared {
            next: tokio::sync::Mutex::new(next),
            current: Mutex::new(None),
            ready: watch::Sender::new(false),
            ready_at: OnceLock::new(),
            init_failure: Mutex::new(None),
            stop: tokio::sync::Notify::new(),
            exited,
            arn: HeaderValue::from_str(arn).unwrap_or(HeaderValue::from_static("")),
            // Tenant ids are validated by the control plane against a pattern of printable ASCII.
            tenant: tenant.and_then(|tenant| HeaderValue::from_str(tenant).ok()),
        })
    }

    /// Registers the invocation about to be handed over, before it is, so that an answer can
    /// never arrive ahead of its registration.
    pub(crate) fn expect(&self, request_id: String, done: oneshot::Sender<Completion>) {
        *lock(&self.current) = Some(Current { request_id, done });
    }

    pub(crate) fn clear(&self) {
        lock(&self.current).take();
    }

    pub(crate) fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    pub(crate) fn ready_at(&self) -> Option<Instant> {
        self.ready_at.get().copied()
    }

    pub(crate) fn init_failure(&self) -> Option<InitFailure> {
        lock(&self.init_failure).clone()
    }

    /// Completes the invocation in flight if `request_id` names it.
    fn complete(&self, request_id: &str, completion: Completion) -> bool {
        let current = {
            let mut current = lock(&self.current);
            match current.as_ref() {
                Some(pending) if pending.request_id == request_id => current.take(),
                _ => None,
            }
        };
        match current {
            Some(current) => current.done.send(completion).is_ok(),
            None => false,
        }
    }
}

/// The locks here guard plain data for a few instructions; a panic elsewhere cannot leave
/// that data half-written, so a poisoned lock is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/response",
            post(response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/error",
            post(error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        // Bodies are read with their own limit below, so that an oversized response gets
        // Lambda's 413 answer and fails the invocation instead of a bare rejection.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    if shared.ready_at.set(Instant::now()).is_ok() {
        shared.ready.send_replace(true);
    }
    let mut exited = shared.exited.clone();
    let pending = {
        let mut next = shared.next.lock().await;
        tokio::select! {
            pending = next.recv() => pending,
            _ = exited.wait_for(Option::is_some) => None,
        }
    };
    let Some(pending) = pending else {
        return error_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Runtime.ContainerError",
            "the execution environment is shutting down",
        );
    };
    let mut response = Response::new(Body::from(pending.payload));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&pending.request_id) {
        headers.insert("lambda-runtime-aws-request-id", value);
    }
    headers.insert("lambda-runtime-deadline-ms", pending.deadline_ms.into());
    headers.insert("lambda-runtime-invoked-function-arn", shared.arn.clone());
    if let Ok(value) = HeaderValue::from_str(&pending.trace_id) {
        headers.insert("lambda-runtime-trace-id", value);
    }
    if let Some(context) = pending.client_context
        && let Ok(value) = HeaderValue::from_bytes(context.trim().as_bytes())
    {
        headers.insert("lambda-runtime-client-context", value);
    }
    if let Some(tenant) = &shared.tenant {
        headers.insert("lambda-runtime-aws-tenant-id", tenant.clone());
    }
    response
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Body,
) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await else {
        shared.complete(&request_id, Completion::TooLarge);
        return too_large();
    };
    if shared.complete(&request_id, Completion::Response(bytes)) {
        accepted()
    } else {
        invalid_request_id()
    }
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(body) = axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await else {
        shared.complete(&request_id, Completion::TooLarge);
        return too_large();
    };
    let completion = Completion::Error {
        error_type: error_type(&headers),
        body,
    };
    if shared.complete(&request_id, completion) {
        accepted()
    } else {
        invalid_request_id()
    }
}

async fn init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    if shared.ready_at.get().is_some() {
        return error_body(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "State transition from Ready to InitError failed for runtime. Error: init is over",
        );
    }
    let body = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    *lock(&shared.init_failure) = Some(InitFailure {
        error_type: error_type(&headers),
        body,
    });
    // Lambda discards an environment whose init failed; the first invoke reports the failure.
    shared.stop.notify_one();
    accepted()
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

fn invalid_request_id() -> Response {
    error_body(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        "Invalid request ID",
    )
}

fn too_large() -> Response {
    error_body(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        &format!("Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
    )
}

fn error_body(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
