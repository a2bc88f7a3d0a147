//! The Lambda function model: the persisted `FunctionConfiguration`, the in-memory record the
//! invoke path reads, the transient `Pending`/`InProgress` states, and Lambda's input constraints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::error::violation;
use crate::runtime::{FunctionSpec, LogFormat};

/// Lambda's `FunctionConfiguration`, as returned by every control-plane call. The transient state
/// members are `None` in storage and filled in when a response is rendered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionConfig {
    pub function_name: String,
    pub function_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    pub code_size: u64,
    #[serde(default)]
    pub description: String,
    pub timeout: u32,
    pub memory_size: u32,
    pub last_modified: String,
    pub code_sha256: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentResponse>,
    pub tracing_config: TracingConfig,
    pub revision_id: String,
    pub package_type: String,
    pub architectures: Vec<String>,
    pub ephemeral_storage: EphemeralStorage,
    pub logging_config: LoggingConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenancy_config: Option<TenancyConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_status_reason_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentResponse {
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TracingConfig {
    pub mode: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorage {
    pub size: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    pub log_format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_log_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_log_level: Option<String>,
    pub log_group: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TenancyConfig {
    pub tenant_isolation_mode: String,
}

/// Why a function cannot be mutated right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Just created: `State: Pending` until the deadline.
    Creating(Instant),
    /// Just updated: `LastUpdateStatus: InProgress` until the deadline.
    Updating(Instant),
}

/// A function as the emulator holds it in memory. The invoke path reads only `spec`, `busy` and
/// `config.tenancy_config` under a read lock, so it never touches SQLite or the zip.
#[derive(Debug, Clone)]
pub struct FunctionRecord {
    pub config: FunctionConfig,
    pub tags: BTreeMap<String, String>,
    /// Resource-policy statements in the order they were added: (statement id, statement).
    pub permissions: Vec<(String, serde_json::Value)>,
    pub busy: Option<Busy>,
    pub spec: Arc<FunctionSpec>,
}

impl FunctionRecord {
    /// Whether the function was created less than `pending_delay` ago.
    pub fn is_pending(&self, now: Instant) -> bool {
        matches!(self.busy, Some(Busy::Creating(until)) if now < until)
    }

    /// Whether an update was acknowledged less than `pending_delay` ago.
    pub fn is_updating(&self, now: Instant) -> bool {
        matches!(self.busy, Some(Busy::Updating(until)) if now < until)
    }

    /// The configuration with `State` and `LastUpdateStatus` as they are at `now`.
    pub fn rendered(&self, now: Instant) -> FunctionConfig {
        let mut config = self.config.clone();
        if self.is_pending(now) {
            config.state = Some("Pending".into());
            config.state_reason = Some("The function is being created.".into());
            config.state_reason_code = Some("Creating".into());
        } else if self.is_updating(now) {
            config.state = Some("Active".into());
            config.last_update_status = Some("InProgress".into());
            config.last_update_status_reason = Some("The function is being updated.".into());
        } else {
            config.state = Some("Active".into());
            config.last_update_status = Some("Successful".into());
        }
        config
    }

    /// The 409 a mutation gets while the function is still settling, if it is.
    pub fn mutation_conflict(&self, now: Instant) -> Option<String> {
        if self.is_pending(now) {
            Some(PENDING_CONFLICT.to_string())
        } else if self.is_updating(now) {
            Some(format!(
                "The operation cannot be performed at this time. An update is in progress for resource: {}",
                self.config.function_arn
            ))
        } else {
            None
        }
    }

    pub fn per_tenant(&self) -> bool {
        self.config.tenancy_config.is_some()
    }
}

pub const PENDING_CONFLICT: &str = "The operation cannot be performed at this time. The function is currently in the following state: Pending";

/// Builds the runtime's view of a function revision.
pub fn function_spec(config: &FunctionConfig, code_dir: std::path::PathBuf) -> FunctionSpec {
    FunctionSpec {
        name: config.function_name.clone(),
        arn: config.function_arn.clone(),
        version: "$LATEST".into(),
        revision: config.revision_id.clone(),
        code_dir,
        handler: config.handler.clone().unwrap_or_else(|| "bootstrap".into()),
        memory_mb: config.memory_size,
        timeout: std::time::Duration::from_secs(u64::from(config.timeout)),
        environment: config
            .environment
            .as_ref()
            .map(|e| e.variables.clone())
            .unwrap_or_default(),
        log_format: if config.logging_config.log_format == "JSON" {
            LogFormat::Json
        } else {
            LogFormat::Text
        },
        log_group: config.logging_config.log_group.clone(),
        per_tenant: config.tenancy_config.is_some(),
        role: config.role.clone(),
    }
}

/// The function name inside a `FunctionName` path parameter, which may be a name, a partial ARN
/// (`123456789012:function:name`) or a full ARN, each optionally followed by a qualifier.
pub fn resolve_function_name(raw: &str) -> &str {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) if i + 1 < parts.len() => parts[i + 1],
        _ => parts[0],
    }
}

