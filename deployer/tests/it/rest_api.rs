//! REST APIs in front of the functions: validated, observed, planned and applied against strict
//! API Gateway and Lambda mocks. Every mutating call is recorded in order across both services,
//! so the tests read the exact sequence a deploy sends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_apigateway::Client as Apigw;
use aws_sdk_apigateway::operation::create_authorizer::CreateAuthorizerOutput;
use aws_sdk_apigateway::operation::create_deployment::CreateDeploymentOutput;
use aws_sdk_apigateway::operation::create_request_validator::CreateRequestValidatorOutput;
use aws_sdk_apigateway::operation::create_resource::CreateResourceOutput;
use aws_sdk_apigateway::operation::create_rest_api::CreateRestApiOutput;
use aws_sdk_apigateway::operation::delete_authorizer::DeleteAuthorizerOutput;
use aws_sdk_apigateway::operation::delete_method::DeleteMethodOutput;
use aws_sdk_apigateway::operation::delete_resource::DeleteResourceOutput;
use aws_sdk_apigateway::operation::delete_rest_api::DeleteRestApiError;
use aws_sdk_apigateway::operation::get_authorizers::GetAuthorizersOutput;
use aws_sdk_apigateway::operation::get_request_validators::GetRequestValidatorsOutput;
use aws_sdk_apigateway::operation::get_resources::GetResourcesOutput;
use aws_sdk_apigateway::operation::get_rest_apis::GetRestApisOutput;
use aws_sdk_apigateway::operation::get_stage::GetStageOutput;
use aws_sdk_apigateway::operation::get_tags::GetTagsOutput;
use aws_sdk_apigateway::operation::put_integration::PutIntegrationOutput;
use aws_sdk_apigateway::operation::put_method::PutMethodOutput;
use aws_sdk_apigateway::types::error::NotFoundException;
use aws_sdk_apigateway::types::{Integration, IntegrationType, Method, Resource};
use aws_sdk_iam::Client as Iam;
use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_lambda::Client as Lambda;
use aws_sdk_lambda::operation::add_permission::AddPermissionOutput;
use aws_sdk_lambda::operation::create_function::CreateFunctionOutput;
use aws_sdk_lambda::operation::delete_function::DeleteFunctionOutput;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::get_policy::GetPolicyOutput;
use aws_sdk_lambda::operation::list_functions::ListFunctionsOutput;
use aws_sdk_lambda::operation::remove_permission::{RemovePermissionError, RemovePermissionOutput};
use aws_sdk_lambda::types::{FunctionConfiguration, LastUpdateStatus, State};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use deployer::rest_api::{
    ActualAuthorizer, ActualIntegration, ActualMethod, ActualResource, ActualRestApi,
    ActualStatement, ActualValidator, VALIDATOR_NAME, authorizer_source_arn, integration_uri,
    routes_digest, source_arn,
};
use deployer::{
    Action, Actual, App, ApplyReport, Clients, Desired, Function, Plan, RestApi, StackError, Stage,
    TenantSource, apply, destroy, observe, plan, plan_destroy, validate,
};

use super::support::{
    ACCOUNT, Progress, clients_api, deployed, fast, no_tables, packages, sdk_configuration,
    up_to_date,
};

const API_ID: &str = "a1b2c3";
/// The id CreateAuthorizer answers, and the one a deployed authorizer has.
const AUTHORIZER_ID: &str = "auth01";
/// The id CreateRequestValidator answers, and the one a deployed validator has.
const VALIDATOR_ID: &str = "val01";
const AUTHORIZER: &str = "represent-dev-authorizer";
const ROOT: &str = "root0";
const API: &str = "represent-dev-api";
const REPS: &str = "represent-dev-representatives";
const COUNTIES: &str = "represent-dev-counties";
const COUNTIES_R: &str = "represent-dev-counties-r";
const REPS_HEADER: &str = r#"{"method.request.header.x-tenant-id": true}"#;
const REPS_MAPPING: &str =
    r#"{"integration.request.header.X-Amz-Tenant-Id": "method.request.header.x-tenant-id"}"#;

/// The Represent API: one per-tenant function (`representatives`) and one shared one
/// (`counties`), whose routes carry no tenant.
fn api(source: TenantSource) -> RestApi {
    RestApi::new("api")
        .tenant_from(source)
        .route("GET", "/representatives", "representatives")
        .route("GET", "/counties", "counties")
        .route("GET", "/counties/{fips}", "counties")
}

fn base_app(counties: Function) -> App {
    App::new("represent")
        .function(Function::new("representatives").per_tenant())
        .function(counties)
        .stage(Stage::aws("dev").region("us-east-1").unmanaged_log_groups())
}

fn app_with(api: RestApi) -> App {
    base_app(Function::new("counties")).rest_api(api)
}

fn desired_of(app: &App) -> Desired {
    deployer::desired(app, "dev", &packages(app, "v1")).expect("fixture stack is valid")
}

fn arn(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}")
}

fn resource_id(path: &str) -> String {
    match path {
        "/" => ROOT.to_string(),
        _ => format!("res{}", path.replace('/', "-")),
    }
}

/// An API deployed exactly as `d` wants it, every function permitted, the stage deployed.
fn deployed_api(d: &Desired) -> ActualRestApi {
    let want = &d.rest_apis[0];
    let mut resources: BTreeMap<String, ActualResource> = BTreeMap::new();
    resources.insert(
        "/".to_string(),
        ActualResource {
            id: ROOT.to_string(),
            path: "/".to_string(),
            methods: BTreeMap::new(),
        },
    );
    for r in &want.routes {
        let mut prefix = String::new();
        for part in r.path.split('/').filter(|p| !p.is_empty()) {
            prefix = format!("{prefix}/{part}");
            resources
                .entry(prefix.clone())
                .or_insert_with(|| ActualResource {
                    id: resource_id(&prefix),
                    path: prefix.clone(),
                    methods: BTreeMap::new(),
                });
        }
        let function = &d.find_function(&r.function).expect("function").name;
        resources
            .get_mut(&r.path)
            .expect("resource made above")
            .methods
            .insert(
                r.method.clone(),
                ActualMethod {
                    request_parameters: r.method_parameters.clone(),
                    authorization_type: if r.authorized { "CUSTOM" } else { "NONE" }.to_string(),
                    authorizer_id: r.authorized.then(|| AUTHORIZER_ID.to_string()),
                    integration: Some(ActualIntegration {
                        kind: "AWS_PROXY".to_string(),
                        http_method: "POST".to_string(),
                        uri: integration_uri(&arn(function)),
                        request_parameters: r.integration_parameters.clone(),
                    }),
                    request_validator_id: r.validated.then(|| VALIDATOR_ID.to_string()),
                },
            );
    }
    ActualRestApi {
        id: API_ID.to_string(),
        name: want.name.clone(),
        logical: Some(want.logical.clone()),
        tags: want.tags.clone(),
        resources: resources.into_values().collect(),
        stage_deployed: true,
        deployed_routes: Some(digest(d)),
        permitted: d.functions.iter().map(|f| f.name.clone()).collect(),
        authorizers: want
            .authorizer
            .iter()
            .map(|a| ActualAuthorizer {
                id: AUTHORIZER_ID.to_string(),
                name: a.name.clone(),
                kind: "TOKEN".to_string(),
                authorizer_uri: integration_uri(&arn(&d
                    .find_function(&a.function)
                    .expect("authorizer")
                    .name)),
                identity_source: a.identity_source.clone(),
            })
            .collect(),
        authorizer_permitted: want
            .authorizer
            .iter()
            .map(|a| {
                d.find_function(&a.function)
                    .expect("authorizer")
                    .name
                    .clone()
            })
            .collect(),
        validators: want
            .validator
            .iter()
            .map(|name| ActualValidator {
                id: VALIDATOR_ID.to_string(),
                name: name.clone(),
                validate_parameters: true,
            })
            .collect(),
    }
}

