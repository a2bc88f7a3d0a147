//! Tests of the runtime against the real probe function (`examples/probe.rs`), which
//! `cargo test -p emulator-runtime` builds before running them.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use super::*;

#[derive(Default)]
struct MemorySink {
    events: Mutex<Vec<LogEvent>>,
}

impl LogSink for MemorySink {
    fn emit(&self, event: LogEvent) {
        self.events.lock().expect("sink lock").push(event);
    }
}

impl MemorySink {
    fn messages(&self) -> Vec<LogEvent> {
        self.events.lock().expect("sink lock").clone()
    }
}

struct Harness {
    dir: tempfile::TempDir,
    work: PathBuf,
    code_dir: PathBuf,
    runtime: Arc<Runtime>,
    sink: Arc<MemorySink>,
}

fn probe() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/examples/probe");
    assert!(
        path.exists(),
        "the probe function is missing at {}: run cargo test -p emulator-runtime (builds the probe example)",
        path.display()
    );
    path
}

fn harness(max_environments: usize) -> Harness {
    harness_with(max_environments, Duration::from_secs(300))
}

fn harness_with(max_environments: usize, idle_timeout: Duration) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    // Nested, so that a tenant id like `../../x` resolved against it would stay inside `dir`.
    let work = dir.path().join("a/b/work");
    let code_dir = dir.path().join("code");
    std::fs::create_dir_all(&work).expect("work dir");
    std::fs::create_dir_all(&code_dir).expect("code dir");
    std::os::unix::fs::symlink(probe(), code_dir.join("bootstrap")).expect("bootstrap link");
    let sink = Arc::new(MemorySink::default());
    let runtime = Runtime::new(
        RuntimeConfig {
            work_dir: work.clone(),
            idle_timeout,
            max_environments,
            endpoint_url: "http://127.0.0.1:9".into(),
            region: "us-east-1".into(),
            credentials: None,
        },
        sink.clone(),
    );
    Harness {
        dir,
        work,
        code_dir,
        runtime,
        sink,
    }
}

impl Harness {
    fn spec(&self, revision: &str) -> FunctionSpec {
        FunctionSpec {
            name: "represent-dev-probe".into(),
            arn: "arn:aws:lambda:us-east-1:000000000000:function:represent-dev-probe".into(),
            version: "$LATEST".into(),
            revision: revision.into(),
            code_dir: self.code_dir.clone(),
            handler: "bootstrap".into(),
            memory_mb: 128,
            timeout: Duration::from_secs(10),
            environment: BTreeMap::from([("PROBE_VAR".to_owned(), "from-config".to_owned())]),
            log_format: LogFormat::Text,
            log_group: "/aws/lambda/represent-dev-probe".into(),
            per_tenant: true,
            role: String::new(),
        }
    }

    async fn call(
        &self,
        spec: &Arc<FunctionSpec>,
        tenant: Option<&str>,
        input: Value,
    ) -> (InvokeOutcome, Value) {
        call(&self.runtime, spec, tenant, input, false).await
    }
}

async fn call(
    runtime: &Runtime,
    spec: &Arc<FunctionSpec>,
    tenant: Option<&str>,
    input: Value,
    tail: bool,
) -> (InvokeOutcome, Value) {
    let outcome = runtime
        .invoke(
            spec.clone(),
            Invocation {
                tenant: tenant.map(str::to_owned),
                payload: input.to_string().into_bytes(),
                invocation_type: InvocationType::RequestResponse,
                tail,
                client_context: None,
            },
        )
        .await
        .expect("invoke");
    let body: Value = serde_json::from_slice(&outcome.payload).expect("JSON payload");
    (outcome, body)
}

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn pid(body: &Value) -> u64 {
    body["pid"].as_u64().expect("pid in answer")
}

