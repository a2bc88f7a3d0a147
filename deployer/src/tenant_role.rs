//! Tenant-scoped functions' two roles: an execution role with no access to tenant data, and a
//! tenant-data role the execution role may assume with a `tenant` session tag, whose policy
//! allows the function's table actions only on items whose partition key equals that tag.
//! Declaration checks, desired and observed roles, the pure diff, and the IAM calls.
//!
//! Both roles live under the IAM path `/{app}/{stage}/`, so one ListRoles finds every tenant
//! role of a stage (the ones of functions that left the stack included), and are tagged like
//! the stage's other resources. The data role's trust policy names the execution role by ARN;
//! the account is only known at apply time, so the plan names the role and apply fills in the
//! account of the stage's execution role.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::operation::create_role::CreateRoleError;
use serde::Serialize;

use crate::change::{Action, Planned, ResourceKind};
use crate::clients::Clients;
use crate::error::{DeployError, StackError};
use crate::function::Function;
use crate::names::{self, BASIC_EXECUTION_POLICY, MAX_ROLE_NAME};
use crate::role::{LAMBDA_TRUST_POLICY, percent_decode};
use crate::stack::Tenancy;
use crate::step::{Ctx, call_error};

/// The environment variable holding the tenant-data role's path and name
/// (`/represent/dev/represent-dev-counties-data`): the function builds the ARN with the account
/// of its own ARN, which the deployer does not know when it plans.
pub const DATA_ROLE_ENV: &str = "TENANT_DATA_ROLE";
/// The session tag (and principal tag in the data role's policy) naming the tenant.
pub const TENANT_TAG: &str = "tenant";
/// Inline policy names.
pub const ASSUME_POLICY: &str = "assume-tenant-data";
pub const DATA_POLICY: &str = "tenant-data";

/// The IAM path of a stage's tenant roles.
pub fn path(app: &str, stage: &str) -> String {
    format!("/{app}/{stage}/")
}

pub fn execution_role_name(app: &str, stage: &str, logical: &str) -> String {
    format!("{app}-{stage}-{logical}-exec")
}

pub fn data_role_name(app: &str, stage: &str, logical: &str) -> String {
    format!("{app}-{stage}-{logical}-data")
}

/// Which of the two roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantRoleKind {
    /// The function runs as it: logs, and assuming the data role.
    Execution,
    /// Assumed per environment with the tenant's tag: the tenant's items only.
    Data,
}

/// Whom a role trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    Lambda,
    /// The named role of the same path and account.
    Role(String),
}

/// One tenant role as it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredTenantRole {
    pub name: String,
    pub path: String,
    pub function: String,
    pub kind: TenantRoleKind,
    pub trust: Trust,
    pub managed_policies: Vec<String>,
    pub inline_policies: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// A tenant role as IAM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualTenantRole {
    pub name: String,
    pub arn: String,
    pub trust_policy: String,
    pub managed_policies: Vec<String>,
    pub inline_policies: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// The checks of a tenant-scoped declaration.
pub fn validate(app: &str, stage: &str, functions: &[Function], errors: &mut Vec<StackError>) {
    for f in functions.iter().filter(|f| f.tenant_scoped) {
        if f.tenancy != Tenancy::PerTenant {
            errors.push(StackError::TenantScopedShared {
                logical: f.logical.clone(),
            });
        }
        if f.reads_tables.is_empty() {
            errors.push(StackError::TenantScopedWithoutTable {
                logical: f.logical.clone(),
            });
        }
        for name in [
            execution_role_name(app, stage, &f.logical),
            data_role_name(app, stage, &f.logical),
        ] {
            if name.len() > MAX_ROLE_NAME {
                errors.push(StackError::TenantRoleNameTooLong {
                    logical: f.logical.clone(),
                    len: name.len(),
                    name,
                });
            }
        }
    }
}