/// The digest a deployment of `d`'s API records, with every function in its usual slot.
fn digest(d: &Desired) -> String {
    let functions = d
        .functions
        .iter()
        .map(|f| (f.logical.clone(), f.name.clone()))
        .collect();
    routes_digest(&d.rest_apis[0], &functions)
}

fn deployment(d: &Desired) -> String {
    format!(
        r#"CreateDeployment {API_ID} dev {{"deployerRoutes": "{}"}}"#,
        digest(d)
    )
}

fn with_api(d: &Desired) -> Actual {
    let mut actual = up_to_date(d);
    actual.rest_apis = vec![deployed_api(d)];
    actual
}

/// Every mutating call the mocks saw, across services, in order.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    fn push(&self, call: String) {
        self.0.lock().expect("calls lock").push(call);
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().expect("calls lock").clone()
    }
}

fn sorted<V: std::fmt::Debug>(m: Option<&std::collections::HashMap<String, V>>) -> String {
    let m: BTreeMap<&String, &V> = m.into_iter().flatten().collect();
    format!("{m:?}")
}

/// API Gateway's mutating calls, each recorded; CreateResource answers `res-{path}` ids.
fn apigateway_rules(calls: &Calls) -> Vec<Rule> {
    let c = calls.clone();
    let create_api = mock!(Apigw::create_rest_api).then_compute_output(move |i| {
        c.push(format!(
            "CreateRestApi {} {}",
            i.name().unwrap_or_default(),
            sorted(i.tags())
        ));
        CreateRestApiOutput::builder()
            .id(API_ID)
            .root_resource_id(ROOT)
            .build()
    });
    // Parents are known by id only; the mock maps them back to paths to name the child.
    let paths: Arc<Mutex<BTreeMap<String, String>>> = Arc::new(Mutex::new(BTreeMap::from([(
        ROOT.to_string(),
        String::new(),
    )])));
    let c = calls.clone();
    let create_resource = mock!(Apigw::create_resource).then_compute_output(move |i| {
        let parent = i.parent_id().unwrap_or_default().to_string();
        let part = i.path_part().unwrap_or_default();
        c.push(format!("CreateResource {parent} {part}"));
        let mut paths = paths.lock().expect("paths lock");
        let parent_path = paths.get(&parent).cloned().unwrap_or_else(|| {
            parent
                .strip_prefix("res")
                .unwrap_or_default()
                .replace('-', "/")
        });
        let path = format!("{parent_path}/{part}");
        let id = resource_id(&path);
        paths.insert(id.clone(), path);
        CreateResourceOutput::builder().id(id).build()
    });
    let c = calls.clone();
    let put_method = mock!(Apigw::put_method).then_compute_output(move |i| {
        let authorizer = i
            .authorizer_id()
            .map(|a| format!(" authorizer={a}"))
            .unwrap_or_default();
        let validator = i
            .request_validator_id()
            .map(|v| format!(" validator={v}"))
            .unwrap_or_default();
        c.push(format!(
            "PutMethod {} {} auth={}{authorizer}{validator} {}",
            i.resource_id().unwrap_or_default(),
            i.http_method().unwrap_or_default(),
            i.authorization_type().unwrap_or_default(),
            sorted(i.request_parameters())
        ));
        PutMethodOutput::builder().build()
    });
    let c = calls.clone();
    let put_integration = mock!(Apigw::put_integration).then_compute_output(move |i| {
        c.push(format!(
            "PutIntegration {} {} {} {} {} {}",
            i.resource_id().unwrap_or_default(),
            i.http_method().unwrap_or_default(),
            i.r#type().map(IntegrationType::as_str).unwrap_or_default(),
            i.integration_http_method().unwrap_or_default(),
            i.uri().unwrap_or_default(),
            sorted(i.request_parameters())
        ));
        PutIntegrationOutput::builder().build()
    });
    let c = calls.clone();
    let delete_method = mock!(Apigw::delete_method).then_compute_output(move |i| {
        c.push(format!(
            "DeleteMethod {} {}",
            i.resource_id().unwrap_or_default(),
            i.http_method().unwrap_or_default()
        ));
        DeleteMethodOutput::builder().build()
    });
    let c = calls.clone();
    let delete_resource = mock!(Apigw::delete_resource).then_compute_output(move |i| {
        c.push(format!(
            "DeleteResource {}",
            i.resource_id().unwrap_or_default()
        ));
        DeleteResourceOutput::builder().build()
    });
    let c = calls.clone();
    let deploy = mock!(Apigw::create_deployment).then_compute_output(move |i| {
        c.push(format!(
            "CreateDeployment {} {} {}",
            i.rest_api_id().unwrap_or_default(),
            i.stage_name().unwrap_or_default(),
            sorted(i.variables())
        ));
        CreateDeploymentOutput::builder().id("dep1").build()
    });
    let c = calls.clone();
    let create_authorizer = mock!(Apigw::create_authorizer).then_compute_output(move |i| {
        c.push(format!(
            "CreateAuthorizer {} {} {} {} {}",
            i.rest_api_id().unwrap_or_default(),
            i.name().unwrap_or_default(),
            i.r#type().map(|t| t.as_str()).unwrap_or_default(),
            i.authorizer_uri().unwrap_or_default(),
            i.identity_source().unwrap_or_default()
        ));
        CreateAuthorizerOutput::builder().id(AUTHORIZER_ID).build()
    });
    let c = calls.clone();
    let delete_authorizer = mock!(Apigw::delete_authorizer).then_compute_output(move |i| {
        c.push(format!(
            "DeleteAuthorizer {}",
            i.authorizer_id().unwrap_or_default()
        ));
        DeleteAuthorizerOutput::builder().build()
    });
    let c = calls.clone();
    let create_validator = mock!(Apigw::create_request_validator).then_compute_output(move |i| {
        c.push(format!(
            "CreateRequestValidator {} {} parameters={} body={}",
            i.rest_api_id().unwrap_or_default(),
            i.name().unwrap_or_default(),
            i.validate_request_parameters().unwrap_or_default(),
            i.validate_request_body().unwrap_or_default()
        ));
        CreateRequestValidatorOutput::builder()
            .id(VALIDATOR_ID)
            .build()
    });
    let c = calls.clone();
    let update_validator = mock!(Apigw::update_request_validator).then_compute_output(move |i| {
        let ops: Vec<String> = i
            .patch_operations()
            .iter()
            .map(|o| {
                format!(
                    "{} {} {}",
                    o.op().map(|x| x.as_str()).unwrap_or_default(),
                    o.path().unwrap_or_default(),
                    o.value().unwrap_or_default()
                )
            })
            .collect();
        c.push(format!(
            "UpdateRequestValidator {} {}",
            i.request_validator_id().unwrap_or_default(),
            ops.join(", ")
        ));
        aws_sdk_apigateway::operation::update_request_validator::UpdateRequestValidatorOutput::builder()
            .build()
    });
    let c = calls.clone();
    let delete_api = mock!(Apigw::delete_rest_api).then_compute_output(move |i| {
        c.push(format!(
            "DeleteRestApi {}",
            i.rest_api_id().unwrap_or_default()
        ));
        aws_sdk_apigateway::operation::delete_rest_api::DeleteRestApiOutput::builder().build()
    });
    vec![
        delete_api,
        create_api,
        create_validator,
        update_validator,
        create_authorizer,
        delete_authorizer,
        create_resource,
        put_method,
        put_integration,
        delete_method,
        delete_resource,
        deploy,
    ]
}