#[tokio::test]
async fn each_tenant_gets_its_own_environment_and_keeps_it() {
    let h = harness(10);
    let spec = Arc::new(h.spec("r1"));
    let (first, a1) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    let (_, a2) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    let (_, b) = h.call(&spec, Some("CA"), json!({"op": "whoami"})).await;

    assert_eq!(first.function_error, None);
    assert_eq!(a1["tenant"], "TX");
    assert_eq!(b["tenant"], "CA");
    assert_eq!(
        pid(&a1),
        pid(&a2),
        "the same tenant reuses its warm environment"
    );
    assert_ne!(pid(&a1), pid(&b), "another tenant never shares it");
    assert_ne!(a1["tmpdir"], b["tmpdir"]);
    assert_ne!(
        a1["env"]["AWS_LAMBDA_RUNTIME_API"], b["env"]["AWS_LAMBDA_RUNTIME_API"],
        "each environment has its own Runtime API"
    );
    assert_eq!(a1["request_id"], first.request_id.as_str());

    let env = &a1["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "represent-dev-probe");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
    assert_eq!(env["AWS_LAMBDA_LOG_FORMAT"], "Text");
    assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:9");
    assert_eq!(env["PROBE_VAR"], "from-config");
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(
        env["HOME"],
        Value::Null,
        "the emulator's own environment is not passed on"
    );
    let stream = env["AWS_LAMBDA_LOG_STREAM_NAME"]
        .as_str()
        .expect("log stream");
    let (date, id) = stream
        .split_once("/[$LATEST]")
        .expect("stream has a version");
    assert_eq!(date.len(), 10);
    assert_eq!(id.len(), 32);
    let tmpdir = PathBuf::from(a1["tmpdir"].as_str().expect("tmpdir"));
    assert!(
        tmpdir.starts_with(h.work.join("envs")),
        "{}",
        tmpdir.display()
    );

    let statuses = h.runtime.environments();
    assert_eq!(statuses.len(), 2);
    let tx = statuses
        .iter()
        .find(|status| status.tenant.as_deref() == Some("TX"))
        .expect("TX environment");
    assert_eq!(tx.invocations, 2);
    assert_eq!(tx.state, "idle");
    assert_eq!(tx.pid, Some(pid(&a1) as u32));
    assert_eq!(tx.log_stream, stream);
    h.runtime.shutdown().await;
}

#[tokio::test]
async fn memory_and_temporary_files_stay_with_their_tenant() {
    let h = harness(10);
    let spec = Arc::new(h.spec("r1"));
    h.call(
        &spec,
        Some("TX"),
        json!({"op": "remember", "value": "texas secret"}),
    )
    .await;
    let (_, same) = h.call(&spec, Some("TX"), json!({"op": "recall"})).await;
    let (_, other) = h.call(&spec, Some("CA"), json!({"op": "recall"})).await;
    assert_eq!(same["memory"], "texas secret");
    assert_eq!(same["file"], "texas secret");
    assert_eq!(other["memory"], Value::Null);
    assert_eq!(other["file"], Value::Null);
    h.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invokes_scale_out_and_never_cross_tenants() {
    let h = harness(20);
    let spec = Arc::new(h.spec("r1"));
    let mut calls = tokio::task::JoinSet::new();
    for round in 0..8 {
        let tenant = if round % 2 == 0 { "TX" } else { "CA" };
        let runtime = h.runtime.clone();
        let spec = spec.clone();
        calls.spawn(async move {
            let (_, body) = call(
                &runtime,
                &spec,
                Some(tenant),
                json!({"op": "sleep", "ms": 300}),
                false,
            )
            .await;
            (tenant, body)
        });
    }
    let mut pids: BTreeMap<&str, HashSet<u64>> = BTreeMap::new();
    while let Some(answer) = calls.join_next().await {
        let (tenant, body) = answer.expect("invoke task");
        assert_eq!(body["tenant"], tenant, "an answer came from another tenant");
        pids.entry(tenant).or_default().insert(pid(&body));
    }
    assert!(
        pids["TX"].len() > 1,
        "concurrent invokes of one tenant scale out"
    );
    assert!(pids["TX"].is_disjoint(&pids["CA"]));
    h.runtime.shutdown().await;
}

#[tokio::test]
async fn a_function_without_tenancy_sees_no_tenant() {
    let h = harness(10);
    let mut spec = h.spec("r1");
    spec.per_tenant = false;
    let spec = Arc::new(spec);
    let (_, body) = h.call(&spec, None, json!({"op": "whoami"})).await;
    assert_eq!(body["tenant"], Value::Null);
    h.runtime.shutdown().await;
}

#[tokio::test]
async fn a_timed_out_invoke_kills_its_environment() {
    let h = harness(10);
    let mut spec = h.spec("r1");
    spec.timeout = Duration::from_secs(1);
    let spec = Arc::new(spec);
    let (_, before) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    let (outcome, body) = h
        .call(&spec, Some("TX"), json!({"op": "sleep", "ms": 5000}))
        .await;
    assert_eq!(outcome.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    assert_eq!(
        body["errorMessage"],
        format!(
            "RequestId: {} Error: Task timed out after 1.00 seconds",
            outcome.request_id
        )
    );
    assert!(!alive(pid(&before)), "the timed-out process is gone");
    let tmpdir = PathBuf::from(before["tmpdir"].as_str().expect("tmpdir"));
    assert!(!tmpdir.exists(), "its TMPDIR is removed with it");

    let (next, after) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    assert_eq!(next.function_error, None);
    assert_ne!(pid(&after), pid(&before));
    h.runtime.shutdown().await;
}

#[tokio::test]
async fn a_crash_fails_only_its_invoke() {
    let h = harness(10);
    let spec = Arc::new(h.spec("r1"));
    let (_, before) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    let (outcome, body) = h.call(&spec, Some("TX"), json!({"op": "crash"})).await;
    assert_eq!(outcome.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert_eq!(
        body["errorMessage"],
        format!(
            "RequestId: {} Error: Runtime exited with error: exit status 3",
            outcome.request_id
        )
    );
    let (next, after) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    assert_eq!(next.function_error, None);
    assert_ne!(
        pid(&after),
        pid(&before),
        "a new environment serves the next invoke"
    );
    assert_eq!(h.runtime.environments().len(), 1);
    h.runtime.shutdown().await;
}

#[tokio::test]
async fn a_function_error_keeps_the_environment() {
    let h = harness(10);
    let spec = Arc::new(h.spec("r1"));
    let (_, before) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    let (outcome, body) = h.call(&spec, Some("TX"), json!({"op": "fail"})).await;
    assert_eq!(outcome.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "ProbeFailure");
    assert_eq!(body["errorMessage"], "the probe was asked to fail");
    let (_, after) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    assert_eq!(pid(&after), pid(&before));
    h.runtime.shutdown().await;
}

#[tokio::test]
async fn an_init_error_is_reported_to_the_first_invoke() {
    let h = harness(10);
    let mut spec = h.spec("r1");
    spec.environment
        .insert("PROBE_INIT_FAIL".into(), "1".into());
    let spec = Arc::new(spec);
    let (outcome, body) = call(&h.runtime, &spec, Some("TX"), json!({}), true).await;
    assert_eq!(outcome.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "Runtime.InitError");
    assert_eq!(
        body["errorMessage"],
        "probe init failed: PROBE_INIT_FAIL is set"
    );
    assert!(
        h.runtime.environments().is_empty(),
        "the failed environment is discarded"
    );
    h.runtime.shutdown().await;
}

#[tokio::test]
async fn a_bootstrap_that_cannot_run_is_an_invalid_entrypoint() {
    let h = harness(10);
    let code_dir = h.dir.path().join("broken");
    std::fs::create_dir_all(&code_dir).expect("code dir");
    std::fs::write(code_dir.join("bootstrap"), "not a program").expect("bootstrap");
    let mut spec = h.spec("r1");
    spec.code_dir = code_dir;
    let spec = Arc::new(spec);
    let (outcome, body) = h.call(&spec, Some("TX"), json!({})).await;
    assert_eq!(outcome.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "Runtime.InvalidEntrypoint");
    assert!(h.runtime.environments().is_empty());
    let envs = std::fs::read_dir(h.work.join("envs"))
        .expect("envs dir")
        .count();
    assert_eq!(envs, 0, "the environment's directory is removed");
}

#[tokio::test]
async fn json_tail_carries_platform_events_with_the_tenant() {
    let h = harness(10);
    let mut spec = h.spec("r1");
    spec.log_format = LogFormat::Json;
    let spec = Arc::new(spec);
    let (outcome, body) = call(&h.runtime, &spec, Some("TX"), json!({"op": "whoami"}), true).await;
    assert_eq!(body["env"]["AWS_LAMBDA_LOG_FORMAT"], "JSON");
    let tail = base64::engine::general_purpose::STANDARD
        .decode(outcome.log_tail.expect("tail was asked for"))
        .expect("base64 tail");
    let lines: Vec<Value> = String::from_utf8(tail)
        .expect("UTF-8 tail")
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let start = lines
        .iter()
        .find(|line| line["type"] == "platform.start")
        .expect("platform.start in the tail");
    assert_eq!(start["record"]["requestId"], outcome.request_id.as_str());
    assert_eq!(start["record"]["tenantId"], "TX");
    assert_eq!(start["record"]["functionArn"], spec.arn.as_str());
    let report = lines
        .iter()
        .find(|line| line["type"] == "platform.report")
        .expect("platform.report in the tail");
    assert_eq!(report["record"]["tenantId"], "TX");
    assert_eq!(report["record"]["status"], "success");
    assert_eq!(report["record"]["metrics"]["memorySizeMB"], 128);
    assert!(report["record"]["metrics"]["maxMemoryUsedMB"].as_u64() > Some(0));
    assert!(report["record"]["metrics"]["initDurationMs"].is_number());

    let (second, _) = call(
        &h.runtime,
        &spec,
        Some("TX"),
        json!({"op": "whoami"}),
        false,
    )
    .await;
    assert_eq!(second.log_tail, None);
    let events = h.sink.messages();
    let warm_report = events
        .iter()
        .find(|event| {
            event.message.contains("platform.report") && event.message.contains(&second.request_id)
        })
        .expect("warm REPORT emitted");
    assert!(
        !warm_report.message.contains("initDurationMs"),
        "only the cold invoke has init"
    );
    assert_eq!(warm_report.tenant.as_deref(), Some("TX"));
    assert_eq!(warm_report.log_group, "/aws/lambda/represent-dev-probe");
    h.runtime.shutdown().await;
}

#[tokio::test]
async fn text_logs_have_start_end_report_and_function_output() {
    let h = harness(10);
    let spec = Arc::new(h.spec("r1"));
    let (outcome, _) = call(
        &h.runtime,
        &spec,
        Some("TX"),
        json!({"op": "log", "lines": 3}),
        true,
    )
    .await;
    let tail = base64::engine::general_purpose::STANDARD
        .decode(outcome.log_tail.expect("tail"))
        .expect("base64 tail");
    let tail = String::from_utf8(tail).expect("UTF-8 tail");
    let id = &outcome.request_id;
    assert!(
        tail.starts_with(&format!("START RequestId: {id} Version: $LATEST\n")),
        "{tail}"
    );
    assert!(tail.contains(&format!("END RequestId: {id}\n")), "{tail}");
    let report = tail
        .lines()
        .find(|line| line.starts_with("REPORT"))
        .expect("REPORT line");
    assert!(
        report.starts_with(&format!("REPORT RequestId: {id}\tDuration: ")),
        "{report}"
    );
    assert!(
        report.contains("\tMemory Size: 128 MB\tMax Memory Used: "),
        "{report}"
    );
    assert!(report.contains("\tInit Duration: "), "{report}");

    // Function output reaches the sink under the environment's stream, whatever the timing of
    // the pipes relative to the answer.
    let stream = h.runtime.environments()[0].log_stream.clone();
    h.runtime.shutdown().await;
    let events = h.sink.messages();
    for line in 0..3 {
        let expected = format!("probe log line {line}");
        let event = events
            .iter()
            .find(|event| event.message == expected)
            .expect("function output in the sink");
        assert_eq!(event.log_stream, stream);
        assert_eq!(event.tenant.as_deref(), Some("TX"));
    }
}

#[tokio::test]
async fn retire_replaces_environments_of_old_revisions() {
    let h = harness(10);
    let old = Arc::new(h.spec("r1"));
    let (_, before) = h.call(&old, Some("TX"), json!({"op": "whoami"})).await;
    h.runtime.retire(&old.name, Some("r2")).await;
    assert!(!alive(pid(&before)));
    assert!(h.runtime.environments().is_empty());
    let new = Arc::new(h.spec("r2"));
    let (_, after) = h.call(&new, Some("TX"), json!({"op": "whoami"})).await;
    assert_ne!(pid(&after), pid(&before));

    // A new revision never reuses an environment of the old one, even before `retire`.
    let (_, third) = h
        .call(&Arc::new(h.spec("r3")), Some("TX"), json!({"op": "whoami"}))
        .await;
    assert_ne!(pid(&third), pid(&after));
    h.runtime.retire(&new.name, None).await;
    assert!(!alive(pid(&after)) && !alive(pid(&third)));
    assert!(h.runtime.environments().is_empty());
}

#[tokio::test]
async fn the_cap_evicts_the_least_recently_used_idle_environment() {
    let h = harness(2);
    let spec = Arc::new(h.spec("r1"));
    let (_, tx) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    let (_, ca) = h.call(&spec, Some("CA"), json!({"op": "whoami"})).await;
    let (_, ny) = h.call(&spec, Some("NY"), json!({"op": "whoami"})).await;
    assert!(
        !alive(pid(&tx)),
        "the least recently used environment is stopped"
    );
    assert!(!Path::new(tx["tmpdir"].as_str().expect("tmpdir")).exists());
    assert!(alive(pid(&ca)) && alive(pid(&ny)));
    let tenants: HashSet<Option<String>> = h
        .runtime
        .environments()
        .into_iter()
        .map(|status| status.tenant)
        .collect();
    assert_eq!(
        tenants,
        HashSet::from([Some("CA".to_owned()), Some("NY".to_owned())])
    );
    h.runtime.shutdown().await;
    assert!(!alive(pid(&ca)) && !alive(pid(&ny)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cap_of_busy_environments_is_throttled() {
    let h = harness(1);
    let spec = Arc::new(h.spec("r1"));
    let (_, warm) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    let runtime = h.runtime.clone();
    let busy_spec = spec.clone();
    let busy = tokio::spawn(async move {
        call(
            &runtime,
            &busy_spec,
            Some("TX"),
            json!({"op": "sleep", "ms": 10_000}),
            false,
        )
        .await
    });
    // Wait until the long invoke holds the only environment.
    while h.runtime.environments()[0].state != "busy" {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = h
        .runtime
        .invoke(
            spec.clone(),
            Invocation {
                tenant: Some("CA".into()),
                payload: b"{}".to_vec(),
                invocation_type: InvocationType::Event,
                tail: false,
                client_context: None,
            },
        )
        .await;
    assert!(matches!(refused, Err(InvokeError::TooManyEnvironments)));
    h.runtime.shutdown().await;
    let (outcome, _) = busy.await.expect("busy invoke");
    assert_eq!(outcome.function_error.as_deref(), Some("Unhandled"));
    assert!(!alive(pid(&warm)));
}

#[tokio::test]
async fn idle_environments_are_reclaimed() {
    let h = harness_with(10, Duration::from_millis(100));
    let spec = Arc::new(h.spec("r1"));
    let (_, body) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    let tmpdir = PathBuf::from(body["tmpdir"].as_str().expect("tmpdir"));
    for _ in 0..500 {
        if h.runtime.environments().is_empty() && !alive(pid(&body)) && !tmpdir.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the idle environment was not reclaimed");
}

#[tokio::test]
async fn shutdown_stops_processes_and_removes_their_tmpdirs() {
    let h = harness(10);
    let spec = Arc::new(h.spec("r1"));
    let (_, tx) = h
        .call(&spec, Some("TX"), json!({"op": "remember", "value": "v"}))
        .await;
    let (_, who) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    let tmpdir = PathBuf::from(who["tmpdir"].as_str().expect("tmpdir"));
    assert!(tmpdir.join("remembered").exists());
    h.runtime.shutdown().await;
    assert!(!alive(pid(&tx)));
    assert!(!tmpdir.exists());
    assert!(h.runtime.environments().is_empty());
    let refused = h
        .runtime
        .invoke(
            spec.clone(),
            Invocation {
                tenant: Some("TX".into()),
                payload: b"{}".to_vec(),
                invocation_type: InvocationType::RequestResponse,
                tail: false,
                client_context: None,
            },
        )
        .await;
    assert!(matches!(refused, Err(InvokeError::Internal(_))));
}

#[tokio::test]
async fn a_tenant_id_is_never_a_path() {
    let h = harness(10);
    let spec = Arc::new(h.spec("r1"));
    let tenant = "../../x";
    let (outcome, body) = h
        .call(&spec, Some(tenant), json!({"op": "remember", "value": "v"}))
        .await;
    assert_eq!(outcome.function_error, None);
    assert_eq!(body["tenant"], tenant);
    let mut pending = vec![h.dir.path().to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let entry = entry.expect("dir entry");
            assert_ne!(
                entry.file_name(),
                "x",
                "a path was built from the tenant id"
            );
            if entry.file_type().expect("file type").is_dir() {
                pending.push(entry.path());
            }
        }
    }
    h.runtime.shutdown().await;
}

/// Sends one raw HTTP request to an environment's Runtime API and returns the status line and body.
fn runtime_api(api: &str, method: &str, path: &str, body: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(api).expect("connect to the Runtime API");
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {api}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_api_refuses_unknown_request_ids_and_late_init_errors() {
    let h = harness(10);
    let spec = Arc::new(h.spec("r1"));
    let (_, body) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    let api = body["env"]["AWS_LAMBDA_RUNTIME_API"]
        .as_str()
        .expect("runtime api")
        .to_owned();
    let (status, answer) = tokio::task::spawn_blocking({
        let api = api.clone();
        move || {
            runtime_api(
                &api,
                "POST",
                "/2018-06-01/runtime/invocation/bogus/response",
                "{}",
            )
        }
    })
    .await
    .expect("request");
    assert!(status.contains(" 400 "), "{status}");
    assert!(answer.contains("InvalidRequestID"), "{answer}");
    let (status, _) = tokio::task::spawn_blocking(move || {
        runtime_api(&api, "POST", "/2018-06-01/runtime/init/error", "{}")
    })
    .await
    .expect("request");
    assert!(status.contains(" 403 "), "{status}");
    // The environment still serves its tenant.
    let (_, again) = h.call(&spec, Some("TX"), json!({"op": "whoami"})).await;
    assert_eq!(pid(&again), pid(&body));
    h.runtime.shutdown().await;
}

#[tokio::test]
async fn prepared_code_runs_and_hostile_packages_are_refused() {
    let h = harness(10);
    let zip = {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        writer
            .start_file("bootstrap", stored.unix_permissions(0o644))
            .expect("entry");
        writer
            .write_all(&std::fs::read(probe()).expect("probe binary"))
            .expect("write");
        writer
            .start_file("data/config.json", stored.unix_permissions(0o600))
            .expect("entry");
        writer.write_all(b"{}").expect("write");
        writer.finish().expect("zip").into_inner()
    };
    let code_dir = prepare_code(&h.work, &zip).expect("prepare");
    assert_eq!(
        prepare_code(&h.work, &zip).expect("prepare again"),
        code_dir
    );
    assert!(code_dir.starts_with(h.work.join("code")));
    assert_eq!(code_dir.file_name().map(|name| name.len()), Some(64));
    assert!(code_dir.join("data/config.json").exists());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(code_dir.join("bootstrap"))
        .expect("bootstrap")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "bootstrap is executable");

    let mut spec = h.spec("r1");
    spec.code_dir = code_dir;
    let (outcome, body) = h
        .call(&Arc::new(spec), Some("TX"), json!({"op": "whoami"}))
        .await;
    assert_eq!(outcome.function_error, None);
    assert_eq!(body["tenant"], "TX");
    h.runtime.shutdown().await;

    for name in ["../escape", "/etc/escape", "a/../../escape"] {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer
            .start_file(name, zip::write::SimpleFileOptions::default())
            .expect("entry");
        writer.write_all(b"x").expect("write");
        let zip = writer.finish().expect("zip").into_inner();
        let err = prepare_code(&h.work, &zip).expect_err("hostile entry refused");
        assert!(
            err.to_string().contains("outside the package"),
            "{name}: {err}"
        );
    }
    assert!(!h.dir.path().join("a/b/escape").exists() && !h.dir.path().join("escape").exists());
}

#[tokio::test]
async fn a_bootstrap_that_exits_before_asking_for_work_is_an_exit_error() {
    let h = harness(10);
    let code_dir = h.dir.path().join("quitter");
    std::fs::create_dir_all(&code_dir).expect("code dir");
    let bootstrap = code_dir.join("bootstrap");
    std::fs::write(&bootstrap, "#!/bin/sh\necho giving up >&2\nexit 2\n").expect("bootstrap");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut spec = h.spec("r1");
    spec.code_dir = code_dir;
    let spec = Arc::new(spec);
    let (outcome, body) = call(&h.runtime, &spec, Some("TX"), json!({}), true).await;
    assert_eq!(outcome.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert_eq!(
        body["errorMessage"],
        format!(
            "RequestId: {} Error: Runtime exited with error: exit status 2",
            outcome.request_id
        )
    );
    assert!(h.runtime.environments().is_empty());
    assert!(
        h.sink
            .messages()
            .iter()
            .any(|event| event.message == "giving up"),
        "the runtime's stderr reaches the log"
    );
}