/// The data role's policy: the function's reads (and writes, on the tables it writes) only on
/// items whose partition key is the session's `tenant` tag, and only with a tag.
pub fn data_policy(app: &str, stage: &str, f: &Function) -> String {
    let scoped = serde_json::json!({
        "ForAllValues:StringEquals": {
            "dynamodb:LeadingKeys": [format!("${{aws:PrincipalTag/{TENANT_TAG}}}")]
        },
        "StringLike": { format!("aws:PrincipalTag/{TENANT_TAG}"): "?*" }
    });
    let arns = |tables: &BTreeSet<&String>| -> Vec<String> {
        tables
            .iter()
            .map(|t| names::table_arn_pattern(&names::table_name(app, stage, t)))
            .collect()
    };
    let read: BTreeSet<&String> = f.reads_tables.values().collect();
    let mut statements = vec![serde_json::json!({
        "Sid": "ReadOwnTenant",
        "Effect": "Allow",
        "Action": ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"],
        "Resource": arns(&read),
        "Condition": scoped,
    })];
    let written: BTreeSet<&String> = f.writes_tables.iter().collect();
    if !written.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "WriteOwnTenant",
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchWriteItem",
                "dynamodb:DeleteItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
            "Resource": arns(&written),
            "Condition": scoped,
        }));
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// The execution role's policy: assume the function's data role, with session tags.
pub fn assume_policy(app: &str, stage: &str, logical: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AssumeTenantData",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Resource": format!(
                "arn:aws:iam::*:role{}{}",
                path(app, stage),
                data_role_name(app, stage, logical)
            ),
        }]
    })
    .to_string()
}

/// The data role's trust policy for the execution role's ARN: AssumeRole and TagSession, and
/// only with a `tenant` tag.
pub fn data_trust_policy(execution_role_arn: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": execution_role_arn},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringLike": {format!("aws:RequestTag/{TENANT_TAG}"): "?*"}}
        }]
    })
    .to_string()
}

/// The two roles of every tenant-scoped function.
pub fn resolve(app: &str, stage: &str, functions: &[Function]) -> Vec<DesiredTenantRole> {
    let mut roles = Vec::new();
    for f in functions.iter().filter(|f| f.tenant_scoped) {
        let exec = execution_role_name(app, stage, &f.logical);
        let tags = names::tags(app, stage, &f.logical);
        roles.push(DesiredTenantRole {
            name: exec.clone(),
            path: path(app, stage),
            function: f.logical.clone(),
            kind: TenantRoleKind::Execution,
            trust: Trust::Lambda,
            managed_policies: vec![BASIC_EXECUTION_POLICY.to_string()],
            inline_policies: BTreeMap::from([(
                ASSUME_POLICY.to_string(),
                assume_policy(app, stage, &f.logical),
            )]),
            tags: tags.clone(),
        });
        roles.push(DesiredTenantRole {
            name: data_role_name(app, stage, &f.logical),
            path: path(app, stage),
            function: f.logical.clone(),
            kind: TenantRoleKind::Data,
            trust: Trust::Role(exec),
            managed_policies: Vec::new(),
            inline_policies: BTreeMap::from([(
                DATA_POLICY.to_string(),
                data_policy(app, stage, f),
            )]),
            tags,
        });
    }
    roles
}

/// The value of [`DATA_ROLE_ENV`] for a tenant-scoped function.
pub fn data_role_env(app: &str, stage: &str, logical: &str) -> String {
    format!(
        "{}{}",
        path(app, stage),
        data_role_name(app, stage, logical)
    )
}

/// What apply sends for one tenant role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TenantRoleOp {
    pub path: String,
    /// `None` on a delete.
    pub trust: Option<Trust>,
    /// Create, or an update whose trust policy drifted: the trust policy is (re)written.
    pub write_trust: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    pub attach: Vec<String>,
    pub detach: Vec<String>,
    pub put: BTreeMap<String, String>,
    pub delete: Vec<String>,
}

impl TenantRoleOp {
    fn is_empty(&self) -> bool {
        !self.write_trust
            && self.attach.is_empty()
            && self.detach.is_empty()
            && self.put.is_empty()
            && self.delete.is_empty()
    }

    fn details(&self, action: Action) -> Vec<String> {
        let mut out = Vec::new();
        if self.write_trust && action == Action::Update {
            out.push("update trust policy".to_string());
        }
        out.extend(self.attach.iter().map(|p| format!("attach policy {p}")));
        out.extend(self.detach.iter().map(|p| format!("detach policy {p}")));
        out.extend(self.put.keys().map(|p| format!("put inline policy {p}")));
        out.extend(
            self.delete
                .iter()
                .map(|p| format!("delete inline policy {p}")),
        );
        out
    }
}

fn change(
    name: &str,
    logical: Option<&str>,
    action: Action,
    reason: &str,
    op: TenantRoleOp,
) -> Planned<TenantRoleOp> {
    let details = op.details(action);
    Planned::new(
        ResourceKind::TenantRole,
        format!("tenant role {name}"),
        name,
        logical,
        action,
        reason,
        op,
    )
    .with_details(details)
}