/// Lambda: functions are active and have their usual ARN; AddPermission, CreateFunction and
/// DeleteFunction are recorded.
fn lambda_rules(calls: &Calls) -> Vec<Rule> {
    let get = mock!(Lambda::get_function).then_compute_output(|i| {
        let name = i.function_name().unwrap_or_default();
        GetFunctionOutput::builder()
            .configuration(
                FunctionConfiguration::builder()
                    .function_name(name)
                    .function_arn(arn(name))
                    .state(State::Active)
                    .last_update_status(LastUpdateStatus::Successful)
                    .build(),
            )
            .build()
    });
    let c = calls.clone();
    let permit = mock!(Lambda::add_permission).then_compute_output(move |i| {
        c.push(format!(
            "AddPermission {} {} {} {} {}",
            i.function_name().unwrap_or_default(),
            i.statement_id().unwrap_or_default(),
            i.action().unwrap_or_default(),
            i.principal().unwrap_or_default(),
            i.source_arn().unwrap_or_default()
        ));
        AddPermissionOutput::builder().build()
    });
    let c = calls.clone();
    let create = mock!(Lambda::create_function).then_compute_output(move |i| {
        c.push(format!(
            "CreateFunction {}",
            i.function_name().unwrap_or_default()
        ));
        CreateFunctionOutput::builder().build()
    });
    let c = calls.clone();
    let delete = mock!(Lambda::delete_function).then_compute_output(move |i| {
        c.push(format!(
            "DeleteFunction {}",
            i.function_name().unwrap_or_default()
        ));
        DeleteFunctionOutput::builder().build()
    });
    let c = calls.clone();
    let remove = mock!(Lambda::remove_permission).then_compute_output(move |i| {
        c.push(format!(
            "RemovePermission {} {}",
            i.function_name().unwrap_or_default(),
            i.statement_id().unwrap_or_default(),
        ));
        RemovePermissionOutput::builder().build()
    });
    vec![get, permit, create, delete, remove]
}

fn recording_clients(calls: &Calls) -> (Clients, Vec<Rule>) {
    let lambda = lambda_rules(calls);
    let apigateway = apigateway_rules(calls);
    let l: Vec<&Rule> = lambda.iter().collect();
    let a: Vec<&Rule> = apigateway.iter().collect();
    let clients = clients_api(&l, &[], &a, RuleMode::MatchAny);
    (clients, lambda.into_iter().chain(apigateway).collect())
}

async fn deploy(d: &Desired, actual: &Actual) -> (Plan, ApplyReport, Vec<String>) {
    let calls = Calls::default();
    let (clients, _rules) = recording_clients(&calls);
    let p = plan(d, actual);
    let progress = Progress::default();
    let report = apply(&clients, &p, &fast(), &|l: &str| progress.log(l))
        .await
        .expect("applied");
    (p, report, calls.all())
}

fn put_integration(resource: &str, function: &str, mapping: &str) -> String {
    format!(
        "PutIntegration {resource} GET AWS_PROXY POST {} {mapping}",
        integration_uri(&arn(function))
    )
}

fn permission(function: &str) -> String {
    format!(
        "AddPermission {function} deployer-apigateway-{API_ID} lambda:InvokeFunction apigateway.amazonaws.com {}",
        source_arn("us-east-1", ACCOUNT, API_ID)
    )
}

#[tokio::test]
async fn fresh_api_is_created_routed_permitted_and_deployed() {
    let d = desired_of(&app_with(api(TenantSource::Header("x-tenant-id"))));
    let (_, report, calls) = deploy(&d, &up_to_date(&d)).await;
    let tags =
        r#"{"deployer:app": "represent", "deployer:logical-id": "api", "deployer:stage": "dev"}"#;
    assert_eq!(
        calls,
        vec![
            format!("CreateRestApi {API} {tags}"),
            format!("CreateRequestValidator {API_ID} {VALIDATOR_NAME} parameters=true body=false"),
            format!("CreateResource {ROOT} representatives"),
            format!(
                "PutMethod res-representatives GET auth=NONE validator={VALIDATOR_ID} {REPS_HEADER}"
            ),
            put_integration("res-representatives", REPS, REPS_MAPPING),
            format!("CreateResource {ROOT} counties"),
            "PutMethod res-counties GET auth=NONE {}".to_string(),
            put_integration("res-counties", COUNTIES, "{}"),
            "CreateResource res-counties {fips}".to_string(),
            "PutMethod res-counties-{fips} GET auth=NONE {}".to_string(),
            put_integration("res-counties-{fips}", COUNTIES, "{}"),
            permission(COUNTIES),
            permission(REPS),
            deployment(&d),
        ]
    );
    assert_eq!(report.mutating_calls as usize, calls.len());
    assert_eq!(
        report.api_urls.get("api").map(String::as_str),
        Some("https://a1b2c3.execute-api.us-east-1.amazonaws.com/dev")
    );
}

#[tokio::test]
async fn unchanged_api_makes_no_mutating_call_and_still_reports_its_url() {
    let d = desired_of(&app_with(api(TenantSource::default())));
    let (p, report, calls) = deploy(&d, &with_api(&d)).await;
    assert!(!p.has_changes(), "{p}");
    assert_eq!(calls, Vec::<String>::new());
    assert_eq!(report.mutating_calls, 0);
    assert_eq!(
        report.api_urls.get("api").map(String::as_str),
        Some("https://a1b2c3.execute-api.us-east-1.amazonaws.com/dev")
    );
}

#[tokio::test]
async fn new_route_is_created_under_its_existing_parent_and_deployed() {
    let before = desired_of(&app_with(
        RestApi::new("api")
            .route("GET", "/representatives", "representatives")
            .route("GET", "/counties", "counties"),
    ));
    let d = desired_of(&app_with(api(TenantSource::default())));
    let mut actual = up_to_date(&d);
    actual.rest_apis = vec![deployed_api(&before)];
    let (_, _, calls) = deploy(&d, &actual).await;
    assert_eq!(
        calls,
        vec![
            "CreateResource res-counties {fips}".to_string(),
            "PutMethod res-counties-{fips} GET auth=NONE {}".to_string(),
            put_integration("res-counties-{fips}", COUNTIES, "{}"),
            deployment(&d),
        ],
        "counties already lets the API invoke it: no AddPermission"
    );
}

