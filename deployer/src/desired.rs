//! The desired state of one stage: the stack resolved against a stage, built packages and the
//! tenant data to seed.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{StackError, StackErrors};
use crate::names::{self, TAG_APP, TAG_LOGICAL, TAG_STAGE};
use crate::package::Package;
use crate::rest_api::{self, DesiredRestApi};
use crate::seed::{self, DesiredSeed, Seed};
use crate::stack::{self, App, Architecture, LogFormat, Tenancy};
use crate::table::{DesiredTable, KeySchema, PAY_PER_REQUEST, table_tags};

/// The runtime every function uses: a custom runtime running the `bootstrap` binary.
pub const RUNTIME: &str = "provided.al2023";
/// The handler name; custom runtimes ignore it, but Lambda requires one.
pub const HANDLER: &str = "bootstrap";

/// What a stage should look like after a deploy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub app: String,
    pub stage: String,
    pub role: DesiredRole,
    pub functions: Vec<DesiredFunction>,
    pub tables: Vec<DesiredTable>,
    /// Seed data per table; only the tenants named here are read or written.
    pub seeds: Vec<DesiredSeed>,
    /// Days the functions' log groups keep logs; `None` when the stage leaves them to Lambda.
    pub log_retention_days: Option<u32>,
    /// REST APIs in front of the functions; empty when functions are left out (seeding).
    pub rest_apis: Vec<DesiredRestApi>,
}

impl Desired {
    pub fn find_function(&self, logical: &str) -> Option<&DesiredFunction> {
        self.functions.iter().find(|f| f.logical == logical)
    }

    pub fn find_table(&self, logical: &str) -> Option<&DesiredTable> {
        self.tables.iter().find(|t| t.logical == logical)
    }

    pub fn find_rest_api(&self, logical: &str) -> Option<&DesiredRestApi> {
        self.rest_apis.iter().find(|a| a.logical == logical)
    }

    /// The seed of a table, by physical name.
    pub fn find_seed(&self, table_name: &str) -> Option<&DesiredSeed> {
        self.seeds.iter().find(|s| s.name == table_name)
    }
}

/// The stage's execution role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredRole {
    pub name: String,
    pub managed_policies: Vec<String>,
    pub inline_policies: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
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
    pub environment: BTreeMap<String, String>,
    pub description: String,
    pub tenancy: Tenancy,
    pub log_format: LogFormat,
    pub code_sha256: String,
    /// The zip; shared, because it can be tens of megabytes.
    #[serde(skip)]
    pub code: Arc<Vec<u8>>,
    pub tags: BTreeMap<String, String>,
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
            .finish_non_exhaustive()
    }
}

/// The tags of every function of a stage.
pub fn function_tags(app: &str, stage: &str, logical: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_APP.to_string(), app.to_string()),
        (TAG_STAGE.to_string(), stage.to_string()),
        (TAG_LOGICAL.to_string(), logical.to_string()),
    ])
}

/// The execution role's policy letting functions read exactly the tables they declare, and only
/// read them. `None` when no function reads a table, so the role carries no DynamoDB access.
///
/// The ARNs use `*` for the region and account: the plan is computed before any call, so neither
/// is known, and the table name already pins the app and stage.
pub fn table_read_policy(app: &App, stage: &str) -> Option<String> {
    let tables: std::collections::BTreeSet<&String> = app
        .functions
        .iter()
        .flat_map(|f| f.reads_tables.values())
        .collect();
    if tables.is_empty() {
        return None;
    }
    let resources: Vec<String> = tables
        .into_iter()
        .map(|t| names::table_arn_pattern(&names::table_name(&app.name, stage, t)))
        .collect();
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReadTenantTables",
            "Effect": "Allow",
            "Action": ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"],
            "Resource": resources,
        }],
    });
    Some(doc.to_string())
}

/// Resolves the app for one stage, with the packages built for it (keyed by binary name) and
/// no tenant data. Validates first, so every problem is reported before anything touches AWS.
pub fn desired(
    app: &App,
    stage: &str,
    packages: &BTreeMap<String, Package>,
) -> Result<Desired, StackErrors> {
    desired_with_seeds(app, stage, packages, Vec::new())
}

