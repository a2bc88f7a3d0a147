//! Lambda functions: their declaration and validation, the desired and observed function, the
//! pure diff between them (code versus configuration, tenancy as a replacement), and the Lambda
//! calls that create, update, wait for and delete them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::create_function::CreateFunctionError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture as SdkArchitecture, Environment, FunctionCode, FunctionConfiguration,
    LastUpdateStatus, LogFormat as SdkLogFormat, LoggingConfig, Runtime, State, TenancyConfig,
    TenantIsolationMode,
};
use serde::{Deserialize, Serialize};

use crate::change::{Action, Planned, ResourceKind};
use crate::clients::Clients;
use crate::error::{DeployError, StackError};
use crate::names::{self, MAX_FUNCTION_NAME, TAG_APP, TAG_LOGICAL, TAG_STAGE};
use crate::package::Package;
use crate::step::{Ctx, Failure, call_error, failure_error, retry, sent, settle};

/// The runtime every function uses: a custom runtime running the `bootstrap` binary.
pub const RUNTIME: &str = "provided.al2023";
/// The handler name; custom runtimes ignore it, but Lambda requires one.
pub const HANDLER: &str = "bootstrap";

/// Whether a function runs every tenant in shared environments or isolates each tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tenancy {
    /// No `TenancyConfig`: environments may serve any caller.
    Shared,
    /// `TenantIsolationMode: PER_TENANT`: an environment only ever serves one tenant.
    PerTenant,
}

impl fmt::Display for Tenancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tenancy::Shared => "Shared",
            Tenancy::PerTenant => "PerTenant",
        })
    }
}

/// The instruction set a function runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    Arm64,
    X86_64,
}

impl Architecture {
    /// The architecture of this machine, so the emulator can run the binaries natively.
    pub fn host() -> Architecture {
        if cfg!(target_arch = "aarch64") {
            Architecture::Arm64
        } else {
            Architecture::X86_64
        }
    }

    /// The name Lambda uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format of the function's logs in CloudWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogFormat {
    Text,
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "Text",
            LogFormat::Json => "JSON",
        })
    }
}

/// One Lambda function of the app, built from one cargo binary.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub logical: String,
    /// The cargo package that holds the binary.
    pub package: String,
    /// The binary name; defaults to the package name.
    pub bin: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    /// `None` means the stage's architecture.
    pub architecture: Option<Architecture>,
    pub environment: BTreeMap<String, String>,
    pub description: String,
    pub tenancy: Tenancy,
    pub log_format: LogFormat,
    pub function_url: bool,
    pub provisioned_concurrency: Option<u32>,
    pub snap_start: bool,
    /// Environment variable -> logical table. The variable receives the table's physical name
    /// and the execution role may read the table.
    pub reads_tables: BTreeMap<String, String>,
    /// The logical tables of `reads_tables` the function may also write (PutItem, UpdateItem,
    /// DeleteItem, BatchWriteItem).
    pub writes_tables: BTreeSet<String>,
    /// Runs as its own role with no access to tenant data, and reads its tables through a
    /// tenant-data role scoped to the environment's tenant (see `tenant_role`).
    pub tenant_scoped: bool,
    /// Environment variable -> logical signing key ([`crate::signing_key`]). The variable
    /// receives the secret's name and the execution role may read that secret.
    pub signing_keys: BTreeMap<String, String>,
}

impl Function {
    /// A function whose package and binary are both named after its logical name.
    pub fn new(logical: &str) -> Self {
        Function {
            logical: logical.to_string(),
            package: logical.to_string(),
            bin: logical.to_string(),
            memory_mb: 128,
            timeout_s: 3,
            architecture: None,
            environment: BTreeMap::new(),
            description: String::new(),
            tenancy: Tenancy::Shared,
            log_format: LogFormat::Json,
            function_url: false,
            provisioned_concurrency: None,
            snap_start: false,
            reads_tables: BTreeMap::new(),
            tenant_scoped: false,
            writes_tables: BTreeSet::new(),
            signing_keys: BTreeMap::new(),
        }
    }

    /// Sets the cargo package; the binary follows unless it was set to something else.
    pub fn package(mut self, package: &str) -> Self {
        if self.bin == self.package {
            self.bin = package.to_string();
        }
        self.package = package.to_string();
        self
    }

