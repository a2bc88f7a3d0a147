//! Execution environments: real `bootstrap` processes, one pool per (function, revision, tenant),
//! each served its own Lambda Runtime API on an ephemeral loopback port.
//!
//! The warm path of an invoke is two channel handoffs: the invocation goes to the environment's
//! long-polling `GET /runtime/invocation/next` through an mpsc channel, and the runtime's answer
//! comes back through a oneshot. Spawning, disk and locks held across awaits stay off that path.
//!
//! This crate is the emulator's invoke path, which the workspace builds optimised in every
//! profile, the dev build that `cargo xtask deploy` starts included. Generic code compiles where
//! it is instantiated, so the HTTP servers every invoke passes through (the environments'
//! Runtime API and the emulator's own front door, [`serve`]) are started here. It knows nothing
//! of the control plane: log lines go to a [`LogSink`], credentials come from a
//! [`CredentialSource`].

mod api;
pub mod clock;
mod code;
mod env;
mod logs;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::sync::oneshot;

pub use code::prepare_code;
use env::{Env, StartArgs, StartError};

/// What the control plane hands the runtime for one function revision.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub arn: String,
    /// Always `$LATEST` for now.
    pub version: String,
    /// Changes on every code or configuration update; environments of an older revision are
    /// never reused.
    pub revision: String,
    /// Directory holding the extracted deployment package (from [`prepare_code`]).
    pub code_dir: PathBuf,
    pub handler: String,
    pub memory_mb: u32,
    pub timeout: Duration,
    /// The function's own environment variables (Lambda's reserved ones are added by the runtime).
    pub environment: BTreeMap<String, String>,
    pub log_format: LogFormat,
    pub log_group: String,
    pub per_tenant: bool,
    /// The execution role's ARN: environments get credentials of a session of this role.
    pub role: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
}

/// One invoke, already validated by the control plane (tenant rules, payload size, state).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub tenant: Option<String>,
    pub payload: Vec<u8>,
    pub invocation_type: InvocationType,
    /// `X-Amz-Log-Type: Tail`.
    pub tail: bool,
    /// Already base64-decoded `X-Amz-Client-Context` JSON, if any.
    pub client_context: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InvokeOutcome {
    pub request_id: String,
    pub payload: Vec<u8>,
    /// `Unhandled` (or the runtime's error type header) when the function failed.
    pub function_error: Option<String>,
    /// Base64 of the last 4 KB of this invocation's log, when `tail` was asked for.
    pub log_tail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// Every environment slot is busy: Lambda answers 429 `TooManyRequestsException`.
    #[error("Rate Exceeded.")]
    TooManyEnvironments,
    #[error("{0}")]
    Internal(String),
}

/// One log line, for the store's log streams.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub log_group: String,
    pub log_stream: String,
    pub tenant: Option<String>,
    pub timestamp_ms: i64,
    pub message: String,
}

/// Where environments' log lines go (the control plane persists them).
pub trait LogSink: Send + Sync {
    fn emit(&self, event: LogEvent);
}

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Extracted code and per-environment temporary directories live below this.
    pub work_dir: PathBuf,
    pub idle_timeout: Duration,
    pub max_environments: usize,
    /// `AWS_ENDPOINT_URL` given to functions, so they reach the emulator's services.
    pub endpoint_url: String,
    pub region: String,
    /// Mints each new environment's credentials for its function's execution role; `None`
    /// (or no answer) gives the fixed developer keys, which the emulator treats as an
    /// administrator's.
    pub credentials: Option<Arc<dyn CredentialSource>>,
}

/// Temporary credentials an environment finds in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
/// and `AWS_SESSION_TOKEN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

/// Where execution environments' credentials come from (the emulator's STS).
pub trait CredentialSource: Send + Sync + std::fmt::Debug {
    /// Credentials of a session of `role` named after `function`, or `None` when the role is
    /// unknown.
    fn credentials<'a>(
        &'a self,
        role: &'a str,
        function: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<EnvCredentials>> + Send + 'a>>;
}

/// What `/_emulator/status` and `cargo xtask emulator status` show per environment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvironmentStatus {
    pub id: String,
    pub function: String,
    pub revision: String,
    pub tenant: Option<String>,
    pub state: String,
    pub pid: Option<u32>,
    pub invocations: u64,
    pub cold_start_ms: f64,
    pub log_stream: String,
}

