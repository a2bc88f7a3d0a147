//! `cargo xtask`: deploy, plan, invoke and destroy the Represent stack, run the local emulator,
//! manage tenants. This file parses and dispatches; each command lives in its own module.

mod bench;
mod bench_deploy;
mod context;
mod deploy;
mod emulator_cmd;
mod invoke;
mod logs;
mod output;
mod seeds;
mod stats;
mod tenants;
mod watch;

use clap::{Parser, Subcommand};

/// Ship the Represent multi-tenant Lambda app: to AWS, or to the local emulator (stage `dev`).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build every function, then create or update what changed in the stage
    Deploy(deploy::DeployArgs),
    /// Show what a deploy would change, without changing anything
    Plan(deploy::PlanArgs),
    /// Invoke a deployed function as one tenant
    Invoke(invoke::InvokeArgs),
    /// Show one tenant's log lines, newest last
    Logs(logs::LogsArgs),
    /// Per-tenant invocations, errors, cold starts, latency and estimated isolation fee
    Stats(stats::StatsArgs),
    /// Delete every resource of a stage
    Destroy(deploy::DestroyArgs),
    /// Run the local emulator that stage `dev` deploys to
    #[command(subcommand)]
    Emulator(emulator_cmd::EmulatorCommand),
    /// Measure the emulator (cold start, warm latency, throughput, many tenants)
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Deploy, then rebuild and update the functions whose code changes, until Ctrl-C
    Watch(watch::WatchArgs),
    /// Import, list and validate the tenants (one per US state)
    #[command(subcommand)]
    Tenants(tenants::TenantsCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tenants(tenants::TenantsCommand::Seed(args)) => {
            context::runtime().and_then(|rt| rt.block_on(seeds::run(args)))
        }
        Command::Tenants(cmd) => tenants::run(cmd, &context::project_root()),
        Command::Emulator(emulator_cmd::EmulatorCommand::Serve(args)) => emulator_cmd::serve(args),
        command => context::runtime().and_then(|rt| {
            rt.block_on(async move {
                match command {
                    Command::Deploy(args) => deploy::deploy(args).await,
                    Command::Plan(args) => deploy::plan(args).await,
                    Command::Destroy(args) => deploy::destroy(args).await,
                    Command::Invoke(args) => invoke::invoke(args).await,
                    Command::Logs(args) => logs::run(args).await,
                    Command::Stats(args) => stats::run(args).await,
                    Command::Emulator(cmd) => emulator_cmd::run(cmd).await,
                    Command::Bench(cmd) => bench::run(cmd).await,
                    Command::Watch(args) => watch::run(args).await,
                    Command::Tenants(_) => unreachable!("handled above"),
                }
            })
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