    pub fn bin(mut self, bin: &str) -> Self {
        self.bin = bin.to_string();
        self
    }

    pub fn memory(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }

    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_s = seconds;
        self
    }

    pub fn architecture(mut self, architecture: Architecture) -> Self {
        self.architecture = Some(architecture);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.environment.insert(key.to_string(), value.to_string());
        self
    }

    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_string();
        self
    }

    pub fn per_tenant(mut self) -> Self {
        self.tenancy = Tenancy::PerTenant;
        self
    }

    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.log_format = format;
        self
    }

    pub fn function_url(mut self) -> Self {
        self.function_url = true;
        self
    }

    pub fn provisioned_concurrency(mut self, n: u32) -> Self {
        self.provisioned_concurrency = Some(n);
        self
    }

    pub fn snap_start(mut self) -> Self {
        self.snap_start = true;
        self
    }

    /// Lets the function read the table `logical` (GetItem, Query, BatchGetItem) and passes the
    /// table's physical name in the environment variable `env_key`, so the code never hardcodes
    /// a stage.
    pub fn reads_table(mut self, logical: &str, env_key: &str) -> Self {
        self.reads_tables
            .insert(env_key.to_string(), logical.to_string());
        self
    }

    /// Gives the function its own execution role with no access to tenant data, and a
    /// tenant-data role that role may assume with a `tenant` session tag, allowing the
    /// function's table actions only on items whose partition key is that tenant. The function
    /// finds the data role in `TENANT_DATA_ROLE`. Needs `.per_tenant()` and a table.
    pub fn tenant_scoped(mut self) -> Self {
        self.tenant_scoped = true;
        self
    }

    /// Lets the function read the stage's signing key `logical` (a secret the deployer creates
    /// with 32 random bytes when missing) and passes the secret's name, never its value, in
    /// `env_key`.
    pub fn reads_signing_key(mut self, logical: &str, env_key: &str) -> Self {
        self.signing_keys
            .insert(env_key.to_string(), logical.to_string());
        self
    }

    /// Like [`Function::reads_table`], and lets the function write the table too (PutItem,
    /// UpdateItem, DeleteItem, BatchWriteItem).
    pub fn writes_table(mut self, logical: &str, env_key: &str) -> Self {
        self.writes_tables.insert(logical.to_string());
        self.reads_table(logical, env_key)
    }
}

/// Environment variables Lambda sets itself and refuses in a function's configuration.
const RESERVED_ENV_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

fn is_reserved_env_key(key: &str) -> bool {
    RESERVED_ENV_KEYS.contains(&key) || key.starts_with("AWS_LAMBDA_")
}

fn is_valid_env_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks the functions of the app for one stage, adding each problem to `errors`.
pub(crate) fn validate(
    app: &str,
    stage: &str,
    functions: &[Function],
    declared_tables: &[crate::table::Table],
    errors: &mut Vec<StackError>,
) {
    let tables: BTreeSet<&str> = declared_tables.iter().map(|t| t.logical.as_str()).collect();
    let mut seen = BTreeSet::new();
    for f in functions {
        let logical = &f.logical;
        if !seen.insert(logical.as_str()) {
            errors.push(StackError::DuplicateFunction {
                logical: logical.clone(),
            });
            continue;
        }
        if !names::is_valid_name(logical) {
            errors.push(StackError::InvalidName {
                what: "function",
                value: logical.clone(),
            });
        }
        // The replacement slot is the longest name the function can ever have.
        let longest = names::replacement_name(app, stage, logical);
        if longest.len() > MAX_FUNCTION_NAME {
            errors.push(StackError::FunctionNameTooLong {
                logical: logical.clone(),
                len: longest.len(),
                name: longest,
            });
        }
        if !(128..=10240).contains(&f.memory_mb) {
            errors.push(StackError::Memory {
                logical: logical.clone(),
                value: f.memory_mb,
            });
        }
        if !(1..=900).contains(&f.timeout_s) {
            errors.push(StackError::Timeout {
                logical: logical.clone(),
                value: f.timeout_s,
            });
        }
        if f.tenancy == Tenancy::PerTenant {
            let conflicts = [
                (f.function_url, "a function URL"),
                (
                    f.provisioned_concurrency.is_some(),
                    "provisioned concurrency",
                ),
                (f.snap_start, "SnapStart"),
            ];
            for (_, feature) in conflicts.iter().filter(|(on, _)| *on) {
                errors.push(StackError::TenancyConflict {
                    logical: logical.clone(),
                    feature,
                });
            }
        }
        for (key, table) in &f.reads_tables {
            if !tables.contains(table.as_str()) {
                errors.push(StackError::UnknownTable {
                    logical: logical.clone(),
                    table: table.clone(),
                    declared: declared_tables.iter().map(|t| t.logical.clone()).collect(),
                });
            }
            if f.environment.contains_key(key) {
                errors.push(StackError::EnvKeyConflict {
                    logical: logical.clone(),
                    key: key.clone(),
                    table: table.clone(),
                });
            }
        }
        for key in f.environment.keys().chain(f.reads_tables.keys()) {
            if !is_valid_env_key(key) {
                errors.push(StackError::InvalidEnvKey {
                    logical: logical.clone(),
                    key: key.clone(),
                });
            } else if is_reserved_env_key(key) {
                errors.push(StackError::ReservedEnvKey {
                    logical: logical.clone(),
                    key: key.clone(),
                });
            }
        }
    }
}

