//! API Gateway's data plane for REST APIs: `ANY /restapis/{api}/{stage}/_user_request_/{path}`
//! (LocalStack's form of `https://{api}.execute-api.{region}.amazonaws.com/{stage}/{path}`).
//!
//! A request is matched against the stage's deployed resource tree, checked for the method's
//! required request parameters, authorized by a TOKEN authorizer when the method has one, and
//! turned into a REST proxy event (payload format 1.0). The integration's request parameters
//! decide the `X-Amz-Tenant-Id` of the invoke, which goes through the same front door as
//! Lambda's Invoke API, so a PER_TENANT function without a mapped tenant is refused exactly as a
//! direct Invoke would be. Failures a caller of API Gateway cannot see the details of (Lambda
//! refused, missing permission) answer 500 and are written to the emulator's own log, as API
//! Gateway writes them to its execution log.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method as HttpMethod, StatusCode, Uri, header,
};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use super::model::{self, Authorizer, Deployment, Method, Resource, RestApi};
use crate::lambda::ApiError;
use crate::lambda::invoke::invoke_for_service;
use crate::server::AppState;

/// The function named by a Lambda integration URI,
/// `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{functionArn}/invocations`.
pub fn function_of_uri(uri: &str) -> Option<&str> {
    let (_, path) = uri.split_once(":lambda:path/2015-03-31/functions/")?;
    if !uri.starts_with("arn:aws:apigateway:") {
        return None;
    }
    path.strip_suffix("/invocations").filter(|f| !f.is_empty())
}

/// A data-plane answer API Gateway generates itself: `{"message": ...}` and its error type.
fn gateway_answer(status: StatusCode, kind: &'static str, message: Value) -> Response {
    gateway_body(status, kind, json!({ "message": message }))
}

fn gateway_body(status: StatusCode, kind: &'static str, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
    response
}

fn missing_token() -> Response {
    gateway_answer(
        StatusCode::FORBIDDEN,
        "MissingAuthenticationTokenException",
        json!("Missing Authentication Token"),
    )
}

fn internal_error() -> Response {
    gateway_answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerErrorException",
        json!("Internal server error"),
    )
}

fn bad_gateway() -> Response {
    gateway_answer(
        StatusCode::BAD_GATEWAY,
        "InternalServerErrorException",
        json!("Internal server error"),
    )
}

/// API Gateway's default time to keep an authorizer's answer for a token, when the authorizer
/// does not say (`authorizerResultTtlInSeconds` absent).
pub const DEFAULT_AUTHORIZER_TTL: Duration = Duration::from_secs(300);

/// TOKEN authorizers' answers by (API, authorizer, token), each until its deadline. Allow and
/// Deny answers are kept; an `Unauthorized` refusal or a failure is not, as on AWS.
#[derive(Debug, Default)]
pub struct AuthorizerCache {
    answers: Mutex<HashMap<CacheKey, (Instant, Value)>>,
}

/// (API id, authorizer id, token).
type CacheKey = (String, String, String);

