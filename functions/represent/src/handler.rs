//! The invoke path every Represent function shares: read the request, check the tenant, get the
//! tenant's data from the per-environment cache, run the function's route, log one line, answer.

use std::convert::Infallible;
use std::time::Instant;

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use crate::data::{CacheError, TenantCache, TenantSource};
use crate::http::{self, Answer, ApiError, Request};
use crate::records::TenantData;
use crate::registry;

/// What makes one function different from another: its name, the route of an empty direct
/// invoke, and the routes themselves. Routes get the tenant's data, never the tenant id alone,
/// so that what differs between states comes from data.
#[derive(Debug)]
pub struct Function {
    pub name: &'static str,
    pub default_path: &'static str,
    pub route: fn(&Request, &TenantData) -> Answer,
}

/// Everything an invoke needs, built once per environment in `main`.
#[derive(Debug)]
pub struct Deps<S> {
    pub function: &'static Function,
    pub source: S,
    pub cache: TenantCache,
}

impl<S: TenantSource> Deps<S> {
    pub fn new(function: &'static Function, source: S) -> Self {
        Deps {
            function,
            source,
            cache: TenantCache::new(),
        }
    }
}

/// `{"id": "TX", "name": "Texas"}`, the way every answer names its state.
pub fn state_json(data: &TenantData) -> Value {
    json!({"id": data.id(), "name": data.name()})
}

/// Answers one invoke. Never fails: every problem is an answer with a status, in the shape of
/// the request, so API Gateway callers get an HTTP error rather than a 502.
pub async fn handle<S: TenantSource>(
    event: LambdaEvent<Value>,
    deps: &Deps<S>,
) -> Result<Value, Infallible> {
    let started = Instant::now();
    let tenant = event.context.tenant_id.as_deref();
    let form = http::form_of(&event.payload);
    // The tenant is checked before the request is even read, so that an unknown tenant gets 403
    // whatever it sends.
    let (request, answer, cache) = match check_tenant(tenant) {
        Err(error) => (None, Err(error), None),
        Ok(tenant) => match http::parse(&event.payload, deps.function.default_path) {
            Err((_, error)) => (None, Err(error), None),
            Ok(request) => {
                let (answer, cache) = serve(&request, tenant, deps).await;
                (Some(request), answer, cache)
            }
        },
    };
    let status = http::status_of(&answer);
    let route = request
        .as_ref()
        .map(|r| format!("{} {}", r.method, r.path))
        .unwrap_or_default();
    let route = route.as_str();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let cache = cache.unwrap_or("none");
    if let Some(tenant) = tenant {
        tracing::info!(
            tenantId = tenant,
            function = deps.function.name,
            form = form.as_str(),
            route,
            status,
            cache,
            durationMs = duration_ms,
            "request"
        );
    } else {
        tracing::warn!(
            function = deps.function.name,
            form = form.as_str(),
            route,
            status,
            cache,
            durationMs = duration_ms,
            "request without tenant id"
        );
    }
    Ok(http::render(form, answer))
}

/// The tenant of the invoke, if it is one of Represent's.
fn check_tenant(tenant: Option<&str>) -> Result<&str, ApiError> {
    let Some(tenant) = tenant else {
        return Err(ApiError::bad_request(
            "no tenant id: every Represent function serves one state per invoke, pass its USPS code as the tenant id",
        ));
    };
    // Lambda lets any tenant id through, and the emulator only checks its syntax: the function
    // decides which states exist, before reading any data.
    if !registry::is_known(tenant) {
        return Err(ApiError::new(403, format!("unknown tenant `{tenant}`")));
    }
    Ok(tenant)
}

