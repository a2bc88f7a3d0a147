//! Fault drills for the closing note of a resilience change: fresh deploys of the Represent stack
//! to emulators injecting transient faults at given rates (each run its own seed), the time a
//! deploy takes to fail when every call fails, and what interrupted deploys leave behind.
//!
//! `cargo run -p tests --example fault_drills -- [runs] [--adaptive] [--skip-interrupts]` prints
//! a table: fresh deploys and no-op redeploys at 5% and 20% faults, the time to fail at 100%, and
//! what interrupted deploys and destroys leave. The retry policy is production's attempts with
//! short delays (5 ms to 100 ms), as in the tests; `--adaptive` turns on the SDK's adaptive
//! client rate limiter (production's default is off, see ARCHITECTURE.md's resilience notes).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use deployer::clients::{Clients, Retries};
use deployer::package::Package;

const STAGE: &str = "dev";

fn retries(adaptive: bool) -> Retries {
    Retries {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
        total_timeout: Duration::from_secs(30),
        adaptive,
        ..Retries::default()
    }
}

fn options() -> deployer::apply::ApplyOptions {
    deployer::apply::ApplyOptions {
        base_delay: Duration::from_millis(20),
        poll_interval: Duration::from_millis(10),
        ..Default::default()
    }
}

async fn start(state: &Path, faults: &str, adaptive: bool) -> (emulator::Emulator, Clients) {
    let mut config = emulator::Config::new(state);
    config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.faults = (!faults.is_empty())
        .then(|| emulator::faults::FaultSpec::parse(faults).expect("fault spec parses"));
    let emulator = emulator::Emulator::start(config)
        .await
        .expect("emulator starts");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(deployer::clients::https_client())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(emulator.endpoint())
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    (emulator, Clients::with_retries(&sdk, retries(adaptive)))
}

fn seed(root: &Path) -> deployer::Seed {
    let mut seed = deployer::Seed::new("data");
    for entry in std::fs::read_dir(root.join("tenants")).expect("tenants/") {
        let path = entry.expect("readable").path();
        if path.file_name().is_some_and(|n| n == "index.json")
            || path.extension().is_none_or(|e| e != "json")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("tenant file");
        let file: represent::tenant::TenantFile = serde_json::from_str(&text).expect("parses");
        seed.partitions
            .insert(file.id.clone(), represent::records::to_records(&file));
    }
    seed
}

