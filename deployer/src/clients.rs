//! The SDK clients the deployer talks through, built once at the edge and passed in, with the
//! deployer's one retry policy and the interceptor that counts mutating calls installed on
//! every client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_lambda::config::retry::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, Error,
    FinalizerInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

/// One client per service, and the endpoint they all call when it is not AWS's.
#[derive(Debug, Clone)]
pub struct Clients {
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    /// Secrets Manager, for the stage's signing keys ([`crate::signing_key`]).
    pub secrets: aws_sdk_secretsmanager::Client,
    /// CloudTrail, for the stage's data-events store ([`crate::trail`]); `None` for clients
    /// that never read or write one (mocked clients that do not mock CloudTrail).
    pub cloudtrail: Option<aws_sdk_cloudtrail::Client>,
    /// The endpoint every call goes to when it is not AWS's (an emulator): REST API invoke URLs
    /// are then paths on it. The SDK's service configs do not expose it, so it is kept here.
    pub endpoint_url: Option<String>,
    /// Every mutating request these clients sent, retries included.
    pub mutating_calls: MutatingCalls,
    /// The attempts per call the retry policy allows, the first included.
    pub max_attempts: u32,
    /// The retry policy every client has.
    pub retries: Retries,
}

/// The deployer's one retry policy, configured on every client once: the SDK's standard retry
/// (throttling, transient and 5xx errors, dropped connections and timeouts, with exponential
/// backoff and full jitter) plus [`Conflicts`], with a cap on the total time of each call. Each
/// client gets a retry partition of its own, so one deploy's retries never drain another's
/// quota. The SDK's adaptive mode is off by default: its client-side rate limiter, once
/// throttled, charges every request a token and every retry five against a refill rate derived
/// from the deployer's own few calls a second (at least 0.5 a second), so a throttled deploy
/// spent most of its time waiting for tokens rather than on AWS (measured in
/// `tests/examples/fault_drills.rs`); the exponential backoff with full jitter is what spreads
/// retries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// The most one call may take, every attempt and backoff included.
    pub total_timeout: Duration,
    /// Whether throttling also slows the client's sending rate (the SDK's adaptive mode, off by
    /// default: see above).
    pub adaptive: bool,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            max_attempts: 12,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            total_timeout: Duration::from_secs(180),
            adaptive: false,
        }
    }
}

impl Retries {
    /// The default policy, adaptive when `config`'s retry mode (from the environment or the
    /// profile) is adaptive.
    pub fn for_config(config: &aws_config::SdkConfig) -> Retries {
        let adaptive = config
            .retry_config()
            .is_some_and(|r| r.mode() == aws_smithy_types::retry::RetryMode::Adaptive);
        Retries {
            adaptive,
            ..Retries::default()
        }
    }

    fn config(&self) -> RetryConfig {
        let base = if self.adaptive {
            RetryConfig::adaptive()
        } else {
            RetryConfig::standard()
        };
        base.with_max_attempts(self.max_attempts.max(1))
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff.max(self.initial_backoff))
    }

    /// The backoff before retry number `retry` (1 for the first): full jitter over an
    /// exponentially growing ceiling, as the SDK's standard retry computes it.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_backoff.max(self.initial_backoff));
        ceiling.mul_f64(jitter())
    }
}

/// A random number, from the standard library's randomly keyed hasher.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// A random fraction in `[0, 1)`.
fn jitter() -> f64 {
    (random() >> 11) as f64 / (1u64 << 53) as f64
}

/// A random token (16 hex digits) that marks one request, so its effect can be recognised.
pub fn token() -> String {
    format!("{:016x}", random())
}

/// The partition a client's retries draw from: its own token bucket, large enough for a deploy
/// of thousands of calls at a high fault rate, and its own adaptive rate limiter (when on).
fn partition(service: &'static str) -> RetryPartition {
    RetryPartition::custom(service)
        .token_bucket(TokenBucket::builder().capacity(50_000).build())
        .build()
}

tokio::task_local! {
    /// The attempts of the call being counted by [`counted`].
    static ATTEMPTS: std::cell::Cell<u32>;
}

