//! `cargo xtask watch`: deploy the stage, then rebuild the functions whose crates change on disk
//! and update only their code, until Ctrl-C. The emulator is left as it was found.

use std::time::Duration;

use deployer::stack::Target;

use crate::context::{self, StageArgs};
use crate::{deploy, emulator_cmd, output::Progress};
use xtask::stack;

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub stage: StageArgs,
}

pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    let app = stack::represent();
    let stage = context::checked_stage(&app, &args.stage.stage)?;
    let local = stage.target == Target::Emulator && args.stage.endpoint_url.is_none();
    let started_emulator = local && !emulator_cmd::healthy(emulator_cmd::port());
    let result = watch(&app, stage, args).await;
    if started_emulator {
        emulator_cmd::stop()?;
    }
    result
}

async fn watch(
    app: &deployer::stack::App,
    stage: &deployer::stack::Stage,
    args: WatchArgs,
) -> anyhow::Result<()> {
    deploy::deploy(deploy::DeployArgs {
        stage: args.stage.clone(),
        dry_run: false,
    })
    .await?;
    let target = context::connect(stage, &args.stage).await?;
    // The packages just deployed (the build is fresh, so cargo only confirms it).
    let deployed = deploy::build(app, stage, &Progress::new())?;
    let root = context::project_root();
    let spec = deployer::watch::WatchSpec {
        workspace_root: &root,
        app,
        stage,
        unify_with: vec![env!("CARGO_PKG_NAME").to_string()],
        deployed,
        debounce: Duration::from_millis(50),
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    deployer::watch::watch(&target.clients, spec, &|event| println!("{event}"), stop).await?;
    Ok(())
}
