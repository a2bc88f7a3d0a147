//! `cargo xtask bench emulator`: what a developer feels on the local emulator — cold start of a
//! new tenant, warm latency, throughput, and what 1,000 tenants cost — printed as a table, with
//! `cargo lambda watch` measured in the same run where the measure applies.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_lambda::primitives::Blob;

use crate::context;
use crate::output::Progress;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Benchmark the emulator with the real `representatives` function
    Emulator(EmulatorBench),
    /// Benchmark deploys through an added per-call latency, sequential beside parallel
    Deploy(crate::bench_deploy::DeployBench),
}

#[derive(Debug, clap::Args)]
pub struct EmulatorBench {
    /// Warm invokes measured for the latency percentiles
    #[arg(long, default_value_t = 2000)]
    pub warm: usize,
    /// Distinct tenants invoked for the environment-cap measure
    #[arg(long, default_value_t = 1000)]
    pub tenants: usize,
    /// The emulator's cap on execution environments during the run
    #[arg(long, default_value_t = 64)]
    pub max_environments: usize,
    /// Skip the `cargo lambda watch` comparison (it compiles the function once more)
    #[arg(long)]
    pub no_watch: bool,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    if let BenchCommand::Deploy(args) = command {
        return crate::bench_deploy::run(args).await;
    }
    if cfg!(debug_assertions) {
        return rerun_optimised();
    }
    match command {
        BenchCommand::Emulator(args) => emulator(args).await,
        BenchCommand::Deploy(args) => crate::bench_deploy::run(args).await,
    }
}

/// Numbers from a debug build measure the debug build: the benchmark rebuilds xtask with
/// optimisations (once; later runs reuse it) and runs itself again from there.
fn rerun_optimised() -> anyhow::Result<()> {
    let root = context::project_root();
    eprintln!("benchmarks measure optimised code: building xtask in release mode first");
    // A target directory of its own: an optimised build of the whole SDK takes minutes, and
    // must neither wait for nor hold up the everyday debug builds.
    let target = context::target_dir().join("bench");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--package", "xtask"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building xtask in release mode failed ({status})");
    }
    let release = target.join("release").join("xtask");
    let status = Command::new(&release)
        .args(std::env::args_os().skip(1))
        .status()
        .with_context(|| format!("cannot run {}", release.display()))?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

struct Row {
    measure: String,
    emulator: String,
    watch: String,
}

