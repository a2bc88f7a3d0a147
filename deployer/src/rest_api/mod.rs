//! REST APIs (API Gateway v1) in front of the functions: the stack's declaration and its
//! validation, the desired and observed API, and the pure diff the planner makes between them.
//! Reading an API is in `observe.rs`, the calls that change one in `apply.rs`.
//!
//! A route to a per-tenant function maps the caller's tenant (a header, a query parameter or a
//! path parameter) onto the `X-Amz-Tenant-Id` integration header, which Lambda reads as the
//! invoke's tenant id. Only REST APIs can do that: HTTP APIs (v2) cannot set the header.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::change::{Action, Planned, ResourceKind};
use crate::error::StackError;
use crate::function::{Function, Tenancy};
use crate::names::{self, TAG_APP, TAG_LOGICAL, TAG_STAGE};

mod apply;
mod observe;

pub(crate) use apply::{apply, delete, remove_statement};
pub(crate) use observe::observe;

/// The integration request header Lambda takes the tenant id of an invoke from.
pub const TENANT_HEADER: &str = "X-Amz-Tenant-Id";
/// The header callers send their tenant in unless the stack says otherwise.
pub const DEFAULT_TENANT_HEADER: &str = "x-tenant-id";
/// The HTTP methods a route may use; `ANY` matches every method.
pub const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];
/// The integration type of every route: the request is handed to Lambda as a proxy event.
pub const AWS_PROXY: &str = "AWS_PROXY";
/// Lambda's Invoke is a POST, whatever the method of the route.
pub const INTEGRATION_METHOD: &str = "POST";
/// The service principal a function's resource policy lets invoke it.
pub const APIGATEWAY_PRINCIPAL: &str = "apigateway.amazonaws.com";
/// The stage variable every deployment records the digest of its routes in, so a deploy
/// interrupted between changing routes and deploying them is finished by the next one.
pub const ROUTES_VARIABLE: &str = "deployerRoutes";
/// Where a TOKEN authorizer reads the caller's token from.
pub const AUTHORIZER_IDENTITY_SOURCE: &str = "method.request.header.Authorization";
/// The only authorizer type the deployer creates: the token is handed to the function as is.
pub const TOKEN: &str = "TOKEN";
/// The authorization type of a method guarded by a Lambda authorizer.
pub const CUSTOM: &str = "CUSTOM";
/// The name of the request validator routes whose tenant is a required request parameter get,
/// so API Gateway refuses a request without it before invoking anything.
pub const VALIDATOR_NAME: &str = "deployer-tenant-parameters";

/// Where a request's tenant comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TenantSource {
    /// A request header, such as `x-tenant-id`.
    Header(&'static str),
    /// A query string parameter.
    Query(&'static str),
    /// A path parameter, which every route of the API must have (`/states/{state}/...`).
    Path(&'static str),
    /// A value of the `context` a TOKEN Lambda authorizer returns. The authorizer is a function
    /// of the stack; it runs without a tenant (it is what finds the tenant), so it must not be
    /// per-tenant.
    Authorizer {
        function: &'static str,
        context_key: &'static str,
    },
}

impl Default for TenantSource {
    fn default() -> Self {
        TenantSource::Header(DEFAULT_TENANT_HEADER)
    }
}

impl TenantSource {
    /// The method request parameter API Gateway must require for the mapping to work, or `None`
    /// when the value comes from an authorizer's context.
    pub fn method_parameter(&self) -> Option<String> {
        match self {
            TenantSource::Header(name) => Some(format!("method.request.header.{name}")),
            TenantSource::Query(name) => Some(format!("method.request.querystring.{name}")),
            TenantSource::Path(name) => Some(format!("method.request.path.{name}")),
            TenantSource::Authorizer { .. } => None,
        }
    }

    /// The expression the integration copies into `X-Amz-Tenant-Id`.
    pub fn integration_source(&self) -> String {
        match self {
            TenantSource::Authorizer { context_key, .. } => {
                format!("context.authorizer.{context_key}")
            }
            _ => self.method_parameter().unwrap_or_default(),
        }
    }
}

/// The kind of API Gateway API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ApiKind {
    /// API Gateway v1: integrations can set request headers, so tenants can be mapped.
    Rest,
    /// API Gateway v2. Declared only to be refused: it cannot set `X-Amz-Tenant-Id`.
    Http,
}

/// One route: a method on a path, handled by one function of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
    /// The function's logical name.
    pub function: String,
    /// Where this route's tenant comes from, when not from the API's
    /// [`RestApi::tenant_from`]: public routes can take a header while staff routes of the same
    /// API take it from a token authorizer.
    pub tenant: Option<TenantSource>,
}

impl Route {
    /// The tenant source of this route within `api`.
    pub fn tenant_source<'a>(&'a self, api: &'a RestApi) -> &'a TenantSource {
        self.tenant.as_ref().unwrap_or(&api.tenant)
    }
}

/// An API of the app, one per stage, named `{app}-{stage}-{logical}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestApi {
    pub logical: String,
    pub kind: ApiKind,
    pub tenant: TenantSource,
    pub routes: Vec<Route>,
}

impl RestApi {
    /// A REST API taking the tenant from the `x-tenant-id` header.
    pub fn new(logical: &str) -> Self {
        RestApi {
            logical: logical.to_string(),
            kind: ApiKind::Rest,
            tenant: TenantSource::default(),
            routes: Vec::new(),
        }
    }

    /// An HTTP API (v2). Validation refuses it: it cannot pass a tenant to a per-tenant
    /// function, and the deployer does not deploy HTTP APIs.
    pub fn http(logical: &str) -> Self {
        RestApi {
            kind: ApiKind::Http,
            ..RestApi::new(logical)
        }
    }

