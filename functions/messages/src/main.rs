//! The `messages` Lambda function: a state's constituent messages, written and read from an
//! execution environment that only ever serves that state.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use base64::Engine as _;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use messages::{DynamoMessages, MESSAGES_TABLE_VAR, Request};
use represent::http::{self, Form};
use represent::{ApiError, DynamoSource, TenantCache, registry};
use serde_json::Value;

/// Built once per environment: the state's data (for its districts) and the messages table,
/// both reached with the credentials of the environment's tenant.
struct Deps {
    source: DynamoSource,
    cache: TenantCache,
    table: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    represent::logging::init();
    let table = std::env::var(MESSAGES_TABLE_VAR)
        .ok()
        .filter(|t| !t.is_empty());
    let deps = Deps {
        source: DynamoSource::from_env().await,
        cache: TenantCache::new(),
        table,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| handle(event, &deps))).await
}

/// Answers one invoke; every problem is an answer with a status, never a function error.
async fn handle(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, std::convert::Infallible> {
    let started = Instant::now();
    let tenant = event.context.tenant_id.as_deref();
    let form = http::form_of(&event.payload);
    let request = read(&event.payload);
    let route = request
        .as_ref()
        .map(|r| format!("{} {}", r.method, r.path))
        .unwrap_or_default();
    let answer = match (tenant, request) {
        (None, _) => Err(ApiError::bad_request(
            "no tenant id: messages belong to one state, pass its USPS code as the tenant id",
        )),
        (Some(t), _) if !registry::is_known(t) => {
            Err(ApiError::new(403, format!("unknown tenant `{t}`")))
        }
        (_, Err(error)) => Err(error),
        (Some(tenant), Ok(request)) => serve(&request, tenant, deps).await,
    };
    let status = match &answer {
        Ok((status, _)) => *status,
        Err(e) => e.status,
    };
    tracing::info!(
        tenantId = tenant.unwrap_or_default(),
        function = "messages",
        form = form.as_str(),
        route = route.as_str(),
        status,
        durationMs = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    let mut rendered = http::render(form, answer.map(|(_, body)| body));
    if form == Form::ApiGateway {
        rendered["statusCode"] = status.into();
    }
    Ok(rendered)
}

async fn serve(request: &Request, tenant: &str, deps: &Deps) -> Result<(u16, Value), ApiError> {
    let (state, _) = deps.cache.get(tenant, &deps.source).await.map_err(|e| {
        tracing::error!(tenantId = tenant, error = %e, "failed to load the state's data");
        ApiError::new(
            500,
            format!("the data of tenant `{tenant}` could not be loaded"),
        )
    })?;
    // The tenant's session of the data role in a tenant-scoped function: the table refuses
    // every other state's partition to it.
    let client = deps.source.client_for(tenant).await.map_err(|e| {
        tracing::error!(tenantId = tenant, error = %e, "failed to reach the messages table");
        ApiError::new(500, "the messages table could not be reached")
    })?;
    let store = DynamoMessages::new(client.clone(), deps.table.clone());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let random = uuid::Uuid::new_v4().simple().to_string();
    messages::route(request, state, &store, now, &random).await
}

/// The request of an API Gateway proxy event, or of a direct invoke
/// (`{"path": "/messages", "query": {"limit": "5"}}`, which only reads).
fn read(payload: &Value) -> Result<Request, ApiError> {
    match http::form_of(payload) {
        Form::ApiGateway => {
            let event: ApiGatewayProxyRequest =
                serde_json::from_value(payload.clone()).map_err(|e| {
                    ApiError::bad_request(format!("invalid API Gateway proxy event: {e}"))
                })?;
            let body = match event.body {
                None => Vec::new(),
                Some(text) if event.is_base64_encoded => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| ApiError::bad_request("the body is not valid base64"))?,
                Some(text) => text.into_bytes(),
            };
            let path = event.path.unwrap_or_else(|| "/messages".to_string());
            Ok(Request {
                method: event.http_method.as_str().to_string(),
                path: path.trim_end_matches('/').to_string(),
                query: event
                    .query_string_parameters
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body,
            })
        }
        Form::Direct => {
            let request = http::parse(payload, "/messages").map_err(|(_, e)| e)?;
            Ok(Request {
                method: request.method,
                path: request.path,
                query: request.query.into_iter().collect(),
                body: Vec::new(),
            })
        }
    }
}
