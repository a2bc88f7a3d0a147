//! Apply: the only code that changes AWS. Executes a plan step by step, waiting for Lambda and
//! DynamoDB to settle between steps, retrying only what is known to be transient.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    PutRequest, ScalarAttributeType, TableStatus, WriteRequest,
};
use aws_sdk_iam::operation::create_role::CreateRoleError;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::create_function::CreateFunctionError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture as SdkArchitecture, Environment, FunctionCode, LastUpdateStatus,
    LogFormat as SdkLogFormat, LoggingConfig, Runtime, State, TenancyConfig, TenantIsolationMode,
};
use serde::Serialize;

use crate::desired::{Desired, DesiredFunction, function_tags};
use crate::error::{DeployError, render};
use crate::log_group;
use crate::names::{DATA_ATTRIBUTE, PARTITION_KEY, SORT_KEY};
use crate::observe::{self, Clients};
use crate::plan::{Action, Change, Plan, ResourceKind};
use crate::rest_api::{self, ApiStep, ApiTarget, DesiredRestApi, DesiredRoute};
use crate::stack::{Architecture, LogFormat, Tenancy};
use crate::table::DesiredTable;

/// The trust policy that lets Lambda assume the execution role.
pub const LAMBDA_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Bounds on retries and waits.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The first backoff delay; each retry doubles it up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long to wait for a function or table to become active or finish an update.
    pub wait_timeout: Duration,
    /// The delay between status polls after the first (immediate) one; it grows up to
    /// `max_delay`.
    pub poll_interval: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// What apply did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// The changes carried out (no-ops are left out).
    pub changes: Vec<Change>,
    /// Every mutating request sent, retries included.
    pub mutating_calls: u32,
    /// The invoke URL of every REST API of the stage, by logical name.
    pub api_urls: BTreeMap<String, String>,
}

struct Ctx<'a> {
    clients: &'a Clients,
    opts: &'a ApplyOptions,
    progress: &'a (dyn Fn(&str) + Sync),
    mutating_calls: AtomicU32,
    role_arn: Option<String>,
    role_name: String,
    /// Set when this run created the role; only then is the IAM propagation error retried.
    role_created: bool,
}

impl Ctx<'_> {
    fn count(&self) {
        self.mutating_calls.fetch_add(1, Ordering::Relaxed);
    }

    fn say(&self, message: &str) {
        (self.progress)(message);
    }
}

/// How a retried call ended when it did not succeed.
enum Failure<E> {
    /// Not retryable: the caller decides what it means.
    Fatal(E),
    /// Retryable, but the bound was hit.
    Exhausted { attempts: u32, last: E },
}

/// Runs `call` until it succeeds, fails with an error `retryable` rejects, or the attempt bound
/// is hit, sleeping with exponential backoff between attempts.
async fn retry<T, E, F, Fut>(
    opts: &ApplyOptions,
    mut call: F,
    retryable: impl Fn(&E) -> bool,
) -> Result<T, Failure<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let max = opts.max_attempts.max(1);
    let mut delay = opts.base_delay;
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if !retryable(&e) => return Err(Failure::Fatal(e)),
            Err(e) if attempt >= max => {
                return Err(Failure::Exhausted {
                    attempts: attempt,
                    last: e,
                });
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(opts.max_delay.max(opts.base_delay));
                attempt += 1;
            }
        }
    }
}

fn failure_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    call: &'static str,
    resource: &str,
    failure: Failure<SdkError<E, R>>,
) -> DeployError {
    match failure {
        Failure::Fatal(e) => DeployError::Call {
            call,
            resource: resource.to_string(),
            message: render(&e),
        },
        Failure::Exhausted { attempts, last } => DeployError::RetriesExhausted {
            call,
            resource: resource.to_string(),
            attempts,
            last_error: render(&last),
        },
    }
}

/// The result of a delete, which converges: what `gone` recognises as "not found" means an
/// earlier, interrupted run already deleted it.
fn delete_converged<T, E, R>(
    call: &'static str,
    resource: &str,
    result: Result<T, Failure<SdkError<E, R>>>,
    gone: impl Fn(&E) -> bool,
) -> Result<(), DeployError>
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(()),
        Err(Failure::Fatal(e)) if e.as_service_error().is_some_and(gone) => Ok(()),
        Err(f) => Err(failure_error(call, resource, f)),
    }
}

/// 409s (another update in progress, or the function still pending) and throttling clear up
/// by themselves; everything else is a real failure.
macro_rules! transient {
    () => {
        |e: &SdkError<_, _>| transient!(e)
    };
    ($e:expr) => {
        $e.as_service_error().is_some_and(|s| {
            s.is_resource_conflict_exception() || s.is_too_many_requests_exception()
        })
    };
}

/// Right after CreateRole, Lambda refuses the new role for a few seconds with
/// `InvalidParameterValueException: The role defined for the function cannot be assumed by
/// Lambda.` AWS has no typed error for this case, only the message, so this one helper matches
/// the text.
fn is_role_propagation_error(err: &SdkError<CreateFunctionError, impl std::fmt::Debug>) -> bool {
    err.as_service_error().is_some_and(|e| {
        e.is_invalid_parameter_value_exception()
            && e.to_string()
                .contains("The role defined for the function cannot be assumed by Lambda")
    })
}

/// CreateFunction answers 409 `Function already exist` when a previous, interrupted run got
/// that far; the function is then brought up to date instead.
fn is_already_exists(err: &SdkError<CreateFunctionError, impl std::fmt::Debug>) -> bool {
    err.as_service_error().is_some_and(|e| {
        e.is_resource_conflict_exception() && e.to_string().contains("already exist")
    })
}

fn sdk_architecture(a: Architecture) -> SdkArchitecture {
    match a {
        Architecture::Arm64 => SdkArchitecture::Arm64,
        Architecture::X86_64 => SdkArchitecture::X8664,
    }
}

fn logging_config(f: &DesiredFunction) -> LoggingConfig {
    LoggingConfig::builder()
        .log_format(match f.log_format {
            LogFormat::Json => SdkLogFormat::Json,
            LogFormat::Text => SdkLogFormat::Text,
        })
        .build()
}

