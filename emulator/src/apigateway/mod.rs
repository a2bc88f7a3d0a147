//! API Gateway REST APIs (v1): the control plane under `/restapis` and `/tags/{arn}` in the
//! REST-JSON shapes `aws-sdk-apigateway` sends and parses, and (in `proxy`) the data plane at
//! `/restapis/{api}/{stage}/_user_request_/{path}`, LocalStack's URL form for an invoke URL.
//!
//! APIs live in memory, so a data-plane request never touches SQLite; every acknowledged change
//! is written through to the store first (one JSON document per API), so a restart finds what
//! callers were told. The data plane serves a stage's deployment, a copy of the resource tree
//! frozen by CreateDeployment, exactly as API Gateway does.

mod model;
mod proxy;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::server::AppState;
use crate::store::{self, Store, StoreError};
use model::{
    Authorizer, Deployment, Integration, Method, PartKind, RequestValidator, Resource, RestApi,
    Stage,
};

/// The REST APIs of this emulator, in memory.
#[derive(Default)]
pub struct RestApis {
    map: RwLock<BTreeMap<String, Arc<RestApi>>>,
    /// Serializes control-plane mutations so read-modify-write sequences cannot interleave;
    /// the data plane never takes it.
    write_lock: tokio::sync::Mutex<()>,
    /// TOKEN authorizers' answers by (API, authorizer, token), kept for the authorizer's TTL.
    pub(crate) authorizer_cache: proxy::AuthorizerCache,
}

impl RestApis {
    /// Loads every stored API.
    pub async fn load(store: &Arc<Store>) -> Result<RestApis, StoreError> {
        let stored = store.call(|conn| store::load_rest_apis(conn)).await?;
        let mut map = BTreeMap::new();
        for (id, document) in stored {
            let api: RestApi =
                serde_json::from_str(&document).map_err(|source| StoreError::Corrupt {
                    what: "REST API",
                    name: id.clone(),
                    source,
                })?;
            map.insert(id, Arc::new(api));
        }
        Ok(RestApis {
            map: RwLock::new(map),
            write_lock: tokio::sync::Mutex::new(()),
            authorizer_cache: proxy::AuthorizerCache::default(),
        })
    }

    fn get(&self, id: &str) -> Option<Arc<RestApi>> {
        // The map is replaced entry by entry, so a poisoned lock still holds consistent data.
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<RestApi>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn insert(&self, api: RestApi) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(api.id.clone(), Arc::new(api));
    }

    fn remove(&self, id: &str) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// One API Gateway error: the `x-amzn-ErrorType` header the SDK classifies by and a
/// `{"message": ...}` body.
#[derive(Debug, Clone)]
pub struct GatewayError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl GatewayError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> GatewayError {
        GatewayError {
            status,
            kind,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> GatewayError {
        GatewayError::new(StatusCode::NOT_FOUND, "NotFoundException", message)
    }

    fn bad_request(message: impl Into<String>) -> GatewayError {
        GatewayError::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }

    fn conflict(message: impl Into<String>) -> GatewayError {
        GatewayError::new(StatusCode::CONFLICT, "ConflictException", message)
    }
}

impl From<StoreError> for GatewayError {
    fn from(error: StoreError) -> GatewayError {
        tracing::error!(%error, "state database failure");
        GatewayError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailureException",
            error.to_string(),
        )
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = json!({ "message": self.message }).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert("x-amzn-ErrorType", HeaderValue::from_static(self.kind));
        response
    }
}

type GatewayResult = Result<Response, GatewayError>;

/// API Gateway's routes: the control plane and the data plane.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/restapis", post(create_rest_api).get(get_rest_apis))
        .route("/restapis/{api}", get(get_rest_api).delete(delete_rest_api))
        .route("/restapis/{api}/resources", get(get_resources))
        .route(
            "/restapis/{api}/resources/{resource}",
            post(create_resource)
                .get(get_resource)
                .delete(delete_resource),
        )
        .route(
            "/restapis/{api}/resources/{resource}/methods/{method}",
            put(put_method).get(get_method).delete(delete_method),
        )
        .route(
            "/restapis/{api}/resources/{resource}/methods/{method}/integration",
            put(put_integration)
                .get(get_integration)
                .delete(delete_integration),
        )
        .route(
            "/restapis/{api}/deployments",
            post(create_deployment).get(get_deployments),
        )
        .route("/restapis/{api}/stages", get(get_stages))
        .route(
            "/restapis/{api}/stages/{stage}",
            get(get_stage).delete(delete_stage),
        )
        .route(
            "/restapis/{api}/authorizers",
            post(create_authorizer).get(get_authorizers),
        )
        .route(
            "/restapis/{api}/authorizers/{authorizer}",
            get(get_authorizer).delete(delete_authorizer),
        )
        .route(
            "/restapis/{api}/requestvalidators",
            post(create_request_validator).get(get_request_validators),
        )
        .route(
            "/restapis/{api}/requestvalidators/{validator}",
            get(get_request_validator)
                .patch(update_request_validator)
                .delete(delete_request_validator),
        )
        .route(
            "/tags/{arn}",
            get(get_tags).put(tag_resource).delete(untag_resource),
        )
        .route(
            "/restapis/{api}/{stage}/_user_request_",
            any(proxy::handle_root),
        )
        .route(
            "/restapis/{api}/{stage}/_user_request_/",
            any(proxy::handle_root),
        )
        .route(
            "/restapis/{api}/{stage}/_user_request_/{*path}",
            any(proxy::handle),
        )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    let body = if body.is_empty() {
        b"{}" as &[u8]
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::bad_request(format!("Invalid request body: {e}")))
}

