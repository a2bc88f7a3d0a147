//! The stage's execution role: its declaration, the desired and observed role, the pure diff
//! of its policies, and the IAM calls that create, update and delete it.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::error::SdkError;
use aws_sdk_iam::operation::create_role::CreateRoleError;
use aws_sdk_iam::operation::get_role::GetRoleError;
use serde::Serialize;

use crate::change::{Action, Planned, ResourceKind};
use crate::clients::Clients;
use crate::error::DeployError;
use crate::function::Function;
use crate::names::{self, BASIC_EXECUTION_POLICY, TAG_APP, TAG_STAGE};
use crate::step::{Ctx, call_error};

/// The trust policy that lets Lambda assume the execution role.
pub const LAMBDA_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

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

/// The stage's execution role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredRole {
    pub name: String,
    pub managed_policies: Vec<String>,
    pub inline_policies: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// The stage's execution role as IAM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualRole {
    pub name: String,
    pub arn: String,
    pub managed_policies: Vec<String>,
    /// Policy name -> decoded JSON document.
    pub inline_policies: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// The execution role's policy letting functions read exactly the tables they declare, and
/// write only those they declare writing. `None` when no function uses a table, so the role
/// carries no DynamoDB access.
///
/// The ARNs use `*` for the region and account: the plan is computed before any call, so neither
/// is known, and the table name already pins the app and stage.
pub fn table_read_policy(app: &str, stage: &str, functions: &[Function]) -> Option<String> {
    // Tenant-scoped functions run as their own roles and reach tables only through their
    // tenant-data roles.
    let functions: Vec<&Function> = functions.iter().filter(|f| !f.tenant_scoped).collect();
    let tables: BTreeSet<&String> = functions
        .iter()
        .flat_map(|f| f.reads_tables.values())
        .collect();
    let keys: BTreeSet<&String> = functions
        .iter()
        .flat_map(|f| f.signing_keys.values())
        .collect();
    if tables.is_empty() && keys.is_empty() {
        return None;
    }
    let resources: Vec<String> = tables
        .into_iter()
        .map(|t| names::table_arn_pattern(&names::table_name(app, stage, t)))
        .collect();
    let mut statements = Vec::new();
    if !resources.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "ReadTenantTables",
            "Effect": "Allow",
            "Action": ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"],
            "Resource": resources,
        }));
    }
    // Only stacks with a writing function get the statement, so the policy of a read-only
    // stack stays what earlier deploys put.
    let written: BTreeSet<&String> = functions.iter().flat_map(|f| &f.writes_tables).collect();
    if !written.is_empty() {
        let resources: Vec<String> = written
            .into_iter()
            .map(|t| names::table_arn_pattern(&names::table_name(app, stage, t)))
            .collect();
        statements.push(serde_json::json!({
            "Sid": "WriteTenantTables",
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchWriteItem",
                "dynamodb:DeleteItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
            "Resource": resources,
        }));
    }
    // Signing keys: GetSecretValue on exactly the stage's declared secrets.
    if !keys.is_empty() {
        let resources: Vec<String> = keys
            .into_iter()
            .map(|k| {
                crate::signing_key::secret_arn_pattern(&crate::signing_key::secret_name(
                    app, stage, k,
                ))
            })
            .collect();
        statements.push(serde_json::json!({
            "Sid": "ReadSigningKeys",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": resources,
        }));
    }
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": statements,
    });
    Some(doc.to_string())
}

/// The role of one stage: the declared policies (deduplicated) plus the table-read policy.
pub fn resolve(app: &str, stage: &str, role: &Role, functions: &[Function]) -> DesiredRole {
    let mut managed = role.managed_policies.clone();
    managed.sort();
    managed.dedup();
    let mut inline_policies = role.inline_policies.clone();
    if let Some(doc) = table_read_policy(app, stage, functions) {
        inline_policies.insert(names::TABLE_READ_POLICY.to_string(), doc);
    }
    DesiredRole {
        name: names::role_name(app, stage),
        managed_policies: managed,
        inline_policies,
        tags: BTreeMap::from([
            (TAG_APP.to_string(), app.to_string()),
            (TAG_STAGE.to_string(), stage.to_string()),
        ]),
    }
}

/// What apply sends for the role: the tags of a new role, the managed policies to attach and
/// detach, and the inline policies to put (name -> document) and delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoleOp {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    pub attach: Vec<String>,
    pub detach: Vec<String>,
    pub put: BTreeMap<String, String>,
    pub delete: Vec<String>,
}

