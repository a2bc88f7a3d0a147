//! Apply: the only code that changes AWS. Turns a plan into a graph of steps (role before
//! functions, table before its seeds, functions before the routes that invoke them, an API's
//! routes before its deployment, a replacement's new function before the old one's deletion)
//! and runs independent steps at once, at most [`ApplyOptions::parallelism`] of them. After the
//! first failure no new step starts; the running ones finish and every failure is reported.

use std::collections::BTreeMap;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::change::{Action, Planned, ResourceKind};
use crate::error::DeployError;
use crate::log_group::log_group_name;
use crate::names;
use crate::observe::Clients;
use crate::plan::{Change, Op, Plan};
use crate::rest_api::{self, ApiChange};
use crate::step::Ctx;
use crate::{function, log_group, role, seed, table};

pub use crate::role::LAMBDA_TRUST_POLICY;
pub use crate::seed::MAX_BATCH_WRITE;
pub use crate::step::ApplyOptions;

/// What apply did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// The changes carried out (no-ops are left out), in the order they finished.
    pub changes: Vec<Change>,
    /// Every mutating request sent, retries included.
    pub mutating_calls: u32,
    /// The invoke URL of every REST API of the stage, by logical name.
    pub api_urls: BTreeMap<String, String>,
}

/// An apply that failed: every step that failed, and what was carried out before and beside
/// them (with the exact count of mutating calls sent).
#[derive(Debug)]
pub struct ApplyFailure {
    pub errors: Vec<DeployError>,
    pub report: ApplyReport,
}

impl std::fmt::Display for ApplyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.errors.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} steps failed:", many.len())?;
                for e in many {
                    write!(f, "\n  - {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ApplyFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.errors
            .first()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// One step of apply; the numbers are indices into the plan's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create or update the role.
    Role(usize),
    /// Create, replace or update a table.
    Table(usize),
    /// Write one tenant's partition.
    Seed(usize),
    /// Create a log group or set its retention.
    LogGroup(usize),
    /// Create, update, or create the new slot of a replaced function.
    Function(usize),
    /// Every change of one REST API but its deletion, in order.
    Api {
        api: String,
        changes: Vec<usize>,
    },
    DeleteApi(usize),
    /// Delete a function: one the plan deletes, or the old slot of a replacement.
    DeleteFunction {
        change: usize,
        name: String,
    },
    DeleteLogGroup(usize),
    DeleteTable(usize),
    DeleteRole(usize),
    /// Create or update a tenant-scoped function's execution or tenant-data role.
    TenantRole(usize),
    DeleteTenantRole(usize),
    /// Create or restore a signing key.
    SigningKey(usize),
    DeleteSigningKey(usize),
    /// Create or update the stage's data-events store.
    Trail(usize),
    DeleteTrail(usize),
    /// Remove a function's statement naming an API that is gone (or deleted by this run).
    RemovePermission(usize),
}

/// A step and the steps that must finish before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub step: Step,
    pub depends_on: Vec<usize>,
}

impl Step {
    /// What the step is about, for tests and progress: `function represent-dev-counties`.
    pub fn label(&self, plan: &Plan) -> String {
        match self {
            Step::Api { api, .. } => format!("rest api {api}"),
            Step::DeleteFunction { name, .. } => format!("delete function {name}"),
            Step::Role(i)
            | Step::Table(i)
            | Step::Seed(i)
            | Step::LogGroup(i)
            | Step::SigningKey(i)
            | Step::Function(i)
            | Step::Trail(i)
            | Step::TenantRole(i) => plan.changes[*i].resource.clone(),
            Step::DeleteApi(i)
            | Step::DeleteLogGroup(i)
            | Step::DeleteTable(i)
            | Step::DeleteRole(i)
            | Step::DeleteTrail(i)
            | Step::DeleteTenantRole(i)
            | Step::DeleteSigningKey(i)
            | Step::RemovePermission(i) => format!("delete {}", plan.changes[*i].resource),
        }
    }
}

