//! `cargo xtask bench emulator`: what a developer feels on the local emulator — cold start of a
//! new tenant, warm latency, throughput, and what 1,000 tenants cost — printed as a table, with
//! `cargo lambda watch` measured in the same run where the measure applies. `cargo xtask bench
//! watch`: from saving an edit to the first answer of the new code, for both watchers.
//!
//! It measures what users run: the emulator is the same executable, built in the same profile,
//! that `cargo xtask deploy` starts, and the function is built as deploy builds it. Both servers
//! are driven by one small keep-alive HTTP/1.1 client of the Invoke API, so the numbers are the
//! servers' own and not an SDK's (signing, retries, its async runtime).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::context;
use crate::output::Progress;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Benchmark the emulator with the real `representatives` function
    Emulator(EmulatorBench),
    /// Time from saving a change to a function's source to the first invoke answering with the
    /// new code: `cargo xtask watch` beside `cargo lambda watch`, on the same edit
    Watch(WatchBench),
    /// Benchmark deploys through an added per-call latency, sequential beside parallel
    Deploy(crate::bench_deploy::DeployBench),
}

#[derive(Debug, clap::Args)]
pub struct WatchBench {}

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
    /// Run the emulator from another xtask executable (to compare two builds); by default it is
    /// this one, which is what `cargo xtask deploy` starts
    #[arg(long, value_name = "PATH", hide = true)]
    pub emulator_exe: Option<PathBuf>,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Emulator(args) => emulator(args).await,
        BenchCommand::Watch(_) => save_to_answer().await,
        BenchCommand::Deploy(args) => crate::bench_deploy::run(args).await,
    }
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

/// A keep-alive HTTP/1.1 client of Lambda's Invoke API on a loopback port.
struct Invoker {
    port: u16,
    connection: Option<BufReader<TcpStream>>,
    /// How long one answer may take; an invoke that times out fails and its connection is
    /// dropped.
    read_timeout: Duration,
}

/// Status and body of one answer, and whether the server closes the connection after it.
struct Answer {
    status: u16,
    body: Vec<u8>,
    close: bool,
}

impl Invoker {
    fn new(port: u16) -> Self {
        Invoker {
            port,
            connection: None,
            // A first build of `cargo lambda watch` holds the first invoke until it is done.
            read_timeout: Duration::from_secs(900),
        }
    }

    /// Sets how long each later answer may take.
    fn set_read_timeout(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.read_timeout = timeout;
        if let Some(connection) = &self.connection {
            connection.get_ref().set_read_timeout(Some(timeout))?;
        }
        Ok(())
    }

