//! API Gateway REST APIs: the control plane through the real `aws-sdk-apigateway` client, and the
//! data plane (`/restapis/{api}/{stage}/_user_request_/{path}`) in front of the probe, a
//! PER_TENANT function, with the tenant mapped from a header, a query string, a path parameter
//! or a TOKEN authorizer's context.

use aws_sdk_apigateway::types::{AuthorizerType, IntegrationType};
use serde_json::Value;

use crate::support::{self, RawResponse, create_function};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

fn apigateway_client(emulator: &emulator::Emulator) -> aws_sdk_apigateway::Client {
    aws_sdk_apigateway::Client::new(&support::sdk_config(&emulator.endpoint()))
}

fn function_uri(function: &str) -> String {
    format!(
        "arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}/invocations"
    )
}

async fn create_api(client: &aws_sdk_apigateway::Client, name: &str) -> (String, String) {
    let api = client
        .create_rest_api()
        .name(name)
        .send()
        .await
        .expect("CreateRestApi");
    (
        api.id().expect("id").to_string(),
        api.root_resource_id().expect("root resource").to_string(),
    )
}

async fn create_resource(
    client: &aws_sdk_apigateway::Client,
    api: &str,
    parent: &str,
    part: &str,
) -> String {
    client
        .create_resource()
        .rest_api_id(api)
        .parent_id(parent)
        .path_part(part)
        .send()
        .await
        .expect("CreateResource")
        .id()
        .expect("resource id")
        .to_string()
}

/// A GET method on `resource` with `required` method request parameters, integrated with
/// `function` through AWS_PROXY, its tenant id mapped from `tenant_source` when given.
async fn proxy_get(
    client: &aws_sdk_apigateway::Client,
    api: &str,
    resource: &str,
    function: &str,
    required: &[&str],
    tenant_source: Option<&str>,
) {
    let mut method = client
        .put_method()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method("GET")
        .authorization_type("NONE");
    for name in required {
        method = method.request_parameters(*name, true);
    }
    // Required parameters are only enforced by a request validator, as on AWS.
    if !required.is_empty() {
        method = method.request_validator_id(parameters_validator(client, api).await);
    }
    method.send().await.expect("PutMethod");
    let mut integration = client
        .put_integration()
        .rest_api_id(api)
        .resource_id(resource)
        .http_method("GET")
        .r#type(IntegrationType::AwsProxy)
        .integration_http_method("POST")
        .uri(function_uri(function));
    if let Some(source) = tenant_source {
        integration =
            integration.request_parameters("integration.request.header.X-Amz-Tenant-Id", source);
    }
    integration.send().await.expect("PutIntegration");
}

/// The API's request validator of parameters, created on first use.
async fn parameters_validator(client: &aws_sdk_apigateway::Client, api: &str) -> String {
    let listed = client
        .get_request_validators()
        .rest_api_id(api)
        .send()
        .await
        .expect("GetRequestValidators");
    if let Some(id) = listed
        .items()
        .iter()
        .find(|v| v.name() == Some("params"))
        .and_then(|v| v.id())
    {
        return id.to_string();
    }
    client
        .create_request_validator()
        .rest_api_id(api)
        .name("params")
        .validate_request_parameters(true)
        .send()
        .await
        .expect("CreateRequestValidator")
        .id()
        .expect("an id")
        .to_string()
}

async fn deploy(client: &aws_sdk_apigateway::Client, api: &str, stage: &str) {
    client
        .create_deployment()
        .rest_api_id(api)
        .stage_name(stage)
        .send()
        .await
        .expect("CreateDeployment");
}