fn now_secs() -> i64 {
    crate::clock::now_millis() / 1000
}

fn api_not_found(app: &AppState, id: &str) -> GatewayError {
    GatewayError::not_found(format!(
        "Invalid API identifier specified {}:{id}",
        app.config.account_id
    ))
}

fn lookup(app: &AppState, id: &str) -> Result<Arc<RestApi>, GatewayError> {
    app.apigateway.get(id).ok_or_else(|| api_not_found(app, id))
}

/// Persists `api` and then publishes it, so callers are only told about what is on disk.
async fn save(app: &AppState, api: RestApi) -> Result<(), GatewayError> {
    let document = serde_json::to_string(&api).map_err(|source| StoreError::Encode {
        what: "REST API",
        name: api.id.clone(),
        source,
    })?;
    let id = api.id.clone();
    app.store
        .call(move |conn| store::put_rest_api(conn, &id, &document))
        .await?;
    app.apigateway.insert(api);
    Ok(())
}

/// Runs `change` on a copy of the API under the write lock and saves the result.
async fn mutate<T>(
    app: &AppState,
    id: &str,
    change: impl FnOnce(&mut RestApi) -> Result<T, GatewayError>,
) -> Result<T, GatewayError> {
    let _guard = app.apigateway.write_lock.lock().await;
    let current = lookup(app, id)?;
    let mut api = RestApi::clone(&current);
    let out = change(&mut api)?;
    save(app, api).await?;
    Ok(out)
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn query_value(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// API Gateway's `position`/`limit` paging over an ordered list; positions are offsets.
fn page(items: Vec<Value>, query: &[(String, String)]) -> Result<Value, GatewayError> {
    let start = match query_value(query, "position") {
        None => 0,
        Some(p) => p
            .parse::<usize>()
            .map_err(|_| GatewayError::bad_request(format!("Invalid position parameter: {p}")))?,
    };
    let limit = match query_value(query, "limit") {
        None => 25,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                return Err(GatewayError::bad_request(
                    "Invalid limit parameter: it must be between 1 and 500",
                ));
            }
        },
    };
    let total = items.len();
    let slice: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let mut out = json!({ "item": slice });
    if start + limit < total {
        out["position"] = json!((start + limit).to_string());
    }
    Ok(out)
}

// Wire shapes.

fn rest_api_json(api: &RestApi) -> Value {
    let mut out = json!({
        "id": api.id,
        "name": api.name,
        "createdDate": api.created_date,
        "rootResourceId": api.root_resource_id,
        "apiKeySource": api.settings.api_key_source,
        "endpointConfiguration": { "types": api.settings.endpoint_types },
        "disableExecuteApiEndpoint": api.settings.disable_execute_api_endpoint,
    });
    if !api.settings.vpc_endpoint_ids.is_empty() {
        out["endpointConfiguration"]["vpcEndpointIds"] = json!(api.settings.vpc_endpoint_ids);
    }
    if let Some(policy) = &api.settings.policy {
        out["policy"] = json!(policy);
    }
    if !api.settings.binary_media_types.is_empty() {
        out["binaryMediaTypes"] = json!(api.settings.binary_media_types);
    }
    if let Some(description) = &api.description {
        out["description"] = json!(description);
    }
    if !api.tags.is_empty() {
        out["tags"] = json!(api.tags);
    }
    out
}

fn integration_json(integration: &Integration) -> Value {
    let mut out = json!({
        "type": integration.kind,
        "passthroughBehavior": integration.passthrough_behavior,
        "timeoutInMillis": integration.timeout_in_millis,
        "cacheNamespace": integration.cache_namespace,
        "cacheKeyParameters": [],
    });
    if let Some(method) = &integration.http_method {
        out["httpMethod"] = json!(method);
    }
    if let Some(uri) = &integration.uri {
        out["uri"] = json!(uri);
    }
    if !integration.request_parameters.is_empty() {
        out["requestParameters"] = json!(integration.request_parameters);
    }
    out
}

fn method_json(method: &Method) -> Value {
    let mut out = json!({
        "httpMethod": method.http_method,
        "authorizationType": method.authorization_type,
        "apiKeyRequired": method.api_key_required,
    });
    if let Some(id) = &method.authorizer_id {
        out["authorizerId"] = json!(id);
    }
    if let Some(id) = &method.request_validator_id {
        out["requestValidatorId"] = json!(id);
    }
    if !method.request_parameters.is_empty() {
        out["requestParameters"] = json!(method.request_parameters);
    }
    if let Some(integration) = &method.integration {
        out["methodIntegration"] = integration_json(integration);
    }
    out
}

fn resource_json(resource: &Resource, embed_methods: bool) -> Value {
    let mut out = json!({ "id": resource.id, "path": resource.path });
    if let Some(parent) = &resource.parent_id {
        out["parentId"] = json!(parent);
    }
    if let Some(part) = &resource.path_part {
        out["pathPart"] = json!(part);
    }
    if !resource.methods.is_empty() {
        // Without `embed=methods` API Gateway names the methods with empty bodies.
        let methods: serde_json::Map<String, Value> = resource
            .methods
            .iter()
            .map(|(name, method)| {
                let body = if embed_methods {
                    method_json(method)
                } else {
                    json!({})
                };
                (name.clone(), body)
            })
            .collect();
        out["resourceMethods"] = Value::Object(methods);
    }
    out
}

