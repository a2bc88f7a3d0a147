//! Reading what a stage has in AWS (or the emulator): functions, the execution role, tables,
//! the partitions of the tenants the stage seeds, and REST APIs with their routes.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::types::FunctionConfiguration;
use serde::Serialize;

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, TableDescription};

use crate::desired::Desired;
use crate::error::{DeployError, render};
use crate::log_group::{ActualLogGroup, observe_log_groups};
use crate::names::{
    self, DATA_ATTRIBUTE, PARTITION_KEY, SORT_KEY, TAG_APP, TAG_LOGICAL, TAG_STAGE,
};
use crate::rest_api::{
    ActualAuthorizer, ActualIntegration, ActualMethod, ActualResource, ActualRestApi,
    ROUTES_VARIABLE, authorizer_source_arn, invoke_url, policy_permits, source_arn,
};
use crate::seed::{ActualPartition, seeded_tenants};
use crate::stack::{Architecture, LogFormat, Tenancy};
use crate::table::{ActualTable, KeyAttribute, KeySchema};

/// The SDK clients the deployer talks through, built once at the edge and passed in.
#[derive(Debug, Clone)]
pub struct Clients {
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    /// The endpoint every call goes to when it is not AWS's (an emulator): REST API invoke URLs
    /// are then paths on it. The SDK's service configs do not expose it, so it is kept here.
    pub endpoint_url: Option<String>,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients {
            lambda: aws_sdk_lambda::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            apigateway: aws_sdk_apigateway::Client::new(config),
            endpoint_url: config.endpoint_url().map(str::to_string),
        }
    }
}

/// What exists for one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Actual {
    pub role: Option<ActualRole>,
    pub functions: Vec<ActualFunction>,
    pub tables: Vec<ActualTable>,
    /// The partitions of the seeded tenants that were read. A partition that was not read is
    /// planned as empty, so deploys observe with [`observe_stage`].
    pub partitions: Vec<ActualPartition>,
    /// The log groups of the stage's functions.
    pub log_groups: Vec<ActualLogGroup>,
    /// The stage's REST APIs, with their resources and which functions they may invoke.
    pub rest_apis: Vec<ActualRestApi>,
}

impl Actual {
    pub fn find_table(&self, name: &str) -> Option<&ActualTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn find_partition(&self, table: &str, tenant: &str) -> Option<&ActualPartition> {
        self.partitions
            .iter()
            .find(|p| p.table == table && p.tenant == tenant)
    }
}

/// The stage's execution role as IAM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualRole {
    pub name: String,
    pub arn: String,
    pub managed_policies: Vec<String>,
    /// Policy name -> decoded JSON document.
    pub inline_policies: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// A deployed function tagged with this app and stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualFunction {
    pub name: String,
    pub arn: String,
    /// From the `deployer:logical-id` tag; `None` if the tag is missing.
    pub logical: Option<String>,
    pub code_sha256: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, String>,
    pub description: String,
    pub tenancy: Tenancy,
    pub log_format: LogFormat,
    pub runtime: String,
    pub handler: String,
    pub role_arn: String,
    pub state: Option<String>,
    pub last_update_status: Option<String>,
    pub tags: BTreeMap<String, String>,
}

fn call_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    call: &'static str,
    resource: &str,
    err: SdkError<E, R>,
) -> DeployError {
    DeployError::Call {
        call,
        resource: resource.to_string(),
        message: render(&err),
    }
}

