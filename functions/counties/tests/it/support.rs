//! Test helpers: committed tenant data in memory, invokes with or without a tenant, and API
//! Gateway proxy events built from the committed fixture.

use std::path::PathBuf;

use lambda_runtime::{Context, LambdaEvent};
use represent::tenant::TenantFile;
use represent::{Deps, StaticSource, TenantData};
use serde_json::Value;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed `tenants/<id>.json`, as the functions would read it back from DynamoDB.
pub fn tenant(id: &str) -> TenantData {
    let path = manifest_dir().join(format!("../../tenants/{id}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file: TenantFile =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    TenantData::new(file)
}

/// Fresh dependencies, as in a new execution environment, holding the given tenants.
pub fn deps(ids: &[&str]) -> Deps<StaticSource> {
    Deps::new(
        &counties::FUNCTION,
        StaticSource::new(ids.iter().map(|id| tenant(id))),
    )
}

/// A test fixture from `tests/fixtures`.
pub fn fixture(name: &str) -> Value {
    let path = manifest_dir().join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture's API Gateway event, for `path`.
pub fn apigw(path: &str) -> Value {
    let mut event = fixture("apigw-get-county.json");
    event["path"] = Value::String(path.to_string());
    event
}

/// Invokes the function as the runtime would, for `tenant`.
pub async fn invoke(deps: &Deps<StaticSource>, tenant: Option<&str>, payload: Value) -> Value {
    let mut context = Context::default();
    context.request_id = "test-request".to_string();
    context.tenant_id = tenant.map(str::to_string);
    let Ok(answer) = represent::handle(LambdaEvent::new(payload, context), deps).await;
    answer
}

/// The status and JSON body of an API Gateway proxy response, checking its content type.
pub fn proxy(response: &Value) -> (u64, Value) {
    assert_eq!(
        response["headers"]["content-type"], "application/json",
        "{response}"
    );
    let status = response["statusCode"].as_u64().expect("statusCode");
    let body = response["body"].as_str().expect("a string body");
    (status, serde_json::from_str(body).expect("a JSON body"))
}