fn row(measure: &str, emulator: String, watch: Option<String>) -> Row {
    Row {
        measure: measure.to_string(),
        emulator,
        watch: watch.unwrap_or_else(|| "-".to_string()),
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The function's main answer: the state, its senators and every House seat.
const FULL_ANSWER: &[u8] = b"{}";
/// A short answer (an unknown route) after the same tenant check, comparable with what
/// `cargo lambda watch` answers without a tenant id.
const SMALL_ANSWER: &[u8] = br#"{"path": "/bench"}"#;

async fn timed_invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    tenant: Option<&str>,
) -> anyhow::Result<Duration> {
    timed_invoke_with(lambda, function, tenant, FULL_ANSWER).await
}

async fn timed_invoke_with(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    tenant: Option<&str>,
    payload: &'static [u8],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = lambda
        .invoke()
        .function_name(function)
        .set_tenant_id(tenant.map(str::to_string))
        .payload(Blob::new(payload))
        .send()
        .await
        .with_context(|| format!("invoke {function} as {tenant:?}"))?;
    let elapsed = started.elapsed();
    if output.status_code() != 200 {
        bail!("invoke answered {}", output.status_code());
    }
    Ok(elapsed)
}

async fn warm_latencies(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    tenant: Option<&str>,
    payload: &'static [u8],
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    for _ in 0..50 {
        timed_invoke_with(lambda, function, tenant, payload).await?;
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        samples.push(timed_invoke_with(lambda, function, tenant, payload).await?);
    }
    samples.sort();
    Ok(samples)
}

async fn emulator(args: EmulatorBench) -> anyhow::Result<()> {
    let app = xtask::stack::represent();
    let stage = context::checked_stage(&app, "dev")?;
    let progress = Progress::new();
    let packages = crate::deploy::build(&app, stage, &progress)?;

    // The emulator runs as its own process, as `cargo xtask deploy` runs it and as
    // `cargo lambda watch` runs: measuring it inside this process would share one async runtime
    // between the client and the server.
    let state = context::target_dir().join("bench-emulator");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state)?;
    let port = free_port()?;
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    let server = Command::new(exe)
        .args(["emulator", "serve", "--port", &port.to_string()])
        .arg("--state-dir")
        .arg(&state)
        .args(["--max-environments", &args.max_environments.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(state.join("emulator.log"))?)
        .spawn()
        .context("cannot start the emulator")?;
    let server = KillOnDrop(server);
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while crate::emulator_cmd::http_get(port, "/_emulator/health").is_none() {
        if Instant::now() > deadline {
            bail!(
                "the emulator did not start; see {}",
                state.join("emulator.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sdk = context::emulator_config(&endpoint).await;
    let clients = deployer::Clients::new(&sdk);
    let tenants = crate::seeds::tenant_files(&context::project_root())?;
    let desired =
        deployer::desired_with_seeds(&app, "dev", &packages, vec![crate::seeds::seed(&tenants)])
            .map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let actual = deployer::observe_stage(&clients, &desired).await?;
    let plan = deployer::plan(&desired, &actual);
    deployer::apply(
        &clients,
        &plan,
        &deployer::ApplyOptions::default(),
        &|m: &str| progress.step(m),
    )
    .await?;
    let function = deployer::function_name(&app.name, "dev", "representatives");
    let lambda = &clients.lambda;
    let mut rows = Vec::new();

    progress.step("cold starts: first invoke of 20 new tenants");
    let mut cold = Vec::new();
    for i in 0..20 {
        cold.push(timed_invoke(lambda, &function, Some(&format!("cold-{i}"))).await?);
    }
    cold.sort();
    let init: Vec<f64> = status(&endpoint)?
        .into_iter()
        .filter(|e| e["tenant"].as_str().is_some_and(|t| t.starts_with("cold-")))
        .filter_map(|e| e["cold_start_ms"].as_f64())
        .collect();
    let init_p50 = median(init);
    rows.push(row(
        "cold start: first invoke of a tenant, p50",
        ms(percentile(&cold, 50.0)),
        None,
    ));
    rows.push(row(
        "cold start: process start to ready (emulator-measured), p50",
        format!("{init_p50:.3} ms"),
        None,
    ));

    progress.step(&format!(
        "warm latency: {} invokes of one tenant",
        args.warm
    ));
    let full = warm_latencies(lambda, &function, Some("TX"), FULL_ANSWER, args.warm).await?;
    let warm = warm_latencies(lambda, &function, Some("TX"), SMALL_ANSWER, args.warm).await?;

    let watch = if args.no_watch {
        None
    } else {
        progress.step("cargo lambda watch: building and measuring the same function");
        match watch_latencies(&progress, args.warm).await {
            Ok(samples) => Some(samples),
            Err(error) => {
                progress.step(&format!(
                    "cargo lambda watch could not be measured: {error:#}"
                ));
                None
            }
        }
    };
    for (label, p) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        rows.push(row(
            &format!("warm invoke, small answer, {label} ({} invokes)", args.warm),
            ms(percentile(&warm, p)),
            watch.as_ref().map(|w| ms(percentile(w, p))),
        ));
    }
    for (label, p) in [("p50", 50.0), ("p99", 99.0)] {
        rows.push(row(
            &format!(
                "warm invoke, Texas's 38 seats, {label} ({} invokes)",
                args.warm
            ),
            ms(percentile(&full, p)),
            None,
        ));
    }

    for tenants in [1usize, 8] {
        progress.step(&format!("throughput with {tenants} concurrent tenants"));
        let per_tenant = 2000 / tenants;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..tenants {
            let lambda = lambda.clone();
            let function = function.clone();
            tasks.push(tokio::spawn(async move {
                let tenant = format!("busy-{t}");
                for _ in 0..per_tenant {
                    timed_invoke(&lambda, &function, Some(&tenant)).await?;
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let rate = (per_tenant * tenants) as f64 / started.elapsed().as_secs_f64();
        rows.push(row(
            &format!("throughput, {tenants} concurrent tenant(s)"),
            format!("{rate:.0} invokes/s"),
            None,
        ));
    }

    progress.step(&format!(
        "{} distinct tenants, cap {}",
        args.tenants, args.max_environments
    ));
    let started = Instant::now();
    for i in 0..args.tenants {
        timed_invoke(lambda, &function, Some(&format!("tenant-{i}"))).await?;
    }
    let elapsed = started.elapsed();
    let environments = status(&endpoint)?.len();
    let processes = bootstrap_processes(&state);
    let rss_kib: u64 =
        processes.iter().map(|p| p.1).sum::<u64>() + rss_kib(&server.0.id().to_string());
    rows.push(row(
        &format!("{} tenants: time for all first invokes", args.tenants),
        format!("{:.2} s", elapsed.as_secs_f64()),
        None,
    ));
    rows.push(row(
        &format!(
            "{} tenants: environments (cap {})",
            args.tenants, args.max_environments
        ),
        environments.to_string(),
        None,
    ));
    rows.push(row(
        &format!("{} tenants: bootstrap processes alive", args.tenants),
        processes.len().to_string(),
        None,
    ));
    rows.push(row(
        &format!(
            "{} tenants: memory, emulator + environments (RSS)",
            args.tenants
        ),
        format!("{:.1} MiB", rss_kib as f64 / 1024.0),
        None,
    ));
    // Stopped as `cargo xtask emulator stop` stops it.
    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bootstrap_processes(&state).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
    rows.push(row(
        "after shutdown: leaked bootstrap processes",
        bootstrap_processes(&state).len().to_string(),
        None,
    ));
    progress.finish();

    let width = rows.iter().map(|r| r.measure.len()).max().unwrap_or(10);
    println!(
        "{:<width$}  {:>16}  {:>18}",
        "measure", "emulator", "cargo lambda watch"
    );
    for r in rows {
        println!("{:<width$}  {:>16}  {:>18}", r.measure, r.emulator, r.watch);
    }
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn status(endpoint: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let port: u16 = endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("emulator endpoint has a port")?;
    let body = crate::emulator_cmd::http_get(port, "/_emulator/status")
        .context("the emulator answers its status")?;
    let value: serde_json::Value = serde_json::from_str(&body)?;
    Ok(value["environments"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Running processes whose executable lives under the emulator's state directory (its
/// execution environments' `bootstrap`s), with their resident memory in KiB. Looking by
/// executable rather than by parent also finds environments orphaned by a dead emulator.
fn bootstrap_processes(state: &Path) -> Vec<(u32, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let state = state.canonicalize().unwrap_or_else(|_| state.to_path_buf());
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            exe.starts_with(&state)
                .then(|| (pid, rss_kib(&pid.to_string())))
        })
        .collect()
}

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `cargo lambda watch` on the same function and measures warm invokes through the same
/// SDK client. It passes no tenant id to the runtime, so the function answers with its short
/// missing-tenant answer: compared with the emulator's short answer, the round trip is the same
/// work.
async fn watch_latencies(progress: &Progress, count: usize) -> anyhow::Result<Vec<Duration>> {
    let root = context::project_root();
    let tool = deployer::tools::cargo_lambda(&root)?;
    let port = 9457;
    let (program, prefix) = tool.command.split_first().context("cargo-lambda command")?;
    let child = Command::new(program)
        // Its own process group, so the watcher's cargo and function processes stop with it.
        .process_group(0)
        .args(prefix)
        .args([
            "watch",
            "--release",
            "--invoke-port",
            &port.to_string(),
            "-p",
            "representatives",
        ])
        .current_dir(&root)
        .env("PATH", tool.path_env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start cargo lambda watch")?;
    let _guard = KillOnDrop(child);
    let sdk = context::emulator_config(&format!("http://127.0.0.1:{port}")).await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let deadline = Instant::now() + Duration::from_secs(600);
    progress.step("waiting for cargo lambda watch to build and answer");
    loop {
        let answered = lambda
            .invoke()
            .function_name("representatives")
            .payload(Blob::new(&b"{}"[..]))
            .send()
            .await;
        if answered.is_ok() {
            break;
        }
        if Instant::now() > deadline {
            bail!("cargo lambda watch did not answer within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..50 {
        lambda
            .invoke()
            .function_name("representatives")
            .payload(Blob::new(&b"{}"[..]))
            .send()
            .await?;
    }
    for _ in 0..count {
        let started = Instant::now();
        lambda
            .invoke()
            .function_name("representatives")
            .payload(Blob::new(&b"{}"[..]))
            .send()
            .await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(samples)
}

pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