fn environment(f: &DesiredFunction) -> Environment {
    Environment::builder()
        .set_variables(Some(
            f.environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))
        .build()
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Executes a deploy plan against the desired state it was made from.
pub async fn apply(
    clients: &Clients,
    desired: &Desired,
    plan: &Plan,
    opts: &ApplyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ApplyReport, DeployError> {
    execute(clients, Some(desired), plan, opts, progress).await
}

/// Executes a destroy plan (see [`crate::plan::plan_destroy`]): functions, then tables, then
/// the role.
pub async fn destroy(
    clients: &Clients,
    plan: &Plan,
    opts: &ApplyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ApplyReport, DeployError> {
    execute(clients, None, plan, opts, progress).await
}

async fn execute(
    clients: &Clients,
    desired: Option<&Desired>,
    plan: &Plan,
    opts: &ApplyOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ApplyReport, DeployError> {
    let mut ctx = Ctx {
        clients,
        opts,
        progress,
        mutating_calls: AtomicU32::new(0),
        role_arn: plan.role_arn.clone(),
        role_name: desired.map(|d| d.role.name.clone()).unwrap_or_default(),
        role_created: false,
    };
    let mut done = Vec::new();
    let is = |c: &Change, kind: ResourceKind, delete: bool| {
        c.kind == kind && c.action != Action::NoOp && (c.action == Action::Delete) == delete
    };

    // The role comes first, because functions name it; then tables and their tenant data,
    // because functions read them from their first invocation. Deletes come last, functions
    // before the tables they read and the role they run as, so no function is ever left without
    // either.
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::Role, false))
    {
        apply_role(&mut ctx, desired, c).await?;
        done.push(c.clone());
    }
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::Table, false))
    {
        let logical = c.logical.clone().unwrap_or_default();
        let d = desired
            .and_then(|d| d.find_table(&logical))
            .ok_or_else(|| DeployError::NotInDesired {
                resource: c.resource.clone(),
                logical: logical.clone(),
            })?;
        apply_table(&ctx, d, c).await?;
        done.push(c.clone());
    }
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::Seed, false))
    {
        if let Some(desired) = desired {
            apply_seed(&ctx, desired, c).await?;
            done.push(c.clone());
        }
    }
    // Log groups before their functions, so the first invoke already logs with the retention.
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::LogGroup, false))
    {
        if let Some(desired) = desired {
            apply_log_group(&ctx, desired, c).await?;
            done.push(c.clone());
        }
    }
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::Function, false))
    {
        let logical = c.logical.clone().unwrap_or_default();
        let d = desired
            .and_then(|d| d.find_function(&logical))
            .ok_or_else(|| DeployError::NotInDesired {
                resource: c.resource.clone(),
                logical: logical.clone(),
            })?;
        apply_function(&ctx, d, c).await?;
        done.push(c.clone());
    }
    // REST APIs move onto the new functions (a replaced function's new slot) before any old
    // function is deleted, so the API keeps answering throughout.
    let api_urls = match desired {
        Some(desired) => apply_rest_apis(&ctx, desired, plan, &mut done).await?,
        None => BTreeMap::new(),
    };
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::RestApi, true))
    {
        if let Some(id) = plan.api_step(c).and_then(|s| s.api_id.as_deref()) {
            ctx.say(&format!("deleting {} ({})", c.resource, c.reason));
            delete_rest_api(&ctx, &c.resource, id).await?;
        }
        done.push(c.clone());
    }
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::Function, false) && c.action == Action::Replace)
    {
        if let Some(old) = &c.replaces {
            ctx.say(&format!("deleting function {old}, replaced by {}", c.name));
            delete_function(&ctx, old).await?;
        }
    }
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::Function, true))
    {
        ctx.say(&format!("deleting function {} ({})", c.name, c.reason));
        delete_function(&ctx, &c.name).await?;
        done.push(c.clone());
    }
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::LogGroup, true))
    {
        ctx.say(&format!("deleting log group {} ({})", c.name, c.reason));
        ctx.count();
        log_group::delete_log_group(ctx.clients, &c.name).await?;
        done.push(c.clone());
    }
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::Table, true))
    {
        ctx.say(&format!("deleting table {} ({})", c.name, c.reason));
        delete_table(&ctx, &c.name).await?;
        done.push(c.clone());
    }
    for c in plan
        .changes
        .iter()
        .filter(|c| is(c, ResourceKind::Role, true))
    {
        ctx.say(&format!("deleting role {}", c.name));
        delete_role(&ctx, c).await?;
        done.push(c.clone());
    }

    Ok(ApplyReport {
        changes: done,
        mutating_calls: ctx.mutating_calls.load(Ordering::Relaxed),
        api_urls,
    })
}

async fn apply_role(
    ctx: &mut Ctx<'_>,
    desired: Option<&Desired>,
    c: &Change,
) -> Result<(), DeployError> {
    let Some(desired) = desired else {
        return Ok(());
    };
    let role = &desired.role;
    let resource = format!("role {}", role.name);
    let iam = &ctx.clients.iam;
    if c.action == Action::Create {
        ctx.say(&format!("creating role {}", role.name));
        let mut req = iam
            .create_role()
            .role_name(&role.name)
            .assume_role_policy_document(LAMBDA_TRUST_POLICY)
            .description("Execution role of the functions of one deployer stage");
        for (k, v) in &role.tags {
            let tag = aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| DeployError::Call {
                    call: "CreateRole",
                    resource: resource.clone(),
                    message: e.to_string(),
                })?;
            req = req.tags(tag);
        }
        ctx.count();
        match req.send().await {
            Ok(out) => {
                ctx.role_arn = out.role().map(|r| r.arn().to_string());
                ctx.role_created = true;
            }
            // A previous, interrupted run created it: reuse it.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(CreateRoleError::EntityAlreadyExistsException(_))
                ) =>
            {
                let out = iam
                    .get_role()
                    .role_name(&role.name)
                    .send()
                    .await
                    .map_err(|e| DeployError::Call {
                        call: "GetRole",
                        resource: resource.clone(),
                        message: render(&e),
                    })?;
                ctx.role_arn = out.role().map(|r| r.arn().to_string());
            }
            Err(e) => {
                return Err(DeployError::Call {
                    call: "CreateRole",
                    resource,
                    message: render(&e),
                });
            }
        }
    } else {
        ctx.say(&format!("updating role {}", role.name));
    }

    let diff = c.role_diff.clone().unwrap_or_default();
    for arn in &diff.attach {
        ctx.count();
        iam.attach_role_policy()
            .role_name(&role.name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| DeployError::Call {
                call: "AttachRolePolicy",
                resource: format!("{resource} policy {arn}"),
                message: render(&e),
            })?;
    }
    for arn in &diff.detach {
        detach(ctx, &role.name, arn).await?;
    }
    for name in &diff.put {
        let Some(doc) = role.inline_policies.get(name) else {
            continue;
        };
        ctx.count();
        iam.put_role_policy()
            .role_name(&role.name)
            .policy_name(name)
            .policy_document(doc)
            .send()
            .await
            .map_err(|e| DeployError::Call {
                call: "PutRolePolicy",
                resource: format!("{resource} policy {name}"),
                message: render(&e),
            })?;
    }
    for name in &diff.delete {
        delete_inline(ctx, &role.name, name).await?;
    }
    Ok(())
}

async fn detach(ctx: &Ctx<'_>, role: &str, arn: &str) -> Result<(), DeployError> {
    ctx.count();
    match ctx
        .clients
        .iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(DeployError::Call {
            call: "DetachRolePolicy",
            resource: format!("role {role} policy {arn}"),
            message: render(&e),
        }),
    }
}

