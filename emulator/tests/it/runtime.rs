//! Execution environments seen through the real Lambda client: timeouts, crashes, init errors,
//! logs, code updates, the environment cap and the cleanup of processes and temporary directories.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Environment, FunctionCode, LogFormat, LogType, LoggingConfig, TenancyConfig,
    TenantIsolationMode,
};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::support;

/// The probe as a deployment package, built once: storing instead of deflating keeps the
/// multi-megabyte debug binary cheap to package, and `marker` makes a distinct CodeSha256.
pub fn probe_zip(marker: &str) -> Vec<u8> {
    static BINARY: OnceLock<Vec<u8>> = OnceLock::new();
    let binary =
        BINARY.get_or_init(|| std::fs::read(support::probe_path()).expect("read the probe"));
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer.start_file("bootstrap", stored).expect("zip entry");
    std::io::Write::write_all(&mut writer, binary).expect("zip write");
    writer.start_file("marker.txt", stored).expect("zip entry");
    std::io::Write::write_all(&mut writer, marker.as_bytes()).expect("zip write");
    writer.finish().expect("zip finish").into_inner()
}

/// How a test function differs from the defaults.
#[derive(Default)]
pub struct Probe {
    pub per_tenant: bool,
    pub timeout: Option<i32>,
    pub json_logs: bool,
    pub variables: Vec<(&'static str, &'static str)>,
}

/// Creates the probe as function `name` and waits until it is Active.
pub async fn deploy(
    emulator: &emulator::Emulator,
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    probe: Probe,
) {
    let role =
        support::create_named_role(&support::iam_client(emulator), &format!("{name}-exec")).await;
    let mut request = lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(probe_zip("v1")))
                .build(),
        );
    if probe.per_tenant {
        request = request.tenancy_config(
            TenancyConfig::builder()
                .tenant_isolation_mode(TenantIsolationMode::PerTenant)
                .build()
                .expect("tenancy config"),
        );
    }
    if let Some(timeout) = probe.timeout {
        request = request.timeout(timeout);
    }
    if probe.json_logs {
        request =
            request.logging_config(LoggingConfig::builder().log_format(LogFormat::Json).build());
    }
    if !probe.variables.is_empty() {
        let mut environment = Environment::builder();
        for (name, value) in probe.variables {
            environment = environment.variables(name, value);
        }
        request = request.environment(environment.build());
    }
    request.send().await.expect("function is created");
    support::wait_active(lambda, name).await;
}

/// What one invoke returned.
pub struct Answer {
    pub body: Value,
    pub function_error: Option<String>,
    pub log: Option<String>,
}

impl Answer {
    pub fn pid(&self) -> u32 {
        self.body["pid"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok())
            .unwrap_or_else(|| panic!("no pid in {}", self.body))
    }

    pub fn tmpdir(&self) -> PathBuf {
        PathBuf::from(self.body["tmpdir"].as_str().expect("tmpdir in the answer"))
    }
}

pub async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    tenant: Option<&str>,
    input: Value,
) -> Answer {
    invoke_with(lambda, name, tenant, input, false).await
}

pub async fn invoke_with(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    tenant: Option<&str>,
    input: Value,
    tail: bool,
) -> Answer {
    let mut request = lambda
        .invoke()
        .function_name(name)
        .payload(Blob::new(input.to_string()));
    if let Some(tenant) = tenant {
        request = request.tenant_id(tenant);
    }
    if tail {
        request = request.log_type(LogType::Tail);
    }
    let output = request.send().await.expect("invoke succeeds");
    assert_eq!(output.status_code(), 200);
    let body = output
        .payload()
        .map(|payload| serde_json::from_slice(payload.as_ref()).expect("JSON payload"))
        .unwrap_or(Value::Null);
    Answer {
        body,
        function_error: output.function_error().map(str::to_owned),
        log: output.log_result().map(|log| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(log)
                .expect("base64 log result");
            String::from_utf8(bytes).expect("UTF-8 log result")
        }),
    }
}

pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn a_timeout_kills_the_environment_and_the_next_invoke_works() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    let probe = Probe {
        per_tenant: true,
        timeout: Some(1),
        ..Probe::default()
    };
    deploy(&emulator, &lambda, "slow", probe).await;
    let before = invoke(&lambda, "slow", Some("TX"), json!({"op": "whoami"})).await;
    let timed_out = invoke(
        &lambda,
        "slow",
        Some("TX"),
        json!({"op": "sleep", "ms": 5000}),
    )
    .await;
    assert_eq!(timed_out.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(timed_out.body["errorType"], "Sandbox.Timedout");
    let message = timed_out.body["errorMessage"].as_str().expect("message");
    assert!(
        message.ends_with("Error: Task timed out after 1.00 seconds"),
        "{message}"
    );
    assert!(!alive(before.pid()), "the timed-out process is killed");
    assert!(!before.tmpdir().exists(), "its TMPDIR goes with it");

    let after = invoke(&lambda, "slow", Some("TX"), json!({"op": "whoami"})).await;
    assert_eq!(after.function_error, None);
    assert_ne!(after.pid(), before.pid());
    emulator.shutdown().await;
    assert!(!alive(after.pid()), "no process outlives the emulator");
}

