//! The tenant files as seed data for the stage's table, and `cargo xtask tenants seed`, which
//! writes them without the rest of a deploy.

use std::path::Path;

use anyhow::bail;
use deployer::Seed;
use deployer::apply::ApplyOptions;
use represent::tenant::TenantFile;

use crate::context::{self, StageArgs};
use crate::output::{OutputFormat, Progress, print_json};
use crate::tenants::validate;

/// The table (logical name in the stack) that holds every tenant's partition.
pub const TABLE: &str = "data";

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Seed only this tenant (a USPS code such as TX); other tenants' data is not read or written
    #[arg(long)]
    pub tenant: Option<String>,
}

/// Reads and validates every tenant file: a broken file stops the deploy before any AWS call.
pub fn tenant_files(project_root: &Path) -> anyhow::Result<Vec<TenantFile>> {
    let dir = project_root.join("tenants");
    let checked = validate::check_dir(&dir);
    if !checked.problems.is_empty() {
        bail!(
            "{} problems in {} (run `cargo xtask tenants validate`):\n  - {}",
            checked.problems.len(),
            dir.display(),
            checked.problems.join("\n  - ")
        );
    }
    Ok(checked.tenants)
}

/// One partition per tenant, one record per state, county, senator and House seat.
pub fn seed(tenants: &[TenantFile]) -> Seed {
    let mut seed = Seed::new(TABLE);
    for tenant in tenants {
        seed.partitions
            .insert(tenant.id.clone(), represent::records::to_records(tenant));
    }
    seed
}

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let app = xtask::stack::represent();
    let stage = context::checked_stage(&app, &args.stage.stage)?;
    let tenants = tenant_files(&context::project_root())?;
    if let Some(tenant) = &args.tenant
        && !tenants.iter().any(|t| &t.id == tenant)
    {
        bail!("unknown tenant `{tenant}`: `cargo xtask tenants list` shows the tenants");
    }
    let desired = deployer::desired_for_seeding(&app, &stage.name, vec![seed(&tenants)])
        .map_err(|errors| anyhow::anyhow!("the `{}` stack is invalid:\n{errors}", app.name))?;
    let target = context::connect(stage, &args.stage).await?;
    let progress = Progress::new();
    progress.step("reading the tenants' partitions");
    let only = args.tenant.as_deref();
    let actual = deployer::observe_seeds(&target.clients, &desired, only).await?;
    let plan = deployer::plan_seeds(&desired, &actual, only);
    if args.stage.output == OutputFormat::Text {
        progress.suspend(|| print!("{plan}"));
    }
    let report = deployer::apply(
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
        })),
        OutputFormat::Text => {
            println!("Seeded with {} changing API calls.", report.mutating_calls);
            Ok(())
        }
    }
}
