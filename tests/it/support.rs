//! Shared fixtures: the functions built once as deploy builds them, an emulator on an ephemeral port,
//! and a deploy helper that runs observe -> plan -> apply like `cargo xtask deploy`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use deployer::apply::{ApplyOptions, ApplyReport};
use deployer::observe::Clients;
use deployer::package::Package;
use deployer::plan::Plan;
use deployer::stack::App;

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// The stack's function binaries, built once per test run as `cargo xtask deploy` builds them
/// for stage `dev`.
pub fn bootstraps() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = project_root();
        let app = xtask::stack::represent();
        let dev = app.find_stage("dev").expect("a dev stage");
        let request = deployer::build::StageBuild {
            workspace_root: &root,
            unify_with: vec!["xtask".to_string()],
            only: None,
        };
        deployer::build::build_stage(&app, dev, &request).expect("the functions build")
    })
}

/// Packages of every function of the stack, as a deploy makes them.
pub fn packages() -> BTreeMap<String, Package> {
    bootstraps()
        .iter()
        .map(|(bin, path)| {
            let package = deployer::package::package_file(path).expect("bootstrap packages");
            (bin.clone(), package)
        })
        .collect()
}

/// A package of `bin` whose code differs from the built one but still runs: bytes appended to
/// an ELF file are ignored by the loader.
pub fn changed_package(bin: &str) -> Package {
    let mut binary = std::fs::read(&bootstraps()[bin]).expect("bootstrap readable");
    binary.extend_from_slice(b"a code change");
    deployer::package::package_bootstrap(&binary)
}

pub struct Stage {
    _emulator: emulator::Emulator,
    pub clients: Clients,
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The emulator's URL and the developer's SDK configuration for it.
    pub endpoint: String,
    pub sdk: aws_config::SdkConfig,
    _state: tempfile::TempDir,
}

/// An emulator on an ephemeral loopback port with its own state, and clients pointed at it.
pub async fn emulator() -> Stage {
    let state = tempfile::tempdir().expect("temp dir");
    let mut config = emulator::Config::new(state.path());
    config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
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
    let endpoint = emulator.endpoint();
    Stage {
        _emulator: emulator,
        clients: Clients::new(&sdk),
        lambda: aws_sdk_lambda::Client::new(&sdk),
        iam: aws_sdk_iam::Client::new(&sdk),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        endpoint,
        sdk: sdk.clone(),
        _state: state,
    }
}

pub fn options() -> ApplyOptions {
    ApplyOptions {
        base_delay: Duration::from_millis(20),
        poll_interval: Duration::from_millis(10),
        ..ApplyOptions::default()
    }
}

/// Every committed tenant file, as the seed of the stack's `data` table.
pub fn tenant_seed() -> deployer::Seed {
    let mut seed = deployer::Seed::new("data");
    let dir = project_root().join("tenants");
    for entry in std::fs::read_dir(&dir).expect("tenants/ exists") {
        let path = entry.expect("readable").path();
        if path.file_name().is_some_and(|n| n == "index.json")
            || path.extension().is_none_or(|e| e != "json")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("tenant file readable");
        let file: represent::tenant::TenantFile =
            serde_json::from_str(&text).expect("tenant file parses");
        seed.partitions
            .insert(file.id.clone(), represent::records::to_records(&file));
    }
    seed
}

/// observe -> plan -> apply with the tenants' data, returning the plan and what applying it did.
pub async fn deploy(
    stage: &Stage,
    app: &App,
    stage_name: &str,
    packages: &BTreeMap<String, Package>,
) -> (Plan, ApplyReport) {
    let desired = deployer::desired_with_seeds(app, stage_name, packages, vec![tenant_seed()])
        .expect("valid stack");
    let actual = deployer::observe_stage(&stage.clients, &desired)
        .await
        .expect("observe");
    let plan = deployer::plan::plan(&desired, &actual);
    let report = deployer::apply::apply(&stage.clients, &plan, &options(), &|_| {})
        .await
        .expect("apply");
    (plan, report)
}

/// Invokes the deployed function of `logical` as `tenant` with a direct-invoke payload,
/// returning its JSON answer.
pub async fn invoke(
    stage: &Stage,
    app: &App,
    stage_name: &str,
    logical: &str,
    tenant: Option<&str>,
    payload: serde_json::Value,
) -> serde_json::Value {
    let actual = deployer::observe::observe(&stage.clients, &app.name, stage_name)
        .await
        .expect("observe");
    let function = actual
        .functions
        .iter()
        .find(|f| f.logical.as_deref() == Some(logical))
        .expect("function deployed");
    let payload = serde_json::to_vec(&payload).expect("JSON");
    let outcome = deployer::invoke::invoke(&stage.clients, &function.name, tenant, payload, false)
        .await
        .expect("invoke");
    assert_eq!(
        outcome.function_error,
        None,
        "payload: {:?}",
        String::from_utf8_lossy(&outcome.payload)
    );
    serde_json::from_slice(&outcome.payload).expect("JSON answer")
}

/// A plain HTTP GET, as `curl` would send it: the REST API is for clients that know nothing of
/// AWS. Returns the status and the body.
pub async fn http_get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("connects");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("reads");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// How many items of `tenant`'s partition of `table` a client may read (a Query on the
/// partition key), or the SDK's refusal.
pub async fn query_partition(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    tenant: &str,
) -> Result<usize, aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::query::QueryError>>
{
    client
        .query()
        .table_name(table)
        .key_condition_expression("#t = :t")
        .expression_attribute_names("#t", "tenant")
        .expression_attribute_values(
            ":t",
            aws_sdk_dynamodb::types::AttributeValue::S(tenant.into()),
        )
        .send()
        .await
        .map(|out| out.items().len())
}
