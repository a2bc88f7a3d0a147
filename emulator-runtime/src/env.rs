//! One execution environment: a `bootstrap` child process, its Runtime API listener, the tasks
//! that carry its output to the log sink, and the supervisor that cleans up after it.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};

use super::api::{self, Pending, Shared};
use super::logs::{self, Tail};
use super::{EnvCredentials, FunctionSpec, LogEvent, LogFormat, LogSink, RuntimeConfig};
use crate::clock;

/// The `PATH` a function sees: Lambda's, without the emulator's own.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How long a stopped environment's output may take to drain into the log.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// Where an environment's lines go: the sink under the environment's own stream and tenant,
/// and, while an invocation asked for it, that invocation's tail.
pub(crate) struct LogTap {
    sink: Arc<dyn LogSink>,
    log_group: String,
    pub log_stream: String,
    tenant: Option<String>,
    tail: Mutex<Option<Tail>>,
}

impl LogTap {
    pub(crate) fn emit(&self, message: String) {
        if let Some(tail) = lock(&self.tail).as_mut() {
            tail.push(&message);
        }
        self.sink.emit(LogEvent {
            log_group: self.log_group.clone(),
            log_stream: self.log_stream.clone(),
            tenant: self.tenant.clone(),
            timestamp_ms: clock::now_millis(),
            message,
        });
    }

    pub(crate) fn begin_tail(&self) {
        *lock(&self.tail) = Some(Tail::default());
    }

    pub(crate) fn take_tail(&self) -> Option<Tail> {
        lock(&self.tail).take()
    }
}

/// See `api::lock`: the guarded data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) struct Env {
    /// The pool's handle for this environment.
    pub seq: u64,
    /// Hash of (function, revision, tenant): the pool this environment belongs to.
    pub key: u64,
    pub hex: String,
    pub spec: Arc<FunctionSpec>,
    pub tenant: Option<String>,
    pub pid: u32,
    /// `/proc/<pid>/status`, opened once: REPORT reads its peak memory after every invoke.
    pub status: Option<std::fs::File>,
    pub spawned_at: Instant,
    pub api: Arc<Shared>,
    pub next: mpsc::Sender<Pending>,
    pub logs: Arc<LogTap>,
    /// `Some("exit status 3")` once the process has exited.
    pub exit: watch::Receiver<Option<String>>,
    /// `true` once the process is reaped and its directory removed.
    gone: watch::Receiver<bool>,
    pub invocations: AtomicU64,
    pub cold_start_us: AtomicU64,
    /// Set by `retire`: the environment is stopped when its current invocation ends.
    pub retired: AtomicBool,
}

impl Env {
    pub(crate) fn matches(&self, function: &str, revision: &str, tenant: Option<&str>) -> bool {
        self.spec.name == function
            && self.spec.revision == revision
            && self.tenant.as_deref() == tenant
    }

    pub(crate) fn is_running(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// Asks the supervisor to kill the process, without waiting.
    pub(crate) fn kill(&self) {
        self.api.stop.notify_one();
    }

    /// Kills the process and waits until it is reaped and its temporary directory removed.
    pub(crate) async fn stop(&self) {
        self.kill();
        let mut gone = self.gone.clone();
        let _ = gone.wait_for(|gone| *gone).await;
    }
}

/// Why an environment could not be started.
pub(crate) enum StartError {
    /// The `bootstrap` could not be executed: the function's fault (`Runtime.InvalidEntrypoint`).
    Entrypoint(io::Error),
    /// The emulator could not prepare the environment.
    Internal(io::Error),
}

/// Spawns child processes from one long-lived thread.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process. Tokio
/// may retire the thread an invoke happens to run on (blocking-pool threads, `block_in_place`),
/// which would kill healthy environments; this thread lives exactly as long as the runtime.
pub(crate) struct Spawner {
    requests: std::sync::mpsc::Sender<SpawnRequest>,
}

struct SpawnRequest {
    command: Command,
    handle: tokio::runtime::Handle,
    reply: oneshot::Sender<io::Result<Child>>,
}

impl Spawner {
    pub(crate) fn new() -> io::Result<Self> {
        let (requests, receiver) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("emulator-spawner".into())
            .spawn(move || {
                while let Ok(mut request) = receiver.recv() {
                    // The child is registered with the caller's reactor, which reaps it.
                    let _entered = request.handle.enter();
                    let _ = request.reply.send(request.command.spawn());
                }
            })?;
        Ok(Spawner { requests })
    }