impl AuthorizerCache {
    fn get(&self, key: &CacheKey) -> Option<Value> {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        match answers.get(key) {
            Some((deadline, answer)) if *deadline > Instant::now() => Some(answer.clone()),
            Some(_) => {
                answers.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: CacheKey, ttl: Duration, answer: Value) {
        if ttl.is_zero() {
            return;
        }
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        // Expired answers go whenever one is added, so the cache stays as small as its TTLs.
        let now = Instant::now();
        answers.retain(|_, (deadline, _)| *deadline > now);
        answers.insert(key, (now + ttl, answer));
    }
}

/// `ANY /restapis/{api}/{stage}/_user_request_/{path}`.
pub async fn handle(
    State(app): State<Arc<AppState>>,
    Path((api, stage, path)): Path<(String, String, String)>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request {
        api,
        stage,
        segments: path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        method: method.as_str().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        headers,
        body,
    };
    serve(&app, request).await
}

/// `ANY /restapis/{api}/{stage}/_user_request_`: the API's root resource.
pub async fn handle_root(
    State(app): State<Arc<AppState>>,
    Path((api, stage)): Path<(String, String)>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request {
        api,
        stage,
        segments: Vec::new(),
        method: method.as_str().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        headers,
        body,
    };
    serve(&app, request).await
}

struct Request {
    api: String,
    stage: String,
    segments: Vec<String>,
    method: String,
    query: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    fn path(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }
}

/// What the matched method sees of a request: its parameters by kind.
struct Matched<'a> {
    resource: &'a Resource,
    method: &'a Method,
    path_params: BTreeMap<String, String>,
}

async fn serve(app: &Arc<AppState>, request: Request) -> Response {
    // An API or stage that does not exist has no invoke URL at all; API Gateway answers such
    // requests 403 `Forbidden`.
    let Some(api) = app.apigateway.get(&request.api) else {
        return gateway_answer(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            json!("Forbidden"),
        );
    };
    let Some((deployment, stage_variables)) = deployed(&api, &request.stage) else {
        return gateway_answer(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            json!("Forbidden"),
        );
    };
    let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    let Some((resource, path_params)) = model::match_path(
        &deployment.resources,
        &deployment.root_resource_id,
        &segments,
    ) else {
        return missing_token();
    };
    let Some(method) = resource
        .methods
        .get(&request.method)
        .or_else(|| resource.methods.get("ANY"))
    else {
        return missing_token();
    };
    let matched = Matched {
        resource,
        method,
        path_params,
    };

    let method_arn = format!(
        "arn:aws:execute-api:{}:{}:{}/{}/{}/{}",
        app.config.region,
        app.config.account_id,
        api.id,
        request.stage,
        request.method,
        request.segments.join("/")
    );
    let authorizer_context = if method.authorization_type == "CUSTOM" {
        let Some(authorizer) = method
            .authorizer_id
            .as_ref()
            .and_then(|id| deployment.authorizers.get(id))
        else {
            tracing::warn!(api = %api.id, "the method's authorizer is not part of the deployment");
            return internal_error();
        };
        match authorize(app, &api, authorizer, &request, &method_arn).await {
            Ok(context) => Some(context),
            Err(response) => return response,
        }
    } else {
        None
    };

    // A request validator runs after the authorizer, and only a method that has one refuses a
    // request missing a required parameter: without one, API Gateway passes the request on.
    let validates = method
        .request_validator_id
        .as_ref()
        .and_then(|id| deployment.validators.get(id))
        .is_some_and(|v| v.validate_request_parameters);
    let missing = if validates {
        missing_required(&request, &matched)
    } else {
        Vec::new()
    };
    if !missing.is_empty() {
        return gateway_answer(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            json!(format!(
                "Missing required request parameters: [{}]",
                missing.join(", ")
            )),
        );
    }

    let Some(integration) = &method.integration else {
        return internal_error();
    };
    if integration.kind != "AWS_PROXY" {
        tracing::warn!(
            api = %api.id,
            kind = %integration.kind,
            "Execution failed: the emulator implements only AWS_PROXY integrations with Lambda"
        );
        return internal_error();
    }
    let Some(function) = integration.uri.as_deref().and_then(function_of_uri) else {
        return internal_error();
    };

    // The integration's request parameters become headers of Lambda's Invoke request; the one
    // Lambda reads is the tenant id. A source that is absent maps nothing, as in API Gateway.
    let mut tenant = None;
    for (target, source) in &integration.request_parameters {
        let Some(name) = target.strip_prefix("integration.request.header.") else {
            continue;
        };
        if name.eq_ignore_ascii_case("x-amz-tenant-id") {
            tenant = resolve_source(
                source,
                &request,
                &matched,
                authorizer_context.as_ref(),
                &stage_variables,
            );
        }
    }

    let request_id = uuid::Uuid::new_v4().to_string();
    let event = proxy_event(
        app,
        &api,
        &request,
        &matched,
        &request_id,
        authorizer_context.as_ref(),
        &stage_variables,
    );
    let payload = event.to_string().into_bytes();
    let source_arn = method_arn;
    let account = app.config.account_id.clone();
    let outcome = invoke_for_service(app, function, tenant, payload, |statements| {
        allowed(statements, &source_arn, &account)
    })
    .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        // Lambda's tenancy refusal passes through as a 400 with Lambda's own message, as
        // recorded from AWS; any other refusal is API Gateway's own 500.
        Err(error)
            if error.kind == "InvalidParameterValueException"
                && error.message.contains("tenancy configuration") =>
        {
            tracing::warn!(api = %api.id, function, error = %error.message, "Lambda refused the invoke: tenancy");
            return gateway_answer(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                json!(error.message),
            );
        }
        Err(error) => {
            tracing::warn!(
                api = %api.id,
                function,
                error = %error.message,
                kind = error.kind,
                "Execution failed due to configuration error: Lambda refused the invoke"
            );
            return internal_error();
        }
    };
    if outcome.function_error.is_some() {
        tracing::warn!(api = %api.id, function, "Lambda execution failed with status 200 due to customer function error");
        return bad_gateway();
    }
    match proxy_response(&outcome.payload, &request_id) {
        Ok(response) => response,
        Err(problem) => {
            tracing::warn!(api = %api.id, function, problem, "Execution failed due to configuration error: Malformed Lambda proxy response");
            bad_gateway()
        }
    }
}