/// Reads every function and the role of a stage. Names narrow the search, tags decide: a
/// function named with the stage's prefix but tagged for another stage is not ours.
pub async fn observe(clients: &Clients, app: &str, stage: &str) -> Result<Actual, DeployError> {
    let prefix = names::function_prefix(app, stage);
    let mut candidates = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .lambda
            .list_functions()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| call_error("ListFunctions", &format!("functions {prefix}*"), e))?;
        for f in page.functions() {
            if let Some(name) = f.function_name()
                && name.starts_with(&prefix)
            {
                candidates.push(name.to_string());
            }
        }
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }

    let mut functions = Vec::new();
    for name in candidates {
        let resource = format!("function {name}");
        let out = match clients
            .lambda
            .get_function()
            .function_name(&name)
            .send()
            .await
        {
            Ok(out) => out,
            // Deleted between the listing and now: it no longer exists, which is what we report.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                continue;
            }
            Err(e) => return Err(call_error("GetFunction", &resource, e)),
        };
        let tags: BTreeMap<String, String> = out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if tags.get(TAG_APP).map(String::as_str) != Some(app)
            || tags.get(TAG_STAGE).map(String::as_str) != Some(stage)
        {
            continue;
        }
        let conf = out.configuration().ok_or(DeployError::MissingField {
            call: "GetFunction",
            resource: resource.clone(),
            field: "Configuration",
        })?;
        functions.push(actual_function(&name, conf, tags));
    }
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    let log_groups = observe_log_groups(clients, &prefix, &functions).await?;

    let role = observe_role(clients, &names::role_name(app, stage)).await?;
    let tables = observe_tables(clients, app, stage).await?;
    let rest_apis = observe_rest_apis(clients, app, stage, &functions).await?;
    Ok(Actual {
        role,
        functions,
        tables,
        partitions: Vec::new(),
        log_groups,
        rest_apis,
    })
}

/// Everything a deploy compares against: [`observe`], plus the partition of every seeded tenant
/// in every table that already has the desired key (a table about to be created or replaced is
/// empty as far as the plan is concerned).
pub async fn observe_stage(clients: &Clients, desired: &Desired) -> Result<Actual, DeployError> {
    let mut actual = observe(clients, &desired.app, &desired.stage).await?;
    for seed in &desired.seeds {
        let ready = actual.find_table(&seed.name).is_some_and(|t| {
            desired
                .find_table(&seed.table)
                .is_some_and(|d| t.key_schema.as_ref() == Some(&d.key_schema))
        });
        if !ready {
            continue;
        }
        for tenant in seed.partitions.keys() {
            let partition = read_partition(clients, &seed.name, tenant).await?;
            actual.partitions.push(partition);
        }
    }
    Ok(actual)
}

/// What `cargo xtask tenants seed` compares against: the seeded tables and the partitions of the
/// seeded tenants (or of one tenant), nothing else. The tables must exist with the desired key,
/// since seeding never creates or replaces a table.
pub async fn observe_seeds(
    clients: &Clients,
    desired: &Desired,
    only_tenant: Option<&str>,
) -> Result<Actual, DeployError> {
    if let Some(tenant) = only_tenant {
        let known = seeded_tenants(&desired.seeds);
        if !known.iter().any(|t| t == tenant) {
            return Err(DeployError::UnknownTenant {
                tenant: tenant.to_string(),
                known,
            });
        }
    }
    let mut actual = Actual::default();
    for seed in &desired.seeds {
        let tenants: Vec<&String> = seed
            .partitions
            .keys()
            .filter(|t| only_tenant.is_none_or(|only| only == t.as_str()))
            .collect();
        if tenants.is_empty() {
            continue;
        }
        let Some(table) = read_table(clients, &seed.name).await? else {
            return Err(DeployError::TableMissing {
                table: seed.name.clone(),
            });
        };
        if let Some(want) = desired.find_table(&seed.table)
            && table.key_schema.as_ref() != Some(&want.key_schema)
        {
            return Err(DeployError::TableOutdated {
                table: seed.name.clone(),
                have: table
                    .key_schema
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "unknown".to_string()),
                want: want.key_schema.to_string(),
            });
        }
        actual.tables.push(table);
        for tenant in tenants {
            actual
                .partitions
                .push(read_partition(clients, &seed.name, tenant).await?);
        }
    }
    Ok(actual)
}