    async fn spawn(&self, command: Command) -> io::Result<Child> {
        let (reply, answer) = oneshot::channel();
        let request = SpawnRequest {
            command,
            handle: tokio::runtime::Handle::current(),
            reply,
        };
        self.requests
            .send(request)
            .map_err(|_| io::Error::other("the process spawner thread has stopped"))?;
        answer
            .await
            .map_err(|_| io::Error::other("the process spawner thread has stopped"))?
    }
}

pub(crate) struct StartArgs<'a> {
    pub config: &'a RuntimeConfig,
    pub sink: Arc<dyn LogSink>,
    pub spawner: &'a Spawner,
    pub spec: Arc<FunctionSpec>,
    pub tenant: Option<String>,
    pub seq: u64,
    pub key: u64,
    /// Called once the process has exited, before its directory is removed.
    pub on_exit: Box<dyn FnOnce() + Send>,
}

/// Starts an environment: its private directory, its Runtime API listener and its process.
pub(crate) async fn start(args: StartArgs<'_>) -> Result<Arc<Env>, StartError> {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    // The directory is named after the environment, never the tenant: tenant ids are outside data.
    let env_dir = args.config.work_dir.join("envs").join(&hex);
    let tmp_dir = env_dir.join("tmp");
    std::fs::create_dir_all(&tmp_dir).map_err(StartError::Internal)?;
    match start_in(args, hex, &env_dir, tmp_dir).await {
        Ok(env) => Ok(env),
        Err(err) => {
            let _ = std::fs::remove_dir_all(&env_dir);
            Err(err)
        }
    }
}

