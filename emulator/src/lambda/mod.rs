//! The Lambda REST-JSON API: function lifecycle, tags and resource policies under `/2015-03-31/`
//! and `/2017-03-31/tags/`, validated the way Lambda validates them, plus Invoke (in `invoke`).
//!
//! Functions live in memory (the invoke path reads them under a read lock) and every acknowledged
//! change is written through to SQLite first, so a restart finds exactly what callers were told.

mod error;
pub mod invoke;
mod model;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

pub use error::ApiError;
use error::violation;
use model::{
    Busy, EnvironmentResponse, EphemeralStorage, FunctionConfig, FunctionRecord, LoggingConfig,
    TenancyConfig, TracingConfig,
};

use crate::clock;
use crate::runtime;
use crate::server::AppState;
use crate::store::{self, Store, StoreError, StoredFunction};

/// The functions of this emulator, in memory.
#[derive(Default)]
pub struct Functions {
    map: RwLock<HashMap<String, FunctionRecord>>,
    /// Serializes control-plane mutations so that check-then-write sequences (name taken?
    /// update in progress?) cannot interleave. Invokes never take it.
    write_lock: tokio::sync::Mutex<()>,
    /// Extracted code directories by CodeSha256, so a redeploy of known code skips extraction.
    code_dirs: Mutex<HashMap<String, PathBuf>>,
}

impl Functions {
    /// Loads every stored function, extracting its code if the work directory lost it. A
    /// function that was `Pending` or `InProgress` when the emulator stopped comes back settled.
    pub async fn load(store: &Arc<Store>, work_dir: PathBuf) -> Result<Functions, StoreError> {
        let loaded = store
            .call(move |conn| {
                let mut out = Vec::new();
                for stored in store::load_functions(conn)? {
                    let zip = store::code_zip(conn, &stored.code_sha256)?.unwrap_or_default();
                    let code_dir = runtime::prepare_code(&work_dir, &zip)
                        .unwrap_or_else(|_| work_dir.join("code").join("missing"));
                    out.push((decode_stored(&stored)?, stored.code_sha256, code_dir));
                }
                Ok(out)
            })
            .await?;
        let functions = Functions::default();
        {
            let mut map = write(&functions.map);
            let mut dirs = functions
                .code_dirs
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (mut record, sha, code_dir) in loaded {
                record.spec = Arc::new(model::function_spec(&record.config, code_dir.clone()));
                dirs.insert(sha, code_dir);
                map.insert(record.config.function_name.clone(), record);
            }
        }
        Ok(functions)
    }

    pub fn count(&self) -> usize {
        read(&self.map).len()
    }

    fn get(&self, name: &str) -> Option<FunctionRecord> {
        read(&self.map).get(name).cloned()
    }

    fn insert(&self, record: FunctionRecord) {
        write(&self.map).insert(record.config.function_name.clone(), record);
    }

    fn remove(&self, name: &str) {
        write(&self.map).remove(name);
    }
}

// The locks guard plain maps that are replaced entry by entry, so a panic elsewhere cannot leave
// them inconsistent; a poisoned lock is therefore still safe to use.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn decode_stored(stored: &StoredFunction) -> Result<FunctionRecord, StoreError> {
    let corrupt = |source| StoreError::Corrupt {
        what: "function",
        name: stored.name.clone(),
        source,
    };
    let config: FunctionConfig = serde_json::from_str(&stored.config).map_err(corrupt)?;
    let tags = serde_json::from_str(&stored.tags).map_err(corrupt)?;
    let permissions = stored
        .permissions
        .iter()
        .map(|(sid, statement)| Ok((sid.clone(), serde_json::from_str(statement)?)))
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(corrupt)?;
    let spec = Arc::new(model::function_spec(&config, PathBuf::new()));
    Ok(FunctionRecord {
        config,
        tags,
        permissions,
        busy: None,
        spec,
    })
}