fn same_document(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `arn:aws:iam::ACCOUNT` of a role ARN.
fn account_prefix(arn: &str) -> Option<&str> {
    arn.split_once(":role/").map(|(prefix, _)| prefix)
}

/// The trust policy a role should have, given the account of `arn`.
fn trust_document(trust: &Trust, path: &str, arn: &str) -> Option<String> {
    match trust {
        Trust::Lambda => Some(LAMBDA_TRUST_POLICY.to_string()),
        Trust::Role(name) => account_prefix(arn)
            .map(|prefix| data_trust_policy(&format!("{prefix}:role{path}{name}"))),
    }
}

/// Compares the stage's tenant roles with what IAM has: creates, policy and trust drift, and
/// the deletion of roles no function needs any more.
pub fn plan(
    desired: &[DesiredTenantRole],
    actual: &[ActualTenantRole],
) -> Vec<Planned<TenantRoleOp>> {
    let mut changes = Vec::new();
    for d in desired {
        let logical = Some(d.function.as_str());
        let Some(a) = actual.iter().find(|a| a.name == d.name) else {
            let op = TenantRoleOp {
                path: d.path.clone(),
                trust: Some(d.trust.clone()),
                write_trust: true,
                tags: d.tags.clone(),
                attach: d.managed_policies.clone(),
                put: d.inline_policies.clone(),
                ..TenantRoleOp::default()
            };
            changes.push(change(
                &d.name,
                logical,
                Action::Create,
                "not deployed yet",
                op,
            ));
            continue;
        };
        let want: BTreeSet<&String> = d.managed_policies.iter().collect();
        let have: BTreeSet<&String> = a.managed_policies.iter().collect();
        let trust_ok = trust_document(&d.trust, &d.path, &a.arn)
            .is_some_and(|doc| same_document(&doc, &a.trust_policy));
        let op = TenantRoleOp {
            path: d.path.clone(),
            trust: Some(d.trust.clone()),
            write_trust: !trust_ok,
            tags: BTreeMap::new(),
            attach: want.difference(&have).map(|s| s.to_string()).collect(),
            detach: have.difference(&want).map(|s| s.to_string()).collect(),
            put: d
                .inline_policies
                .iter()
                .filter(|(name, doc)| {
                    a.inline_policies
                        .get(*name)
                        .is_none_or(|have| !same_document(have, doc))
                })
                .map(|(name, doc)| (name.clone(), doc.clone()))
                .collect(),
            delete: a
                .inline_policies
                .keys()
                .filter(|name| !d.inline_policies.contains_key(*name))
                .cloned()
                .collect(),
        };
        if op.is_empty() {
            changes.push(change(&d.name, logical, Action::NoOp, "up to date", op));
        } else {
            changes.push(change(
                &d.name,
                logical,
                Action::Update,
                "policies changed",
                op,
            ));
        }
    }
    for a in actual
        .iter()
        .filter(|a| !desired.iter().any(|d| d.name == a.name))
    {
        changes.push(plan_delete(a, "no tenant-scoped function uses it"));
    }
    changes
}

pub fn plan_delete(a: &ActualTenantRole, reason: &str) -> Planned<TenantRoleOp> {
    let op = TenantRoleOp {
        detach: a.managed_policies.clone(),
        delete: a.inline_policies.keys().cloned().collect(),
        ..TenantRoleOp::default()
    };
    let logical = a.tags.get(names::TAG_LOGICAL).map(String::as_str);
    change(&a.name, logical, Action::Delete, reason, op)
}

/// Every tenant role of the stage: the roles under its path, tagged with its app and stage.
pub(crate) async fn observe(
    clients: &Clients,
    app: &str,
    stage: &str,
) -> Result<Vec<ActualTenantRole>, DeployError> {
    let prefix = path(app, stage);
    let listed = clients
        .iam
        .list_roles()
        .path_prefix(&prefix)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("ListRoles", &format!("roles under {prefix}"), e))?;
    let mut roles = Vec::new();
    for listed in listed.iter().filter(|r| r.path() == prefix) {
        let Some(role) = crate::role::observe_role(clients, listed.role_name()).await? else {
            continue;
        };
        let ours = role.tags.get(names::TAG_APP).map(String::as_str) == Some(app)
            && role.tags.get(names::TAG_STAGE).map(String::as_str) == Some(stage);
        if !ours {
            continue;
        }
        roles.push(ActualTenantRole {
            name: role.name,
            arn: role.arn,
            trust_policy: listed
                .assume_role_policy_document()
                .map(percent_decode)
                .unwrap_or_default(),
            managed_policies: role.managed_policies,
            inline_policies: role.inline_policies,
            tags: role.tags,
        });
    }
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(roles)
}