async fn delete_inline(ctx: &Ctx<'_>, role: &str, name: &str) -> Result<(), DeployError> {
    ctx.count();
    match ctx
        .clients
        .iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(DeployError::Call {
            call: "DeleteRolePolicy",
            resource: format!("role {role} policy {name}"),
            message: render(&e),
        }),
    }
}

async fn delete_role(ctx: &Ctx<'_>, c: &Change) -> Result<(), DeployError> {
    let diff = c.role_diff.clone().unwrap_or_default();
    for arn in &diff.detach {
        detach(ctx, &c.name, arn).await?;
    }
    for name in &diff.delete {
        delete_inline(ctx, &c.name, name).await?;
    }
    ctx.count();
    match ctx
        .clients
        .iam
        .delete_role()
        .role_name(&c.name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(DeployError::Call {
            call: "DeleteRole",
            resource: c.resource.clone(),
            message: render(&e),
        }),
    }
}

async fn apply_function(ctx: &Ctx<'_>, d: &DesiredFunction, c: &Change) -> Result<(), DeployError> {
    match c.action {
        Action::Create => {
            ctx.say(&format!("creating function {}", c.name));
            create_function(ctx, d, &c.name).await
        }
        Action::Replace => {
            ctx.say(&format!("creating function {} ({})", c.name, c.reason));
            // The old function is deleted by `execute` once the REST APIs point at this one.
            create_function(ctx, d, &c.name).await
        }
        Action::UpdateCode => {
            ctx.say(&format!("updating code of function {}", c.name));
            update_code(ctx, d, &c.name).await
        }
        Action::UpdateConfiguration => {
            ctx.say(&format!("updating configuration of function {}", c.name));
            update_configuration(ctx, d, &c.name).await
        }
        Action::UpdateCodeAndConfiguration => {
            ctx.say(&format!(
                "updating code and configuration of function {}",
                c.name
            ));
            update_code(ctx, d, &c.name).await?;
            update_configuration(ctx, d, &c.name).await
        }
        Action::NoOp | Action::Update | Action::Delete | Action::Seed => Ok(()),
    }
}

fn role_arn(ctx: &Ctx<'_>, name: &str) -> Result<String, DeployError> {
    ctx.role_arn
        .clone()
        .ok_or_else(|| DeployError::MissingRoleArn {
            function: format!("function {name}"),
            role: ctx.role_name.clone(),
        })
}

async fn create_function(
    ctx: &Ctx<'_>,
    d: &DesiredFunction,
    name: &str,
) -> Result<(), DeployError> {
    let resource = format!("function {name}");
    let role = role_arn(ctx, name)?;
    let result = retry(
        ctx.opts,
        || {
            let mut req = ctx
                .clients
                .lambda
                .create_function()
                .function_name(name)
                .runtime(Runtime::from(d.runtime.as_str()))
                .handler(&d.handler)
                .role(&role)
                .code(
                    FunctionCode::builder()
                        .zip_file(Blob::new(d.code.as_slice()))
                        .build(),
                )
                .memory_size(clamp_i32(d.memory_mb))
                .timeout(clamp_i32(d.timeout_s))
                .architectures(sdk_architecture(d.architecture))
                .environment(environment(d))
                .description(&d.description)
                .logging_config(logging_config(d))
                .set_tags(Some(
                    d.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                ));
            if d.tenancy == Tenancy::PerTenant {
                req = req.tenancy_config(
                    TenancyConfig::builder()
                        .tenant_isolation_mode(TenantIsolationMode::PerTenant)
                        .build()
                        .expect("tenant_isolation_mode is set"),
                );
            }
            ctx.count();
            req.send()
        },
        |e| {
            !is_already_exists(e)
                && (transient!(e) || (ctx.role_created && is_role_propagation_error(e)))
        },
    )
    .await;
    match result {
        Ok(_) => wait(ctx, name, Goal::Active).await,
        Err(Failure::Fatal(e)) if is_already_exists(&e) => {
            // An interrupted run created it; make it match instead.
            ctx.say(&format!("function {name} already exists, updating it"));
            wait(ctx, name, Goal::Active).await?;
            update_code(ctx, d, name).await?;
            update_configuration(ctx, d, name).await
        }
        Err(f) => Err(failure_error("CreateFunction", &resource, f)),
    }
}

async fn update_code(ctx: &Ctx<'_>, d: &DesiredFunction, name: &str) -> Result<(), DeployError> {
    let resource = format!("function {name}");
    retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(d.code.as_slice()))
                .architectures(sdk_architecture(d.architecture))
                .send()
        },
        transient!(),
    )
    .await
    .map_err(|f| failure_error("UpdateFunctionCode", &resource, f))?;
    wait(ctx, name, Goal::Updated).await
}

async fn update_configuration(
    ctx: &Ctx<'_>,
    d: &DesiredFunction,
    name: &str,
) -> Result<(), DeployError> {
    let resource = format!("function {name}");
    let role = role_arn(ctx, name)?;
    // TenancyConfig is deliberately absent: it cannot change after creation (a change is a
    // Replace), and UpdateFunctionConfiguration has no such member.
    retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .lambda
                .update_function_configuration()
                .function_name(name)
                .role(&role)
                .handler(&d.handler)
                .runtime(Runtime::from(d.runtime.as_str()))
                .memory_size(clamp_i32(d.memory_mb))
                .timeout(clamp_i32(d.timeout_s))
                .environment(environment(d))
                .description(&d.description)
                .logging_config(logging_config(d))
                .send()
        },
        transient!(),
    )
    .await
    .map_err(|f| failure_error("UpdateFunctionConfiguration", &resource, f))?;
    wait(ctx, name, Goal::Updated).await
}

async fn delete_function(ctx: &Ctx<'_>, name: &str) -> Result<(), DeployError> {
    let resource = format!("function {name}");
    let result = retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .lambda
                .delete_function()
                .function_name(name)
                .send()
        },
        transient!(),
    )
    .await;
    match result {
        Ok(_) => Ok(()),
        // Already gone: deleting converges.
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(f) => Err(failure_error("DeleteFunction", &resource, f)),
    }
}

#[derive(Debug, Clone, Copy)]
enum Goal {
    /// `State: Active`, after CreateFunction.
    Active,
    /// `LastUpdateStatus: Successful`, after an update.
    Updated,
}

impl Goal {
    fn describe(self) -> &'static str {
        match self {
            Goal::Active => "active",
            Goal::Updated => "updated",
        }
    }
}