impl RoleOp {
    fn is_empty(&self) -> bool {
        self.attach.is_empty()
            && self.detach.is_empty()
            && self.put.is_empty()
            && self.delete.is_empty()
    }

    fn details(&self) -> Vec<String> {
        let mut out = Vec::new();
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

fn role_change(name: &str, action: Action, reason: &str, op: RoleOp) -> Planned<RoleOp> {
    let details = op.details();
    Planned::new(
        ResourceKind::Role,
        format!("role {name}"),
        name,
        None,
        action,
        reason,
        op,
    )
    .with_details(details)
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

/// Compares the role with what IAM has.
pub fn plan(desired: &DesiredRole, actual: Option<&ActualRole>) -> Planned<RoleOp> {
    let Some(actual) = actual else {
        let op = RoleOp {
            tags: desired.tags.clone(),
            attach: desired.managed_policies.clone(),
            put: desired.inline_policies.clone(),
            ..RoleOp::default()
        };
        return role_change(&desired.name, Action::Create, "not deployed yet", op);
    };
    let want: BTreeSet<&String> = desired.managed_policies.iter().collect();
    let have: BTreeSet<&String> = actual.managed_policies.iter().collect();
    let op = RoleOp {
        tags: BTreeMap::new(),
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
            .map(|(name, doc)| (name.clone(), doc.clone()))
            .collect(),
        delete: actual
            .inline_policies
            .keys()
            .filter(|name| !desired.inline_policies.contains_key(*name))
            .cloned()
            .collect(),
    };
    if op.is_empty() {
        role_change(&desired.name, Action::NoOp, "up to date", op)
    } else {
        role_change(&desired.name, Action::Update, "policies changed", op)
    }
}

/// The deletion of an observed role: its policies go first, as IAM requires.
pub fn plan_delete(actual: &ActualRole, reason: &str) -> Planned<RoleOp> {
    let op = RoleOp {
        detach: actual.managed_policies.clone(),
        delete: actual.inline_policies.keys().cloned().collect(),
        ..RoleOp::default()
    };
    role_change(&actual.name, Action::Delete, reason, op)
}

pub(crate) async fn observe_role(
    clients: &Clients,
    name: &str,
) -> Result<Option<ActualRole>, DeployError> {
    let resource = format!("role {name}");
    let role = match clients.iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(GetRoleError::NoSuchEntityException(_))
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(call_error("GetRole", &resource, e)),
    };
    let Some(role) = role else {
        return Ok(None);
    };

    let attached = clients
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("ListAttachedRolePolicies", &resource, e))?;
    let mut managed: Vec<String> = attached
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect();
    managed.sort();

    let policy_names: Vec<String> = clients
        .iam
        .list_role_policies()
        .role_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("ListRolePolicies", &resource, e))?;

    let mut inline = BTreeMap::new();
    for policy in policy_names {
        let out = clients
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
            .map_err(|e| call_error("GetRolePolicy", &format!("{resource} policy {policy}"), e))?;
        inline.insert(policy, percent_decode(out.policy_document()));
    }

    Ok(Some(ActualRole {
        name: role.role_name().to_string(),
        arn: role.arn().to_string(),
        managed_policies: managed,
        inline_policies: inline,
        tags: role
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
    }))
}

/// Creates or updates the role, then attaches, detaches, puts and deletes its policies.
pub(crate) async fn apply(ctx: &Ctx<'_>, c: &Planned<RoleOp>) -> Result<(), DeployError> {
    let name = &c.name;
    let resource = c.resource.clone();
    let iam = &ctx.clients.iam;
    if c.action == Action::Create {
        ctx.say(&format!("creating role {name}"));
        let mut req = iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(LAMBDA_TRUST_POLICY)
            .description("Execution role of the functions of one deployer stage");
        for (k, v) in &c.op.tags {
            let tag = aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| crate::step::build_error("CreateRole", &resource, e))?;
            req = req.tags(tag);
        }
        match req.send().await {
            Ok(out) => ctx.set_role(out.role().map(|r| r.arn().to_string()), true),
            // A previous, interrupted run created it: reuse it.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(CreateRoleError::EntityAlreadyExistsException(_))
                ) =>
            {
                let out = iam
                    .get_role()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(|e| call_error("GetRole", &resource, e))?;
                ctx.set_role(out.role().map(|r| r.arn().to_string()), false);
            }
            Err(e) => return Err(call_error("CreateRole", &resource, e)),
        }
    } else {
        ctx.say(&format!("updating role {name}"));
    }

    for arn in &c.op.attach {
        iam.attach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| call_error("AttachRolePolicy", &format!("{resource} policy {arn}"), e))?;
    }
    for arn in &c.op.detach {
        detach(ctx, name, &format!("role {name}"), arn).await?;
    }
    for (policy, doc) in &c.op.put {
        iam.put_role_policy()
            .role_name(name)
            .policy_name(policy)
            .policy_document(doc)
            .send()
            .await
            .map_err(|e| call_error("PutRolePolicy", &format!("{resource} policy {policy}"), e))?;
    }
    for policy in &c.op.delete {
        delete_inline(ctx, name, &format!("role {name}"), policy).await?;
    }
    Ok(())
}

