//! Reading what a stage has in AWS (or the emulator): functions and the execution role.

use std::collections::BTreeMap;

use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::types::FunctionConfiguration;
use serde::Serialize;

use crate::error::{DeployError, render};
use crate::names::{self, TAG_APP, TAG_LOGICAL, TAG_STAGE};
use crate::stack::{Architecture, LogFormat, Tenancy};

/// The SDK clients the deployer talks through, built once at the edge and passed in.
#[derive(Debug, Clone)]
pub struct Clients {
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients {
            lambda: aws_sdk_lambda::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
        }
    }
}

/// What exists for one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Actual {
    pub role: Option<ActualRole>,
    pub functions: Vec<ActualFunction>,
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

/// A deployed function tagged with this app and stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualFunction {
    pub name: String,
    pub arn: String,
    /// From the `deployer:logical-id` tag; `None` if the tag is missing.
    pub logical: Option<String>,
    pub code_sha256: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, String>,
    pub description: String,
    pub tenancy: Tenancy,
    pub log_format: LogFormat,
    pub runtime: String,
    pub handler: String,
    pub role_arn: String,
    pub state: Option<String>,
    pub last_update_status: Option<String>,
    pub tags: BTreeMap<String, String>,
}

fn call_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    call: &'static str,
    resource: &str,
    err: SdkError<E, R>,
) -> DeployError {
    DeployError::Call {
        call,
        resource: resource.to_string(),
        message: render(&err),
    }
}

/// Reads every function and the role of a stage. Names narrow the search, tags decide: a
/// function named with the stage's prefix but tagged for another stage is not ours.
pub async fn observe(clients: &Clients, app: &str, stage: &str) -> Result<Actual, DeployError> {
    let prefix = names::function_prefix(app, stage);
    let mut candidates = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .lambda
            .list_functions()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| call_error("ListFunctions", &format!("functions {prefix}*"), e))?;
        for f in page.functions() {
            if let Some(name) = f.function_name()
                && name.starts_with(&prefix)
            {
                candidates.push(name.to_string());
            }
        }
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }

    let mut functions = Vec::new();
    for name in candidates {
        let resource = format!("function {name}");
        let out = match clients
            .lambda
            .get_function()
            .function_name(&name)
            .send()
            .await
        {
            Ok(out) => out,
            // Deleted between the listing and now: it no longer exists, which is what we report.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                continue;
            }
            Err(e) => return Err(call_error("GetFunction", &resource, e)),
        };
        let tags: BTreeMap<String, String> = out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if tags.get(TAG_APP).map(String::as_str) != Some(app)
            || tags.get(TAG_STAGE).map(String::as_str) != Some(stage)
        {
            continue;
        }
        let conf = out.configuration().ok_or(DeployError::MissingField {
            call: "GetFunction",
            resource: resource.clone(),
            field: "Configuration",
        })?;
        functions.push(actual_function(&name, conf, tags));
    }
    functions.sort_by(|a, b| a.name.cmp(&b.name));

    let role = observe_role(clients, &names::role_name(app, stage)).await?;
    Ok(Actual { role, functions })
}

/// Converts the SDK's view of a function into the deployer's, filling Lambda's defaults where
/// a field is absent (no architecture means x86_64, no logging config means text logs).
pub fn actual_function(
    name: &str,
    conf: &FunctionConfiguration,
    tags: BTreeMap<String, String>,
) -> ActualFunction {
    use aws_sdk_lambda::types::{Architecture as A, LogFormat as L, TenantIsolationMode};
    let architecture = match conf.architectures().first() {
        Some(A::Arm64) => Architecture::Arm64,
        _ => Architecture::X86_64,
    };
    let log_format = match conf.logging_config().and_then(|l| l.log_format()) {
        Some(L::Json) => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let tenancy = match conf.tenancy_config().map(|t| t.tenant_isolation_mode()) {
        Some(TenantIsolationMode::PerTenant) => Tenancy::PerTenant,
        _ => Tenancy::Shared,
    };
    let environment = conf
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    ActualFunction {
        name: name.to_string(),
        arn: conf.function_arn().unwrap_or_default().to_string(),
        logical: tags.get(TAG_LOGICAL).cloned(),
        code_sha256: conf.code_sha256().unwrap_or_default().to_string(),
        memory_mb: conf
            .memory_size()
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(128),
        timeout_s: conf
            .timeout()
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(3),
        architecture,
        environment,
        description: conf.description().unwrap_or_default().to_string(),
        tenancy,
        log_format,
        runtime: conf
            .runtime()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        handler: conf.handler().unwrap_or_default().to_string(),
        role_arn: conf.role().unwrap_or_default().to_string(),
        state: conf.state().map(|s| s.as_str().to_string()),
        last_update_status: conf.last_update_status().map(|s| s.as_str().to_string()),
        tags,
    }
}

async fn observe_role(clients: &Clients, name: &str) -> Result<Option<ActualRole>, DeployError> {
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

    let mut managed = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| call_error("ListAttachedRolePolicies", &resource, e))?;
        managed.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string)),
        );
        match (page.is_truncated(), page.marker()) {
            (true, Some(m)) => marker = Some(m.to_string()),
            _ => break,
        }
    }
    managed.sort();

    let mut policy_names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = clients
            .iam
            .list_role_policies()
            .role_name(name)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| call_error("ListRolePolicies", &resource, e))?;
        policy_names.extend(page.policy_names().iter().cloned());
        match (page.is_truncated(), page.marker()) {
            (true, Some(m)) => marker = Some(m.to_string()),
            _ => break,
        }
    }

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