/// Runs one SDK call and returns its result with the number of attempts it took, retries
/// included.
pub async fn counted<F: std::future::Future>(call: F) -> (F::Output, u32) {
    ATTEMPTS
        .scope(std::cell::Cell::new(0), async move {
            let out = call.await;
            (out, ATTEMPTS.with(std::cell::Cell::get))
        })
        .await
}

/// Counts each call's attempts and time: for [`counted`], and for [`last_call`].
#[derive(Debug, Clone, Copy, Default)]
struct Attempts;

/// When a call started and how many attempts it sent so far, kept in the call's config bag.
#[derive(Debug, Clone, Copy)]
struct CallRecord {
    started: Instant,
    attempts: u32,
}

impl Storable for CallRecord {
    type Storer = StoreReplace<CallRecord>;
}

thread_local! {
    /// The attempts and time of the last call this thread finished.
    static LAST_CALL: std::cell::Cell<(u32, Duration)> =
        const { std::cell::Cell::new((0, Duration::ZERO)) };
}

/// The attempts and time of the call whose result the caller holds: an SDK call's last hook
/// runs in the same poll that hands its result to the awaiting code, so code that reads this
/// right after the `.await`, before awaiting anything else, reads its own call's numbers.
pub fn last_call() -> (u32, Duration) {
    LAST_CALL.with(std::cell::Cell::get)
}

impl Intercept for Attempts {
    fn name(&self) -> &'static str {
        "Attempts"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(CallRecord {
            started: Instant::now(),
            attempts: 0,
        });
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let _ = ATTEMPTS.try_with(|n| n.set(n.get() + 1));
        if let Some(mut record) = cfg.load::<CallRecord>().copied() {
            record.attempts += 1;
            cfg.interceptor_state().store_put(record);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(record) = cfg.load::<CallRecord>() {
            let numbers = (record.attempts, record.started.elapsed());
            LAST_CALL.with(|c| c.set(numbers));
        }
        Ok(())
    }
}

/// A shared count of mutating requests (anything but reads and invokes), counted by an
/// interceptor on every attempt, so it is exact even when a call or a whole apply fails.
#[derive(Debug, Clone, Default)]
pub struct MutatingCalls(Arc<AtomicU32>);

impl MutatingCalls {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether an operation changes something. Reads are named `Get`, `List`, `Describe`, `Query`,
/// `Scan`, `BatchGet` or `Filter` across the services the deployer uses; `Invoke` runs a
/// function and changes no resource.
pub fn is_mutating(operation: &str) -> bool {
    const READS: &[&str] = &[
        "Get", "List", "Describe", "Query", "Scan", "BatchGet", "Filter", "Invoke",
    ];
    !READS.iter().any(|p| operation.starts_with(p))
}

impl Intercept for MutatingCalls {
    fn name(&self) -> &'static str {
        "MutatingCalls"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg
            .load::<Metadata>()
            .is_some_and(|m| is_mutating(m.name()))
        {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Retries what the SDK's standard classifiers leave alone but that clears up by itself: a
/// connection dropped before its answer came (whatever the HTTP client calls it), 409
/// `ResourceConflictException` from Lambda (another update in progress, a function still
/// pending) and DynamoDB's `ResourceInUseException` on a table that is still changing; and, by
/// their typed predicates, throttling errors whose code an emulator may leave out. A conflict
/// that means "already exists" is not retried: apply converges on it instead.
#[derive(Debug, Default, Clone, Copy)]
pub struct Conflicts;

/// Lambda words "exists" into the 409 of CreateFunction and AddPermission; AWS has no typed
/// error for it, so this one helper matches the text.
pub fn says_already_exists(message: &str) -> bool {
    message.contains("already exist")
}

/// A way to look at an error as one of the SDK's operation error types.
trait Downcast {
    fn get<T: std::error::Error + Send + Sync + 'static>(&self) -> Option<&T>;
}

impl Downcast for Error {
    fn get<T: std::error::Error + Send + Sync + 'static>(&self) -> Option<&T> {
        self.downcast_ref::<T>()
    }
}

struct Typed<'a>(&'a dyn std::any::Any);

impl Downcast for Typed<'_> {
    fn get<T: std::error::Error + Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

/// Whether the retry policy retries this operation error (see [`Conflicts`]).
pub fn is_retried<E: std::error::Error + Send + Sync + 'static>(err: &E) -> bool {
    retryable(&Typed(err))
}

