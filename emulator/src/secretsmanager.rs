//! Secrets Manager, the part a stage's signing keys need: `CreateSecret`, `DescribeSecret`,
//! `GetSecretValue` and `DeleteSecret` over the JSON 1.1 protocol (`X-Amz-Target:
//! secretsmanager.*`), secrets kept in the state database so they survive a restart.
//!
//! A secret has one version (`AWSCURRENT`); deletion is immediate (AWS waits 7-30 days unless
//! `ForceDeleteWithoutRecovery`), so a destroyed stage can be deployed again at once.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aws_json;
use crate::server::AppState;
use crate::store;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// One stored secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Secret {
    name: String,
    arn: String,
    value: String,
    version_id: String,
    /// Seconds since the epoch.
    created: f64,
    description: Option<String>,
    tags: Vec<Value>,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "__type": code, "message": message.into() });
    aws_json::response(CONTENT_TYPE, status, body.to_string())
}

fn bad_request(code: &str, message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, code, message)
}

fn ok(body: Value) -> Response {
    aws_json::response(CONTENT_TYPE, StatusCode::OK, body.to_string())
}

fn internal(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServiceError",
        e.to_string(),
    )
}

fn not_found() -> Response {
    bad_request(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    name: Option<String>,
    secret_id: Option<String>,
    secret_string: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<Value>,
}

/// Answers one Secrets Manager operation.
pub async fn handle(app: Arc<AppState>, operation: &str, body: &[u8]) -> Response {
    let input: Input = match aws_json::parse(body) {
        Ok(input) => input,
        Err(e) => {
            return bad_request(
                "InvalidRequestException",
                format!("invalid request body: {e}"),
            );
        }
    };
    // A secret is named by its name or its ARN.
    let Some(id) = input.name.clone().or(input.secret_id.clone()) else {
        return bad_request(
            "InvalidParameterException",
            "You must provide a secret name or ARN.",
        );
    };
    let name = match id.split_once(":secret:") {
        Some((_, rest)) => rest
            .rsplit_once('-')
            .map_or(rest, |(name, _)| name)
            .to_string(),
        None => id,
    };
    let stored = {
        let name = name.clone();
        match app
            .store
            .call(move |conn| store::get_secret(conn, &name))
            .await
        {
            Ok(doc) => doc.and_then(|d| serde_json::from_str::<Secret>(&d).ok()),
            Err(e) => return internal(e),
        }
    };
    match operation {
        "CreateSecret" => {
            if !valid_name(&name) {
                return bad_request(
                    "InvalidParameterException",
                    "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
                );
            }
            if stored.is_some() {
                return bad_request(
                    "ResourceExistsException",
                    format!("The operation failed because the secret {name} already exists."),
                );
            }
            let Some(value) = input.secret_string.filter(|v| !v.is_empty()) else {
                return bad_request(
                    "InvalidParameterException",
                    "The emulator stores SecretString values only; give a non-empty SecretString.",
                );
            };
            let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
            let secret = Secret {
                arn: format!(
                    "arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}",
                    app.config.region, app.config.account_id
                ),
                name: name.clone(),
                value,
                version_id: uuid::Uuid::new_v4().to_string(),
                created: crate::clock::now_millis() as f64 / 1000.0,
                description: input.description,
                tags: input.tags,
            };
            let answer = json!({
                "ARN": secret.arn,
                "Name": secret.name,
                "VersionId": secret.version_id,
            });
            let document = serde_json::to_string(&secret).expect("a secret serializes");
            if let Err(e) = app
                .store
                .call(move |conn| store::put_secret(conn, &name, &document))
                .await
            {
                return internal(e);
            }
            ok(answer)
        }
        "DescribeSecret" => {
            let Some(s) = stored else {
                return not_found();
            };
            let mut answer = json!({
                "ARN": s.arn,
                "Name": s.name,
                "CreatedDate": s.created,
                "Tags": s.tags,
                "VersionIdsToStages": { s.version_id.clone(): ["AWSCURRENT"] },
            });
            if let Some(d) = &s.description {
                answer["Description"] = json!(d);
            }
            ok(answer)
        }
        "GetSecretValue" => {
            let Some(s) = stored else {
                return not_found();
            };
            ok(json!({
                "ARN": s.arn,
                "Name": s.name,
                "VersionId": s.version_id,
                "SecretString": s.value,
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": s.created,
            }))
        }
        "DeleteSecret" => {
            let Some(s) = stored else {
                return not_found();
            };
            if let Err(e) = app
                .store
                .call(move |conn| store::delete_secret(conn, &name))
                .await
            {
                return internal(e);
            }
            ok(json!({
                "ARN": s.arn,
                "Name": s.name,
                "DeletionDate": crate::clock::now_millis() as f64 / 1000.0,
            }))
        }
        other => bad_request(
            "UnknownOperationException",
            format!("The emulator does not implement secretsmanager.{other} yet."),
        ),
    }
}

/// Secrets Manager's name rule: 1-512 characters of letters, digits and `/_+=.@-`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-!".contains(c))
}