/// The deployment a stage serves and the stage's variables.
fn deployed<'a>(
    api: &'a RestApi,
    stage: &str,
) -> Option<(&'a Deployment, BTreeMap<String, String>)> {
    let stage = api.stages.get(stage)?;
    let deployment = api
        .deployments
        .iter()
        .find(|d| d.id == stage.deployment_id)?;
    Some((deployment, stage.variables.clone()))
}

/// The names of the method's required request parameters this request lacks.
fn missing_required(request: &Request, matched: &Matched<'_>) -> Vec<String> {
    let query = request.query_pairs();
    matched
        .method
        .request_parameters
        .iter()
        .filter(|(_, required)| **required)
        .filter_map(|(name, _)| {
            let rest = name.strip_prefix("method.request.")?;
            let (kind, key) = rest.split_once('.')?;
            let present = match kind {
                "header" => request.headers.contains_key(key),
                "querystring" => query.iter().any(|(k, _)| k == key),
                "path" => matched.path_params.contains_key(key),
                _ => true,
            };
            (!present).then(|| key.to_string())
        })
        .collect()
}

/// The value of a mapping expression for this request, or `None` when its source is absent.
fn resolve_source(
    source: &str,
    request: &Request,
    matched: &Matched<'_>,
    authorizer: Option<&Map<String, Value>>,
    stage_variables: &BTreeMap<String, String>,
) -> Option<String> {
    if source.len() >= 2 && source.starts_with('\'') && source.ends_with('\'') {
        return Some(source[1..source.len() - 1].to_string());
    }
    if let Some(name) = source.strip_prefix("method.request.header.") {
        return request.header(name);
    }
    if let Some(name) = source.strip_prefix("method.request.multivalueheader.") {
        let values: Vec<String> = request
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        return (!values.is_empty()).then(|| values.join(","));
    }
    if let Some(name) = source.strip_prefix("method.request.querystring.") {
        return request
            .query_pairs()
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v);
    }
    if let Some(name) = source.strip_prefix("method.request.multivaluequerystring.") {
        let values: Vec<String> = request
            .query_pairs()
            .into_iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect();
        return (!values.is_empty()).then(|| values.join(","));
    }
    if let Some(name) = source.strip_prefix("method.request.path.") {
        return matched.path_params.get(name).cloned();
    }
    if let Some(name) = source.strip_prefix("context.authorizer.") {
        return authorizer
            .and_then(|context| context.get(name))
            .map(scalar_text);
    }
    if let Some(name) = source.strip_prefix("stageVariables.") {
        return stage_variables.get(name).cloned();
    }
    None
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Lambda's resource-policy check for a call from API Gateway: some Allow statement names the
/// `apigateway.amazonaws.com` principal (or `*`), an invoke action, and conditions that
/// `source_arn` and `account` satisfy.
fn allowed(statements: &[Value], source_arn: &str, account: &str) -> Result<(), ApiError> {
    let grants = statements.iter().any(|statement| {
        let principal_ok = match &statement["Principal"] {
            Value::String(p) => p == "*",
            Value::Object(p) => {
                p.get("Service").and_then(Value::as_str) == Some("apigateway.amazonaws.com")
            }
            _ => false,
        };
        let action_ok = matches!(
            statement["Action"].as_str(),
            Some("lambda:InvokeFunction" | "lambda:*" | "*")
        );
        let condition = &statement["Condition"];
        let arn_ok = condition["ArnLike"]["AWS:SourceArn"]
            .as_str()
            .is_none_or(|pattern| model::arn_like(pattern, source_arn));
        let account_ok = condition["StringEquals"]["AWS:SourceAccount"]
            .as_str()
            .is_none_or(|a| a == account);
        statement["Effect"] == "Allow" && principal_ok && action_ok && arn_ok && account_ok
    });
    if grants {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            format!(
                "Invalid permissions on Lambda function: no resource-policy statement allows apigateway.amazonaws.com to invoke it from {source_arn}"
            ),
        ))
    }
}