/// Serves the emulator's front door, `router` on `listener`, until `stop` fires or is dropped,
/// then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // Small requests and answers, as on the environments' ports: no answer waits on Nagle's
    // algorithm.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stop.await;
        })
        .await
}

/// Lowers the calling thread's scheduling priority (nice 10), for background work of the
/// emulator (writing logs) that shares the cores with the functions and the invoke path: when
/// both are ready to run, the invoke runs first, and the background work takes the idle time.
pub fn yield_to_invokes() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes no pointers and changes only a scheduling attribute; on
        // Linux, `who = 0` with PRIO_PROCESS names the calling thread alone.
        #[allow(unsafe_code)]
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    }
}

/// How long a runtime may take to initialise before its first `/next`, as Lambda's init phase.
const INIT_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Starting,
    Idle,
    Busy,
}

struct Slot {
    env: Arc<Env>,
    state: SlotState,
    /// Position on the pool's clock when it last went idle: the smallest is evicted first.
    last_used: u64,
    idle_since: Instant,
}

/// Every live environment, and which of them wait idle for which pool key.
#[derive(Default)]
struct Pools {
    envs: HashMap<u64, Slot>,
    /// Idle environments per pool key, the most recently used last.
    idle: HashMap<u64, Vec<u64>>,
    /// Environments being started, which already count against the cap.
    starting: usize,
    clock: u64,
}

impl Pools {
    fn unlist_idle(&mut self, key: u64, seq: u64) {
        if let Some(list) = self.idle.get_mut(&key) {
            list.retain(|idle| *idle != seq);
            if list.is_empty() {
                self.idle.remove(&key);
            }
        }
    }

    fn remove(&mut self, seq: u64) -> Option<Arc<Env>> {
        let slot = self.envs.remove(&seq)?;
        if slot.state == SlotState::Idle {
            self.unlist_idle(slot.env.key, seq);
        }
        Some(slot.env)
    }
}

/// The execution environments of every function, pooled per (function, revision, tenant).
pub struct Runtime {
    config: RuntimeConfig,
    sink: Arc<dyn LogSink>,
    pools: Mutex<Pools>,
    keys: std::hash::RandomState,
    next_seq: AtomicU64,
    spawner: Option<env::Spawner>,
    shutting_down: AtomicBool,
    sweeper: std::sync::Once,
    me: Weak<Runtime>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

enum Acquired {
    Warm(Arc<Env>),
    /// No idle environment of the key: start one, after stopping `evict` to stay under the cap.
    Cold {
        evict: Option<Arc<Env>>,
    },
}

/// How the runtime ended an invocation.
enum Finished {
    Completed(api::Completion),
    Exited,
    TimedOut,
    InitFailed(Vec<u8>),
}

struct Ran {
    outcome: InvokeOutcome,
    /// Whether the environment may serve the next invocation of its key.
    reusable: bool,
}

impl Runtime {
    pub fn new(config: RuntimeConfig, sink: Arc<dyn LogSink>) -> Arc<Self> {
        // Environments never outlive the emulator, so directories left under `envs/` belong to
        // a previous run that was killed before it could clean up.
        let _ = std::fs::remove_dir_all(config.work_dir.join("envs"));
        let spawner = match env::Spawner::new() {
            Ok(spawner) => Some(spawner),
            Err(err) => {
                tracing::error!(error = %err, "cannot start the process spawner thread");
                None
            }
        };
        Arc::new_cyclic(|me| Runtime {
            config,
            sink,
            pools: Mutex::new(Pools::default()),
            keys: std::hash::RandomState::new(),
            next_seq: AtomicU64::new(1),
            spawner,
            shutting_down: AtomicBool::new(false),
            sweeper: std::sync::Once::new(),
            me: me.clone(),
        })
    }