/// One function as it should be deployed.
#[derive(Clone, PartialEq, Serialize)]
pub struct DesiredFunction {
    pub logical: String,
    /// The usual physical name; a replacement may put the function in the `-r` slot instead.
    pub name: String,
    pub runtime: String,
    pub handler: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub architecture: Architecture,
    /// Serialized as its keys only: environment variables often hold secrets, and plans and
    /// states are printed.
    #[serde(serialize_with = "keys_only")]
    pub environment: BTreeMap<String, String>,
    pub description: String,
    pub tenancy: Tenancy,
    pub log_format: LogFormat,
    pub code_sha256: String,
    /// The zip; shared, because it can be tens of megabytes.
    #[serde(skip)]
    pub code: Arc<Vec<u8>>,
    pub tags: BTreeMap<String, String>,
    /// A tenant-scoped function's own execution role, as IAM path and name
    /// (`/represent/dev/represent-dev-counties-exec`); `None` runs as the stage's role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_role: Option<String>,
}

impl std::fmt::Debug for DesiredFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredFunction")
            .field("logical", &self.logical)
            .field("name", &self.name)
            .field("runtime", &self.runtime)
            .field("handler", &self.handler)
            .field("memory_mb", &self.memory_mb)
            .field("timeout_s", &self.timeout_s)
            .field("architecture", &self.architecture)
            .field("environment", &self.environment)
            .field("description", &self.description)
            .field("tenancy", &self.tenancy)
            .field("log_format", &self.log_format)
            .field("code_sha256", &self.code_sha256)
            .field("tags", &self.tags)
            .field("execution_role", &self.execution_role)
            .finish_non_exhaustive()
    }
}

fn keys_only<S: serde::Serializer>(
    map: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(map.keys())
}

/// The tags of every function of a stage.
pub fn function_tags(app: &str, stage: &str, logical: &str) -> BTreeMap<String, String> {
    names::tags(app, stage, logical)
}