fn retryable(err: &impl Downcast) -> bool {
    use aws_sdk_apigateway::operation as apigw;
    use aws_sdk_dynamodb::operation as ddb;
    use aws_sdk_lambda::operation as lambda;
    macro_rules! conflict_or_throttled {
        ($($t:ty),* $(,)?) => {$(
            if let Some(e) = err.get::<$t>() {
                return (e.is_resource_conflict_exception() && !says_already_exists(&e.to_string()))
                    || e.is_too_many_requests_exception();
            }
        )*};
    }
    conflict_or_throttled!(
        lambda::create_function::CreateFunctionError,
        lambda::update_function_code::UpdateFunctionCodeError,
        lambda::update_function_configuration::UpdateFunctionConfigurationError,
        lambda::delete_function::DeleteFunctionError,
        lambda::add_permission::AddPermissionError,
    );
    if let Some(e) = err.get::<lambda::get_function::GetFunctionError>() {
        return e.is_too_many_requests_exception();
    }
    macro_rules! throttled {
        ($($t:ty),* $(,)?) => {$(
            if let Some(e) = err.get::<$t>() {
                return e.is_too_many_requests_exception();
            }
        )*};
    }
    throttled!(
        apigw::create_rest_api::CreateRestApiError,
        apigw::create_resource::CreateResourceError,
        apigw::put_method::PutMethodError,
        apigw::put_integration::PutIntegrationError,
        apigw::delete_method::DeleteMethodError,
        apigw::delete_resource::DeleteResourceError,
        apigw::create_authorizer::CreateAuthorizerError,
        apigw::delete_authorizer::DeleteAuthorizerError,
        apigw::create_deployment::CreateDeploymentError,
        apigw::delete_rest_api::DeleteRestApiError,
    );
    if let Some(e) = err.get::<ddb::update_table::UpdateTableError>() {
        return e.is_resource_in_use_exception() || e.is_limit_exceeded_exception();
    }
    if let Some(e) = err.get::<ddb::delete_table::DeleteTableError>() {
        return e.is_resource_in_use_exception() || e.is_limit_exceeded_exception();
    }
    if let Some(e) = err.get::<ddb::create_table::CreateTableError>() {
        return e.is_limit_exceeded_exception();
    }
    false
}

impl ClassifyRetry for Conflicts {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(e)) if e.as_operation_error().is_some_and(retryable) => {
                RetryAction::transient_error()
            }
            // A connection closed before its answer was complete: the SDK's own classifier
            // retries only I/O errors and timeouts, and hyper reports this one as neither.
            Some(Err(e)) if e.as_connector_error().is_some_and(|c| !c.is_user()) => {
                RetryAction::transient_error()
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "Conflicts"
    }
}

macro_rules! equip {
    ($client:expr, $sdk:ident, $retries:expr, $counter:expr) => {{
        let config = $client.config();
        let timeouts = TimeoutConfig::builder()
            .operation_timeout($retries.total_timeout)
            .build()
            .into_builder()
            .take_unset_from(
                config
                    .timeout_config()
                    .cloned()
                    .unwrap_or_else(TimeoutConfig::disabled)
                    .into_builder(),
            )
            .build();
        $sdk::Client::from_conf(
            config
                .to_builder()
                .retry_config($retries.config())
                .retry_classifier(Conflicts)
                .retry_partition(partition(stringify!($sdk)))
                .timeout_config(timeouts)
                .interceptor($counter.clone())
                .interceptor(Attempts)
                .build(),
        )
    }};
}

