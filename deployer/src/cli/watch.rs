//! `cargo xtask watch`: deploy the stage, then rebuild the functions whose crates change on disk
//! and update only their code, until Ctrl-C. The emulator is left as it was found.

use std::process::ExitCode;
use std::time::Duration;

use crate::stack::Target;

use super::context::{self, StageArgs};
use super::output::Progress;
use super::{Ctx, Outcome, deploy, emulator_cmd};

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub stage: StageArgs,
}

pub async fn run(ctx: &Ctx<'_>, args: WatchArgs) -> Outcome {
    let stage = context::checked_stage(ctx.app, &args.stage)?;
    let local = stage.target == Target::Emulator && args.stage.endpoint_url.is_none();
    let started_emulator = local && !emulator_cmd::healthy(emulator_cmd::port());
    let result = watch(ctx, stage, args).await;
    if started_emulator {
        emulator_cmd::stop(ctx.app)?;
    }
    result.map(|()| ExitCode::SUCCESS)
}

async fn watch(ctx: &Ctx<'_>, stage: &crate::stack::Stage, args: WatchArgs) -> anyhow::Result<()> {
    deploy::deploy(
        ctx,
        deploy::DeployArgs {
            stage: args.stage.clone(),
            dry_run: false,
            yes: false,
            parallelism: crate::ApplyOptions::default().parallelism,
        },
    )
    .await?;
    let target = context::connect(ctx, stage, &args.stage).await?;
    let app = &ctx.app.stack;
    let unify_with = ctx.app.tool_package.as_deref();
    // The packages just deployed (the build is fresh, so cargo only confirms it).
    let deployed = deploy::build(&ctx.app.root, unify_with, app, stage, &Progress::default())?;
    let spec = crate::watch::WatchSpec {
        workspace_root: &ctx.app.root,
        app,
        stage,
        unify_with: unify_with.map(str::to_string).into_iter().collect(),
        deployed,
        debounce: Duration::from_millis(50),
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    crate::watch::watch(&target.clients, spec, &|event| eprintln!("{event}"), stop).await?;
    Ok(())
}