#[tokio::test]
async fn a_crashing_bootstrap_fails_its_invoke_and_is_replaced() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    deploy(
        &emulator,
        &lambda,
        "crashy",
        Probe {
            per_tenant: true,
            ..Probe::default()
        },
    )
    .await;
    let before = invoke(&lambda, "crashy", Some("TX"), json!({"op": "whoami"})).await;
    let crashed = invoke(&lambda, "crashy", Some("TX"), json!({"op": "crash"})).await;
    assert_eq!(crashed.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(crashed.body["errorType"], "Runtime.ExitError");
    let message = crashed.body["errorMessage"].as_str().expect("message");
    assert!(
        message.ends_with("Error: Runtime exited with error: exit status 3"),
        "{message}"
    );

    let failed = invoke(&lambda, "crashy", Some("TX"), json!({"op": "fail"})).await;
    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(failed.body["errorType"], "ProbeFailure");

    let after = invoke(&lambda, "crashy", Some("TX"), json!({"op": "whoami"})).await;
    assert_eq!(after.function_error, None);
    assert_ne!(
        after.pid(),
        before.pid(),
        "a new environment serves after the crash"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_init_error_is_reported_to_the_caller() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    let probe = Probe {
        per_tenant: true,
        variables: vec![("PROBE_INIT_FAIL", "1")],
        ..Probe::default()
    };
    deploy(&emulator, &lambda, "broken", probe).await;
    let answer = invoke(&lambda, "broken", Some("TX"), json!({"op": "whoami"})).await;
    assert_eq!(answer.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(answer.body["errorType"], "Runtime.InitError");
    assert_eq!(
        answer.body["errorMessage"],
        "probe init failed: PROBE_INIT_FAIL is set"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn json_tail_logs_carry_platform_events_with_the_tenant() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    let probe = Probe {
        per_tenant: true,
        json_logs: true,
        ..Probe::default()
    };
    deploy(&emulator, &lambda, "logged", probe).await;
    let answer = invoke_with(&lambda, "logged", Some("NM"), json!({"op": "whoami"}), true).await;
    let log = answer.log.expect("a tail was asked for");
    let events: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let request_id = answer.body["request_id"].as_str().expect("request id");
    let start = events
        .iter()
        .find(|event| event["type"] == "platform.start")
        .unwrap_or_else(|| panic!("no platform.start in {log}"));
    assert_eq!(start["record"]["requestId"], request_id);
    assert_eq!(start["record"]["tenantId"], "NM");
    let report = events
        .iter()
        .find(|event| event["type"] == "platform.report")
        .unwrap_or_else(|| panic!("no platform.report in {log}"));
    assert_eq!(report["record"]["tenantId"], "NM");
    assert_eq!(report["record"]["status"], "success");
    assert!(report["record"]["metrics"]["durationMs"].is_number());

    let quiet = invoke(&lambda, "logged", Some("NM"), json!({"op": "whoami"})).await;
    assert_eq!(quiet.log, None, "no tail unless asked");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_code_update_retires_the_old_environments() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    deploy(
        &emulator,
        &lambda,
        "updated",
        Probe {
            per_tenant: true,
            ..Probe::default()
        },
    )
    .await;
    let before = invoke(&lambda, "updated", Some("TX"), json!({"op": "whoami"})).await;
    lambda
        .update_function_code()
        .function_name("updated")
        .zip_file(Blob::new(probe_zip("v2")))
        .send()
        .await
        .expect("code is updated");
    support::wait_active(&lambda, "updated").await;
    let after = invoke(&lambda, "updated", Some("TX"), json!({"op": "whoami"})).await;
    assert_ne!(
        after.pid(),
        before.pid(),
        "the new code runs in a new environment"
    );
    assert!(!alive(before.pid()), "the old environment is stopped");
    assert!(!before.tmpdir().exists());

    lambda
        .delete_function()
        .function_name("updated")
        .send()
        .await
        .expect("function is deleted");
    assert!(
        !alive(after.pid()),
        "deleting the function stops its environments"
    );
    assert!(!after.tmpdir().exists());
    emulator.shutdown().await;
}

#[tokio::test]
async fn the_environment_cap_evicts_the_least_recently_used_idle_one() {
    let dir = tempfile::tempdir().expect("state dir");
    let mut config = support::config(dir.path());
    config.max_environments = 2;
    let emulator = emulator::Emulator::start(config)
        .await
        .expect("emulator starts");
    let lambda = support::lambda_client(&emulator);
    deploy(
        &emulator,
        &lambda,
        "capped",
        Probe {
            per_tenant: true,
            ..Probe::default()
        },
    )
    .await;
    let tx = invoke(&lambda, "capped", Some("TX"), json!({"op": "whoami"})).await;
    let ca = invoke(&lambda, "capped", Some("CA"), json!({"op": "whoami"})).await;
    // TX is used again, so CA becomes the least recently used.
    let tx_again = invoke(&lambda, "capped", Some("TX"), json!({"op": "whoami"})).await;
    assert_eq!(tx_again.pid(), tx.pid());
    let ny = invoke(&lambda, "capped", Some("NY"), json!({"op": "whoami"})).await;
    assert!(
        !alive(ca.pid()),
        "the least recently used environment is stopped"
    );
    assert!(!ca.tmpdir().exists());
    assert!(alive(tx.pid()) && alive(ny.pid()));

    let status =
        support::raw_request(emulator.local_addr(), "GET", "/_emulator/status", &[], b"").await;
    let environments = status.json()["environments"]
        .as_array()
        .expect("environments in the status")
        .len();
    assert_eq!(environments, 2);
    emulator.shutdown().await;
    assert!(!alive(tx.pid()) && !alive(ny.pid()));
    assert!(!tx.tmpdir().exists() && !ny.tmpdir().exists());
}