fn deployment_json(deployment: &Deployment) -> Value {
    let mut out = json!({ "id": deployment.id, "createdDate": deployment.created_date });
    if let Some(description) = &deployment.description {
        out["description"] = json!(description);
    }
    out
}

fn stage_json(stage: &Stage) -> Value {
    let mut out = json!({
        "stageName": stage.stage_name,
        "deploymentId": stage.deployment_id,
        "createdDate": stage.created_date,
        "lastUpdatedDate": stage.last_updated_date,
        "cacheClusterEnabled": false,
        "tracingEnabled": false,
    });
    if let Some(description) = &stage.description {
        out["description"] = json!(description);
    }
    if !stage.variables.is_empty() {
        out["variables"] = json!(stage.variables);
    }
    out
}

fn authorizer_json(authorizer: &Authorizer) -> Value {
    let mut out = json!({
        "id": authorizer.id,
        "name": authorizer.name,
        "type": authorizer.kind,
    });
    if let Some(uri) = &authorizer.authorizer_uri {
        out["authorizerUri"] = json!(uri);
    }
    if let Some(source) = &authorizer.identity_source {
        out["identitySource"] = json!(source);
    }
    if let Some(ttl) = authorizer.authorizer_result_ttl_in_seconds {
        out["authorizerResultTtlInSeconds"] = json!(ttl);
    }
    out
}

