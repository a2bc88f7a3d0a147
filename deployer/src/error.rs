//! Error types of the deployer: stack problems, packaging, building and the AWS calls.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// One problem in a stack definition, found before any network call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    #[error(
        "{what} name `{value}` is invalid: use 1 or more characters of lowercase letters, digits and `-`"
    )]
    InvalidName { what: &'static str, value: String },
    #[error(
        "function `{logical}`: physical name `{name}` is {len} characters but Lambda allows 64; shorten the app, stage or logical name"
    )]
    FunctionNameTooLong {
        logical: String,
        name: String,
        len: usize,
    },
    #[error(
        "role name `{name}` is {len} characters but IAM allows 64; shorten the app or stage name"
    )]
    RoleNameTooLong { name: String, len: usize },
    #[error(
        "function `{logical}`: memory {value} MB is outside 128..=10240; pick a size in that range"
    )]
    Memory { logical: String, value: u32 },
    #[error(
        "function `{logical}`: timeout {value} s is outside 1..=900; pick a timeout in that range"
    )]
    Timeout { logical: String, value: u32 },
    #[error(
        "function `{logical}` is defined more than once; give each function its own logical name"
    )]
    DuplicateFunction { logical: String },
    #[error("stage `{name}` is defined more than once; give each stage its own name")]
    DuplicateStage { name: String },
    #[error("unknown stage `{stage}`; the stack defines: {}", if known.is_empty() { "no stages".to_string() } else { known.join(", ") })]
    UnknownStage { stage: String, known: Vec<String> },
    #[error(
        "function `{logical}`: per-tenant isolation cannot be combined with {feature} (AWS refuses it); remove {feature} or make the function shared"
    )]
    TenancyConflict {
        logical: String,
        feature: &'static str,
    },
    #[error(
        "function `{logical}`: tenant_scoped needs per-tenant isolation, since the tenant-data role is assumed once per environment for its one tenant; add `.per_tenant()`"
    )]
    TenantScopedShared { logical: String },
    #[error(
        "function `{logical}`: tenant_scoped needs a table to scope; declare one with `.reads_table(..)` or `.writes_table(..)`, or drop `.tenant_scoped()`"
    )]
    TenantScopedWithoutTable { logical: String },
    #[error(
        "function `{logical}`: tenant role name `{name}` is {len} characters but IAM allows 64; shorten the app, stage or logical name"
    )]
    TenantRoleNameTooLong {
        logical: String,
        name: String,
        len: usize,
    },
    #[error(
        "function `{logical}`: environment key `{key}` is invalid; keys start with a letter and use only letters, digits and `_`"
    )]
    InvalidEnvKey { logical: String, key: String },
    #[error("function `{logical}`: environment key `{key}` is reserved by Lambda; rename it")]
    ReservedEnvKey { logical: String, key: String },
    #[error("role: inline policy `{name}` is not valid JSON ({reason}); fix the policy document")]
    InvalidInlinePolicy { name: String, reason: String },
    #[error(
        "function `{logical}`: no package was built for binary `{bin}`; check the function's package and bin names"
    )]
    MissingPackage { logical: String, bin: String },
    #[error("table `{logical}` is defined more than once; give each table its own logical name")]
    DuplicateTable { logical: String },
    #[error(
        "table `{logical}`: physical name `{name}` is invalid; DynamoDB allows 3 to 255 characters of letters, digits, `_`, `.` and `-`"
    )]
    InvalidTableName { logical: String, name: String },
    #[error(
        "function `{logical}` reads table `{table}`, which the stack does not declare; declared tables: {}",
        if declared.is_empty() { "none".to_string() } else { declared.join(", ") }
    )]
    UnknownTable {
        logical: String,
        table: String,
        declared: Vec<String>,
    },
    #[error(
        "function `{logical}`: environment key `{key}` is set both by `env` and by `reads_table(\"{table}\", ..)`; use another key for one of them"
    )]
    EnvKeyConflict {
        logical: String,
        key: String,
        table: String,
    },
    #[error(
        "role: inline policy `{name}` is reserved for the tables functions read; rename the policy"
    )]
    ReservedInlinePolicy { name: String },
    #[error(
        "seed data names table `{table}`, which the stack does not declare; declared tables: {}",
        if declared.is_empty() { "none".to_string() } else { declared.join(", ") }
    )]
    UnknownSeedTable {
        table: String,
        declared: Vec<String>,
    },
    #[error(
        "seed data names table `{table}`, which is keyed `{key}`; tenant data is seeded only into tables keyed `tenant (S), record (S)` (the default `Table::new`)"
    )]
    SeedTableKey { table: String, key: String },
    #[error("seed data for table `{table}`: {source}")]
    SeedTenant {
        table: String,
        #[source]
        source: TenantIdError,
    },
    #[error(
        "seed data for table `{table}` lists tenant {tenant:?} more than once; merge its records"
    )]
    DuplicateSeedTenant { table: String, tenant: String },
    #[error("seed data for table `{table}`, tenant {tenant:?}: record key {record:?} {reason}")]
    SeedRecord {
        table: String,
        tenant: String,
        record: String,
        reason: String,
    },
    #[error("seed data for table `{table}`, tenant {tenant:?}, record {record:?}: data {reason}")]
    SeedData {
        table: String,
        tenant: String,
        record: String,
        reason: String,
    },
    #[error(
        "stage `{stage}`: log retention of {days} days is not one CloudWatch Logs accepts; use one of {}",
        crate::names::RETENTION_DAYS.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    LogRetention { stage: String, days: u32 },
    #[error("rest api `{logical}` is defined more than once; give each API its own logical name")]
    DuplicateRestApi { logical: String },
    #[error(
        "rest api `{api}`: route `{route}` targets function `{function}`, which the stack does not declare; declared functions: {}",
        if declared.is_empty() { "none".to_string() } else { declared.join(", ") }
    )]
    RouteUnknownFunction {
        api: String,
        route: String,
        function: String,
        declared: Vec<String>,
    },
    #[error("rest api `{api}`: route `{method} {path}` is defined more than once; keep one")]
    DuplicateRoute {
        api: String,
        method: String,
        path: String,
    },
    #[error(
        "rest api `{api}`: route path `{path}` {reason}; write paths like `/counties/{{fips}}`"
    )]
    InvalidRoutePath {
        api: String,
        path: String,
        reason: &'static str,
    },
    #[error(
        "rest api `{api}`: method `{method}` is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY"
    )]
    InvalidRouteMethod { api: String, method: String },
    #[error(
        "rest api `{api}`: the tenant comes from path parameter `{parameter}`, but route path `{path}` has no `{{{parameter}}}`; add it to every route or take the tenant from a header"
    )]
    TenantPathParameter {
        api: String,
        parameter: String,
        path: String,
    },
    #[error(
        "rest api `{api}`: tenant parameter name {name:?} is invalid; use letters, digits, `-`, `_` and `.`"
    )]
    InvalidTenantParameter { api: String, name: String },
    #[error(
        "api `{api}` routes to per-tenant function `{function}`, but HTTP APIs cannot set X-Amz-Tenant-Id; use a REST API (`RestApi::new`)"
    )]
    HttpApiPerTenant { api: String, function: String },
    #[error(
        "api `{api}` is an HTTP API, which the deployer does not deploy; use a REST API (`RestApi::new`)"
    )]
    HttpApiUnsupported { api: String },
    #[error(
        "rest api `{api}`: the tenant authorizer is function `{function}`, which the stack does not declare (declared: {declared:?})"
    )]
    AuthorizerUnknownFunction {
        api: String,
        function: String,
        declared: Vec<String>,
    },
    #[error(
        "rest api `{api}`: authorizer function `{function}` is per-tenant, but API Gateway invokes an authorizer without a tenant id; make it a shared function"
    )]
    AuthorizerPerTenant { api: String, function: String },
    #[error(
        "rest api `{api}`: routes name different authorizer functions ({}); an API has one token authorizer, so name the same function on every route",
        functions.join(", ")
    )]
    AuthorizerFunctionsDiffer { api: String, functions: Vec<String> },
    #[error(
        "app `{app}` audits data events but declares no table; declare a table with `.table(..)` or drop `.audit_data_events()`"
    )]
    AuditWithoutTables { app: String },
}

