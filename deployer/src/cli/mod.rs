//! The SDK's command line: deploy, plan, destroy, invoke, logs, stats, the local emulator and
//! tenant seeding for any app, so a workspace's `xtask/src/main.rs` is a few lines:
//!
//! ```text
//! use deployer::cli::App;
//! use deployer::stack::{App as Stack, Function, Stage};
//!
//! fn main() -> std::process::ExitCode {
//!     let stack = Stack::new("hello")
//!         .function(Function::new("hello").per_tenant())
//!         .stage(Stage::emulator("dev"));
//!     deployer::cli::main(App::new(env!("CARGO_MANIFEST_DIR"), stack).tenants(["blue", "green"]))
//! }
//! ```
//!
//! (`examples/hello-tenants` is this, compiled and tested.) The app brings its stack, its
//! tenants (the registry `invoke` and `logs` check against), the records to seed per table and
//! tenant, and commands of its own. Results go to stdout (text or `--output json`), progress and
//! the calls made (`-v`) to stderr; a closed pipe ends a command quietly.

pub mod audit;
pub mod context;
pub mod deploy;
pub mod emulator_cmd;
pub mod invoke;
pub mod logs;
pub mod output;
pub mod seeds;
pub mod stats;
pub mod token;
pub mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::seed::Records;
use crate::stack;

/// Records to seed into one table for one tenant; called for every tenant before any AWS call.
type RecordsFn = Box<dyn Fn(&str) -> anyhow::Result<Records>>;
/// An app command: parses its own arguments from the matches and runs, or says it is not its.
type Handler = Box<dyn Fn(&ArgMatches) -> Option<anyhow::Result<()>>>;

/// What the command line needs to know about an app: its stack, where its workspace is, its
/// tenants and their data, and the commands it adds.
pub struct App {
    pub stack: stack::App,
    /// The cargo workspace holding the app's function crates (builds, `target/`, `.tools/`).
    pub root: PathBuf,
    /// How users run the command line, shown in usage lines and hints.
    pub bin_name: String,
    /// Every tenant id, the registry that `invoke`, `logs` and `tenants seed` check against.
    pub tenants: Vec<String>,
    /// How a tenant id looks, for help texts and errors ("a state's USPS code").
    pub tenant_hint: String,
    /// A tenant id to show in examples (`--tenant TX`); the first tenant by default.
    pub example_tenant: Option<String>,
    /// The function `invoke` calls when `--function` is not given.
    pub default_function: Option<String>,
    /// The package running this command line (the app's xtask): stage `dev` builds its functions
    /// beside it, so cargo reuses the dependencies it already compiled for it.
    pub tool_package: Option<String>,
    seeds: Vec<(String, RecordsFn)>,
    extensions: Vec<Extension>,
    /// The signing key (its logical name) that `token` signs with: the one the app's token
    /// authorizer reads.
    pub token_key: Option<String>,
}