    pub fn tenant_from(mut self, source: TenantSource) -> Self {
        self.tenant = source;
        self
    }

    /// Adds a route; the method is upper-cased (`get` is `GET`).
    pub fn route(mut self, method: &str, path: &str, function: &str) -> Self {
        self.routes.push(Route {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            function: function.to_string(),
            tenant: None,
        });
        self
    }

    /// Adds a route whose tenant comes from `tenant` instead of the API's source, e.g. a staff
    /// route behind a token authorizer on an API whose public routes take a header:
    /// `.route_with_tenant("GET", "/messages", "messages", TenantSource::Authorizer { function:
    /// "authorizer", context_key: "tenantId" })`. An API has at most one authorizer function.
    pub fn route_with_tenant(
        mut self,
        method: &str,
        path: &str,
        function: &str,
        tenant: TenantSource,
    ) -> Self {
        self = self.route(method, path, function);
        if let Some(route) = self.routes.last_mut() {
            route.tenant = Some(tenant);
        }
        self
    }

    /// The API's token authorizer source, if the API or any route takes the tenant from one.
    pub fn authorizer_source(&self) -> Option<&TenantSource> {
        std::iter::once(&self.tenant)
            .chain(self.routes.iter().filter_map(|r| r.tenant.as_ref()))
            .find(|t| matches!(t, TenantSource::Authorizer { .. }))
    }
}

/// Why a route path is malformed, or `None` when API Gateway accepts it: `/`, or `/`-separated
/// non-empty segments that are literals or `{param}`, with a greedy `{param+}` only last.
pub fn path_problem(path: &str) -> Option<&'static str> {
    if path == "/" {
        return None;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Some("must start with `/`");
    };
    let segments: Vec<&str> = rest.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            return Some("has an empty segment (`//` or a trailing `/`)");
        }
        if let Some(inner) = segment.strip_prefix('{') {
            let Some(inner) = inner.strip_suffix('}') else {
                return Some("has a `{` without its `}`");
            };
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(name) => (name, true),
                None => (inner, false),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Some("has a parameter name other than letters, digits and `_`");
            }
            if greedy && i + 1 != segments.len() {
                return Some("has a greedy `{param+}` that is not the last segment");
            }
        } else if !segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | ':'))
        {
            return Some("has a segment with characters other than letters, digits and `-_.~:`");
        }
    }
    None
}

/// The names of a path's parameters (`/counties/{fips}` -> `fips`).
fn path_parameters(path: &str) -> BTreeSet<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|s| s.strip_suffix('+').unwrap_or(s))
        .collect()
}

fn is_valid_parameter_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks every API of the app, adding each problem to `errors`.
pub(crate) fn validate_rest_apis(
    apis: &[RestApi],
    functions: &[Function],
    errors: &mut Vec<StackError>,
) {
    let find_function = |logical: &str| functions.iter().find(|f| f.logical == logical);
    let declared = || functions.iter().map(|f| f.logical.clone()).collect();
    let mut seen = BTreeSet::new();
    for api in apis {
        let logical = &api.logical;
        if !seen.insert(logical.as_str()) {
            errors.push(StackError::DuplicateRestApi {
                logical: logical.clone(),
            });
            continue;
        }
        if !names::is_valid_name(logical) {
            errors.push(StackError::InvalidName {
                what: "rest api",
                value: logical.clone(),
            });
        }
        let mut sources: Vec<&TenantSource> = vec![&api.tenant];
        for r in &api.routes {
            if let Some(t) = &r.tenant
                && !sources.contains(&t)
            {
                sources.push(t);
            }
        }
        let authorizers: BTreeSet<&str> = sources
            .iter()
            .filter_map(|t| match t {
                TenantSource::Authorizer { function, .. } => Some(*function),
                _ => None,
            })
            .collect();
        if authorizers.len() > 1 {
            errors.push(StackError::AuthorizerFunctionsDiffer {
                api: logical.clone(),
                functions: authorizers.iter().map(|f| f.to_string()).collect(),
            });
        }
        for source in sources {
            match source {
                TenantSource::Authorizer {
                    function,
                    context_key,
                } => {
                    match find_function(function) {
                        None => errors.push(StackError::AuthorizerUnknownFunction {
                            api: logical.clone(),
                            function: function.to_string(),
                            declared: declared(),
                        }),
                        // API Gateway invokes the authorizer without X-Amz-Tenant-Id, which a
                        // per-tenant function refuses.
                        Some(f) if f.tenancy == Tenancy::PerTenant => {
                            errors.push(StackError::AuthorizerPerTenant {
                                api: logical.clone(),
                                function: function.to_string(),
                            });
                        }
                        Some(_) => {}
                    }
                    if !is_valid_parameter_name(context_key) {
                        errors.push(StackError::InvalidTenantParameter {
                            api: logical.clone(),
                            name: context_key.to_string(),
                        });
                    }
                }
                TenantSource::Header(n) | TenantSource::Query(n) | TenantSource::Path(n)
                    if !is_valid_parameter_name(n) =>
                {
                    errors.push(StackError::InvalidTenantParameter {
                        api: logical.clone(),
                        name: n.to_string(),
                    });
                }
                _ => {}
            }
        }
        if api.kind == ApiKind::Http {
            let per_tenant: BTreeSet<&str> = api
                .routes
                .iter()
                .filter(|r| {
                    find_function(&r.function).is_some_and(|f| f.tenancy == Tenancy::PerTenant)
                })
                .map(|r| r.function.as_str())
                .collect();
            if per_tenant.is_empty() {
                errors.push(StackError::HttpApiUnsupported {
                    api: logical.clone(),
                });
            }
            for function in per_tenant {
                errors.push(StackError::HttpApiPerTenant {
                    api: logical.clone(),
                    function: function.to_string(),
                });
            }
        }
        let mut routes = BTreeSet::new();
        for r in &api.routes {
            if !METHODS.contains(&r.method.as_str()) {
                errors.push(StackError::InvalidRouteMethod {
                    api: logical.clone(),
                    method: r.method.clone(),
                });
            }
            if let Some(reason) = path_problem(&r.path) {
                errors.push(StackError::InvalidRoutePath {
                    api: logical.clone(),
                    path: r.path.clone(),
                    reason,
                });
            }
            if !routes.insert((r.method.as_str(), r.path.as_str())) {
                errors.push(StackError::DuplicateRoute {
                    api: logical.clone(),
                    method: r.method.clone(),
                    path: r.path.clone(),
                });
            }
            if find_function(&r.function).is_none() {
                errors.push(StackError::RouteUnknownFunction {
                    api: logical.clone(),
                    route: format!("{} {}", r.method, r.path),
                    function: r.function.clone(),
                    declared: declared(),
                });
            }
            if let TenantSource::Path(parameter) = r.tenant_source(api)
                && !path_parameters(&r.path).contains(parameter)
            {
                errors.push(StackError::TenantPathParameter {
                    api: logical.clone(),
                    parameter: parameter.to_string(),
                    path: r.path.clone(),
                });
            }
        }
    }
}