/// Lambda's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/2015-03-31/functions",
            post(create_function).get(list_functions),
        )
        .route(
            "/2015-03-31/functions/",
            post(create_function).get(list_functions),
        )
        .route(
            "/2015-03-31/functions/{name}",
            get(get_function).delete(delete_function),
        )
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(get_function_configuration).put(update_function_configuration),
        )
        .route(
            "/2015-03-31/functions/{name}/code",
            put(update_function_code),
        )
        .route(
            "/2015-03-31/functions/{name}/policy",
            get(get_policy).post(add_permission),
        )
        .route(
            "/2015-03-31/functions/{name}/policy/{sid}",
            delete(remove_permission),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke::invoke),
        )
        .route(
            "/2017-03-31/tags/{arn}",
            get(list_tags).post(tag_resource).delete(untag_resource),
        )
        .route("/_emulator/code/{name}", get(download_code))
}

type ApiResult = Result<Response, ApiError>;

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => ApiError::service(format!("failed to encode the response: {e}")).into_response(),
    }
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() {
        b"{}" as &[u8]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(ApiError::invalid_content)
}

fn function_arn(app: &AppState, name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:function:{name}",
        app.config.region, app.config.account_id
    )
}

/// The function named by a path parameter, or Lambda's 404.
fn lookup(app: &AppState, raw: &str) -> Result<FunctionRecord, ApiError> {
    let name = model::resolve_function_name(raw);
    app.lambda
        .get(name)
        .ok_or_else(|| ApiError::function_not_found(&function_arn(app, name)))
}

/// The qualifier a request names: its `Qualifier` query parameter, or what follows the function
/// name (`name:qualifier`, `arn:aws:lambda:REGION:ACCOUNT:function:name:qualifier`).
fn qualifier(raw: &str, query: Option<&str>) -> Option<String> {
    let from_query = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "Qualifier")
            .map(|(_, v)| v.into_owned())
    });
    if from_query.is_some() {
        return from_query;
    }
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.iter().position(|p| *p == "function") {
        Some(i) => parts.get(i + 2).map(|q| q.to_string()),
        None if parts.len() == 2 => Some(parts[1].to_string()),
        None => None,
    }
}

/// The function named by a path parameter and its qualifier. The emulator keeps `$LATEST` only
/// (it publishes no versions and holds no aliases), so any other qualifier is Lambda's 404 for
/// that version.
fn lookup_qualified(
    app: &AppState,
    raw: &str,
    query: Option<&str>,
) -> Result<FunctionRecord, ApiError> {
    let record = lookup(app, raw)?;
    match qualifier(raw, query) {
        Some(q) if q != "$LATEST" => Err(ApiError::function_not_found(&format!(
            "{}:{q}",
            record.config.function_arn
        ))),
        _ => Ok(record),
    }
}

fn stored_function(record: &FunctionRecord) -> Result<StoredFunction, ApiError> {
    let encode = |source| {
        ApiError::from(StoreError::Encode {
            what: "function",
            name: record.config.function_name.clone(),
            source,
        })
    };
    Ok(StoredFunction {
        name: record.config.function_name.clone(),
        config: serde_json::to_string(&record.config).map_err(encode)?,
        tags: serde_json::to_string(&record.tags).map_err(encode)?,
        code_sha256: record.config.code_sha256.clone(),
        revision: record.config.revision_id.clone(),
        permissions: Vec::new(),
    })
}

/// The extracted directory of a deployment package, extracting it once per CodeSha256.
async fn code_dir(app: &AppState, sha: &str, zip: Arc<Vec<u8>>) -> Result<PathBuf, ApiError> {
    if let Some(dir) = app
        .lambda
        .code_dirs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(sha)
    {
        return Ok(dir.clone());
    }
    let work_dir = app.work_dir.clone();
    let dir = tokio::task::spawn_blocking(move || runtime::prepare_code(&work_dir, &zip))
        .await
        .map_err(|e| ApiError::service(format!("code extraction failed: {e}")))?
        .map_err(|e| {
            // The runtime refuses packages whose entries escape their directory or are links;
            // to the caller that is an unusable zip, like any other.
            if e.kind() == std::io::ErrorKind::InvalidData {
                ApiError::invalid_parameter(format!("{UNZIP_ERROR} ({e})"))
            } else {
                ApiError::service(format!("failed to extract the deployment package: {e}"))
            }
        })?;
    app.lambda
        .code_dirs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(sha.to_string(), dir.clone());
    Ok(dir)
}

const UNZIP_ERROR: &str =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