/// Runs a TOKEN authorizer and returns its `context` (plus `principalId`), or the response API
/// Gateway gives when it refuses the request.
async fn authorize(
    app: &Arc<AppState>,
    api: &RestApi,
    authorizer: &Authorizer,
    request: &Request,
    method_arn: &str,
) -> Result<Map<String, Value>, Response> {
    let unauthorized = || {
        gateway_answer(
            StatusCode::UNAUTHORIZED,
            "UnauthorizedException",
            json!("Unauthorized"),
        )
    };
    let config_error = || {
        gateway_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "AuthorizerConfigurationException",
            Value::Null,
        )
    };
    if authorizer.kind != "TOKEN" {
        tracing::warn!(api = %api.id, kind = %authorizer.kind, "the emulator implements only TOKEN authorizers");
        return Err(config_error());
    }
    let source = authorizer
        .identity_source
        .as_deref()
        .unwrap_or("method.request.header.Authorization");
    let Some(token) = source
        .strip_prefix("method.request.header.")
        .and_then(|name| request.header(name))
        .filter(|t| !t.is_empty())
    else {
        return Err(unauthorized());
    };
    let Some(function) = authorizer
        .authorizer_uri
        .as_deref()
        .and_then(function_of_uri)
    else {
        return Err(config_error());
    };
    let cache_key = (api.id.clone(), authorizer.id.clone(), token.clone());
    let ttl = authorizer
        .authorizer_result_ttl_in_seconds
        .map_or(DEFAULT_AUTHORIZER_TTL, |s| {
            Duration::from_secs(u64::try_from(s).unwrap_or(0))
        });
    let answer = match app.apigateway.authorizer_cache.get(&cache_key) {
        Some(answer) => answer,
        None => {
            let answer =
                invoke_authorizer(app, api, authorizer, function, &token, method_arn).await?;
            app.apigateway
                .authorizer_cache
                .put(cache_key, ttl, answer.clone());
            answer
        }
    };
    decide(api, function, &answer, method_arn).map_err(|response| *response)
}

/// Invokes a TOKEN authorizer's function and returns its answer, or the response API Gateway
/// gives when the function refuses (`Unauthorized`) or fails.
async fn invoke_authorizer(
    app: &Arc<AppState>,
    api: &RestApi,
    authorizer: &Authorizer,
    function: &str,
    token: &str,
    method_arn: &str,
) -> Result<Value, Response> {
    let unauthorized = || {
        gateway_answer(
            StatusCode::UNAUTHORIZED,
            "UnauthorizedException",
            json!("Unauthorized"),
        )
    };
    let config_error = || {
        gateway_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "AuthorizerConfigurationException",
            Value::Null,
        )
    };
    let event = json!({ "type": "TOKEN", "authorizationToken": token, "methodArn": method_arn });
    let source_arn = format!(
        "arn:aws:execute-api:{}:{}:{}/authorizers/{}",
        app.config.region, app.config.account_id, api.id, authorizer.id
    );
    let account = app.config.account_id.clone();
    // The authorizer is an ordinary function: it is invoked without a tenant.
    let outcome = invoke_for_service(app, function, None, event.to_string().into_bytes(), |s| {
        allowed(s, &source_arn, &account)
    })
    .await
    .map_err(|error| {
        tracing::warn!(api = %api.id, function, error = %error.message, "Execution failed due to configuration error: authorizer invoke refused");
        config_error()
    })?;
    let answer: Value = serde_json::from_slice(&outcome.payload).unwrap_or(Value::Null);
    if outcome.function_error.is_some() {
        // A function that fails with the message `Unauthorized` asks for a 401, by convention.
        if answer["errorMessage"] == "Unauthorized" {
            return Err(unauthorized());
        }
        return Err(config_error());
    }
    Ok(answer)
}