/// The plan as a dependency graph of steps. Pure, so the order apply keeps can be tested
/// without AWS.
pub fn graph(plan: &Plan) -> Vec<Node> {
    let mut steps = Vec::new();
    let mut apis: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        let delete = c.action == Action::Delete;
        match (c.kind, delete) {
            (_, false) if c.action == Action::NoOp && !is_api(c) => {}
            (ResourceKind::Role, false) => steps.push(Step::Role(i)),
            (ResourceKind::Role, true) => steps.push(Step::DeleteRole(i)),
            (ResourceKind::TenantRole, false) => steps.push(Step::TenantRole(i)),
            (ResourceKind::TenantRole, true) => steps.push(Step::DeleteTenantRole(i)),
            (ResourceKind::Table, false) => steps.push(Step::Table(i)),
            (ResourceKind::Table, true) => steps.push(Step::DeleteTable(i)),
            (ResourceKind::Seed, _) => steps.push(Step::Seed(i)),
            (ResourceKind::LogGroup, false) => steps.push(Step::LogGroup(i)),
            (ResourceKind::LogGroup, true) => steps.push(Step::DeleteLogGroup(i)),
            (ResourceKind::Function, false) => {
                steps.push(Step::Function(i));
                if let Op::Function(op) = &c.op
                    && let Some(old) = &op.replaces
                {
                    steps.push(Step::DeleteFunction {
                        change: i,
                        name: old.clone(),
                    });
                }
            }
            (ResourceKind::Function, true) => steps.push(Step::DeleteFunction {
                change: i,
                name: c.name.clone(),
            }),
            (ResourceKind::RestApi, true) => steps.push(Step::DeleteApi(i)),
            (ResourceKind::SigningKey, false) => steps.push(Step::SigningKey(i)),
            (ResourceKind::SigningKey, true) => steps.push(Step::DeleteSigningKey(i)),
            (ResourceKind::EventDataStore, false) => steps.push(Step::Trail(i)),
            (ResourceKind::EventDataStore, true) => steps.push(Step::DeleteTrail(i)),
            (ResourceKind::Permission, true) => steps.push(Step::RemovePermission(i)),
            _ => {
                if let Op::Api(s) = &c.op {
                    apis.entry(s.api.clone()).or_default().push(i);
                }
            }
        }
    }
    for (api, changes) in apis {
        // An API whose changes are all no-ops still has a step: it reports the API's URL.
        steps.push(Step::Api { api, changes });
    }

    let of = |f: &dyn Fn(&Step) -> bool| -> Vec<usize> {
        steps
            .iter()
            .enumerate()
            .filter(|(_, s)| f(s))
            .map(|(i, _)| i)
            .collect()
    };
    let roles = of(&|s| matches!(s, Step::Role(_)));
    let tenant_roles = of(&|s| matches!(s, Step::TenantRole(_)));
    let tables = of(&|s| matches!(s, Step::Table(_)));
    let functions = of(&|s| matches!(s, Step::Function(_)));
    let seeds = of(&|s| matches!(s, Step::Seed(_)));
    let api_steps = of(&|s| matches!(s, Step::Api { .. }));
    let api_deletes = of(&|s| matches!(s, Step::DeleteApi(_)));
    let function_deletes = of(&|s| matches!(s, Step::DeleteFunction { .. }));
    let name_of = |s: &Step| match s {
        Step::Role(i) | Step::Table(i) | Step::LogGroup(i) | Step::Function(i) => {
            plan.changes[*i].name.clone()
        }
        _ => String::new(),
    };

    steps
        .iter()
        .enumerate()
        .map(|(me, step)| {
            let mut deps: Vec<usize> = match step {
                Step::Role(_)
                | Step::Table(_)
                | Step::LogGroup(_)
                | Step::SigningKey(_)
                | Step::DeleteTrail(_) => Vec::new(),
                // The table ARNs it records name the account of the stage's role.
                Step::Trail(_) => roles.iter().chain(&tables).copied().collect(),
                // The stage's role names the account; a data role trusts its execution role.
                Step::TenantRole(i) => {
                    let mut d = roles.clone();
                    if let Op::TenantRole(op) = &plan.changes[*i].op
                        && let Some(crate::tenant_role::Trust::Role(exec)) = &op.trust
                    {
                        d.extend(
                            tenant_roles
                                .iter()
                                .copied()
                                .filter(|t| plan.changes[step_change(&steps[*t])].name == *exec),
                        );
                    }
                    d
                }
                // Every other step is done with a tenant role before it goes.
                Step::DeleteTenantRole(_) => (0..steps.len())
                    .filter(|j| {
                        !matches!(steps[*j], Step::DeleteRole(_) | Step::DeleteTenantRole(_))
                    })
                    .collect(),
                // A table before the tenants seeded into it.
                Step::Seed(i) => tables
                    .iter()
                    .copied()
                    .filter(|t| name_of(&steps[*t]) == plan.changes[*i].name)
                    .collect(),
                // The role the function runs as, the tables it reads from its first
                // invocation, and its log group, so the first invoke logs with the retention.
                Step::Function(i) => {
                    let group = log_group_name(&plan.changes[*i].name);
                    let mut d = roles.clone();
                    d.extend(&tenant_roles);
                    d.extend(&tables);
                    d.extend(steps.iter().enumerate().filter_map(|(j, s)| {
                        (matches!(s, Step::LogGroup(_)) && name_of(s) == group).then_some(j)
                    }));
                    d
                }
                // Routes and permissions name the functions, the data is seeded before the
                // API is deployed.
                Step::Api { .. } => functions.iter().chain(&seeds).copied().collect(),
                Step::DeleteApi(_) => api_steps.clone(),
                // Nothing refers to a function any more once the APIs have moved off it; a
                // replacement's new function exists first.
                Step::DeleteFunction { .. } => functions
                    .iter()
                    .chain(&api_steps)
                    .chain(&api_deletes)
                    .copied()
                    .collect(),
                Step::DeleteLogGroup(_) | Step::DeleteTable(_) => function_deletes.clone(),
                // No function reads the key once every function is updated or deleted.
                Step::DeleteSigningKey(_) => {
                    functions.iter().chain(&function_deletes).copied().collect()
                }
                // After the API it names is deleted, and once the function's own changes are
                // done.
                Step::RemovePermission(_) => functions
                    .iter()
                    .chain(&api_steps)
                    .chain(&api_deletes)
                    .copied()
                    .collect(),
                Step::DeleteRole(_) => (0..steps.len()).filter(|j| *j != me).collect(),
            };
            deps.sort_unstable();
            deps.dedup();
            deps.retain(|d| *d != me);
            Node {
                step: step.clone(),
                depends_on: deps,
            }
        })
        .collect()
}

