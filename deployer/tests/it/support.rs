//! Fixtures shared by the tests: a small stack, its desired state, deployed copies of it, and
//! mocked SDK clients. Tables and tenant data have their own fixtures at the end.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, BillingModeSummary, KeySchemaElement, KeyType,
    ScalarAttributeType, TableDescription, TableStatus,
};
use aws_sdk_lambda::types::{
    Architecture as SdkArchitecture, EnvironmentResponse, FunctionConfiguration, LastUpdateStatus,
    LogFormat as SdkLogFormat, LoggingConfig, Runtime, State, TenancyConfig, TenantIsolationMode,
};
use aws_smithy_mocks::{Rule, RuleMode, mock_client};
use deployer::clients::Retries;
use deployer::desired::function_tags;
use deployer::seed::ActualPartition;
use deployer::table::{ActualTable, table_tags};
use deployer::{
    Actual, ActualFunction, ActualRole, App, ApplyOptions, Architecture, Clients, Desired,
    Function, KeySchema, LogFormat, Package, Seed, Stage, Table, Tenancy, package_bootstrap,
};

pub const ACCOUNT: &str = "123456789012";
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/represent-dev-exec";
pub const BASIC: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

/// The Represent app in miniature: one per-tenant function and one shared function.
pub fn app() -> App {
    App::new("represent")
        .function(
            Function::new("representatives")
                .per_tenant()
                .memory(256)
                .timeout(10)
                .env("TABLE", "reps")
                .description("Who represents me"),
        )
        .function(Function::new("counties"))
        .stage(Stage::aws("dev").region("us-east-1").unmanaged_log_groups())
}

/// Packages for every binary of `app`, with `revision` mixed into the "binary" so that a new
/// revision means new code.
pub fn packages(app: &App, revision: &str) -> BTreeMap<String, Package> {
    app.functions
        .iter()
        .map(|f| {
            let binary = format!("ELF {} {revision}", f.bin);
            (f.bin.clone(), package_bootstrap(binary.as_bytes()))
        })
        .collect()
}

pub fn desired_of(app: &App, revision: &str) -> Desired {
    deployer::desired(app, "dev", &packages(app, revision)).expect("fixture stack is valid")
}

pub fn desired() -> Desired {
    desired_of(&app(), "v1")
}

/// A function deployed exactly as desired, under `name`.
pub fn deployed_as(d: &Desired, logical: &str, name: &str) -> ActualFunction {
    let f = d.find_function(logical).expect("logical exists");
    ActualFunction {
        name: name.to_string(),
        arn: format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"),
        logical: Some(logical.to_string()),
        code_sha256: f.code_sha256.clone(),
        memory_mb: f.memory_mb,
        timeout_s: f.timeout_s,
        architecture: f.architecture,
        environment: f.environment.clone(),
        description: f.description.clone(),
        tenancy: f.tenancy,
        log_format: f.log_format,
        runtime: f.runtime.clone(),
        handler: f.handler.clone(),
        role_arn: ROLE_ARN.to_string(),
        state: Some("Active".to_string()),
        last_update_status: Some("Successful".to_string()),
        tags: function_tags(&d.app, &d.stage, logical),
    }
}

pub fn deployed(d: &Desired, logical: &str) -> ActualFunction {
    let name = d
        .find_function(logical)
        .expect("logical exists")
        .name
        .clone();
    deployed_as(d, logical, &name)
}

pub fn deployed_role() -> ActualRole {
    ActualRole {
        name: "represent-dev-exec".to_string(),
        arn: ROLE_ARN.to_string(),
        managed_policies: vec![BASIC.to_string()],
        inline_policies: BTreeMap::new(),
        tags: BTreeMap::new(),
    }
}

/// The stage exactly as desired.
pub fn up_to_date(d: &Desired) -> Actual {
    Actual {
        role: Some(deployed_role()),
        functions: d
            .functions
            .iter()
            .map(|f| deployed(d, &f.logical))
            .collect(),
        tables: d
            .tables
            .iter()
            .map(|t| deployed_table(d, &t.logical))
            .collect(),
        partitions: d
            .seeds
            .iter()
            .flat_map(|s| {
                s.partitions
                    .iter()
                    .map(|(tenant, records)| ActualPartition {
                        table: s.name.clone(),
                        tenant: tenant.clone(),
                        records: records
                            .iter()
                            .map(|(k, v)| (k.clone(), Some(v.clone())))
                            .collect(),
                    })
            })
            .collect(),
        log_groups: Vec::new(),
        rest_apis: Vec::new(),
        tenant_roles: Vec::new(),
        signing_keys: d
            .signing_keys
            .iter()
            .map(|k| deployer::signing_key::ActualSigningKey::live(&k.name))
            .collect(),
        trail: None,
        api_statements: Vec::new(),
    }
}