pub fn is_valid_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub const FUNCTION_NAME_PATTERN: &str = "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?";

/// Runtimes the emulator accepts: every name Lambda's model knows (that of aws-sdk-lambda
/// 1.156; a test checks the pinned SDK's list against this one). It can only run `provided.*`
/// (OS-only) packages, but accepting the managed runtimes keeps the control plane usable for
/// deploy tests of other stacks.
const RUNTIMES: &[&str] = &[
    "dotnet10",
    "dotnet6",
    "dotnet8",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "go1.x",
    "java11",
    "java11.al2023",
    "java17",
    "java17.al2023",
    "java21",
    "java25",
    "java8",
    "java8.al2",
    "java8.al2023",
    "nodejs",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "nodejs26.x",
    "nodejs4.3",
    "nodejs4.3-edge",
    "nodejs6.10",
    "nodejs8.10",
    "provided",
    "provided.al2",
    "provided.al2023",
    "python2.7",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "python3.15",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "ruby2.5",
    "ruby2.7",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "ruby4.0",
];

pub fn runtimes() -> &'static [&'static str] {
    RUNTIMES
}

pub fn check_memory(value: i64, violations: &mut Vec<String>) {
    if value < 128 {
        violations.push(violation(
            Some(&value.to_string()),
            "memorySize",
            "Member must have value greater than or equal to 128",
        ));
    } else if value > 10_240 {
        violations.push(violation(
            Some(&value.to_string()),
            "memorySize",
            "Member must have value less than or equal to 10240",
        ));
    }
}

pub fn check_timeout(value: i64, violations: &mut Vec<String>) {
    if value < 1 {
        violations.push(violation(
            Some(&value.to_string()),
            "timeout",
            "Member must have value greater than or equal to 1",
        ));
    } else if value > 900 {
        violations.push(violation(
            Some(&value.to_string()),
            "timeout",
            "Member must have value less than or equal to 900",
        ));
    }
}

/// Lambda refuses an unknown runtime with InvalidParameterValueException (not a validation
/// error), its value unquoted, as recorded from AWS.
pub fn check_runtime(value: &str) -> Result<(), String> {
    if runtimes().contains(&value) {
        return Ok(());
    }
    Err(format!(
        "Value {value} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}] or be a valid ARN",
        runtimes().join(", ")
    ))
}

pub fn check_ephemeral_storage(size: Option<i64>, violations: &mut Vec<String>) {
    match size {
        None => violations.push(violation(
            None,
            "ephemeralStorage.size",
            "Member must not be null",
        )),
        Some(size) if size < 512 => violations.push(violation(
            Some(&size.to_string()),
            "ephemeralStorage.size",
            "Member must have value greater than or equal to 512",
        )),
        Some(size) if size > 10_240 => violations.push(violation(
            Some(&size.to_string()),
            "ephemeralStorage.size",
            "Member must have value less than or equal to 10240",
        )),
        Some(_) => {}
    }
}

pub fn check_tracing_mode(mode: Option<&str>, violations: &mut Vec<String>) {
    if !matches!(mode, Some("Active" | "PassThrough")) {
        violations.push(violation(
            mode,
            "tracingConfig.mode",
            "Member must satisfy enum value set: [Active, PassThrough]",
        ));
    }
}

pub fn check_handler(value: &str, violations: &mut Vec<String>) {
    if value.is_empty() || value.len() > 128 || value.chars().any(char::is_whitespace) {
        violations.push(violation(
            Some(value),
            "handler",
            "Member must satisfy regular expression pattern: [^\\s]+",
        ));
    }
}

pub fn check_description(value: &str, violations: &mut Vec<String>) {
    if value.chars().count() > 256 {
        violations.push(violation(
            Some(value),
            "description",
            "Member must have length less than or equal to 256",
        ));
    }
}

