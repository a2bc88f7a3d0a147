//! Represent as the deployer's command line sees it: the stack (`stack.rs`), the tenants and
//! their records, and Represent's own commands. `main.rs` hands [`app`] to `deployer::cli`;
//! the workspace's integration tests deploy exactly the same stack.

// `bench.rs` names this crate by its name, as the binary did.
extern crate self as xtask;

pub mod bench;
pub mod bench_deploy;
pub mod context;
pub mod seeds;
pub mod stack;
pub mod tenants;

pub use deployer::cli::{emulator_cmd, output};

use deployer::cli::App;

/// Represent's command line: its stack, its tenants (the states, DC and the territories, from
/// the registry the functions embed), the `data` table seeded from `tenants/`, and the
/// commands only Represent has.
pub fn app() -> App {
    let root = context::project_root();
    App::new(env!("CARGO_MANIFEST_DIR"), stack::represent())
        .tenants(represent::registry::ids())
        .tenant_hint("a state's USPS code", "TX")
        .default_function("representatives")
        .seed(seeds::TABLE, seeds::records(root.clone()))
        .token_signing_key(stack::TOKEN_KEY)
        .tenant_commands(move |command| tenants::run(command, &root))
        .commands(|command: Commands| match command {
            Commands::Bench(bench) => {
                deployer::cli::context::runtime()?.block_on(bench::run(bench))
            }
        })
}

/// Represent's top-level commands beside the deployer's.
#[derive(Debug, clap::Subcommand)]
pub enum Commands {
    /// Measure the emulator (cold start, warm latency, throughput, many tenants)
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// What `bench.rs` builds with: the deployer's build of every function of the stack.
pub mod deploy {
    use std::collections::BTreeMap;

    use deployer::cli::output::Progress;
    use deployer::package::Package;
    use deployer::stack::{App, Stage};

    /// Builds and packages every function of `app` for `stage`.
    pub fn build(
        app: &App,
        stage: &Stage,
        progress: &Progress,
    ) -> anyhow::Result<BTreeMap<String, Package>> {
        deployer::cli::deploy::build(
            &crate::context::project_root(),
            Some(env!("CARGO_PKG_NAME")),
            app,
            stage,
            progress,
        )
    }
}
