//! The `emulator` binary: serves the local AWS endpoint until Ctrl-C or SIGTERM.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use emulator::{Config, DEFAULT_PORT, Emulator};

/// A local, AWS-wire-compatible Lambda and IAM endpoint that runs real function binaries.
#[derive(Debug, Parser)]
#[command(name = "emulator", version)]
struct Args {
    /// Loopback port to serve on; pass another one to run a second emulator next to the default.
    #[arg(long, default_value_t = DEFAULT_PORT, env = "EMULATOR_PORT")]
    port: u16,
    /// Directory for the state database and extracted code; it survives restarts.
    #[arg(long, default_value = ".emulator", env = "EMULATOR_STATE_DIR")]
    state_dir: PathBuf,
    /// Seconds an idle execution environment stays warm before it is stopped.
    #[arg(long, default_value_t = 300)]
    idle_timeout_secs: u64,
    /// Most execution environments alive at once; invokes beyond it get 429.
    #[arg(long, default_value_t = 64)]
    max_environments: usize,
    /// Inject faults into control-plane calls, e.g. `0.2` or `lambda:*=0.2,apigateway:CreateRestApi=lost,seed=7`
    #[arg(long, env = "REPRESENT_EMULATOR_FAULTS")]
    faults: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = Config::new(args.state_dir);
    config.bind = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    config.idle_timeout = Duration::from_secs(args.idle_timeout_secs);
    config.max_environments = args.max_environments;
    if let Some(spec) = args.faults.as_deref() {
        config.faults = Some(
            emulator::faults::FaultSpec::parse(spec)
                .map_err(|e| anyhow::anyhow!("--faults {spec:?}: {e}"))?,
        );
    }
    let emulator = Emulator::start(config).await?;
    println!("{}", emulator.endpoint());
    emulator.wait().await;
    Ok(())
}
