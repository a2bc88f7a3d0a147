//! What every apply step shares: the options bounding retries and waits, the context steps run
//! in (clients, progress, what earlier steps learnt), and the helpers that turn SDK results into
//! [`DeployError`]s.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_lambda::error::SdkError;

use crate::clients::Clients;
use crate::error::{DeployError, render};

/// Bounds on retries, waits and concurrency.
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
    /// How many independent steps run at once (`--parallelism`, like terraform's).
    pub parallelism: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_millis(500),
            parallelism: 10,
        }
    }
}

/// The context apply steps run in: shared by steps running at once, so what one learns (the
/// role's ARN, a function's ARN) is behind a lock.
pub struct Ctx<'a> {
    pub clients: &'a Clients,
    pub opts: &'a ApplyOptions,
    progress: &'a (dyn Fn(&str) + Sync),
    /// The clients' mutating-call count when this apply started.
    calls_before: u32,
    /// The execution role's ARN: observed, or learnt when this run creates the role.
    role_arn: Mutex<Option<String>>,
    pub role_name: String,
    /// Set when this run created the role; only then is the IAM propagation error retried.
    role_created: AtomicBool,
    /// Function ARNs by physical name, read once per apply.
    arns: Mutex<BTreeMap<String, String>>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        clients: &'a Clients,
        opts: &'a ApplyOptions,
        progress: &'a (dyn Fn(&str) + Sync),
        role_name: String,
        role_arn: Option<String>,
    ) -> Self {
        Ctx {
            clients,
            opts,
            progress,
            calls_before: clients.mutating_calls.get(),
            role_arn: Mutex::new(role_arn),
            role_name,
            role_created: AtomicBool::new(false),
            arns: Mutex::new(BTreeMap::new()),
        }
    }

    /// The mutating requests sent since this apply started, retries included, as the clients'
    /// interceptor counted them.
    pub fn mutating_calls(&self) -> u32 {
        self.clients
            .mutating_calls
            .get()
            .saturating_sub(self.calls_before)
    }

    pub fn say(&self, message: &str) {
        (self.progress)(message);
    }

    pub fn set_role(&self, arn: Option<String>, created: bool) {
        *self.role_arn.lock().expect("role lock") = arn;
        if created {
            self.role_created.store(true, Ordering::Relaxed);
        }
    }

    pub fn role_created(&self) -> bool {
        self.role_created.load(Ordering::Relaxed)
    }

    /// The role ARN functions are created and updated with.
    pub fn role_arn(&self, function: &str) -> Result<String, DeployError> {
        self.role_arn
            .lock()
            .expect("role lock")
            .clone()
            .ok_or_else(|| DeployError::MissingRoleArn {
                function: format!("function {function}"),
                role: self.role_name.clone(),
            })
    }

    pub fn cached_arn(&self, function: &str) -> Option<String> {
        self.arns.lock().expect("arn lock").get(function).cloned()
    }

    pub fn cache_arn(&self, function: &str, arn: &str) {
        self.arns
            .lock()
            .expect("arn lock")
            .insert(function.to_string(), arn.to_string());
    }
}

/// How a retried call ended when it did not succeed.
pub enum Failure<E> {
    /// Not retryable: the caller decides what it means.
    Fatal(E),
    /// Retryable, but the bound was hit.
    Exhausted { attempts: u32, last: E },
}

/// Runs `call` until it succeeds, fails with an error `retryable` rejects, or the attempt bound
/// is hit, sleeping with exponential backoff between attempts.
pub async fn retry<T, E, F, Fut>(
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

/// The error of a call that failed for `resource`.
pub fn call_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
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

pub fn failure_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    call: &'static str,
    resource: &str,
    failure: Failure<SdkError<E, R>>,
) -> DeployError {
    match failure {
        Failure::Fatal(e) => call_error(call, resource, e),
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
pub fn delete_converged<T, E, R>(
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

/// A request that could not even be built (a required field missing).
pub fn build_error(call: &'static str, resource: &str, e: impl std::fmt::Display) -> DeployError {
    DeployError::Call {
        call,
        resource: resource.to_string(),
        message: e.to_string(),
    }
}

/// Sends a request (its retries are the clients' policy) and sorts the error: one the policy
/// retries until it gave up is [`Failure::Exhausted`], anything else [`Failure::Fatal`].
pub async fn sent<T, E, R>(
    ctx: &Ctx<'_>,
    request: impl Future<Output = Result<T, SdkError<E, R>>>,
) -> Result<T, Failure<SdkError<E, R>>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    request.await.map_err(|e| settle(ctx, Failure::Fatal(e)))
}

/// Marks an error the clients' retry policy retries as [`Failure::Exhausted`]: it only
/// reaches the caller once every attempt was used.
pub fn settle<E, R>(ctx: &Ctx<'_>, failure: Failure<SdkError<E, R>>) -> Failure<SdkError<E, R>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match failure {
        Failure::Fatal(e)
            if e.as_service_error()
                .is_some_and(|s| crate::clients::is_retried(s)) =>
        {
            Failure::Exhausted {
                attempts: ctx.clients.max_attempts,
                last: e,
            }
        }
        other => other,
    }
}
