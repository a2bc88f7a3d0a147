//! `cargo xtask bench deploy`: how long deploys take when every AWS call costs a round trip.
//! A loopback proxy in front of the emulator adds a fixed latency to every request (30 ms by
//! default, a stand-in for the trip to an AWS region); each scenario runs with
//! `--parallelism 1` beside the default, and the table shows both with the calls they made.
//!
//! The numbers are bound by the added latency, not by the CPU, so this benchmark runs from the
//! everyday build instead of rebuilding xtask with optimisations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use deployer::{ApplyOptions, Clients, Package, Seed, Stage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::context;
use crate::output::Progress;

#[derive(Debug, clap::Args)]
pub struct DeployBench {
    /// Latency added to every request, in milliseconds
    #[arg(long, default_value_t = 30)]
    pub latency_ms: u64,
    /// Tenants of the synthetic stack (3,142: one per US county)
    #[arg(long, default_value_t = 3142)]
    pub tenants: usize,
    /// The parallelism measured beside `--parallelism 1`
    #[arg(long, default_value_t = ApplyOptions::default().parallelism)]
    pub parallelism: usize,
}

/// Forwards loopback connections to `upstream`, holding each request back by `latency` before
/// it reaches the emulator: a request is whatever the client sends after the last answer.
async fn latency_proxy(upstream: u16, latency: Duration) -> anyhow::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let answered = Arc::new(AtomicBool::new(true));
                let new_request = answered.clone();
                let up = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_read.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if new_request.swap(false, Ordering::SeqCst) {
                            tokio::time::sleep(latency).await;
                        }
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = server_write.shutdown().await;
                };
                let down = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = server_read.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        answered.store(true, Ordering::SeqCst);
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = client_write.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    Ok(port)
}

/// One measured deploy: observe, plan and apply, without the build.
struct Measure {
    took: Duration,
    reads_and_writes: String,
}

async fn deploy(
    clients: &Clients,
    app: &deployer::App,
    stage: &str,
    packages: &BTreeMap<String, Package>,
    seeds: Vec<Seed>,
    parallelism: usize,
) -> anyhow::Result<Measure> {
    let desired = deployer::desired_with_seeds(app, stage, packages, seeds)
        .map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let started = Instant::now();
    let actual = deployer::observe_stage(clients, &desired).await?;
    let plan = deployer::plan(&desired, &actual);
    let options = ApplyOptions {
        parallelism,
        ..ApplyOptions::default()
    };
    let calls = if plan.has_changes() {
        deployer::apply(clients, &plan, &options, &|_| {})
            .await?
            .mutating_calls
    } else {
        0
    };
    Ok(Measure {
        took: started.elapsed(),
        reads_and_writes: format!("{calls} mutating"),
    })
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub async fn run(args: DeployBench) -> anyhow::Result<()> {
    let parallelisms = [1, args.parallelism.max(1)];
    let mut app = xtask::stack::represent();
    for p in parallelisms {
        for kind in ["s", "t"] {
            app = app.stage(Stage::emulator(&format!("b{kind}{p}")));
        }
    }
    let stage = context::checked_stage(&app, "dev")?;
    let progress = Progress::new();
    let packages = crate::deploy::build(&app, stage, &progress)?;
    let mut changed = packages.clone();
    changed.insert(
        "representatives".to_string(),
        deployer::package_bootstrap(b"a changed representatives binary"),
    );

    let state = context::target_dir().join("bench-deploy-emulator");
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    let (_server, port) = crate::bench::serve_emulator(&exe, &state, 64).await?;
    let latency = Duration::from_millis(args.latency_ms);
    let proxy = latency_proxy(port, latency).await?;
    let sdk = context::emulator_config(&format!("http://127.0.0.1:{proxy}")).await;
    let clients = Clients::new(&sdk);

    let tenants = crate::seeds::tenant_files(&context::project_root())?;
    let seed = crate::seeds::seed(&tenants);
    let mut synthetic = Seed::new("data");
    for i in 0..args.tenants {
        let tenant = format!("county-{i:05}");
        synthetic = synthetic.record(&tenant, "STATE", &format!(r#"{{"county":{i}}}"#));
    }

    let mut rows: Vec<(String, Vec<Measure>)> = [
        "fresh deploy",
        "no-op deploy",
        "one function's code changed",
        "3,142 tenants: first deploy",
        "3,142 tenants: no-op deploy",
    ]
    .iter()
    .map(|m| (m.replace("3,142", &args.tenants.to_string()), Vec::new()))
    .collect();
    for p in parallelisms {
        let name = format!("bs{p}");
        progress.step(&format!(
            "stage {name}: fresh, no-op and code change at parallelism {p}"
        ));
        let fresh = deploy(&clients, &app, &name, &packages, vec![seed.clone()], p).await?;
        let noop = deploy(&clients, &app, &name, &packages, vec![seed.clone()], p).await?;
        let code = deploy(&clients, &app, &name, &changed, vec![seed.clone()], p).await?;
        let name = format!("bt{p}");
        progress.step(&format!(
            "stage {name}: {} tenants at parallelism {p}",
            args.tenants
        ));
        let big = deploy(&clients, &app, &name, &packages, vec![synthetic.clone()], p).await?;
        let big_noop = deploy(&clients, &app, &name, &packages, vec![synthetic.clone()], p).await?;
        for (row, m) in rows.iter_mut().zip([fresh, noop, code, big, big_noop]) {
            row.1.push(m);
        }
    }
    progress.finish();

    println!(
        "Deploys through {} ms of added latency per call (build excluded):\n",
        args.latency_ms
    );
    let head = [
        "scenario".to_string(),
        "--parallelism 1".to_string(),
        format!("--parallelism {}", parallelisms[1]),
        "speed-up".to_string(),
        "calls".to_string(),
    ];
    println!(
        "| {:<34} | {:>16} | {:>16} | {:>8} | {:<14} |",
        head[0], head[1], head[2], head[3], head[4]
    );
    println!(
        "|{:-<36}|{:->18}|{:->18}|{:->10}|{:-<16}|",
        "", "", "", "", ""
    );
    for (scenario, m) in &rows {
        let speedup = m[0].took.as_secs_f64() / m[1].took.as_secs_f64().max(1e-9);
        println!(
            "| {:<34} | {:>16} | {:>16} | {:>7.1}x | {:<14} |",
            scenario,
            secs(m[0].took),
            secs(m[1].took),
            speedup,
            m[1].reads_and_writes
        );
    }
    println!(
        "\nObserve reads tenant partitions {} at a time whatever the parallelism, and a table \
         seeding {} tenants or more with one Scan of {} parallel segments.",
        deployer::observe::READ_PARALLELISM,
        deployer::partitions::SCAN_FROM,
        deployer::partitions::SCAN_SEGMENTS,
    );
    Ok(())
}