struct Extension {
    /// The built-in command group it joins (`tenants`), or `None` for top-level commands.
    under: Option<&'static str>,
    augment: fn(clap::Command) -> clap::Command,
    run: Handler,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("stack", &self.stack.name)
            .field("root", &self.root)
            .field("tenants", &self.tenants.len())
            .field(
                "seeds",
                &self.seeds.iter().map(|(t, _)| t).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl App {
    /// The app's command line. `manifest_dir` is the calling crate's `env!("CARGO_MANIFEST_DIR")`:
    /// the workspace around it is where the functions are built.
    pub fn new(manifest_dir: impl AsRef<Path>, stack: stack::App) -> Self {
        let manifest_dir = manifest_dir.as_ref();
        App {
            root: workspace_root(manifest_dir),
            tool_package: package_name(manifest_dir),
            bin_name: "cargo xtask".to_string(),
            tenants: Vec::new(),
            tenant_hint: "a tenant id".to_string(),
            example_tenant: None,
            default_function: match stack.functions.as_slice() {
                [only] => Some(only.logical.clone()),
                _ => None,
            },
            stack,
            seeds: Vec::new(),
            extensions: Vec::new(),
            token_key: None,
        }
    }

    /// The tenant registry: every tenant id the app serves.
    pub fn tenants<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> Self {
        self.tenants = ids.into_iter().map(Into::into).collect();
        self
    }

    /// How a tenant id looks and one to show, for help and errors: `("a state's USPS code",
    /// "TX")` reads "a state's USPS code such as TX".
    pub fn tenant_hint(mut self, hint: &str, example: &str) -> Self {
        self.tenant_hint = hint.to_string();
        self.example_tenant = Some(example.to_string());
        self
    }

    /// A tenant id for examples in messages.
    pub fn example_tenant(&self) -> &str {
        self.example_tenant
            .as_deref()
            .or(self.tenants.first().map(String::as_str))
            .unwrap_or("ID")
    }

    fn described_tenants(&self) -> String {
        format!("{} such as {}", self.tenant_hint, self.example_tenant())
    }

    /// The function `invoke` calls without `--function` (an app of one function needs none).
    pub fn default_function(mut self, logical: &str) -> Self {
        self.default_function = Some(logical.to_string());
        self
    }

    /// Seeds the table `table` (its logical name in the stack): `records(tenant)` gives a
    /// tenant's records, record key -> JSON document. Every deploy and `tenants seed` write
    /// only what differs.
    pub fn seed(
        mut self,
        table: &str,
        records: impl Fn(&str) -> anyhow::Result<Records> + 'static,
    ) -> Self {
        self.seeds.push((table.to_string(), Box::new(records)));
        self
    }

    /// Names the signing key (as functions declare it with `reads_signing_key`) that `token`
    /// mints tokens with, for the app's token authorizer.
    pub fn token_signing_key(mut self, logical: &str) -> Self {
        self.token_key = Some(logical.to_string());
        self
    }

    /// Adds the app's own top-level commands (a clap `Subcommand` enum) and what runs them.
    pub fn commands<T: Subcommand + 'static>(
        self,
        run: impl Fn(T) -> anyhow::Result<()> + 'static,
    ) -> Self {
        self.extend::<T>(None, run)
    }

    /// Adds the app's own commands to the `tenants` group beside `tenants seed`, such as
    /// `tenants import`.
    pub fn tenant_commands<T: Subcommand + 'static>(
        self,
        run: impl Fn(T) -> anyhow::Result<()> + 'static,
    ) -> Self {
        self.extend::<T>(Some("tenants"), run)
    }

    fn extend<T: Subcommand + 'static>(
        mut self,
        under: Option<&'static str>,
        run: impl Fn(T) -> anyhow::Result<()> + 'static,
    ) -> Self {
        self.extensions.push(Extension {
            under,
            augment: |command| T::augment_subcommands(command),
            run: Box::new(move |matches| {
                let name = matches.subcommand_name()?;
                if !T::has_subcommand(name) {
                    return None;
                }
                Some(
                    T::from_arg_matches(matches)
                        .map_err(|e| anyhow::anyhow!("{e}"))
                        .and_then(&run),
                )
            }),
        });
        self
    }

    /// Whether `tenant` is one of the app's tenants.
    pub fn is_tenant(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == tenant)
    }

    /// The error for a tenant id that is well formed but not the app's.
    pub fn unknown_tenant(&self, tenant: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "unknown tenant `{tenant}`: not one of the {} tenants of `{}` ({}); `{} tenants \
             list` shows them",
            self.tenants.len(),
            self.stack.name,
            self.described_tenants(),
            self.bin_name
        )
    }
}

/// The workspace root: the nearest directory from `start` up whose `Cargo.toml` declares a
/// `[workspace]`, else `start` itself.
/// The `[package]` name in `manifest_dir`'s Cargo.toml.
fn package_name(manifest_dir: &Path) -> Option<String> {
    let manifest = std::fs::read_to_string(manifest_dir.join("Cargo.toml")).ok()?;
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start().strip_prefix('=')?.trim();
            return Some(value.trim_matches('"').to_string());
        }
    }
    None
}

