//! Signing keys: per-stage secrets an app's functions read at init (a token authorizer's HS256
//! key, say), kept in Secrets Manager as the secret `{app}/{stage}/{logical}`. The deployer
//! creates one (32 random bytes) when it is missing and never changes or prints one that exists;
//! the key is never in the repository, the plan or a function's configuration: functions get the
//! secret's name and a grant to read that one secret.
//!
//!
//! A key no function reads any more, and every key of a destroyed stage, is deleted with the
//! shortest recovery window Secrets Manager allows ([`RECOVERY_DAYS`]); a deploy within that
//! window restores it with its value, so tokens signed before a destroy stay valid and the name
//! can be used again (Secrets Manager refuses to create a name scheduled for deletion).
//!
//! Secrets Manager rather than SSM Parameter Store: `aws-sdk-ssm` took more than 90 s of CPU to
//! compile in a debug build (the first `cargo xtask deploy` waits for it), Secrets Manager's
//! SDK a fraction of that; see ARCHITECTURE.md.

use serde::Serialize;

use crate::change::{Action, Planned, ResourceKind};
use crate::clients::Clients;
use crate::error::DeployError;
use crate::function::Function;

use crate::step::{Ctx, Failure, build_error, call_error, failure_error, sent};

/// A signing key of the stage, as it should exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredSigningKey {
    pub logical: String,
    /// The secret's name, `{app}/{stage}/{logical}`.
    pub name: String,
}

/// The days a deleted key can still be restored: Secrets Manager's minimum.
pub const RECOVERY_DAYS: i64 = 7;

/// A signing key of the stage that exists, live or scheduled for deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualSigningKey {
    pub name: String,
    /// Deleted, within its recovery window.
    pub scheduled_for_deletion: bool,
}

impl ActualSigningKey {
    /// A key that exists and is not scheduled for deletion.
    pub fn live(name: &str) -> ActualSigningKey {
        ActualSigningKey {
            name: name.to_string(),
            scheduled_for_deletion: false,
        }
    }
}

/// What apply sends for a signing key: CreateSecret of a new random key (create),
/// RestoreSecret of one scheduled for deletion (update), or DeleteSecret (delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigningKeyOp {
    pub name: String,
    /// The tags a created key carries.
    pub tags: std::collections::BTreeMap<String, String>,
}

/// The secret name of signing key `logical` of a stage.
pub fn secret_name(app: &str, stage: &str, logical: &str) -> String {
    format!("{}{logical}", prefix(app, stage))
}

/// The name prefix of every signing key of a stage. The `/` ends the stage's name, so stage
/// `dev`'s keys never include stage `dev-eu`'s.
pub fn prefix(app: &str, stage: &str) -> String {
    format!("{app}/{stage}/")
}

/// The ARN pattern of a secret, for the execution role's grant: region and account are not
/// known when planning (the name pins the app and stage), and Secrets Manager appends six
/// random characters to every secret's ARN.
pub fn secret_arn_pattern(name: &str) -> String {
    format!("arn:aws:secretsmanager:*:*:secret:{name}-??????")
}

/// The stage's signing keys: every key a function of the stack reads, once.
pub fn resolve(app: &str, stage: &str, functions: &[Function]) -> Vec<DesiredSigningKey> {
    let logicals: std::collections::BTreeSet<&String> = functions
        .iter()
        .flat_map(|f| f.signing_keys.values())
        .collect();
    logicals
        .into_iter()
        .map(|logical| DesiredSigningKey {
            logical: logical.clone(),
            name: secret_name(app, stage, logical),
        })
        .collect()
}

/// Every signing key of the stage, live or scheduled for deletion: ListSecrets by the stage's
/// name prefix (the value is never read when planning).
pub async fn observe(
    clients: &Clients,
    app: &str,
    stage: &str,
) -> Result<Vec<ActualSigningKey>, DeployError> {
    use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
    let prefix = prefix(app, stage);
    let pages: Vec<_> = clients
        .secrets
        .list_secrets()
        .filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(&prefix)
                .build(),
        )
        .include_planned_deletion(true)
        .max_results(100)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("ListSecrets", &format!("signing keys {prefix}*"), e))?;
    let mut keys: Vec<ActualSigningKey> = pages
        .iter()
        .flat_map(|p| p.secret_list())
        // The name filter ignores case; the stage's keys are its exact prefix.
        .filter_map(|s| {
            let name = s.name()?;
            name.starts_with(&prefix).then(|| ActualSigningKey {
                name: name.to_string(),
                scheduled_for_deletion: s.deleted_date().is_some(),
            })
        })
        .collect();
    keys.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(keys)
}

