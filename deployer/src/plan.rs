//! The planner: a pure comparison of desired and actual state, printable like `terraform plan`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::desired::{Desired, DesiredFunction, DesiredRole};
use crate::log_group::{LogGroupDiff, describe_retention, diff_log_group, log_group_name};
use crate::names;
use crate::observe::{Actual, ActualFunction, ActualRole};
use crate::rest_api::{self, ApiChange, ApiStep};
use crate::seed::{SeedDiff, diff_partition};
use crate::table::{TableDiff, diff_table};

/// What apply does to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    UpdateCode,
    UpdateConfiguration,
    UpdateCodeAndConfiguration,
    /// Only for the role: attach, detach, put or delete policies.
    Update,
    /// Functions: create anew under the other slot name, then delete the old one. Tables:
    /// delete, then create under the same name.
    Replace,
    Delete,
    /// Write a tenant's partition: put added and changed records, delete removed ones.
    Seed,
}

impl Action {
    fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => "   ",
            Action::Create => "  +",
            Action::UpdateCode
            | Action::UpdateConfiguration
            | Action::UpdateCodeAndConfiguration
            | Action::Update
            | Action::Seed => "  ~",
            Action::Replace => "-/+",
            Action::Delete => "  -",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::NoOp => "no-op",
            Action::Create => "create",
            Action::UpdateCode
            | Action::UpdateConfiguration
            | Action::UpdateCodeAndConfiguration
            | Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Seed => "seed",
        }
    }
}

/// The kind of AWS resource a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Function,
    Role,
    Table,
    /// One tenant's partition of a table.
    Seed,
    /// A function's CloudWatch Logs group.
    LogGroup,
    /// An API Gateway REST API.
    RestApi,
    /// One method on one path of a REST API, with its Lambda integration.
    Route,
    /// A function's resource-policy statement letting a REST API invoke it.
    Permission,
    /// A deployment of a REST API to its stage, which publishes its routes.
    Deployment,
    /// A REST API's TOKEN Lambda authorizer, which the tenant comes from.
    Authorizer,
}

/// The policy changes a role needs; apply reads the documents from the desired state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoleDiff {
    pub attach: Vec<String>,
    pub detach: Vec<String>,
    /// Inline policy names to put (new or changed).
    pub put: Vec<String>,
    /// Inline policy names to delete.
    pub delete: Vec<String>,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `function represent-dev-representatives` or `role represent-dev-exec`.
    pub resource: String,
    pub kind: ResourceKind,
    pub logical: Option<String>,
    /// The physical name the action targets (on `Replace`, the new function).
    pub name: String,
    pub action: Action,
    pub reason: String,
    pub details: Vec<String>,
    /// On `Replace`, the function that is deleted once the new one is active.
    pub replaces: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_diff: Option<RoleDiff>,
    /// On a seed change, the record keys to write; the data stays in the desired state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_diff: Option<SeedDiff>,
}

/// Everything a deploy or destroy would do to a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub app: String,
    pub stage: String,
    pub changes: Vec<Change>,
    /// The execution role's ARN as observed, which apply needs for functions when the role
    /// itself is not created in this run.
    pub role_arn: Option<String>,
    /// What apply needs for each REST API change, keyed by the change's `resource`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub api_steps: BTreeMap<String, ApiStep>,
}

impl Plan {
    /// The API step of a change, if it is one.
    pub fn api_step(&self, change: &Change) -> Option<&ApiStep> {
        self.api_steps.get(&change.resource)
    }

    fn push_api_changes(&mut self, changes: Vec<ApiChange>) {
        for (change, step) in changes {
            self.api_steps.insert(change.resource.clone(), step);
            self.changes.push(change);
        }
    }
}

/// Counts of a plan's changes by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    /// Tenant partitions to write.
    pub seed: usize,
    pub unchanged: usize,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::NoOp => s.unchanged += 1,
                Action::Create => s.create += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.delete += 1,
                Action::Seed => s.seed += 1,
                Action::UpdateCode
                | Action::UpdateConfiguration
                | Action::UpdateCodeAndConfiguration
                | Action::Update => s.update += 1,
            }
        }
        s
    }
}