/// Detaches a managed policy from `role`; one already detached counts as done. `resource` names
/// the role in an error (`role X`, `tenant role X`).
pub(crate) async fn detach(
    ctx: &Ctx<'_>,
    role: &str,
    resource: &str,
    arn: &str,
) -> Result<(), DeployError> {
    let result = ctx
        .clients
        .iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await;
    gone_is_done(
        result,
        "DetachRolePolicy",
        &format!("{resource} policy {arn}"),
    )
}

/// Deletes an inline policy of `role`; one already gone counts as done.
pub(crate) async fn delete_inline(
    ctx: &Ctx<'_>,
    role: &str,
    resource: &str,
    name: &str,
) -> Result<(), DeployError> {
    let result = ctx
        .clients
        .iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(name)
        .send()
        .await;
    gone_is_done(
        result,
        "DeleteRolePolicy",
        &format!("{resource} policy {name}"),
    )
}

/// Deletes `role` itself, its policies already gone; one already deleted counts as deleted.
pub(crate) async fn delete_role(
    ctx: &Ctx<'_>,
    role: &str,
    resource: &str,
) -> Result<(), DeployError> {
    let result = ctx.clients.iam.delete_role().role_name(role).send().await;
    gone_is_done(result, "DeleteRole", resource)
}

/// IAM's `NoSuchEntity` on a delete means the work is already done.
fn gone_is_done<T, E>(
    result: Result<T, SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>,
    call: &'static str,
    resource: &str,
) -> Result<(), DeployError>
where
    E: std::error::Error
        + aws_smithy_types::error::metadata::ProvideErrorMetadata
        + IsNoSuchEntity
        + Send
        + Sync
        + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(IsNoSuchEntity::is_gone) => Ok(()),
        Err(e) => Err(call_error(call, resource, e)),
    }
}

/// The delete errors of IAM whose `NoSuchEntity` variant means "already gone".
pub(crate) trait IsNoSuchEntity {
    fn is_gone(&self) -> bool;
}

macro_rules! no_such_entity {
    ($($error:ty),*) => {$(
        impl IsNoSuchEntity for $error {
            fn is_gone(&self) -> bool {
                self.is_no_such_entity_exception()
            }
        }
    )*};
}
no_such_entity!(
    aws_sdk_iam::operation::detach_role_policy::DetachRolePolicyError,
    aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyError,
    aws_sdk_iam::operation::delete_role::DeleteRoleError
);

/// Detaches and deletes the role's policies, then the role; one already gone counts as deleted.
pub(crate) async fn delete(ctx: &Ctx<'_>, c: &Planned<RoleOp>) -> Result<(), DeployError> {
    ctx.say(&format!("deleting role {}", c.name));
    let resource = format!("role {}", c.name);
    for arn in &c.op.detach {
        detach(ctx, &c.name, &resource, arn).await?;
    }
    for name in &c.op.delete {
        delete_inline(ctx, &c.name, &resource, name).await?;
    }
    delete_role(ctx, &c.name, &c.resource).await
}

/// Decodes the RFC 3986 percent-encoding IAM applies to policy documents in its responses.
/// `+` is left alone: IAM encodes a space as `%20` and a plus as `%2B`. A malformed escape is
/// kept as it is, so an already-decoded document passes through unchanged.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && hex.iter().all(u8::is_ascii_hexdigit)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_iam_policy_documents() {
        assert_eq!(
            percent_decode("%7B%22Version%22%3A%20%222012-10-17%22%7D"),
            r#"{"Version": "2012-10-17"}"#
        );
        assert_eq!(percent_decode("a%2Bb+c"), "a+b+c");
        assert_eq!(percent_decode(r#"{"x":"100%"}"#), r#"{"x":"100%"}"#);
    }
}