/// Lets API Gateway invoke `function` for any stage, method and path of `api`.
async fn permit(lambda: &aws_sdk_lambda::Client, function: &str, api: &str) {
    lambda
        .add_permission()
        .function_name(function)
        .statement_id(format!("apigateway-{api}"))
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/*"))
        .send()
        .await
        .expect("AddPermission");
}

async fn call(
    emulator: &emulator::Emulator,
    api: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> RawResponse {
    support::raw_request(
        emulator.local_addr(),
        "GET",
        &format!("/restapis/{api}/prod/_user_request_{path_and_query}"),
        headers,
        b"",
    )
    .await
}

/// The probe's answer and the event it received, from a 200 proxy response.
fn probe_answer(response: &RawResponse) -> (Value, Value) {
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let body = response.json();
    (body["answer"].clone(), body["event"].clone())
}

async fn environments(emulator: &emulator::Emulator) -> usize {
    let status = support::raw_request(emulator.local_addr(), "GET", "/_emulator/status", &[], b"")
        .await
        .json();
    status["environments"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn rest_api_control_plane_round_trips_and_reports_errors() {
    let (emulator, _dir) = support::start().await;
    let client = apigateway_client(&emulator);

    let created = client
        .create_rest_api()
        .name("represent")
        .description("the app")
        .tags("deployer:app", "represent")
        .send()
        .await
        .expect("CreateRestApi");
    let api = created.id().expect("id").to_string();
    let root = created.root_resource_id().expect("root").to_string();
    assert_eq!(api.len(), 10);
    assert!(
        api.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    assert!(created.created_date().is_some());
    let (other, _) = create_api(&client, "second").await;

    let fetched = client
        .get_rest_api()
        .rest_api_id(&api)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.name(), Some("represent"));
    assert_eq!(fetched.description(), Some("the app"));
    let first_page = client.get_rest_apis().limit(1).send().await.unwrap();
    assert_eq!(first_page.items().len(), 1);
    let position = first_page.position().expect("a second page").to_string();
    let second_page = client
        .get_rest_apis()
        .limit(1)
        .position(position)
        .send()
        .await
        .unwrap();
    assert_eq!(second_page.items().len(), 1);
    assert_eq!(second_page.position(), None);
    let mut ids: Vec<&str> = first_page
        .items()
        .iter()
        .chain(second_page.items())
        .filter_map(|a| a.id())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![api.as_str(), other.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);

    let states = create_resource(&client, &api, &root, "states").await;
    let state = create_resource(&client, &api, &states, "{state}").await;
    let duplicate = client
        .create_resource()
        .rest_api_id(&api)
        .parent_id(&root)
        .path_part("states")
        .send()
        .await
        .expect_err("the path exists");
    assert!(
        duplicate
            .as_service_error()
            .unwrap()
            .is_conflict_exception(),
        "{duplicate:?}"
    );
    let orphan = client
        .create_resource()
        .rest_api_id(&api)
        .parent_id("nosuchthing")
        .path_part("x")
        .send()
        .await
        .expect_err("no such parent");
    assert!(orphan.as_service_error().unwrap().is_not_found_exception());

    proxy_get(
        &client,
        &api,
        &state,
        "probe",
        &["method.request.header.x-tenant-id"],
        Some("method.request.header.x-tenant-id"),
    )
    .await;
    let method = client
        .get_method()
        .rest_api_id(&api)
        .resource_id(&state)
        .http_method("GET")
        .send()
        .await
        .unwrap();
    assert_eq!(method.authorization_type(), Some("NONE"));
    assert!(method.request_parameters().unwrap()["method.request.header.x-tenant-id"]);
    let integration = method
        .method_integration()
        .expect("the integration is embedded");
    assert_eq!(integration.r#type(), Some(&IntegrationType::AwsProxy));
    assert_eq!(integration.uri(), Some(function_uri("probe").as_str()));
    assert_eq!(
        integration.request_parameters().unwrap()["integration.request.header.X-Amz-Tenant-Id"],
        "method.request.header.x-tenant-id"
    );
    let again = client
        .put_method()
        .rest_api_id(&api)
        .resource_id(&state)
        .http_method("GET")
        .authorization_type("NONE")
        .send()
        .await
        .expect_err("the method exists");
    assert!(again.as_service_error().unwrap().is_conflict_exception());

    // A mapping from a method request parameter the method never declared is refused.
    client
        .put_method()
        .rest_api_id(&api)
        .resource_id(&states)
        .http_method("GET")
        .authorization_type("NONE")
        .send()
        .await
        .unwrap();
    let undeclared = client
        .put_integration()
        .rest_api_id(&api)
        .resource_id(&states)
        .http_method("GET")
        .r#type(IntegrationType::AwsProxy)
        .integration_http_method("POST")
        .uri(function_uri("probe"))
        .request_parameters(
            "integration.request.header.X-Amz-Tenant-Id",
            "method.request.header.x-tenant-id",
        )
        .send()
        .await
        .expect_err("undeclared source");
    assert!(
        undeclared
            .as_service_error()
            .unwrap()
            .is_bad_request_exception()
    );

    let resources = client
        .get_resources()
        .rest_api_id(&api)
        .embed("methods")
        .send()
        .await
        .unwrap();
    let paths: Vec<&str> = resources.items().iter().filter_map(|r| r.path()).collect();
    assert_eq!(paths, ["/", "/states", "/states/{state}"]);
    let embedded = resources.items()[2].resource_methods().expect("methods")["GET"].clone();
    assert!(embedded.method_integration().is_some());

    let arn = format!("arn:aws:apigateway:{REGION}::/restapis/{api}");
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags("deployer:stage", "dev")
        .send()
        .await
        .expect("TagResource");
    let tags = client.get_tags().resource_arn(&arn).send().await.unwrap();
    let tags = tags.tags().expect("tags");
    assert_eq!(tags["deployer:app"], "represent");
    assert_eq!(tags["deployer:stage"], "dev");

    // Deleting a resource deletes its children.
    client
        .delete_resource()
        .rest_api_id(&api)
        .resource_id(&states)
        .send()
        .await
        .expect("DeleteResource");
    let gone = client
        .get_method()
        .rest_api_id(&api)
        .resource_id(&state)
        .http_method("GET")
        .send()
        .await
        .expect_err("the child went with its parent");
    assert!(gone.as_service_error().unwrap().is_not_found_exception());
    let undeployable = client
        .create_deployment()
        .rest_api_id(&api)
        .stage_name("prod")
        .send()
        .await
        .expect_err("no methods left");
    assert!(
        undeployable
            .as_service_error()
            .unwrap()
            .is_bad_request_exception()
    );

    client
        .delete_rest_api()
        .rest_api_id(&api)
        .send()
        .await
        .expect("DeleteRestApi");
    let missing = client
        .get_rest_api()
        .rest_api_id(&api)
        .send()
        .await
        .expect_err("deleted");
    assert!(missing.as_service_error().unwrap().is_not_found_exception());
    emulator.shutdown().await;
}

#[tokio::test]
async fn rest_apis_deployments_and_stages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator::Emulator::start(support::config(dir.path()))
        .await
        .unwrap();
    let client = apigateway_client(&emulator);
    let (api, root) = create_api(&client, "durable").await;
    let resource = create_resource(&client, &api, &root, "things").await;
    proxy_get(&client, &api, &resource, "probe", &[], None).await;
    deploy(&client, &api, "prod").await;
    emulator.shutdown().await;

    let emulator = emulator::Emulator::start(support::config(dir.path()))
        .await
        .unwrap();
    let client = apigateway_client(&emulator);
    let fetched = client
        .get_rest_api()
        .rest_api_id(&api)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.name(), Some("durable"));
    let stage = client
        .get_stage()
        .rest_api_id(&api)
        .stage_name("prod")
        .send()
        .await
        .expect("the stage is still there");
    let deployments = client
        .get_deployments()
        .rest_api_id(&api)
        .send()
        .await
        .unwrap();
    assert_eq!(deployments.items().len(), 1);
    assert_eq!(stage.deployment_id(), deployments.items()[0].id());
    let stages = client.get_stages().rest_api_id(&api).send().await.unwrap();
    assert_eq!(stages.item().len(), 1);
    let method = client
        .get_method()
        .rest_api_id(&api)
        .resource_id(&resource)
        .http_method("GET")
        .send()
        .await
        .unwrap();
    assert!(method.method_integration().is_some());
    emulator.shutdown().await;
}

/// An emulator with the probe as a PER_TENANT function that API Gateway may invoke, and an API
/// deployed to `prod` whose routes map the tenant from each kind of source.
struct TenantApi {
    emulator: emulator::Emulator,
    _dir: tempfile::TempDir,
    client: aws_sdk_apigateway::Client,
    lambda: aws_sdk_lambda::Client,
    role: String,
    api: String,
    root: String,
}

async fn tenant_api() -> TenantApi {
    let (emulator, dir) = support::start().await;
    let client = apigateway_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&support::iam_client(&emulator)).await;
    create_function(&lambda, &role, "probe", support::probe_zip(), true).await;
    let (api, root) = create_api(&client, "tenants").await;
    permit(&lambda, "probe", &api).await;

    let by_header = create_resource(&client, &api, &root, "whoami").await;
    proxy_get(
        &client,
        &api,
        &by_header,
        "probe",
        &["method.request.header.x-tenant-id"],
        Some("method.request.header.x-tenant-id"),
    )
    .await;
    let by_query = create_resource(&client, &api, &root, "by-query").await;
    proxy_get(
        &client,
        &api,
        &by_query,
        "probe",
        &["method.request.querystring.tenant"],
        Some("method.request.querystring.tenant"),
    )
    .await;
    let states = create_resource(&client, &api, &root, "states").await;
    let state = create_resource(&client, &api, &states, "{state}").await;
    proxy_get(
        &client,
        &api,
        &state,
        "probe",
        &["method.request.path.state"],
        Some("method.request.path.state"),
    )
    .await;
    let unmapped = create_resource(&client, &api, &root, "unmapped").await;
    proxy_get(&client, &api, &unmapped, "probe", &[], None).await;
    deploy(&client, &api, "prod").await;
    TenantApi {
        emulator,
        _dir: dir,
        client,
        lambda,
        role,
        api,
        root,
    }
}

#[tokio::test]
async fn a_header_mapped_tenant_reaches_its_own_environment() {
    let t = tenant_api().await;

    let tx = call(
        &t.emulator,
        &t.api,
        "/whoami?x=1&x=2",
        &[("x-tenant-id", "TX")],
    )
    .await;
    assert_eq!(tx.header("x-probe"), Some("proxy"));
    assert_eq!(tx.header("content-type"), Some("application/json"));
    let (answer, event) = probe_answer(&tx);
    assert_eq!(answer["tenant"], "TX");
    assert_eq!(event["resource"], "/whoami");
    assert_eq!(event["path"], "/whoami");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["headers"]["x-tenant-id"], "TX");
    assert_eq!(event["queryStringParameters"]["x"], "2");
    assert_eq!(
        event["multiValueQueryStringParameters"]["x"],
        serde_json::json!(["1", "2"])
    );
    assert_eq!(event["requestContext"]["apiId"], t.api.as_str());
    assert_eq!(event["requestContext"]["stage"], "prod");
    assert_eq!(event["requestContext"]["accountId"], ACCOUNT);
    assert_eq!(event["requestContext"]["resourcePath"], "/whoami");
    assert_eq!(event["isBase64Encoded"], false);

    let ca = probe_answer(&call(&t.emulator, &t.api, "/whoami", &[("x-tenant-id", "CA")]).await).0;
    assert_eq!(ca["tenant"], "CA");
    assert_ne!(
        ca["pid"], answer["pid"],
        "tenants never share an environment"
    );
    let tx_again =
        probe_answer(&call(&t.emulator, &t.api, "/whoami", &[("x-tenant-id", "TX")]).await).0;
    assert_eq!(tx_again["pid"], answer["pid"], "TX's environment is reused");
    t.emulator.shutdown().await;
}

#[tokio::test]
async fn tenants_come_from_query_strings_and_path_parameters() {
    let t = tenant_api().await;
    let (answer, event) =
        probe_answer(&call(&t.emulator, &t.api, "/by-query?tenant=NY", &[]).await);
    assert_eq!(answer["tenant"], "NY");
    assert_eq!(event["queryStringParameters"]["tenant"], "NY");

    let (answer, event) = probe_answer(&call(&t.emulator, &t.api, "/states/WA", &[]).await);
    assert_eq!(answer["tenant"], "WA");
    assert_eq!(event["resource"], "/states/{state}");
    assert_eq!(event["path"], "/states/WA");
    assert_eq!(event["pathParameters"]["state"], "WA");
    t.emulator.shutdown().await;
}

#[tokio::test]
async fn requests_api_gateway_refuses_never_run_the_function() {
    let t = tenant_api().await;

    let missing = call(&t.emulator, &t.api, "/whoami", &[]).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.json()["message"],
        "Missing required request parameters: [x-tenant-id]"
    );
    let missing_query = call(&t.emulator, &t.api, "/by-query", &[]).await;
    assert_eq!(
        missing_query.json()["message"],
        "Missing required request parameters: [tenant]"
    );

    for path in ["/nowhere", "/states", "/states/TX/counties"] {
        let unknown = call(&t.emulator, &t.api, path, &[("x-tenant-id", "TX")]).await;
        assert_eq!(unknown.status, 403, "{path}");
        assert_eq!(unknown.json()["message"], "Missing Authentication Token");
        assert_eq!(
            unknown.header("x-amzn-ErrorType"),
            Some("MissingAuthenticationTokenException")
        );
    }
    let wrong_method = support::raw_request(
        t.emulator.local_addr(),
        "POST",
        &format!("/restapis/{}/prod/_user_request_/whoami", t.api),
        &[("x-tenant-id", "TX")],
        b"{}",
    )
    .await;
    assert_eq!(wrong_method.status, 403);

    let unknown_stage = support::raw_request(
        t.emulator.local_addr(),
        "GET",
        &format!("/restapis/{}/staging/_user_request_/whoami", t.api),
        &[("x-tenant-id", "TX")],
        b"",
    )
    .await;
    assert_eq!(unknown_stage.status, 403);
    assert_eq!(unknown_stage.json()["message"], "Forbidden");

    // Lambda refuses a PER_TENANT invoke without a tenant; API Gateway passes Lambda's
    // sentence back as a 400, as AWS was recorded doing.
    let unmapped = call(&t.emulator, &t.api, "/unmapped", &[("x-tenant-id", "TX")]).await;
    assert_eq!(unmapped.status, 400);
    assert_eq!(
        unmapped.json()["message"],
        "The invoked function is enabled with tenancy configuration. Add a valid tenant ID in your request and try again."
    );

    assert_eq!(environments(&t.emulator).await, 0, "no function ran");
    t.emulator.shutdown().await;
}

#[tokio::test]
async fn function_failures_and_missing_permissions_are_gateway_errors() {
    let t = tenant_api().await;

    let failed = call(
        &t.emulator,
        &t.api,
        "/whoami?op=fail",
        &[("x-tenant-id", "TX")],
    )
    .await;
    assert_eq!(failed.status, 502);
    assert_eq!(failed.json()["message"], "Internal server error");
    let malformed = call(
        &t.emulator,
        &t.api,
        "/whoami?op=raw",
        &[("x-tenant-id", "TX")],
    )
    .await;
    assert_eq!(
        malformed.status, 502,
        "a bare whoami is not a proxy response"
    );

    // A function whose resource policy does not name this API is never invoked.
    create_function(&t.lambda, &t.role, "private", support::probe_zip(), false).await;
    t.lambda
        .add_permission()
        .function_name("private")
        .statement_id("other-api")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(format!(
            "arn:aws:execute-api:{REGION}:{ACCOUNT}:otherapi00/*"
        ))
        .send()
        .await
        .unwrap();
    let private = create_resource(&t.client, &t.api, &t.root, "private").await;
    proxy_get(&t.client, &t.api, &private, "private", &[], None).await;
    deploy(&t.client, &t.api, "prod").await;
    let denied = call(&t.emulator, &t.api, "/private", &[]).await;
    assert_eq!(denied.status, 500);
    assert_eq!(denied.json()["message"], "Internal server error");

    permit(&t.lambda, "private", &t.api).await;
    let (answer, _) = probe_answer(&call(&t.emulator, &t.api, "/private", &[]).await);
    assert_eq!(
        answer["tenant"],
        Value::Null,
        "an ordinary function has no tenant"
    );
    t.emulator.shutdown().await;
}

#[tokio::test]
async fn stages_serve_their_deployment_not_the_working_copy() {
    let t = tenant_api().await;
    let late = create_resource(&t.client, &t.api, &t.root, "late").await;
    proxy_get(&t.client, &t.api, &late, "probe", &[], Some("'TX'")).await;
    let before = call(&t.emulator, &t.api, "/late", &[]).await;
    assert_eq!(before.status, 403, "not deployed yet");

    deploy(&t.client, &t.api, "prod").await;
    let (answer, _) = probe_answer(&call(&t.emulator, &t.api, "/late", &[]).await);
    assert_eq!(answer["tenant"], "TX", "a static mapping names the tenant");
    t.emulator.shutdown().await;
}

#[tokio::test]
async fn a_token_authorizer_decides_access_and_supplies_the_tenant() {
    let t = tenant_api().await;
    create_function(&t.lambda, &t.role, "authz", support::probe_zip(), false).await;
    t.lambda
        .add_permission()
        .function_name("authz")
        .statement_id("apigateway-authorizer")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(format!(
            "arn:aws:execute-api:{REGION}:{ACCOUNT}:{}/authorizers/*",
            t.api
        ))
        .send()
        .await
        .unwrap();
    let authorizer = t
        .client
        .create_authorizer()
        .rest_api_id(&t.api)
        .name("token")
        .r#type(AuthorizerType::Token)
        .authorizer_uri(function_uri("authz"))
        .identity_source("method.request.header.Authorization")
        .send()
        .await
        .expect("CreateAuthorizer");
    let authorizer_id = authorizer.id().expect("authorizer id");
    let listed = t
        .client
        .get_authorizers()
        .rest_api_id(&t.api)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.items().len(), 1);

    let secured = create_resource(&t.client, &t.api, &t.root, "secured").await;
    t.client
        .put_method()
        .rest_api_id(&t.api)
        .resource_id(&secured)
        .http_method("GET")
        .authorization_type("CUSTOM")
        .authorizer_id(authorizer_id)
        .send()
        .await
        .expect("PutMethod with an authorizer");
    t.client
        .put_integration()
        .rest_api_id(&t.api)
        .resource_id(&secured)
        .http_method("GET")
        .r#type(IntegrationType::AwsProxy)
        .integration_http_method("POST")
        .uri(function_uri("probe"))
        .request_parameters(
            "integration.request.header.X-Amz-Tenant-Id",
            "context.authorizer.tenant",
        )
        .send()
        .await
        .expect("PutIntegration from the authorizer's context");
    deploy(&t.client, &t.api, "prod").await;

    let (answer, event) = probe_answer(
        &call(
            &t.emulator,
            &t.api,
            "/secured",
            &[("Authorization", "allow:OR")],
        )
        .await,
    );
    assert_eq!(answer["tenant"], "OR");
    assert_eq!(event["requestContext"]["authorizer"]["tenant"], "OR");
    assert_eq!(
        event["requestContext"]["authorizer"]["principalId"],
        "probe"
    );

    let denied = call(
        &t.emulator,
        &t.api,
        "/secured",
        &[("Authorization", "nope")],
    )
    .await;
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.json()["Message"],
        "User is not authorized to access this resource with an explicit deny"
    );
    let anonymous = call(&t.emulator, &t.api, "/secured", &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["message"], "Unauthorized");

    // An answer is kept for the authorizer's TTL (300 s unless it says): with the authorizer's
    // function gone, the token it allowed still passes, and a new token cannot be checked.
    t.lambda
        .delete_function()
        .function_name("authz")
        .send()
        .await
        .expect("DeleteFunction");
    let cached = call(
        &t.emulator,
        &t.api,
        "/secured",
        &[("Authorization", "allow:OR")],
    )
    .await;
    assert_eq!(probe_answer(&cached).0["tenant"], "OR");
    let unchecked = call(
        &t.emulator,
        &t.api,
        "/secured",
        &[("Authorization", "allow:WA")],
    )
    .await;
    assert_eq!(unchecked.status, 500);
    t.emulator.shutdown().await;
}

#[tokio::test]
async fn required_parameters_are_enforced_only_by_a_request_validator() {
    let t = tenant_api().await;
    // The same required header on a method without a validator: API Gateway lets the request
    // through, and Lambda refuses the PER_TENANT invoke without a tenant.
    let loose = create_resource(&t.client, &t.api, &t.root, "loose").await;
    t.client
        .put_method()
        .rest_api_id(&t.api)
        .resource_id(&loose)
        .http_method("GET")
        .authorization_type("NONE")
        .request_parameters("method.request.header.x-tenant-id", true)
        .send()
        .await
        .expect("PutMethod");
    t.client
        .put_integration()
        .rest_api_id(&t.api)
        .resource_id(&loose)
        .http_method("GET")
        .r#type(IntegrationType::AwsProxy)
        .integration_http_method("POST")
        .uri(function_uri("probe"))
        .request_parameters(
            "integration.request.header.X-Amz-Tenant-Id",
            "method.request.header.x-tenant-id",
        )
        .send()
        .await
        .expect("PutIntegration");
    deploy(&t.client, &t.api, "prod").await;
    let through = call(&t.emulator, &t.api, "/loose", &[]).await;
    assert_eq!(through.status, 400);
    assert_eq!(
        through.json()["message"],
        "The invoked function is enabled with tenancy configuration. Add a valid tenant ID in your request and try again."
    );

    // The validator's control plane: listed, read, corrected, and kept while a method uses it.
    let id = parameters_validator(&t.client, &t.api).await;
    let read = t
        .client
        .get_request_validator()
        .rest_api_id(&t.api)
        .request_validator_id(&id)
        .send()
        .await
        .expect("GetRequestValidator");
    assert_eq!(
        (
            read.name(),
            read.validate_request_parameters(),
            read.validate_request_body()
        ),
        (Some("params"), true, false)
    );
    let updated = t
        .client
        .update_request_validator()
        .rest_api_id(&t.api)
        .request_validator_id(&id)
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/validateRequestBody")
                .value("true")
                .build(),
        )
        .send()
        .await
        .expect("UpdateRequestValidator");
    assert!(updated.validate_request_body());
    let in_use = t
        .client
        .delete_request_validator()
        .rest_api_id(&t.api)
        .request_validator_id(&id)
        .send()
        .await
        .expect_err("the validator is in use");
    assert!(
        in_use
            .as_service_error()
            .is_some_and(|e| e.is_conflict_exception()),
        "{in_use:?}"
    );
    t.emulator.shutdown().await;
}