fn workspace_root(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.lines().any(|l| l.trim() == "[workspace]"))
        })
        .unwrap_or(start)
        .to_path_buf()
}

/// Ship a multi-tenant Lambda app: to AWS, or to the local emulator (stage `dev`).
#[derive(Debug, Parser)]
#[command(version, long_about = None)]
struct Cli {
    /// Show every AWS call made (on stderr), and on `plan`/`deploy` every resource of the plan,
    /// unchanged ones included
    #[arg(short, long, global = true)]
    verbose: bool,
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
    /// The app's tenants and their data
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Print a shell completion script, for example `source <(cargo xtask completions bash)`
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Deploy, then rebuild and update the functions whose code changes, until Ctrl-C
    Watch(watch::WatchArgs),
    /// Data calls of the functions' roles, denied cross-tenant attempts flagged (emulator)
    Audit(audit::AuditArgs),
    /// Print a token for the app's token authorizer, naming one tenant
    Token(token::TokenArgs),
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// Write every tenant's records into the stage's tables, changing only what differs (a
    /// deploy does this too)
    Seed(seeds::SeedArgs),
}

/// Everything a command receives: the app and the flags that apply to every command.
pub struct Ctx<'a> {
    pub app: &'a App,
    /// `-v`: report every AWS call on stderr, show unchanged resources in plans.
    pub verbose: bool,
}

/// The full command: the built-ins, the app's own commands, usage lines naming `bin_name`, the
/// app's tenant hint and default function in the help.
pub fn command(app: &App) -> clap::Command {
    let mut command = Cli::command()
        .name(app.bin_name.clone())
        .bin_name(app.bin_name.clone());
    for extension in &app.extensions {
        command = match extension.under {
            None => (extension.augment)(command),
            Some(group) => command.mut_subcommand(group, extension.augment),
        };
    }
    // Set last: a derived `Subcommand` augmenting the command brings its own doc as `about`.
    command = command.about(format!(
        "Ship `{}`, a multi-tenant Lambda app: to AWS, or to the local emulator (stage `dev`)",
        app.stack.name
    ));
    let tenant_help = format!(
        "Tenant to invoke as: {} (`{} tenants list` shows them). Required by functions in tenant \
         isolation mode; `--tenant-id` is the AWS CLI's spelling",
        app.described_tenants(),
        app.bin_name
    );
    let logs_help = format!(
        "Tenant whose lines to show: {}. Only lines that carry this tenant id are read",
        app.described_tenants()
    );
    if command
        .find_subcommand("tenants")
        .and_then(|t| t.find_subcommand("list"))
        .is_none()
    {
        command = command.mut_subcommand("tenants", |t| {
            t.subcommand(
                clap::Command::new("list").about("List the tenant ids").arg(
                    clap::Arg::new("output")
                        .long("output")
                        .help("Results as human-readable text or as JSON for scripts")
                        .value_parser(["text", "json"])
                        .default_value("text"),
                ),
            )
        });
    }
    let default_function = app.default_function.clone();
    command
        .mut_subcommand("invoke", |c| {
            c.mut_arg("tenant", |a| a.help(tenant_help))
                .mut_arg("function", |a| match default_function {
                    Some(f) => a.default_value(f).required(false),
                    None => a.required(true),
                })
        })
        .mut_subcommand("logs", |c| c.mut_arg("tenant", |a| a.help(logs_help)))
}

/// Runs the command line for `app` and returns the process's exit code: 0 on success (and when
/// stdout is closed early, as by `| head`), 1 on an error, printed as one sentence, and the
/// code a command asks for (`plan --detailed-exitcode` answers 2 when there are changes).
pub fn main(app: App) -> ExitCode {
    let matches = command(&app).get_matches();
    match run(&app, &matches) {
        Ok(code) => code,
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// An error as the user reads it: each context, then the cause, on one line. A deploy error
/// already says the call, the resource and what AWS said, so the SDK error it keeps as its
/// source is not printed after it.
fn error_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        parts.push(cause.to_string());
        if cause.is::<crate::error::DeployError>() || cause.is::<crate::apply::ApplyFailure>() {
            break;
        }
    }
    parts.join(": ")
}