#[tokio::test]
async fn removed_routes_lose_their_method_or_their_resource_then_deploy() {
    let before = desired_of(&app_with(
        api(TenantSource::default()).route("GET", "/old/{x}", "counties"),
    ));
    let mut before_api = deployed_api(&before);
    // `/old` has a method of its own as well as a child.
    let mut old = before_api
        .resources
        .iter()
        .find(|r| r.path == "/counties")
        .expect("counties resource")
        .clone();
    old.id = resource_id("/old");
    old.path = "/old".to_string();
    before_api.resources.retain(|r| r.path != "/old");
    before_api.resources.push(old);
    before_api.resources.sort_by(|a, b| a.path.cmp(&b.path));

    let d = desired_of(&app_with(
        RestApi::new("api")
            .route("GET", "/representatives", "representatives")
            .route("GET", "/counties/{fips}", "counties"),
    ));
    let mut actual = up_to_date(&d);
    actual.rest_apis = vec![before_api];
    let (p, _, calls) = deploy(&d, &actual).await;
    let deletes: Vec<&str> = p
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.resource.as_str())
        .collect();
    assert_eq!(
        deletes,
        vec![
            "route GET /counties on represent-dev-api",
            "route GET /old on represent-dev-api",
            "route GET /old/{x} on represent-dev-api",
        ]
    );
    assert_eq!(
        calls,
        vec![
            "DeleteMethod res-counties GET".to_string(),
            "DeleteResource res-old".to_string(),
            deployment(&d),
        ],
        "/counties stays for its child; /old goes once, with /old/{{x}} under it"
    );
}

#[tokio::test]
async fn changed_tenant_source_puts_method_and_integration_with_the_new_mapping() {
    let before = desired_of(&app_with(api(TenantSource::Header("x-tenant-id"))));
    let d = desired_of(&app_with(api(TenantSource::Query("state"))));
    let mut actual = up_to_date(&d);
    actual.rest_apis = vec![deployed_api(&before)];
    let (p, _, calls) = deploy(&d, &actual).await;
    let text = p.to_string();
    assert!(
        text.contains(
            "  ~ update  route GET /representatives on represent-dev-api  (integration changed)"
        ),
        "{text}"
    );
    assert_eq!(
        calls,
        vec![
            "DeleteMethod res-representatives GET".to_string(),
            r#"PutMethod res-representatives GET auth=NONE validator=val01 {"method.request.querystring.state": true}"#
                .to_string(),
            put_integration(
                "res-representatives",
                REPS,
                r#"{"integration.request.header.X-Amz-Tenant-Id": "method.request.querystring.state"}"#
            ),
            deployment(&d),
        ],
        "routes to the shared function carry no tenant and stay as they are"
    );
}