    /// Runs one invocation in an environment of its (function, revision, tenant) key, warm if
    /// one is idle, cold otherwise.
    ///
    /// The work runs in its own task, so a caller that goes away (a client disconnecting)
    /// cannot leave an environment marked busy or a start half-accounted.
    pub async fn invoke(
        &self,
        spec: Arc<FunctionSpec>,
        invocation: Invocation,
    ) -> Result<InvokeOutcome, InvokeError> {
        let Some(this) = self.me.upgrade() else {
            return Err(InvokeError::Internal("the runtime is shutting down".into()));
        };
        match tokio::spawn(async move { this.invoke_here(spec, invocation).await }).await {
            Ok(result) => result,
            Err(err) => Err(InvokeError::Internal(format!(
                "the invocation task failed: {err}"
            ))),
        }
    }

    async fn invoke_here(
        &self,
        spec: Arc<FunctionSpec>,
        invocation: Invocation,
    ) -> Result<InvokeOutcome, InvokeError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(InvokeError::Internal("the runtime is shutting down".into()));
        }
        self.start_sweeper();
        let tenant = invocation.tenant.as_deref();
        let key = self.keys.hash_one((&spec.name, &spec.revision, tenant));
        let (env, cold) = match self.acquire(&spec, tenant, key)? {
            Acquired::Warm(env) => (env, false),
            Acquired::Cold { evict } => {
                if let Some(victim) = evict {
                    victim.stop().await;
                }
                match self
                    .start(spec.clone(), invocation.tenant.clone(), key)
                    .await
                {
                    Ok(env) => (env, true),
                    Err(StartError::Entrypoint(err)) => return Ok(invalid_entrypoint(&err)),
                    Err(StartError::Internal(err)) => {
                        return Err(InvokeError::Internal(format!(
                            "cannot start an execution environment for function `{}`: {err}",
                            spec.name
                        )));
                    }
                }
            }
        };
        let ran = self.run(&env, invocation, cold).await;
        self.release(&env, ran.reusable).await;
        Ok(ran.outcome)
    }

    fn acquire(
        &self,
        spec: &FunctionSpec,
        tenant: Option<&str>,
        key: u64,
    ) -> Result<Acquired, InvokeError> {
        let mut pools = lock(&self.pools);
        let warm = pools.idle.get(&key).and_then(|list| {
            list.iter().rev().copied().find(|seq| {
                pools.envs.get(seq).is_some_and(|slot| {
                    slot.env.matches(&spec.name, &spec.revision, tenant) && slot.env.is_running()
                })
            })
        });
        if let Some(seq) = warm {
            pools.unlist_idle(key, seq);
            if let Some(slot) = pools.envs.get_mut(&seq) {
                slot.state = SlotState::Busy;
                return Ok(Acquired::Warm(slot.env.clone()));
            }
        }
        if pools.envs.len() + pools.starting < self.config.max_environments {
            pools.starting += 1;
            return Ok(Acquired::Cold { evict: None });
        }
        let victim = pools
            .envs
            .iter()
            .filter(|(_, slot)| slot.state == SlotState::Idle)
            .min_by_key(|(_, slot)| slot.last_used)
            .map(|(seq, _)| *seq);
        match victim {
            Some(seq) => {
                let evict = pools.remove(seq);
                pools.starting += 1;
                Ok(Acquired::Cold { evict })
            }
            None => Err(InvokeError::TooManyEnvironments),
        }
    }

    async fn start(
        &self,
        spec: Arc<FunctionSpec>,
        tenant: Option<String>,
        key: u64,
    ) -> Result<Arc<Env>, StartError> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let result = match &self.spawner {
            Some(spawner) => {
                let me = self.me.clone();
                env::start(StartArgs {
                    config: &self.config,
                    sink: self.sink.clone(),
                    spawner,
                    spec,
                    tenant,
                    seq,
                    key,
                    on_exit: Box::new(move || {
                        if let Some(runtime) = me.upgrade() {
                            lock(&runtime.pools).remove(seq);
                        }
                    }),
                })
                .await
            }
            None => Err(StartError::Internal(std::io::Error::other(
                "the process spawner thread could not be started",
            ))),
        };
        let mut pools = lock(&self.pools);
        pools.starting -= 1;
        if let Ok(env) = &result {
            pools.envs.insert(
                seq,
                Slot {
                    env: env.clone(),
                    state: SlotState::Starting,
                    last_used: 0,
                    idle_since: Instant::now(),
                },
            );
        }
        result
    }

    /// Hands one invocation to `env` and waits for the runtime's answer, its exit or the
    /// function's timeout, logging START, END and REPORT around it.
    async fn run(&self, env: &Arc<Env>, invocation: Invocation, cold: bool) -> Ran {
        let request = uuid::Uuid::new_v4();
        let request_id = request.to_string();
        let spec = &env.spec;
        let tenant = env.tenant.as_deref();
        let invocation_tail = invocation.tail;
        if invocation_tail {
            env.logs.begin_tail();
        }
        let mut exit = env.exit.clone();

        let mut failure = None;
        if cold {
            let mut ready = env.api.ready();
            failure = tokio::select! {
                biased;
                _ = ready.wait_for(|ready| *ready) => None,
                _ = exit.wait_for(Option::is_some) => Some(match env.api.init_failure() {
                    Some(init) => Finished::InitFailed(init_failure_payload(&init)),
                    None => Finished::Exited,
                }),
                () = tokio::time::sleep(INIT_LIMIT) => Some(Finished::TimedOut),
            };
            if let Some(init) = env::init_duration(env) {
                env::record_cold_start(env, init);
            }
            if failure.is_none() {
                self.mark_busy(env);
            }
        }

        env.logs.emit(logs::start_line(spec, &request_id, tenant));
        let started = Instant::now();
        let finished = match failure {
            Some(failure) => failure,
            None => {
                self.dispatch(env, &request, &request_id, invocation, &mut exit)
                    .await
            }
        };
        let duration = started.elapsed();

        let mut function_error = Some("Unhandled".to_owned());
        let (payload, status, reusable) = match finished {
            Finished::Completed(api::Completion::Response(body)) => {
                function_error = None;
                (Vec::from(body), logs::Status::Success, true)
            }
            Finished::Completed(api::Completion::Error { error_type, body }) => {
                function_error = Some(normalize_error_type(error_type.as_deref()));
                let payload = if body.is_empty() {
                    error_payload(&normalize_error_type(error_type.as_deref()), "")
                } else {
                    Vec::from(body)
                };
                (payload, logs::Status::Error, true)
            }
            Finished::Completed(api::Completion::TooLarge) => (
                error_payload(
                    "Function.ResponseSizeTooLarge",
                    &format!(
                        "Response payload size exceeded maximum allowed payload size ({} bytes).",
                        api::MAX_RESPONSE_BYTES
                    ),
                ),
                logs::Status::Error,
                true,
            ),
            Finished::Exited => {
                let description = exit
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "Runtime exited without providing a reason".to_owned());
                (
                    error_payload(
                        "Runtime.ExitError",
                        &format!(
                            "RequestId: {request_id} Error: Runtime exited with error: {description}"
                        ),
                    ),
                    logs::Status::Error,
                    false,
                )
            }
            Finished::TimedOut => {
                env.kill();
                let limit = if cold && env.api.ready_at().is_none() {
                    INIT_LIMIT
                } else {
                    spec.timeout
                };
                (
                    error_payload(
                        "Sandbox.Timedout",
                        &format!(
                            "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                            limit.as_secs_f64()
                        ),
                    ),
                    logs::Status::Timeout,
                    false,
                )
            }
            Finished::InitFailed(payload) => (payload, logs::Status::Error, false),
        };

        if invocation_tail {
            // Output the function wrote just before answering may still sit in the pipe; give
            // the reader tasks a chance to move it into the tail. Best effort, and only when a
            // caller asked for a tail, so the usual warm path never waits.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
        }
        env.logs
            .emit(logs::end_line(spec, &request_id, status, tenant));
        let report = logs::Report {
            request_id: &request_id,
            duration,
            max_memory_mb: logs::max_memory_mb(env.status.as_ref()),
            init: if cold { env::init_duration(env) } else { None },
            status,
            tenant,
        };
        env.logs.emit(logs::report_line(spec, &report));
        let log_tail = env.logs.take_tail().map(logs::Tail::finish);
        env.invocations.fetch_add(1, Ordering::Relaxed);
        Ran {
            outcome: InvokeOutcome {
                request_id,
                payload,
                function_error,
                log_tail,
            },
            reusable,
        }
    }

    async fn dispatch(
        &self,
        env: &Env,
        request: &uuid::Uuid,
        request_id: &str,
        invocation: Invocation,
        exit: &mut tokio::sync::watch::Receiver<Option<String>>,
    ) -> Finished {
        let timeout = env.spec.timeout;
        let (done_tx, mut done_rx) = oneshot::channel();
        env.api.expect(request_id.to_owned(), done_tx);
        let deadline_ms = clock::now_millis()
            .saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX));
        let pending = api::Pending {
            request_id: request_id.to_owned(),
            payload: Bytes::from(invocation.payload),
            deadline_ms,
            trace_id: trace_id(request),
            client_context: invocation.client_context,
        };
        let finished = if env.next.try_send(pending).is_err() {
            Finished::Exited
        } else {
            tokio::select! {
                biased;
                done = &mut done_rx => match done {
                    Ok(completion) => Finished::Completed(completion),
                    Err(_) => Finished::Exited,
                },
                _ = exit.wait_for(Option::is_some) => {
                    // The runtime may have answered just before it exited.
                    match done_rx.try_recv() {
                        Ok(completion) => Finished::Completed(completion),
                        Err(_) => Finished::Exited,
                    }
                }
                () = tokio::time::sleep(timeout) => Finished::TimedOut,
            }
        };
        env.api.clear();
        finished
    }

    fn mark_busy(&self, env: &Env) {
        if let Some(slot) = lock(&self.pools).envs.get_mut(&env.seq) {
            slot.state = SlotState::Busy;
        }
    }

    /// Returns `env` to its pool, or stops it when it may not serve again.
    async fn release(&self, env: &Arc<Env>, reusable: bool) {
        let stop = {
            let mut pools = lock(&self.pools);
            let keep = reusable
                && env.is_running()
                && !env.retired.load(Ordering::Acquire)
                && !self.shutting_down.load(Ordering::Acquire);
            pools.clock += 1;
            let clock = pools.clock;
            match pools.envs.get_mut(&env.seq) {
                Some(slot) if keep => {
                    slot.state = SlotState::Idle;
                    slot.last_used = clock;
                    slot.idle_since = Instant::now();
                    pools.idle.entry(env.key).or_default().push(env.seq);
                    false
                }
                _ => {
                    pools.remove(env.seq);
                    true
                }
            }
        };
        if stop {
            env.stop().await;
        }
    }

    /// Stops every environment of `function` whose revision differs from `keep_revision`
    /// (all of them when `None`: the function was deleted).
    ///
    /// Idle environments stop now; busy ones finish their invocation first.
    pub async fn retire(&self, function: &str, keep_revision: Option<&str>) {
        let victims: Vec<Arc<Env>> = {
            let mut pools = lock(&self.pools);
            let mut idle = Vec::new();
            for (seq, slot) in &pools.envs {
                let env = &slot.env;
                if env.spec.name == function
                    && keep_revision.is_none_or(|keep| env.spec.revision != keep)
                {
                    env.retired.store(true, Ordering::Release);
                    if slot.state == SlotState::Idle {
                        idle.push(*seq);
                    }
                }
            }
            idle.into_iter()
                .filter_map(|seq| pools.remove(seq))
                .collect()
        };
        stop_all(&victims).await;
    }

    pub fn environments(&self) -> Vec<EnvironmentStatus> {
        let pools = lock(&self.pools);
        let mut slots: Vec<&Slot> = pools.envs.values().collect();
        slots.sort_by_key(|slot| slot.env.seq);
        slots
            .into_iter()
            .map(|slot| {
                let env = &slot.env;
                EnvironmentStatus {
                    id: env.hex.clone(),
                    function: env.spec.name.clone(),
                    revision: env.spec.revision.clone(),
                    tenant: env.tenant.clone(),
                    state: match slot.state {
                        SlotState::Starting => "starting",
                        SlotState::Idle => "idle",
                        SlotState::Busy => "busy",
                    }
                    .to_owned(),
                    pid: Some(env.pid),
                    invocations: env.invocations.load(Ordering::Relaxed),
                    cold_start_ms: env.cold_start_us.load(Ordering::Relaxed) as f64 / 1000.0,
                    log_stream: env.logs.log_stream.clone(),
                }
            })
            .collect()
    }

    /// Stops every environment (the emulator is shutting down).
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let all: Vec<Arc<Env>> = {
            let mut pools = lock(&self.pools);
            pools.idle.clear();
            pools.envs.drain().map(|(_, slot)| slot.env).collect()
        };
        stop_all(&all).await;
    }

    /// Starts, once, the task that stops environments idle for longer than `idle_timeout`.
    fn start_sweeper(&self) {
        self.sweeper.call_once(|| {
            let me = self.me.clone();
            let period = (self.config.idle_timeout / 4)
                .clamp(Duration::from_millis(20), Duration::from_secs(1));
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(period);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    ticker.tick().await;
                    let Some(runtime) = me.upgrade() else { break };
                    if runtime.shutting_down.load(Ordering::Acquire) {
                        break;
                    }
                    let expired = runtime.take_expired();
                    stop_all(&expired).await;
                }
            });
        });
    }

    fn take_expired(&self) -> Vec<Arc<Env>> {
        let mut pools = lock(&self.pools);
        let expired: Vec<u64> = pools
            .envs
            .iter()
            .filter(|(_, slot)| {
                slot.state == SlotState::Idle
                    && slot.idle_since.elapsed() >= self.config.idle_timeout
            })
            .map(|(seq, _)| *seq)
            .collect();
        expired
            .into_iter()
            .filter_map(|seq| pools.remove(seq))
            .collect()
    }
}

