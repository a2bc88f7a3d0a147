//! The typed stack: an app with its functions, tables, execution role and stages, and its
//! validation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{StackError, StackErrors};
use crate::names::{self, BASIC_EXECUTION_POLICY, MAX_FUNCTION_NAME, MAX_ROLE_NAME};
pub use crate::rest_api::{ApiKind, RestApi, TenantSource};
pub use crate::table::Table;

/// An application: functions sharing one execution role, deployable to several stages.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub name: String,
    pub role: Role,
    pub functions: Vec<Function>,
    pub tables: Vec<Table>,
    pub rest_apis: Vec<RestApi>,
    pub stages: Vec<Stage>,
}

impl App {
    pub fn new(name: &str) -> Self {
        App {
            name: name.to_string(),
            role: Role::lambda_basic(),
            functions: Vec::new(),
            tables: Vec::new(),
            rest_apis: Vec::new(),
            stages: Vec::new(),
        }
    }

    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    pub fn function(mut self, function: Function) -> Self {
        self.functions.push(function);
        self
    }

    /// Declares a DynamoDB table; one is created per stage, named `{app}-{stage}-{logical}`.
    pub fn table(mut self, table: Table) -> Self {
        self.tables.push(table);
        self
    }

    /// Declares a REST API in front of the functions; one is created per stage, named
    /// `{app}-{stage}-{logical}`.
    pub fn rest_api(mut self, api: RestApi) -> Self {
        self.rest_apis.push(api);
        self
    }

    pub fn stage(mut self, stage: Stage) -> Self {
        self.stages.push(stage);
        self
    }

    pub fn find_stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    pub fn find_function(&self, logical: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.logical == logical)
    }

    pub fn find_table(&self, logical: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.logical == logical)
    }
}

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
}

/// The execution role every function of a stage runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub managed_policies: Vec<String>,
    /// Policy name -> JSON policy document.
    pub inline_policies: BTreeMap<String, String>,
}

impl Role {
    /// A role that may only write logs, which is all a function needs by default.
    pub fn lambda_basic() -> Self {
        Role {
            managed_policies: vec![BASIC_EXECUTION_POLICY.to_string()],
            inline_policies: BTreeMap::new(),
        }
    }

    pub fn managed_policy(mut self, arn: &str) -> Self {
        self.managed_policies.push(arn.to_string());
        self
    }

    pub fn inline_policy(mut self, name: &str, document: &str) -> Self {
        self.inline_policies
            .insert(name.to_string(), document.to_string());
        self
    }
}

impl Default for Role {
    fn default() -> Self {
        Role::lambda_basic()
    }
}

/// Where a stage is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The local emulator.
    Emulator,
    /// An AWS account, through the standard credential chain.
    Aws {
        region: Option<String>,
        profile: Option<String>,
    },
}

/// A named deployment of the app (`dev`, `prod`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub target: Target,
    pub architecture: Architecture,
    /// Days CloudWatch keeps the functions' logs; `None` leaves the log groups to Lambda, which
    /// creates them on the first invoke and keeps every line forever.
    pub log_retention_days: Option<u32>,
}

impl Stage {
    /// A stage on the local emulator, built for this machine so binaries run natively.
    pub fn emulator(name: &str) -> Self {
        Stage {
            name: name.to_string(),
            target: Target::Emulator,
            architecture: Architecture::host(),
            log_retention_days: Some(crate::log_group::EMULATOR_RETENTION_DAYS),
        }
    }

    /// A stage on AWS, on Graviton by default (cheaper per GB-second).
    pub fn aws(name: &str) -> Self {
        Stage {
            name: name.to_string(),
            target: Target::Aws {
                region: None,
                profile: None,
            },
            architecture: Architecture::Arm64,
            log_retention_days: Some(crate::log_group::AWS_RETENTION_DAYS),
        }
    }

    /// Sets the AWS region; has no effect on an emulator stage.
    pub fn region(mut self, region: &str) -> Self {
        if let Target::Aws { region: r, .. } = &mut self.target {
            *r = Some(region.to_string());
        }
        self
    }

