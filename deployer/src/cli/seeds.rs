//! `cargo xtask tenants seed`: write the app's tenant records into the stage's tables without
//! the rest of a deploy, changing only what differs.

use std::process::ExitCode;

use super::context::{self, StageArgs};
use super::output::{OutputFormat, Progress, outln, print_json, write_stdout};
use super::{Ctx, Outcome};
use crate::apply::ApplyOptions;
use crate::plan::RenderOptions;

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Seed only this tenant; other tenants' data is not read or written
    #[arg(long, visible_alias = "tenant-id")]
    pub tenant: Option<String>,
}

pub async fn run(ctx: &Ctx<'_>, args: SeedArgs) -> Outcome {
    let app = &ctx.app.stack;
    let stage = context::checked_stage(ctx.app, &args.stage)?;
    if let Some(tenant) = &args.tenant {
        crate::tenant::validate_tenant_id(tenant)?;
        if !ctx.app.is_tenant(tenant) {
            return Err(ctx.app.unknown_tenant(tenant));
        }
    }
    let only = args.tenant.as_deref();
    let seeds = super::collect_seeds(ctx.app, only)?;
    let desired = crate::desired_for_seeding(app, &stage.name, seeds)
        .map_err(|errors| anyhow::anyhow!("the `{}` stack is invalid:\n{errors}", app.name))?;
    let target = context::connect(ctx, stage, &args.stage).await?;
    let progress = Progress::new();
    progress.step("reading the tenants' partitions");
    let actual = crate::observe_seeds(&target.clients, &desired, only).await?;
    let plan = crate::plan_seeds(&desired, &actual, only);
    if args.stage.output == OutputFormat::Text {
        let text = plan.render(&RenderOptions {
            verbose: ctx.verbose,
            color: super::output::color_stdout(),
        });
        progress.suspend(|| write_stdout(text.as_bytes()))?;
    }
    let report = crate::apply(
        &target.clients,
        &plan,
        &ApplyOptions::default(),
        &|message: &str| progress.step(message),
    )
    .await?;
    progress.finish();
    match args.stage.output {
        OutputFormat::Json => print_json(&serde_json::json!({
            "stage": stage.name,
            "plan": plan,
            "mutating_calls": report.mutating_calls,
        }))?,
        OutputFormat::Text => outln!("Seeded with {} changing API calls.", report.mutating_calls)?,
    }
    Ok(ExitCode::SUCCESS)
}
