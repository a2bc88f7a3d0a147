//! Shared test support: a fresh emulator per test, SDK configuration pointed at it, an execution
//! role, deployment packages, and a raw HTTP client for requests the SDK cannot send.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};
use aws_sdk_lambda::config::{Credentials, SharedCredentialsProvider};
use emulator::{Config, Emulator};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The trust policy Lambda needs on an execution role.
pub const LAMBDA_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A test emulator config: an ephemeral loopback port and short settling delays.
pub fn config(state_dir: &Path) -> Config {
    let mut config = Config::new(state_dir);
    config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config
}

/// Starts an emulator on an ephemeral port with its state in a fresh temporary directory (keep
/// the `TempDir` alive for as long as the emulator runs).
pub async fn start() -> (Emulator, TempDir) {
    let dir = tempfile::tempdir().expect("temporary state directory");
    let emulator = Emulator::start(config(dir.path()))
        .await
        .expect("emulator starts");
    (emulator, dir)
}

/// SDK configuration for `endpoint`, as a deployer builds it for the `dev` stage. Retries are
/// off so that tests see each answer of the emulator exactly as it was sent.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        )
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "test",
        )))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build()
}

pub fn lambda_client(emulator: &Emulator) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&sdk_config(&emulator.endpoint()))
}

pub fn iam_client(emulator: &Emulator) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk_config(&emulator.endpoint()))
}

/// Creates an execution role Lambda can assume, returning its ARN.
pub async fn create_role(iam: &aws_sdk_iam::Client) -> String {
    create_named_role(iam, "represent-test-exec").await
}

pub async fn create_named_role(iam: &aws_sdk_iam::Client, name: &str) -> String {
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(LAMBDA_TRUST_POLICY)
        .send()
        .await
        .expect("role is created")
        .role()
        .expect("CreateRole returns the role")
        .arn()
        .to_string()
}

/// A deployment package holding `path` as an executable `bootstrap`.
pub fn zip_of(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    zip_with("bootstrap", &bytes)
}

/// A deployment package with one executable file `name` holding `bytes`.
pub fn zip_with(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Stored, not deflated: the probe is a 12 MB debug binary, and compressing it would cost
    // every test binary seconds for nothing the emulator cares about.
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    writer.start_file(name, options).expect("zip entry");
    writer.write_all(bytes).expect("zip write");
    writer.finish().expect("zip finish").into_inner()
}

/// Creates a `provided.al2023` function with `zip` as its code, optionally PER_TENANT, and waits
/// until it is Active.
pub async fn create_function(
    lambda: &aws_sdk_lambda::Client,
    role_arn: &str,
    name: &str,
    zip: Vec<u8>,
    per_tenant: bool,
) -> aws_sdk_lambda::operation::create_function::CreateFunctionOutput {
    let mut request = lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role_arn)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip))
                .build(),
        );
    if per_tenant {
        request = request.tenancy_config(
            aws_sdk_lambda::types::TenancyConfig::builder()
                .tenant_isolation_mode(aws_sdk_lambda::types::TenantIsolationMode::PerTenant)
                .build()
                .expect("tenancy config"),
        );
    }
    let output = request.send().await.expect("function is created");
    wait_active(lambda, name).await;
    output
}

/// Polls GetFunction until the function is Active and its last update Successful.
pub async fn wait_active(lambda: &aws_sdk_lambda::Client, name: &str) {
    for _ in 0..500 {
        let output = lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .expect("GetFunctionConfiguration");
        let active = output.state() == Some(&aws_sdk_lambda::types::State::Active);
        let settled = output.last_update_status()
            == Some(&aws_sdk_lambda::types::LastUpdateStatus::Successful);
        if active && settled {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("function {name} never became Active/Successful");
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Sends one request over a fresh connection, for bodies the SDK would never produce.
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// The probe function (`emulator-runtime/examples/probe.rs`), next to this test binary.
/// `cargo test --workspace` builds it; when only this package's tests run, it is built here
/// once.
pub fn probe_path() -> std::path::PathBuf {
    static PROBE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test binary path");
            // target/debug/deps/it-<hash> -> target/debug/examples/probe
            let path = exe
                .parent()
                .and_then(Path::parent)
                .map(|debug| debug.join("examples/probe"))
                .expect("target directory");
            if !path.exists() {
                eprintln!(
                    "building the probe function: cargo build -p emulator-runtime --example probe"
                );
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let status = std::process::Command::new(cargo)
                    .args(["build", "-p", "emulator-runtime", "--example", "probe"])
                    .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
                    .status()
                    .expect("run cargo to build the probe function");
                assert!(status.success(), "the probe function did not build");
            }
            assert!(
                path.exists(),
                "the probe function is missing at {} after building it",
                path.display()
            );
            path
        })
        .clone()
}

/// The probe's deployment package, zipped once per test binary.
pub fn probe_zip() -> Vec<u8> {
    static ZIP: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ZIP.get_or_init(|| zip_of(&probe_path())).clone()
}