/// The ARN of a role of `path` in the account of the stage's execution role.
fn arn_in_stage_account(ctx: &Ctx<'_>, path: &str, name: &str) -> Result<String, DeployError> {
    let stage_role = ctx.role_arn(name)?;
    let prefix = account_prefix(&stage_role).unwrap_or("arn:aws:iam::");
    Ok(format!("{prefix}:role{path}{name}"))
}

/// The ARN of a tenant-scoped function's execution role (`path_and_name` as in
/// `DesiredFunction::execution_role`), for CreateFunction and UpdateFunctionConfiguration.
pub(crate) fn function_role_arn(
    ctx: &Ctx<'_>,
    path_and_name: &str,
    function: &str,
) -> Result<String, DeployError> {
    let stage_role = ctx.role_arn(function)?;
    let prefix = account_prefix(&stage_role).unwrap_or("arn:aws:iam::");
    Ok(format!("{prefix}:role{path_and_name}"))
}

/// Creates or updates one tenant role and its policies.
pub(crate) async fn apply(ctx: &Ctx<'_>, c: &Planned<TenantRoleOp>) -> Result<(), DeployError> {
    let name = &c.name;
    let resource = c.resource.clone();
    let iam = &ctx.clients.iam;
    let trust = match &c.op.trust {
        Some(Trust::Lambda) | None => LAMBDA_TRUST_POLICY.to_string(),
        Some(Trust::Role(exec)) => data_trust_policy(&arn_in_stage_account(ctx, &c.op.path, exec)?),
    };
    let mut write_trust = c.op.write_trust && c.action != Action::Create;
    if c.action == Action::Create {
        ctx.say(&format!("creating tenant role {name}"));
        let mut req = iam
            .create_role()
            .role_name(name)
            .path(&c.op.path)
            .assume_role_policy_document(&trust)
            .description("Tenant-scoped role of one deployer function");
        for (k, v) in &c.op.tags {
            let tag = aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| crate::step::build_error("CreateRole", &resource, e))?;
            req = req.tags(tag);
        }
        match req.send().await {
            // Lambda may refuse a role for a few seconds after it is created; the function
            // steps retry that only for roles this run created.
            Ok(_) => ctx.set_role(ctx.role_arn(name).ok(), true),
            // A previous, interrupted run created it: make sure it trusts whom it should.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(CreateRoleError::EntityAlreadyExistsException(_))
                ) =>
            {
                write_trust = true;
            }
            Err(e) => return Err(call_error("CreateRole", &resource, e)),
        }
    } else {
        ctx.say(&format!("updating tenant role {name}"));
    }
    if write_trust {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(&trust)
            .send()
            .await
            .map_err(|e| call_error("UpdateAssumeRolePolicy", &resource, e))?;
    }
    for arn in &c.op.attach {
        iam.attach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| call_error("AttachRolePolicy", &format!("{resource} policy {arn}"), e))?;
    }
    detach_and_delete(ctx, c).await?;
    for (policy, doc) in &c.op.put {
        iam.put_role_policy()
            .role_name(name)
            .policy_name(policy)
            .policy_document(doc)
            .send()
            .await
            .map_err(|e| call_error("PutRolePolicy", &format!("{resource} policy {policy}"), e))?;
    }
    Ok(())
}

/// Detaches and deletes the policies the op names; ones already gone count as done.
async fn detach_and_delete(ctx: &Ctx<'_>, c: &Planned<TenantRoleOp>) -> Result<(), DeployError> {
    for arn in &c.op.detach {
        crate::role::detach(ctx, &c.name, &c.resource, arn).await?;
    }
    for policy in &c.op.delete {
        crate::role::delete_inline(ctx, &c.name, &c.resource, policy).await?;
    }
    Ok(())
}

/// Deletes a tenant role after its policies; one already gone counts as deleted.
pub(crate) async fn delete(ctx: &Ctx<'_>, c: &Planned<TenantRoleOp>) -> Result<(), DeployError> {
    ctx.say(&format!("deleting tenant role {} ({})", c.name, c.reason));
    detach_and_delete(ctx, c).await?;
    crate::role::delete_role(ctx, &c.name, &c.resource).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_follows_the_account_of_the_observed_role() {
        let doc = trust_document(
            &Trust::Role("app-dev-f-exec".into()),
            "/app/dev/",
            "arn:aws:iam::123456789012:role/app/dev/app-dev-f-data",
        )
        .expect("a trust policy");
        assert!(
            doc.contains("arn:aws:iam::123456789012:role/app/dev/app-dev-f-exec"),
            "{doc}"
        );
    }
}