// Rest APIs.

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRestApiInput {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    disable_execute_api_endpoint: Option<bool>,
    api_key_source: Option<String>,
    endpoint_configuration: Option<EndpointConfigurationInput>,
    policy: Option<String>,
    binary_media_types: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointConfigurationInput {
    types: Option<Vec<String>>,
    vpc_endpoint_ids: Option<Vec<String>>,
}

/// `1 validation error detected: ...`, API Gateway's wording for a broken model constraint.
fn gateway_constraint(value: &str, field: &str, constraint: &str) -> GatewayError {
    GatewayError::new(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        format!(
            "1 validation error detected: Value '{value}' at 'createRestApiInput.{field}' failed to satisfy constraint: {constraint}"
        ),
    )
}

/// CreateRestApi's settings, validated as API Gateway validates them.
fn api_settings(input: &CreateRestApiInput) -> Result<model::ApiSettings, GatewayError> {
    let mut settings = model::ApiSettings::default();
    if let Some(source) = &input.api_key_source {
        if !matches!(source.as_str(), "HEADER" | "AUTHORIZER") {
            return Err(gateway_constraint(
                source,
                "apiKeySource",
                "Member must satisfy enum value set: [AUTHORIZER, HEADER]",
            ));
        }
        settings.api_key_source = source.clone();
    }
    if let Some(endpoint) = &input.endpoint_configuration {
        if let Some(types) = &endpoint.types {
            if types
                .iter()
                .any(|t| !matches!(t.as_str(), "EDGE" | "REGIONAL" | "PRIVATE"))
            {
                return Err(gateway_constraint(
                    &format!("[{}]", types.join(", ")),
                    "endpointConfiguration.types",
                    "Member must satisfy constraint: [Member must satisfy enum value set: [PRIVATE, EDGE, REGIONAL]]",
                ));
            }
            if types.len() != 1 {
                return Err(GatewayError::bad_request(
                    "Cannot create an api with multiple Endpoint Types.",
                ));
            }
            settings.endpoint_types = types.clone();
        }
        if let Some(ids) = &endpoint.vpc_endpoint_ids {
            if !ids.is_empty() && settings.endpoint_types != ["PRIVATE"] {
                return Err(GatewayError::bad_request(
                    "VPC endpoint IDs are only supported for PRIVATE APIs.",
                ));
            }
            settings.vpc_endpoint_ids = ids.clone();
        }
    }
    if let Some(policy) = &input.policy {
        let is_document = serde_json::from_str::<Value>(policy).is_ok_and(|v| v.is_object());
        if !is_document {
            return Err(GatewayError::bad_request(
                "Invalid policy document. Please check the policy syntax and ensure that Principals are valid.",
            ));
        }
        settings.policy = Some(policy.clone());
    }
    if let Some(types) = &input.binary_media_types {
        // A media type, or a wildcard such as `*/*` or `image/*`: a type and a subtype.
        if let Some(bad) = types.iter().find(|t| {
            let parts: Vec<&str> = t.split('/').collect();
            parts.len() != 2
                || parts
                    .iter()
                    .any(|p| p.is_empty() || p.contains(char::is_whitespace))
        }) {
            return Err(GatewayError::bad_request(format!(
                "Invalid binary media type specified: {bad}"
            )));
        }
        settings.binary_media_types = types.clone();
    }
    settings.disable_execute_api_endpoint = input.disable_execute_api_endpoint.unwrap_or(false);
    Ok(settings)
}

async fn create_rest_api(State(app): State<Arc<AppState>>, body: Bytes) -> GatewayResult {
    let input: CreateRestApiInput = parse_body(&body)?;
    let settings = api_settings(&input)?;
    let name = match input.name {
        Some(name) if !name.trim().is_empty() => name,
        _ => return Err(GatewayError::bad_request("Invalid REST API name specified")),
    };
    let root = Resource {
        id: model::new_id(),
        parent_id: None,
        path_part: None,
        path: "/".into(),
        methods: BTreeMap::new(),
    };
    let api = RestApi {
        id: model::new_id(),
        name,
        description: input.description,
        created_date: now_secs(),
        root_resource_id: root.id.clone(),
        tags: input.tags,
        resources: [(root.id.clone(), root)].into(),
        authorizers: BTreeMap::new(),
        validators: BTreeMap::new(),
        deployments: Vec::new(),
        stages: BTreeMap::new(),
        settings,
    };
    let body = rest_api_json(&api);
    let _guard = app.apigateway.write_lock.lock().await;
    save(&app, api).await?;
    Ok(json_response(StatusCode::CREATED, &body))
}

async fn get_rest_apis(
    State(app): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> GatewayResult {
    let query = query_pairs(query.as_deref());
    let mut apis = app.apigateway.all();
    apis.sort_by(|a, b| (a.created_date, &a.id).cmp(&(b.created_date, &b.id)));
    let items = apis.iter().map(|a| rest_api_json(a)).collect();
    Ok(json_response(StatusCode::OK, &page(items, &query)?))
}

async fn get_rest_api(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> GatewayResult {
    let api = lookup(&app, &id)?;
    Ok(json_response(StatusCode::OK, &rest_api_json(&api)))
}

async fn delete_rest_api(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> GatewayResult {
    let _guard = app.apigateway.write_lock.lock().await;
    lookup(&app, &id)?;
    let stored = id.clone();
    app.store
        .call(move |conn| store::delete_rest_api(conn, &stored))
        .await?;
    app.apigateway.remove(&id);
    Ok(StatusCode::ACCEPTED.into_response())
}

// Resources.

fn resource_not_found() -> GatewayError {
    GatewayError::not_found("Invalid Resource identifier specified")
}

async fn get_resources(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> GatewayResult {
    let query = query_pairs(query.as_deref());
    let embed = query
        .iter()
        .any(|(k, v)| k == "embed" && v.split(',').any(|e| e.trim() == "methods"));
    let api = lookup(&app, &id)?;
    let mut resources: Vec<&Resource> = api.resources.values().collect();
    resources.sort_by(|a, b| a.path.cmp(&b.path));
    let items = resources
        .into_iter()
        .map(|r| resource_json(r, embed))
        .collect();
    Ok(json_response(StatusCode::OK, &page(items, &query)?))
}

async fn get_resource(
    State(app): State<Arc<AppState>>,
    Path((id, resource)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> GatewayResult {
    let query = query_pairs(query.as_deref());
    let embed = query
        .iter()
        .any(|(k, v)| k == "embed" && v.split(',').any(|e| e.trim() == "methods"));
    let api = lookup(&app, &id)?;
    let resource = api
        .resources
        .get(&resource)
        .ok_or_else(resource_not_found)?;
    Ok(json_response(
        StatusCode::OK,
        &resource_json(resource, embed),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateResourceInput {
    path_part: Option<String>,
}

async fn create_resource(
    State(app): State<Arc<AppState>>,
    Path((id, parent_id)): Path<(String, String)>,
    body: Bytes,
) -> GatewayResult {
    let input: CreateResourceInput = parse_body(&body)?;
    let part = input.path_part.unwrap_or_default();
    let Some(kind) = model::path_part_kind(&part) else {
        return Err(GatewayError::bad_request(
            "Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and the end and an optional plus sign before the closing brace.",
        ));
    };
    let created = mutate(&app, &id, |api| {
        let parent = api
            .resources
            .get(&parent_id)
            .ok_or_else(resource_not_found)?;
        if parent
            .path_part
            .as_deref()
            .and_then(model::path_part_kind)
            == Some(PartKind::Greedy)
        {
            return Err(GatewayError::bad_request(format!(
                "Cannot create a child of a resource with a greedy path variable: {}",
                parent.path_part.as_deref().unwrap_or_default()
            )));
        }
        let parent_path = parent.path.clone();
        for sibling in api
            .resources
            .values()
            .filter(|r| r.parent_id.as_deref() == Some(parent_id.as_str()))
        {
            let sibling_part = sibling.path_part.as_deref().unwrap_or_default();
            if sibling_part == part {
                return Err(GatewayError::conflict(format!(
                    "Another resource with the same parent already has this name: {part}"
                )));
            }
            let sibling_is_variable = model::path_part_kind(sibling_part)
                .is_some_and(|k| k != PartKind::Literal);
            if kind != PartKind::Literal && sibling_is_variable {
                return Err(GatewayError::bad_request(format!(
                    "A sibling ({sibling_part}) of this resource already has a variable path part -- only one is allowed"
                )));
            }
        }
        let path = if parent_path == "/" {
            format!("/{part}")
        } else {
            format!("{parent_path}/{part}")
        };
        let resource = Resource {
            id: model::new_id(),
            parent_id: Some(parent_id.clone()),
            path_part: Some(part.clone()),
            path,
            methods: BTreeMap::new(),
        };
        api.resources.insert(resource.id.clone(), resource.clone());
        Ok(resource)
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &resource_json(&created, false),
    ))
}

async fn delete_resource(
    State(app): State<Arc<AppState>>,
    Path((id, resource)): Path<(String, String)>,
) -> GatewayResult {
    mutate(&app, &id, |api| {
        if !api.resources.contains_key(&resource) {
            return Err(resource_not_found());
        }
        if resource == api.root_resource_id {
            return Err(GatewayError::bad_request("Cannot delete the root resource"));
        }
        // Deleting a resource deletes its whole subtree.
        let mut doomed = vec![resource.clone()];
        let mut at = 0;
        while at < doomed.len() {
            let parent = doomed[at].clone();
            doomed.extend(
                api.resources
                    .values()
                    .filter(|r| r.parent_id.as_deref() == Some(parent.as_str()))
                    .map(|r| r.id.clone()),
            );
            at += 1;
        }
        for id in doomed {
            api.resources.remove(&id);
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// Methods and integrations.

fn method_not_found() -> GatewayError {
    GatewayError::not_found("Invalid Method identifier specified")
}

fn resource_mut<'a>(api: &'a mut RestApi, id: &str) -> Result<&'a mut Resource, GatewayError> {
    api.resources.get_mut(id).ok_or_else(resource_not_found)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutMethodInput {
    authorization_type: Option<String>,
    authorizer_id: Option<String>,
    #[serde(default)]
    api_key_required: bool,
    #[serde(default)]
    request_parameters: BTreeMap<String, bool>,
    request_validator_id: Option<String>,
}

async fn put_method(
    State(app): State<Arc<AppState>>,
    Path((id, resource, http_method)): Path<(String, String, String)>,
    body: Bytes,
) -> GatewayResult {
    let input: PutMethodInput = parse_body(&body)?;
    if !model::HTTP_METHODS.contains(&http_method.as_str()) {
        return Err(GatewayError::bad_request(
            "Invalid HttpMethod specified. Valid options are GET,PUT,POST,DELETE,PATCH,OPTIONS,HEAD,ANY",
        ));
    }
    let Some(authorization_type) = input.authorization_type else {
        return Err(GatewayError::bad_request(
            "Invalid authorization type specified: null",
        ));
    };
    if !["NONE", "AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS"].contains(&authorization_type.as_str()) {
        return Err(GatewayError::bad_request(format!(
            "Invalid authorization type specified. Valid options are NONE,AWS_IAM,CUSTOM,COGNITO_USER_POOLS: {authorization_type}"
        )));
    }
    for name in input.request_parameters.keys() {
        let ok = ["header.", "querystring.", "path."].iter().any(|kind| {
            name.strip_prefix("method.request.")
                .and_then(|n| n.strip_prefix(kind))
                .is_some_and(|n| !n.is_empty())
        });
        if !ok {
            return Err(GatewayError::bad_request(format!(
                "Invalid request parameter name specified: {name}"
            )));
        }
    }
    let method = mutate(&app, &id, |api| {
        if authorization_type == "CUSTOM" {
            let known = input
                .authorizer_id
                .as_ref()
                .is_some_and(|a| api.authorizers.contains_key(a));
            if !known {
                return Err(GatewayError::bad_request("Invalid authorizer ID specified"));
            }
        }
        if let Some(validator) = &input.request_validator_id
            && !api.validators.contains_key(validator)
        {
            return Err(GatewayError::bad_request(
                "Invalid Request Validator identifier specified",
            ));
        }
        let resource = resource_mut(api, &resource)?;
        if resource.methods.contains_key(&http_method) {
            return Err(GatewayError::conflict(
                "Method already exists for this resource",
            ));
        }
        let method = Method {
            http_method: http_method.clone(),
            authorization_type: authorization_type.clone(),
            authorizer_id: input.authorizer_id.clone(),
            api_key_required: input.api_key_required,
            request_parameters: input.request_parameters.clone(),
            integration: None,
            request_validator_id: input.request_validator_id.clone(),
        };
        resource.methods.insert(http_method.clone(), method.clone());
        Ok(method)
    })
    .await?;
    Ok(json_response(StatusCode::CREATED, &method_json(&method)))
}

fn find_method<'a>(
    api: &'a RestApi,
    resource: &str,
    http_method: &str,
) -> Result<&'a Method, GatewayError> {
    api.resources
        .get(resource)
        .ok_or_else(resource_not_found)?
        .methods
        .get(http_method)
        .ok_or_else(method_not_found)
}

async fn get_method(
    State(app): State<Arc<AppState>>,
    Path((id, resource, http_method)): Path<(String, String, String)>,
) -> GatewayResult {
    let api = lookup(&app, &id)?;
    let method = find_method(&api, &resource, &http_method)?;
    Ok(json_response(StatusCode::OK, &method_json(method)))
}

async fn delete_method(
    State(app): State<Arc<AppState>>,
    Path((id, resource, http_method)): Path<(String, String, String)>,
) -> GatewayResult {
    mutate(&app, &id, |api| {
        resource_mut(api, &resource)?
            .methods
            .remove(&http_method)
            .map(|_| ())
            .ok_or_else(method_not_found)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutIntegrationInput {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// The SDK's `integration_http_method`, which travels as `httpMethod`.
    #[serde(rename = "httpMethod")]
    integration_http_method: Option<String>,
    uri: Option<String>,
    #[serde(default)]
    request_parameters: BTreeMap<String, String>,
    passthrough_behavior: Option<String>,
    timeout_in_millis: Option<i64>,
}

const INTEGRATION_TYPES: &[&str] = &["HTTP", "AWS", "MOCK", "HTTP_PROXY", "AWS_PROXY"];

async fn put_integration(
    State(app): State<Arc<AppState>>,
    Path((id, resource, http_method)): Path<(String, String, String)>,
    body: Bytes,
) -> GatewayResult {
    let input: PutIntegrationInput = parse_body(&body)?;
    let kind = match input.kind {
        Some(kind) if INTEGRATION_TYPES.contains(&kind.as_str()) => kind,
        other => {
            return Err(GatewayError::bad_request(format!(
                "Invalid integration type specified. Valid options are HTTP,AWS,MOCK,HTTP_PROXY,AWS_PROXY: {}",
                other.unwrap_or_else(|| "null".into())
            )));
        }
    };
    if kind != "MOCK" {
        if input
            .integration_http_method
            .as_deref()
            .unwrap_or("")
            .is_empty()
        {
            return Err(GatewayError::bad_request(
                "Enumeration value for HttpMethod must be non-empty",
            ));
        }
        if input.uri.as_deref().unwrap_or("").is_empty() {
            return Err(GatewayError::bad_request(
                "Invalid ARN specified in the request",
            ));
        }
    }
    if kind == "AWS_PROXY"
        && input
            .uri
            .as_deref()
            .and_then(proxy::function_of_uri)
            .is_none()
    {
        return Err(GatewayError::bad_request(
            "Invalid ARN specified in the request: the emulator's AWS_PROXY integrations invoke Lambda functions (arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{functionArn}/invocations)",
        ));
    }
    let timeout = input.timeout_in_millis.unwrap_or(29_000);
    if !(50..=29_000).contains(&timeout) {
        return Err(GatewayError::bad_request(
            "Timeout should be between 50 ms and 29000 ms",
        ));
    }
    let integration = mutate(&app, &id, |api| {
        let resource = resource_mut(api, &resource)?;
        // API Gateway names an integration's cache namespace after its resource.
        let cache_namespace = resource.id.clone();
        let method = resource
            .methods
            .get_mut(&http_method)
            .ok_or_else(method_not_found)?;
        let invalid: Vec<String> = input
            .request_parameters
            .iter()
            .filter_map(|(target, source)| {
                model::check_mapping(target, source, &method.request_parameters).err()
            })
            .collect();
        if !invalid.is_empty() {
            return Err(GatewayError::bad_request(format!(
                "Invalid mapping expression specified: Validation Result: warnings : [], errors : [Invalid mapping expression specified: {}]",
                invalid.join(", ")
            )));
        }
        let integration = Integration {
            kind: kind.clone(),
            http_method: input.integration_http_method.clone(),
            uri: input.uri.clone(),
            request_parameters: input.request_parameters.clone(),
            passthrough_behavior: input
                .passthrough_behavior
                .clone()
                .unwrap_or_else(|| "WHEN_NO_MATCH".into()),
            timeout_in_millis: timeout,
            cache_namespace,
        };
        method.integration = Some(integration.clone());
        Ok(integration)
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &integration_json(&integration),
    ))
}

async fn get_integration(
    State(app): State<Arc<AppState>>,
    Path((id, resource, http_method)): Path<(String, String, String)>,
) -> GatewayResult {
    let api = lookup(&app, &id)?;
    let method = find_method(&api, &resource, &http_method)?;
    let integration = method
        .integration
        .as_ref()
        .ok_or_else(|| GatewayError::not_found("No integration defined for method"))?;
    Ok(json_response(
        StatusCode::OK,
        &integration_json(integration),
    ))
}

async fn delete_integration(
    State(app): State<Arc<AppState>>,
    Path((id, resource, http_method)): Path<(String, String, String)>,
) -> GatewayResult {
    mutate(&app, &id, |api| {
        let method = resource_mut(api, &resource)?
            .methods
            .get_mut(&http_method)
            .ok_or_else(method_not_found)?;
        method
            .integration
            .take()
            .map(|_| ())
            .ok_or_else(|| GatewayError::not_found("No integration defined for method"))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// Deployments and stages.

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateDeploymentInput {
    stage_name: Option<String>,
    stage_description: Option<String>,
    description: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

fn is_valid_stage_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn create_deployment(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> GatewayResult {
    let input: CreateDeploymentInput = parse_body(&body)?;
    if let Some(stage) = &input.stage_name
        && !is_valid_stage_name(stage)
    {
        return Err(GatewayError::bad_request(
            "Stage name only allows a-zA-Z0-9_-",
        ));
    }
    let deployment = mutate(&app, &id, |api| {
        let methods: Vec<&Method> = api
            .resources
            .values()
            .flat_map(|r| r.methods.values())
            .collect();
        if methods.is_empty() {
            return Err(GatewayError::bad_request(
                "The REST API doesn't contain any methods",
            ));
        }
        if methods.iter().any(|m| m.integration.is_none()) {
            return Err(GatewayError::bad_request(
                "No integration defined for method",
            ));
        }
        let now = now_secs();
        let deployment = Deployment {
            id: model::new_id(),
            description: input.description.clone(),
            created_date: now,
            root_resource_id: api.root_resource_id.clone(),
            resources: api.resources.clone(),
            authorizers: api.authorizers.clone(),
            validators: api.validators.clone(),
        };
        if let Some(stage_name) = &input.stage_name {
            let stage = api
                .stages
                .entry(stage_name.clone())
                .or_insert_with(|| Stage {
                    stage_name: stage_name.clone(),
                    deployment_id: String::new(),
                    description: input.stage_description.clone(),
                    created_date: now,
                    last_updated_date: now,
                    variables: BTreeMap::new(),
                });
            stage.deployment_id = deployment.id.clone();
            stage.last_updated_date = now;
            stage.variables.extend(input.variables.clone());
        }
        api.deployments.push(deployment.clone());
        Ok(deployment)
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &deployment_json(&deployment),
    ))
}

async fn get_deployments(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> GatewayResult {
    let query = query_pairs(query.as_deref());
    let api = lookup(&app, &id)?;
    let items = api.deployments.iter().map(deployment_json).collect();
    Ok(json_response(StatusCode::OK, &page(items, &query)?))
}

fn stage_not_found() -> GatewayError {
    GatewayError::not_found("Invalid stage identifier specified")
}

async fn get_stages(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> GatewayResult {
    let api = lookup(&app, &id)?;
    let items: Vec<Value> = api.stages.values().map(stage_json).collect();
    Ok(json_response(StatusCode::OK, &json!({ "item": items })))
}

async fn get_stage(
    State(app): State<Arc<AppState>>,
    Path((id, stage)): Path<(String, String)>,
) -> GatewayResult {
    let api = lookup(&app, &id)?;
    let stage = api.stages.get(&stage).ok_or_else(stage_not_found)?;
    Ok(json_response(StatusCode::OK, &stage_json(stage)))
}

async fn delete_stage(
    State(app): State<Arc<AppState>>,
    Path((id, stage)): Path<(String, String)>,
) -> GatewayResult {
    mutate(&app, &id, |api| {
        api.stages
            .remove(&stage)
            .map(|_| ())
            .ok_or_else(stage_not_found)
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// Authorizers.

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateAuthorizerInput {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    authorizer_uri: Option<String>,
    identity_source: Option<String>,
    authorizer_result_ttl_in_seconds: Option<i64>,
}

async fn create_authorizer(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> GatewayResult {
    let input: CreateAuthorizerInput = parse_body(&body)?;
    let Some(name) = input.name.filter(|n| !n.is_empty()) else {
        return Err(GatewayError::bad_request(
            "Invalid authorizer name specified",
        ));
    };
    let kind = match input.kind.as_deref() {
        Some(kind @ ("TOKEN" | "REQUEST" | "COGNITO_USER_POOLS")) => kind.to_string(),
        other => {
            return Err(GatewayError::bad_request(format!(
                "Invalid authorizer type specified. Valid options are TOKEN,REQUEST,COGNITO_USER_POOLS: {}",
                other.unwrap_or("null")
            )));
        }
    };
    if kind != "COGNITO_USER_POOLS"
        && input
            .authorizer_uri
            .as_deref()
            .and_then(proxy::function_of_uri)
            .is_none()
    {
        return Err(GatewayError::bad_request(
            "Invalid Authorizer URI specified: it must be a Lambda function invocation URI",
        ));
    }
    let authorizer = Authorizer {
        id: model::new_id(),
        name,
        kind,
        authorizer_uri: input.authorizer_uri,
        identity_source: input.identity_source,
        authorizer_result_ttl_in_seconds: input.authorizer_result_ttl_in_seconds,
    };
    let stored = authorizer.clone();
    mutate(&app, &id, move |api| {
        api.authorizers.insert(stored.id.clone(), stored);
        Ok(())
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &authorizer_json(&authorizer),
    ))
}

async fn get_authorizers(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> GatewayResult {
    let query = query_pairs(query.as_deref());
    let api = lookup(&app, &id)?;
    let items = api.authorizers.values().map(authorizer_json).collect();
    Ok(json_response(StatusCode::OK, &page(items, &query)?))
}

fn authorizer_not_found() -> GatewayError {
    GatewayError::not_found("Invalid Authorizer identifier specified")
}

async fn get_authorizer(
    State(app): State<Arc<AppState>>,
    Path((id, authorizer)): Path<(String, String)>,
) -> GatewayResult {
    let api = lookup(&app, &id)?;
    let authorizer = api
        .authorizers
        .get(&authorizer)
        .ok_or_else(authorizer_not_found)?;
    Ok(json_response(StatusCode::OK, &authorizer_json(authorizer)))
}

async fn delete_authorizer(
    State(app): State<Arc<AppState>>,
    Path((id, authorizer)): Path<(String, String)>,
) -> GatewayResult {
    mutate(&app, &id, |api| {
        api.authorizers
            .remove(&authorizer)
            .map(|_| ())
            .ok_or_else(authorizer_not_found)
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// Request validators.

fn validator_json(validator: &RequestValidator) -> Value {
    json!({
        "id": validator.id,
        "name": validator.name,
        "validateRequestParameters": validator.validate_request_parameters,
        "validateRequestBody": validator.validate_request_body,
    })
}

fn validator_not_found() -> GatewayError {
    GatewayError::not_found("Invalid Request Validator identifier specified")
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequestValidatorInput {
    name: Option<String>,
    #[serde(default)]
    validate_request_parameters: bool,
    #[serde(default)]
    validate_request_body: bool,
}

async fn create_request_validator(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> GatewayResult {
    let input: CreateRequestValidatorInput = parse_body(&body)?;
    let validator = RequestValidator {
        id: model::new_id(),
        // API Gateway lets the name be left out; it is then empty.
        name: input.name.unwrap_or_default(),
        validate_request_parameters: input.validate_request_parameters,
        validate_request_body: input.validate_request_body,
    };
    let stored = validator.clone();
    mutate(&app, &id, move |api| {
        if api
            .validators
            .values()
            .any(|v| v.name == stored.name && !v.name.is_empty())
        {
            return Err(GatewayError::conflict(format!(
                "Validator {} already exists for the given RestApi",
                stored.name
            )));
        }
        api.validators.insert(stored.id.clone(), stored);
        Ok(())
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &validator_json(&validator),
    ))
}

async fn get_request_validators(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> GatewayResult {
    let query = query_pairs(query.as_deref());
    let api = lookup(&app, &id)?;
    let items = api.validators.values().map(validator_json).collect();
    Ok(json_response(StatusCode::OK, &page(items, &query)?))
}

async fn get_request_validator(
    State(app): State<Arc<AppState>>,
    Path((id, validator)): Path<(String, String)>,
) -> GatewayResult {
    let api = lookup(&app, &id)?;
    let validator = api
        .validators
        .get(&validator)
        .ok_or_else(validator_not_found)?;
    Ok(json_response(StatusCode::OK, &validator_json(validator)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatchInput {
    #[serde(default)]
    patch_operations: Vec<PatchOperation>,
}

#[derive(Debug, Default, Deserialize)]
struct PatchOperation {
    op: Option<String>,
    path: Option<String>,
    value: Option<String>,
}

/// UpdateRequestValidator: `replace` of `/name`, `/validateRequestParameters` or
/// `/validateRequestBody`.
async fn update_request_validator(
    State(app): State<Arc<AppState>>,
    Path((id, validator)): Path<(String, String)>,
    body: Bytes,
) -> GatewayResult {
    let input: PatchInput = parse_body(&body)?;
    let updated = mutate(&app, &id, |api| {
        let v = api.validators.get_mut(&validator).ok_or_else(validator_not_found)?;
        for op in &input.patch_operations {
            let value = op.value.clone().unwrap_or_default();
            let flag = || match value.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(GatewayError::bad_request(format!(
                    "Invalid boolean value specified: {other}"
                ))),
            };
            match (op.op.as_deref(), op.path.as_deref()) {
                (Some("replace"), Some("/name")) => v.name = value.clone(),
                (Some("replace"), Some("/validateRequestParameters")) => {
                    v.validate_request_parameters = flag()?;
                }
                (Some("replace"), Some("/validateRequestBody")) => {
                    v.validate_request_body = flag()?;
                }
                (op, path) => {
                    return Err(GatewayError::bad_request(format!(
                        "Invalid patch operation specified. Must be one of: [replace] on /name, /validateRequestParameters or /validateRequestBody; got {} {}",
                        op.unwrap_or("null"),
                        path.unwrap_or("null")
                    )));
                }
            }
        }
        Ok(v.clone())
    })
    .await?;
    Ok(json_response(StatusCode::OK, &validator_json(&updated)))
}

async fn delete_request_validator(
    State(app): State<Arc<AppState>>,
    Path((id, validator)): Path<(String, String)>,
) -> GatewayResult {
    mutate(&app, &id, |api| {
        let in_use = api
            .resources
            .values()
            .flat_map(|r| r.methods.values())
            .any(|m| m.request_validator_id.as_deref() == Some(validator.as_str()));
        if in_use {
            return Err(GatewayError::conflict(
                "Cannot delete request validator because it is in use by a method",
            ));
        }
        api.validators
            .remove(&validator)
            .map(|_| ())
            .ok_or_else(validator_not_found)
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// Tags.

/// The API id of `arn:aws:apigateway:{region}::/restapis/{id}`.
fn api_of_arn<'a>(app: &AppState, arn: &'a str) -> Result<&'a str, GatewayError> {
    let prefix = format!("arn:aws:apigateway:{}::/restapis/", app.config.region);
    arn.strip_prefix(&prefix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            GatewayError::bad_request(format!(
                "Invalid resource ARN specified (the emulator tags REST APIs, {prefix}{{id}}): {arn}"
            ))
        })
}

async fn get_tags(State(app): State<Arc<AppState>>, Path(arn): Path<String>) -> GatewayResult {
    let api = lookup(&app, api_of_arn(&app, &arn)?)?;
    Ok(json_response(StatusCode::OK, &json!({ "tags": api.tags })))
}

#[derive(Debug, Default, Deserialize)]
struct TagResourceInput {
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

async fn tag_resource(
    State(app): State<Arc<AppState>>,
    Path(arn): Path<String>,
    body: Bytes,
) -> GatewayResult {
    let input: TagResourceInput = parse_body(&body)?;
    let id = api_of_arn(&app, &arn)?.to_string();
    mutate(&app, &id, |api| {
        api.tags.extend(input.tags);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn untag_resource(
    State(app): State<Arc<AppState>>,
    Path(arn): Path<String>,
    RawQuery(query): RawQuery,
) -> GatewayResult {
    let keys: Vec<String> = query_pairs(query.as_deref())
        .into_iter()
        .filter(|(k, _)| k == "tagKeys")
        .map(|(_, v)| v)
        .collect();
    let id = api_of_arn(&app, &arn)?.to_string();
    mutate(&app, &id, |api| {
        for key in &keys {
            api.tags.remove(key);
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