/// Every problem found in a stack. Its `Display` lists each one on its own line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackErrors(pub Vec<StackError>);

impl fmt::Display for StackErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "the stack has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StackErrors {}

/// A deployment package could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("failed to read binary `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write the zip archive for `{}`", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
}

/// Building the functions failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Tool(#[from] crate::tools::ToolError),
    #[error("no cargo-lambda command was given; the caller must locate cargo-lambda first")]
    NoCommand,
    #[error("failed to start `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed with {status}")]
    Failed { command: String, status: String },
    #[error("`{command}` succeeded but did not produce `{}`", path.display())]
    MissingOutput { command: String, path: PathBuf },
}

/// A tenant id that Lambda would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    #[error("tenant id {value:?} is {len} characters; tenant ids have 1 to 256 characters")]
    Length { value: String, len: usize },
    #[error(
        "tenant id {value:?} contains {ch:?}; tenant ids use only letters, digits, space and . _ : / = + - @"
    )]
    Character { value: String, ch: char },
}

/// A failure while reading or changing AWS resources.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A call failed: `message` is what AWS said (its error code and message), the SDK's error
    /// is the source.
    #[error("{call} failed for {resource}: {message}")]
    Call {
        call: &'static str,
        resource: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A call the retry policy retried until its bound: every attempt, over `elapsed`.
    #[error(
        "{call} failed for {resource} after {attempts} attempts{}: {last_error}",
        over(*elapsed)
    )]
    RetriesExhausted {
        call: &'static str,
        resource: String,
        attempts: u32,
        elapsed: Duration,
        last_error: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error(
        "{resource} did not become {target} within {timeout:?} of polling {call} (last seen: {last_seen})"
    )]
    WaitTimeout {
        call: &'static str,
        resource: String,
        target: &'static str,
        timeout: Duration,
        last_seen: String,
    },
    #[error("{resource} failed to become {target} (GetFunction reports: {reason})")]
    FunctionFailed {
        resource: String,
        target: &'static str,
        reason: String,
    },
    #[error("{call} for {resource} returned no {field}")]
    MissingField {
        call: &'static str,
        resource: String,
        field: &'static str,
    },
    #[error("no execution role ARN is known for {function}; the role `{role}` must exist first")]
    MissingRoleArn { function: String, role: String },
    #[error(
        "tenant {tenant:?} has no seed data; tenants with seed data: {}",
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    )]
    UnknownTenant { tenant: String, known: Vec<String> },
    #[error("table {table} does not exist yet; deploy the stage first to create it")]
    TableMissing { table: String },
    #[error(
        "table {table} has key schema {have} but the stack wants {want}; deploy the stage first to replace it"
    )]
    TableOutdated {
        table: String,
        have: String,
        want: String,
    },
    #[error(transparent)]
    TenantId(#[from] TenantIdError),
}