#[tokio::test]
async fn function_replacement_moves_the_api_before_the_old_function_is_deleted() {
    let before = desired_of(&app_with(api(TenantSource::default())));
    let app =
        base_app(Function::new("counties").per_tenant()).rest_api(api(TenantSource::default()));
    let d = desired_of(&app);
    let mut actual = up_to_date(&before);
    actual.rest_apis = vec![deployed_api(&before)];

    let p = plan(&d, &actual);
    let text = p.to_string();
    for line in [
        "-/+ replace function represent-dev-counties-r  (tenancy Shared -> PerTenant (immutable after creation))",
        "  ~ update  route GET /counties on represent-dev-api  (integration changed)",
        "        invokes function represent-dev-counties -> represent-dev-counties-r",
        "  + create  permission for represent-dev-api to invoke represent-dev-counties-r  (the function does not allow this API yet)",
        "  + create  deployment of represent-dev-api to stage dev  (routes changed)",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }

    let (_, _, calls) = deploy(&d, &actual).await;
    let created = calls
        .iter()
        .position(|c| c == &format!("CreateFunction {COUNTIES_R}"));
    let repointed = calls
        .iter()
        .position(|c| c == &put_integration("res-counties", COUNTIES_R, REPS_MAPPING));
    let permitted = calls.iter().position(|c| c == &permission(COUNTIES_R));
    let deployed_at = calls
        .iter()
        .position(|c| c.starts_with(&format!("CreateDeployment {API_ID} dev")));
    let deleted = calls
        .iter()
        .position(|c| c == &format!("DeleteFunction {COUNTIES}"));
    assert!(
        created.is_some()
            && created < repointed
            && repointed < permitted
            && permitted < deployed_at
            && deployed_at < deleted,
        "{calls:#?}"
    );
    assert!(
        calls.contains(&put_integration(
            "res-counties-{fips}",
            COUNTIES_R,
            REPS_MAPPING
        )),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn deploy_interrupted_before_its_deployment_is_finished_by_the_next_one() {
    let d = desired_of(&app_with(api(TenantSource::default())));
    let mut actual = with_api(&d);
    // The routes were put, but the stage still serves what was deployed before them.
    actual.rest_apis[0].deployed_routes = Some("0123abcd".to_string());
    let (p, _, calls) = deploy(&d, &actual).await;
    assert!(
        p.to_string().contains(
            "  + create  deployment of represent-dev-api to stage dev  (the stage serves older routes (an earlier deploy was interrupted))"
        ),
        "{p}"
    );
    assert_eq!(calls, vec![deployment(&d)]);
}

#[tokio::test]
async fn destroy_deletes_the_api_before_the_functions_and_tolerates_it_being_gone() {
    let d = desired_of(&app_with(api(TenantSource::default())));
    let actual = Actual {
        functions: vec![deployed(&d, "counties"), deployed(&d, "representatives")],
        rest_apis: vec![deployed_api(&d)],
        ..Actual::default()
    };
    let p = plan_destroy(&actual, "represent", "dev");
    assert_eq!(
        p.changes[0].resource,
        format!("rest api {API} ({API_ID})"),
        "{p}"
    );

    let calls = Calls::default();
    let c = calls.clone();
    let gone = mock!(Apigw::delete_rest_api).then_compute_response(move |i| {
        c.push(format!(
            "DeleteRestApi {}",
            i.rest_api_id().unwrap_or_default()
        ));
        aws_smithy_mocks::MockResponse::Error(DeleteRestApiError::NotFoundException(
            NotFoundException::builder()
                .message("Invalid API identifier specified")
                .build(),
        ))
    });
    let lambda = lambda_rules(&calls);
    let l: Vec<&Rule> = lambda.iter().collect();
    let clients = clients_api(&l, &[], &[&gone], RuleMode::Sequential);
    destroy(&clients, &p, &fast(), &|_| {})
        .await
        .expect("destroyed");
    assert_eq!(
        calls.all(),
        vec![
            format!("DeleteRestApi {API_ID}"),
            format!("DeleteFunction {COUNTIES}"),
            format!("DeleteFunction {REPS}"),
        ]
    );
}

#[tokio::test]
async fn apply_on_the_emulator_reports_the_user_request_url() {
    let d = desired_of(&app_with(api(TenantSource::default())));
    let calls = Calls::default();
    let (mut clients, _rules) = recording_clients(&calls);
    clients.endpoint_url = Some("http://127.0.0.1:9456".to_string());
    let report = apply(&clients, &plan(&d, &with_api(&d)), &fast(), &|_| {})
        .await
        .expect("applied");
    assert_eq!(
        report.api_urls.get("api").map(String::as_str),
        Some("http://127.0.0.1:9456/restapis/a1b2c3/dev/_user_request_")
    );
    assert_eq!(
        deployer::api_urls(&clients, "dev", &with_api(&d)),
        report.api_urls
    );
}

/// What API Gateway answers for the deployed API, with embedded methods and integrations.
fn sdk_resources(a: &ActualRestApi) -> GetResourcesOutput {
    let items = a.resources.iter().map(|r| {
        let mut resource = Resource::builder().id(&r.id).path(&r.path);
        for (verb, m) in &r.methods {
            let i = m.integration.clone().unwrap_or_default();
            let mut integration = Integration::builder()
                .r#type(IntegrationType::from(i.kind.as_str()))
                .http_method(&i.http_method)
                .uri(&i.uri);
            for (k, v) in &i.request_parameters {
                integration = integration.request_parameters(k, v);
            }
            let mut method = Method::builder()
                .http_method(verb)
                .authorization_type(&m.authorization_type)
                .set_authorizer_id(m.authorizer_id.clone())
                .set_request_validator_id(m.request_validator_id.clone())
                .method_integration(integration.build());
            for (k, v) in &m.request_parameters {
                method = method.request_parameters(k, *v);
            }
            resource = resource.resource_methods(verb, method.build());
        }
        resource.build()
    });
    GetResourcesOutput::builder()
        .set_items(Some(items.collect()))
        .build()
}

#[tokio::test]
async fn observe_reads_the_api_its_routes_and_permissions_so_a_redeploy_is_a_no_op() {
    let d = desired_of(&app_with(api(TenantSource::default())));
    let want = deployed_api(&d);
    let functions = [deployed(&d, "counties"), deployed(&d, "representatives")];

    let list = mock!(Lambda::list_functions).then_output(|| {
        ListFunctionsOutput::builder()
            .functions(
                FunctionConfiguration::builder()
                    .function_name(COUNTIES)
                    .build(),
            )
            .functions(FunctionConfiguration::builder().function_name(REPS).build())
            .build()
    });
    let by_name: BTreeMap<String, deployer::ActualFunction> = functions
        .iter()
        .map(|f| (f.name.clone(), f.clone()))
        .collect();
    let get = mock!(Lambda::get_function).then_compute_output(move |i| {
        let f = &by_name[i.function_name().unwrap_or_default()];
        GetFunctionOutput::builder()
            .configuration(sdk_configuration(f))
            .set_tags(Some(f.tags.clone().into_iter().collect()))
            .build()
    });
    let policy = mock!(Lambda::get_policy).then_compute_output(|i| {
        let name = i.function_name().unwrap_or_default();
        let statement = |api: &str| {
            serde_json::json!({
                "Sid": format!("deployer-apigateway-{api}"),
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": arn(name),
                "Condition": {"ArnLike": {"AWS:SourceArn": source_arn("us-east-1", ACCOUNT, api)}},
            })
        };
        let mut statements = vec![statement(API_ID)];
        // Left by a run stopped between an earlier API's deletion and its statements'.
        if name == COUNTIES {
            statements.push(statement("gone9"));
        }
        let doc = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": statements,
        });
        GetPolicyOutput::builder().policy(doc.to_string()).build()
    });
    let no_role = mock!(Iam::get_role).then_error(|| {
        GetRoleError::NoSuchEntityException(NoSuchEntityException::builder().build())
    });
    let apis = mock!(Apigw::get_rest_apis).then_output(|| {
        GetRestApisOutput::builder()
            .items(
                aws_sdk_apigateway::types::RestApi::builder()
                    .id(API_ID)
                    .name(API)
                    .build(),
            )
            .items(
                aws_sdk_apigateway::types::RestApi::builder()
                    .id("zzz")
                    .name("represent-dev-2-api")
                    .build(),
            )
            .build()
    });
    let tags = mock!(Apigw::get_tags).then_compute_output(|i| {
        let ours = format!("arn:aws:apigateway:us-east-1::/restapis/{API_ID}");
        let stage = if i.resource_arn() == Some(ours.as_str()) {
            "dev"
        } else {
            "dev-2"
        };
        GetTagsOutput::builder()
            .tags("deployer:app", "represent")
            .tags("deployer:stage", stage)
            .tags("deployer:logical-id", "api")
            .build()
    });
    let expected = want.clone();
    let routes = digest(&d);
    let resources = mock!(Apigw::get_resources)
        .match_requests(|i| {
            i.rest_api_id() == Some(API_ID) && i.embed().iter().any(|e| e == "methods")
        })
        .then_compute_output(move |_| sdk_resources(&expected));
    let stage = mock!(Apigw::get_stage)
        .match_requests(|i| i.rest_api_id() == Some(API_ID) && i.stage_name() == Some("dev"))
        .then_output(move || {
            GetStageOutput::builder()
                .stage_name("dev")
                .variables("deployerRoutes", &routes)
                .build()
        });
    let authorizers = mock!(Apigw::get_authorizers)
        .match_requests(|i| i.rest_api_id() == Some(API_ID))
        .then_output(|| GetAuthorizersOutput::builder().build());
    let validators = mock!(Apigw::get_request_validators)
        .match_requests(|i| i.rest_api_id() == Some(API_ID))
        .then_output(|| {
            GetRequestValidatorsOutput::builder()
                .items(
                    aws_sdk_apigateway::types::RequestValidator::builder()
                        .id(VALIDATOR_ID)
                        .name(VALIDATOR_NAME)
                        .validate_request_parameters(true)
                        .validate_request_body(false)
                        .build(),
                )
                .build()
        });
    let tables = no_tables();
    let clients = Clients {
        iam: mock_client!(
            aws_sdk_iam,
            RuleMode::MatchAny,
            &[&no_role, &super::support::no_tenant_roles()]
        ),
        ..clients_api(
            &[&list, &get, &policy],
            &[&tables],
            &[&apis, &tags, &resources, &stage, &authorizers, &validators],
            RuleMode::MatchAny,
        )
    };

    let actual = observe(&clients, "represent", "dev")
        .await
        .expect("observed");
    assert_eq!(
        actual.rest_apis,
        vec![want],
        "the other stage's API is not ours"
    );
    let p = plan(&d, &actual);
    let api_changes: Vec<&deployer::Change> = p
        .changes
        .iter()
        .filter(|c| c.resource.contains(API))
        .collect();
    assert!(api_changes.iter().all(|c| c.action == Action::NoOp), "{p}");
    let statement = |function: &str, api: &str| ActualStatement {
        function: function.to_string(),
        statement_id: format!("deployer-apigateway-{api}"),
        api_id: api.to_string(),
    };
    assert_eq!(
        actual.api_statements,
        vec![
            statement(COUNTIES, API_ID),
            statement(COUNTIES, "gone9"),
            statement(REPS, API_ID),
        ]
    );
    let removals: Vec<String> = p
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| format!("{} ({})", c.resource, c.reason))
        .collect();
    assert_eq!(
        removals,
        vec![format!(
            "permission deployer-apigateway-gone9 on {COUNTIES} (statement deployer-apigateway-gone9 names API gone9, which no longer exists)"
        )]
    );
    assert_eq!(
        deployer::api_urls(&clients, "dev", &actual)
            .get("api")
            .map(String::as_str),
        Some("https://a1b2c3.execute-api.us-east-1.amazonaws.com/dev")
    );
}