/// Applies an authorizer's answer to the method called: its `context` (plus `principalId`)
/// when a statement allows `execute-api:Invoke` on the method and none denies it, or 403.
fn decide(
    api: &RestApi,
    function: &str,
    answer: &Value,
    method_arn: &str,
) -> Result<Map<String, Value>, Box<Response>> {
    let config_error = || {
        Box::new(gateway_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "AuthorizerConfigurationException",
            Value::Null,
        ))
    };
    let statements = match &answer["policyDocument"]["Statement"] {
        Value::Array(list) => list.clone(),
        Value::Object(_) => vec![answer["policyDocument"]["Statement"].clone()],
        _ => {
            tracing::warn!(api = %api.id, function, "the authorizer returned no policy document");
            return Err(config_error());
        }
    };
    let as_list = |value: &Value| -> Vec<String> {
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let applies = |statement: &Value| {
        let action_ok = as_list(&statement["Action"])
            .iter()
            .any(|a| model::arn_like(a, "execute-api:Invoke"));
        let resource_ok = as_list(&statement["Resource"])
            .iter()
            .any(|r| model::arn_like(r, method_arn));
        action_ok && resource_ok
    };
    let denied = statements
        .iter()
        .any(|s| s["Effect"] == "Deny" && applies(s));
    let allowed = statements
        .iter()
        .any(|s| s["Effect"] == "Allow" && applies(s));
    if denied || !allowed {
        let message = if denied {
            "User is not authorized to access this resource with an explicit deny"
        } else {
            "User is not authorized to access this resource"
        };
        return Err(Box::new(gateway_body(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            json!({ "Message": message }),
        )));
    }
    let mut context = answer["context"].as_object().cloned().unwrap_or_default();
    if let Some(principal) = answer.get("principalId") {
        context.insert("principalId".into(), principal.clone());
    }
    Ok(context)
}

