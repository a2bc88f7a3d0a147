//! The SDK clients the deployer talks through, built once at the edge and passed in, with the
//! deployer's one retry policy and the interceptor that counts mutating calls installed on
//! every client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, Error, InterceptorContext,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;

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
    /// The endpoint every call goes to when it is not AWS's (an emulator): REST API invoke URLs
    /// are then paths on it. The SDK's service configs do not expose it, so it is kept here.
    pub endpoint_url: Option<String>,
    /// Every mutating request these clients sent, retries included.
    pub mutating_calls: MutatingCalls,
    /// The attempts per call the retry policy allows, the first included.
    pub max_attempts: u32,
}

/// The deployer's retry policy: the SDK's standard retry (throttling, transient and 5xx errors,
/// with exponential backoff and jitter) plus [`Conflicts`], configured on every client once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl Retries {
    fn config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts.max(1))
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff.max(self.initial_backoff))
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

/// Retries what the SDK's standard classifiers leave alone but that clears up by itself: 409
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
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "Conflicts"
    }
}

macro_rules! equip {
    ($client:expr, $sdk:ident, $retries:expr, $counter:expr) => {
        $sdk::Client::from_conf(
            $client
                .config()
                .to_builder()
                .retry_config($retries.config())
                .retry_classifier(Conflicts)
                .interceptor($counter.clone())
                .build(),
        )
    };
}

impl Clients {
    /// Clients for every service from one SDK configuration, with the default [`Retries`].
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients::from_clients(
            aws_sdk_lambda::Client::new(config),
            aws_sdk_iam::Client::new(config),
            aws_sdk_dynamodb::Client::new(config),
            aws_sdk_cloudwatchlogs::Client::new(config),
            aws_sdk_apigateway::Client::new(config),
            config.endpoint_url().map(str::to_string),
            Retries::default(),
        )
        .with_secrets(
            aws_sdk_secretsmanager::Client::new(config),
            Retries::default(),
        )
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
        Clients {
            lambda: equip!(lambda, aws_sdk_lambda, retries, counter),
            iam: equip!(iam, aws_sdk_iam, retries, counter),
            dynamodb: equip!(dynamodb, aws_sdk_dynamodb, retries, counter),
            logs: equip!(logs, aws_sdk_cloudwatchlogs, retries, counter),
            // Until `with_secrets` gives a real one, a client of the same region without
            // credentials: only stacks with signing keys call Secrets Manager.
            secrets: equip!(
                aws_sdk_secretsmanager::Client::from_conf(
                    aws_sdk_secretsmanager::Config::builder()
                        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                        .region(lambda.config().region().cloned())
                        .build()
                ),
                aws_sdk_secretsmanager,
                retries,
                counter
            ),
            apigateway: equip!(apigateway, aws_sdk_apigateway, retries, counter),
            endpoint_url,
            mutating_calls: counter,
            max_attempts: retries.max_attempts.max(1),
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