#[test]
fn plan_of_a_fresh_api_lists_routes_permissions_and_the_deployment() {
    let d = desired_of(&app_with(api(TenantSource::default())));
    let p = plan(&d, &up_to_date(&d));
    let api_lines: Vec<String> = p
        .to_string()
        .lines()
        .skip_while(|l| !l.contains("rest api"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        api_lines.join("\n"),
        "  + create  rest api represent-dev-api  (not deployed yet)
  + create  request validator deployer-tenant-parameters on represent-dev-api  (not deployed yet)
        validateRequestParameters true (the tenant parameter is required)
  + create  route GET /representatives on represent-dev-api  (not deployed yet)
        invokes function represent-dev-representatives
        integration.request.header.X-Amz-Tenant-Id <- method.request.header.x-tenant-id
  + create  route GET /counties on represent-dev-api  (not deployed yet)
        invokes function represent-dev-counties
  + create  route GET /counties/{fips} on represent-dev-api  (not deployed yet)
        invokes function represent-dev-counties
  + create  permission for represent-dev-api to invoke represent-dev-counties  (the function does not allow this API yet)
  + create  permission for represent-dev-api to invoke represent-dev-representatives  (the function does not allow this API yet)
  + create  deployment of represent-dev-api to stage dev  (routes changed)

Plan: 8 to create, 0 to update, 0 to replace, 0 to delete, 3 unchanged."
    );
}

#[test]
fn api_no_longer_in_the_stack_is_deleted() {
    let d = desired_of(&base_app(Function::new("counties")));
    let with = desired_of(&app_with(api(TenantSource::default())));
    let mut actual = up_to_date(&d);
    actual.rest_apis = vec![deployed_api(&with)];
    let p = plan(&d, &actual);
    let deletes: Vec<&str> = p
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.resource.as_str())
        .collect();
    assert_eq!(deletes, vec!["rest api represent-dev-api (a1b2c3)"]);
}

fn statements_of(api: &str, functions: &[&str]) -> Vec<ActualStatement> {
    functions
        .iter()
        .map(|f| ActualStatement {
            function: f.to_string(),
            statement_id: format!("deployer-apigateway-{api}"),
            api_id: api.to_string(),
        })
        .collect()
}

#[tokio::test]
async fn an_api_deleted_while_its_functions_stay_takes_its_statements_after_it() {
    let d = desired_of(&base_app(Function::new("counties")));
    let with = desired_of(&app_with(api(TenantSource::default())));
    let mut actual = up_to_date(&d);
    actual.rest_apis = vec![deployed_api(&with)];
    actual.api_statements = statements_of(API_ID, &[COUNTIES, REPS]);
    let (p, report, calls) = deploy(&d, &actual).await;
    let shown = p.to_string();
    assert!(
        shown.contains(&format!(
            "delete  permission deployer-apigateway-{API_ID} on {COUNTIES}  (statement deployer-apigateway-{API_ID} names API {API} ({API_ID}), which this deploy deletes)"
        )),
        "{shown}"
    );
    assert_eq!(
        calls,
        vec![
            format!("DeleteRestApi {API_ID}"),
            format!("RemovePermission {COUNTIES} deployer-apigateway-{API_ID}"),
            format!("RemovePermission {REPS} deployer-apigateway-{API_ID}"),
        ]
    );
    assert_eq!(report.changes.len(), 3);
}

#[tokio::test]
async fn statements_naming_an_api_that_is_gone_are_removed_and_a_missing_one_counts_as_done() {
    let d = desired_of(&app_with(api(TenantSource::default())));
    let mut actual = with_api(&d);
    actual.api_statements = statements_of(API_ID, &[COUNTIES, REPS]);
    actual
        .api_statements
        .extend(statements_of("old1", &[COUNTIES, REPS]));
    // An authorizer's statement names its API too.
    actual.api_statements.push(ActualStatement {
        function: REPS.to_string(),
        statement_id: "deployer-apigateway-old1-authorizer".to_string(),
        api_id: "old1".to_string(),
    });
    let p = plan(&d, &actual);
    let changed: Vec<(&str, Action)> = p
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .map(|c| (c.resource.as_str(), c.action))
        .collect();
    assert_eq!(
        changed,
        vec![
            (
                "permission deployer-apigateway-old1 on represent-dev-counties",
                Action::Delete
            ),
            (
                "permission deployer-apigateway-old1 on represent-dev-representatives",
                Action::Delete
            ),
            (
                "permission deployer-apigateway-old1-authorizer on represent-dev-representatives",
                Action::Delete
            ),
        ],
        "{p}"
    );
    let removed = mock!(Lambda::remove_permission)
        .match_requests(|i| i.function_name() == Some(COUNTIES))
        .then_output(|| RemovePermissionOutput::builder().build());
    let gone = mock!(Lambda::remove_permission)
        .match_requests(|i| i.function_name() == Some(REPS))
        .then_error(|| {
            RemovePermissionError::ResourceNotFoundException(
                aws_sdk_lambda::types::error::ResourceNotFoundException::builder()
                    .message("The resource you requested does not exist.")
                    .build(),
            )
        });
    let clients = clients_api(&[&removed, &gone], &[], &[], RuleMode::MatchAny);
    let report = apply(&clients, &p, &fast(), &|_| {})
        .await
        .expect("a statement already gone counts as removed");
    assert_eq!((removed.num_calls(), gone.num_calls()), (1, 2));
    assert_eq!(report.changes.len(), 3);
}

#[test]
fn a_destroy_leaves_statements_to_the_functions_it_deletes() {
    let d = desired_of(&app_with(api(TenantSource::default())));
    let mut actual = with_api(&d);
    actual.api_statements = statements_of("old1", &[COUNTIES, REPS]);
    let p = plan_destroy(&actual, "represent", "dev");
    assert!(
        p.changes
            .iter()
            .all(|c| c.kind != deployer::ResourceKind::Permission),
        "{p}"
    );
}

fn problems(app: &App) -> Vec<StackError> {
    validate(app, "dev").expect_err("invalid stack").0
}