/// Every table of the stage. Names narrow the search, tags decide, as for functions.
async fn observe_tables(
    clients: &Clients,
    app: &str,
    stage: &str,
) -> Result<Vec<ActualTable>, DeployError> {
    let prefix = names::function_prefix(app, stage);
    let mut candidates = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = clients
            .dynamodb
            .list_tables()
            .set_exclusive_start_table_name(start.clone())
            .send()
            .await
            .map_err(|e| call_error("ListTables", &format!("tables {prefix}*"), e))?;
        candidates.extend(
            page.table_names()
                .iter()
                .filter(|n| n.starts_with(&prefix))
                .cloned(),
        );
        match page.last_evaluated_table_name() {
            Some(last) if !last.is_empty() => start = Some(last.to_string()),
            _ => break,
        }
    }
    let mut tables = Vec::new();
    for name in candidates {
        let Some(table) = read_table(clients, &name).await? else {
            continue;
        };
        if table.tags.get(TAG_APP).map(String::as_str) == Some(app)
            && table.tags.get(TAG_STAGE).map(String::as_str) == Some(stage)
        {
            tables.push(table);
        }
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tables)
}

/// DescribeTable and the table's tags; `None` when the table does not exist.
async fn read_table(clients: &Clients, name: &str) -> Result<Option<ActualTable>, DeployError> {
    let resource = format!("table {name}");
    let description = match clients
        .dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await
    {
        Ok(out) => out.table,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(call_error("DescribeTable", &resource, e)),
    };
    let Some(description) = description else {
        return Ok(None);
    };
    let arn = description.table_arn().unwrap_or_default().to_string();
    let mut tags = BTreeMap::new();
    let mut token: Option<String> = None;
    // DynamoDB only lists tags by ARN; a table without one (an emulator's shortcut) has none.
    while !arn.is_empty() {
        let page = clients
            .dynamodb
            .list_tags_of_resource()
            .resource_arn(&arn)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| call_error("ListTagsOfResource", &resource, e))?;
        tags.extend(
            page.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string())),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(Some(actual_table(name, &description, tags)))
}

/// Converts DynamoDB's view of a table into the deployer's.
pub fn actual_table(
    name: &str,
    description: &TableDescription,
    tags: BTreeMap<String, String>,
) -> ActualTable {
    let kind_of = |attribute: &str| {
        description
            .attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == attribute)
            .map(|d| d.attribute_type().as_str().to_string())
            .unwrap_or_else(|| "?".to_string())
    };
    let key = |key_type: KeyType| {
        description
            .key_schema()
            .iter()
            .find(|k| *k.key_type() == key_type)
            .map(|k| KeyAttribute {
                name: k.attribute_name().to_string(),
                kind: kind_of(k.attribute_name()),
            })
    };
    let key_schema = key(KeyType::Hash).map(|partition| KeySchema {
        partition,
        sort: key(KeyType::Range),
    });
    ActualTable {
        name: name.to_string(),
        arn: description.table_arn().unwrap_or_default().to_string(),
        logical: tags.get(TAG_LOGICAL).cloned(),
        key_schema,
        billing_mode: description
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str().to_string()),
        status: description.table_status().map(|s| s.as_str().to_string()),
        tags,
    }
}

/// Reads one tenant's partition, every page of it. Consistent reads, so a plan made right after
/// a seed sees the seed's writes.
async fn read_partition(
    clients: &Clients,
    table: &str,
    tenant: &str,
) -> Result<ActualPartition, DeployError> {
    let resource = format!("tenant {tenant} in {table}");
    let mut records = BTreeMap::new();
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = clients
            .dynamodb
            .query()
            .table_name(table)
            .key_condition_expression("#tenant = :tenant")
            .expression_attribute_names("#tenant", PARTITION_KEY)
            .expression_attribute_values(":tenant", AttributeValue::S(tenant.to_string()))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| call_error("Query", &resource, e))?;
        for item in page.items() {
            let Some(record) = item.get(SORT_KEY).and_then(|v| v.as_s().ok()) else {
                continue;
            };
            let data = item
                .get(DATA_ATTRIBUTE)
                .and_then(|v| v.as_s().ok())
                .cloned();
            records.insert(record.clone(), data);
        }
        match page.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => break,
        }
    }
    Ok(ActualPartition {
        table: table.to_string(),
        tenant: tenant.to_string(),
        records,
    })
}

