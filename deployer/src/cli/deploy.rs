//! `cargo xtask deploy`, `plan` and `destroy`: build and package every function, observe the
//! stage, print the plan, and apply it.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::context::{self, StageArgs};
use super::output::{self, OutputFormat, Progress, outln, print_json};
use super::{Ctx, Outcome};
use crate::apply::{ApplyOptions, ApplyReport};
use crate::package::Package;
use crate::plan::{Plan, RenderOptions};
use crate::stack::{App, Stage, Target};

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Build and show the plan, change nothing (same as `cargo xtask plan`)
    #[arg(long)]
    pub dry_run: bool,
    /// Apply a plan that deletes or replaces resources of a stage that is not the emulator
    /// without asking (scripts, CI). Without a terminal to ask on, such a deploy is refused
    #[arg(long)]
    pub yes: bool,
    /// How many independent changes are applied at once (terraform's `-parallelism`)
    #[arg(long, default_value_t = ApplyOptions::default().parallelism, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub parallelism: usize,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Exit 0 when the stage is up to date, 2 when the plan has changes, 1 on an error (as
    /// `terraform plan -detailed-exitcode`)
    #[arg(long)]
    pub detailed_exitcode: bool,
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

pub async fn deploy(ctx: &Ctx<'_>, args: DeployArgs) -> Outcome {
    let options = ApplyOptions {
        parallelism: args.parallelism,
        ..ApplyOptions::default()
    };
    run(ctx, args.stage, args.dry_run, args.yes, &options).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn plan(ctx: &Ctx<'_>, args: PlanArgs) -> Outcome {
    let changes = run(ctx, args.stage, true, false, &ApplyOptions::default()).await?;
    Ok(if args.detailed_exitcode && changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Builds, plans and (unless `dry_run`) applies; returns whether the plan had changes.
async fn run(
    ctx: &Ctx<'_>,
    args: StageArgs,
    dry_run: bool,
    yes: bool,
    options: &ApplyOptions,
) -> anyhow::Result<bool> {
    let app = &ctx.app.stack;
    let stage = context::checked_stage(ctx.app, &args)?;
    // The tenants' data is checked before any call, so a broken file never half-deploys.
    let seeds = super::collect_seeds(ctx.app, None)?;
    // Connecting first: missing AWS credentials are reported before a long build.
    let target = context::connect(ctx, stage, &args).await?;
    let progress = Progress::new();
    let packages = build(
        &ctx.app.root,
        ctx.app.tool_package.as_deref(),
        app,
        stage,
        &progress,
    )?;
    let desired = crate::desired_with_seeds(app, &stage.name, &packages, seeds)
        .map_err(|errors| anyhow::anyhow!("the `{}` stack is invalid:\n{errors}", app.name))?;
    progress.step(&format!("observing stage `{}`", stage.name));
    let actual = crate::observe_stage(&target.clients, &desired).await?;
    let plan = crate::plan::plan(&desired, &actual);
    let mut report = ApplyReport {
        api_urls: crate::api_urls(&target.clients, &stage.name, &actual),
        ..ApplyReport::default()
    };
    if args.output == OutputFormat::Text {
        let text = plan.render(&RenderOptions {
            verbose: ctx.verbose,
            color: output::color_stdout(),
        });
        progress.suspend(|| output::write_stdout(text.as_bytes()))?;
    }
    if !dry_run && plan.has_changes() {
        let destructive = plan.destructive();
        if stage.target != Target::Emulator && !destructive.is_empty() && !yes {
            let what: Vec<&str> = destructive.iter().map(|c| c.resource.as_str()).collect();
            progress.suspend(|| {
                confirm(
                    &stage.name,
                    &format!(
                        "This deploy deletes or replaces {} in {}/{} ({}).",
                        what.join(", "),
                        app.name,
                        stage.name,
                        target.endpoint.as_deref().unwrap_or("AWS")
                    ),
                    &format!(
                        "the plan for stage `{}` deletes or replaces {}",
                        stage.name,
                        what.join(", ")
                    ),
                )
            })?;
        }
        report = crate::apply::apply(&target.clients, &plan, options, &|message: &str| {
            progress.step(message)
        })
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
        })?,
        OutputFormat::Text => {
            if dry_run {
                outln!("Dry run: nothing was changed.")?;
            } else if plan.has_changes() {
                outln!(
                    "Deployed {}/{} with {} changing API calls.",
                    app.name,
                    stage.name,
                    report.mutating_calls
                )?;
            } else {
                outln!("Nothing to deploy: no changing API call was made.")?;
            }
            if let Some(endpoint) = &target.endpoint {
                outln!("Endpoint: {endpoint}")?;
            }
            for (api, url) in &report.api_urls {
                outln!("API `{api}`: {url}")?;
            }
        }
    }
    Ok(plan.has_changes())
}

pub async fn destroy(ctx: &Ctx<'_>, args: DestroyArgs) -> Outcome {
    let app = &ctx.app.stack;
    let stage = context::checked_stage(ctx.app, &args.stage)?;
    // Nobody can answer without a terminal: refused before any call.
    if !args.yes && !std::io::stdin().is_terminal() {
        bail!(
            "destroying stage `{}` deletes every resource of it: pass --yes to confirm",
            stage.name
        );
    }
    let target = context::connect(ctx, stage, &args.stage).await?;
    let progress = Progress::new();
    progress.step(&format!("observing stage `{}`", stage.name));
    let actual = crate::observe::observe_app(&target.clients, app, &stage.name).await?;
    let plan = crate::plan::plan_destroy(&actual, &app.name, &stage.name);
    if args.stage.output == OutputFormat::Text || !args.yes {
        let text = plan.render(&RenderOptions {
            verbose: true,
            color: output::color_stdout(),
        });
        progress.suspend(|| {
            if args.stage.output == OutputFormat::Text {
                output::write_stdout(text.as_bytes())
            } else {
                eprint!("{text}");
                Ok(())
            }
        })?;
    }
    if !args.yes {
        progress.suspend(|| {
            confirm(
                &stage.name,
                &format!(
                    "This deletes every resource above of {}/{} at {}.",
                    app.name,
                    stage.name,
                    target.endpoint.as_deref().unwrap_or("AWS")
                ),
                &format!(
                    "destroying stage `{}` deletes every resource of it",
                    stage.name
                ),
            )
        })?;
    }
    let report = crate::apply::destroy(
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
        })?,
        OutputFormat::Text => outln!(
            "Destroyed {}/{} with {} changing API calls.",
            app.name,
            stage.name,
            report.mutating_calls
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal to type the stage name or `yes`; refuses outright when stdin is not a
/// terminal, since nobody could answer.
fn confirm(stage: &str, question: &str, refusal: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("{refusal}: pass --yes to confirm (stdin is not a terminal, so nobody can be asked)");
    }
    eprint!("{question}\nType the stage name `{stage}` or `yes` to go on: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !confirmed(&answer, stage) {
        bail!("not confirmed: nothing was changed");
    }
    Ok(())
}

/// Whether a typed answer confirms: the stage's name or `yes`, nothing looser.
fn confirmed(answer: &str, stage: &str) -> bool {
    let answer = answer.trim();
    answer == stage || answer == "yes"
}

/// Builds every function of the stack with one cargo-lambda run per architecture (normally one)
/// and packages each binary reproducibly.
pub fn build(
    root: &std::path::Path,
    unify_with: Option<&str>,
    app: &App,
    stage: &Stage,
    progress: &Progress,
) -> anyhow::Result<BTreeMap<String, Package>> {
    progress.step(&format!(
        "building the functions for stage `{}`",
        stage.name
    ));
    let request = crate::build::StageBuild {
        workspace_root: root,
        unify_with: unify_with.map(str::to_string).into_iter().collect(),
        only: None,
    };
    let binaries = progress.suspend(|| crate::build::build_stage(app, stage, &request))?;
    let mut packages = BTreeMap::new();
    for (bin, path) in binaries {
        let package = crate::package::package_file(&path)
            .with_context(|| format!("cannot package {}", path.display()))?;
        packages.insert(bin, package);
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_stage_name_or_yes_confirms() {
        assert!(confirmed("prod\n", "prod"));
        assert!(confirmed(" yes \n", "prod"));
        for no in ["", "y", "YES", "pro", "prod prod", "no"] {
            assert!(!confirmed(no, "prod"), "{no:?}");
        }
    }
}