/// Polls GetFunction until the function reaches `goal`: right away first, then at a growing
/// interval, for at most `wait_timeout`. Lambda refuses (409) any change to a function that is
/// still pending or mid-update, so every mutation waits here before the next one.
async fn wait(ctx: &Ctx<'_>, name: &str, goal: Goal) -> Result<(), DeployError> {
    let resource = format!("function {name}");
    let start = Instant::now();
    let mut delay = ctx.opts.poll_interval;
    let cap = ctx.opts.max_delay.max(ctx.opts.poll_interval);
    loop {
        let out = retry(
            ctx.opts,
            || ctx.clients.lambda.get_function().function_name(name).send(),
            |e: &SdkError<_, _>| {
                e.as_service_error()
                    .is_some_and(|s| s.is_too_many_requests_exception())
            },
        )
        .await
        .map_err(|f| failure_error("GetFunction", &resource, f))?;
        let conf = out.configuration().ok_or(DeployError::MissingField {
            call: "GetFunction",
            resource: resource.clone(),
            field: "Configuration",
        })?;
        let state = conf.state();
        let update = conf.last_update_status();
        let last_seen = format!(
            "state {}, last update {}",
            state.map(|s| s.as_str()).unwrap_or("unknown"),
            update.map(|s| s.as_str()).unwrap_or("unknown")
        );
        match goal {
            Goal::Active => match state {
                Some(State::Active) | None => return Ok(()),
                Some(State::Failed) => {
                    return Err(DeployError::FunctionFailed {
                        resource,
                        target: goal.describe(),
                        reason: conf.state_reason().unwrap_or("no reason given").to_string(),
                    });
                }
                _ => {}
            },
            Goal::Updated => match update {
                Some(LastUpdateStatus::Successful) | None => return Ok(()),
                Some(LastUpdateStatus::Failed) => {
                    return Err(DeployError::FunctionFailed {
                        resource,
                        target: goal.describe(),
                        reason: conf
                            .last_update_status_reason()
                            .or(conf.state_reason())
                            .unwrap_or("no reason given")
                            .to_string(),
                    });
                }
                _ => {}
            },
        }
        let elapsed = start.elapsed();
        if elapsed >= ctx.opts.wait_timeout {
            return Err(DeployError::WaitTimeout {
                call: "GetFunction",
                resource,
                target: goal.describe(),
                timeout: ctx.opts.wait_timeout,
                last_seen,
            });
        }
        ctx.say(&format!(
            "waiting for function {name} to become {} ({last_seen})",
            goal.describe()
        ));
        tokio::time::sleep(delay.min(ctx.opts.wait_timeout - elapsed)).await;
        delay = (delay * 2).min(cap);
    }
}

/// Creates a function's log group with the stage's retention, or changes its retention.
async fn apply_log_group(ctx: &Ctx<'_>, desired: &Desired, c: &Change) -> Result<(), DeployError> {
    let Some(days) = desired.log_retention_days else {
        return Ok(());
    };
    match c.action {
        Action::Create => {
            ctx.say(&format!(
                "creating log group {} ({})",
                c.name,
                log_group::describe_retention(Some(days))
            ));
            let tags = function_tags(
                &desired.app,
                &desired.stage,
                c.logical.as_deref().unwrap_or_default(),
            );
            let calls = log_group::create_log_group(ctx.clients, &c.name, days, &tags).await?;
            for _ in 0..calls {
                ctx.count();
            }
        }
        Action::Update => {
            ctx.say(&format!(
                "updating {} ({})",
                c.resource,
                c.details.join(", ")
            ));
            ctx.count();
            log_group::put_retention(ctx.clients, &c.name, days).await?;
        }
        _ => {}
    }
    Ok(())
}

fn build_error(call: &'static str, resource: &str, e: impl std::fmt::Display) -> DeployError {
    DeployError::Call {
        call,
        resource: resource.to_string(),
        message: e.to_string(),
    }
}

async fn apply_table(ctx: &Ctx<'_>, d: &DesiredTable, c: &Change) -> Result<(), DeployError> {
    match c.action {
        Action::Create => {
            ctx.say(&format!("creating table {}", d.name));
            create_table(ctx, d).await
        }
        Action::Replace => {
            ctx.say(&format!("deleting table {} ({})", d.name, c.reason));
            delete_table(ctx, &d.name).await?;
            wait_table(ctx, &d.name, TableGoal::Gone).await?;
            ctx.say(&format!("creating table {} again", d.name));
            create_table(ctx, d).await
        }
        Action::Update => {
            ctx.say(&format!("updating billing mode of table {}", d.name));
            let resource = format!("table {}", d.name);
            retry(
                ctx.opts,
                || {
                    ctx.count();
                    ctx.clients
                        .dynamodb
                        .update_table()
                        .table_name(&d.name)
                        .billing_mode(BillingMode::from(d.billing_mode.as_str()))
                        .send()
                },
                |e: &SdkError<_, _>| {
                    e.as_service_error().is_some_and(|s| {
                        s.is_resource_in_use_exception() || s.is_limit_exceeded_exception()
                    })
                },
            )
            .await
            .map_err(|f| failure_error("UpdateTable", &resource, f))?;
            wait_table(ctx, &d.name, TableGoal::Active).await
        }
        _ => Ok(()),
    }
}

async fn create_table(ctx: &Ctx<'_>, d: &DesiredTable) -> Result<(), DeployError> {
    let resource = format!("table {}", d.name);
    let call = "CreateTable";
    let mut attributes = Vec::new();
    let mut key_schema = Vec::new();
    let keys = std::iter::once((&d.key_schema.partition, KeyType::Hash))
        .chain(d.key_schema.sort.iter().map(|s| (s, KeyType::Range)));
    for (attribute, key_type) in keys {
        attributes.push(
            AttributeDefinition::builder()
                .attribute_name(&attribute.name)
                .attribute_type(ScalarAttributeType::from(attribute.kind.as_str()))
                .build()
                .map_err(|e| build_error(call, &resource, e))?,
        );
        key_schema.push(
            KeySchemaElement::builder()
                .attribute_name(&attribute.name)
                .key_type(key_type)
                .build()
                .map_err(|e| build_error(call, &resource, e))?,
        );
    }
    let mut tags = Vec::new();
    for (k, v) in &d.tags {
        tags.push(
            aws_sdk_dynamodb::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| build_error(call, &resource, e))?,
        );
    }
    let result = retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .dynamodb
                .create_table()
                .table_name(&d.name)
                .set_attribute_definitions(Some(attributes.clone()))
                .set_key_schema(Some(key_schema.clone()))
                .billing_mode(BillingMode::from(d.billing_mode.as_str()))
                .set_tags(Some(tags.clone()))
                .send()
        },
        |e: &SdkError<_, _>| {
            e.as_service_error()
                .is_some_and(|s| s.is_limit_exceeded_exception())
        },
    )
    .await;
    match result {
        Ok(_) => {}
        // An interrupted run created it already: waiting for it converges.
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            ctx.say(&format!("table {} already exists", d.name));
        }
        Err(f) => return Err(failure_error(call, &resource, f)),
    }
    wait_table(ctx, &d.name, TableGoal::Active).await
}