async fn start_in(
    args: StartArgs<'_>,
    hex: String,
    env_dir: &Path,
    tmp_dir: PathBuf,
) -> Result<Arc<Env>, StartError> {
    let StartArgs {
        config,
        sink,
        spawner,
        spec,
        tenant,
        seq,
        key,
        on_exit,
    } = args;
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(StartError::Internal)?;
    listener
        .set_nonblocking(true)
        .map_err(StartError::Internal)?;
    let port = listener.local_addr().map_err(StartError::Internal)?.port();
    let listener = tokio::net::TcpListener::from_std(listener).map_err(StartError::Internal)?;

    let (exit_tx, exit_rx) = watch::channel(None::<String>);
    let (gone_tx, gone_rx) = watch::channel(false);
    let (next_tx, next_rx) = mpsc::channel(1);
    let shared = Shared::new(next_rx, exit_rx.clone(), &spec.arn, tenant.as_deref());
    let server = {
        use axum::serve::ListenerExt as _;
        // Small request and response bodies: without TCP_NODELAY a warm invoke can stall
        // on delayed acknowledgements.
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let app = api::router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    };

    let log_stream = logs::log_stream_name(&spec.version, &hex);
    let credentials = match &config.credentials {
        Some(source) => source.credentials(&spec.role, &spec.name).await,
        None => None,
    };
    let command = command(
        config,
        &spec,
        &log_stream,
        port,
        &tmp_dir,
        credentials.as_ref(),
    );
    let spawned_at = Instant::now();
    let mut child = match spawner.spawn(command).await {
        Ok(child) => child,
        Err(err) => {
            server.abort();
            return Err(StartError::Entrypoint(err));
        }
    };
    let pid = child.id().unwrap_or(0);
    let status = std::fs::File::open(format!("/proc/{pid}/status")).ok();

    let logs = Arc::new(LogTap {
        sink,
        log_group: spec.log_group.clone(),
        log_stream,
        tenant: tenant.clone(),
        tail: Mutex::new(None),
    });
    let mut readers = tokio::task::JoinSet::new();
    if let Some(stdout) = child.stdout.take() {
        readers.spawn(forward_lines(stdout, logs.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.spawn(forward_lines(stderr, logs.clone()));
    }

    let env = Arc::new(Env {
        seq,
        key,
        hex,
        spec,
        tenant,
        pid,
        status,
        spawned_at,
        api: shared.clone(),
        next: next_tx,
        logs,
        exit: exit_rx,
        gone: gone_rx,
        invocations: AtomicU64::new(0),
        cold_start_us: AtomicU64::new(0),
        retired: AtomicBool::new(false),
    });

    let env_dir = env_dir.to_path_buf();
    tokio::spawn(async move {
        let status = tokio::select! {
            status = child.wait() => status,
            () = shared.stop.notified() => {
                let _ = child.start_kill();
                child.wait().await
            }
        };
        let description = match status {
            Ok(status) => describe(status),
            Err(err) => format!("wait failed: {err}"),
        };
        exit_tx.send_replace(Some(description));
        server.abort();
        on_exit();
        // Let the last lines reach the log before the environment counts as gone. A process the
        // function left behind may hold the pipes open, so the wait is bounded.
        let drained = async { while readers.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN_LIMIT, drained).await.is_err() {
            readers.abort_all();
        }
        let _ = tokio::fs::remove_dir_all(&env_dir).await;
        gone_tx.send_replace(true);
    });
    Ok(env)
}

/// The process environment Lambda gives a custom runtime, and nothing of the emulator's own.
fn command(
    config: &RuntimeConfig,
    spec: &FunctionSpec,
    log_stream: &str,
    port: u16,
    tmp_dir: &Path,
    credentials: Option<&EnvCredentials>,
) -> Command {
    let mut vars: BTreeMap<&str, String> = spec
        .environment
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    let reserved = [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", spec.version.clone()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", spec.log_group.clone()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_owned()),
        (
            "AWS_LAMBDA_LOG_FORMAT",
            match spec.log_format {
                LogFormat::Json => "JSON".to_owned(),
                LogFormat::Text => "Text".to_owned(),
            },
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", config.region.clone()),
        ("AWS_DEFAULT_REGION", config.region.clone()),
        // Functions call the emulator, which does not check signatures; real keys never leave
        // the developer's machine this way. A session of the execution role when the emulator
        // knows the role, so the function's calls are evaluated against the role's policies.
        (
            "AWS_ACCESS_KEY_ID",
            credentials.map_or_else(
                || "AKIAEMULATOREXAMPLE00".to_owned(),
                |c| c.access_key_id.clone(),
            ),
        ),
        (
            "AWS_SECRET_ACCESS_KEY",
            credentials.map_or_else(
                || "emulator-secret-access-key".to_owned(),
                |c| c.secret_access_key.clone(),
            ),
        ),
        (
            "AWS_SESSION_TOKEN",
            credentials.map_or_else(
                || "emulator-session-token".to_owned(),
                |c| c.session_token.clone(),
            ),
        ),
        ("AWS_ENDPOINT_URL", config.endpoint_url.clone()),
        ("_HANDLER", spec.handler.clone()),
        ("LAMBDA_TASK_ROOT", spec.code_dir.display().to_string()),
        ("TMPDIR", tmp_dir.display().to_string()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", PATH.to_owned()),
    ];
    vars.extend(reserved);

    let mut command = Command::new(spec.code_dir.join("bootstrap"));
    command
        .current_dir(&spec.code_dir)
        .env_clear()
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    die_with_parent(&mut command);
    command
}

/// Makes the kernel kill the child when the emulator dies, even by SIGKILL, so no function
/// process outlives the emulator that started it.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only the
    // async-signal-safe `prctl` and `getppid`; it allocates nothing and takes no lock. This is
    // one of the two places the emulator needs unsafe code (with `yield_to_invokes`): std offers
    // no way to set the death signal.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then no signal would come.
            if libc::getppid() != parent as libc::pid_t {
                return Err(io::Error::other("the emulator exited during spawn"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// `exit status 3` or `signal: killed`, as Lambda words a runtime's exit.
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(libc::SIGKILL) => "signal: killed".to_owned(),
        Some(libc::SIGSEGV) => "signal: segmentation fault".to_owned(),
        Some(libc::SIGABRT) => "signal: aborted".to_owned(),
        Some(libc::SIGTERM) => "signal: terminated".to_owned(),
        Some(signal) => format!("signal: {signal}"),
        None => "exited".to_owned(),
    }
}

async fn forward_lines(stream: impl AsyncRead + Unpin, logs: Arc<LogTap>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                while matches!(line.last(), Some(b'\n' | b'\r')) {
                    line.pop();
                }
                logs.emit(String::from_utf8_lossy(&line).into_owned());
            }
        }
    }
}

/// The environment's init time so far, for the cold invoke's REPORT and the status page.
pub(crate) fn init_duration(env: &Env) -> Option<Duration> {
    env.api
        .ready_at()
        .map(|ready| ready.saturating_duration_since(env.spawned_at))
}

pub(crate) fn record_cold_start(env: &Env, init: Duration) {
    env.cold_start_us.store(
        u64::try_from(init.as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}