/// The result an app's records functions and commands return.
pub type Result<T> = anyhow::Result<T>;

/// A command's outcome when it did not fail: the exit code it asks for.
pub type Outcome = anyhow::Result<ExitCode>;

fn run(app: &App, matches: &ArgMatches) -> Outcome {
    let verbose = matches.get_flag("verbose");
    let ctx = Ctx { app, verbose };
    for extension in app.extensions.iter().filter(|e| e.under.is_none()) {
        if let Some(result) = (extension.run)(matches) {
            return result.map(|()| ExitCode::SUCCESS);
        }
    }
    if let Some(("tenants", sub)) = matches.subcommand() {
        for extension in app.extensions.iter().filter(|e| e.under == Some("tenants")) {
            if let Some(result) = (extension.run)(sub) {
                return result.map(|()| ExitCode::SUCCESS);
            }
        }
        if let Some(("list", list)) = sub.subcommand() {
            let json = list
                .get_one::<String>("output")
                .is_some_and(|o| o == "json");
            let text = if json {
                format!("{}\n", serde_json::to_string_pretty(&app.tenants)?)
            } else {
                app.tenants.iter().map(|t| format!("{t}\n")).collect()
            };
            output::write_stdout(text.as_bytes())?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let cli = Cli::from_arg_matches(matches).map_err(|e| anyhow::anyhow!("{e}"))?;
    match cli.command {
        Command::Completions { shell } => {
            let mut command = command(app);
            let mut script = Vec::new();
            // Shells complete one word: `cargo xtask` is completed as `cargo-xtask`.
            let name = app.bin_name.replace(' ', "-");
            clap_complete::generate(shell, &mut command, name, &mut script);
            output::write_stdout(&script)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Emulator(emulator_cmd::EmulatorCommand::Serve(args)) => {
            emulator_cmd::serve(app, args).map(|()| ExitCode::SUCCESS)
        }
        command => context::runtime()?.block_on(async move {
            match command {
                Command::Deploy(args) => deploy::deploy(&ctx, args).await,
                Command::Plan(args) => deploy::plan(&ctx, args).await,
                Command::Destroy(args) => deploy::destroy(&ctx, args).await,
                Command::Invoke(args) => invoke::invoke(&ctx, args).await,
                Command::Logs(args) => logs::run(&ctx, args).await,
                Command::Stats(args) => stats::run(&ctx, args).await,
                Command::Emulator(cmd) => emulator_cmd::run(&ctx, cmd).await,
                Command::Tenants(TenantsCommand::Seed(args)) => seeds::run(&ctx, args).await,
                Command::Watch(args) => watch::run(&ctx, args).await,
                Command::Audit(args) => audit::run(&ctx, args).await,
                Command::Token(args) => token::run(&ctx, args).await,
                Command::Completions { .. } => unreachable!("handled above"),
            }
        }),
    }
}

/// Seed data for every table the app seeds, for every tenant (or only `only`): each records
/// function is called before any AWS call, and every problem is reported at once.
pub fn collect_seeds(app: &App, only: Option<&str>) -> anyhow::Result<Vec<crate::Seed>> {
    let mut problems: Vec<String> = Vec::new();
    let mut seeds = Vec::new();
    for (table, records) in &app.seeds {
        let mut seed = crate::Seed::new(table);
        for tenant in app.tenants.iter().filter(|t| only.is_none_or(|o| o == *t)) {
            match records(tenant) {
                Ok(records) => {
                    seed.partitions.insert(tenant.clone(), records);
                }
                Err(error) => {
                    let problem = format!("{error:#}");
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                }
            }
        }
        seeds.push(seed);
    }
    match problems.as_slice() {
        [] => Ok(seeds),
        [one] => anyhow::bail!("{one}"),
        many => anyhow::bail!(
            "the tenants' data has {} problems:\n  - {}",
            many.len(),
            many.join("\n  - ")
        ),
    }
}