async fn delete_table(ctx: &Ctx<'_>, name: &str) -> Result<(), DeployError> {
    let resource = format!("table {name}");
    let result = retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients.dynamodb.delete_table().table_name(name).send()
        },
        // A table still being created or updated refuses deletion until it settles.
        |e: &SdkError<_, _>| {
            e.as_service_error().is_some_and(|s| {
                s.is_resource_in_use_exception() || s.is_limit_exceeded_exception()
            })
        },
    )
    .await;
    match result {
        Ok(_) => Ok(()),
        // Already gone: deleting converges.
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(f) => Err(failure_error("DeleteTable", &resource, f)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableGoal {
    /// `TableStatus: ACTIVE`, after CreateTable or UpdateTable.
    Active,
    /// DescribeTable answers not found, after DeleteTable: only then can the name be reused.
    Gone,
}

/// Polls DescribeTable until the table reaches `goal`, as [`wait`] does for functions. Right
/// after CreateTable, DescribeTable may still say not found; that counts as not yet active.
async fn wait_table(ctx: &Ctx<'_>, name: &str, goal: TableGoal) -> Result<(), DeployError> {
    let resource = format!("table {name}");
    let target = match goal {
        TableGoal::Active => "active",
        TableGoal::Gone => "deleted",
    };
    let start = Instant::now();
    let mut delay = ctx.opts.poll_interval;
    let cap = ctx.opts.max_delay.max(ctx.opts.poll_interval);
    loop {
        let last_seen = match ctx
            .clients
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
        {
            Ok(out) => {
                let status = out.table().and_then(|t| t.table_status());
                if goal == TableGoal::Active && matches!(status, Some(TableStatus::Active) | None) {
                    return Ok(());
                }
                format!("status {}", status.map(|s| s.as_str()).unwrap_or("unknown"))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                if goal == TableGoal::Gone {
                    return Ok(());
                }
                "not found".to_string()
            }
            Err(e) => {
                return Err(DeployError::Call {
                    call: "DescribeTable",
                    resource,
                    message: render(&e),
                });
            }
        };
        let elapsed = start.elapsed();
        if elapsed >= ctx.opts.wait_timeout {
            return Err(DeployError::WaitTimeout {
                call: "DescribeTable",
                resource,
                target,
                timeout: ctx.opts.wait_timeout,
                last_seen,
            });
        }
        ctx.say(&format!(
            "waiting for table {name} to be {target} ({last_seen})"
        ));
        tokio::time::sleep(delay.min(ctx.opts.wait_timeout - elapsed)).await;
        delay = (delay * 2).min(cap);
    }
}

/// BatchWriteItem takes at most 25 writes per call.
pub const MAX_BATCH_WRITE: usize = 25;

/// Writes one tenant's partition: puts for added and changed records, deletes for removed
/// ones, in batches of [`MAX_BATCH_WRITE`]. The data comes from the desired state, not the plan.
async fn apply_seed(ctx: &Ctx<'_>, desired: &Desired, c: &Change) -> Result<(), DeployError> {
    let Some(diff) = &c.seed_diff else {
        return Ok(());
    };
    let missing = |record: &str| DeployError::SeedNotInDesired {
        table: diff.table.clone(),
        tenant: diff.tenant.clone(),
        record: record.to_string(),
    };
    let records = desired
        .find_seed(&diff.table)
        .and_then(|s| s.partitions.get(&diff.tenant));
    let key = |record: &str| {
        [
            (
                PARTITION_KEY.to_string(),
                AttributeValue::S(diff.tenant.clone()),
            ),
            (SORT_KEY.to_string(), AttributeValue::S(record.to_string())),
        ]
    };
    let mut writes = Vec::new();
    for record in diff.add.iter().chain(&diff.change) {
        let data = records
            .and_then(|r| r.get(record))
            .ok_or_else(|| missing(record))?;
        let mut put = PutRequest::builder();
        for (k, v) in key(record) {
            put = put.item(k, v);
        }
        let put = put
            .item(DATA_ATTRIBUTE, AttributeValue::S(data.clone()))
            .build()
            .map_err(|e| build_error("BatchWriteItem", &c.resource, e))?;
        writes.push(WriteRequest::builder().put_request(put).build());
    }
    for record in &diff.remove {
        let mut delete = DeleteRequest::builder();
        for (k, v) in key(record) {
            delete = delete.key(k, v);
        }
        let delete = delete
            .build()
            .map_err(|e| build_error("BatchWriteItem", &c.resource, e))?;
        writes.push(WriteRequest::builder().delete_request(delete).build());
    }
    ctx.say(&format!("seeding {} ({})", c.resource, c.reason));
    for chunk in writes.chunks(MAX_BATCH_WRITE) {
        write_batch(ctx, &diff.table, &c.resource, chunk.to_vec()).await?;
    }
    Ok(())
}

/// Sends one batch, then resends whatever DynamoDB leaves in `UnprocessedItems` (it does so
/// under load instead of failing), backing off between attempts up to `max_attempts`.
async fn write_batch(
    ctx: &Ctx<'_>,
    table: &str,
    resource: &str,
    mut pending: Vec<WriteRequest>,
) -> Result<(), DeployError> {
    let max = ctx.opts.max_attempts.max(1);
    let mut delay = ctx.opts.base_delay;
    let mut attempt = 1;
    loop {
        ctx.count();
        let result = ctx
            .clients
            .dynamodb
            .batch_write_item()
            .request_items(table, pending.clone())
            .send()
            .await;
        let last_error = match result {
            Ok(out) => {
                let left = out
                    .unprocessed_items()
                    .and_then(|m| m.get(table))
                    .cloned()
                    .unwrap_or_default();
                if left.is_empty() {
                    return Ok(());
                }
                let message = format!("{} writes were left unprocessed", left.len());
                pending = left;
                message
            }
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_provisioned_throughput_exceeded_exception()
                        || s.is_request_limit_exceeded()
                        || s.is_throttling_exception()
                }) =>
            {
                render(&e)
            }
            Err(e) => {
                return Err(DeployError::Call {
                    call: "BatchWriteItem",
                    resource: resource.to_string(),
                    message: render(&e),
                });
            }
        };
        if attempt >= max {
            return Err(DeployError::RetriesExhausted {
                call: "BatchWriteItem",
                resource: resource.to_string(),
                attempts: attempt,
                last_error,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(ctx.opts.max_delay.max(ctx.opts.base_delay));
        attempt += 1;
    }
}

/// API Gateway throttles bursts of control-plane calls (DeleteRestApi especially); those clear
/// up by themselves, anything else is a real failure.
macro_rules! throttled {
    () => {
        |e: &SdkError<_, _>| {
            e.as_service_error()
                .is_some_and(|s| s.is_too_many_requests_exception())
        }
    };
}

/// The API changes of `plan` about API `api` of one kind that do something.
fn api_changes<'p>(
    plan: &'p Plan,
    api: &'p str,
    kind: ResourceKind,
) -> impl Iterator<Item = (&'p Change, &'p ApiStep)> + 'p {
    plan.changes
        .iter()
        .filter(move |c| c.kind == kind && c.action != Action::NoOp)
        .filter_map(move |c| Some((c, plan.api_step(c).filter(|s| s.api == api)?)))
}

/// Creates or updates every desired REST API: the API, then its routes (deletes first), then
/// the permissions of the functions it invokes, then a deployment to the stage if anything
/// about the routes changed. Returns every API's invoke URL.
async fn apply_rest_apis(
    ctx: &Ctx<'_>,
    desired: &Desired,
    plan: &Plan,
    done: &mut Vec<Change>,
) -> Result<BTreeMap<String, String>, DeployError> {
    let mut urls = BTreeMap::new();
    let mut arns = BTreeMap::new();
    let region = observe::region(ctx.clients);
    for c in plan
        .changes
        .iter()
        .filter(|c| c.kind == ResourceKind::RestApi && c.action != Action::Delete)
    {
        let Some(step) = plan.api_step(c) else {
            continue;
        };
        let ApiTarget::Api { resources } = &step.target else {
            continue;
        };
        let d = desired
            .find_rest_api(&step.api)
            .ok_or_else(|| DeployError::NotInDesired {
                resource: c.resource.clone(),
                logical: step.api.clone(),
            })?;
        let mut resources = resources.clone();
        let id = match (&step.api_id, c.action) {
            (Some(id), Action::NoOp) => id.clone(),
            _ => {
                ctx.say(&format!("creating {}", c.resource));
                let (id, created) = create_rest_api(ctx, d).await?;
                resources = created;
                done.push(c.clone());
                id
            }
        };
        // The routes need the authorizer's id: the one kept, or the one created now. A
        // replacement creates the new one first, so no method is ever left pointing at nothing.
        let mut authorizer_id = None;
        let mut stale_authorizers = Vec::new();
        for c in plan
            .changes
            .iter()
            .filter(|c| c.kind == ResourceKind::Authorizer)
        {
            let Some(s) = plan.api_step(c).filter(|s| s.api == d.logical) else {
                continue;
            };
            let ApiTarget::Authorizer {
                name,
                function,
                identity_source,
                id: existing,
            } = &s.target
            else {
                continue;
            };
            match (c.action, function) {
                (Action::NoOp, _) => authorizer_id = existing.clone(),
                (Action::Delete, _) => stale_authorizers.extend(existing.clone().map(|x| (c, x))),
                (_, Some(function)) => {
                    let arn = function_arn(ctx, &mut arns, function).await?;
                    ctx.say(&format!("creating {}", c.resource));
                    let new = create_authorizer(ctx, &id, name, &arn, identity_source).await?;
                    authorizer_id = Some(new);
                    stale_authorizers.extend(existing.clone().map(|x| (c, x)));
                    if c.action == Action::Create {
                        done.push(c.clone());
                    }
                }
                (_, None) => {}
            }
        }
        let mut deleted = BTreeSet::new();
        for (c, s) in api_changes(plan, &d.logical, ResourceKind::Route) {
            if c.action == Action::Delete {
                ctx.say(&format!("deleting {}", c.resource));
                delete_route(ctx, &id, s, &mut deleted).await?;
                done.push(c.clone());
            }
        }
        for (c, s) in api_changes(plan, &d.logical, ResourceKind::Route) {
            if c.action == Action::Delete {
                continue;
            }
            let ApiTarget::Route {
                method,
                path,
                function: Some(function),
                put_method,
                ..
            } = &s.target
            else {
                continue;
            };
            let route = d
                .find_route(method, path)
                .ok_or_else(|| DeployError::NotInDesired {
                    resource: c.resource.clone(),
                    logical: format!("{method} {path}"),
                })?;
            let arn = function_arn(ctx, &mut arns, function).await?;
            let verb = if c.action == Action::Create {
                "creating"
            } else {
                "updating"
            };
            ctx.say(&format!("{verb} {}", c.resource));
            let resource_id = ensure_resource(ctx, &id, &mut resources, path).await?;
            let put_method = c.action == Action::Create || *put_method;
            let target = RouteTarget {
                function_arn: &arn,
                authorizer_id: authorizer_id.as_deref(),
            };
            put_route(ctx, &id, &resource_id, route, target, put_method, c.action).await?;
            done.push(c.clone());
        }
        for (c, old) in stale_authorizers {
            ctx.say(&format!("deleting authorizer {old} of {}", c.resource));
            delete_authorizer(ctx, &id, &old, &c.resource).await?;
            done.push(c.clone());
        }
        for (c, s) in api_changes(plan, &d.logical, ResourceKind::Permission) {
            let ApiTarget::Permission { function } = &s.target else {
                continue;
            };
            let arn = function_arn(ctx, &mut arns, function).await?;
            ctx.say(&format!("adding {}", c.resource));
            add_permission(ctx, function, &arn, &id, false).await?;
            done.push(c.clone());
        }
        for (c, s) in api_changes(plan, &d.logical, ResourceKind::Permission) {
            let ApiTarget::AuthorizerPermission { function } = &s.target else {
                continue;
            };
            let arn = function_arn(ctx, &mut arns, function).await?;
            ctx.say(&format!("adding {}", c.resource));
            add_permission(ctx, function, &arn, &id, true).await?;
            done.push(c.clone());
        }
        for (c, s) in api_changes(plan, &d.logical, ResourceKind::Deployment) {
            let ApiTarget::Deployment { stage, routes } = &s.target else {
                continue;
            };
            ctx.say(&format!("creating {} ({})", c.resource, c.reason));
            create_deployment(ctx, &id, stage, routes, &c.resource).await?;
            done.push(c.clone());
        }
        let url = rest_api::invoke_url(&id, &region, &d.stage, ctx.clients.endpoint_url.as_deref());
        urls.insert(d.logical.clone(), url);
    }
    Ok(urls)
}

/// CreateRestApi (regional, tagged), returning its id and its root resource. An API with the
/// same name that a previous, interrupted run created is reused instead: API Gateway does not
/// refuse duplicate names, so that run's API is found by name.
async fn create_rest_api(
    ctx: &Ctx<'_>,
    d: &DesiredRestApi,
) -> Result<(String, BTreeMap<String, String>), DeployError> {
    use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType};
    let resource = format!("rest api {}", d.name);
    let result = retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .apigateway
                .create_rest_api()
                .name(&d.name)
                .description("REST API of one deployer stage")
                .endpoint_configuration(
                    EndpointConfiguration::builder()
                        .types(EndpointType::Regional)
                        .build(),
                )
                .set_tags(Some(
                    d.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                ))
                .send()
        },
        throttled!(),
    )
    .await;
    let (id, root) = match result {
        Ok(out) => (
            out.id().map(str::to_string),
            out.root_resource_id().map(str::to_string),
        ),
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_conflict_exception()) =>
        {
            ctx.say(&format!("{resource} already exists"));
            (find_rest_api(ctx, &d.name).await?, None)
        }
        Err(f) => return Err(failure_error("CreateRestApi", &resource, f)),
    };
    let id = id.ok_or_else(|| DeployError::MissingField {
        call: "CreateRestApi",
        resource: resource.clone(),
        field: "id",
    })?;
    let resources = match root {
        Some(root) => BTreeMap::from([("/".to_string(), root)]),
        None => read_resource_ids(ctx, &id, &resource).await?,
    };
    Ok((id, resources))
}

