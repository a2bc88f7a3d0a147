//! What every apply step shares: the options bounding retries and waits, the context steps run
//! in (clients, progress, what earlier steps learnt), and the helpers that turn SDK results into
//! [`DeployError`]s.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_lambda::error::SdkError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::clients::{Clients, Verdict, counted, verdict};
use crate::error::{DeployError, said};

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
    /// Retryable, but the bound was hit after `attempts` over `elapsed`.
    Exhausted {
        attempts: u32,
        elapsed: Duration,
        last: E,
    },
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
    let started = Instant::now();
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if !retryable(&e) => return Err(Failure::Fatal(e)),
            Err(e) if attempt >= max => {
                return Err(Failure::Exhausted {
                    attempts: attempt,
                    elapsed: started.elapsed(),
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

/// The error of a call that failed for `resource`: what AWS said, with the SDK's error kept
/// as its source.
pub fn call_error<E>(
    call: &'static str,
    resource: &str,
    err: SdkError<E, HttpResponse>,
) -> DeployError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    // Read before anything else is awaited: the numbers of the call that just failed.
    let (attempts, elapsed) = crate::clients::last_call();
    if attempts > 1 && gave_up(&err) {
        return DeployError::RetriesExhausted {
            call,
            resource: resource.to_string(),
            attempts,
            elapsed,
            last_error: said(&err),
            source: Some(Box::new(err)),
        };
    }
    DeployError::Call {
        call,
        resource: resource.to_string(),
        message: said(&err),
        source: Some(Box::new(err)),
    }
}

pub fn failure_error<E>(
    call: &'static str,
    resource: &str,
    failure: Failure<SdkError<E, HttpResponse>>,
) -> DeployError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    match failure {
        Failure::Fatal(e) => call_error(call, resource, e),
        Failure::Exhausted {
            attempts,
            elapsed,
            last,
        } => DeployError::RetriesExhausted {
            call,
            resource: resource.to_string(),
            attempts,
            elapsed,
            last_error: said(&last),
            source: Some(Box::new(last)),
        },
    }
}

/// The result of a delete, which converges: what `gone` recognises as "not found" means an
/// earlier, interrupted run already deleted it.
pub fn delete_converged<T, E>(
    call: &'static str,
    resource: &str,
    result: Result<T, Failure<SdkError<E, HttpResponse>>>,
    gone: impl Fn(&E) -> bool,
) -> Result<(), DeployError>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
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
        source: None,
    }
}

/// Sends a request (its retries are the clients' policy) and sorts the error: one the policy
/// retries until it gave up is [`Failure::Exhausted`], with the attempts it took and how long,
/// anything else [`Failure::Fatal`].
pub async fn sent<T, E>(
    _ctx: &Ctx<'_>,
    request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, Failure<SdkError<E, HttpResponse>>>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let started = Instant::now();
    let (result, attempts) = counted(request).await;
    result.map_err(|e| {
        if attempts > 1 && gave_up(&e) {
            Failure::Exhausted {
                attempts,
                elapsed: started.elapsed(),
                last: e,
            }
        } else {
            Failure::Fatal(e)
        }
    })
}

/// Whether the clients' retry policy retries this error (throttling, a conflict that clears,
/// a 5xx, no answer, a cut connection): it reaches the caller only once the policy gave up.
fn gave_up<E>(e: &SdkError<E, HttpResponse>) -> bool
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    verdict(e) != Verdict::Fatal
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
                elapsed: Duration::ZERO,
                last: e,
            }
        }
        other => other,
    }
}

/// Creates something whose failure may hide a success (the call was applied but its answer
/// lost), without ever making two: `send` sends once, with the SDK's retry off for it. A
/// refusal (throttling, a conflict) is sent again after a backoff; an ambiguous failure (no
/// answer, a cut connection, a 5xx) first runs `find`, which looks for what the call would have
/// made (by name, tag or a token the request carried), and adopts it when found. Bounded by the
/// clients' retry policy: its attempts, backoff and total time per call.
///
/// The outer error is `find`'s; the inner one is the create's, for the caller to sort (an
/// "already exists" answer, say) or report.
pub async fn create_observed<T, E, Fut, FindFut>(
    ctx: &Ctx<'_>,
    what: &str,
    mut send: impl FnMut() -> Fut,
    mut find: impl FnMut() -> FindFut,
) -> Result<Result<T, Failure<SdkError<E, HttpResponse>>>, DeployError>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    FindFut: Future<Output = Result<Option<T>, DeployError>>,
{
    let retries = ctx.clients.retries;
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let e = match send().await {
            Ok(v) => return Ok(Ok(v)),
            Err(e) => e,
        };
        match verdict(&e) {
            Verdict::Fatal => return Ok(Err(Failure::Fatal(e))),
            Verdict::Ambiguous => {
                if let Some(found) = find().await? {
                    ctx.say(&format!(
                        "{what}: the answer was lost ({}), but it was made; using it",
                        said(&e)
                    ));
                    return Ok(Ok(found));
                }
            }
            Verdict::Refused => {}
        }
        if attempt >= retries.max_attempts.max(1) || started.elapsed() >= retries.total_timeout {
            return Ok(Err(Failure::Exhausted {
                attempts: attempt,
                elapsed: started.elapsed(),
                last: e,
            }));
        }
        tokio::time::sleep(retries.backoff(attempt)).await;
    }
}