/// A REST API as it should be deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredRestApi {
    pub logical: String,
    pub name: String,
    /// The API Gateway stage deployments go to; named like the deployer's stage.
    pub stage: String,
    pub tags: BTreeMap<String, String>,
    pub routes: Vec<DesiredRoute>,
    /// The TOKEN authorizer the tenant comes from, when the API takes it from one.
    pub authorizer: Option<DesiredAuthorizer>,
    /// The request validator of the routes whose tenant is a required request parameter
    /// ([`VALIDATOR_NAME`]), when the API has such routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validator: Option<String>,
}

/// A TOKEN Lambda authorizer as it should be deployed. Like a route, it names its function
/// logically; apply resolves the invocation URI once the function exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredAuthorizer {
    /// `{api physical name}-tenant`.
    pub name: String,
    pub function: String,
    pub identity_source: String,
}

impl DesiredRestApi {
    pub fn find_route(&self, method: &str, path: &str) -> Option<&DesiredRoute> {
        self.routes
            .iter()
            .find(|r| r.method == method && r.path == path)
    }
}

/// One route as it should be deployed. The function's ARN is only known once it exists, so the
/// route names the function logically and apply resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredRoute {
    pub method: String,
    pub path: String,
    pub function: String,
    /// PutMethod's request parameters: `method.request.header.x-tenant-id` -> required.
    pub method_parameters: BTreeMap<String, bool>,
    /// PutIntegration's request parameters:
    /// `integration.request.header.X-Amz-Tenant-Id` -> `method.request.header.x-tenant-id`.
    pub integration_parameters: BTreeMap<String, String>,
    /// Whether the method is guarded by the API's authorizer (authorization type CUSTOM).
    pub authorized: bool,
    /// Whether the method has the API's request validator, which refuses a request missing a
    /// required parameter (the tenant) at the gateway.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub validated: bool,
}

/// The tags of every API of a stage.
pub fn rest_api_tags(app: &str, stage: &str, logical: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_APP.to_string(), app.to_string()),
        (TAG_STAGE.to_string(), stage.to_string()),
        (TAG_LOGICAL.to_string(), logical.to_string()),
    ])
}