/// The id of the API named `name`, if one exists.
async fn find_rest_api(ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, DeployError> {
    let mut position: Option<String> = None;
    loop {
        let page = ctx
            .clients
            .apigateway
            .get_rest_apis()
            .limit(500)
            .set_position(position.clone())
            .send()
            .await
            .map_err(|e| DeployError::Call {
                call: "GetRestApis",
                resource: format!("rest api {name}"),
                message: render(&e),
            })?;
        if let Some(api) = page.items().iter().find(|a| a.name() == Some(name)) {
            return Ok(api.id().map(str::to_string));
        }
        match page.position() {
            Some(p) if !p.is_empty() && position.as_deref() != Some(p) => {
                position = Some(p.to_string());
            }
            _ => return Ok(None),
        }
    }
}

/// Path -> id of every resource of an API, as GetResources reports them now.
async fn read_resource_ids(
    ctx: &Ctx<'_>,
    api_id: &str,
    resource: &str,
) -> Result<BTreeMap<String, String>, DeployError> {
    let mut ids = BTreeMap::new();
    let mut position: Option<String> = None;
    loop {
        let page = ctx
            .clients
            .apigateway
            .get_resources()
            .rest_api_id(api_id)
            .limit(500)
            .set_position(position.clone())
            .send()
            .await
            .map_err(|e| DeployError::Call {
                call: "GetResources",
                resource: resource.to_string(),
                message: render(&e),
            })?;
        for r in page.items() {
            if let (Some(id), Some(path)) = (r.id(), r.path()) {
                ids.insert(path.to_string(), id.to_string());
            }
        }
        match page.position() {
            Some(p) if !p.is_empty() && position.as_deref() != Some(p) => {
                position = Some(p.to_string());
            }
            _ => return Ok(ids),
        }
    }
}

/// The id of the resource for `path`, creating it and any missing parent, one CreateResource
/// per path segment.
async fn ensure_resource(
    ctx: &Ctx<'_>,
    api_id: &str,
    resources: &mut BTreeMap<String, String>,
    path: &str,
) -> Result<String, DeployError> {
    let api = format!("rest api {api_id}");
    let mut parent = resources
        .get("/")
        .cloned()
        .ok_or_else(|| DeployError::MissingField {
            call: "GetResources",
            resource: api.clone(),
            field: "root resource `/`",
        })?;
    let mut current = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        current = format!("{current}/{part}");
        if let Some(id) = resources.get(&current) {
            parent = id.clone();
            continue;
        }
        let resource = format!("resource {current} of {api}");
        let result = retry(
            ctx.opts,
            || {
                ctx.count();
                ctx.clients
                    .apigateway
                    .create_resource()
                    .rest_api_id(api_id)
                    .parent_id(&parent)
                    .path_part(part)
                    .send()
            },
            throttled!(),
        )
        .await;
        let id = match result {
            Ok(out) => out.id().map(str::to_string),
            // An interrupted run created it: read its id.
            Err(Failure::Fatal(e))
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                *resources = read_resource_ids(ctx, api_id, &api).await?;
                resources.get(&current).cloned()
            }
            Err(f) => return Err(failure_error("CreateResource", &resource, f)),
        };
        let id = id.ok_or(DeployError::MissingField {
            call: "CreateResource",
            resource,
            field: "id",
        })?;
        resources.insert(current.clone(), id.clone());
        parent = id;
    }
    Ok(parent)
}