/// Like [`desired`], with tenant data to seed into the stack's tables.
pub fn desired_with_seeds(
    app: &App,
    stage: &str,
    packages: &BTreeMap<String, Package>,
    seeds: Vec<Seed>,
) -> Result<Desired, StackErrors> {
    resolve(app, stage, Some(packages), seeds)
}

/// The desired state for seeding only (`cargo xtask tenants seed`): tables, role and seeds, but
/// no functions, so nothing has to be built. Use it with [`crate::observe::observe_seeds`] and
/// [`crate::plan::plan_seeds`]; a full [`crate::plan::plan`] of it would prune every function.
pub fn desired_for_seeding(
    app: &App,
    stage: &str,
    seeds: Vec<Seed>,
) -> Result<Desired, StackErrors> {
    resolve(app, stage, None, seeds)
}

fn resolve(
    app: &App,
    stage: &str,
    packages: Option<&BTreeMap<String, Package>>,
    seeds: Vec<Seed>,
) -> Result<Desired, StackErrors> {
    stack::validate(app, stage)?;
    let stage_def = app.find_stage(stage).ok_or_else(|| {
        StackErrors(vec![StackError::UnknownStage {
            stage: stage.to_string(),
            known: app.stages.iter().map(|s| s.name.clone()).collect(),
        }])
    })?;

    let (seeds, mut errors) = match seed::resolve_seeds(app, stage, seeds) {
        Ok(seeds) => (seeds, Vec::new()),
        Err(errors) => (Vec::new(), errors),
    };
    let mut functions = Vec::new();
    for f in app.functions.iter().filter(|_| packages.is_some()) {
        let Some(package) = packages.and_then(|p| p.get(&f.bin)) else {
            errors.push(StackError::MissingPackage {
                logical: f.logical.clone(),
                bin: f.bin.clone(),
            });
            continue;
        };
        let mut environment = f.environment.clone();
        for (key, table) in &f.reads_tables {
            environment.insert(key.clone(), names::table_name(&app.name, stage, table));
        }
        functions.push(DesiredFunction {
            logical: f.logical.clone(),
            name: names::function_name(&app.name, stage, &f.logical),
            runtime: RUNTIME.to_string(),
            handler: HANDLER.to_string(),
            memory_mb: f.memory_mb,
            timeout_s: f.timeout_s,
            architecture: f.architecture.unwrap_or(stage_def.architecture),
            environment,
            description: f.description.clone(),
            tenancy: f.tenancy,
            log_format: f.log_format,
            code_sha256: package.code_sha256.clone(),
            code: Arc::new(package.bytes.clone()),
            tags: function_tags(&app.name, stage, &f.logical),
        });
    }
    if !errors.is_empty() {
        return Err(StackErrors(errors));
    }

    let mut managed = app.role.managed_policies.clone();
    managed.sort();
    managed.dedup();
    let mut inline_policies = app.role.inline_policies.clone();
    if let Some(doc) = table_read_policy(app, stage) {
        inline_policies.insert(names::TABLE_READ_POLICY.to_string(), doc);
    }
    let tables = app
        .tables
        .iter()
        .map(|t| DesiredTable {
            logical: t.logical.clone(),
            name: names::table_name(&app.name, stage, &t.logical),
            key_schema: KeySchema::tenant_record(),
            billing_mode: PAY_PER_REQUEST.to_string(),
            tags: table_tags(&app.name, stage, &t.logical),
        })
        .collect();
    Ok(Desired {
        app: app.name.clone(),
        stage: stage.to_string(),
        role: DesiredRole {
            name: names::role_name(&app.name, stage),
            managed_policies: managed,
            inline_policies,
            tags: BTreeMap::from([
                (TAG_APP.to_string(), app.name.clone()),
                (TAG_STAGE.to_string(), stage.to_string()),
            ]),
        },
        functions,
        tables,
        seeds,
        log_retention_days: stage_def.log_retention_days,
        rest_apis: match packages {
            Some(_) => rest_api::desired_rest_apis(app, stage),
            None => Vec::new(),
        },
    })
}
