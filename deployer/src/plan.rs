//! The planner: a pure comparison of desired and actual state, printable like `terraform plan`.
//! Each resource kind plans its own part; this module puts them in order and renders the plan.
//!
//! A plan is data: every [`Change`] carries the operation apply sends for it ([`Op`]), so
//! [`crate::apply::apply`] needs the plan alone, and `--output json` shows every operation.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::desired::Desired;
use crate::function::FunctionOp;
use crate::log_group::{FunctionSlot, LogGroupOp, log_group_name};
use crate::names;
use crate::observe::Actual;
use crate::rest_api::ApiStep;
use crate::role::RoleOp;
use crate::seed::SeedOp;
use crate::table::TableOp;
use crate::{function, log_group, rest_api, role, seed, table};

pub use crate::change::{Action, Planned, ResourceKind};

/// What apply sends for one change, by resource kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Op {
    Role(RoleOp),
    Function(FunctionOp),
    Table(TableOp),
    Seed(SeedOp),
    LogGroup(LogGroupOp),
    /// A REST API, route, authorizer, permission or deployment.
    Api(ApiStep),
    TenantRole(crate::tenant_role::TenantRoleOp),
    SigningKey(crate::signing_key::SigningKeyOp),
    Trail(crate::trail::TrailOp),
}

/// One planned change and the operation apply sends for it.
pub type Change = Planned<Op>;

/// Everything a deploy or destroy would do to a stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub app: String,
    pub stage: String,
    pub changes: Vec<Change>,
    /// The execution role's ARN as observed, which apply needs for functions when the role
    /// itself is not created in this run.
    pub role_arn: Option<String>,
}

/// Counts of a plan's changes by action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    /// Tenant partitions to write (updates of kind seed, not counted in `update`).
    pub seed: usize,
    pub unchanged: usize,
}

/// How [`Plan::render`] prints a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// List unchanged resources too; otherwise they only count in the summary line.
    pub verbose: bool,
    /// Colour the action symbols with ANSI escapes (for a terminal).
    pub color: bool,
}

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

fn symbol(c: &Change) -> &'static str {
    match c.action {
        Action::NoOp => "   ",
        Action::Create => "  +",
        Action::Update => "  ~",
        Action::Replace => "-/+",
        Action::Delete => "  -",
    }
}

fn verb(c: &Change) -> &'static str {
    match (c.action, c.kind) {
        (Action::Update, ResourceKind::Seed) => "seed",
        (Action::NoOp, _) => "no-op",
        (Action::Create, _) => "create",
        (Action::Update, _) => "update",
        (Action::Replace, _) => "replace",
        (Action::Delete, _) => "delete",
    }
}

fn colour(c: &Change) -> &'static str {
    match c.action {
        Action::NoOp => "",
        Action::Create => GREEN,
        Action::Update => YELLOW,
        Action::Replace | Action::Delete => RED,
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    /// Every change that destroys something: replacements and deletes.
    pub fn destructive(&self) -> Vec<&Change> {
        self.changes
            .iter()
            .filter(|c| matches!(c.action, Action::Replace | Action::Delete))
            .collect()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match (c.action, c.kind) {
                (Action::NoOp, _) => s.unchanged += 1,
                (Action::Create, _) => s.create += 1,
                (Action::Replace, _) => s.replace += 1,
                (Action::Delete, _) => s.delete += 1,
                (Action::Update, ResourceKind::Seed) => s.seed += 1,
                (Action::Update, _) => s.update += 1,
            }
        }
        s
    }

    /// Renders like `terraform plan`: one line per resource, its details indented below, then a
    /// summary line. The text ends with a newline.
    pub fn render(&self, options: &RenderOptions) -> String {
        let mut out = String::new();
        let mut listed = false;
        for c in &self.changes {
            if c.action == Action::NoOp && !options.verbose {
                continue;
            }
            listed = true;
            let (on, off) = match (options.color, colour(c)) {
                (true, code) if !code.is_empty() => (code, RESET),
                _ => ("", ""),
            };
            out.push_str(&format!(
                "{on}{} {:<7}{off} {}  ({})\n",
                symbol(c),
                verb(c),
                c.resource,
                c.reason
            ));
            for d in &c.details {
                out.push_str(&format!("        {d}\n"));
            }
        }
        if listed {
            out.push('\n');
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
            out.push_str(&format!(
                "Plan: {} to create, {} to update, {} to replace, {} to delete, {seed}{} unchanged.\n",
                s.create, s.update, s.replace, s.delete, s.unchanged
            ));
        } else {
            out.push_str("No changes. The stage is up to date.\n");
        }
        out
    }
}

/// Every resource, unchanged ones included, without colour.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&RenderOptions {
            verbose: true,
            color: false,
        }))
    }
}

fn wrap<O>(changes: Vec<Planned<O>>, op: impl Fn(O) -> Op) -> impl Iterator<Item = Change> {
    changes.into_iter().map(move |c| c.map(&op))
}