/// The ARN of a function by physical name, read once per apply: a function this run created
/// or replaced has no ARN in the plan.
async fn function_arn(
    ctx: &Ctx<'_>,
    cache: &mut BTreeMap<String, String>,
    name: &str,
) -> Result<String, DeployError> {
    if let Some(arn) = cache.get(name) {
        return Ok(arn.clone());
    }
    let resource = format!("function {name}");
    let out = retry(
        ctx.opts,
        || ctx.clients.lambda.get_function().function_name(name).send(),
        |e: &SdkError<_, _>| {
            e.as_service_error()
                .is_some_and(|s| s.is_too_many_requests_exception())
        },
    )
    .await
    .map_err(|f| failure_error("GetFunction", &resource, f))?;
    let arn = out
        .configuration()
        .and_then(|c| c.function_arn())
        .ok_or(DeployError::MissingField {
            call: "GetFunction",
            resource,
            field: "FunctionArn",
        })?
        .to_string();
    cache.insert(name.to_string(), arn.clone());
    Ok(arn)
}

/// PutMethod (when the method is new or its parameters changed) and PutIntegration, which
/// replaces the integration in place. API Gateway refuses PutMethod on an existing method, so
/// an update deletes it first; the deployed stage keeps serving its snapshot meanwhile.
async fn put_route(
    ctx: &Ctx<'_>,
    api_id: &str,
    resource_id: &str,
    route: &DesiredRoute,
    target: RouteTarget<'_>,
    put_method: bool,
    action: Action,
) -> Result<(), DeployError> {
    use aws_sdk_apigateway::types::IntegrationType;
    let function_arn = target.function_arn;
    let resource = format!("route {} {} of rest api {api_id}", route.method, route.path);
    let (authorization, authorizer_id) = match (route.authorized, target.authorizer_id) {
        (true, Some(id)) => (rest_api::CUSTOM, Some(id.to_string())),
        (true, None) => {
            return Err(DeployError::MissingField {
                call: "CreateAuthorizer",
                resource,
                field: "id of the tenant authorizer",
            });
        }
        (false, _) => ("NONE", None),
    };
    if put_method && action == Action::Update {
        delete_method(ctx, api_id, resource_id, &route.method, &resource).await?;
    }
    if put_method {
        let result = retry(
            ctx.opts,
            || {
                ctx.count();
                ctx.clients
                    .apigateway
                    .put_method()
                    .rest_api_id(api_id)
                    .resource_id(resource_id)
                    .http_method(&route.method)
                    .authorization_type(authorization)
                    .set_authorizer_id(authorizer_id.clone())
                    .set_request_parameters(Some(
                        route
                            .method_parameters
                            .iter()
                            .map(|(k, v)| (k.clone(), *v))
                            .collect(),
                    ))
                    .send()
            },
            throttled!(),
        )
        .await;
        match result {
            Ok(_) => {}
            // An interrupted run put it already; the next observe checks its parameters.
            Err(Failure::Fatal(e))
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) => {}
            Err(f) => return Err(failure_error("PutMethod", &resource, f)),
        }
    }
    retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .apigateway
                .put_integration()
                .rest_api_id(api_id)
                .resource_id(resource_id)
                .http_method(&route.method)
                .r#type(IntegrationType::AwsProxy)
                .integration_http_method(rest_api::INTEGRATION_METHOD)
                .uri(rest_api::integration_uri(function_arn))
                .set_request_parameters(Some(
                    route
                        .integration_parameters
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ))
                .send()
        },
        throttled!(),
    )
    .await
    .map_err(|f| failure_error("PutIntegration", &resource, f))?;
    Ok(())
}

