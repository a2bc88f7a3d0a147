//! What every command needs: the app's paths, the stage's flags, and SDK clients built once
//! for the stage's target (the local emulator or AWS), with every input checked before the
//! first call and connection failures said in one sentence.

use std::borrow::Cow;
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use super::output::OutputFormat;
use super::{App, Ctx};
use crate::stack::{Stage, Target};

/// Cargo's target directory of the app's workspace, where builds, the emulator's state and its
/// logs live.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

/// Flags shared by every command that talks to a stage.
#[derive(Debug, Clone, clap::Args)]
pub struct StageArgs {
    /// Stage to work on: `dev` is the local emulator; AWS stages (`staging`, `prod`) use the
    /// standard AWS credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO, ...)
    #[arg(long, default_value = "dev")]
    pub stage: String,
    /// Send every AWS call to this endpoint instead (another emulator, LocalStack). For stage
    /// `dev` the default is the embedded emulator, started if it is not running
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS profile to use on AWS stages (instead of AWS_PROFILE or the stage's own)
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS region to use on AWS stages (instead of AWS_REGION or the profile's)
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Results as human-readable text or as JSON for scripts
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// A stage resolved to its target, with SDK clients built once.
pub struct Connected {
    pub clients: crate::Clients,
    /// Where calls go when it is not AWS's default endpoint.
    pub endpoint: Option<String>,
}

/// Validates the stack for `stage` and the stage's flags (before any network call) and returns
/// the stage.
pub fn checked_stage<'a>(app: &'a App, args: &StageArgs) -> anyhow::Result<&'a Stage> {
    let stack = &app.stack;
    if let Some(url) = &args.endpoint_url {
        check_endpoint_url(url)?;
    }
    if let Some(region) = &args.region {
        check_region(region)?;
    }
    crate::stack::validate(stack, &args.stage)
        .map_err(|errors| anyhow::anyhow!("the `{}` stack is invalid:\n{errors}", stack.name))?;
    stack.find_stage(&args.stage).with_context(|| {
        let known: Vec<&str> = stack.stages.iter().map(|s| s.name.as_str()).collect();
        format!(
            "unknown stage `{}`: the stack has {}",
            args.stage,
            known.join(", ")
        )
    })
}

/// An endpoint URL must be `http://` or `https://`, a host, an optional port and nothing odd:
/// anything else is refused before a call rather than failing inside the SDK.
pub fn check_endpoint_url(url: &str) -> anyhow::Result<()> {
    let fix = "use a URL such as `http://127.0.0.1:9456`";
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("--endpoint-url `{url}` is not a URL: {fix}");
    };
    if scheme != "http" && scheme != "https" {
        bail!("--endpoint-url `{url}` must start with http:// or https://: {fix}");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host, Some(port))
        }
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'));
    if !host_ok {
        bail!("--endpoint-url `{url}` has no valid host: {fix}");
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        bail!("--endpoint-url `{url}` has an invalid port `{port}`: {fix}");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("--endpoint-url `{url}` contains spaces or control characters: {fix}");
    }
    Ok(())
}

fn check_region(region: &str) -> anyhow::Result<()> {
    let ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!("--region `{region}` is not an AWS region: use a name such as `us-east-1`");
    }
    Ok(())
}