/// Renders like `terraform plan`: one line per resource, its details indented below, then a
/// summary line. The text ends with a newline, so `print!("{plan}")` leaves the cursor clean.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.changes {
            writeln!(
                f,
                "{} {:<7} {}  ({})",
                c.action.symbol(),
                c.action.verb(),
                c.resource,
                c.reason
            )?;
            for d in &c.details {
                writeln!(f, "        {d}")?;
            }
        }
        if !self.changes.is_empty() {
            writeln!(f)?;
        }
        if self.has_changes() {
            let s = self.summary();
            // The seed count only appears in plans that seed, so plans of stacks without
            // tables read as they always have.
            let seed = if self.changes.iter().any(|c| c.kind == ResourceKind::Seed) {
                format!("{} to seed, ", s.seed)
            } else {
                String::new()
            };
            writeln!(
                f,
                "Plan: {} to create, {} to update, {} to replace, {} to delete, {seed}{} unchanged.",
                s.create, s.update, s.replace, s.delete, s.unchanged
            )
        } else {
            writeln!(f, "No changes. The stage is up to date.")
        }
    }
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

fn function_change(name: &str, logical: Option<&str>, action: Action, reason: String) -> Change {
    Change {
        resource: format!("function {name}"),
        kind: ResourceKind::Function,
        logical: logical.map(str::to_string),
        name: name.to_string(),
        action,
        reason,
        details: Vec::new(),
        replaces: None,
        role_diff: None,
        seed_diff: None,
    }
}

fn table_change(name: &str, logical: Option<&str>, action: Action, reason: String) -> Change {
    Change {
        resource: format!("table {name}"),
        kind: ResourceKind::Table,
        logical: logical.map(str::to_string),
        name: name.to_string(),
        action,
        reason,
        details: Vec::new(),
        replaces: None,
        role_diff: None,
        seed_diff: None,
    }
}

fn seed_change(logical: &str, diff: SeedDiff, records: usize) -> Change {
    let (action, reason) = if diff.is_empty() {
        let plural = if records == 1 { "" } else { "s" };
        (
            Action::NoOp,
            format!("up to date, {records} record{plural}"),
        )
    } else {
        (Action::Seed, diff.counts())
    };
    Change {
        resource: format!("tenant {} in {}", diff.tenant, diff.table),
        kind: ResourceKind::Seed,
        logical: Some(logical.to_string()),
        name: diff.table.clone(),
        action,
        reason,
        details: Vec::new(),
        replaces: None,
        role_diff: None,
        seed_diff: Some(diff),
    }
}

fn log_group_change(name: &str, logical: Option<&str>, action: Action, reason: String) -> Change {
    Change {
        resource: format!("log group {name}"),
        kind: ResourceKind::LogGroup,
        logical: logical.map(str::to_string),
        name: name.to_string(),
        action,
        reason,
        details: Vec::new(),
        replaces: None,
        role_diff: None,
        seed_diff: None,
    }
}

