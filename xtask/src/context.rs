//! What every command needs: the project's paths, the stage's flags, and SDK clients built once
//! for the stage's target (the local emulator or AWS).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use deployer::stack::{App, Stage, Target};

use crate::output::OutputFormat;

/// The workspace root (this crate lives one level below it).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory, where builds, the emulator's state and its logs live.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
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
    /// Results as human-readable text or as JSON for scripts
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// A stage resolved to its target, with SDK clients built once.
pub struct Connected {
    pub clients: deployer::Clients,
    /// Where calls go when it is not AWS's default endpoint.
    pub endpoint: Option<String>,
}

/// Validates the stack for `stage` (before any network call) and returns the stage.
pub fn checked_stage<'a>(app: &'a App, stage: &str) -> anyhow::Result<&'a Stage> {
    deployer::stack::validate(app, stage)
        .map_err(|errors| anyhow::anyhow!("the `{}` stack is invalid:\n{errors}", app.name))?;
    app.find_stage(stage)
        .with_context(|| format!("unknown stage `{stage}`"))
}

/// Builds the SDK configuration for `stage`: the emulator (started on demand) for emulator
/// stages, AWS otherwise, where missing credentials fail here with a message saying how to fix
/// them rather than later inside a deploy.
pub async fn connect(stage: &Stage, args: &StageArgs) -> anyhow::Result<Connected> {
    let config = match (&stage.target, &args.endpoint_url) {
        (Target::Emulator, endpoint) => {
            let endpoint = match endpoint {
                Some(url) => url.clone(),
                None => crate::emulator_cmd::ensure_running().await?,
            };
            emulator_config(&endpoint).await
        }
        (Target::Aws { region, profile }, endpoint) => {
            let mut loader = aws_config::defaults(BehaviorVersion::latest());
            if let Some(region) = region {
                loader = loader.region(Region::new(region.clone()));
            }
            if let Some(profile) = profile {
                loader = loader.profile_name(profile);
            }
            if let Some(url) = endpoint {
                loader = loader.endpoint_url(url);
            }
            let config = loader.load().await;
            check_aws(&config, &stage.name).await?;
            config
        }
    };
    let endpoint = match &stage.target {
        Target::Emulator => config.endpoint_url().map(str::to_string),
        Target::Aws { .. } => args.endpoint_url.clone(),
    };
    Ok(Connected {
        clients: deployer::Clients::new(&config),
        endpoint,
    })
}

/// SDK configuration for an emulator: any credentials are accepted there, so fixed ones are
/// used and nothing from the user's AWS setup can leak into a local run.
pub async fn emulator_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "emulator",
            "emulator",
            None,
            None,
            "represent-emulator",
        ))
        .load()
        .await
}

async fn check_aws(config: &SdkConfig, stage: &str) -> anyhow::Result<()> {
    let help = format!(
        "stage `{stage}` deploys to AWS: configure credentials (for example `export AWS_PROFILE=...` \
         or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or use the local emulator with \
         `--stage dev`"
    );
    if config.region().is_none() {
        bail!("no AWS region is configured for stage `{stage}`: set AWS_REGION, or {help}");
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
