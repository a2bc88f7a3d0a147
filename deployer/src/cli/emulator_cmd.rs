//! `cargo xtask emulator start|stop|status`: the local emulator that stage `dev` deploys to,
//! running in the background with its state and log under `target/emulator/`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::process::ExitCode;

use anyhow::{Context as _, bail};

use super::context::target_dir;
use super::output::{OutputFormat, outln, print_json};
use super::{App, Ctx, Outcome};

/// The emulator's default port (`--port` or REPRESENT_EMULATOR_PORT change it).
pub const DEFAULT_PORT: u16 = 9456;

#[derive(Debug, clap::Subcommand)]
pub enum EmulatorCommand {
    /// Start the emulator in the background (deploy does this for you)
    Start(StartArgs),
    /// Stop the background emulator and every execution environment it runs
    Stop,
    /// Show the emulator's execution environments: function, tenant, state, invocations
    Status {
        /// Results as human-readable text or as JSON for scripts
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
    },
    /// Run the emulator in the foreground (what `start` runs in the background)
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Port to listen on (loopback only)
    #[arg(long, env = "REPRESENT_EMULATOR_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port to listen on (loopback only)
    #[arg(long, env = "REPRESENT_EMULATOR_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Where the emulator keeps its database and execution environments
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Most execution environments at once; past it the least recently used idle one is stopped
    #[arg(long, default_value_t = 64)]
    pub max_environments: usize,
    /// Inject faults into control-plane calls, e.g. `0.2` or `lambda:*=0.2,apigateway:CreateRestApi=lost,seed=7`
    #[arg(long, env = "REPRESENT_EMULATOR_FAULTS")]
    pub faults: Option<String>,
}

fn state_dir(app: &App) -> PathBuf {
    target_dir(&app.root).join("emulator")
}

pub fn port() -> u16 {
    std::env::var("REPRESENT_EMULATOR_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_PORT)
}

fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

pub async fn run(ctx: &Ctx<'_>, command: EmulatorCommand) -> Outcome {
    match command {
        EmulatorCommand::Start(args) => {
            let url = start(ctx.app, args.port).await?;
            outln!("emulator running at {url}")?;
        }
        EmulatorCommand::Stop => stop(ctx.app)?,
        EmulatorCommand::Status { output } => status(ctx.app, output)?,
        EmulatorCommand::Serve(_) => unreachable!("serve runs outside the command runtime"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the emulator in this process until it is stopped.
pub fn serve(app: &App, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = emulator::Config::new(args.state_dir.unwrap_or_else(|| state_dir(app)));
    config.bind = SocketAddr::from(([127, 0, 0, 1], args.port));
    config.max_environments = args.max_environments;
    if let Some(spec) = args.faults.as_deref() {
        config.faults = Some(
            emulator::faults::FaultSpec::parse(spec)
                .map_err(|e| anyhow::anyhow!("--faults {spec:?}: {e}"))?,
        );
    }
    super::context::runtime()?.block_on(async move {
        let emulator = emulator::Emulator::start(config).await?;
        // The log file is the reader: a closed stdout must not stop the emulator.
        let _ = outln!("{}", emulator.endpoint());
        emulator.wait().await;
        Ok(())
    })
}

/// Returns the endpoint of the emulator on the default port, starting it if it is not running.
pub async fn ensure_running(app: &App) -> anyhow::Result<String> {
    let port = port();
    if healthy(port) {
        return Ok(endpoint(port));
    }
    start(app, port).await
}

async fn start(app: &App, port: u16) -> anyhow::Result<String> {
    if healthy(port) {
        return Ok(endpoint(port));
    }
    let dir = state_dir(app);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let log_path = dir.join("emulator.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    eprintln!(
        "starting the local emulator on {} (state and log in {})",
        endpoint(port),
        dir.display()
    );
    // This very command line serves the emulator (`emulator serve`), whichever app it is.
    let exe = std::env::current_exe().context("cannot find the command line's executable")?;
    let mut child = {
        use std::os::unix::process::CommandExt as _;
        Command::new(exe)
            .args(["emulator", "serve", "--port", &port.to_string()])
            .arg("--state-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C in the terminal that ran `deploy` must not stop the
            // emulator that the next `invoke` talks to.
            .process_group(0)
            .spawn()
            .context("cannot start the emulator")?
    };
    std::fs::write(dir.join("emulator.pid"), child.id().to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if healthy(port) {
            return Ok(endpoint(port));
        }
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "the emulator exited ({status}) before it answered:\n{}",
                log.trim_end()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!(
        "the emulator did not answer on {} within 20 s; see {}",
        endpoint(port),
        log_path.display()
    )
}

pub fn stop(app: &App) -> anyhow::Result<()> {
    let pid_file = state_dir(app).join("emulator.pid");
    let Ok(pid) = std::fs::read_to_string(&pid_file) else {
        outln!("no emulator is running")?;
        return Ok(());
    };
    let pid: u32 = pid.trim().parse().context("corrupt emulator.pid")?;
    let alive = PathBuf::from(format!("/proc/{pid}")).exists();
    if alive {
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("cannot run `kill`")?;
        if !status.success() {
            bail!("could not stop the emulator (pid {pid})");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while PathBuf::from(format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(&pid_file);
    outln!("emulator stopped")?;
    Ok(())
}

fn status(app: &App, output: OutputFormat) -> anyhow::Result<()> {
    let port = port();
    let Some(body) = http_get(port, "/_emulator/status") else {
        bail!(
            "no emulator answers on {}: start it with `{} emulator start` (or deploy)",
            endpoint(port),
            app.bin_name
        );
    };
    let status: serde_json::Value =
        serde_json::from_str(&body).context("the emulator's status is not JSON")?;
    if output == OutputFormat::Json {
        return print_json(&status);
    }
    outln!("emulator at {}", endpoint(port))?;
    let environments = status["environments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if environments.is_empty() {
        outln!("no execution environments (invoke a function to start one)")?;
        return Ok(());
    }
    outln!(
        "{:<36} {:<12} {:<8} {:>8} {:>11} {:>8}",
        "FUNCTION",
        "TENANT",
        "STATE",
        "PID",
        "INVOCATIONS",
        "COLD MS"
    )?;
    for env in environments {
        outln!(
            "{:<36} {:<12} {:<8} {:>8} {:>11} {:>8.1}",
            env["function"].as_str().unwrap_or("-"),
            env["tenant"].as_str().unwrap_or("-"),
            env["state"].as_str().unwrap_or("-"),
            env["pid"]
                .as_u64()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            env["invocations"].as_u64().unwrap_or(0),
            env["cold_start_ms"].as_f64().unwrap_or(0.0),
        )?;
    }
    Ok(())
}

pub fn healthy(port: u16) -> bool {
    http_get(port, "/_emulator/health").is_some()
}

/// A minimal HTTP/1.0 GET on loopback: enough for the emulator's own status endpoints, without
/// an HTTP client dependency.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(300)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}
