//! The typed stack: an app with its functions, tables, REST APIs, execution role and stages,
//! and its validation. Each resource kind declares and checks its own part (`function`,
//! `table`, `rest_api`, `role`); this module holds the app and its stages.

use std::collections::BTreeSet;

use crate::error::{StackError, StackErrors};
pub use crate::function::{Architecture, Function, LogFormat, Tenancy};
use crate::names::{self, MAX_ROLE_NAME, is_valid_name};
pub use crate::rest_api::{ApiKind, RestApi, TenantSource};
pub use crate::role::Role;
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
    /// Whether each stage records its tables' DynamoDB data events in a CloudTrail Lake event
    /// data store ([`App::audit_data_events`]).
    pub audit_data_events: bool,
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
            audit_data_events: false,
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

    /// Records every data call on the stack's tables (who read or wrote which partition,
    /// allowed or refused) in a CloudTrail Lake event data store per stage,
    /// `{app}-{stage}-data-events`, which `audit` reads. CloudTrail Lake bills what it
    /// ingests: every read and write of the tables is an event.
    pub fn audit_data_events(mut self) -> Self {
        self.audit_data_events = true;
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

    crate::table::validate(&app.name, stage, &app.tables, &mut errors);
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

    crate::function::validate(&app.name, stage, &app.functions, &app.tables, &mut errors);
    crate::tenant_role::validate(&app.name, stage, &app.functions, &mut errors);
    crate::rest_api::validate_rest_apis(&app.rest_apis, &app.functions, &mut errors);
    if app.audit_data_events && app.tables.is_empty() {
        errors.push(StackError::AuditWithoutTables {
            app: app.name.clone(),
        });
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(StackErrors(errors))
    }
}