/// Builds the SDK configuration for `stage`: the emulator (started on demand) for emulator
/// stages, AWS otherwise, where a missing profile, region or credentials fail here with a
/// message saying how to fix them rather than later inside a deploy.
pub async fn connect(ctx: &Ctx<'_>, stage: &Stage, args: &StageArgs) -> anyhow::Result<Connected> {
    let hint = format!(
        "is the emulator running? `{} emulator start`",
        ctx.app.bin_name
    );
    let config = match (&stage.target, &args.endpoint_url) {
        (Target::Emulator, endpoint) => {
            let endpoint = match endpoint {
                Some(url) => {
                    reachable(url, &hint)?;
                    url.clone()
                }
                None => super::emulator_cmd::ensure_running(ctx.app).await?,
            };
            emulator_config(&endpoint).await
        }
        (Target::Aws { region, profile }, endpoint) => {
            let profile = args
                .profile
                .clone()
                .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()))
                .or_else(|| profile.clone());
            if let Some(profile) = &profile {
                check_profile(profile, &stage.name).await?;
            }
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .http_client(crate::clients::https_client());
            if let Some(region) = args.region.as_ref().or(region.as_ref()) {
                loader = loader.region(Region::new(region.clone()));
            }
            if let Some(profile) = profile {
                loader = loader.profile_name(profile);
            }
            if let Some(url) = endpoint {
                reachable(
                    url,
                    "check the URL, or leave --endpoint-url out to reach AWS",
                )?;
                loader = loader.endpoint_url(url);
            }
            let config = loader.load().await;
            check_aws(ctx, &config, &stage.name).await?;
            config
        }
    };
    let endpoint = match &stage.target {
        Target::Emulator => config.endpoint_url().map(str::to_string),
        Target::Aws { .. } => args.endpoint_url.clone(),
    };
    Ok(Connected {
        clients: clients(&config, ctx.verbose),
        endpoint,
    })
}

/// The SDK clients for `config`; with `verbose`, each reports its calls on stderr. Either way
/// they carry the deployer's retry policy and mutating-call counter.
pub fn clients(config: &SdkConfig, verbose: bool) -> crate::Clients {
    if !verbose {
        return crate::Clients::new(config);
    }
    macro_rules! logged {
        ($sdk:ident) => {
            $sdk::Client::from_conf(
                $sdk::config::Builder::from(config)
                    .interceptor(CallLog)
                    .build(),
            )
        };
    }
    let retries = crate::clients::Retries::for_config(config);
    crate::Clients::from_clients(
        logged!(aws_sdk_lambda),
        logged!(aws_sdk_iam),
        logged!(aws_sdk_dynamodb),
        logged!(aws_sdk_cloudwatchlogs),
        logged!(aws_sdk_apigateway),
        config.endpoint_url().map(str::to_string),
        retries,
    )
    .with_secrets(logged!(aws_sdk_secretsmanager), retries)
    .with_cloudtrail(logged!(aws_sdk_cloudtrail), retries)
}

/// `-v`: one stderr line per HTTP attempt, `Lambda.GetFunction GET http://... -> 200 (3.1 ms)`.
#[derive(Debug)]
struct CallLog;

#[derive(Debug, Clone)]
struct Sent(Instant, String);

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| format!("{}.{}", m.service(), m.name()))
            .unwrap_or_else(|| "call".to_string());
        let request = context.request();
        let uri = request.uri();
        // The query string can carry names, never secrets, but it is long: the path is enough.
        let path = uri.split('?').next().unwrap_or(uri);
        let line = format!("{operation} {} {path}", request.method());
        cfg.interceptor_state()
            .store_put(Sent(Instant::now(), line));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Sent(at, line)) = cfg.load::<Sent>() {
            eprintln!(
                "  {line} -> {} ({:.1} ms)",
                context.response().status().as_u16(),
                at.elapsed().as_secs_f64() * 1000.0
            );
        }
        Ok(())
    }
}

/// Fails in one sentence when nothing listens at `url`, rather than with the SDK's dispatch
/// failure after its retries.
fn reachable(url: &str, hint: &str) -> anyhow::Result<()> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let with_port = if authority.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty()
    }) {
        authority.to_string()
    } else if scheme == "https" {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    };
    let addresses: Vec<_> = match with_port.to_socket_addrs() {
        Ok(addresses) => addresses.collect(),
        Err(_) => bail!("cannot resolve the host of {url}: {hint}"),
    };
    let answers = addresses
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok());
    if !answers {
        bail!("nothing is listening at {url}: {hint}");
    }
    Ok(())
}

/// SDK configuration for an emulator: any credentials are accepted there, so fixed ones are
/// used and nothing from the user's AWS setup can leak into a local run.
pub async fn emulator_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::clients::https_client())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "emulator",
            "emulator",
            None,
            None,
            "deployer-emulator",
        ))
        .load()
        .await
}