async fn delete_method(
    ctx: &Ctx<'_>,
    api_id: &str,
    resource_id: &str,
    method: &str,
    resource: &str,
) -> Result<(), DeployError> {
    let result = retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .apigateway
                .delete_method()
                .rest_api_id(api_id)
                .resource_id(resource_id)
                .http_method(method)
                .send()
        },
        throttled!(),
    )
    .await;
    delete_converged(
        "DeleteMethod",
        resource,
        result,
        aws_sdk_apigateway::operation::delete_method::DeleteMethodError::is_not_found_exception,
    )
}

/// Removes a route: its method, or the topmost resource no route needs any more (once per
/// apply, with everything under it).
async fn delete_route(
    ctx: &Ctx<'_>,
    api_id: &str,
    step: &ApiStep,
    deleted: &mut BTreeSet<String>,
) -> Result<(), DeployError> {
    let ApiTarget::Route {
        method,
        path,
        resource_id,
        delete_resource,
        ..
    } = &step.target
    else {
        return Ok(());
    };
    let resource = format!("route {method} {path} of rest api {api_id}");
    if let Some(top) = delete_resource {
        if !deleted.insert(top.clone()) {
            return Ok(());
        }
        let result = retry(
            ctx.opts,
            || {
                ctx.count();
                ctx.clients
                    .apigateway
                    .delete_resource()
                    .rest_api_id(api_id)
                    .resource_id(top)
                    .send()
            },
            throttled!(),
        )
        .await;
        return delete_converged(
"DeleteResource",
&resource,
result,
aws_sdk_apigateway::operation::delete_resource::DeleteResourceError::is_not_found_exception,
);
    }
    match resource_id {
        Some(resource_id) => delete_method(ctx, api_id, resource_id, method, &resource).await,
        None => Ok(()),
    }
}

/// Lets API `api_id` invoke the function, on every stage, method and path of that API only;
/// or, for the API's authorizers (`authorizer`), from any authorizer of that API only.
async fn add_permission(
    ctx: &Ctx<'_>,
    function: &str,
    function_arn: &str,
    api_id: &str,
    authorizer: bool,
) -> Result<(), DeployError> {
    let resource = format!("function {function}");
    let (region, account) = (
        rest_api::arn_field(function_arn, 3),
        rest_api::arn_field(function_arn, 4),
    );
    let (source, statement) = if authorizer {
        (
            rest_api::authorizer_source_arn(region, account, api_id),
            rest_api::authorizer_statement_id(api_id),
        )
    } else {
        (
            rest_api::source_arn(region, account, api_id),
            rest_api::statement_id(api_id),
        )
    };
    let exists =
        |e: &SdkError<aws_sdk_lambda::operation::add_permission::AddPermissionError, _>| {
            e.as_service_error().is_some_and(|s| {
                s.is_resource_conflict_exception() && s.to_string().contains("already exists")
            })
        };
    let result = retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .lambda
                .add_permission()
                .function_name(function)
                .statement_id(&statement)
                .action("lambda:InvokeFunction")
                .principal(rest_api::APIGATEWAY_PRINCIPAL)
                .source_arn(&source)
                .send()
        },
        |e| !exists(e) && transient!(e),
    )
    .await;
    match result {
        Ok(_) => Ok(()),
        // The statement names the API, so an existing one is this very permission.
        Err(Failure::Fatal(e)) if exists(&e) => Ok(()),
        Err(f) => Err(failure_error("AddPermission", &resource, f)),
    }
}

/// What a route's method and integration point at, resolved at apply time.
#[derive(Clone, Copy)]
struct RouteTarget<'a> {
    function_arn: &'a str,
    /// The tenant authorizer's id, when the API has one.
    authorizer_id: Option<&'a str>,
}

/// CreateAuthorizer: a TOKEN authorizer invoking `function_arn`, returning its id.
async fn create_authorizer(
    ctx: &Ctx<'_>,
    api_id: &str,
    name: &str,
    function_arn: &str,
    identity_source: &str,
) -> Result<String, DeployError> {
    use aws_sdk_apigateway::types::AuthorizerType;
    let resource = format!("authorizer {name} of rest api {api_id}");
    let out = retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .apigateway
                .create_authorizer()
                .rest_api_id(api_id)
                .name(name)
                .r#type(AuthorizerType::Token)
                .authorizer_uri(rest_api::integration_uri(function_arn))
                .identity_source(identity_source)
                .send()
        },
        throttled!(),
    )
    .await
    .map_err(|f| failure_error("CreateAuthorizer", &resource, f))?;
    out.id()
        .map(str::to_string)
        .ok_or(DeployError::MissingField {
            call: "CreateAuthorizer",
            resource,
            field: "id",
        })
}

async fn delete_authorizer(
    ctx: &Ctx<'_>,
    api_id: &str,
    authorizer_id: &str,
    resource: &str,
) -> Result<(), DeployError> {
    let result = retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .apigateway
                .delete_authorizer()
                .rest_api_id(api_id)
                .authorizer_id(authorizer_id)
                .send()
        },
        throttled!(),
    )
    .await;
    delete_converged(
"DeleteAuthorizer",
resource,
result,
aws_sdk_apigateway::operation::delete_authorizer::DeleteAuthorizerError::is_not_found_exception,
)
}

async fn create_deployment(
    ctx: &Ctx<'_>,
    api_id: &str,
    stage: &str,
    routes: &str,
    resource: &str,
) -> Result<(), DeployError> {
    retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .apigateway
                .create_deployment()
                .rest_api_id(api_id)
                .stage_name(stage)
                .description("deployed by the deployer")
                .variables(rest_api::ROUTES_VARIABLE, routes)
                .send()
        },
        throttled!(),
    )
    .await
    .map_err(|f| failure_error("CreateDeployment", resource, f))?;
    Ok(())
}

async fn delete_rest_api(ctx: &Ctx<'_>, resource: &str, api_id: &str) -> Result<(), DeployError> {
    let result = retry(
        ctx.opts,
        || {
            ctx.count();
            ctx.clients
                .apigateway
                .delete_rest_api()
                .rest_api_id(api_id)
                .send()
        },
        throttled!(),
    )
    .await;
    delete_converged(
        "DeleteRestApi",
        resource,
        result,
        aws_sdk_apigateway::operation::delete_rest_api::DeleteRestApiError::is_not_found_exception,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI may run apply on a multi-threaded runtime or spawn it; that needs a `Send` future.
    #[allow(dead_code)]
    fn futures_are_send(c: &Clients, d: &Desired, p: &Plan, o: &ApplyOptions) {
        fn send<T: Send>(_: T) {}
        send(apply(c, d, p, o, &|_| {}));
        send(destroy(c, p, o, &|_| {}));
        send(crate::observe::observe(c, "app", "stage"));
        send(crate::observe::observe_stage(c, d));
        send(crate::observe::observe_seeds(c, d, None));
        send(crate::invoke::invoke(c, "f", None, Vec::new(), false));
    }
}