/// Converts the SDK's view of a function into the deployer's, filling Lambda's defaults where
/// a field is absent (no architecture means x86_64, no logging config means text logs).
pub fn actual_function(
    name: &str,
    conf: &FunctionConfiguration,
    tags: BTreeMap<String, String>,
) -> ActualFunction {
    use aws_sdk_lambda::types::{Architecture as A, LogFormat as L, TenantIsolationMode};
    let architecture = match conf.architectures().first() {
        Some(A::Arm64) => Architecture::Arm64,
        _ => Architecture::X86_64,
    };
    let log_format = match conf.logging_config().and_then(|l| l.log_format()) {
        Some(L::Json) => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let tenancy = match conf.tenancy_config().map(|t| t.tenant_isolation_mode()) {
        Some(TenantIsolationMode::PerTenant) => Tenancy::PerTenant,
        _ => Tenancy::Shared,
    };
    let environment = conf
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    ActualFunction {
        name: name.to_string(),
        arn: conf.function_arn().unwrap_or_default().to_string(),
        logical: tags.get(TAG_LOGICAL).cloned(),
        code_sha256: conf.code_sha256().unwrap_or_default().to_string(),
        memory_mb: conf
            .memory_size()
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(128),
        timeout_s: conf
            .timeout()
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(3),
        architecture,
        environment,
        description: conf.description().unwrap_or_default().to_string(),
        tenancy,
        log_format,
        runtime: conf
            .runtime()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        handler: conf.handler().unwrap_or_default().to_string(),
        role_arn: conf.role().unwrap_or_default().to_string(),
        state: conf.state().map(|s| s.as_str().to_string()),
        last_update_status: conf.last_update_status().map(|s| s.as_str().to_string()),
        tags,
    }
}

async fn observe_role(clients: &Clients, name: &str) -> Result<Option<ActualRole>, DeployError> {
    let resource = format!("role {name}");
    let role = match clients.iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(GetRoleError::NoSuchEntityException(_))
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(call_error("GetRole", &resource, e)),
    };
    let Some(role) = role else {
        return Ok(None);
    };

    let mut managed = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| call_error("ListAttachedRolePolicies", &resource, e))?;
        managed.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string)),
        );
        match (page.is_truncated(), page.marker()) {
            (true, Some(m)) => marker = Some(m.to_string()),
            _ => break,
        }
    }
    managed.sort();

    let mut policy_names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .iam
            .list_role_policies()
            .role_name(name)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| call_error("ListRolePolicies", &resource, e))?;
        policy_names.extend(page.policy_names().iter().cloned());
        match (page.is_truncated(), page.marker()) {
            (true, Some(m)) => marker = Some(m.to_string()),
            _ => break,
        }
    }

    let mut inline = BTreeMap::new();
    for policy in policy_names {
        let out = clients
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
            .map_err(|e| call_error("GetRolePolicy", &format!("{resource} policy {policy}"), e))?;
        inline.insert(policy, percent_decode(out.policy_document()));
    }

    Ok(Some(ActualRole {
        name: role.role_name().to_string(),
        arn: role.arn().to_string(),
        managed_policies: managed,
        inline_policies: inline,
        tags: role
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
    }))
}

/// The region calls go to, from the Lambda client's configuration.
pub fn region(clients: &Clients) -> String {
    clients
        .lambda
        .config()
        .region()
        .map(|r| r.as_ref().to_string())
        .unwrap_or_default()
}

/// The invoke URL of every observed REST API, by logical name, so `plan` and `deploy
/// --dry-run` on an existing stage can show where the API answers.
pub fn api_urls(clients: &Clients, stage: &str, actual: &Actual) -> BTreeMap<String, String> {
    let region = region(clients);
    actual
        .rest_apis
        .iter()
        .filter_map(|a| {
            let url = invoke_url(&a.id, &region, stage, clients.endpoint_url.as_deref());
            Some((a.logical.clone()?, url))
        })
        .collect()
}