/// Per-call configuration that turns the SDK's retry off, for the creates whose failures are
/// ambiguous: the kind's apply observes before it sends again (see `step::create_observed`).
macro_rules! no_retry {
    ($sdk:ident) => {
        $sdk::config::Builder::default()
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
    };
}
pub(crate) use no_retry;

impl Clients {
    /// Clients for every service from one SDK configuration, with the default [`Retries`], in
    /// the SDK's adaptive mode when the user asked for it the AWS way (`AWS_RETRY_MODE=adaptive`
    /// or `retry_mode = adaptive` in the profile): for accounts whose control plane throttles
    /// under the deploy's own rate.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients::with_retries(config, Retries::for_config(config))
    }

    /// Clients for every service from one SDK configuration with the given retry policy (the
    /// tests' short delays, say).
    pub fn with_retries(config: &aws_config::SdkConfig, retries: Retries) -> Self {
        let owned;
        let config = if config.http_client().is_some() {
            config
        } else {
            owned = config.to_builder().http_client(https_client()).build();
            &owned
        };
        Clients::from_clients(
            aws_sdk_lambda::Client::new(config),
            aws_sdk_iam::Client::new(config),
            aws_sdk_dynamodb::Client::new(config),
            aws_sdk_cloudwatchlogs::Client::new(config),
            aws_sdk_apigateway::Client::new(config),
            config.endpoint_url().map(str::to_string),
            retries,
        )
        .with_secrets(aws_sdk_secretsmanager::Client::new(config), retries)
        .with_cloudtrail(aws_sdk_cloudtrail::Client::new(config), retries)
    }

    /// Sets the CloudTrail client (a mocked one in tests), equipped like the others.
    pub fn with_cloudtrail(
        mut self,
        cloudtrail: aws_sdk_cloudtrail::Client,
        retries: Retries,
    ) -> Self {
        let counter = self.mutating_calls.clone();
        self.cloudtrail = Some(equip!(cloudtrail, aws_sdk_cloudtrail, retries, counter));
        self
    }

    /// Sets the Secrets Manager client (a mocked one in tests), equipped like the others.
    pub fn with_secrets(
        mut self,
        secrets: aws_sdk_secretsmanager::Client,
        retries: Retries,
    ) -> Self {
        let counter = self.mutating_calls.clone();
        self.secrets = equip!(secrets, aws_sdk_secretsmanager, retries, counter);
        self
    }

    /// Equips existing clients (the tests' mocked ones, say) with the retry policy and the
    /// mutating-call counter.
    pub fn from_clients(
        lambda: aws_sdk_lambda::Client,
        iam: aws_sdk_iam::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        logs: aws_sdk_cloudwatchlogs::Client,
        apigateway: aws_sdk_apigateway::Client,
        endpoint_url: Option<String>,
        retries: Retries,
    ) -> Self {
        let counter = MutatingCalls::default();
        // Until `with_secrets` gives a real one, a client of the same region without
        // credentials: only stacks with signing keys call Secrets Manager.
        let secrets = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                .region(lambda.config().region().cloned())
                .build(),
        );
        Clients {
            lambda: equip!(lambda, aws_sdk_lambda, retries, counter),
            iam: equip!(iam, aws_sdk_iam, retries, counter),
            dynamodb: equip!(dynamodb, aws_sdk_dynamodb, retries, counter),
            logs: equip!(logs, aws_sdk_cloudwatchlogs, retries, counter),
            secrets: equip!(secrets, aws_sdk_secretsmanager, retries, counter),
            apigateway: equip!(apigateway, aws_sdk_apigateway, retries, counter),
            cloudtrail: None,
            endpoint_url,
            mutating_calls: counter,
            max_attempts: retries.max_attempts.max(1),
            retries,
        }
    }

    /// The region calls go to, from the Lambda client's configuration.
    pub fn region(&self) -> String {
        self.lambda
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_default()
    }
}

