//! Signing keys: per-stage secrets an app's functions read at init (a token authorizer's HS256
//! key, say), kept in Secrets Manager as the secret `{app}/{stage}/{logical}`. The deployer
//! creates one (32 random bytes) when it is missing and never changes or prints one that exists;
//! the key is never in the repository, the plan or a function's configuration: functions get the
//! secret's name and a grant to read that one secret.
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

/// What apply sends for a signing key: CreateSecret of a new random key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigningKeyOp {
    pub name: String,
}

/// The secret name of signing key `logical` of a stage.
pub fn secret_name(app: &str, stage: &str, logical: &str) -> String {
    format!("{app}/{stage}/{logical}")
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

/// Which of `names` exist, read with DescribeSecret (the value is never read when planning).
pub async fn observe(clients: &Clients, names: &[String]) -> Result<Vec<String>, DeployError> {
    let mut existing = Vec::new();
    for name in names {
        match clients
            .secrets
            .describe_secret()
            .secret_id(name)
            .send()
            .await
        {
            Ok(_) => existing.push(name.clone()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => {
                return Err(call_error(
                    "DescribeSecret",
                    &format!("signing key {name}"),
                    e,
                ));
            }
        }
    }
    Ok(existing)
}

/// Creates the keys that do not exist; one that exists is a no-op, whatever its value.
pub fn plan(desired: &[DesiredSigningKey], existing: &[String]) -> Vec<Planned<SigningKeyOp>> {
    desired
        .iter()
        .map(|k| {
            let (action, reason) = if existing.contains(&k.name) {
                (Action::NoOp, "exists (its value is never changed or shown)")
            } else {
                (Action::Create, "not created yet: 32 random bytes")
            };
            Planned::new(
                ResourceKind::SigningKey,
                format!("signing key {}", k.name),
                &k.name,
                Some(&k.logical),
                action,
                reason,
                SigningKeyOp {
                    name: k.name.clone(),
                },
            )
        })
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

/// CreateSecret of a new key; one created by an interrupted run is kept, never overwritten.
pub(crate) async fn apply(ctx: &Ctx<'_>, c: &Planned<SigningKeyOp>) -> Result<(), DeployError> {
    if c.action != Action::Create {
        return Ok(());
    }
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
        let fresh = plan(&desired, &[]);
        assert_eq!(fresh[0].action, Action::Create);
        assert_eq!(
            fresh[0].resource,
            "signing key represent/dev/token-signing-key"
        );
        let kept = plan(&desired, &["represent/dev/token-signing-key".to_string()]);
        assert_eq!(kept[0].action, Action::NoOp);
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