/// Resolves the app's APIs for one stage. Only routes to per-tenant functions carry the tenant
/// mapping: Lambda refuses a tenant id on a function without tenant isolation.
pub fn desired_rest_apis(
    app: &str,
    stage: &str,
    apis: &[RestApi],
    functions: &[Function],
) -> Vec<DesiredRestApi> {
    let find_function = |logical: &str| functions.iter().find(|f| f.logical == logical);
    apis.iter()
        .map(|api| DesiredRestApi {
            logical: api.logical.clone(),
            name: names::rest_api_name(app, stage, &api.logical),
            authorizer: match api.authorizer_source() {
                Some(TenantSource::Authorizer { function, .. }) => Some(DesiredAuthorizer {
                    name: format!("{}-tenant", names::rest_api_name(app, stage, &api.logical)),
                    function: function.to_string(),
                    identity_source: AUTHORIZER_IDENTITY_SOURCE.to_string(),
                }),
                _ => None,
            },
            validator: api
                .routes
                .iter()
                .any(|r| {
                    r.tenant_source(api).method_parameter().is_some()
                        && find_function(&r.function)
                            .is_some_and(|f| f.tenancy == Tenancy::PerTenant)
                })
                .then(|| VALIDATOR_NAME.to_string()),
            stage: stage.to_string(),
            tags: rest_api_tags(app, stage, &api.logical),
            routes: api
                .routes
                .iter()
                .map(|r| {
                    let per_tenant =
                        find_function(&r.function).is_some_and(|f| f.tenancy == Tenancy::PerTenant);
                    let tenant = r.tenant_source(api);
                    let mut method_parameters = BTreeMap::new();
                    let mut integration_parameters = BTreeMap::new();
                    if per_tenant {
                        if let Some(p) = tenant.method_parameter() {
                            method_parameters.insert(p, true);
                        }
                        integration_parameters.insert(
                            format!("integration.request.header.{TENANT_HEADER}"),
                            tenant.integration_source(),
                        );
                    }
                    DesiredRoute {
                        method: r.method.clone(),
                        path: r.path.clone(),
                        function: r.function.clone(),
                        method_parameters,
                        integration_parameters,
                        // Every route of an authorized source goes through the authorizer,
                        // shared functions' too: it authenticates callers whatever the function.
                        authorized: matches!(tenant, TenantSource::Authorizer { .. }),
                        // A required tenant parameter is refused at the gateway when missing.
                        validated: per_tenant && tenant.method_parameter().is_some(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// A deployed API tagged with this app and stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualRestApi {
    pub id: String,
    pub name: String,
    /// From the `deployer:logical-id` tag; `None` if the tag is missing.
    pub logical: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Every resource, the root `/` included.
    pub resources: Vec<ActualResource>,
    /// Whether the API Gateway stage named like the deployer's stage exists, i.e. whether the
    /// API was ever deployed.
    pub stage_deployed: bool,
    /// The stage's [`ROUTES_VARIABLE`]: the digest of the routes it serves; `None` when the
    /// stage does not say.
    pub deployed_routes: Option<String>,
    /// The physical names of the stage's functions whose resource policy lets this API invoke
    /// them.
    pub permitted: BTreeSet<String>,
    /// The API's authorizers, as GetAuthorizers reports them.
    pub authorizers: Vec<ActualAuthorizer>,
    /// The physical names of the stage's functions whose resource policy lets this API's
    /// authorizers invoke them ([`authorizer_source_arn`]).
    pub authorizer_permitted: BTreeSet<String>,
    /// The API's request validators, as GetRequestValidators reports them.
    pub validators: Vec<ActualValidator>,
}

/// A deployed request validator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ActualValidator {
    pub id: String,
    pub name: String,
    pub validate_parameters: bool,
}

/// A deployed authorizer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ActualAuthorizer {
    pub id: String,
    pub name: String,
    /// `TOKEN`, `REQUEST` or `COGNITO_USER_POOLS`.
    pub kind: String,
    pub authorizer_uri: String,
    pub identity_source: String,
}

impl ActualRestApi {
    pub fn find_resource(&self, path: &str) -> Option<&ActualResource> {
        self.resources.iter().find(|r| r.path == path)
    }
}

/// One resource (a path) of a deployed API and its methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualResource {
    pub id: String,
    pub path: String,
    /// HTTP method -> method.
    pub methods: BTreeMap<String, ActualMethod>,
}

/// A deployed method and its integration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ActualMethod {
    pub request_parameters: BTreeMap<String, bool>,
    /// `NONE`, `CUSTOM`, ...; empty when API Gateway does not say.
    pub authorization_type: String,
    pub authorizer_id: Option<String>,
    pub integration: Option<ActualIntegration>,
    /// The request validator the method uses, if any.
    pub request_validator_id: Option<String>,
}

/// A method's integration as API Gateway reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ActualIntegration {
    pub kind: String,
    pub http_method: String,
    pub uri: String,
    pub request_parameters: BTreeMap<String, String>,
}

/// A digest of everything a deployment publishes: each route's method, path, target function
/// (physical, after this plan) and parameters. Hex SHA-256, which stage variables accept.
pub fn routes_digest(d: &DesiredRestApi, functions: &BTreeMap<String, String>) -> String {
    use sha2::{Digest, Sha256};
    let routes: Vec<serde_json::Value> = d
        .routes
        .iter()
        .map(|r| {
            serde_json::json!([
                r.method,
                r.path,
                functions.get(&r.function).unwrap_or(&r.function),
                r.method_parameters,
                r.integration_parameters,
            ])
        })
        .collect();
    let mut routes = routes;
    // Only APIs with an authorizer add it (and which routes it guards), so the digests of APIs
    // without one stay what earlier deploys recorded and do not trigger a redeployment.
    if let Some(a) = &d.authorizer {
        routes.push(serde_json::json!([
            "authorizer",
            a.name,
            functions.get(&a.function).unwrap_or(&a.function),
            a.identity_source,
            d.routes.iter().map(|r| r.authorized).collect::<Vec<_>>(),
        ]));
    }
    // Likewise only APIs with a validator add which routes it checks.
    if let Some(v) = &d.validator {
        routes.push(serde_json::json!([
            "validator",
            v,
            d.routes.iter().map(|r| r.validated).collect::<Vec<_>>(),
        ]));
    }
    let digest = Sha256::digest(serde_json::Value::Array(routes).to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The integration URI of a Lambda proxy integration; the region is the function's own.
pub fn integration_uri(function_arn: &str) -> String {
    let region = arn_field(function_arn, 3);
    format!(
        "arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )
}

/// The function name inside a Lambda integration URI, or `None` for any other URI.
pub fn function_of_uri(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("/functions/")?;
    let arn = rest.strip_suffix("/invocations")?;
    let name = arn.split(':').nth(6)?;
    (!name.is_empty()).then_some(name)
}

/// One `:`-separated field of an ARN (3 is the region, 4 the account), or `""`.
pub fn arn_field(arn: &str, index: usize) -> &str {
    arn.split(':').nth(index).unwrap_or_default()
}

/// The execute-api ARN a function's permission is scoped to: every stage, method and path of
/// this one API. One statement per (function, API) keeps routes changing without touching the
/// function's policy, while no other API can invoke the function.
pub fn source_arn(region: &str, account: &str, api_id: &str) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/*/*/*")
}

/// The execute-api ARN an authorizer function's permission is scoped to: every authorizer of
/// this one API (their ids change when they are replaced).
pub fn authorizer_source_arn(region: &str, account: &str, api_id: &str) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/authorizers/*")
}

/// The statement id of the permission letting API `api_id`'s authorizers invoke a function;
/// distinct from [`statement_id`], as the same function may also serve routes.
pub fn authorizer_statement_id(api_id: &str) -> String {
    format!("deployer-apigateway-{api_id}-authorizer")
}

/// The statement id of the permission letting API `api_id` invoke a function. It names the API
/// id, so a recreated API gets its own statement instead of colliding with a stale one.
pub fn statement_id(api_id: &str) -> String {
    format!("deployer-apigateway-{api_id}")
}

/// The prefix of every statement id the deployer puts on a function for an API.
pub const STATEMENT_PREFIX: &str = "deployer-apigateway-";

/// The API a deployer statement id names ([`statement_id`] or [`authorizer_statement_id`]), or
/// `None` for a statement the deployer did not make.
pub fn statement_api(sid: &str) -> Option<&str> {
    let rest = sid.strip_prefix(STATEMENT_PREFIX)?;
    let api = rest.strip_suffix("-authorizer").unwrap_or(rest);
    (!api.is_empty()).then_some(api)
}

/// The statement ids of a Lambda resource policy (GetPolicy's JSON).
pub fn policy_statement_ids(policy: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(policy) else {
        return Vec::new();
    };
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(s) => s.clone(),
        s @ serde_json::Value::Object(_) => vec![s.clone()],
        _ => Vec::new(),
    };
    statements
        .iter()
        .filter_map(|s| s["Sid"].as_str().map(str::to_string))
        .collect()
}

/// A deployer statement on one of the stage's functions, naming the API it lets invoke it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ActualStatement {
    /// The function's physical name.
    pub function: String,
    pub statement_id: String,
    /// The API id the statement names.
    pub api_id: String,
}

/// Whether a Lambda resource policy (GetPolicy's JSON) lets `source_arn` invoke the function.
pub fn policy_permits(policy: &str, source_arn: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(policy) else {
        return false;
    };
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(s) => s.clone(),
        s @ serde_json::Value::Object(_) => vec![s.clone()],
        _ => Vec::new(),
    };
    statements.iter().any(|s| {
        let principal = &s["Principal"];
        let service = principal["Service"].as_str().or(principal.as_str());
        let condition = &s["Condition"]["ArnLike"]["AWS:SourceArn"];
        s["Effect"].as_str() != Some("Deny")
            && service == Some(APIGATEWAY_PRINCIPAL)
            && condition.as_str() == Some(source_arn)
    })
}

/// The URL clients call: AWS's regional execute-api host, or an emulator's user-request path
/// when the stage runs against an endpoint override.
pub fn invoke_url(api_id: &str, region: &str, stage: &str, endpoint: Option<&str>) -> String {
    match endpoint {
        Some(endpoint) => format!(
            "{}/restapis/{api_id}/{stage}/_user_request_",
            endpoint.trim_end_matches('/')
        ),
        None => format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"),
    }
}

/// What apply sends for an API change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiStep {
    /// The API's logical name.
    pub api: String,
    /// The API's id when it exists already; `None` when this run creates it.
    pub api_id: Option<String>,
    pub target: ApiTarget,
}

/// The part of an API a change is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ApiTarget {
    /// The API itself, with its existing resources (path -> id) that routes build on, and the
    /// tags it is created with.
    Api {
        resources: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    },
    Route {
        method: String,
        path: String,
        /// The physical function the route targets after this run (create and update).
        function: Option<String>,
        /// On an update: the method's request parameters changed, so the method is put again
        /// (API Gateway refuses PutMethod on an existing method, so it is deleted first).
        put_method: bool,
        /// The existing resource of the path, if any.
        resource_id: Option<String>,
        /// On a delete: the topmost resource no route needs any more, deleted with everything
        /// under it instead of deleting the method alone.
        delete_resource: Option<String>,
        /// On a create or update: the method and integration to put.
        route: Option<DesiredRoute>,
    },
    /// AddPermission on a function for this API.
    Permission { function: String },
    /// The API's authorizer. On a create or update, `function` is the physical function it
    /// invokes; `id` is the authorizer kept (no-op) or, on an update or delete, the one that goes
    /// once the routes no longer use it.
    Authorizer {
        name: String,
        function: Option<String>,
        identity_source: String,
        id: Option<String>,
    },
    /// AddPermission on the authorizer's function for this API's authorizers.
    AuthorizerPermission { function: String },
    /// RemovePermission of a statement on a function that stays, naming an API that no longer
    /// exists or that this run deletes (after that deletion).
    Statement {
        function: String,
        statement_id: String,
    },
    /// The API's request validator (`validateRequestParameters`): `id` is the one kept (no-op)
    /// or, on an update, the one whose settings are corrected in place.
    Validator { name: String, id: Option<String> },
    /// CreateDeployment to the stage, which publishes the routes; `routes` is their digest,
    /// recorded in the stage's [`ROUTES_VARIABLE`].
    Deployment { stage: String, routes: String },
}

/// A planned API change and what apply needs to carry it out.
pub type ApiChange = Planned<ApiStep>;

fn api_change(
    kind: ResourceKind,
    resource: String,
    step: ApiStep,
    action: Action,
    reason: &str,
    details: Vec<String>,
) -> ApiChange {
    let logical = step.api.clone();
    Planned::new(kind, resource, "", Some(&logical), action, reason, step).with_details(details)
}

fn route_details(d: &DesiredRoute, function: &str) -> Vec<String> {
    let mut details = vec![format!("invokes function {function}")];
    details.extend(
        d.integration_parameters
            .iter()
            .map(|(to, from)| format!("{to} <- {from}")),
    );
    details
}

/// Whether `path` is `prefix` or lies under it.
fn under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The API changes of a deploy: per desired API its creation (or a no-op), its routes, the
/// permissions its functions need and a deployment when anything about the routes changed; then
/// the APIs the stack no longer declares. `functions` maps each logical function to the physical
/// name it has after this plan (the new slot of a replaced function).
pub fn plan_rest_apis(
    desired: &[DesiredRestApi],
    actual: &[ActualRestApi],
    functions: &BTreeMap<String, String>,
) -> Vec<ApiChange> {
    let mut changes = Vec::new();
    let mut leftovers = Vec::new();
    for d in desired {
        let mut mine: Vec<&ActualRestApi> = actual
            .iter()
            .filter(|a| a.logical.as_deref() == Some(d.logical.as_str()))
            .collect();
        mine.sort_by(|a, b| (a.name != d.name, &a.id).cmp(&(b.name != d.name, &b.id)));
        let existing = (!mine.is_empty()).then(|| mine.remove(0));
        for other in mine {
            leftovers.push(delete_api(
                other,
                &d.logical,
                "left over from an interrupted create",
            ));
        }
        changes.extend(plan_api(d, existing, functions));
    }
    let wanted: BTreeSet<&str> = desired.iter().map(|d| d.logical.as_str()).collect();
    changes.extend(leftovers);
    for a in actual {
        if a.logical.as_deref().is_none_or(|l| !wanted.contains(l)) {
            changes.push(delete_api(
                a,
                a.logical.as_deref().unwrap_or_default(),
                "no longer in the stack",
            ));
        }
    }
    changes
}

/// The removal of every deployer statement on a function that stays (not in `gone`) whose API
/// is not one the stage keeps: an API already gone (a deploy or destroy interrupted between the
/// API's deletion and its statements'), or one `api_changes` deletes.
pub fn plan_stale_statements(
    observed: &[ActualRestApi],
    statements: &[ActualStatement],
    api_changes: &[ApiChange],
    gone: &BTreeSet<String>,
) -> Vec<ApiChange> {
    let deleted: BTreeSet<&str> = api_changes
        .iter()
        .filter(|c| c.kind == ResourceKind::RestApi && c.action == Action::Delete)
        .filter_map(|c| c.op.api_id.as_deref())
        .collect();
    let kept: BTreeSet<&str> = observed
        .iter()
        .map(|a| a.id.as_str())
        .filter(|id| !deleted.contains(id))
        .collect();
    statements
        .iter()
        .filter(|s| !gone.contains(&s.function) && !kept.contains(s.api_id.as_str()))
        .map(|s| {
            let api = observed.iter().find(|a| a.id == s.api_id);
            let reason = match api {
                Some(a) => format!(
                    "statement {} names API {} ({}), which this deploy deletes",
                    s.statement_id, a.name, s.api_id
                ),
                None => format!(
                    "statement {} names API {}, which no longer exists",
                    s.statement_id, s.api_id
                ),
            };
            let logical = api.and_then(|a| a.logical.clone()).unwrap_or_default();
            let mut c = api_change(
                ResourceKind::Permission,
                format!("permission {} on {}", s.statement_id, s.function),
                ApiStep {
                    api: logical,
                    api_id: Some(s.api_id.clone()),
                    target: ApiTarget::Statement {
                        function: s.function.clone(),
                        statement_id: s.statement_id.clone(),
                    },
                },
                Action::Delete,
                &reason,
                Vec::new(),
            );
            c.name = s.function.clone();
            c
        })
        .collect()
}

/// Deletes of every API of a stage, for a destroy.
pub fn destroy_rest_apis(actual: &[ActualRestApi]) -> Vec<ApiChange> {
    actual
        .iter()
        .map(|a| {
            delete_api(
                a,
                a.logical.as_deref().unwrap_or_default(),
                "destroying the stage",
            )
        })
        .collect()
}

fn delete_api(a: &ActualRestApi, logical: &str, reason: &str) -> ApiChange {
    let mut c = api_change(
        ResourceKind::RestApi,
        format!("rest api {} ({})", a.name, a.id),
        ApiStep {
            api: logical.to_string(),
            api_id: Some(a.id.clone()),
            target: ApiTarget::Api {
                resources: BTreeMap::new(),
                tags: BTreeMap::new(),
            },
        },
        Action::Delete,
        reason,
        Vec::new(),
    );
    c.name = a.name.clone();
    c
}

fn plan_api(
    d: &DesiredRestApi,
    a: Option<&ActualRestApi>,
    functions: &BTreeMap<String, String>,
) -> Vec<ApiChange> {
    let api_id = a.map(|a| a.id.clone());
    let step = |target: ApiTarget| ApiStep {
        api: d.logical.clone(),
        api_id: api_id.clone(),
        target,
    };
    let resources: BTreeMap<String, String> = a
        .map(|a| {
            a.resources
                .iter()
                .map(|r| (r.path.clone(), r.id.clone()))
                .collect()
        })
        .unwrap_or_default();
    let (action, reason) = match a {
        None => (Action::Create, "not deployed yet"),
        Some(_) => (Action::NoOp, "up to date"),
    };
    let mut api = api_change(
        ResourceKind::RestApi,
        format!("rest api {}", d.name),
        step(ApiTarget::Api {
            resources: resources.clone(),
            tags: d.tags.clone(),
        }),
        action,
        reason,
        Vec::new(),
    );
    api.name = d.name.clone();
    let mut changes = vec![api];

    let physical = |logical: &str| {
        functions
            .get(logical)
            .cloned()
            .unwrap_or_else(|| logical.to_string())
    };
    let mut routes_changed = a.is_none();
    let existing_authorizers = a.map(|a| a.authorizers.as_slice()).unwrap_or_default();
    // The authorizer the routes keep using: one already deployed exactly as wanted.
    let mut kept: Option<&ActualAuthorizer> = None;
    if let Some(want) = &d.authorizer {
        let function = physical(&want.function);
        let matches = |x: &&ActualAuthorizer| {
            x.name == want.name
                && x.kind == TOKEN
                && x.identity_source == want.identity_source
                && function_of_uri(&x.authorizer_uri) == Some(function.as_str())
        };
        kept = existing_authorizers.iter().find(matches);
        let replaced = existing_authorizers
            .iter()
            .find(|x| x.name == want.name && kept.is_none());
        let (action, reason, details) = match (kept, replaced) {
            (Some(_), _) => (Action::NoOp, "up to date", Vec::new()),
            (None, Some(old)) => (
                Action::Update,
                "authorizer changed (replaced: deleted once the routes use the new one)",
                vec![format!(
                    "{} {} invokes {} -> {TOKEN} {} invokes {function}",
                    old.kind,
                    old.identity_source,
                    function_of_uri(&old.authorizer_uri).unwrap_or("none"),
                    want.identity_source
                )],
            ),
            (None, None) => (
                Action::Create,
                "not deployed yet",
                vec![format!(
                    "{TOKEN} {} invokes function {function}",
                    want.identity_source
                )],
            ),
        };
        if action != Action::NoOp {
            routes_changed = true;
        }
        changes.push(api_change(
            ResourceKind::Authorizer,
            format!("authorizer {} on {}", want.name, d.name),
            step(ApiTarget::Authorizer {
                name: want.name.clone(),
                function: Some(function),
                identity_source: want.identity_source.clone(),
                id: kept.or(replaced).map(|x| x.id.clone()),
            }),
            action,
            reason,
            details,
        ));
    }
    // Any other authorizer (a replaced one is handled by its update above, a leftover of an
    // interrupted replacement or of an earlier tenant source here) goes after the routes move.
    let replaced_id = match changes.last() {
        Some(c) if c.action == Action::Update => match &c.op.target {
            ApiTarget::Authorizer { id, .. } => id.clone(),
            _ => None,
        },
        _ => None,
    };
    for x in existing_authorizers {
        if kept.is_some_and(|k| k.id == x.id) || replaced_id.as_deref() == Some(x.id.as_str()) {
            continue;
        }
        routes_changed = true;
        changes.push(api_change(
            ResourceKind::Authorizer,
            format!("authorizer {} ({}) on {}", x.name, x.id, d.name),
            step(ApiTarget::Authorizer {
                name: x.name.clone(),
                function: None,
                identity_source: x.identity_source.clone(),
                id: Some(x.id.clone()),
            }),
            Action::Delete,
            "no longer in the stack",
            Vec::new(),
        ));
    }
    let kept_id = kept.map(|k| k.id.as_str());
    // The request validator: one named like ours, validating parameters, is kept; one that does
    // not validate them is corrected in place (its id stays, so methods keep pointing at it).
    let mut validator_id: Option<&str> = None;
    if let Some(name) = &d.validator {
        let existing = a.and_then(|a| a.validators.iter().find(|v| &v.name == name));
        let (action, reason, details) = match existing {
            Some(v) if v.validate_parameters => (Action::NoOp, "up to date", Vec::new()),
            Some(_) => (
                Action::Update,
                "does not validate request parameters",
                vec!["validateRequestParameters false -> true".to_string()],
            ),
            None => (
                Action::Create,
                "not deployed yet",
                vec![
                    "validateRequestParameters true (the tenant parameter is required)".to_string(),
                ],
            ),
        };
        validator_id = existing.map(|v| v.id.as_str());
        if action != Action::NoOp {
            routes_changed = true;
        }
        changes.push(api_change(
            ResourceKind::RequestValidator,
            format!("request validator {name} on {}", d.name),
            step(ApiTarget::Validator {
                name: name.clone(),
                id: validator_id.map(str::to_string),
            }),
            action,
            reason,
            details,
        ));
    }
    for r in &d.routes {
        let function = functions
            .get(&r.function)
            .cloned()
            .unwrap_or_else(|| r.function.clone());
        let resource = format!("route {} {} on {}", r.method, r.path, d.name);
        let existing = a
            .and_then(|a| a.find_resource(&r.path))
            .and_then(|res| res.methods.get(&r.method));
        let route_step = |put_method: bool| {
            step(ApiTarget::Route {
                method: r.method.clone(),
                path: r.path.clone(),
                function: Some(function.clone()),
                put_method,
                resource_id: resources.get(&r.path).cloned(),
                delete_resource: None,
                route: Some(r.clone()),
            })
        };
        let Some(existing) = existing else {
            routes_changed = true;
            changes.push(api_change(
                ResourceKind::Route,
                resource,
                route_step(true),
                Action::Create,
                "not deployed yet",
                route_details(r, &function),
            ));
            continue;
        };
        let mut details = Vec::new();
        let mut put_method = existing.request_parameters != r.method_parameters;
        if put_method {
            details.push(format!(
                "method parameters {:?} -> {:?}",
                existing.request_parameters, r.method_parameters
            ));
        }
        // A method points at an authorizer by id, so a new or replaced authorizer means putting
        // the method again; NONE and an unreported type both mean "not authorized".
        let custom = existing.authorization_type == CUSTOM;
        if custom != r.authorized || (r.authorized && existing.authorizer_id.as_deref() != kept_id)
        {
            put_method = true;
            details.push(if r.authorized {
                "authorized by the tenant authorizer".to_string()
            } else {
                "no longer authorized by an authorizer".to_string()
            });
        }
        // Likewise a method points at its validator by id; one created now is a new id.
        let wanted_validator = if r.validated { validator_id } else { None };
        if existing.request_validator_id.as_deref() != wanted_validator
            || (r.validated && validator_id.is_none())
        {
            put_method = true;
            details.push(if r.validated {
                "required tenant parameter checked by the request validator".to_string()
            } else {
                "no longer checked by a request validator".to_string()
            });
        }
        let empty = ActualIntegration::default();
        let integration = existing.integration.as_ref().unwrap_or(&empty);
        let deployed_function = function_of_uri(&integration.uri).unwrap_or("none");
        if deployed_function != function {
            details.push(format!(
                "invokes function {deployed_function} -> {function}"
            ));
        }
        if integration.kind != AWS_PROXY || integration.http_method != INTEGRATION_METHOD {
            details.push(format!(
                "integration {} {} -> {AWS_PROXY} {INTEGRATION_METHOD}",
                integration.kind, integration.http_method
            ));
        }
        if integration.request_parameters != r.integration_parameters {
            details.push(format!(
                "tenant mapping {:?} -> {:?}",
                integration.request_parameters, r.integration_parameters
            ));
        }
        let (action, reason) = if details.is_empty() {
            (Action::NoOp, "up to date")
        } else {
            routes_changed = true;
            (Action::Update, "integration changed")
        };
        changes.push(api_change(
            ResourceKind::Route,
            resource,
            route_step(put_method),
            action,
            reason,
            details,
        ));
    }

    if let Some(a) = a {
        let needed = |path: &str| d.routes.iter().any(|r| under(&r.path, path));
        for res in &a.resources {
            for method in res.methods.keys() {
                if d.find_route(method, &res.path).is_some() {
                    continue;
                }
                routes_changed = true;
                // The topmost resource on the way to this one that no route needs goes, and
                // everything under it with it.
                let delete_resource = a
                    .resources
                    .iter()
                    .filter(|top| top.path != "/" && under(&res.path, &top.path))
                    .filter(|top| !needed(&top.path))
                    .min_by_key(|top| top.path.len())
                    .map(|top| top.id.clone());
                let details = match &delete_resource {
                    Some(_) => vec![format!("resource {} is no longer needed", res.path)],
                    None => Vec::new(),
                };
                changes.push(api_change(
                    ResourceKind::Route,
                    format!("route {method} {} on {}", res.path, d.name),
                    step(ApiTarget::Route {
                        method: method.clone(),
                        path: res.path.clone(),
                        function: None,
                        put_method: false,
                        resource_id: Some(res.id.clone()),
                        delete_resource,
                        route: None,
                    }),
                    Action::Delete,
                    "no longer in the stack",
                    details,
                ));
            }
        }
    }

    let targets: BTreeSet<String> = d
        .routes
        .iter()
        .map(|r| {
            functions
                .get(&r.function)
                .cloned()
                .unwrap_or_else(|| r.function.clone())
        })
        .collect();
    for function in targets {
        if a.is_some_and(|a| a.permitted.contains(&function)) {
            continue;
        }
        changes.push(api_change(
            ResourceKind::Permission,
            format!("permission for {} to invoke {function}", d.name),
            step(ApiTarget::Permission {
                function: function.clone(),
            }),
            Action::Create,
            "the function does not allow this API yet",
            Vec::new(),
        ));
    }
    if let Some(want) = &d.authorizer {
        let function = physical(&want.function);
        if !a.is_some_and(|a| a.authorizer_permitted.contains(&function)) {
            changes.push(api_change(
                ResourceKind::Permission,
                format!(
                    "permission for the authorizers of {} to invoke {function}",
                    d.name
                ),
                step(ApiTarget::AuthorizerPermission {
                    function: function.clone(),
                }),
                Action::Create,
                "the function does not allow this API's authorizers yet",
                Vec::new(),
            ));
        }
    }

    let digest = routes_digest(d, functions);
    let stage_missing = a.is_some_and(|a| !a.stage_deployed);
    // A stage without the variable was deployed by something else; it is left as it is.
    let stage_stale = a.is_some_and(|a| a.deployed_routes.as_ref().is_some_and(|h| *h != digest));
    if routes_changed || stage_missing || stage_stale {
        let reason = if routes_changed {
            "routes changed"
        } else if stage_missing {
            "the stage was never deployed"
        } else {
            "the stage serves older routes (an earlier deploy was interrupted)"
        };
        changes.push(api_change(
            ResourceKind::Deployment,
            format!("deployment of {} to stage {}", d.name, d.stage),
            step(ApiTarget::Deployment {
                stage: d.stage.clone(),
                routes: digest,
            }),
            Action::Create,
            reason,
            Vec::new(),
        ));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_api_gateway_accepts() {
        for ok in ["/", "/a", "/a/{b}", "/counties/{fips}", "/a/{proxy+}"] {
            assert_eq!(path_problem(ok), None, "{ok}");
        }
        for bad in ["", "a", "/a/", "//a", "/{proxy+}/a", "/{a", "/{}", "/a b"] {
            assert!(path_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn uris_name_their_function() {
        let arn = "arn:aws:lambda:eu-west-1:1:function:represent-dev-counties";
        let uri = integration_uri(arn);
        assert_eq!(
            uri,
            "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:1:function:represent-dev-counties/invocations"
        );
        assert_eq!(function_of_uri(&uri), Some("represent-dev-counties"));
        assert_eq!(function_of_uri("http://example.com"), None);
    }

    #[test]
    fn invoke_urls_on_aws_and_on_an_emulator() {
        assert_eq!(
            invoke_url("abc123", "us-east-1", "prod", None),
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
        );
        assert_eq!(
            invoke_url("abc123", "us-east-1", "dev", Some("http://127.0.0.1:9456/")),
            "http://127.0.0.1:9456/restapis/abc123/dev/_user_request_"
        );
    }

    #[test]
    fn policies_permit_only_their_api() {
        let arn = source_arn("us-east-1", "1", "abc");
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "x",
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:us-east-1:1:function:f",
                "Condition": {"ArnLike": {"AWS:SourceArn": arn}},
            }],
        })
        .to_string();
        assert!(policy_permits(&policy, &arn));
        assert!(!policy_permits(
            &policy,
            &source_arn("us-east-1", "1", "other")
        ));
        assert!(!policy_permits("not json", &arn));
    }
}