/// Decodes `Code.ZipFile` and checks it is a readable zip archive; returns (bytes, CodeSha256).
fn decode_zip(zip_file: &str) -> Result<(Vec<u8>, String), ApiError> {
    let zip = BASE64
        .decode(zip_file)
        .map_err(|_| ApiError::invalid_parameter(UNZIP_ERROR))?;
    zip::ZipArchive::new(std::io::Cursor::new(zip.as_slice()))
        .map_err(|_| ApiError::invalid_parameter(UNZIP_ERROR))?;
    let sha = BASE64.encode(Sha256::digest(&zip));
    Ok((zip, sha))
}

/// Checks that `role_arn` names a role of this emulator that Lambda may assume, as Lambda does
/// when it is handed an execution role.
async fn check_role(app: &AppState, role_arn: &str) -> Result<(), ApiError> {
    let name = model::role_name_of(role_arn).to_string();
    let role = app
        .store
        .call(move |conn| store::get_role(conn, &name))
        .await?;
    let assumable = role.is_some_and(|role| {
        role.arn == role_arn && role.assume_role_policy.contains("lambda.amazonaws.com")
    });
    if assumable {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(
            "The role defined for the function cannot be assumed by Lambda.",
        ))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CodeInput {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    image_uri: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnvironmentInput {
    variables: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LoggingInput {
    log_format: Option<String>,
    application_log_level: Option<String>,
    system_log_level: Option<String>,
    log_group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EphemeralStorageInput {
    size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TracingInput {
    mode: Option<String>,
}

/// Checks the members CreateFunction and UpdateFunctionConfiguration share beyond the basics.
fn check_storage_and_tracing(
    storage: Option<&EphemeralStorageInput>,
    tracing: Option<&TracingInput>,
    violations: &mut Vec<String>,
) {
    if let Some(storage) = storage {
        model::check_ephemeral_storage(storage.size, violations);
    }
    if let Some(tracing) = tracing {
        model::check_tracing_mode(tracing.mode.as_deref(), violations);
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TenancyInput {
    tenant_isolation_mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateFunctionInput {
    function_name: Option<String>,
    runtime: Option<String>,
    role: Option<String>,
    handler: Option<String>,
    code: Option<CodeInput>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    environment: Option<EnvironmentInput>,
    tags: Option<BTreeMap<String, String>>,
    architectures: Option<Vec<String>>,
    logging_config: Option<LoggingInput>,
    tenancy_config: Option<TenancyInput>,
    package_type: Option<String>,
    ephemeral_storage: Option<EphemeralStorageInput>,
    tracing_config: Option<TracingInput>,
}

fn check_logging(input: &LoggingInput, violations: &mut Vec<String>) {
    if let Some(format) = &input.log_format {
        model::check_log_format(format, violations);
    }
    if let Some(level) = &input.application_log_level {
        model::check_log_level(
            level,
            "loggingConfig.applicationLogLevel",
            model::APPLICATION_LOG_LEVELS,
            violations,
        );
    }
    if let Some(level) = &input.system_log_level {
        model::check_log_level(
            level,
            "loggingConfig.systemLogLevel",
            model::SYSTEM_LOG_LEVELS,
            violations,
        );
    }
}

/// Applies a `LoggingConfig` input over `current`. Log levels only exist in JSON format, where
/// Lambda defaults them to INFO.
fn merge_logging(current: &LoggingConfig, input: &LoggingInput) -> LoggingConfig {
    let log_format = input
        .log_format
        .clone()
        .unwrap_or_else(|| current.log_format.clone());
    let json = log_format == "JSON";
    let level = |given: &Option<String>, now: &Option<String>| {
        json.then(|| {
            given
                .clone()
                .or_else(|| now.clone())
                .unwrap_or_else(|| "INFO".into())
        })
    };
    LoggingConfig {
        application_log_level: level(&input.application_log_level, &current.application_log_level),
        system_log_level: level(&input.system_log_level, &current.system_log_level),
        log_format,
        log_group: input
            .log_group
            .clone()
            .unwrap_or_else(|| current.log_group.clone()),
    }
}

fn environment_of(input: Option<&EnvironmentInput>) -> Option<EnvironmentResponse> {
    let variables = input?.variables.clone()?;
    Some(EnvironmentResponse { variables })
}

async fn create_function(State(app): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let input: CreateFunctionInput = parse_body(&body)?;
    let mut violations = Vec::new();
    match &input.function_name {
        None => violations.push(violation(None, "functionName", "Member must not be null")),
        Some(name) if !model::is_valid_function_name(name) => violations.push(violation(
            Some(name),
            "functionName",
            model::FUNCTION_NAME_PATTERN,
        )),
        Some(_) => {}
    }
    match &input.role {
        None => violations.push(violation(None, "role", "Member must not be null")),
        Some(role) => model::check_role_arn(role, &mut violations),
    }
    if input.code.is_none() {
        violations.push(violation(None, "code", "Member must not be null"));
    }
    if let Some(handler) = &input.handler {
        model::check_handler(handler, &mut violations);
    }
    if let Some(memory) = input.memory_size {
        model::check_memory(memory, &mut violations);
    }
    if let Some(timeout) = input.timeout {
        model::check_timeout(timeout, &mut violations);
    }
    if let Some(description) = &input.description {
        model::check_description(description, &mut violations);
    }
    check_storage_and_tracing(
        input.ephemeral_storage.as_ref(),
        input.tracing_config.as_ref(),
        &mut violations,
    );
    if let Some(architectures) = &input.architectures {
        model::check_architectures(architectures, &mut violations);
    }
    if let Some(logging) = &input.logging_config {
        check_logging(logging, &mut violations);
    }
    if let Some(tenancy) = &input.tenancy_config {
        match tenancy.tenant_isolation_mode.as_deref() {
            Some("PER_TENANT") => {}
            other => violations.push(violation(
                other,
                "tenancyConfig.tenantIsolationMode",
                if other.is_none() {
                    "Member must not be null"
                } else {
                    "Member must satisfy enum value set: [PER_TENANT]"
                },
            )),
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::validation(&violations));
    }
    if let Some(runtime) = &input.runtime {
        model::check_runtime(runtime).map_err(ApiError::invalid_parameter)?;
    }
    let (Some(name), Some(role), Some(code)) = (input.function_name, input.role, input.code) else {
        return Err(ApiError::validation(&[violation(
            None,
            "functionName",
            "Member must not be null",
        )]));
    };
    if input.package_type.as_deref() == Some("Image") || code.image_uri.is_some() {
        return Err(ApiError::invalid_parameter(
            "The emulator runs deployment packages (PackageType Zip) only.",
        ));
    }
    let (Some(runtime_name), Some(handler)) = (input.runtime, input.handler) else {
        return Err(ApiError::invalid_parameter(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        ));
    };
    let Some(zip_file) = code.zip_file else {
        return Err(ApiError::invalid_parameter(if code.s3_bucket.is_some() {
            "The emulator accepts code as Code.ZipFile only, not from S3."
        } else {
            "Please provide a source for function code."
        }));
    };
    let (zip, sha) = decode_zip(&zip_file)?;
    check_role(&app, &role).await?;

    let _guard = app.lambda.write_lock.lock().await;
    if app.lambda.get(&name).is_some() {
        return Err(ApiError::conflict(format!(
            "Function already exist: {name}"
        )));
    }
    let zip = Arc::new(zip);
    let dir = code_dir(&app, &sha, Arc::clone(&zip)).await?;
    let default_logging = LoggingConfig {
        log_format: "Text".into(),
        application_log_level: None,
        system_log_level: None,
        log_group: format!("/aws/lambda/{name}"),
    };
    let config = FunctionConfig {
        function_arn: function_arn(&app, &name),
        function_name: name,
        runtime: Some(runtime_name),
        role,
        handler: Some(handler),
        code_size: zip.len() as u64,
        description: input.description.unwrap_or_default(),
        timeout: input.timeout.unwrap_or(3) as u32,
        memory_size: input.memory_size.unwrap_or(128) as u32,
        last_modified: clock::lambda_timestamp(clock::now_millis()),
        code_sha256: sha.clone(),
        version: "$LATEST".into(),
        environment: environment_of(input.environment.as_ref()),
        tracing_config: TracingConfig {
            mode: input
                .tracing_config
                .and_then(|t| t.mode)
                .unwrap_or_else(|| "PassThrough".into()),
        },
        revision_id: uuid::Uuid::new_v4().to_string(),
        package_type: "Zip".into(),
        architectures: input.architectures.unwrap_or_else(|| vec!["x86_64".into()]),
        ephemeral_storage: EphemeralStorage {
            size: input.ephemeral_storage.and_then(|e| e.size).unwrap_or(512) as u32,
        },
        logging_config: match &input.logging_config {
            Some(logging) => merge_logging(&default_logging, logging),
            None => default_logging,
        },
        tenancy_config: input.tenancy_config.map(|_| TenancyConfig {
            tenant_isolation_mode: "PER_TENANT".into(),
        }),
        state: None,
        state_reason: None,
        state_reason_code: None,
        last_update_status: None,
        last_update_status_reason: None,
        last_update_status_reason_code: None,
    };
    let now = Instant::now();
    let record = FunctionRecord {
        spec: Arc::new(model::function_spec(&config, dir)),
        config,
        tags: input.tags.unwrap_or_default(),
        permissions: Vec::new(),
        busy: Some(Busy::Creating(now + app.config.pending_delay)),
    };
    let stored = stored_function(&record)?;
    app.store
        .call(move |conn| store::put_function(conn, &stored, Some((&sha, &zip))))
        .await?;
    let rendered = record.rendered(now);
    app.lambda.insert(record);
    Ok(json_response(StatusCode::CREATED, &rendered))
}

async fn get_function(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let record = lookup_qualified(&app, &name, query.as_deref())?;
    let mut body = serde_json::json!({
        "Configuration": record.rendered(Instant::now()),
        "Code": {
            "RepositoryType": "S3",
            "Location": format!("{}/_emulator/code/{}", app.endpoint, record.config.function_name),
        },
    });
    if !record.tags.is_empty() {
        body["Tags"] = serde_json::json!(record.tags);
    }
    Ok(json_response(StatusCode::OK, &body))
}

async fn get_function_configuration(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult {
    let record = lookup(&app, &name)?;
    Ok(json_response(
        StatusCode::OK,
        &record.rendered(Instant::now()),
    ))
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn list_functions(State(app): State<Arc<AppState>>, RawQuery(query): RawQuery) -> ApiResult {
    let pairs = query_pairs(query.as_deref());
    let param = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let max_items = match param("MaxItems") {
        None => 50,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=10_000).contains(&n) => n.min(50) as usize,
            _ => {
                return Err(ApiError::validation(&[violation(
                    Some(raw),
                    "maxItems",
                    "Member must have value between 1 and 10000",
                )]));
            }
        },
    };
    let marker = param("Marker").unwrap_or_default();
    let now = Instant::now();
    let map = read(&app.lambda.map);
    let mut names: Vec<&String> = map.keys().filter(|n| n.as_str() > marker).collect();
    names.sort();
    let page: Vec<FunctionConfig> = names
        .iter()
        .take(max_items)
        .filter_map(|n| map.get(*n))
        .map(|r| r.rendered(now))
        .collect();
    let mut body = serde_json::json!({ "Functions": page });
    if names.len() > max_items
        && let Some(last) = names.get(max_items - 1)
    {
        body["NextMarker"] = serde_json::json!(last);
    }
    drop(map);
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateCodeInput {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    image_uri: Option<String>,
    architectures: Option<Vec<String>>,
    dry_run: Option<bool>,
    revision_id: Option<String>,
}

fn check_revision(record: &FunctionRecord, expected: Option<&str>) -> Result<(), ApiError> {
    match expected {
        Some(expected) if expected != record.config.revision_id => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        )),
        _ => Ok(()),
    }
}

/// Stores an updated function, swaps it in for invokes, and retires environments of the old
/// revision so that no invoke after this answer runs old code or configuration.
async fn commit_update(
    app: &AppState,
    mut record: FunctionRecord,
    code: Option<(String, Arc<Vec<u8>>)>,
) -> ApiResult {
    let now = Instant::now();
    record.config.revision_id = uuid::Uuid::new_v4().to_string();
    record.config.last_modified = clock::lambda_timestamp(clock::now_millis());
    record.busy = Some(Busy::Updating(now + app.config.pending_delay));
    let dir = match &code {
        Some((sha, zip)) => code_dir(app, sha, Arc::clone(zip)).await?,
        None => record.spec.code_dir.clone(),
    };
    record.spec = Arc::new(model::function_spec(&record.config, dir));
    let stored = stored_function(&record)?;
    app.store
        .call(move |conn| {
            let code = code
                .as_ref()
                .map(|(sha, zip)| (sha.as_str(), zip.as_slice()));
            store::put_function(conn, &stored, code)
        })
        .await?;
    let rendered = record.rendered(now);
    let name = record.config.function_name.clone();
    let revision = record.config.revision_id.clone();
    app.lambda.insert(record);
    app.runtime.retire(&name, Some(&revision)).await;
    Ok(json_response(StatusCode::OK, &rendered))
}

async fn update_function_code(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let input: UpdateCodeInput = parse_body(&body)?;
    let mut violations = Vec::new();
    if let Some(architectures) = &input.architectures {
        model::check_architectures(architectures, &mut violations);
    }
    if !violations.is_empty() {
        return Err(ApiError::validation(&violations));
    }
    let _guard = app.lambda.write_lock.lock().await;
    let mut record = lookup(&app, &name)?;
    if let Some(message) = record.mutation_conflict(Instant::now()) {
        return Err(ApiError::conflict(message));
    }
    check_revision(&record, input.revision_id.as_deref())?;
    let Some(zip_file) = input.zip_file else {
        return Err(ApiError::invalid_parameter(
            if input.s3_bucket.is_some() || input.image_uri.is_some() {
                "The emulator accepts code as ZipFile only, not from S3 or an image."
            } else {
                "Please provide a source for function code."
            },
        ));
    };
    let (zip, sha) = decode_zip(&zip_file)?;
    record.config.code_size = zip.len() as u64;
    record.config.code_sha256 = sha.clone();
    if let Some(architectures) = input.architectures {
        record.config.architectures = architectures;
    }
    if input.dry_run == Some(true) {
        return Ok(json_response(
            StatusCode::OK,
            &record.rendered(Instant::now()),
        ));
    }
    commit_update(&app, record, Some((sha, Arc::new(zip)))).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateConfigurationInput {
    role: Option<String>,
    handler: Option<String>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    environment: Option<EnvironmentInput>,
    runtime: Option<String>,
    logging_config: Option<LoggingInput>,
    revision_id: Option<String>,
    ephemeral_storage: Option<EphemeralStorageInput>,
    tracing_config: Option<TracingInput>,
    // `TenancyConfig` is deliberately not a member: tenancy is immutable after creation, and a
    // raw body that carries it is accepted with the member ignored.
}

async fn update_function_configuration(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let input: UpdateConfigurationInput = parse_body(&body)?;
    let mut violations = Vec::new();
    if let Some(role) = &input.role {
        model::check_role_arn(role, &mut violations);
    }
    if let Some(handler) = &input.handler {
        model::check_handler(handler, &mut violations);
    }
    if let Some(memory) = input.memory_size {
        model::check_memory(memory, &mut violations);
    }
    if let Some(timeout) = input.timeout {
        model::check_timeout(timeout, &mut violations);
    }
    if let Some(description) = &input.description {
        model::check_description(description, &mut violations);
    }
    if let Some(logging) = &input.logging_config {
        check_logging(logging, &mut violations);
    }
    check_storage_and_tracing(
        input.ephemeral_storage.as_ref(),
        input.tracing_config.as_ref(),
        &mut violations,
    );
    if !violations.is_empty() {
        return Err(ApiError::validation(&violations));
    }
    if let Some(runtime) = &input.runtime {
        model::check_runtime(runtime).map_err(ApiError::invalid_parameter)?;
    }
    let _guard = app.lambda.write_lock.lock().await;
    let mut record = lookup(&app, &name)?;
    if let Some(message) = record.mutation_conflict(Instant::now()) {
        return Err(ApiError::conflict(message));
    }
    check_revision(&record, input.revision_id.as_deref())?;
    if let Some(role) = &input.role {
        check_role(&app, role).await?;
    }
    let config = &mut record.config;
    if let Some(role) = input.role {
        config.role = role;
    }
    if let Some(handler) = input.handler {
        config.handler = Some(handler);
    }
    if let Some(description) = input.description {
        config.description = description;
    }
    if let Some(timeout) = input.timeout {
        config.timeout = timeout as u32;
    }
    if let Some(memory) = input.memory_size {
        config.memory_size = memory as u32;
    }
    if let Some(environment) = &input.environment {
        config.environment = environment_of(Some(environment)).filter(|e| !e.variables.is_empty());
    }
    if let Some(runtime) = input.runtime {
        config.runtime = Some(runtime);
    }
    if let Some(logging) = &input.logging_config {
        config.logging_config = merge_logging(&config.logging_config, logging);
    }
    if let Some(size) = input.ephemeral_storage.and_then(|e| e.size) {
        config.ephemeral_storage.size = size as u32;
    }
    if let Some(mode) = input.tracing_config.and_then(|t| t.mode) {
        config.tracing_config.mode = mode;
    }
    commit_update(&app, record, None).await
}

async fn delete_function(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> ApiResult {
    let _guard = app.lambda.write_lock.lock().await;
    let record = lookup(&app, &name)?;
    let name = record.config.function_name.clone();
    let stored_name = name.clone();
    app.store
        .call(move |conn| store::delete_function(conn, &stored_name))
        .await?;
    app.lambda.remove(&name);
    app.runtime.retire(&name, None).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_tags(State(app): State<Arc<AppState>>, Path(arn): Path<String>) -> ApiResult {
    let record = lookup(&app, &arn)?;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "Tags": record.tags }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagInput {
    tags: Option<BTreeMap<String, String>>,
}

async fn save_tags(app: &AppState, record: FunctionRecord) -> Result<(), ApiError> {
    let name = record.config.function_name.clone();
    let tags = stored_function(&record)?.tags;
    app.store
        .call(move |conn| store::set_function_tags(conn, &name, &tags))
        .await?;
    app.lambda.insert(record);
    Ok(())
}

async fn tag_resource(
    State(app): State<Arc<AppState>>,
    Path(arn): Path<String>,
    body: Bytes,
) -> ApiResult {
    let input: TagInput = parse_body(&body)?;
    let Some(tags) = input.tags else {
        return Err(ApiError::validation(&[violation(
            None,
            "tags",
            "Member must not be null",
        )]));
    };
    let _guard = app.lambda.write_lock.lock().await;
    let mut record = lookup(&app, &arn)?;
    record.tags.extend(tags);
    save_tags(&app, record).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn untag_resource(
    State(app): State<Arc<AppState>>,
    Path(arn): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let keys: Vec<String> = query_pairs(query.as_deref())
        .into_iter()
        .filter(|(k, _)| k == "tagKeys")
        .map(|(_, v)| v)
        .collect();
    let _guard = app.lambda.write_lock.lock().await;
    let mut record = lookup(&app, &arn)?;
    for key in &keys {
        record.tags.remove(key);
    }
    save_tags(&app, record).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AddPermissionInput {
    statement_id: Option<String>,
    action: Option<String>,
    principal: Option<String>,
    source_arn: Option<String>,
    source_account: Option<String>,
    #[serde(rename = "PrincipalOrgID")]
    principal_org_id: Option<String>,
    revision_id: Option<String>,
}

fn is_valid_statement_id(sid: &str) -> bool {
    (1..=100).contains(&sid.len())
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn is_valid_action(action: &str) -> bool {
    action == "*"
        || action == "lambda:*"
        || action
            .strip_prefix("lambda:")
            .is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// The `Principal` of a policy statement, shaped the way Lambda stores it.
fn principal_json(principal: &str) -> serde_json::Value {
    if principal == "*" {
        serde_json::json!("*")
    } else if principal.ends_with(".amazonaws.com") {
        serde_json::json!({ "Service": principal })
    } else if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        serde_json::json!({ "AWS": format!("arn:aws:iam::{principal}:root") })
    } else {
        serde_json::json!({ "AWS": principal })
    }
}

async fn add_permission(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult {
    let input: AddPermissionInput = parse_body(&body)?;
    let mut violations = Vec::new();
    match &input.statement_id {
        None => violations.push(violation(None, "statementId", "Member must not be null")),
        Some(sid) if !is_valid_statement_id(sid) => violations.push(violation(
            Some(sid),
            "statementId",
            "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_.]+)",
        )),
        Some(_) => {}
    }
    match &input.action {
        None => violations.push(violation(None, "action", "Member must not be null")),
        Some(action) if !is_valid_action(action) => violations.push(violation(
            Some(action),
            "action",
            "Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])",
        )),
        Some(_) => {}
    }
    if input.principal.is_none() {
        violations.push(violation(None, "principal", "Member must not be null"));
    }
    if !violations.is_empty() {
        return Err(ApiError::validation(&violations));
    }
    let (Some(sid), Some(action), Some(principal)) =
        (input.statement_id, input.action, input.principal)
    else {
        return Err(ApiError::validation(&[violation(
            None,
            "statementId",
            "Member must not be null",
        )]));
    };
    let _guard = app.lambda.write_lock.lock().await;
    let mut record = lookup_qualified(&app, &name, query.as_deref())?;
    check_revision(&record, input.revision_id.as_deref())?;
    if record.permissions.iter().any(|(s, _)| *s == sid) {
        return Err(ApiError::conflict(format!(
            "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
        )));
    }
    let mut condition = serde_json::Map::new();
    if let Some(source_arn) = &input.source_arn {
        condition.insert(
            "ArnLike".into(),
            serde_json::json!({ "AWS:SourceArn": source_arn }),
        );
    }
    let mut equals = serde_json::Map::new();
    if let Some(account) = &input.source_account {
        equals.insert("AWS:SourceAccount".into(), serde_json::json!(account));
    }
    if let Some(org) = &input.principal_org_id {
        equals.insert("aws:PrincipalOrgID".into(), serde_json::json!(org));
    }
    if !equals.is_empty() {
        condition.insert("StringEquals".into(), serde_json::Value::Object(equals));
    }
    let mut statement = serde_json::json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal_json(&principal),
        "Action": action,
        "Resource": record.config.function_arn,
    });
    if !condition.is_empty() {
        statement["Condition"] = serde_json::Value::Object(condition);
    }
    let text = statement.to_string();
    let (function, stored_sid, stored_text) = (
        record.config.function_name.clone(),
        sid.clone(),
        text.clone(),
    );
    app.store
        .call(move |conn| store::add_permission(conn, &function, &stored_sid, &stored_text))
        .await?;
    record.permissions.push((sid, statement));
    app.lambda.insert(record);
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "Statement": text }),
    ))
}

async fn get_policy(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let record = lookup_qualified(&app, &name, query.as_deref())?;
    if record.permissions.is_empty() {
        return Err(ApiError::not_found(
            "The resource you requested does not exist.",
        ));
    }
    let statements: Vec<&serde_json::Value> = record.permissions.iter().map(|(_, s)| s).collect();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": statements,
    });
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "Policy": policy.to_string(),
            "RevisionId": record.config.revision_id,
        }),
    ))
}

async fn remove_permission(
    State(app): State<Arc<AppState>>,
    Path((name, sid)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let pairs = query_pairs(query.as_deref());
    let revision = pairs
        .iter()
        .find(|(k, _)| k == "RevisionId")
        .map(|(_, v)| v.as_str());
    let _guard = app.lambda.write_lock.lock().await;
    let mut record = lookup(&app, &name)?;
    check_revision(&record, revision)?;
    let Some(position) = record.permissions.iter().position(|(s, _)| *s == sid) else {
        return Err(ApiError::not_found(format!(
            "Statement {sid} is not found in resource policy."
        )));
    };
    let function = record.config.function_name.clone();
    let stored_sid = sid.clone();
    app.store
        .call(move |conn| store::remove_permission(conn, &function, &stored_sid))
        .await?;
    record.permissions.remove(position);
    app.lambda.insert(record);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The deployment package behind `GetFunction`'s `Code.Location`.
async fn download_code(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> ApiResult {
    let record = lookup(&app, &name)?;
    let sha = record.config.code_sha256.clone();
    let zip = app
        .store
        .call(move |conn| store::code_zip(conn, &sha))
        .await?
        .ok_or_else(|| ApiError::not_found("The resource you requested does not exist."))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/zip")],
        zip,
    )
        .into_response())
}