    /// Invokes `function` and returns the answer's status and body.
    fn invoke(
        &mut self,
        function: &str,
        tenant: Option<&str>,
        payload: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut request = format!(
            "POST /2015-03-31/functions/{function}/invocations HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            self.port,
            payload.len()
        );
        if let Some(tenant) = tenant {
            request.push_str(&format!("X-Amz-Tenant-Id: {tenant}\r\n"));
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(payload);
        // A kept-alive connection the server already closed fails once; a new one must not.
        for attempt in 0..2 {
            let reused = self.connection.is_some();
            let connection = match &mut self.connection {
                Some(connection) => connection,
                None => {
                    let stream = TcpStream::connect(("127.0.0.1", self.port))
                        .with_context(|| format!("cannot connect to 127.0.0.1:{}", self.port))?;
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(self.read_timeout))?;
                    self.connection.insert(BufReader::new(stream))
                }
            };
            match round_trip(connection, &request) {
                Ok(answer) => {
                    if answer.close {
                        self.connection = None;
                    }
                    return Ok((answer.status, answer.body));
                }
                Err(error) => {
                    self.connection = None;
                    if !reused || attempt == 1 {
                        return Err(error).context(format!("invoke {function} as {tenant:?}"));
                    }
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Invokes and times one invoke that must answer 200.
    fn timed(
        &mut self,
        function: &str,
        tenant: Option<&str>,
        payload: &[u8],
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let (status, body) = self.invoke(function, tenant, payload)?;
        let elapsed = started.elapsed();
        if status != 200 {
            bail!(
                "invoke of {function} as {tenant:?} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(elapsed)
    }
}

fn round_trip(connection: &mut BufReader<TcpStream>, request: &[u8]) -> anyhow::Result<Answer> {
    connection.get_mut().write_all(request)?;
    let mut line = String::new();
    if connection.read_line(&mut line)? == 0 {
        bail!("the server closed the connection");
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP status line: {line:?}"))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        line.clear();
        connection.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            connection.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("not a chunk size: {line:?}"))?;
            if size == 0 {
                // Trailers, then the empty line that ends the message.
                loop {
                    line.clear();
                    if connection.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            connection.read_exact(&mut body[start..])?;
            line.clear();
            connection.read_line(&mut line)?;
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        connection.read_exact(&mut body)?;
    } else {
        connection.read_to_end(&mut body)?;
        close = true;
    }
    Ok(Answer {
        status,
        body,
        close,
    })
}

/// `count` warm invokes after 50 unmeasured ones, sorted.
fn warm_latencies(
    invoker: &mut Invoker,
    function: &str,
    tenant: Option<&str>,
    payload: &[u8],
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    for _ in 0..50 {
        invoker.timed(function, tenant, payload)?;
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        samples.push(invoker.timed(function, tenant, payload)?);
    }
    samples.sort();
    Ok(samples)
}

/// A copy of `function` without tenant isolation, as `cargo lambda watch` runs it: invoked
/// without a tenant id, the same binary answers the same short refusal there and here, so the
/// warm rows compare the servers on identical function work.
async fn shared_copy(
    clients: &deployer::Clients,
    function: &str,
    zip: &[u8],
) -> anyhow::Result<String> {
    let name = format!("{function}-shared");
    let got = clients
        .lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .context("GetFunction of the benchmarked function")?;
    let config = got.configuration().context("a function configuration")?;
    let mut create = clients
        .lambda
        .create_function()
        .function_name(&name)
        .set_runtime(config.runtime().cloned())
        .set_handler(config.handler().map(str::to_owned))
        .set_role(config.role().map(str::to_owned))
        .set_memory_size(config.memory_size())
        .set_timeout(config.timeout())
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip.to_vec()))
                .build(),
        );
    if let Some(env) = config.environment().and_then(|e| e.variables()) {
        create = create.environment(
            aws_sdk_lambda::types::Environment::builder()
                .set_variables(Some(env.clone()))
                .build(),
        );
    }
    create
        .send()
        .await
        .context("CreateFunction of the shared copy")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = clients
            .lambda
            .get_function()
            .function_name(&name)
            .send()
            .await?
            .configuration()
            .and_then(|c| c.state().cloned());
        if state == Some(aws_sdk_lambda::types::State::Active) {
            return Ok(name);
        }
        if Instant::now() > deadline {
            bail!("the shared copy did not become active");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `cargo lambda watch`, built and serving the same function, for the competitor's column.
struct Watch {
    _process: KillOnDrop,
    invoker: Invoker,
    /// The first invoke after a restart of `cargo lambda watch` with everything built.
    cold: Duration,
}

async fn emulator(args: EmulatorBench) -> anyhow::Result<()> {
    let app = xtask::stack::represent();
    let progress = Progress::new();
    // The emulator runs as its own process, started as `cargo xtask deploy` starts it (this
    // executable, `emulator serve`) and as `cargo lambda watch` runs.
    let state = context::target_dir().join("bench-emulator");
    let exe = match &args.emulator_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().context("cannot find the xtask executable")?,
    };
    let (server, port, clients, packages) =
        bench_stage(&app, &progress, &state, &exe, args.max_environments).await?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let function = deployer::function_name(&app.name, "dev", "representatives");
    let mut invoker = Invoker::new(port);
    let mut rows = Vec::new();

    let mut watch = if args.no_watch {
        None
    } else {
        progress.step("cargo lambda watch: building and measuring the same function");
        match start_watch_measured(&progress) {
            Ok(watch) => Some(watch),
            Err(error) => {
                progress.step(&format!(
                    "cargo lambda watch could not be measured: {error:#}"
                ));
                None
            }
        }
    };

    progress.step("cold starts: first invoke of 20 new tenants");
    let mut cold = Vec::new();
    for i in 0..20 {
        let tenant = format!("cold-{i}");
        cold.push((
            tenant.clone(),
            invoker.timed(&function, Some(&tenant), FULL_ANSWER)?,
        ));
    }
    let inits: Vec<(String, f64)> = status(&endpoint)?
        .into_iter()
        .filter_map(|e| {
            Some((
                e["tenant"].as_str()?.to_owned(),
                e["cold_start_ms"].as_f64()?,
            ))
        })
        .collect();
    let mut beyond_init: Vec<Duration> = cold
        .iter()
        .filter_map(|(tenant, took)| {
            let init = inits.iter().find(|(t, _)| t == tenant)?.1;
            Some(took.saturating_sub(Duration::from_secs_f64(init / 1000.0)))
        })
        .collect();
    beyond_init.sort();
    let mut cold: Vec<Duration> = cold.into_iter().map(|(_, took)| took).collect();
    cold.sort();
    let init_p50 = median(inits.iter().map(|(_, init)| *init).collect());
    rows.push(row(
        "cold start: first invoke of a new tenant, p50",
        ms(percentile(&cold, 50.0)),
        watch.as_ref().map(|w| ms(w.cold)),
    ));
    rows.push(row(
        "cold start: function init (process start to ready), p50",
        format!("{init_p50:.3} ms"),
        None,
    ));
    rows.push(row(
        "cold start: beyond the function's init, p50",
        ms(percentile(&beyond_init, 50.0)),
        None,
    ));

    progress.step(&format!(
        "warm latency: {} invokes of one tenant",
        args.warm
    ));
    let full = warm_latencies(&mut invoker, &function, Some("TX"), FULL_ANSWER, args.warm)?;
    let warm = warm_latencies(&mut invoker, &function, Some("TX"), SMALL_ANSWER, args.warm)?;
    let zip = &packages
        .get("representatives")
        .context("the representatives package")?
        .bytes;
    let shared = shared_copy(&clients, &function, zip).await?;
    let (same, watch_warm) = interleaved_latencies(
        &mut invoker,
        &shared,
        watch.as_mut().map(|w| &mut w.invoker),
        args.warm,
    )?;
    // The rest measures the emulator alone: cargo lambda watch stops here.
    drop(watch);
    for (label, p) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        rows.push(row(
            &format!(
                "warm invoke, same function and answer as watch, {label} ({} invokes)",
                args.warm
            ),
            ms(percentile(&same, p)),
            watch_warm.as_ref().map(|w| ms(percentile(w, p))),
        ));
    }
    for (label, p) in [("p50", 50.0), ("p99", 99.0)] {
        rows.push(row(
            &format!(
                "warm invoke, one tenant, small answer, {label} ({} invokes)",
                args.warm
            ),
            ms(percentile(&warm, p)),
            None,
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
        let workers: Vec<_> = (0..tenants)
            .map(|t| {
                let function = function.clone();
                std::thread::spawn(move || {
                    let mut invoker = Invoker::new(port);
                    let tenant = format!("busy-{t}");
                    for _ in 0..per_tenant {
                        invoker.timed(&function, Some(&tenant), FULL_ANSWER)?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a throughput worker panicked"))??;
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
        invoker.timed(&function, Some(&format!("tenant-{i}")), FULL_ANSWER)?;
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

    println!("emulator: {} emulator serve", exe.display());
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
fn free_port() -> anyhow::Result<u16> {
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

/// Runs `cargo lambda watch` (its default debug build, as a user starts it) on the same function
/// until it answers, then restarts it to time the first invoke of an already built function, and
/// leaves that second one serving for the warm rows. It passes no tenant id to the runtime, so the
/// function answers with its short missing-tenant answer: compared with the emulator's short
/// answer, the round trip is the same work.
fn start_watch_measured(progress: &Progress) -> anyhow::Result<Watch> {
    let port = free_port()?;
    let watch = start_watch(port)?;
    progress.step("waiting for cargo lambda watch to build and answer");
    let mut invoker = Invoker::new(port);
    wait_for_watch(&mut invoker)?;
    drop(watch);

    let port = free_port()?;
    let process = start_watch(port)?;
    let mut invoker = Invoker::new(port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("cargo lambda watch did not listen again within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cold = invoker.timed("representatives", None, FULL_ANSWER)?;
    Ok(Watch {
        _process: process,
        invoker,
        cold,
    })
}

/// `count` warm invokes of the emulator's `function` and, when it runs, of `cargo lambda watch`'s,
/// taken in alternating blocks after 50 unmeasured ones each, so that whatever else the machine
/// does in the meantime weighs on both columns alike. Each result is sorted.
fn interleaved_latencies(
    emulator: &mut Invoker,
    function: &str,
    mut watch: Option<&mut Invoker>,
    count: usize,
) -> anyhow::Result<(Vec<Duration>, Option<Vec<Duration>>)> {
    const BLOCKS: usize = 20;
    for _ in 0..50 {
        emulator.timed(function, None, FULL_ANSWER)?;
        if let Some(watch) = watch.as_deref_mut() {
            watch.timed("representatives", None, FULL_ANSWER)?;
        }
    }
    let mut ours = Vec::with_capacity(count);
    let mut theirs = Vec::with_capacity(count);
    for block in 0..BLOCKS {
        let size = count / BLOCKS + usize::from(block < count % BLOCKS);
        for _ in 0..size {
            ours.push(emulator.timed(function, None, FULL_ANSWER)?);
        }
        if let Some(watch) = watch.as_deref_mut() {
            for _ in 0..size {
                theirs.push(watch.timed("representatives", None, FULL_ANSWER)?);
            }
        }
    }
    ours.sort();
    theirs.sort();
    Ok((ours, watch.is_some().then_some(theirs)))
}

fn start_watch(port: u16) -> anyhow::Result<KillOnDrop> {
    let root = context::project_root();
    let tool = deployer::tools::cargo_lambda(&root)?;
    let (program, prefix) = tool.command.split_first().context("cargo-lambda command")?;
    let child = Command::new(program)
        // Its own process group, so the watcher's cargo and function processes stop with it.
        .process_group(0)
        .args(prefix)
        .args([
            "watch",
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
    Ok(KillOnDrop(child))
}

/// Invokes until `cargo lambda watch` has built the function and it answers.
fn wait_for_watch(invoker: &mut Invoker) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if let Ok((200, _)) = invoker.invoke("representatives", None, FULL_ANSWER) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("cargo lambda watch did not answer within 15 minutes");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub(crate) struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        // The group may be gone already (the watcher exited): nothing to report then.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `exe emulator serve` (the executable `cargo xtask deploy` starts) with a fresh state
/// directory on a free port, and waits until it answers.
pub(crate) async fn serve_emulator(
    exe: &Path,
    state: &Path,
    max_environments: usize,
) -> anyhow::Result<(KillOnDrop, u16)> {
    let _ = std::fs::remove_dir_all(state);
    std::fs::create_dir_all(state)?;
    let port = free_port()?;
    let server = Command::new(exe)
        .args(["emulator", "serve", "--port", &port.to_string()])
        .arg("--state-dir")
        .arg(state)
        .args(["--max-environments", &max_environments.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(state.join("emulator.log"))?)
        .spawn()
        .context("cannot start the emulator")?;
    let server = KillOnDrop(server);
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
    Ok((server, port))
}

/// Starts an emulator as `cargo xtask deploy` starts it, in its own state directory and on a
/// free port, and deploys stage `dev` to it. Returns the process, its port and the packages.
async fn bench_stage(
    app: &deployer::stack::App,
    progress: &Progress,
    state: &Path,
    exe: &Path,
    max_environments: usize,
) -> anyhow::Result<(
    KillOnDrop,
    u16,
    deployer::Clients,
    std::collections::BTreeMap<String, deployer::Package>,
)> {
    let stage = context::checked_stage(app, "dev")?;
    let packages = crate::deploy::build(app, stage, progress)?;
    let (server, port) = serve_emulator(exe, state, max_environments).await?;
    let sdk = context::emulator_config(&format!("http://127.0.0.1:{port}")).await;
    let clients = deployer::Clients::new(&sdk);
    let tenants = crate::seeds::tenant_files(&context::project_root())?;
    let desired =
        deployer::desired_with_seeds(app, "dev", &packages, vec![crate::seeds::seed(&tenants)])
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
    Ok((server, port, clients, packages))
}

/// One edit both watchers see, made so that the answer shows which code ran (with a tenant id
/// the emulator needs, an unknown one; without, as `cargo lambda watch` invokes).
struct Edit {
    /// The file, from the workspace root.
    file: &'static str,
    /// What the edit touches, for the table.
    what: &'static str,
    replacements: &'static [(&'static str, &'static str)],
}

const EDITS: [Edit; 2] = [
    // The shared library's tenant check words its two refusals differently: both functions
    // are rebuilt.
    Edit {
        file: "functions/represent/src/handler.rs",
        what: "shared library",
        replacements: &[
            ("\"no tenant id: every", "\"no tenant id (edited): every"),
            ("\"unknown tenant `", "\"unknown tenant (edited) `"),
        ],
    },
    // The function's own `main` marks every answer: only that function is rebuilt.
    Edit {
        file: "functions/representatives/src/main.rs",
        what: "one function's own source",
        replacements: &[
            ("    let deps = Deps::new(", "    let deps = &Deps::new("),
            (
                "        represent::handle(event, &deps)\n",
                "        async move {\n            let mut answer = represent::handle(event, deps).await?;\n            answer[\"edited\"] = \"(edited)\".into();\n            Ok::<Value, std::convert::Infallible>(answer)\n        }\n",
            ),
        ],
    },
];

/// Puts the source file back as it was, whatever happens to the benchmark.
struct Restore {
    path: PathBuf,
    original: String,
}

impl Restore {
    fn new(edit: &Edit) -> anyhow::Result<Self> {
        let path = context::project_root().join(edit.file);
        let original = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Restore { path, original })
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.original);
    }
}

/// Saves the edit and invokes until an answer carries it; returns the time from the save.
fn edit_and_wait(
    edit: &Edit,
    restore: &Restore,
    invoker: &mut Invoker,
    function: &str,
    tenant: Option<&str>,
) -> anyhow::Result<Duration> {
    let mut edited = restore.original.clone();
    for (from, to) in edit.replacements {
        anyhow::ensure!(
            edited.contains(from),
            "{} no longer contains {from}",
            edit.file
        );
        edited = edited.replace(from, to);
    }
    let started = Instant::now();
    std::fs::write(&restore.path, edited)?;
    let deadline = started + Duration::from_secs(900);
    loop {
        if let Ok((_, body)) = invoker.invoke(function, tenant, FULL_ANSWER)
            && String::from_utf8_lossy(&body).contains("(edited)")
        {
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!("no answer with the edited code within 15 minutes");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// After an edit is put back: `cargo xtask watch` is idle once it has reported no rebuild for
/// this long (longer than one function's build), and `cargo lambda watch` is left alone as long.
const SETTLE: Duration = Duration::from_secs(15);

/// How long one invoke may take while the code changes under it. `cargo lambda watch` can
/// drop an invoke that reaches it while it restarts the function, which would otherwise hold
/// the measure until the read timeout; a lost invoke costs at most this much, and an invoke
/// held until a build ends is simply sent again.
const EDIT_READ_TIMEOUT: Duration = Duration::from_millis(500);

/// Makes each edit in turn, measures it, puts the file back, waits for the original code and
/// then for `settle`, so that each edit starts from an idle watch.
fn measure_edits(
    invoker: &mut Invoker,
    function: &str,
    tenant: Option<&str>,
    settle: &mut dyn FnMut(),
) -> anyhow::Result<Vec<Duration>> {
    invoker.set_read_timeout(EDIT_READ_TIMEOUT)?;
    let mut took = Vec::new();
    for edit in &EDITS {
        let restore = Restore::new(edit)?;
        took.push(edit_and_wait(edit, &restore, invoker, function, tenant)?);
        drop(restore);
        wait_for_original(invoker, function, tenant)?;
        settle();
    }
    Ok(took)
}

/// Waits until the answers no longer carry the edit (the file was put back and rebuilt).
fn wait_for_original(
    invoker: &mut Invoker,
    function: &str,
    tenant: Option<&str>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    while Instant::now() < deadline {
        if let Ok((_, body)) = invoker.invoke(function, tenant, FULL_ANSWER)
            && !String::from_utf8_lossy(&body).contains("(edited)")
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the original code did not come back within 15 minutes")
}

async fn save_to_answer() -> anyhow::Result<()> {
    let root = context::project_root();
    let app = xtask::stack::represent();
    let stage = context::checked_stage(&app, "dev")?;
    let progress = Progress::new();

    // `cargo xtask watch`: the same watch, on an emulator of its own.
    let state = context::target_dir().join("bench-watch");
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    let (server, port, clients, deployed) = bench_stage(&app, &progress, &state, &exe, 64).await?;
    let function = deployer::function_name(&app.name, "dev", "representatives");
    let mut invoker = Invoker::new(port);
    invoker.timed(&function, Some("bench-unknown"), FULL_ANSWER)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let ready_tx = std::sync::Mutex::new(ready_tx);
    let spec = deployer::watch::WatchSpec {
        workspace_root: &root,
        app: &app,
        stage,
        unify_with: vec![env!("CARGO_PKG_NAME").to_string()],
        deployed,
        debounce: Duration::from_millis(50),
    };
    let on_event = move |event: &deployer::watch::WatchEvent| {
        progress.step(&event.to_string());
        if let Ok(tx) = ready_tx.lock() {
            let _ = tx.send(());
        }
    };
    let watching = deployer::watch::watch(&clients, spec, &on_event, async {
        let _ = stop_rx.await;
    });
    let measuring = async {
        let result = tokio::task::spawn_blocking(move || {
            ready_rx
                .recv_timeout(Duration::from_secs(60))
                .context("the watch did not start")?;
            // Putting the shared library back rebuilds every function, the measured one
            // first: the watch is idle once no rebuild has been reported for a while.
            let mut settle = || while ready_rx.recv_timeout(SETTLE).is_ok() {};
            measure_edits(&mut invoker, &function, Some("bench-unknown"), &mut settle)
        })
        .await;
        let _ = stop_tx.send(());
        result
    };
    let (watched, measured) = tokio::join!(watching, measuring);
    watched?;
    let xtask_took = measured??;
    drop(server);
    for (edit, took) in EDITS.iter().zip(&xtask_took) {
        Progress::new().step(&format!(
            "cargo xtask watch: {} in {:.2} s",
            edit.what,
            took.as_secs_f64()
        ));
    }

    // `cargo lambda watch` on the same edits, alone on the machine's cores.
    let port = free_port()?;
    let watch = start_watch(port)?;
    let mut invoker = Invoker::new(port);
    Progress::new().step("waiting for cargo lambda watch to build and answer");
    wait_for_watch(&mut invoker)?;
    // It builds only the measured function, which answers with the original code once built.
    let watch_took = measure_edits(&mut invoker, "representatives", None, &mut || {
        std::thread::sleep(SETTLE)
    })?;
    drop(watch);

    println!(
        "{:<72}  {:>17}  {:>18}",
        "save to first answer of the new code", "cargo xtask watch", "cargo lambda watch"
    );
    for ((edit, xtask), watch) in EDITS.iter().zip(&xtask_took).zip(&watch_took) {
        println!(
            "{:<72}  {:>17}  {:>18}",
            format!("{} ({})", edit.what, edit.file),
            format!("{:.2} s", xtask.as_secs_f64()),
            format!("{:.2} s", watch.as_secs_f64()),
        );
    }
    Ok(())
}