/// What Lambda would answer for a deployed function.
pub fn sdk_configuration(a: &ActualFunction) -> FunctionConfiguration {
    FunctionConfiguration::builder()
        .function_name(&a.name)
        .function_arn(&a.arn)
        .code_sha256(&a.code_sha256)
        .memory_size(a.memory_mb as i32)
        .timeout(a.timeout_s as i32)
        .architectures(match a.architecture {
            Architecture::Arm64 => SdkArchitecture::Arm64,
            Architecture::X86_64 => SdkArchitecture::X8664,
        })
        .environment(
            EnvironmentResponse::builder()
                .set_variables(Some(a.environment.clone().into_iter().collect()))
                .build(),
        )
        .description(&a.description)
        .set_tenancy_config(match a.tenancy {
            Tenancy::PerTenant => Some(
                TenancyConfig::builder()
                    .tenant_isolation_mode(TenantIsolationMode::PerTenant)
                    .build()
                    .expect("mode set"),
            ),
            Tenancy::Shared => None,
        })
        .logging_config(
            LoggingConfig::builder()
                .log_format(match a.log_format {
                    LogFormat::Json => SdkLogFormat::Json,
                    LogFormat::Text => SdkLogFormat::Text,
                })
                .build(),
        )
        .runtime(Runtime::from(a.runtime.as_str()))
        .handler(&a.handler)
        .role(&a.role_arn)
        .state(State::Active)
        .last_update_status(LastUpdateStatus::Successful)
        .build()
}

/// A GetFunction answer with the given state and update status.
pub fn status(name: &str, state: State, update: LastUpdateStatus) -> FunctionConfiguration {
    FunctionConfiguration::builder()
        .function_name(name)
        .state(state)
        .last_update_status(update)
        .build()
}

/// Mocked clients with no DynamoDB rules. Strict: a call no rule matches panics and fails the
/// test. They retry as production does, with short delays.
pub fn clients(lambda: &[&Rule], iam: &[&Rule]) -> Clients {
    clients_with(lambda, iam, &[])
}

/// Mocked clients for Lambda, IAM and DynamoDB; CloudWatch Logs lists no log group.
pub fn clients_with(lambda: &[&Rule], iam: &[&Rule], dynamodb: &[&Rule]) -> Clients {
    clients_logs(lambda, iam, dynamodb, &[&no_log_groups()])
}

/// CloudWatch Logs answering DescribeLogGroups with no group, as often as asked.
pub fn no_log_groups() -> Rule {
    aws_smithy_mocks::mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups).then_output(|| {
        aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsOutput::builder()
            .build()
    })
}

/// Mocked clients for every service, CloudWatch Logs included.
pub fn clients_logs(
    lambda: &[&Rule],
    iam: &[&Rule],
    dynamodb: &[&Rule],
    logs: &[&Rule],
) -> Clients {
    equip(
        lambda,
        iam,
        dynamodb,
        logs,
        mock_client!(aws_sdk_apigateway, RuleMode::MatchAny, &[&no_rest_apis()]),
    )
}

/// The retry policy of production, with delays short enough for tests.
pub fn fast_retries() -> Retries {
    Retries {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        ..Retries::default()
    }
}

/// Mocked clients equipped as production's are: the deployer's retry policy and its
/// mutating-call counter.
fn equip(
    lambda: &[&Rule],
    iam: &[&Rule],
    dynamodb: &[&Rule],
    logs: &[&Rule],
    apigateway: aws_sdk_apigateway::Client,
) -> Clients {
    // Observe lists the stage's tenant roles; stages without tenant-scoped functions have none.
    let no_tenant_roles = no_tenant_roles();
    let iam: Vec<&Rule> = iam.iter().copied().chain([&no_tenant_roles]).collect();
    // Observe reads every function's policy; a function no rule gives one has none.
    let no_policy = no_policy();
    let lambda: Vec<&Rule> = lambda.iter().copied().chain([&no_policy]).collect();
    Clients::from_clients(
        mock_client!(aws_sdk_lambda, RuleMode::MatchAny, &lambda),
        mock_client!(aws_sdk_iam, RuleMode::MatchAny, &iam),
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamodb),
        mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, logs),
        apigateway,
        None,
        fast_retries(),
    )
}

/// Lambda answering GetPolicy as for a function without a resource policy, as often as asked.
pub fn no_policy() -> Rule {
    aws_smithy_mocks::mock!(aws_sdk_lambda::Client::get_policy).then_error(|| {
        aws_sdk_lambda::operation::get_policy::GetPolicyError::ResourceNotFoundException(
            aws_sdk_lambda::types::error::ResourceNotFoundException::builder()
                .message("The resource you requested does not exist.")
                .build(),
        )
    })
}

/// IAM answering ListRoles (the stage's tenant roles) with no role, as often as asked.
pub fn no_tenant_roles() -> Rule {
    aws_smithy_mocks::mock!(aws_sdk_iam::Client::list_roles).then_output(|| {
        aws_sdk_iam::operation::list_roles::ListRolesOutput::builder()
            .set_roles(Some(Vec::new()))
            .build()
            .expect("an empty listing")
    })
}