/// Resolves one function for a stage with its built package. `architecture` is the stage's,
/// used unless the function sets its own.
pub fn resolve(
    app: &str,
    stage: &str,
    f: &Function,
    architecture: Architecture,
    package: &Package,
) -> DesiredFunction {
    let mut environment = f.environment.clone();
    for (key, table) in &f.reads_tables {
        environment.insert(key.clone(), names::table_name(app, stage, table));
    }
    if f.tenant_scoped {
        environment.insert(
            crate::tenant_role::DATA_ROLE_ENV.to_string(),
            crate::tenant_role::data_role_env(app, stage, &f.logical),
        );
    }
    for (key, secret) in &f.signing_keys {
        environment.insert(
            key.clone(),
            crate::signing_key::secret_name(app, stage, secret),
        );
    }
    DesiredFunction {
        logical: f.logical.clone(),
        name: names::function_name(app, stage, &f.logical),
        runtime: RUNTIME.to_string(),
        handler: HANDLER.to_string(),
        memory_mb: f.memory_mb,
        timeout_s: f.timeout_s,
        architecture: f.architecture.unwrap_or(architecture),
        environment,
        description: f.description.clone(),
        tenancy: f.tenancy,
        log_format: f.log_format,
        code_sha256: package.code_sha256.clone(),
        code: Arc::new(package.bytes.clone()),
        tags: function_tags(app, stage, &f.logical),
        execution_role: f.tenant_scoped.then(|| {
            format!(
                "{}{}",
                crate::tenant_role::path(app, stage),
                crate::tenant_role::execution_role_name(app, stage, &f.logical)
            )
        }),
    }
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

/// Every function of a stage. Names narrow the search, tags decide: a function named with the
/// stage's prefix but tagged for another stage is not ours.
pub(crate) async fn observe(
    clients: &Clients,
    app: &str,
    stage: &str,
) -> Result<Vec<ActualFunction>, DeployError> {
    let prefix = names::function_prefix(app, stage);
    let listed = clients
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("ListFunctions", &format!("functions {prefix}*"), e))?;
    let candidates: Vec<String> = listed
        .iter()
        .filter_map(|f| f.function_name())
        .filter(|name| name.starts_with(&prefix))
        .map(str::to_string)
        .collect();

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
    Ok(functions)
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

/// What apply sends for a function.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionOp {
    /// What is created or updated, code included; `None` on a delete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<DesiredFunction>,
    /// On an update: the code (and architecture) is uploaded.
    pub code: bool,
    /// On an update: the configuration is sent.
    pub configuration: bool,
    /// On a replace: the function deleted once nothing refers to it any more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

impl FunctionOp {
    fn delete() -> Self {
        FunctionOp {
            function: None,
            code: false,
            configuration: false,
            replaces: None,
        }
    }

    fn put(function: &DesiredFunction) -> Self {
        FunctionOp {
            function: Some(function.clone()),
            code: true,
            configuration: true,
            replaces: None,
        }
    }
}

/// What differs between a deployed function and the desired one.
struct FunctionDiff {
    reason: String,
    details: Vec<String>,
    code: bool,
    configuration: bool,
}

fn change(
    name: &str,
    logical: Option<&str>,
    action: Action,
    reason: impl Into<String>,
    op: FunctionOp,
) -> Planned<FunctionOp> {
    Planned::new(
        ResourceKind::Function,
        format!("function {name}"),
        name,
        logical,
        action,
        reason,
        op,
    )
}

/// The settings a new function is created with, listed as terraform lists attributes.
fn create_details(d: &DesiredFunction) -> Vec<String> {
    vec![
        format!("memory {} MB", d.memory_mb),
        format!("timeout {} s", d.timeout_s),
        format!("architecture {}", d.architecture),
        format!("tenancy {}", d.tenancy),
        format!("code {}", short(&d.code_sha256)),
    ]
}

/// The first characters of a `CodeSha256`, enough to tell two revisions apart in a plan.
fn short(sha: &str) -> String {
    let head: String = sha.chars().take(8).collect();
    if head.is_empty() {
        "none".to_string()
    } else {
        format!("{head}…")
    }
}

/// Compares one function with what is deployed: code (and architecture, which Lambda changes
/// together with the code) versus configuration.
fn diff_function(
    desired: &DesiredFunction,
    role_name: &str,
    actual: &ActualFunction,
) -> FunctionDiff {
    let mut code = Vec::new();
    let mut config = Vec::new();
    if desired.code_sha256 != actual.code_sha256 {
        code.push(format!(
            "code {} -> {}",
            short(&actual.code_sha256),
            short(&desired.code_sha256)
        ));
    }
    if desired.architecture != actual.architecture {
        code.push(format!(
            "architecture {} -> {}",
            actual.architecture, desired.architecture
        ));
    }
    let mut field = |what: &str, have: String, want: String| {
        if have != want {
            config.push(format!("{what} {have} -> {want}"));
        }
    };
    field(
        "memory",
        actual.memory_mb.to_string(),
        desired.memory_mb.to_string(),
    );
    field(
        "timeout",
        actual.timeout_s.to_string(),
        desired.timeout_s.to_string(),
    );
    field("runtime", actual.runtime.clone(), desired.runtime.clone());
    field("handler", actual.handler.clone(), desired.handler.clone());
    field(
        "role",
        names::role_name_from_arn(&actual.role_arn).to_string(),
        desired
            .execution_role
            .as_deref()
            .map_or(role_name, names::role_name_from_arn)
            .to_string(),
    );
    field(
        "log format",
        actual.log_format.to_string(),
        desired.log_format.to_string(),
    );
    field(
        "description",
        format!("{:?}", actual.description),
        format!("{:?}", desired.description),
    );
    // Values are not printed: environment variables often hold secrets.
    for (k, v) in &desired.environment {
        match actual.environment.get(k) {
            None => config.push(format!("environment {k} added")),
            Some(have) if have != v => config.push(format!("environment {k} changed")),
            Some(_) => {}
        }
    }
    for k in actual.environment.keys() {
        if !desired.environment.contains_key(k) {
            config.push(format!("environment {k} removed"));
        }
    }

    let code_reason = if desired.code_sha256 != actual.code_sha256 {
        format!(
            "code changed ({} -> {})",
            short(&actual.code_sha256),
            short(&desired.code_sha256)
        )
    } else {
        "architecture changed".to_string()
    };
    let reason = match (code.is_empty(), config.is_empty()) {
        (true, true) => "up to date".to_string(),
        (false, true) => code_reason,
        (true, false) => "configuration changed".to_string(),
        (false, false) => format!("{code_reason}; configuration changed"),
    };
    let (update_code, update_configuration) = (!code.is_empty(), !config.is_empty());
    code.extend(config);
    FunctionDiff {
        reason,
        details: code,
        code: update_code,
        configuration: update_configuration,
    }
}

/// The name of the other slot of a logical function.
fn other_slot(app: &str, stage: &str, logical: &str, name: &str) -> String {
    let primary = names::function_name(app, stage, logical);
    if name == primary {
        names::replacement_name(app, stage, logical)
    } else {
        primary
    }
}

/// The functions of a stage against the deployed ones: per desired function an update, a
/// replacement (tenancy is immutable) or a create; then leftovers of interrupted replacements
/// and functions the stack no longer declares, which are deleted.
pub fn plan(
    app: &str,
    stage: &str,
    role_name: &str,
    desired: &[DesiredFunction],
    actual: &[ActualFunction],
) -> Vec<Planned<FunctionOp>> {
    let mut changes = Vec::new();
    let mut leftovers = Vec::new();
    for d in desired {
        let mut mine: Vec<&ActualFunction> = actual
            .iter()
            .filter(|a| a.logical.as_deref() == Some(d.logical.as_str()))
            .collect();
        // Prefer the usual slot, so an interrupted replace settles back on the expected name
        // when both functions would do.
        mine.sort_by_key(|a| (a.name != d.name, a.name.clone()));
        let keep = mine.iter().position(|a| a.tenancy == d.tenancy);
        let logical = Some(d.logical.as_str());
        match keep {
            Some(i) => {
                let kept = mine.remove(i);
                let diff = diff_function(d, role_name, kept);
                let action = if diff.code || diff.configuration {
                    Action::Update
                } else {
                    Action::NoOp
                };
                let op = FunctionOp {
                    function: Some(d.clone()),
                    code: diff.code,
                    configuration: diff.configuration,
                    replaces: None,
                };
                changes.push(
                    change(&kept.name, logical, action, diff.reason, op).with_details(diff.details),
                );
                for other in mine {
                    leftovers.push(change(
                        &other.name,
                        logical,
                        Action::Delete,
                        format!(
                            "left over from an interrupted replace; {} is kept",
                            kept.name
                        ),
                        FunctionOp::delete(),
                    ));
                }
            }
            None if !mine.is_empty() => {
                let old = mine.remove(0);
                let new_name = other_slot(app, stage, &d.logical, &old.name);
                let op = FunctionOp {
                    replaces: Some(old.name.clone()),
                    ..FunctionOp::put(d)
                };
                changes.push(
                    change(
                        &new_name,
                        logical,
                        Action::Replace,
                        format!(
                            "tenancy {} -> {} (immutable after creation)",
                            old.tenancy, d.tenancy
                        ),
                        op,
                    )
                    .with_details(vec![format!("replaces {}", old.name)]),
                );
                for other in mine {
                    leftovers.push(change(
                        &other.name,
                        logical,
                        Action::Delete,
                        format!("left over from an interrupted replace; {new_name} replaces it"),
                        FunctionOp::delete(),
                    ));
                }
            }
            None => changes.push(
                change(
                    &d.name,
                    logical,
                    Action::Create,
                    "not deployed yet",
                    FunctionOp::put(d),
                )
                .with_details(create_details(d)),
            ),
        }
    }
    changes.extend(leftovers);

    let wanted: BTreeSet<&str> = desired.iter().map(|f| f.logical.as_str()).collect();
    let mut pruned: Vec<Planned<FunctionOp>> = actual
        .iter()
        .filter(|a| a.logical.as_deref().is_none_or(|l| !wanted.contains(l)))
        .map(|a| {
            change(
                &a.name,
                a.logical.as_deref(),
                Action::Delete,
                "no longer in the stack",
                FunctionOp::delete(),
            )
        })
        .collect();
    pruned.sort_by(|a, b| a.name.cmp(&b.name));
    changes.extend(pruned);
    changes
}

/// Deletes of every function of a stage, for a destroy.
pub fn plan_destroy(actual: &[ActualFunction]) -> Vec<Planned<FunctionOp>> {
    let mut changes: Vec<_> = actual
        .iter()
        .map(|a| {
            change(
                &a.name,
                a.logical.as_deref(),
                Action::Delete,
                "destroying the stage",
                FunctionOp::delete(),
            )
        })
        .collect();
    changes.sort_by(|a, b| a.name.cmp(&b.name));
    changes
}

/// Right after CreateRole, Lambda refuses the new role for a few seconds with
/// `InvalidParameterValueException: The role defined for the function cannot be assumed by
/// Lambda.` AWS has no typed error for this case, only the message, so this one helper matches
/// the text.
fn is_role_propagation_error(err: &SdkError<CreateFunctionError, impl std::fmt::Debug>) -> bool {
    err.as_service_error().is_some_and(|e| {
        e.is_invalid_parameter_value_exception()
            && e.to_string()
                .contains("The role defined for the function cannot be assumed by Lambda")
    })
}

/// CreateFunction answers 409 `Function already exist` when a previous, interrupted run got
/// that far; the function is then brought up to date instead.
fn is_already_exists(err: &SdkError<CreateFunctionError, impl std::fmt::Debug>) -> bool {
    err.as_service_error().is_some_and(|e| {
        e.is_resource_conflict_exception() && crate::clients::says_already_exists(&e.to_string())
    })
}

fn sdk_architecture(a: Architecture) -> SdkArchitecture {
    match a {
        Architecture::Arm64 => SdkArchitecture::Arm64,
        Architecture::X86_64 => SdkArchitecture::X8664,
    }
}

fn logging_config(f: &DesiredFunction) -> LoggingConfig {
    LoggingConfig::builder()
        .log_format(match f.log_format {
            LogFormat::Json => SdkLogFormat::Json,
            LogFormat::Text => SdkLogFormat::Text,
        })
        .build()
}

fn environment(f: &DesiredFunction) -> Environment {
    Environment::builder()
        .set_variables(Some(
            f.environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))
        .build()
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Creates or updates a function as planned. A replacement's old function is deleted by a later
/// step, once nothing refers to it.
pub(crate) async fn apply(ctx: &Ctx<'_>, c: &Planned<FunctionOp>) -> Result<(), DeployError> {
    let Some(d) = &c.op.function else {
        return Ok(());
    };
    let name = &c.name;
    match c.action {
        Action::Create => {
            ctx.say(&format!("creating function {name}"));
            create_function(ctx, d, name).await
        }
        Action::Replace => {
            ctx.say(&format!("creating function {name} ({})", c.reason));
            create_function(ctx, d, name).await
        }
        Action::Update => {
            match (c.op.code, c.op.configuration) {
                (true, true) => ctx.say(&format!(
                    "updating code and configuration of function {name}"
                )),
                (true, false) => ctx.say(&format!("updating code of function {name}")),
                (false, true) => ctx.say(&format!("updating configuration of function {name}")),
                (false, false) => {}
            }
            if c.op.code {
                update_code(ctx, d, name).await?;
            }
            if c.op.configuration {
                update_configuration(ctx, d, name).await?;
            }
            Ok(())
        }
        Action::NoOp | Action::Delete => Ok(()),
    }
}

async fn create_function(
    ctx: &Ctx<'_>,
    d: &DesiredFunction,
    name: &str,
) -> Result<(), DeployError> {
    let resource = format!("function {name}");
    let role = match &d.execution_role {
        Some(own) => crate::tenant_role::function_role_arn(ctx, own, name)?,
        None => ctx.role_arn(name)?,
    };
    let result = retry(
        ctx.opts,
        || {
            let mut req = ctx
                .clients
                .lambda
                .create_function()
                .function_name(name)
                .runtime(Runtime::from(d.runtime.as_str()))
                .handler(&d.handler)
                .role(&role)
                .code(
                    FunctionCode::builder()
                        .zip_file(Blob::new(d.code.as_slice()))
                        .build(),
                )
                .memory_size(clamp_i32(d.memory_mb))
                .timeout(clamp_i32(d.timeout_s))
                .architectures(sdk_architecture(d.architecture))
                .environment(environment(d))
                .description(&d.description)
                .logging_config(logging_config(d))
                .set_tags(Some(
                    d.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                ));
            if d.tenancy == Tenancy::PerTenant {
                req = req.tenancy_config(
                    TenancyConfig::builder()
                        .tenant_isolation_mode(TenantIsolationMode::PerTenant)
                        .build()
                        .expect("tenant_isolation_mode is set"),
                );
            }
            req.send()
        },
        // Only the IAM propagation error is retried here, and only for a role this run created:
        // the clients' retry policy already retried conflicts and throttling.
        |e| ctx.role_created() && is_role_propagation_error(e),
    )
    .await
    .map_err(|f| settle(ctx, f));
    match result {
        Ok(_) => wait(ctx, name, Goal::Active).await,
        Err(Failure::Fatal(e)) if is_already_exists(&e) => {
            // An interrupted run created it; make it match instead.
            ctx.say(&format!("function {name} already exists, updating it"));
            wait(ctx, name, Goal::Active).await?;
            update_code(ctx, d, name).await?;
            update_configuration(ctx, d, name).await
        }
        Err(f) => Err(failure_error("CreateFunction", &resource, f)),
    }
}

async fn update_code(ctx: &Ctx<'_>, d: &DesiredFunction, name: &str) -> Result<(), DeployError> {
    let resource = format!("function {name}");
    sent(
        ctx,
        ctx.clients
            .lambda
            .update_function_code()
            .function_name(name)
            .zip_file(Blob::new(d.code.as_slice()))
            .architectures(sdk_architecture(d.architecture))
            .send(),
    )
    .await
    .map_err(|f| failure_error("UpdateFunctionCode", &resource, f))?;
    wait(ctx, name, Goal::Updated).await
}

async fn update_configuration(
    ctx: &Ctx<'_>,
    d: &DesiredFunction,
    name: &str,
) -> Result<(), DeployError> {
    let resource = format!("function {name}");
    let role = match &d.execution_role {
        Some(own) => crate::tenant_role::function_role_arn(ctx, own, name)?,
        None => ctx.role_arn(name)?,
    };
    // TenancyConfig is deliberately absent: it cannot change after creation (a change is a
    // Replace), and UpdateFunctionConfiguration has no such member.
    sent(
        ctx,
        ctx.clients
            .lambda
            .update_function_configuration()
            .function_name(name)
            .role(&role)
            .handler(&d.handler)
            .runtime(Runtime::from(d.runtime.as_str()))
            .memory_size(clamp_i32(d.memory_mb))
            .timeout(clamp_i32(d.timeout_s))
            .environment(environment(d))
            .description(&d.description)
            .logging_config(logging_config(d))
            .send(),
    )
    .await
    .map_err(|f| failure_error("UpdateFunctionConfiguration", &resource, f))?;
    wait(ctx, name, Goal::Updated).await
}

/// Deletes a function; one already gone counts as deleted.
pub(crate) async fn delete(ctx: &Ctx<'_>, name: &str) -> Result<(), DeployError> {
    let resource = format!("function {name}");
    let result = sent(
        ctx,
        ctx.clients
            .lambda
            .delete_function()
            .function_name(name)
            .send(),
    )
    .await;
    match result {
        Ok(_) => Ok(()),
        // Already gone: deleting converges.
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(f) => Err(failure_error("DeleteFunction", &resource, f)),
    }
}

#[derive(Debug, Clone, Copy)]
enum Goal {
    /// `State: Active`, after CreateFunction.
    Active,
    /// `LastUpdateStatus: Successful`, after an update.
    Updated,
}

impl Goal {
    fn describe(self) -> &'static str {
        match self {
            Goal::Active => "active",
            Goal::Updated => "updated",
        }
    }
}

/// Polls GetFunction until the function reaches `goal`: right away first, then at a growing
/// interval, for at most `wait_timeout`. Lambda refuses (409) any change to a function that is
/// still pending or mid-update, so every mutation waits here before the next one.
async fn wait(ctx: &Ctx<'_>, name: &str, goal: Goal) -> Result<(), DeployError> {
    let resource = format!("function {name}");
    let start = Instant::now();
    let mut delay = ctx.opts.poll_interval;
    let cap = ctx.opts.max_delay.max(ctx.opts.poll_interval);
    loop {
        let out = sent(
            ctx,
            ctx.clients.lambda.get_function().function_name(name).send(),
        )
        .await
        .map_err(|f| failure_error("GetFunction", &resource, f))?;
        let conf = out.configuration().ok_or(DeployError::MissingField {
            call: "GetFunction",
            resource: resource.clone(),
            field: "Configuration",
        })?;
        let state = conf.state();
        let update = conf.last_update_status();
        let last_seen = format!(
            "state {}, last update {}",
            state.map(|s| s.as_str()).unwrap_or("unknown"),
            update.map(|s| s.as_str()).unwrap_or("unknown")
        );
        match goal {
            Goal::Active => match state {
                Some(State::Active) | None => return Ok(()),
                Some(State::Failed) => {
                    return Err(DeployError::FunctionFailed {
                        resource,
                        target: goal.describe(),
                        reason: conf.state_reason().unwrap_or("no reason given").to_string(),
                    });
                }
                _ => {}
            },
            Goal::Updated => match update {
                Some(LastUpdateStatus::Successful) | None => return Ok(()),
                Some(LastUpdateStatus::Failed) => {
                    return Err(DeployError::FunctionFailed {
                        resource,
                        target: goal.describe(),
                        reason: conf
                            .last_update_status_reason()
                            .or(conf.state_reason())
                            .unwrap_or("no reason given")
                            .to_string(),
                    });
                }
                _ => {}
            },
        }
        let elapsed = start.elapsed();
        if elapsed >= ctx.opts.wait_timeout {
            return Err(DeployError::WaitTimeout {
                call: "GetFunction",
                resource,
                target: goal.describe(),
                timeout: ctx.opts.wait_timeout,
                last_seen,
            });
        }
        ctx.say(&format!(
            "waiting for function {name} to become {} ({last_seen})",
            goal.describe()
        ));
        tokio::time::sleep(delay.min(ctx.opts.wait_timeout - elapsed)).await;
        delay = (delay * 2).min(cap);
    }
}

/// The ARN of a function by physical name, read once per apply: a function this run created
/// or replaced has no ARN in the plan.
pub(crate) async fn function_arn(ctx: &Ctx<'_>, name: &str) -> Result<String, DeployError> {
    if let Some(arn) = ctx.cached_arn(name) {
        return Ok(arn);
    }
    let resource = format!("function {name}");
    let out = sent(
        ctx,
        ctx.clients.lambda.get_function().function_name(name).send(),
    )
    .await
    .map_err(|f| failure_error("GetFunction", &resource, f))?;
    let arn = out
        .configuration()
        .and_then(|c| c.function_arn())
        .ok_or(DeployError::MissingField {
            call: "GetFunction",
            resource,
            field: "FunctionArn",
        })?
        .to_string();
    ctx.cache_arn(name, &arn);
    Ok(arn)
}