    /// Sets the AWS profile; has no effect on an emulator stage.
    pub fn profile(mut self, profile: &str) -> Self {
        if let Target::Aws { profile: p, .. } = &mut self.target {
            *p = Some(profile.to_string());
        }
        self
    }

    pub fn architecture(mut self, architecture: Architecture) -> Self {
        self.architecture = architecture;
        self
    }

    /// Keeps the functions' logs for `days`, one of the values CloudWatch Logs accepts
    /// ([`crate::log_group::RETENTION_DAYS`]).
    pub fn log_retention_days(mut self, days: u32) -> Self {
        self.log_retention_days = Some(days);
        self
    }

    /// Leaves the functions' log groups alone: not created, not given a retention, not deleted
    /// when a function leaves the stack.
    pub fn unmanaged_log_groups(mut self) -> Self {
        self.log_retention_days = None;
        self
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

pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks the app for one stage and reports every problem at once, so a user fixes them in one
/// round instead of discovering them one deploy at a time.
pub fn validate(app: &App, stage: &str) -> Result<(), StackErrors> {
    let mut errors = Vec::new();
    if !is_valid_name(&app.name) {
        errors.push(StackError::InvalidName {
            what: "app",
            value: app.name.clone(),
        });
    }
    let mut stage_names = BTreeSet::new();
    for s in &app.stages {
        if !stage_names.insert(s.name.as_str()) {
            errors.push(StackError::DuplicateStage {
                name: s.name.clone(),
            });
        }
    }
    if app.find_stage(stage).is_none() {
        errors.push(StackError::UnknownStage {
            stage: stage.to_string(),
            known: app.stages.iter().map(|s| s.name.clone()).collect(),
        });
    }
    if !is_valid_name(stage) {
        errors.push(StackError::InvalidName {
            what: "stage",
            value: stage.to_string(),
        });
    }
    if let Some(days) = app.find_stage(stage).and_then(|s| s.log_retention_days)
        && !crate::log_group::RETENTION_DAYS.contains(&days)
    {
        errors.push(StackError::LogRetention {
            stage: stage.to_string(),
            days,
        });
    }
    let role = names::role_name(&app.name, stage);
    if role.len() > MAX_ROLE_NAME {
        errors.push(StackError::RoleNameTooLong {
            len: role.len(),
            name: role,
        });
    }
    for (name, doc) in &app.role.inline_policies {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(doc) {
            errors.push(StackError::InvalidInlinePolicy {
                name: name.clone(),
                reason: e.to_string(),
            });
        }
    }

    let mut tables = BTreeSet::new();
    for t in &app.tables {
        if !tables.insert(t.logical.as_str()) {
            errors.push(StackError::DuplicateTable {
                logical: t.logical.clone(),
            });
            continue;
        }
        if !is_valid_name(&t.logical) {
            errors.push(StackError::InvalidName {
                what: "table",
                value: t.logical.clone(),
            });
        }
        let name = names::table_name(&app.name, stage, &t.logical);
        if !names::is_valid_table_name(&name) {
            errors.push(StackError::InvalidTableName {
                logical: t.logical.clone(),
                name,
            });
        }
    }
    let reads_any_table = app.functions.iter().any(|f| !f.reads_tables.is_empty());
    if reads_any_table
        && app
            .role
            .inline_policies
            .contains_key(names::TABLE_READ_POLICY)
    {
        errors.push(StackError::ReservedInlinePolicy {
            name: names::TABLE_READ_POLICY.to_string(),
        });
    }

    let mut seen = BTreeSet::new();
    for f in &app.functions {
        let logical = &f.logical;
        if !seen.insert(logical.as_str()) {
            errors.push(StackError::DuplicateFunction {
                logical: logical.clone(),
            });
            continue;
        }
        if !is_valid_name(logical) {
            errors.push(StackError::InvalidName {
                what: "function",
                value: logical.clone(),
            });
        }
        // The replacement slot is the longest name the function can ever have.
        let longest = names::replacement_name(&app.name, stage, logical);
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
                    declared: app.tables.iter().map(|t| t.logical.clone()).collect(),
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
    crate::rest_api::validate_rest_apis(app, &mut errors);

    if errors.is_empty() {
        Ok(())
    } else {
        Err(StackErrors(errors))
    }
}