/// API Gateway answering GetRestApis with no API, as often as asked.
pub fn no_rest_apis() -> Rule {
    aws_smithy_mocks::mock!(aws_sdk_apigateway::Client::get_rest_apis).then_output(|| {
        aws_sdk_apigateway::operation::get_rest_apis::GetRestApisOutput::builder().build()
    })
}

/// Mocked clients whose API Gateway follows `apigateway` (the other services as
/// [`clients_with`]), in `mode`: `RuleMode::Sequential` asserts the order of API Gateway calls.
pub fn clients_api(
    lambda: &[&Rule],
    dynamodb: &[&Rule],
    apigateway: &[&Rule],
    mode: RuleMode,
) -> Clients {
    equip(
        lambda,
        &[],
        dynamodb,
        &[&no_log_groups()],
        mock_client!(aws_sdk_apigateway, mode, apigateway),
    )
}

/// Clients whose DynamoDB answers ListTables with no table, for tests about functions and
/// the role that observe a whole stage.
pub fn no_tables() -> Rule {
    aws_smithy_mocks::mock!(aws_sdk_dynamodb::Client::list_tables).then_output(|| {
        aws_sdk_dynamodb::operation::list_tables::ListTablesOutput::builder().build()
    })
}

/// Fast bounds so retry and wait tests take milliseconds.
pub fn fast() -> ApplyOptions {
    ApplyOptions {
        max_attempts: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        wait_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(1),
        ..ApplyOptions::default()
    }
}

/// Collects progress lines so tests can check the order of steps.
#[derive(Default)]
pub struct Progress(pub Mutex<Vec<String>>);

impl Progress {
    pub fn log(&self, line: &str) {
        self.0.lock().expect("progress lock").push(line.to_string());
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("progress lock").clone()
    }
}

/// The execution role as IAM returns it.
pub fn iam_role() -> aws_sdk_iam::types::Role {
    aws_sdk_iam::types::Role::builder()
        .path("/")
        .role_name("represent-dev-exec")
        .role_id("AROAEXAMPLE")
        .arn(ROLE_ARN)
        .create_date(aws_smithy_types::DateTime::from_secs(0))
        .build()
        .expect("all required fields set")
}

pub const DATA: &str = "represent-dev-data";

/// Represent with its tenant table: the per-tenant function reads it, the shared one does not.
pub fn tenant_app() -> App {
    App::new("represent")
        .table(Table::new("data"))
        .function(
            Function::new("representatives")
                .per_tenant()
                .reads_table("data", "TABLE_NAME"),
        )
        .function(Function::new("counties"))
        .stage(Stage::aws("dev").region("us-east-1").unmanaged_log_groups())
}

/// `n` records for tenant `tenant`, keyed `COUNTY#00000`, `COUNTY#00001`, ...
pub fn records(seed: Seed, tenant: &str, n: usize) -> Seed {
    (0..n).fold(seed, |seed, i| {
        seed.record(
            tenant,
            &format!("COUNTY#{i:05}"),
            &format!(r#"{{"county":{i}}}"#),
        )
    })
}

pub fn tenant_desired(seeds: Vec<Seed>) -> Desired {
    let app = tenant_app();
    deployer::desired_with_seeds(&app, "dev", &packages(&app, "v1"), seeds)
        .expect("fixture stack and seeds are valid")
}

pub fn table_arn(name: &str) -> String {
    format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{name}")
}

/// A table deployed exactly as desired.
pub fn deployed_table(d: &Desired, logical: &str) -> ActualTable {
    let t = d.find_table(logical).expect("table exists");
    ActualTable {
        name: t.name.clone(),
        arn: table_arn(&t.name),
        logical: Some(logical.to_string()),
        key_schema: Some(KeySchema::tenant_record()),
        billing_mode: Some("PAY_PER_REQUEST".to_string()),
        status: Some("ACTIVE".to_string()),
        tags: table_tags(&d.app, &d.stage, logical),
    }
}

/// What DescribeTable answers for a deployer table with the given status.
pub fn table_description(name: &str, status: TableStatus) -> TableDescription {
    let attribute = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("fields set")
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .expect("fields set")
    };
    TableDescription::builder()
        .table_name(name)
        .table_arn(table_arn(name))
        .table_status(status)
        .attribute_definitions(attribute("tenant"))
        .attribute_definitions(attribute("record"))
        .key_schema(key("tenant", KeyType::Hash))
        .key_schema(key("record", KeyType::Range))
        .billing_mode_summary(
            BillingModeSummary::builder()
                .billing_mode(BillingMode::PayPerRequest)
                .build(),
        )
        .build()
}

/// The stage exactly as desired, the role's inline policies (the table-read one) included.
pub fn stage_up_to_date(d: &Desired) -> Actual {
    let mut actual = up_to_date(d);
    if let Some(role) = actual.role.as_mut() {
        role.inline_policies = d.role.inline_policies.clone();
    }
    actual
}