/// Kills every environment first, then waits for each, so stopping many takes as long as the
/// slowest rather than the sum.
async fn stop_all(envs: &[Arc<Env>]) {
    for env in envs {
        env.kill();
    }
    for env in envs {
        env.stop().await;
    }
}

/// The pool lock guards plain bookkeeping that no holder leaves half-written, so a poisoned
/// lock is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn error_payload(error_type: &str, message: &str) -> Vec<u8> {
    serde_json::json!({ "errorType": error_type, "errorMessage": message })
        .to_string()
        .into_bytes()
}

/// `X-Amz-Function-Error` as Lambda spells it, whatever case the runtime sent.
fn normalize_error_type(error_type: Option<&str>) -> String {
    match error_type.map(str::trim) {
        None | Some("") => "Unhandled".to_owned(),
        Some(kind) if kind.eq_ignore_ascii_case("unhandled") => "Unhandled".to_owned(),
        Some(kind) if kind.eq_ignore_ascii_case("handled") => "Handled".to_owned(),
        Some(kind) => kind.to_owned(),
    }
}

/// The payload the first invoke gets when the runtime reported an init failure: the runtime's
/// own error document, with an `errorType` if it gave none.
fn init_failure_payload(failure: &api::InitFailure) -> Vec<u8> {
    let error_type = failure
        .error_type
        .clone()
        .unwrap_or_else(|| "Runtime.InitError".to_owned());
    match serde_json::from_slice::<serde_json::Value>(&failure.body) {
        Ok(serde_json::Value::Object(mut document)) => {
            document
                .entry("errorType")
                .or_insert_with(|| error_type.into());
            serde_json::Value::Object(document).to_string().into_bytes()
        }
        _ => error_payload(&error_type, &String::from_utf8_lossy(&failure.body)),
    }
}

fn invalid_entrypoint(err: &std::io::Error) -> InvokeOutcome {
    let request_id = uuid::Uuid::new_v4().to_string();
    InvokeOutcome {
        payload: error_payload(
            "Runtime.InvalidEntrypoint",
            &format!("RequestId: {request_id} Error: cannot execute bootstrap: {err}"),
        ),
        request_id,
        function_error: Some("Unhandled".to_owned()),
        log_tail: None,
    }
}

/// An X-Ray trace header for one invocation; functions pass it on but nothing reads it here.
fn trace_id(request: &uuid::Uuid) -> String {
    let epoch = clock::now_millis() / 1000;
    let bits = request.as_u128();
    let root = bits & ((1u128 << 96) - 1);
    let parent = (bits >> 64) as u64;
    format!("Root=1-{epoch:08x}-{root:024x};Parent={parent:016x};Sampled=0")
}