/// Compares desired and actual state. Pure: no IO, so every decision can be printed and tested.
pub fn plan(desired: &Desired, actual: &Actual) -> Plan {
    let (app, stage) = (desired.app.as_str(), desired.stage.as_str());
    let mut changes = vec![role::plan(&desired.role, actual.role.as_ref()).map(Op::Role)];
    changes.extend(wrap(
        crate::tenant_role::plan(&desired.tenant_roles, &actual.tenant_roles),
        Op::TenantRole,
    ));
    changes.extend(wrap(
        crate::signing_key::plan(
            &desired.app,
            &desired.stage,
            &desired.signing_keys,
            &actual.signing_keys,
        ),
        Op::SigningKey,
    ));
    let (tables, fresh) = table::plan(&desired.tables, &actual.tables);
    changes.extend(wrap(tables, Op::Table));
    changes.extend(wrap(
        seed::plan(&desired.seeds, &actual.partitions, &fresh, None),
        Op::Seed,
    ));

    let mut functions = function::plan(
        app,
        stage,
        &desired.role.name,
        &desired.functions,
        &actual.functions,
    );
    let slots: Vec<FunctionSlot> = functions
        .iter()
        .filter(|c| c.action != Action::Delete)
        .filter_map(|c| {
            let logical = c.logical.clone()?;
            let primary = names::function_name(app, stage, &logical);
            let other_slot = if c.name == primary {
                names::replacement_name(app, stage, &logical)
            } else {
                primary
            };
            Some(FunctionSlot {
                name: c.name.clone(),
                other_slot,
                replaces: c.op.replaces.clone(),
                tags: function::function_tags(app, stage, &logical),
                logical,
            })
        })
        .collect();
    // A replaced function's log group stays: say so where the replacement is shown.
    if desired.log_retention_days.is_some() {
        for c in functions.iter_mut() {
            if let Some(old) = &c.op.replaces {
                let group = log_group_name(old);
                if actual.log_groups.iter().any(|g| g.name == group) {
                    c.details
                        .push(format!("log group {group} is kept (its history)"));
                }
            }
        }
    }
    // Routes point at the slot each function has after this plan: a replaced function's new
    // name, so the integration moves before the old function is deleted.
    let targets: BTreeMap<String, String> = slots
        .iter()
        .map(|s| (s.logical.clone(), s.name.clone()))
        .collect();
    // Functions this plan deletes (the old slot of a replacement too) take their statements
    // with them.
    let gone: std::collections::BTreeSet<String> = functions
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.name.clone())
        .chain(functions.iter().filter_map(|c| c.op.replaces.clone()))
        .collect();
    changes.extend(wrap(functions, Op::Function));
    changes.extend(wrap(
        log_group::plan(desired.log_retention_days, &actual.log_groups, &slots),
        Op::LogGroup,
    ));
    changes.extend(wrap(
        table::prune(&desired.tables, &actual.tables, "no longer in the stack"),
        Op::Table,
    ));
    let apis = rest_api::plan_rest_apis(&desired.rest_apis, &actual.rest_apis, &targets);
    let statements =
        rest_api::plan_stale_statements(&actual.rest_apis, &actual.api_statements, &apis, &gone);
    changes.extend(wrap(apis, Op::Api));
    changes.extend(wrap(statements, Op::Api));
    changes.extend(wrap(
        crate::trail::plan(desired.trail.as_ref(), actual.trail.as_ref()),
        Op::Trail,
    ));
    Plan {
        app: app.to_string(),
        stage: stage.to_string(),
        changes,
        role_arn: actual.role.as_ref().map(|r| r.arn.clone()),
    }
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
        changes: wrap(
            seed::plan(&desired.seeds, &actual.partitions, &fresh, only_tenant),
            Op::Seed,
        )
        .collect(),
        role_arn: None,
    }
}

/// Everything a stage has, to be deleted: its REST APIs first, so nothing routes to a deleted
/// function, then functions, their log groups, tables, and the role they run as.
pub fn plan_destroy(actual: &Actual, app: &str, stage: &str) -> Plan {
    let mut changes: Vec<Change> =
        wrap(rest_api::destroy_rest_apis(&actual.rest_apis), Op::Api).collect();
    changes.extend(wrap(
        function::plan_destroy(&actual.functions),
        Op::Function,
    ));
    changes.extend(wrap(
        log_group::plan_destroy(&actual.log_groups),
        Op::LogGroup,
    ));
    changes.extend(wrap(
        table::prune(&[], &actual.tables, "destroying the stage"),
        Op::Table,
    ));
    changes.extend(
        actual.tenant_roles.iter().map(|r| {
            crate::tenant_role::plan_delete(r, "destroying the stage").map(Op::TenantRole)
        }),
    );
    changes.extend(wrap(
        crate::signing_key::plan_destroy(&actual.signing_keys),
        Op::SigningKey,
    ));
    if let Some(t) = &actual.trail {
        changes.push(crate::trail::plan_delete(t, "destroying the stage").map(Op::Trail));
    }
    if let Some(r) = &actual.role {
        changes.push(role::plan_delete(r, "destroying the stage").map(Op::Role));
    }
    Plan {
        app: app.to_string(),
        stage: stage.to_string(),
        changes,
        role_arn: actual.role.as_ref().map(|r| r.arn.clone()),
    }
}
