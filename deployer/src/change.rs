//! The plan's vocabulary: what apply does to a resource ([`Action`]), which kind of resource it
//! is ([`ResourceKind`]), and one planned change carrying the operation apply sends
//! ([`Planned`]). Every resource module plans in these terms; [`crate::plan`] gathers them.

use serde::Serialize;

/// What apply does to one resource. The kind of resource is beside it, never mixed into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    /// Changed in place (a function's code or configuration, a role's policies, a tenant's
    /// records, a log group's retention).
    Update,
    /// Functions: created anew under the other slot name, then the old one deleted. Tables:
    /// deleted, then created under the same name.
    Replace,
    Delete,
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
    /// A tenant-scoped function's execution role or tenant-data role.
    TenantRole,
    /// A REST API's request validator, which refuses requests missing a required parameter.
    RequestValidator,
    /// A per-stage secret the functions read at init, such as a token signing key.
    SigningKey,
    /// The stage's CloudTrail Lake event data store of its tables' data events.
    EventDataStore,
}

/// One planned change to one resource, with `op`: what apply sends for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned<O> {
    /// `function represent-dev-representatives` or `role represent-dev-exec`.
    pub resource: String,
    pub kind: ResourceKind,
    pub logical: Option<String>,
    /// The physical name the action targets (on `Replace` of a function, the new function).
    pub name: String,
    pub action: Action,
    pub reason: String,
    pub details: Vec<String>,
    pub op: O,
}

impl<O> Planned<O> {
    pub fn new(
        kind: ResourceKind,
        resource: String,
        name: &str,
        logical: Option<&str>,
        action: Action,
        reason: impl Into<String>,
        op: O,
    ) -> Self {
        Planned {
            resource,
            kind,
            logical: logical.map(str::to_string),
            name: name.to_string(),
            action,
            reason: reason.into(),
            details: Vec::new(),
            op,
        }
    }

    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// The same change with its operation wrapped (a resource's op into the plan's `Op`).
    pub fn map<P>(self, f: impl FnOnce(O) -> P) -> Planned<P> {
        Planned {
            resource: self.resource,
            kind: self.kind,
            logical: self.logical,
            name: self.name,
            action: self.action,
            reason: self.reason,
            details: self.details,
            op: f(self.op),
        }
    }
}