/// The log group of every function the plan keeps or creates (under the slot name it ends up
/// with), at the stage's retention; the groups of functions the plan deletes are deleted with
/// them. Nothing at all when the stage leaves its log groups to Lambda.
fn plan_log_groups(desired: &Desired, actual: &Actual, functions: &[Change]) -> Vec<Change> {
    let Some(days) = desired.log_retention_days else {
        return Vec::new();
    };
    let observed = |name: &str| actual.log_groups.iter().find(|g| g.name == name);
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for c in functions
        .iter()
        .filter(|c| c.kind == ResourceKind::Function)
    {
        let name = log_group_name(&c.name);
        let logical = c.logical.as_deref();
        if c.action == Action::Delete {
            if observed(&name).is_some() {
                delete.push(log_group_change(
                    &name,
                    logical,
                    Action::Delete,
                    format!("function {} is deleted", c.name),
                ));
            }
            continue;
        }
        let mut change = match diff_log_group(observed(&name), days) {
            LogGroupDiff::Create => log_group_change(
                &name,
                logical,
                Action::Create,
                "not deployed yet".to_string(),
            ),
            LogGroupDiff::Same => {
                log_group_change(&name, logical, Action::NoOp, "up to date".to_string())
            }
            LogGroupDiff::Retention { from, .. } => {
                let mut u = log_group_change(
                    &name,
                    logical,
                    Action::Update,
                    "retention changed".to_string(),
                );
                u.details = vec![format!(
                    "retention {} -> {}",
                    describe_retention(from),
                    describe_retention(Some(days))
                )];
                u
            }
        };
        if change.action == Action::Create {
            change.details = vec![format!("retention {}", describe_retention(Some(days)))];
        }
        keep.push(change);
        // A replaced function's old slot is deleted once the new one is active; its logs go
        // with it.
        if let Some(old) = &c.replaces {
            let old = log_group_name(old);
            if observed(&old).is_some() {
                delete.push(log_group_change(
                    &old,
                    logical,
                    Action::Delete,
                    format!(
                        "function {} is replaced",
                        c.replaces.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
    }
    keep.extend(delete);
    keep
}

/// The desired tables against the deployed ones: creates, key-schema replacements and billing
/// updates, in stack order. Also returns the tables this plan leaves empty (created or
/// replaced), whose seeds are then written in full.
fn plan_tables(desired: &Desired, actual: &Actual) -> (Vec<Change>, BTreeSet<String>) {
    let mut changes = Vec::new();
    let mut fresh = BTreeSet::new();
    for d in &desired.tables {
        let Some(a) = actual.tables.iter().find(|a| a.name == d.name) else {
            fresh.insert(d.name.clone());
            changes.push(table_change(
                &d.name,
                Some(&d.logical),
                Action::Create,
                "not deployed yet".to_string(),
            ));
            continue;
        };
        let change = match diff_table(d, a) {
            TableDiff::Same => table_change(
                &d.name,
                Some(&d.logical),
                Action::NoOp,
                "up to date".to_string(),
            ),
            TableDiff::KeySchema { from, to } => {
                fresh.insert(d.name.clone());
                let mut c = table_change(
                    &d.name,
                    Some(&d.logical),
                    Action::Replace,
                    "key schema is immutable: the table is deleted and created again, all its \
                     data is lost and seeded tenants are seeded again"
                        .to_string(),
                );
                c.details = vec![format!("key schema {from} -> {to}")];
                c
            }
            TableDiff::BillingMode { from, to } => {
                let mut c = table_change(
                    &d.name,
                    Some(&d.logical),
                    Action::Update,
                    "billing mode changed".to_string(),
                );
                c.details = vec![format!("billing mode {from} -> {to}")];
                c
            }
        };
        changes.push(change);
    }
    (changes, fresh)
}

/// Deployed tables the stack no longer declares.
fn prune_tables(desired: &Desired, actual: &Actual) -> Vec<Change> {
    actual
        .tables
        .iter()
        .filter(|a| !desired.tables.iter().any(|d| d.name == a.name))
        .map(|a| {
            table_change(
                &a.name,
                a.logical.as_deref(),
                Action::Delete,
                "no longer in the stack".to_string(),
            )
        })
        .collect()
}

/// One change per seeded tenant (of `only_tenant` if given), tables in stack order, tenants
/// sorted. Partitions of tables in `fresh` are empty whatever was observed.
fn plan_partitions(
    desired: &Desired,
    actual: &Actual,
    fresh: &BTreeSet<String>,
    only_tenant: Option<&str>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for seed in &desired.seeds {
        for (tenant, records) in &seed.partitions {
            if only_tenant.is_some_and(|only| only != tenant) {
                continue;
            }
            let observed = if fresh.contains(&seed.name) {
                None
            } else {
                actual
                    .find_partition(&seed.name, tenant)
                    .map(|p| &p.records)
            };
            let diff = diff_partition(&seed.name, tenant, records, observed);
            changes.push(seed_change(&seed.table, diff, records.len()));
        }
    }
    changes
}

/// A plan with only the seed changes, for `cargo xtask tenants seed`: one tenant (or every
/// seeded tenant) against the partitions [`crate::observe::observe_seeds`] read. Tables are
/// neither created nor replaced here; a missing table is reported when observing.
pub fn plan_seeds(desired: &Desired, actual: &Actual, only_tenant: Option<&str>) -> Plan {
    let fresh = desired
        .seeds
        .iter()
        .filter(|s| actual.find_table(&s.name).is_none())
        .map(|s| s.name.clone())
        .collect();
    Plan {
        app: desired.app.clone(),
        stage: desired.stage.clone(),
        changes: plan_partitions(desired, actual, &fresh, only_tenant),
        role_arn: None,
        api_steps: BTreeMap::new(),
    }
}

fn role_change(name: &str, action: Action, reason: &str, diff: Option<RoleDiff>) -> Change {
    let details = diff.as_ref().map(role_details).unwrap_or_default();
    Change {
        resource: format!("role {name}"),
        kind: ResourceKind::Role,
        logical: None,
        name: name.to_string(),
        action,
        reason: reason.to_string(),
        details,
        replaces: None,
        role_diff: diff,
        seed_diff: None,
    }
}

fn role_details(d: &RoleDiff) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(d.attach.iter().map(|p| format!("attach policy {p}")));
    out.extend(d.detach.iter().map(|p| format!("detach policy {p}")));
    out.extend(d.put.iter().map(|p| format!("put inline policy {p}")));
    out.extend(d.delete.iter().map(|p| format!("delete inline policy {p}")));
    out
}

/// Two policy documents are the same if they parse to the same JSON, whatever IAM did to
/// their whitespace.
fn same_document(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn plan_role(desired: &DesiredRole, actual: Option<&ActualRole>) -> Change {
    let Some(actual) = actual else {
        let diff = RoleDiff {
            attach: desired.managed_policies.clone(),
            put: desired.inline_policies.keys().cloned().collect(),
            ..RoleDiff::default()
        };
        return role_change(
            &desired.name,
            Action::Create,
            "not deployed yet",
            Some(diff),
        );
    };
    let want: BTreeSet<&String> = desired.managed_policies.iter().collect();
    let have: BTreeSet<&String> = actual.managed_policies.iter().collect();
    let diff = RoleDiff {
        attach: want.difference(&have).map(|s| s.to_string()).collect(),
        detach: have.difference(&want).map(|s| s.to_string()).collect(),
        put: desired
            .inline_policies
            .iter()
            .filter(|(name, doc)| {
                actual
                    .inline_policies
                    .get(*name)
                    .is_none_or(|have| !same_document(have, doc))
            })
            .map(|(name, _)| name.clone())
            .collect(),
        delete: actual
            .inline_policies
            .keys()
            .filter(|name| !desired.inline_policies.contains_key(*name))
            .cloned()
            .collect(),
    };
    if diff == RoleDiff::default() {
        role_change(&desired.name, Action::NoOp, "up to date", None)
    } else {
        role_change(
            &desired.name,
            Action::Update,
            "policies changed",
            Some(diff),
        )
    }
}

/// Compares one function with what is deployed: code (and architecture, which Lambda changes
/// together with the code) versus configuration.
fn diff_function(
    desired: &DesiredFunction,
    role_name: &str,
    actual: &ActualFunction,
) -> (Action, String, Vec<String>) {
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
        role_name.to_string(),
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
    let (action, reason) = match (code.is_empty(), config.is_empty()) {
        (true, true) => (Action::NoOp, "up to date".to_string()),
        (false, true) => (Action::UpdateCode, code_reason),
        (true, false) => (
            Action::UpdateConfiguration,
            "configuration changed".to_string(),
        ),
        (false, false) => (
            Action::UpdateCodeAndConfiguration,
            format!("{code_reason}; configuration changed"),
        ),
    };
    code.extend(config);
    (action, reason, code)
}

/// The name of the other slot of a logical function.
fn other_slot(desired: &Desired, logical: &str, name: &str) -> String {
    let primary = names::function_name(&desired.app, &desired.stage, logical);
    if name == primary {
        names::replacement_name(&desired.app, &desired.stage, logical)
    } else {
        primary
    }
}

/// Compares desired and actual state. Pure: no IO, so every decision can be printed and tested.
pub fn plan(desired: &Desired, actual: &Actual) -> Plan {
    let mut changes = vec![plan_role(&desired.role, actual.role.as_ref())];
    let (tables, fresh) = plan_tables(desired, actual);
    changes.extend(tables);
    changes.extend(plan_partitions(desired, actual, &fresh, None));
    let mut leftovers = Vec::new();

    for d in &desired.functions {
        let mut mine: Vec<&ActualFunction> = actual
            .functions
            .iter()
            .filter(|a| a.logical.as_deref() == Some(d.logical.as_str()))
            .collect();
        // Prefer the usual slot, so an interrupted replace settles back on the expected name
        // when both functions would do.
        mine.sort_by_key(|a| (a.name != d.name, a.name.clone()));
        let keep = mine.iter().position(|a| a.tenancy == d.tenancy);
        match keep {
            Some(i) => {
                let kept = mine.remove(i);
                let (action, reason, details) = diff_function(d, &desired.role.name, kept);
                let mut c = function_change(&kept.name, Some(&d.logical), action, reason);
                c.details = details;
                changes.push(c);
                for other in mine {
                    leftovers.push(function_change(
                        &other.name,
                        Some(&d.logical),
                        Action::Delete,
                        format!(
                            "left over from an interrupted replace; {} is kept",
                            kept.name
                        ),
                    ));
                }
            }
            None if !mine.is_empty() => {
                let old = mine.remove(0);
                let new_name = other_slot(desired, &d.logical, &old.name);
                let mut c = function_change(
                    &new_name,
                    Some(&d.logical),
                    Action::Replace,
                    format!(
                        "tenancy {} -> {} (immutable after creation)",
                        old.tenancy, d.tenancy
                    ),
                );
                c.details = vec![format!("replaces {}", old.name)];
                c.replaces = Some(old.name.clone());
                changes.push(c);
                for other in mine {
                    leftovers.push(function_change(
                        &other.name,
                        Some(&d.logical),
                        Action::Delete,
                        format!("left over from an interrupted replace; {new_name} replaces it"),
                    ));
                }
            }
            None => changes.push(function_change(
                &d.name,
                Some(&d.logical),
                Action::Create,
                "not deployed yet".to_string(),
            )),
        }
    }
    changes.extend(leftovers);

    let wanted: BTreeSet<&str> = desired
        .functions
        .iter()
        .map(|f| f.logical.as_str())
        .collect();
    let mut pruned: Vec<Change> = actual
        .functions
        .iter()
        .filter(|a| a.logical.as_deref().is_none_or(|l| !wanted.contains(l)))
        .map(|a| {
            function_change(
                &a.name,
                a.logical.as_deref(),
                Action::Delete,
                "no longer in the stack".to_string(),
            )
        })
        .collect();
    pruned.sort_by(|a, b| a.name.cmp(&b.name));
    changes.extend(pruned);
    let log_groups = plan_log_groups(desired, actual, &changes);
    changes.extend(log_groups);
    changes.extend(prune_tables(desired, actual));
    // Routes point at the slot each function has after this plan: a replaced function's new
    // name, so the integration moves before the old function is deleted.
    let targets: BTreeMap<String, String> = changes
        .iter()
        .filter(|c| c.kind == ResourceKind::Function && c.action != Action::Delete)
        .filter_map(|c| Some((c.logical.clone()?, c.name.clone())))
        .collect();
    let apis = rest_api::plan_rest_apis(&desired.rest_apis, actual, &targets);

    let mut plan = Plan {
        app: desired.app.clone(),
        stage: desired.stage.clone(),
        changes,
        role_arn: actual.role.as_ref().map(|r| r.arn.clone()),
        api_steps: BTreeMap::new(),
    };
    plan.push_api_changes(apis);
    plan
}

/// Everything a stage has, to be deleted: its REST APIs first, so nothing routes to a deleted
/// function, then functions, their tables, and the role they run as.
pub fn plan_destroy(actual: &Actual, app: &str, stage: &str) -> Plan {
    let mut changes: Vec<Change> = actual
        .functions
        .iter()
        .map(|a| {
            function_change(
                &a.name,
                a.logical.as_deref(),
                Action::Delete,
                "destroying the stage".to_string(),
            )
        })
        .collect();
    changes.sort_by(|a, b| a.name.cmp(&b.name));
    changes.extend(actual.log_groups.iter().map(|g| {
        log_group_change(
            &g.name,
            None,
            Action::Delete,
            "destroying the stage".to_string(),
        )
    }));
    changes.extend(actual.tables.iter().map(|a| {
        table_change(
            &a.name,
            a.logical.as_deref(),
            Action::Delete,
            "destroying the stage".to_string(),
        )
    }));
    if let Some(role) = &actual.role {
        let diff = RoleDiff {
            detach: role.managed_policies.clone(),
            delete: role.inline_policies.keys().cloned().collect(),
            ..RoleDiff::default()
        };
        changes.push(role_change(
            &role.name,
            Action::Delete,
            "destroying the stage",
            Some(diff),
        ));
    }
    let mut plan = Plan {
        app: app.to_string(),
        stage: stage.to_string(),
        changes: Vec::new(),
        role_arn: actual.role.as_ref().map(|r| r.arn.clone()),
        api_steps: BTreeMap::new(),
    };
    plan.push_api_changes(rest_api::destroy_rest_apis(actual));
    plan.changes.extend(changes);
    plan
}

/// How [`Plan::render`] draws a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Also list unchanged resources, which otherwise only count in the summary line.
    pub verbose: bool,
    /// ANSI colours (a terminal that did not ask for `NO_COLOR`).
    pub color: bool,
}

impl Plan {
    /// The plan as text: the changes like `terraform plan` (unchanged resources only when
    /// `verbose`), then the summary line; ends with a newline.
    pub fn render(&self, options: &RenderOptions) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut listed = false;
        for c in &self.changes {
            if c.action == Action::NoOp && !options.verbose {
                continue;
            }
            listed = true;
            let (on, off) = match (options.color, c.action) {
                (false, _) | (true, Action::NoOp) => ("", ""),
                (true, Action::Create) => ("\x1b[32m", "\x1b[0m"),
                (true, Action::Delete | Action::Replace) => ("\x1b[31m", "\x1b[0m"),
                (true, _) => ("\x1b[33m", "\x1b[0m"),
            };
            let _ = writeln!(
                out,
                "{on}{} {:<7} {}{off}  ({})",
                c.action.symbol(),
                c.action.verb(),
                c.resource,
                c.reason
            );
            for d in &c.details {
                let _ = writeln!(out, "        {d}");
            }
        }
        if listed {
            out.push('\n');
        }
        let full = self.to_string();
        if let Some(summary) = full.lines().last() {
            out.push_str(summary);
            out.push('\n');
        }
        out
    }

    /// The changes that delete or replace something: what a deploy to a real stage asks about.
    pub fn destructive(&self) -> Vec<&Change> {
        self.changes
            .iter()
            .filter(|c| matches!(c.action, Action::Replace | Action::Delete))
            .collect()
    }
}