async fn deploy(
    clients: &Clients,
    app: &deployer::stack::App,
    packages: &BTreeMap<String, Package>,
    seed: &deployer::Seed,
) -> Result<(), String> {
    let desired = deployer::desired_with_seeds(app, STAGE, packages, vec![seed.clone()])
        .map_err(|e| e.to_string())?;
    let actual = deployer::observe_stage(clients, &desired)
        .await
        .map_err(|e| e.to_string())?;
    let plan = deployer::plan::plan(&desired, &actual);
    deployer::apply::apply(clients, &plan, &options(), &|_| {})
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Functions, REST APIs, log groups, roles and tables of the stage, by listing.
async fn count(clients: &Clients) -> (usize, usize, usize, usize, usize) {
    let functions = clients
        .lambda
        .list_functions()
        .send()
        .await
        .map(|o| o.functions().len())
        .unwrap_or(0);
    let apis = clients
        .apigateway
        .get_rest_apis()
        .send()
        .await
        .map(|o| o.items().len())
        .unwrap_or(0);
    let groups = clients
        .logs
        .describe_log_groups()
        .send()
        .await
        .map(|o| o.log_groups().len())
        .unwrap_or(0);
    let roles = clients
        .iam
        .list_roles()
        .send()
        .await
        .map(|o| o.roles().len())
        .unwrap_or(0);
    let tables = clients
        .dynamodb
        .list_tables()
        .send()
        .await
        .map(|o| o.table_names().len())
        .unwrap_or(0);
    (functions, apis, groups, roles, tables)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(10);
    let adaptive = args.iter().any(|a| a == "--adaptive");
    let skip_interrupts = args.iter().any(|a| a == "--skip-interrupts");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf();
    let app = xtask::stack::represent();
    let dev = app.find_stage(STAGE).expect("dev stage");
    let request = deployer::build::StageBuild {
        workspace_root: &root,
        unify_with: vec!["xtask".to_string()],
        only: None,
    };
    let built = deployer::build::build_stage(&app, dev, &request).expect("functions build");
    let packages: BTreeMap<String, Package> = built
        .iter()
        .map(|(bin, path)| {
            (
                bin.clone(),
                deployer::package::package_file(path).expect("package"),
            )
        })
        .collect();
    let seed = seed(&root);

    let mode = if adaptive { "adaptive" } else { "standard" };
    println!("| drill ({mode} retry mode) | result | time per deploy (mean, max) |");
    println!("|---|---|---|");
    let state = tempfile::tempdir().expect("temp dir");
    let (emulator, clients) = start(state.path(), "", adaptive).await;
    let started = Instant::now();
    deploy(&clients, &app, &packages, &seed)
        .await
        .expect("a fault-free deploy");
    println!(
        "| fresh deploy, no faults | succeeded | {:.1} s |",
        started.elapsed().as_secs_f64()
    );
    emulator.shutdown().await;
    for rate in ["0.05", "0.2"] {
        let (mut ok, mut noop_ok) = (0, 0);
        let (mut took, mut noop_took) = (Vec::new(), Vec::new());
        let mut duplicates = 0;
        let mut last_error = String::new();
        for run in 0..runs {
            let state = tempfile::tempdir().expect("temp dir");
            let (emulator, clients) =
                start(state.path(), &format!("{rate},seed={run}"), adaptive).await;
            let started = Instant::now();
            match deploy(&clients, &app, &packages, &seed).await {
                Ok(()) => ok += 1,
                Err(e) => last_error = e,
            }
            took.push(started.elapsed());
            let started = Instant::now();
            match deploy(&clients, &app, &packages, &seed).await {
                Ok(()) => noop_ok += 1,
                Err(e) => last_error = e,
            }
            noop_took.push(started.elapsed());
            let (_, apis, ..) = count(&clients).await;
            duplicates += apis.saturating_sub(1);
            emulator.shutdown().await;
        }
        let percent = (rate.parse::<f64>().unwrap_or(0.0) * 100.0).round();
        let stats = |t: &[Duration]| {
            let mean = t.iter().sum::<Duration>().as_secs_f64() / t.len().max(1) as f64;
            let max = t.iter().max().copied().unwrap_or_default().as_secs_f64();
            format!("{mean:.1} s, {max:.1} s")
        };
        println!(
            "| fresh deploy at {percent}% faults | {ok} of {runs} succeeded, {duplicates} extra REST APIs | {} |",
            stats(&took)
        );
        println!(
            "| no-op redeploy at {percent}% faults | {noop_ok} of {runs} succeeded | {} |",
            stats(&noop_took)
        );
        if !last_error.is_empty() {
            println!("|   last failure | {last_error} | |");
        }
    }

    let state = tempfile::tempdir().expect("temp dir");
    let (emulator, clients) = start(state.path(), "1", adaptive).await;
    let started = Instant::now();
    let error = deploy(&clients, &app, &packages, &seed).await.err();
    println!(
        "| fresh deploy at 100% faults | failed after {:.1} s: {} | |",
        started.elapsed().as_secs_f64(),
        error.unwrap_or_else(|| "it succeeded?".into())
    );
    emulator.shutdown().await;
    if skip_interrupts {
        return;
    }

    // Interrupted deploys: a fresh deploy dropped after N mutating calls, then a full deploy
    // and a destroy; what the stage holds after the destroy is what nothing would clean.
    let mut leftovers = Vec::new();
    for calls in [1u32, 4, 8, 16, 24, 32, 48, 64, 96, 128] {
        let state = tempfile::tempdir().expect("temp dir");
        let (emulator, clients) = start(state.path(), "", adaptive).await;
        let desired =
            deployer::desired_with_seeds(&app, STAGE, &packages, vec![seed.clone()]).expect("ok");
        let actual = deployer::observe_stage(&clients, &desired)
            .await
            .expect("observe");
        let plan = deployer::plan::plan(&desired, &actual);
        let opts = options();
        let before = clients.mutating_calls.get();
        tokio::select! {
            _ = deployer::apply::apply(&clients, &plan, &opts, &|_| {}) => {}
            () = async {
                while clients.mutating_calls.get() < before + calls {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            } => {}
        }
        deploy(&clients, &app, &packages, &seed)
            .await
            .expect("converges");
        let converged = count(&clients).await;
        let actual = deployer::observe::observe_app(&clients, &app, STAGE)
            .await
            .expect("observe");
        let destroy = deployer::plan::plan_destroy(&actual, &app.name, STAGE);
        // The destroy is interrupted too, after half as many calls, then run again.
        let before = clients.mutating_calls.get();
        tokio::select! {
            _ = deployer::apply::destroy(&clients, &destroy, &opts, &|_| {}) => {}
            () = async {
                while clients.mutating_calls.get() < before + calls / 2 + 1 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            } => {}
        }
        let actual = deployer::observe::observe_app(&clients, &app, STAGE)
            .await
            .expect("observe");
        let destroy = deployer::plan::plan_destroy(&actual, &app.name, STAGE);
        deployer::apply::destroy(&clients, &destroy, &opts, &|_| {})
            .await
            .expect("destroy");
        leftovers.push((calls, converged, count(&clients).await));
        emulator.shutdown().await;
    }
    for (calls, converged, left) in leftovers {
        println!(
            "| stopped at call {calls}, destroy at call {} | after the next deploy: {} functions, {} REST APIs, {} log groups, {} roles, {} tables; after destroy: {} functions, {} REST APIs, {} log groups, {} roles, {} tables left | |",
            calls / 2 + 1,
            converged.0,
            converged.1,
            converged.2,
            converged.3,
            converged.4,
            left.0,
            left.1,
            left.2,
            left.3,
            left.4
        );
    }
}