/// The REST API proxy event, payload format 1.0.
fn proxy_event(
    app: &AppState,
    api: &RestApi,
    request: &Request,
    matched: &Matched<'_>,
    request_id: &str,
    authorizer: Option<&Map<String, Value>>,
    stage_variables: &BTreeMap<String, String>,
) -> Value {
    let mut headers = Map::new();
    let mut multi_headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &request.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.insert(name.as_str().to_string(), json!(value));
        multi_headers
            .entry(name.as_str().to_string())
            .or_default()
            .push(value);
    }
    let mut query = Map::new();
    let mut multi_query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in request.query_pairs() {
        query.insert(name.clone(), json!(value));
        multi_query.entry(name).or_default().push(value);
    }
    let multi_headers: Map<String, Value> = multi_headers
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    let multi_query: Map<String, Value> = multi_query
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    let null_if_empty = |map: Map<String, Value>| {
        if map.is_empty() {
            Value::Null
        } else {
            Value::Object(map)
        }
    };
    let (body, is_base64) = if request.body.is_empty() {
        (Value::Null, false)
    } else {
        match std::str::from_utf8(&request.body) {
            Ok(text) => (json!(text), false),
            Err(_) => (json!(BASE64.encode(&request.body)), true),
        }
    };
    let now = crate::clock::now_millis();
    let mut context = json!({
        "accountId": app.config.account_id,
        "apiId": api.id,
        "stage": request.stage,
        "requestId": request_id,
        "extendedRequestId": request_id,
        "resourceId": matched.resource.id,
        "resourcePath": matched.resource.path,
        "httpMethod": request.method,
        "path": format!("/{}{}", request.stage, request.path()),
        "protocol": "HTTP/1.1",
        "requestTimeEpoch": now,
        "domainName": request.header("host").unwrap_or_default(),
        "identity": {
            "sourceIp": "127.0.0.1",
            "userAgent": request.header("user-agent"),
        },
    });
    if let Some(authorizer) = authorizer {
        context["authorizer"] = Value::Object(authorizer.clone());
    }
    let path_params: Map<String, Value> = matched
        .path_params
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let stage_vars: Map<String, Value> = stage_variables
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "resource": matched.resource.path,
        "path": request.path(),
        "httpMethod": request.method,
        "headers": null_if_empty(headers),
        "multiValueHeaders": null_if_empty(multi_headers),
        "queryStringParameters": null_if_empty(query),
        "multiValueQueryStringParameters": null_if_empty(multi_query),
        "pathParameters": null_if_empty(path_params),
        "stageVariables": null_if_empty(stage_vars),
        "requestContext": context,
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// The HTTP response a proxy integration's answer describes, or why it is malformed.
fn proxy_response(payload: &[u8], request_id: &str) -> Result<Response, String> {
    let answer: Value =
        serde_json::from_slice(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let Value::Object(answer) = answer else {
        return Err("the payload is not a JSON object".into());
    };
    let status = match answer.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        _ => None,
    }
    .and_then(|n| u16::try_from(n).ok())
    .and_then(|n| StatusCode::from_u16(n).ok())
    .ok_or("statusCode is missing or not an HTTP status")?;
    let body = match answer.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => {
            if answer.get("isBase64Encoded") == Some(&Value::Bool(true)) {
                BASE64
                    .decode(text)
                    .map_err(|e| format!("body is not base64: {e}"))?
            } else {
                text.clone().into_bytes()
            }
        }
        Some(_) => return Err("body is not a string".into()),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let out = response.headers_mut();
    let header_text = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    };
    let mut add = |name: &str, value: &Value, append: bool| -> Result<(), String> {
        let text = header_text(value).ok_or_else(|| format!("header {name} is not a string"))?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name}"))?;
        let value =
            HeaderValue::from_str(&text).map_err(|_| format!("invalid value of header {name}"))?;
        if append {
            out.append(name, value);
        } else {
            out.insert(name, value);
        }
        Ok(())
    };
    match answer.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, values) in map {
                let Value::Array(values) = values else {
                    return Err(format!("multiValueHeaders.{name} is not a list"));
                };
                for value in values {
                    add(name, value, true)?;
                }
            }
        }
        Some(_) => return Err("multiValueHeaders is not an object".into()),
    }
    match answer.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                add(name, value, false)?;
            }
        }
        Some(_) => return Err("headers is not an object".into()),
    }
    if !out.contains_key(header::CONTENT_TYPE) {
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Ok(id) = HeaderValue::from_str(request_id) {
        out.insert("x-amzn-RequestId", id);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_integration_uris_name_their_function() {
        let uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:probe/invocations";
        assert_eq!(
            function_of_uri(uri),
            Some("arn:aws:lambda:us-east-1:000000000000:function:probe")
        );
        assert_eq!(function_of_uri("https://example.com/"), None);
    }

    #[test]
    fn permissions_are_matched_on_principal_and_source_arn() {
        let arn = "arn:aws:execute-api:us-east-1:000000000000:abc/prod/GET/states/TX";
        let statement = |pattern: &str| {
            json!({
                "Effect": "Allow",
                "Principal": { "Service": "apigateway.amazonaws.com" },
                "Action": "lambda:InvokeFunction",
                "Condition": { "ArnLike": { "AWS:SourceArn": pattern } },
            })
        };
        let account = "000000000000";
        assert!(
            allowed(
                &[statement(
                    "arn:aws:execute-api:us-east-1:000000000000:abc/*"
                )],
                arn,
                account
            )
            .is_ok()
        );
        assert!(
            allowed(
                &[statement(
                    "arn:aws:execute-api:us-east-1:000000000000:xyz/*"
                )],
                arn,
                account
            )
            .is_err()
        );
        assert!(allowed(&[], arn, account).is_err());
    }

    #[test]
    fn malformed_proxy_answers_are_refused() {
        assert!(proxy_response(br#"{"pid":1}"#, "id").is_err());
        assert!(proxy_response(br#"{"statusCode":200,"body":{"a":1}}"#, "id").is_err());
        let ok = proxy_response(
            br#"{"statusCode":201,"headers":{"x-a":"b"},"body":"hi"}"#,
            "id",
        )
        .expect("a well-formed answer");
        assert_eq!(ok.status(), StatusCode::CREATED);
        assert_eq!(ok.headers()["x-a"], "b");
    }
}