pub fn check_role_arn(value: &str, violations: &mut Vec<String>) {
    if !is_role_arn(value) {
        violations.push(violation(
            Some(value),
            "role",
            "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        ));
    }
}

/// `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`, without a regex engine.
fn is_role_arn(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    let partition_ok = partition.is_empty()
        || (partition.starts_with("aws")
            && partition
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'-'));
    let Some(rest) = rest.strip_prefix("iam::") else {
        return false;
    };
    let Some((account, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(path) = rest.strip_prefix("role") else {
        return false;
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    partition_ok
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_/".contains(&b))
}

/// The role name at the end of a role ARN (after the last `/`).
pub fn role_name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Lambda takes exactly one architecture; the length and the enum are separate constraints, each
/// reported only when broken.
pub fn check_architectures(value: &[String], violations: &mut Vec<String>) {
    let rendered = format!("[{}]", value.join(", "));
    if value.is_empty() {
        violations.push(violation(
            Some(&rendered),
            "architectures",
            "Member must have length greater than or equal to 1",
        ));
    } else if value.len() > 1 {
        violations.push(violation(
            Some(&rendered),
            "architectures",
            "Member must have length less than or equal to 1",
        ));
    } else if !value.iter().all(|a| a == "x86_64" || a == "arm64") {
        violations.push(violation(
            Some(&rendered),
            "architectures",
            "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]",
        ));
    }
}

pub fn check_log_format(value: &str, violations: &mut Vec<String>) {
    if value != "JSON" && value != "Text" {
        violations.push(violation(
            Some(value),
            "loggingConfig.logFormat",
            "Member must satisfy enum value set: [JSON, Text]",
        ));
    }
}

pub fn check_log_level(value: &str, field: &str, levels: &[&str], violations: &mut Vec<String>) {
    if !levels.contains(&value) {
        violations.push(violation(
            Some(value),
            field,
            &format!(
                "Member must satisfy enum value set: [{}]",
                levels.join(", ")
            ),
        ));
    }
}

pub const APPLICATION_LOG_LEVELS: &[&str] = &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
pub const SYSTEM_LOG_LEVELS: &[&str] = &["DEBUG", "INFO", "WARN"];

/// Checks a tenant id against Lambda's `TenantId` constraints: 1 to 256 characters of
/// `[a-zA-Z0-9._:/=+-@ ]`. Tenant ids are outside data, so `../x` is as valid as `TX`.
pub fn tenant_violations(tenant: &str) -> Vec<String> {
    let length = tenant.chars().count();
    let pattern_ok = tenant
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._:/=+-@ ".contains(&b));
    // Every invoke of a PER_TENANT function comes through here: a valid id costs no allocation.
    if (1..=256).contains(&length) && pattern_ok {
        return Vec::new();
    }
    let shown = tenant.escape_debug().to_string();
    let mut violations = Vec::new();
    if length < 1 {
        violations.push(violation(
            Some(&shown),
            "tenantId",
            "Member must have length greater than or equal to 1",
        ));
    } else if length > 256 {
        violations.push(violation(
            Some(&shown),
            "tenantId",
            "Member must have length less than or equal to 256",
        ));
    }
    if length >= 1 && !pattern_ok {
        violations.push(violation(
            Some(&shown),
            "tenantId",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9\\._:\\/=+\\-@ ]+",
        ));
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_resolve_from_arns() {
        assert_eq!(resolve_function_name("f"), "f");
        assert_eq!(resolve_function_name("f:$LATEST"), "f");
        assert_eq!(
            resolve_function_name("arn:aws:lambda:us-east-1:000000000000:function:f"),
            "f"
        );
        assert_eq!(resolve_function_name("000000000000:function:f:1"), "f");
    }

    #[test]
    fn role_arns_follow_the_lambda_pattern() {
        assert!(is_role_arn("arn:aws:iam::000000000000:role/x"));
        assert!(is_role_arn("arn:aws:iam::000000000000:role/path/x"));
        assert!(!is_role_arn("arn:aws:iam::0000:role/x"));
        assert!(!is_role_arn("x"));
    }

    #[test]
    fn tenant_ids_follow_the_invoke_constraints() {
        assert!(tenant_violations("../x").is_empty());
        assert!(tenant_violations("New York").is_empty());
        assert_eq!(tenant_violations("").len(), 1);
        assert_eq!(tenant_violations(&"a".repeat(257)).len(), 1);
        assert_eq!(tenant_violations("a\tb").len(), 1);
    }
}
