//! The desired state of one stage: the stack resolved against a stage and built packages.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{StackError, StackErrors};
use crate::names::{self, TAG_APP, TAG_LOGICAL, TAG_STAGE};
use crate::package::Package;
use crate::stack::{self, App, Architecture, LogFormat, Tenancy};

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
}

impl Desired {
    pub fn find_function(&self, logical: &str) -> Option<&DesiredFunction> {
        self.functions.iter().find(|f| f.logical == logical)
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

/// Resolves the app for one stage, with the packages built for it (keyed by binary name).
/// Validates first, so every problem is reported before anything touches AWS.
pub fn desired(
    app: &App,
    stage: &str,
    packages: &BTreeMap<String, Package>,
) -> Result<Desired, StackErrors> {
    stack::validate(app, stage)?;
    let stage_def = app.find_stage(stage).ok_or_else(|| {
        StackErrors(vec![StackError::UnknownStage {
            stage: stage.to_string(),
            known: app.stages.iter().map(|s| s.name.clone()).collect(),
        }])
    })?;

    let mut errors = Vec::new();
    let mut functions = Vec::new();
    for f in &app.functions {
        let Some(package) = packages.get(&f.bin) else {
            errors.push(StackError::MissingPackage {
                logical: f.logical.clone(),
                bin: f.bin.clone(),
            });
            continue;
        };
        functions.push(DesiredFunction {
            logical: f.logical.clone(),
            name: names::function_name(&app.name, stage, &f.logical),
            runtime: RUNTIME.to_string(),
            handler: HANDLER.to_string(),
            memory_mb: f.memory_mb,
            timeout_s: f.timeout_s,
            architecture: f.architecture.unwrap_or(stage_def.architecture),
            environment: f.environment.clone(),
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
    Ok(Desired {
        app: app.name.clone(),
        stage: stage.to_string(),
        role: DesiredRole {
            name: names::role_name(&app.name, stage),
            managed_policies: managed,
            inline_policies: app.role.inline_policies.clone(),
            tags: BTreeMap::from([
                (TAG_APP.to_string(), app.name.clone()),
                (TAG_STAGE.to_string(), stage.to_string()),
            ]),
        },
        functions,
    })
}