/// A named profile must exist in the AWS config or credentials file; the SDK alone would only
/// say later that no region or credentials were found.
async fn check_profile(profile: &str, stage: &str) -> anyhow::Result<()> {
    let fs = aws_types::os_shim_internal::Fs::real();
    let env = aws_types::os_shim_internal::Env::real();
    let files = aws_runtime::env_config::file::EnvConfigFiles::default();
    let found = aws_config::profile::load(&fs, &env, &files, Some(Cow::Owned(profile.into())))
        .await
        .map(|set| set.get_profile(profile).is_some())
        .unwrap_or(false);
    if !found {
        bail!(
            "AWS profile `{profile}` (for stage `{stage}`) is not in ~/.aws/config or \
             ~/.aws/credentials: create it with `aws configure --profile {profile}`, or pick \
             another with --profile or AWS_PROFILE"
        );
    }
    Ok(())
}

async fn check_aws(ctx: &Ctx<'_>, config: &SdkConfig, stage: &str) -> anyhow::Result<()> {
    let help = format!(
        "stage `{stage}` deploys to AWS: configure credentials (for example `export AWS_PROFILE=...` \
         or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or use the local emulator with \
         `--stage dev`"
    );
    if config.region().is_none() {
        bail!(
            "no AWS region is configured for stage `{stage}`: pass --region, set AWS_REGION, or \
             {help} (`{} --help` lists the flags)",
            ctx.app.bin_name
        );
    }
    let Some(provider) = config.credentials_provider() else {
        bail!("no AWS credentials found: {help}");
    };
    provider
        .provide_credentials()
        .await
        .map_err(|error| anyhow::anyhow!("no AWS credentials found ({error}): {help}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use aws_smithy_types::retry::{RetryConfig, RetryMode};

    #[test]
    fn verbose_clients_retry_as_the_quiet_ones_do() {
        let config = SdkConfig::builder()
            .region(Region::new("us-east-1"))
            .behavior_version(BehaviorVersion::latest())
            .build();
        let want = crate::clients::Retries::default().max_attempts;
        for verbose in [false, true] {
            let c = clients(&config, verbose);
            let attempts = [
                c.lambda.config().retry_config().map(|r| r.max_attempts()),
                c.iam.config().retry_config().map(|r| r.max_attempts()),
                c.secrets.config().retry_config().map(|r| r.max_attempts()),
            ];
            assert_eq!(attempts, [Some(want); 3], "verbose: {verbose}");
            let mode = c.dynamodb.config().retry_config().map(|r| r.mode());
            assert_eq!(mode, Some(RetryMode::Standard), "verbose: {verbose}");
        }
        // Asked for the AWS way (`AWS_RETRY_MODE=adaptive`), every client is adaptive.
        let adaptive = config
            .to_builder()
            .retry_config(RetryConfig::adaptive())
            .build();
        for verbose in [false, true] {
            let c = clients(&adaptive, verbose);
            let modes = [
                c.lambda.config().retry_config().map(|r| r.mode()),
                c.apigateway.config().retry_config().map(|r| r.mode()),
            ];
            assert_eq!(modes, [Some(RetryMode::Adaptive); 2], "verbose: {verbose}");
            assert_eq!(c.max_attempts, want, "the bound stays the deployer's");
        }
    }

    #[test]
    fn endpoint_urls_are_checked_before_any_call() {
        for good in [
            "http://127.0.0.1:9456",
            "https://localhost.localstack.cloud:4566/",
            "http://[::1]:9456",
            "http://emulator",
        ] {
            check_endpoint_url(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "127.0.0.1:9456",
            "ftp://host",
            "http://",
            "http://host:port",
            "http://host:70000",
            "http://ho st:1",
        ] {
            let err = check_endpoint_url(bad).expect_err(bad).to_string();
            assert!(
                err.contains(bad) && err.contains("http://127.0.0.1:9456"),
                "{err}"
            );
        }
    }
}