/// Renders an SDK error as one line: its chain of causes, each said once, which is where AWS
/// puts the message a user can act on (`InvalidParameterValueException: Unzipped size must be
/// smaller than ...`). Never a `Debug` dump of the request or response.
pub(crate) fn render<E: std::error::Error>(err: &E) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        // `service error` only says that the service answered; what it said follows.
        let said = parts.last().is_some_and(|p| p.contains(&text));
        if !said && text != "service error" && !text.is_empty() {
            parts.push(text);
        }
        cause = e.source();
    }
    parts.join(": ")
}

/// ` over 12.3 s`, or nothing when the time is not known.
fn over(elapsed: Duration) -> String {
    if elapsed.is_zero() {
        String::new()
    } else {
        format!(" over {:.1} s", elapsed.as_secs_f64())
    }
}

/// What AWS said about a failed call, in one line: the service's error code and message
/// (`TooManyRequestsException: Rate exceeded`), or, when no answer came, what went wrong on the
/// way. Never a `Debug` dump.
pub(crate) fn said<E, R>(err: &aws_sdk_lambda::error::SdkError<E, R>) -> String
where
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_lambda::error::SdkError;
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => render(e),
            }
        }
        SdkError::TimeoutError(_) => "no answer came in time".to_string(),
        SdkError::DispatchFailure(_) => {
            format!(
                "the request could not be sent or its connection was lost ({})",
                render(err)
            )
        }
        SdkError::ResponseError(_) => {
            format!("the answer was cut off or unreadable ({})", render(err))
        }
        _ => render(err),
    }
}