#[test]
fn http_api_is_refused_for_per_tenant_functions() {
    let app = base_app(Function::new("counties")).rest_api(
        RestApi::http("api")
            .route("GET", "/representatives", "representatives")
            .route("GET", "/counties", "counties"),
    );
    let errors = problems(&app);
    assert_eq!(
        errors,
        vec![StackError::HttpApiPerTenant {
            api: "api".to_string(),
            function: "representatives".to_string(),
        }]
    );
    let message = errors[0].to_string();
    assert!(
        message.contains("HTTP APIs cannot set X-Amz-Tenant-Id; use a REST API"),
        "{message}"
    );
}

#[test]
fn every_api_problem_is_reported_at_once() {
    let app = base_app(Function::new("counties")).rest_api(
        RestApi::new("api")
            .tenant_from(TenantSource::Path("state"))
            .route("GET", "/states/{state}/representatives", "representatives")
            .route("GET", "/states/{state}/representatives", "representatives")
            .route("GET", "/counties", "counties")
            .route("FETCH", "/states/{state}", "counties")
            .route("GET", "/states/{proxy+}/x", "counties")
            .route("GET", "/states/{state}/mayors", "mayors"),
    );
    let errors = problems(&app);
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expected = [
        "route `GET /states/{state}/representatives` is defined more than once",
        "route path `/counties` has no `{state}`",
        "method `FETCH` is not one of GET",
        "route path `/states/{proxy+}/x` has a greedy `{param+}` that is not the last segment",
        "route `GET /states/{state}/mayors` targets function `mayors`, which the stack does not declare",
    ];
    for e in expected {
        assert!(
            messages.iter().any(|m| m.contains(e)),
            "missing {e:?} in {messages:#?}"
        );
    }
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.contains("has no `{state}`"))
            .count(),
        2,
        "`/counties` and `/states/{{proxy+}}/x` lack the tenant parameter: {messages:#?}"
    );
    assert_eq!(errors.len(), 6, "{messages:#?}");
}

/// The Represent API taking the tenant from a TOKEN authorizer, `authorizer`, a shared function.
fn authorizer_app() -> App {
    base_app(Function::new("counties"))
        .function(Function::new("authorizer"))
        .rest_api(api(TenantSource::Authorizer {
            function: "authorizer",
            context_key: "tenantId",
        }))
}

const AUTHORIZER_MAPPING: &str =
    r#"{"integration.request.header.X-Amz-Tenant-Id": "context.authorizer.tenantId"}"#;

