//! The desired state of one stage: the stack resolved against a stage, built packages and the
//! tenant data to seed. Each resource kind resolves its own part.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{StackError, StackErrors};
use crate::package::Package;
use crate::rest_api::{self, DesiredRestApi};
use crate::seed::{self, DesiredSeed, Seed};
use crate::stack::{self, App};
use crate::table::{self, DesiredTable};
use crate::{function, role};

pub use crate::function::{DesiredFunction, HANDLER, RUNTIME, function_tags};
pub use crate::role::{DesiredRole, table_read_policy};

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
    /// The execution and tenant-data roles of tenant-scoped functions.
    pub tenant_roles: Vec<crate::tenant_role::DesiredTenantRole>,
    /// The stage's signing keys (secrets the functions read at init).
    pub signing_keys: Vec<crate::signing_key::DesiredSigningKey>,
    /// The CloudTrail Lake store of the tables' data events, when the app audits them.
    pub trail: Option<crate::trail::DesiredTrail>,
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

    let (seeds, mut errors) = match seed::resolve_seeds(&app.name, stage, &app.tables, seeds) {
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
        functions.push(function::resolve(
            &app.name,
            stage,
            f,
            stage_def.architecture,
            package,
        ));
    }
    if !errors.is_empty() {
        return Err(StackErrors(errors));
    }

    Ok(Desired {
        app: app.name.clone(),
        stage: stage.to_string(),
        role: role::resolve(&app.name, stage, &app.role, &app.functions),
        signing_keys: crate::signing_key::resolve(&app.name, stage, &app.functions),
        functions,
        tables: app
            .tables
            .iter()
            .map(|t| table::resolve(&app.name, stage, t))
            .collect(),
        seeds,
        log_retention_days: stage_def.log_retention_days,
        rest_apis: match packages {
            Some(_) => {
                rest_api::desired_rest_apis(&app.name, stage, &app.rest_apis, &app.functions)
            }
            None => Vec::new(),
        },
        tenant_roles: match packages {
            Some(_) => crate::tenant_role::resolve(&app.name, stage, &app.functions),
            None => Vec::new(),
        },
        trail: crate::trail::resolve(app, stage),
    })
}