/// The answer to a well-formed request of a known tenant, and how the cache served it (`None`
/// when the request was refused before any data was needed).
async fn serve<S: TenantSource>(
    request: &Request,
    tenant: &str,
    deps: &Deps<S>,
) -> (Answer, Option<&'static str>) {
    if request.method != "GET" && request.method != "HEAD" {
        return (
            Err(ApiError::new(
                405,
                format!(
                    "method {} is not allowed: Represent only reads",
                    request.method
                ),
            )),
            None,
        );
    }
    match deps.cache.get(tenant, &deps.source).await {
        Ok((data, status)) => ((deps.function.route)(request, data), Some(status.as_str())),
        Err(CacheError::OtherTenant { cached, requested }) => {
            tracing::error!(
                tenantId = requested,
                cachedTenantId = cached,
                function = deps.function.name,
                "PLATFORM BUG: an environment that holds one tenant's data was invoked for another tenant; refusing to answer"
            );
            (
                Err(ApiError::new(
                    500,
                    format!("this environment cannot serve tenant `{requested}`"),
                )),
                Some("refused"),
            )
        }
        Err(CacheError::Load(error)) => {
            tracing::error!(
                tenantId = tenant,
                function = deps.function.name,
                error = %error_chain(&error),
                "failed to load the tenant's data"
            );
            (
                Err(ApiError::new(
                    500,
                    format!("the data of tenant `{tenant}` could not be loaded"),
                )),
                Some("miss"),
            )
        }
    }
}

/// An error with its causes, `outer: inner: innermost`, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use lambda_runtime::Context;
    use lambda_runtime::tracing::subscriber::filter::LevelFilter;

    use super::*;
    use crate::data::StaticSource;
    use crate::logging::{capture, json_subscriber};
    use crate::tenant::TenantFile;

    fn echo(request: &Request, data: &TenantData) -> Answer {
        Ok(json!({"state": state_json(data), "path": request.path}))
    }

    static ECHO: Function = Function {
        name: "echo",
        default_path: "/echo",
        route: echo,
    };

    fn wyoming() -> TenantData {
        let path = format!("{}/../../tenants/WY.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("committed tenant file");
        TenantData::new(serde_json::from_str::<TenantFile>(&text).expect("parses"))
    }

    async fn invoke(deps: &Deps<StaticSource>, tenant: Option<&str>, payload: Value) -> Value {
        let mut context = Context::default();
        context.tenant_id = tenant.map(str::to_string);
        let Ok(answer) = handle(LambdaEvent::new(payload, context), deps).await;
        answer
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_invoke_logs_one_line_with_the_tenant_at_the_top_level() {
        let buffer = capture::Buffer::default();
        let writer = buffer.clone();
        // The runtime is single-threaded, so the thread-local default sees every event.
        let _guard = tracing::subscriber::set_default(json_subscriber(
            move || writer.clone(),
            LevelFilter::INFO,
        ));
        let deps = Deps::new(&ECHO, StaticSource::new([wyoming()]));
        let first = invoke(&deps, Some("WY"), json!({})).await;
        assert_eq!(
            first,
            json!({"state": {"id": "WY", "name": "Wyoming"}, "path": "/echo"})
        );
        invoke(&deps, Some("WY"), json!({"path": "/x/"})).await;
        invoke(&deps, Some("ZZ"), json!({"querry": "not even read"})).await;

        let lines = capture::lines(&buffer);
        assert_eq!(lines.len(), 3, "{lines:?}");
        let fields = |line: &Value| {
            (
                line["tenantId"].clone(),
                line["route"].clone(),
                line["status"].clone(),
                line["cache"].clone(),
            )
        };
        assert_eq!(
            fields(&lines[0]),
            (json!("WY"), json!("GET /echo"), json!(200), json!("miss"))
        );
        assert_eq!(
            fields(&lines[1]),
            (json!("WY"), json!("GET /x"), json!(200), json!("hit"))
        );
        assert_eq!(
            fields(&lines[2]),
            (json!("ZZ"), json!(""), json!(403), json!("none"))
        );
        assert!(
            lines
                .iter()
                .all(|l| l["durationMs"].is_f64() && l["message"] == "request")
        );
    }

    #[tokio::test]
    async fn an_unknown_tenant_is_refused_whatever_it_sends() {
        let deps = Deps::new(&ECHO, StaticSource::new([wyoming()]));
        let answer = invoke(&deps, Some("ZZ"), json!({"querry": 1})).await;
        assert_eq!(
            answer,
            json!({"error": {"status": 403, "message": "unknown tenant `ZZ`"}})
        );
        assert_eq!(deps.source.loads(), 0);
    }

    #[tokio::test]
    async fn a_load_failure_is_a_server_error_and_is_retried() {
        let deps = Deps::new(&ECHO, StaticSource::new([]));
        for _ in 0..2 {
            let answer = invoke(&deps, Some("WY"), json!({})).await;
            assert_eq!(answer["error"]["status"], 500, "{answer}");
        }
        assert_eq!(deps.source.loads(), 2, "a failed load is not cached");
    }
}