#[tokio::test]
async fn fresh_api_with_an_authorizer_guards_every_route_and_maps_its_context() {
    let d = desired_of(&authorizer_app());
    let (p, report, calls) = deploy(&d, &up_to_date(&d)).await;
    assert!(
        p.to_string().contains(
            "  + create  authorizer represent-dev-api-tenant on represent-dev-api  (not deployed yet)"
        ),
        "{p}"
    );
    let tags =
        r#"{"deployer:app": "represent", "deployer:logical-id": "api", "deployer:stage": "dev"}"#;
    let custom = format!("auth=CUSTOM authorizer={AUTHORIZER_ID} {{}}");
    assert_eq!(
        calls,
        vec![
            format!("CreateRestApi {API} {tags}"),
            format!(
                "CreateAuthorizer {API_ID} {API}-tenant TOKEN {} method.request.header.Authorization",
                integration_uri(&arn(AUTHORIZER))
            ),
            format!("CreateResource {ROOT} representatives"),
            format!("PutMethod res-representatives GET {custom}"),
            put_integration("res-representatives", REPS, AUTHORIZER_MAPPING),
            format!("CreateResource {ROOT} counties"),
            format!("PutMethod res-counties GET {custom}"),
            put_integration("res-counties", COUNTIES, "{}"),
            "CreateResource res-counties {fips}".to_string(),
            format!("PutMethod res-counties-{{fips}} GET {custom}"),
            put_integration("res-counties-{fips}", COUNTIES, "{}"),
            permission(COUNTIES),
            permission(REPS),
            format!(
                "AddPermission {AUTHORIZER} deployer-apigateway-{API_ID}-authorizer lambda:InvokeFunction apigateway.amazonaws.com {}",
                authorizer_source_arn("us-east-1", ACCOUNT, API_ID)
            ),
            deployment(&d),
        ],
        "no required tenant parameter: the tenant comes from the authorizer's context"
    );
    assert_eq!(
        authorizer_source_arn("us-east-1", ACCOUNT, API_ID),
        format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:{API_ID}/authorizers/*")
    );
    assert_eq!(report.mutating_calls as usize, calls.len());
}

#[tokio::test]
async fn unchanged_api_with_an_authorizer_makes_no_mutating_call() {
    let d = desired_of(&authorizer_app());
    let (p, report, calls) = deploy(&d, &with_api(&d)).await;
    assert!(!p.has_changes(), "{p}");
    assert_eq!(calls, Vec::<String>::new());
    assert_eq!(report.mutating_calls, 0);
}

#[tokio::test]
async fn changed_authorizer_is_replaced_routes_repointed_and_the_old_one_deleted() {
    let d = desired_of(&authorizer_app());
    let mut actual = with_api(&d);
    // Deployed by hand with another identity source: the deployer replaces it.
    actual.rest_apis[0].authorizers[0].identity_source = "method.request.header.X-Token".into();
    actual.rest_apis[0].authorizers[0].id = "old01".into();
    let (p, _, calls) = deploy(&d, &actual).await;
    assert!(
        p.to_string()
            .contains("  ~ update  authorizer represent-dev-api-tenant on represent-dev-api"),
        "{p}"
    );
    let custom = format!("auth=CUSTOM authorizer={AUTHORIZER_ID} {{}}");
    assert_eq!(
        calls,
        vec![
            format!(
                "CreateAuthorizer {API_ID} {API}-tenant TOKEN {} method.request.header.Authorization",
                integration_uri(&arn(AUTHORIZER))
            ),
            "DeleteMethod res-representatives GET".to_string(),
            format!("PutMethod res-representatives GET {custom}"),
            put_integration("res-representatives", REPS, AUTHORIZER_MAPPING),
            "DeleteMethod res-counties GET".to_string(),
            format!("PutMethod res-counties GET {custom}"),
            put_integration("res-counties", COUNTIES, "{}"),
            "DeleteMethod res-counties-{fips} GET".to_string(),
            format!("PutMethod res-counties-{{fips}} GET {custom}"),
            put_integration("res-counties-{fips}", COUNTIES, "{}"),
            "DeleteAuthorizer old01".to_string(),
            deployment(&d),
        ],
        "the new authorizer exists before the methods move to it; the old one goes after"
    );
}

#[test]
fn authorizer_must_be_a_declared_shared_function() {
    let missing = base_app(Function::new("counties")).rest_api(
        RestApi::new("api")
            .tenant_from(TenantSource::Authorizer {
                function: "authorizer",
                context_key: "tenantId",
            })
            .route("GET", "/representatives", "representatives"),
    );
    let errors = problems(&missing);
    assert_eq!(
        errors,
        vec![StackError::AuthorizerUnknownFunction {
            api: "api".to_string(),
            function: "authorizer".to_string(),
            declared: vec!["representatives".to_string(), "counties".to_string()],
        }]
    );
    assert!(
        errors[0].to_string().contains(
            "the tenant authorizer is function `authorizer`, which the stack does not declare"
        ),
        "{}",
        errors[0]
    );

    let per_tenant = base_app(Function::new("counties"))
        .function(Function::new("authorizer").per_tenant())
        .rest_api(
            RestApi::new("api")
                .tenant_from(TenantSource::Authorizer {
                    function: "authorizer",
                    context_key: "tenantId",
                })
                .route("GET", "/representatives", "representatives"),
        );
    let errors = problems(&per_tenant);
    assert_eq!(
        errors,
        vec![StackError::AuthorizerPerTenant {
            api: "api".to_string(),
            function: "authorizer".to_string(),
        }]
    );
    assert!(
        errors[0]
            .to_string()
            .contains("invokes an authorizer without a tenant id"),
        "{}",
        errors[0]
    );
}

#[test]
fn path_tenant_maps_the_path_parameter_onto_the_tenant_header() {
    let d = desired_of(&app_with(
        RestApi::new("api")
            .tenant_from(TenantSource::Path("state"))
            .route("get", "/states/{state}/representatives", "representatives"),
    ));
    let route = &d.rest_apis[0].routes[0];
    assert_eq!(route.method, "GET");
    assert_eq!(
        route.method_parameters,
        BTreeMap::from([("method.request.path.state".to_string(), true)])
    );
    assert_eq!(
        route.integration_parameters,
        BTreeMap::from([(
            "integration.request.header.X-Amz-Tenant-Id".to_string(),
            "method.request.path.state".to_string()
        )])
    );
    let seen: BTreeSet<&str> = d.rest_apis.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(seen, BTreeSet::from([API]));
}

/// Represent's mix: public routes take the state from a header (validated at the gateway), the
/// staff route `GET /inbox` takes it from the token authorizer.
fn staff_app() -> App {
    base_app(Function::new("counties"))
        .function(Function::new("authorizer"))
        .rest_api(
            RestApi::new("api")
                .route("GET", "/representatives", "representatives")
                .route_with_tenant(
                    "GET",
                    "/inbox",
                    "representatives",
                    TenantSource::Authorizer {
                        function: "authorizer",
                        context_key: "tenantId",
                    },
                ),
        )
}

#[tokio::test]
async fn a_staff_route_is_authorized_while_public_routes_are_validated() {
    let d = desired_of(&staff_app());
    let (p, report, calls) = deploy(&d, &up_to_date(&d)).await;
    let text = p.to_string();
    for line in [
        "  + create  request validator deployer-tenant-parameters on represent-dev-api  (not deployed yet)",
        "  + create  authorizer represent-dev-api-tenant on represent-dev-api  (not deployed yet)",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let tags =
        r#"{"deployer:app": "represent", "deployer:logical-id": "api", "deployer:stage": "dev"}"#;
    assert_eq!(
        calls,
        vec![
            format!("CreateRestApi {API} {tags}"),
            format!(
                "CreateAuthorizer {API_ID} {API}-tenant TOKEN {} method.request.header.Authorization",
                integration_uri(&arn(AUTHORIZER))
            ),
            format!("CreateRequestValidator {API_ID} {VALIDATOR_NAME} parameters=true body=false"),
            format!("CreateResource {ROOT} representatives"),
            format!(
                "PutMethod res-representatives GET auth=NONE validator={VALIDATOR_ID} {REPS_HEADER}"
            ),
            put_integration("res-representatives", REPS, REPS_MAPPING),
            format!("CreateResource {ROOT} inbox"),
            format!("PutMethod res-inbox GET auth=CUSTOM authorizer={AUTHORIZER_ID} {{}}"),
            put_integration("res-inbox", REPS, AUTHORIZER_MAPPING),
            permission(REPS),
            format!(
                "AddPermission {AUTHORIZER} deployer-apigateway-{API_ID}-authorizer lambda:InvokeFunction apigateway.amazonaws.com {}",
                authorizer_source_arn("us-east-1", ACCOUNT, API_ID)
            ),
            deployment(&d),
        ],
        "the staff route has no header to require: its tenant comes from the token"
    );
    assert_eq!(report.mutating_calls as usize, calls.len());

    let (again, _, calls) = deploy(&d, &with_api(&d)).await;
    assert!(!again.has_changes(), "{again}");
    assert_eq!(calls, Vec::<String>::new());
}

#[tokio::test]
async fn a_validator_that_stopped_validating_is_corrected_in_place() {
    let d = desired_of(&app_with(api(TenantSource::default())));
    let mut actual = with_api(&d);
    actual.rest_apis[0].validators[0].validate_parameters = false;
    let (p, _, calls) = deploy(&d, &actual).await;
    assert!(
        p.to_string().contains(
            "  ~ update  request validator deployer-tenant-parameters on represent-dev-api  (does not validate request parameters)"
        ),
        "{p}"
    );
    assert_eq!(
        calls,
        vec![
            format!(
                "UpdateRequestValidator {VALIDATOR_ID} replace /validateRequestParameters true"
            ),
            deployment(&d),
        ],
        "the methods keep pointing at the same validator"
    );
}

#[tokio::test]
async fn an_api_deployed_without_a_validator_gets_one_on_its_tenant_routes() {
    let d = desired_of(&app_with(api(TenantSource::default())));
    let mut before = deployed_api(&d);
    before.validators.clear();
    for r in &mut before.resources {
        for m in r.methods.values_mut() {
            m.request_validator_id = None;
        }
    }
    let mut actual = up_to_date(&d);
    actual.rest_apis = vec![before];
    let (_, _, calls) = deploy(&d, &actual).await;
    assert_eq!(
        calls,
        vec![
            format!("CreateRequestValidator {API_ID} {VALIDATOR_NAME} parameters=true body=false"),
            "DeleteMethod res-representatives GET".to_string(),
            format!(
                "PutMethod res-representatives GET auth=NONE validator={VALIDATOR_ID} {REPS_HEADER}"
            ),
            put_integration("res-representatives", REPS, REPS_MAPPING),
            deployment(&d),
        ],
        "routes to the shared function have no tenant to require and stay as they are"
    );
}

#[test]
fn an_api_has_one_authorizer_function() {
    let two = base_app(Function::new("counties"))
        .function(Function::new("authorizer"))
        .function(Function::new("other-authorizer"))
        .rest_api(
            staff_api_route(RestApi::new("api"), "/a", "authorizer").route_with_tenant(
                "GET",
                "/b",
                "representatives",
                TenantSource::Authorizer {
                    function: "other-authorizer",
                    context_key: "tenantId",
                },
            ),
        );
    let errors = problems(&two);
    assert_eq!(
        errors,
        vec![StackError::AuthorizerFunctionsDiffer {
            api: "api".to_string(),
            functions: vec!["authorizer".to_string(), "other-authorizer".to_string()],
        }]
    );
    assert!(
        errors[0]
            .to_string()
            .contains("an API has one token authorizer"),
        "{}",
        errors[0]
    );
}

fn staff_api_route(api: RestApi, path: &str, authorizer: &'static str) -> RestApi {
    api.route_with_tenant(
        "GET",
        path,
        "representatives",
        TenantSource::Authorizer {
            function: authorizer,
            context_key: "tenantId",
        },
    )
}