/// Every REST API of the stage: listed by name prefix, kept by tags (as functions are), with
/// resources, methods and integrations, whether the stage was ever deployed, and which of the
/// stage's functions let the API invoke them.
async fn observe_rest_apis(
    clients: &Clients,
    app: &str,
    stage: &str,
    functions: &[ActualFunction],
) -> Result<Vec<ActualRestApi>, DeployError> {
    let prefix = names::function_prefix(app, stage);
    let region = region(clients);
    let mut candidates = Vec::new();
    let mut position: Option<String> = None;
    loop {
        let page = clients
            .apigateway
            .get_rest_apis()
            .limit(500)
            .set_position(position.clone())
            .send()
            .await
            .map_err(|e| call_error("GetRestApis", &format!("rest apis {prefix}*"), e))?;
        for api in page.items() {
            if let (Some(id), Some(name)) = (api.id(), api.name())
                && name.starts_with(&prefix)
            {
                let tags: BTreeMap<String, String> = api
                    .tags()
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                candidates.push((id.to_string(), name.to_string(), tags));
            }
        }
        match page.position() {
            Some(p) if !p.is_empty() && position.as_deref() != Some(p) => {
                position = Some(p.to_string());
            }
            _ => break,
        }
    }

    let mut apis = Vec::new();
    for (id, name, mut tags) in candidates {
        let resource = format!("rest api {name} ({id})");
        // GetRestApis may leave tags out; GetTags is the authority.
        if tags.is_empty() {
            let out = clients
                .apigateway
                .get_tags()
                .resource_arn(format!("arn:aws:apigateway:{region}::/restapis/{id}"))
                .send()
                .await
                .map_err(|e| call_error("GetTags", &resource, e))?;
            tags = out
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
        }
        if tags.get(TAG_APP).map(String::as_str) != Some(app)
            || tags.get(TAG_STAGE).map(String::as_str) != Some(stage)
        {
            continue;
        }
        let resources = read_resources(clients, &id, &resource).await?;
        let authorizers = read_authorizers(clients, &id, &resource).await?;
        let (stage_deployed, deployed_routes) = match clients
            .apigateway
            .get_stage()
            .rest_api_id(&id)
            .stage_name(stage)
            .send()
            .await
        {
            Ok(out) => (
                true,
                out.variables()
                    .and_then(|v| v.get(ROUTES_VARIABLE))
                    .cloned(),
            ),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                (false, None)
            }
            Err(e) => return Err(call_error("GetStage", &resource, e)),
        };
        apis.push(ActualRestApi {
            id,
            name,
            logical: tags.get(TAG_LOGICAL).cloned(),
            tags,
            resources,
            stage_deployed,
            deployed_routes,
            permitted: Default::default(),
            authorizers,
            authorizer_permitted: Default::default(),
        });
    }
    if apis.is_empty() {
        return Ok(apis);
    }

    // Each function's policy is read once, however many APIs there are.
    for f in functions {
        let policy = match clients
            .lambda
            .get_policy()
            .function_name(&f.name)
            .send()
            .await
        {
            Ok(out) => out.policy().unwrap_or_default().to_string(),
            // No policy at all: nothing may invoke it yet.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                continue;
            }
            Err(e) => return Err(call_error("GetPolicy", &format!("function {}", f.name), e)),
        };
        let (region, account) = (
            crate::rest_api::arn_field(&f.arn, 3),
            crate::rest_api::arn_field(&f.arn, 4),
        );
        for api in &mut apis {
            if policy_permits(&policy, &source_arn(region, account, &api.id)) {
                api.permitted.insert(f.name.clone());
            }
            if policy_permits(&policy, &authorizer_source_arn(region, account, &api.id)) {
                api.authorizer_permitted.insert(f.name.clone());
            }
        }
    }
    apis.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(apis)
}