/// The HTTP client of every SDK configuration the deployer builds: hyper 1 with rustls on ring,
/// the platform's trusted certificates, and the `HTTPS_PROXY`/`NO_PROXY` settings of the
/// environment, as the SDK's own default client has them. The SDK's default-client feature
/// would bring rustls on aws-lc-rs instead, whose C build is the longest of a fresh clone.
/// Plain `http://` endpoints (the emulator) go through the same client.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, Connector, proxy::ProxyConfig};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = Connector::builder().tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// What a failed call says about whether it was applied, for the creates that must not run twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Refused and not applied (throttling, a conflict that clears by itself): send it again.
    Refused,
    /// Perhaps applied: no answer in time, a connection cut after sending, a 5xx. Look first.
    Ambiguous,
    /// Refused for good: a bad request, a missing resource, an "already exists".
    Fatal,
}

/// Sorts a failed call by [`Verdict`].
pub fn verdict<E>(err: &aws_sdk_lambda::error::SdkError<E, HttpResponse>) -> Verdict
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    use aws_sdk_lambda::error::SdkError;
    match err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Verdict::Ambiguous,
        SdkError::DispatchFailure(d) if d.is_user() => Verdict::Fatal,
        SdkError::DispatchFailure(_) => Verdict::Ambiguous,
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let service = ctx.err();
            if status >= 500 {
                Verdict::Ambiguous
            } else if status == 429
                || service.code().is_some_and(is_throttling_code)
                || is_retried(service)
            {
                Verdict::Refused
            } else {
                Verdict::Fatal
            }
        }
        _ => Verdict::Fatal,
    }
}

/// The error codes AWS services throttle with, as the SDK's standard retry knows them.
fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "LimitExceededException"
            | "RequestThrottled"
            | "SlowDown"
            | "PriorRequestNotComplete"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::error::SdkError;
    use aws_sdk_lambda::operation::create_function::CreateFunctionError;
    use aws_sdk_lambda::types::error::{
        InvalidParameterValueException, ResourceConflictException, ServiceException,
        TooManyRequestsException,
    };
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn answered(
        status: u16,
        err: CreateFunctionError,
    ) -> SdkError<CreateFunctionError, HttpResponse> {
        SdkError::service_error(
            err,
            HttpResponse::new(
                StatusCode::try_from(status).expect("status"),
                SdkBody::empty(),
            ),
        )
    }

    #[test]
    fn refusals_are_resent_ambiguous_failures_observed_and_the_rest_fail_at_once() {
        let throttled = CreateFunctionError::TooManyRequestsException(
            TooManyRequestsException::builder().build(),
        );
        assert_eq!(verdict(&answered(429, throttled)), Verdict::Refused);
        let busy = CreateFunctionError::ResourceConflictException(
            ResourceConflictException::builder()
                .message("An update is in progress")
                .build(),
        );
        assert_eq!(verdict(&answered(409, busy)), Verdict::Refused);
        let exists = CreateFunctionError::ResourceConflictException(
            ResourceConflictException::builder()
                .message("Function already exist: f")
                .build(),
        );
        assert_eq!(verdict(&answered(409, exists)), Verdict::Fatal);
        let internal = CreateFunctionError::ServiceException(ServiceException::builder().build());
        assert_eq!(verdict(&answered(500, internal)), Verdict::Ambiguous);
        let bad = CreateFunctionError::InvalidParameterValueException(
            InvalidParameterValueException::builder()
                .message("Unzipped size must be smaller than 262144000 bytes")
                .build(),
        );
        assert_eq!(verdict(&answered(400, bad)), Verdict::Fatal);
        let timeout: SdkError<CreateFunctionError, HttpResponse> =
            SdkError::timeout_error("no answer");
        assert_eq!(verdict(&timeout), Verdict::Ambiguous);
    }

    #[test]
    fn backoff_grows_to_its_ceiling_and_never_past_it() {
        let r = Retries {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Retries::default()
        };
        for retry in 1..=20 {
            let ceiling = Duration::from_millis(100 * 2u64.pow(retry.min(10) - 1))
                .min(Duration::from_secs(1));
            assert!(r.backoff(retry) <= ceiling, "retry {retry}");
        }
        assert!(Retries::default().max_attempts >= 10);
    }
}