fn planned(
    name: &str,
    logical: Option<&str>,
    action: Action,
    reason: &str,
    tags: std::collections::BTreeMap<String, String>,
) -> Planned<SigningKeyOp> {
    Planned::new(
        ResourceKind::SigningKey,
        format!("signing key {name}"),
        name,
        logical,
        action,
        reason,
        SigningKeyOp {
            name: name.to_string(),
            tags,
        },
    )
}

/// Creates the keys that do not exist and restores those a destroy scheduled for deletion; one
/// that exists is a no-op, whatever its value. A live key no function reads any more is
/// deleted.
pub fn plan(
    app: &str,
    stage: &str,
    desired: &[DesiredSigningKey],
    actual: &[ActualSigningKey],
) -> Vec<Planned<SigningKeyOp>> {
    let mut changes: Vec<Planned<SigningKeyOp>> = desired
        .iter()
        .map(|k| {
            let (action, reason) = match actual.iter().find(|a| a.name == k.name) {
                Some(a) if a.scheduled_for_deletion => (
                    Action::Update,
                    "scheduled for deletion: restored with its value".to_string(),
                ),
                Some(_) => (
                    Action::NoOp,
                    "exists (its value is never changed or shown)".to_string(),
                ),
                None => (
                    Action::Create,
                    "not created yet: 32 random bytes".to_string(),
                ),
            };
            let tags = crate::names::tags(app, stage, &k.logical);
            planned(&k.name, Some(&k.logical), action, &reason, tags)
        })
        .collect();
    changes.extend(
        actual
            .iter()
            .filter(|a| !a.scheduled_for_deletion && !desired.iter().any(|k| k.name == a.name))
            .map(|a| plan_delete(a, "no function reads it any more")),
    );
    changes
}

/// Deletes a live key, restorable for [`RECOVERY_DAYS`] days.
pub fn plan_delete(a: &ActualSigningKey, why: &str) -> Planned<SigningKeyOp> {
    let reason = format!("{why}: deleted, restorable by a deploy for {RECOVERY_DAYS} days");
    planned(&a.name, None, Action::Delete, &reason, Default::default())
}

/// Every live key of a destroyed stage.
pub fn plan_destroy(actual: &[ActualSigningKey]) -> Vec<Planned<SigningKeyOp>> {
    actual
        .iter()
        .filter(|a| !a.scheduled_for_deletion)
        .map(|a| plan_delete(a, "destroying the stage"))
        .collect()
}

/// A new key: 32 bytes from the operating system's generator, base64url-encoded so that it is
/// printable secret string.
pub fn new_key() -> Result<String, std::io::Error> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// CreateSecret of a new key (one created by an interrupted run is kept, never overwritten), or
/// RestoreSecret of a key scheduled for deletion.
pub(crate) async fn apply(ctx: &Ctx<'_>, c: &Planned<SigningKeyOp>) -> Result<(), DeployError> {
    match c.action {
        Action::Create => create(ctx, c).await,
        Action::Update => {
            ctx.say(&format!("restoring {}", c.resource));
            sent(
                ctx,
                ctx.clients
                    .secrets
                    .restore_secret()
                    .secret_id(&c.op.name)
                    .send(),
            )
            .await
            .map(|_| ())
            .map_err(|f| failure_error("RestoreSecret", &c.resource, f))
        }
        _ => Ok(()),
    }
}

/// DeleteSecret with the shortest recovery window. A key already gone or already scheduled
/// (a retry whose first answer was lost) counts as deleted.
pub(crate) async fn delete(ctx: &Ctx<'_>, c: &Planned<SigningKeyOp>) -> Result<(), DeployError> {
    ctx.say(&format!("deleting {}", c.resource));
    let result = sent(
        ctx,
        ctx.clients
            .secrets
            .delete_secret()
            .secret_id(&c.op.name)
            .recovery_window_in_days(RECOVERY_DAYS)
            .send(),
    )
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_request_exception()) =>
        {
            // Refused because it is scheduled for deletion already, or for another reason.
            let scheduled = ctx
                .clients
                .secrets
                .describe_secret()
                .secret_id(&c.op.name)
                .send()
                .await
                .is_ok_and(|d| d.deleted_date().is_some());
            if scheduled {
                Ok(())
            } else {
                Err(call_error("DeleteSecret", &c.resource, e))
            }
        }
        Err(f) => Err(failure_error("DeleteSecret", &c.resource, f)),
    }
}