/// Every authorizer of an API, so the plan can tell whether the tenant authorizer is deployed
/// as wanted.
async fn read_authorizers(
    clients: &Clients,
    api_id: &str,
    resource: &str,
) -> Result<Vec<ActualAuthorizer>, DeployError> {
    let mut authorizers = Vec::new();
    let mut position: Option<String> = None;
    loop {
        let page = clients
            .apigateway
            .get_authorizers()
            .rest_api_id(api_id)
            .limit(500)
            .set_position(position.clone())
            .send()
            .await
            .map_err(|e| call_error("GetAuthorizers", resource, e))?;
        for x in page.items() {
            let Some(id) = x.id() else {
                continue;
            };
            authorizers.push(ActualAuthorizer {
                id: id.to_string(),
                name: x.name().unwrap_or_default().to_string(),
                kind: x
                    .r#type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                authorizer_uri: x.authorizer_uri().unwrap_or_default().to_string(),
                identity_source: x.identity_source().unwrap_or_default().to_string(),
            });
        }
        match page.position() {
            Some(p) if !p.is_empty() && position.as_deref() != Some(p) => {
                position = Some(p.to_string());
            }
            _ => break,
        }
    }
    authorizers.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(authorizers)
}

/// Every resource of an API with its methods and their integrations, embedded in GetResources
/// so one paginated call reads the whole API.
async fn read_resources(
    clients: &Clients,
    api_id: &str,
    resource: &str,
) -> Result<Vec<ActualResource>, DeployError> {
    let mut resources = Vec::new();
    let mut position: Option<String> = None;
    loop {
        let page = clients
            .apigateway
            .get_resources()
            .rest_api_id(api_id)
            .embed("methods")
            .limit(500)
            .set_position(position.clone())
            .send()
            .await
            .map_err(|e| call_error("GetResources", resource, e))?;
        for r in page.items() {
            let (Some(id), Some(path)) = (r.id(), r.path()) else {
                continue;
            };
            let methods = r
                .resource_methods()
                .map(|m| {
                    m.iter()
                        .map(|(verb, method)| {
                            let integration =
                                method.method_integration().map(|i| ActualIntegration {
                                    kind: i
                                        .r#type()
                                        .map(|t| t.as_str().to_string())
                                        .unwrap_or_default(),
                                    http_method: i.http_method().unwrap_or_default().to_string(),
                                    uri: i.uri().unwrap_or_default().to_string(),
                                    request_parameters: i
                                        .request_parameters()
                                        .map(|p| {
                                            p.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                                        })
                                        .unwrap_or_default(),
                                });
                            let method = ActualMethod {
                                authorization_type: method
                                    .authorization_type()
                                    .unwrap_or_default()
                                    .to_string(),
                                authorizer_id: method.authorizer_id().map(str::to_string),
                                request_parameters: method
                                    .request_parameters()
                                    .map(|p| p.iter().map(|(k, v)| (k.clone(), *v)).collect())
                                    .unwrap_or_default(),
                                integration,
                            };
                            (verb.clone(), method)
                        })
                        .collect()
                })
                .unwrap_or_default();
            resources.push(ActualResource {
                id: id.to_string(),
                path: path.to_string(),
                methods,
            });
        }
        match page.position() {
            Some(p) if !p.is_empty() && position.as_deref() != Some(p) => {
                position = Some(p.to_string());
            }
            _ => break,
        }
    }
    resources.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(resources)
}

/// Decodes the RFC 3986 percent-encoding IAM applies to policy documents in its responses.
/// `+` is left alone: IAM encodes a space as `%20` and a plus as `%2B`. A malformed escape is
/// kept as it is, so an already-decoded document passes through unchanged.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && hex.iter().all(u8::is_ascii_hexdigit)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_iam_policy_documents() {
        assert_eq!(
            percent_decode("%7B%22Version%22%3A%20%222012-10-17%22%7D"),
            r#"{"Version": "2012-10-17"}"#
        );
        assert_eq!(percent_decode("a%2Bb+c"), "a+b+c");
        assert_eq!(percent_decode(r#"{"x":"100%"}"#), r#"{"x":"100%"}"#);
    }
}
