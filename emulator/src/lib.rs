//! The emulator: a local, AWS-wire-compatible endpoint for Lambda, IAM and DynamoDB that runs real
//! function binaries with one pool of execution environments per tenant.
//!
//! Unchanged `aws-sdk-lambda`, `aws-sdk-iam` and `aws-sdk-dynamodb` clients talk to it with only
//! an endpoint override. [`Emulator::start`] binds the port, opens the state database and serves
//! until [`Emulator::shutdown`] (or [`Emulator::wait`], which also stops on Ctrl-C or SIGTERM).

mod apigateway;
mod audit;
mod aws_json;
mod cloudtrail;
mod cloudwatch_logs;
mod dynamodb;
pub mod faults;
mod iam;
mod lambda;
mod policy;
mod secretsmanager;
mod server;
pub mod store;
mod sts;

/// Execution environments and the invoke path, in their own crate so that they are built
/// optimised in every profile.
use emulator_runtime as runtime;
pub use emulator_runtime::clock;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::runtime::{Runtime, RuntimeConfig};
use crate::server::AppState;
use crate::store::{Store, StoreError, StoreLogSink};

/// The port `cargo xtask emulator start` and the `dev` stage use.
pub const DEFAULT_PORT: u16 = 9456;

/// How an emulator is started.
#[derive(Debug, Clone)]
pub struct Config {
    /// Holds `state.sqlite` and the runtime's `work/` directory.
    pub state_dir: PathBuf,
    /// `127.0.0.1:0` in tests; `127.0.0.1:9456` by default.
    pub bind: SocketAddr,
    pub region: String,
    pub account_id: String,
    /// How long an idle execution environment is kept warm.
    pub idle_timeout: Duration,
    /// How many execution environments may exist at once.
    pub max_environments: usize,
    /// How long a new function stays `Pending` and an update stays `InProgress`.
    pub pending_delay: Duration,
    /// A test knob: every Nth BatchWriteItem leaves its last write request undone and returns
    /// it in `UnprocessedItems`, as DynamoDB does under load, so that a deployer's retry path
    /// runs end to end. `Some(1)` never completes a batch. `None` (the default) processes all.
    pub dynamodb_unprocessed_every: Option<u32>,
    /// Injected faults on control-plane calls (see [`faults`]); `None` (the default) answers
    /// every call as the service would.
    pub faults: Option<faults::FaultSpec>,
}

impl Config {
    /// The defaults: port 9456 on loopback, `us-east-1`, account `000000000000`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Config {
        Config {
            state_dir: state_dir.into(),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            idle_timeout: Duration::from_secs(300),
            max_environments: 64,
            pending_delay: Duration::from_millis(20),
            dynamodb_unprocessed_every: None,
            faults: None,
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "port {port} is already in use: {source}; stop the other emulator with `cargo xtask emulator stop` or pass --port"
    )]
    PortInUse { port: u16, source: std::io::Error },
    #[error("failed to listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to create the state directory `{path}`: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A running emulator.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds the port, opens (or creates) the state database and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Emulator> {
        Ok(Emulator::start_inner(config).await?)
    }

    async fn start_inner(config: Config) -> Result<Emulator, StartError> {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::AddrInUse {
                    StartError::PortInUse {
                        port: config.bind.port(),
                        source,
                    }
                } else {
                    StartError::Bind {
                        addr: config.bind,
                        source,
                    }
                }
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let endpoint = format!("http://{addr}");

        let work_dir = config.state_dir.join("work");
        std::fs::create_dir_all(&work_dir).map_err(|source| StartError::StateDir {
            path: work_dir.clone(),
            source,
        })?;
        let db_path = config.state_dir.join("state.sqlite");
        let store = Arc::new(Store::open(&db_path)?);
        let log_sink = StoreLogSink::start(&db_path)?;
        let sessions = Arc::new(sts::Sessions::new(
            Arc::clone(&store),
            config.account_id.clone(),
        ));
        let runtime = Runtime::new(
            RuntimeConfig {
                work_dir: work_dir.clone(),
                idle_timeout: config.idle_timeout,
                max_environments: config.max_environments,
                endpoint_url: endpoint.clone(),
                region: config.region.clone(),
                credentials: Some(Arc::clone(&sessions) as Arc<dyn runtime::CredentialSource>),
            },
            log_sink.clone(),
        );
        let functions = lambda::Functions::load(&store, work_dir.clone()).await?;
        let rest_apis = apigateway::RestApis::load(&store).await?;
        let state = Arc::new(AppState {
            config,
            endpoint,
            store,
            runtime,
            log_sink,
            work_dir,
            lambda: functions,
            dynamodb: dynamodb::DynamoDb::default(),
            apigateway: rest_apis,
            sessions,
        });

        let (stop, stopped) = oneshot::channel::<()>();
        let app = server::router(Arc::clone(&state));
        let server = tokio::spawn(runtime::serve(listener, app, stopped));
        Ok(Emulator {
            addr,
            state,
            stop,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`, what SDK clients take as their endpoint URL.
    pub fn endpoint(&self) -> String {
        self.state.endpoint.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving, stops every execution environment, flushes logs and closes the database.
    pub async fn shutdown(self) {
        let Emulator {
            state,
            stop,
            mut server,
            ..
        } = self;
        let _ = stop.send(());
        // Graceful shutdown waits for open connections; a client holding one forever must not
        // hold the emulator up.
        if tokio::time::timeout(Duration::from_secs(5), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        state.runtime.shutdown().await;
        let sink = Arc::clone(&state.log_sink);
        let _ = tokio::task::spawn_blocking(move || sink.close()).await;
        // The database closes when the last handle to the state goes; axum's router clones are
        // gone once the server task has ended.
        drop(state);
    }

    /// Serves until Ctrl-C or SIGTERM, then shuts down.
    pub async fn wait(self) {
        shutdown_signal().await;
        self.shutdown().await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