/// The plan change of a one-change step.
fn step_change(step: &Step) -> usize {
    match step {
        Step::Role(i)
        | Step::Table(i)
        | Step::Seed(i)
        | Step::LogGroup(i)
        | Step::Function(i)
        | Step::DeleteApi(i)
        | Step::DeleteLogGroup(i)
        | Step::DeleteTable(i)
        | Step::DeleteRole(i)
        | Step::TenantRole(i)
        | Step::DeleteTenantRole(i)
        | Step::Trail(i)
        | Step::DeleteTrail(i)
        | Step::SigningKey(i)
        | Step::DeleteSigningKey(i)
        | Step::RemovePermission(i) => *i,
        Step::DeleteFunction { change, .. } => *change,
        Step::Api { changes, .. } => changes.first().copied().unwrap_or_default(),
    }
}

fn is_api(c: &Change) -> bool {
    matches!(c.op, Op::Api(_))
}

/// The change with its resource's own operation, for that resource's apply code.
fn typed<O: Clone>(c: &Change, pick: impl Fn(&Op) -> Option<&O>) -> Option<Planned<O>> {
    let op = pick(&c.op)?.clone();
    Some(c.clone().map(|_| op))
}

fn as_api(c: &Change) -> Option<ApiChange> {
    typed(c, |op| match op {
        Op::Api(s) => Some(s),
        _ => None,
    })
}

/// What a finished step did: the plan changes it carried out, and an API's URL.
#[derive(Default)]
struct Outcome {
    changes: Vec<usize>,
    url: Option<(String, String)>,
}

/// A failed step: the error, and the plan changes it carried out before failing.
type StepFailure = (DeployError, Vec<usize>);

