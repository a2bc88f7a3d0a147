//! `cargo xtask deploy`, `plan` and `destroy`: build and package every function, observe the
//! stage, print the plan, and apply it.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{Context as _, bail};
use deployer::apply::{ApplyOptions, ApplyReport};
use deployer::package::Package;
use deployer::plan::Plan;
use deployer::stack::{App, Stage};
use serde::Serialize;

use crate::context::{self, StageArgs};
use crate::output::{OutputFormat, Progress, print_json};
use crate::seeds;
use xtask::stack;

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Build and show the plan, change nothing (same as `cargo xtask plan`)
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub stage: StageArgs,
}

#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Do not ask for confirmation (scripts, CI)
    #[arg(long)]
    pub yes: bool,
}

/// What `deploy --output json` prints.
#[derive(Debug, Serialize)]
struct DeployResult<'a> {
    app: &'a str,
    stage: &'a str,
    endpoint: Option<&'a str>,
    /// The stage's REST APIs by logical name: their invoke URLs.
    api_urls: &'a BTreeMap<String, String>,
    dry_run: bool,
    plan: &'a Plan,
    mutating_calls: u32,
}

pub async fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    run(args.stage, args.dry_run).await
}

pub async fn plan(args: PlanArgs) -> anyhow::Result<()> {
    run(args.stage, true).await
}

async fn run(args: StageArgs, dry_run: bool) -> anyhow::Result<()> {
    let app = stack::represent();
    let stage = context::checked_stage(&app, &args.stage)?;
    let tenants = seeds::tenant_files(&context::project_root())?;
    // Connecting first: missing AWS credentials are reported before a long build.
    let target = context::connect(stage, &args).await?;
    let progress = Progress::new();
    let packages = build(&app, stage, &progress)?;
    let seeds = vec![seeds::seed(&tenants)];
    let desired = deployer::desired_with_seeds(&app, &stage.name, &packages, seeds)
        .map_err(|errors| anyhow::anyhow!("the `{}` stack is invalid:\n{errors}", app.name))?;
    progress.step(&format!("observing stage `{}`", stage.name));
    let actual = deployer::observe_stage(&target.clients, &desired).await?;
    let plan = deployer::plan::plan(&desired, &actual);
    let mut report = ApplyReport {
        api_urls: deployer::api_urls(&target.clients, &stage.name, &actual),
        ..ApplyReport::default()
    };
    if args.output == OutputFormat::Text {
        progress.suspend(|| print!("{plan}"));
    }
    if !dry_run && plan.has_changes() {
        report = deployer::apply::apply(
            &target.clients,
            &plan,
            &ApplyOptions::default(),
            &|message: &str| progress.step(message),
        )
        .await?;
    }
    progress.finish();
    match args.output {
        OutputFormat::Json => print_json(&DeployResult {
            app: &app.name,
            stage: &stage.name,
            endpoint: target.endpoint.as_deref(),
            api_urls: &report.api_urls,
            dry_run,
            plan: &plan,
            mutating_calls: report.mutating_calls,
        }),
        OutputFormat::Text => {
            if dry_run {
                println!("Dry run: nothing was changed.");
            } else if plan.has_changes() {
                println!(
                    "Deployed {}/{} with {} changing API calls.",
                    app.name, stage.name, report.mutating_calls
                );
            } else {
                println!("Nothing to deploy: no changing API call was made.");
            }
            if let Some(endpoint) = &target.endpoint {
                println!("Endpoint: {endpoint}");
            }
            for (api, url) in &report.api_urls {
                println!("API `{api}`: {url}");
            }
            Ok(())
        }
    }
}

pub async fn destroy(args: DestroyArgs) -> anyhow::Result<()> {
    let app = stack::represent();
    let stage = context::checked_stage(&app, &args.stage.stage)?;
    if !args.yes {
        confirm(&app, stage)?;
    }
    let target = context::connect(stage, &args.stage).await?;
    let progress = Progress::new();
    progress.step(&format!("observing stage `{}`", stage.name));
    let actual = deployer::observe::observe(&target.clients, &app.name, &stage.name).await?;
    let plan = deployer::plan::plan_destroy(&actual, &app.name, &stage.name);
    if args.stage.output == OutputFormat::Text {
        progress.suspend(|| print!("{plan}"));
    }
    let report = deployer::apply::destroy(
        &target.clients,
        &plan,
        &ApplyOptions::default(),
        &|message: &str| progress.step(message),
    )
    .await?;
    progress.finish();
    match args.stage.output {
        OutputFormat::Json => print_json(&DeployResult {
            app: &app.name,
            stage: &stage.name,
            endpoint: target.endpoint.as_deref(),
            api_urls: &report.api_urls,
            dry_run: false,
            plan: &plan,
            mutating_calls: report.mutating_calls,
        }),
        OutputFormat::Text => {
            println!(
                "Destroyed {}/{} with {} changing API calls.",
                app.name, stage.name, report.mutating_calls
            );
            Ok(())
        }
    }
}

fn confirm(app: &App, stage: &Stage) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "destroying stage `{}` deletes every resource of it: pass --yes to confirm",
            stage.name
        );
    }
    eprint!(
        "This deletes every resource of {}/{}. Type the stage name to confirm: ",
        app.name, stage.name
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != stage.name {
        bail!("not confirmed: nothing was deleted");
    }
    Ok(())
}

/// Builds every function of the stack (plain `cargo build` for the emulator, one cargo-lambda
/// run per architecture for AWS) and packages each binary reproducibly.
pub fn build(
    app: &App,
    stage: &Stage,
    progress: &Progress,
) -> anyhow::Result<BTreeMap<String, Package>> {
    let root = context::project_root();
    progress.step(&format!(
        "building the functions for stage `{}`",
        stage.name
    ));
    let request = deployer::build::StageBuild {
        workspace_root: &root,
        unify_with: vec![env!("CARGO_PKG_NAME").to_string()],
        only: None,
    };
    let binaries = progress.suspend(|| deployer::build::build_stage(app, stage, &request))?;
    let mut packages = BTreeMap::new();
    for (bin, path) in binaries {
        let package = deployer::package::package_file(&path)
            .with_context(|| format!("cannot package {}", path.display()))?;
        packages.insert(bin, package);
    }
    Ok(packages)
}