async fn create(ctx: &Ctx<'_>, c: &Planned<SigningKeyOp>) -> Result<(), DeployError> {
    use aws_sdk_secretsmanager::types::Tag;
    ctx.say(&format!("creating {}", c.resource));
    let key = new_key().map_err(|e| build_error("CreateSecret", &c.resource, e))?;
    let result = sent(
        ctx,
        ctx.clients
            .secrets
            .create_secret()
            .name(&c.op.name)
            .secret_string(key)
            .description("Signing key of the stage's tokens, created by the deployer")
            .set_tags(Some(
                c.op.tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send(),
    )
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_exists_exception()) =>
        {
            Ok(())
        }
        Err(f) => Err(failure_error("CreateSecret", &c.resource, f)),
    }
}

/// The key itself (GetSecretValue), for `token`: read with the developer's own credentials,
/// never part of a plan.
pub async fn read(clients: &Clients, name: &str) -> Result<Vec<u8>, DeployError> {
    let out = clients
        .secrets
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .map_err(|e| call_error("GetSecretValue", &format!("signing key {name}"), e))?;
    Ok(out.secret_string().unwrap_or_default().as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_is_created_and_an_existing_one_never_touched() {
        let functions = [
            Function::new("authorizer").reads_signing_key("token-signing-key", "KEY"),
            Function::new("other").reads_signing_key("token-signing-key", "SAME_KEY"),
        ];
        let desired = resolve("represent", "dev", &functions);
        assert_eq!(
            desired,
            [DesiredSigningKey {
                logical: "token-signing-key".into(),
                name: "represent/dev/token-signing-key".into(),
            }],
            "one secret however many functions read it"
        );
        let fresh = plan("represent", "dev", &desired, &[]);
        assert_eq!(fresh[0].action, Action::Create);
        assert_eq!(
            fresh[0].resource,
            "signing key represent/dev/token-signing-key"
        );
        assert_eq!(
            fresh[0]
                .op
                .tags
                .get(crate::names::TAG_STAGE)
                .map(String::as_str),
            Some("dev")
        );
        let kept = plan(
            "represent",
            "dev",
            &desired,
            &[ActualSigningKey::live("represent/dev/token-signing-key")],
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].action, Action::NoOp);
    }

    #[test]
    fn a_destroyed_key_is_restored_and_an_unread_one_deleted() {
        let desired = resolve(
            "represent",
            "dev",
            &[Function::new("authorizer").reads_signing_key("token-signing-key", "KEY")],
        );
        let actual = [
            ActualSigningKey {
                name: "represent/dev/token-signing-key".into(),
                scheduled_for_deletion: true,
            },
            ActualSigningKey::live("represent/dev/old-key"),
            ActualSigningKey {
                name: "represent/dev/older-key".into(),
                scheduled_for_deletion: true,
            },
        ];
        let changes = plan("represent", "dev", &desired, &actual);
        let summary: Vec<(Action, &str)> = changes
            .iter()
            .map(|c| (c.action, c.name.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (Action::Update, "represent/dev/token-signing-key"),
                (Action::Delete, "represent/dev/old-key"),
            ],
            "restore the read key, delete the unread live one, leave the scheduled one"
        );
        let destroyed = plan_destroy(&actual);
        assert_eq!(destroyed.len(), 1, "only the live key is deleted again");
        assert_eq!(destroyed[0].name, "represent/dev/old-key");
    }

    #[test]
    fn keys_are_32_random_bytes_and_the_grant_names_one_secret() {
        let (a, b) = (new_key().expect("a key"), new_key().expect("a key"));
        assert_eq!(a.len(), 43, "32 bytes, base64url without padding");
        assert_ne!(a, b);
        assert_eq!(
            secret_arn_pattern("represent/dev/token-signing-key"),
            "arn:aws:secretsmanager:*:*:secret:represent/dev/token-signing-key-??????"
        );
    }
}