async fn run(ctx: &Ctx<'_>, plan: &Plan, step: &Step) -> Result<Outcome, StepFailure> {
    let one = |i: usize| Outcome {
        changes: vec![i],
        url: None,
    };
    let fail = |e: DeployError| (e, Vec::new());
    macro_rules! typed_or_skip {
        ($i:expr, $variant:ident) => {
            match typed(&plan.changes[$i], |op| match op {
                Op::$variant(o) => Some(o),
                _ => None,
            }) {
                Some(c) => c,
                None => return Ok(Outcome::default()),
            }
        };
    }
    match step {
        Step::Role(i) => {
            let c = typed_or_skip!(*i, Role);
            Box::pin(role::apply(ctx, &c)).await.map_err(fail)?;
            Ok(one(*i))
        }
        Step::DeleteRole(i) => {
            let c = typed_or_skip!(*i, Role);
            Box::pin(role::delete(ctx, &c)).await.map_err(fail)?;
            Ok(one(*i))
        }
        Step::TenantRole(i) => {
            let c = typed_or_skip!(*i, TenantRole);
            Box::pin(crate::tenant_role::apply(ctx, &c))
                .await
                .map_err(fail)?;
            Ok(one(*i))
        }
        Step::DeleteTenantRole(i) => {
            let c = typed_or_skip!(*i, TenantRole);
            Box::pin(crate::tenant_role::delete(ctx, &c))
                .await
                .map_err(fail)?;
            Ok(one(*i))
        }
        Step::Table(i) => {
            let c = typed_or_skip!(*i, Table);
            Box::pin(table::apply(ctx, &c)).await.map_err(fail)?;
            Ok(one(*i))
        }
        Step::DeleteTable(i) => {
            let c = &plan.changes[*i];
            ctx.say(&format!("deleting table {} ({})", c.name, c.reason));
            Box::pin(table::delete(ctx, &c.name)).await.map_err(fail)?;
            Ok(one(*i))
        }
        Step::Seed(i) => {
            let c = typed_or_skip!(*i, Seed);
            Box::pin(seed::apply(ctx, &c)).await.map_err(fail)?;
            Ok(one(*i))
        }
        Step::SigningKey(i) => {
            let c = typed_or_skip!(*i, SigningKey);
            Box::pin(crate::signing_key::apply(ctx, &c))
                .await
                .map_err(fail)?;
            Ok(one(*i))
        }
        Step::DeleteSigningKey(i) => {
            let c = typed_or_skip!(*i, SigningKey);
            Box::pin(crate::signing_key::delete(ctx, &c))
                .await
                .map_err(fail)?;
            Ok(one(*i))
        }
        Step::Trail(i) | Step::DeleteTrail(i) => {
            let c = typed_or_skip!(*i, Trail);
            Box::pin(crate::trail::apply(ctx, &plan.app, &plan.stage, &c))
                .await
                .map_err(fail)?;
            Ok(one(*i))
        }
        Step::LogGroup(i) => {
            let c = typed_or_skip!(*i, LogGroup);
            Box::pin(log_group::apply(ctx, &c)).await.map_err(fail)?;
            Ok(one(*i))
        }
        Step::DeleteLogGroup(i) => {
            let c = typed_or_skip!(*i, LogGroup);
            Box::pin(log_group::delete(ctx, &c)).await.map_err(fail)?;
            Ok(one(*i))
        }
        Step::Function(i) => {
            let c = typed_or_skip!(*i, Function);
            Box::pin(function::apply(ctx, &c)).await.map_err(fail)?;
            Ok(one(*i))
        }
        Step::DeleteFunction { change, name } => {
            let c = &plan.changes[*change];
            if c.action == Action::Delete {
                ctx.say(&format!("deleting function {name} ({})", c.reason));
            } else {
                ctx.say(&format!("deleting function {name}, replaced by {}", c.name));
            }
            Box::pin(function::delete(ctx, name)).await.map_err(fail)?;
            // A replacement was reported when its new function was created.
            Ok(if c.action == Action::Delete {
                one(*change)
            } else {
                Outcome::default()
            })
        }
        Step::DeleteApi(i) => {
            let Some(c) = as_api(&plan.changes[*i]) else {
                return Ok(Outcome::default());
            };
            Box::pin(rest_api::delete(ctx, &c)).await.map_err(fail)?;
            Ok(one(*i))
        }
        Step::RemovePermission(i) => {
            let Some(c) = as_api(&plan.changes[*i]) else {
                return Ok(Outcome::default());
            };
            Box::pin(rest_api::remove_statement(ctx, &c))
                .await
                .map_err(fail)?;
            Ok(one(*i))
        }
        Step::Api { api, changes } => {
            let typed: Vec<ApiChange> = changes
                .iter()
                .filter_map(|i| as_api(&plan.changes[*i]))
                .collect();
            let refs: Vec<&ApiChange> = typed.iter().collect();
            let mut done = Vec::new();
            let id = Box::pin(rest_api::apply(ctx, &refs, &mut done)).await;
            let done: Vec<usize> = done.into_iter().map(|j| changes[j]).collect();
            let url = match id {
                Ok(Some(id)) => rest_api::invoke_url(
                    &id,
                    &ctx.clients.region(),
                    &plan.stage,
                    ctx.clients.endpoint_url.as_deref(),
                ),
                Ok(None) => {
                    return Ok(Outcome {
                        changes: done,
                        url: None,
                    });
                }
                Err(e) => return Err((e, done)),
            };
            Ok(Outcome {
                changes: done,
                url: Some((api.clone(), url)),
            })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done,
    Failed,
}

/// Executes a plan: a deploy's ([`crate::plan::plan`]), a seeding's
/// ([`crate::plan::plan_seeds`]) or a destroy's ([`crate::plan::plan_destroy`]).
pub async fn apply(
    clients: &Clients,
    plan: &Plan,
    opts: &ApplyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ApplyReport, ApplyFailure> {
    let ctx = Ctx::new(
        clients,
        opts,
        progress,
        names::role_name(&plan.app, &plan.stage),
        plan.role_arn.clone(),
    );
    let nodes = graph(plan);
    let mut state = vec![State::Pending; nodes.len()];
    let limit = opts.parallelism.max(1);
    let mut running = FuturesUnordered::new();
    let mut errors = Vec::new();
    let mut done = Vec::new();
    let mut urls = BTreeMap::new();
    loop {
        if errors.is_empty() {
            for (i, node) in nodes.iter().enumerate() {
                if running.len() >= limit {
                    break;
                }
                let ready = state[i] == State::Pending
                    && node.depends_on.iter().all(|d| state[*d] == State::Done);
                if ready {
                    state[i] = State::Running;
                    let ctx = &ctx;
                    running.push(run(ctx, plan, &node.step).map(move |r| (i, r)));
                }
            }
        }
        let Some((i, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(outcome) => {
                state[i] = State::Done;
                done.extend(outcome.changes);
                urls.extend(outcome.url);
            }
            Err((e, partial)) => {
                state[i] = State::Failed;
                done.extend(partial);
                errors.push(e);
            }
        }
    }
    let report = ApplyReport {
        changes: done.into_iter().map(|i| plan.changes[i].clone()).collect(),
        mutating_calls: ctx.mutating_calls(),
        api_urls: urls,
    };
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(ApplyFailure { errors, report })
    }
}

/// Executes a destroy plan (see [`crate::plan::plan_destroy`]): the same as [`apply`].
pub async fn destroy(
    clients: &Clients,
    plan: &Plan,
    opts: &ApplyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ApplyReport, ApplyFailure> {
    apply(clients, plan, opts, progress).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Desired;

    /// The CLI may run apply on a multi-threaded runtime or spawn it; that needs a `Send` future.
    #[allow(dead_code)]
    fn futures_are_send(c: &Clients, d: &Desired, p: &Plan, o: &ApplyOptions) {
        fn send<T: Send>(_: T) {}
        send(apply(c, p, o, &|_| {}));
        send(destroy(c, p, o, &|_| {}));
        send(crate::observe::observe(c, "app", "stage"));
        send(crate::observe::observe_stage(c, d));
        send(crate::observe::observe_seeds(c, d, None));
        send(crate::invoke::invoke(c, "f", None, Vec::new(), false));
    }
}
