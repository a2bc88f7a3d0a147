//! Secrets Manager, the part a stage's signing keys need: `CreateSecret`, `DescribeSecret`,
//! `GetSecretValue`, `ListSecrets`, `DeleteSecret` and `RestoreSecret` over the JSON 1.1
//! protocol (`X-Amz-Target: secretsmanager.*`), secrets kept in the state database so they
//! survive a restart.
//!
//! A secret has one version (`AWSCURRENT`). Deletion works as AWS's does: `DeleteSecret`
//! schedules it after a recovery window of 7-30 days (30 by default) unless
//! `ForceDeleteWithoutRecovery`; until then the secret is listed only with
//! `IncludePlannedDeletion`, its value cannot be read, its name cannot be created again, and
//! `RestoreSecret` brings it back with its value. Once the window has passed it is gone.

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
    /// When `DeleteSecret` was called, in seconds since the epoch; `None` while it is live.
    #[serde(default)]
    deleted: Option<f64>,
    /// When a scheduled deletion takes effect.
    #[serde(default)]
    deletion_date: Option<f64>,
}

impl Secret {
    /// Whether the secret's recovery window has passed: it no longer exists.
    fn purged(&self, now: f64) -> bool {
        self.deletion_date.is_some_and(|d| d <= now)
    }

    fn entry(&self) -> Value {
        let mut entry = json!({
            "ARN": self.arn,
            "Name": self.name,
            "CreatedDate": self.created,
            "Tags": self.tags,
            "SecretVersionsToStages": { self.version_id.clone(): ["AWSCURRENT"] },
        });
        if let Some(d) = &self.description {
            entry["Description"] = json!(d);
        }
        if let Some(d) = self.deleted {
            entry["DeletedDate"] = json!(d);
        }
        entry
    }
}

fn now() -> f64 {
    crate::clock::now_millis() as f64 / 1000.0
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    aws_json::error(CONTENT_TYPE, status, code, message)
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

fn marked_for_deletion() -> Response {
    bad_request(
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

async fn save(app: &AppState, secret: &Secret) -> Result<(), Response> {
    let (name, document) = (
        secret.name.clone(),
        serde_json::to_string(secret).expect("a secret serializes"),
    );
    app.store
        .call(move |conn| store::put_secret(conn, &name, &document))
        .await
        .map_err(internal)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Filter {
    key: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListInput {
    #[serde(default)]
    filters: Vec<Filter>,
    #[serde(default)]
    include_planned_deletion: bool,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// `ListSecrets`: by name, with the `name` filter (a case-insensitive prefix, as AWS matches
/// it), paginated by the last name of the previous page.
async fn list(app: &AppState, body: &[u8]) -> Response {
    let input: ListInput = match aws_json::parse(body) {
        Ok(input) => input,
        Err(e) => {
            return bad_request(
                "InvalidRequestException",
                format!("invalid request body: {e}"),
            );
        }
    };
    let mut prefixes = Vec::new();
    for f in &input.filters {
        if f.key != "name" {
            return bad_request(
                "InvalidParameterException",
                format!(
                    "The emulator filters ListSecrets by `name` only, not by `{}`.",
                    f.key
                ),
            );
        }
        prefixes.extend(f.values.iter().map(|v| v.to_lowercase()));
    }
    let max = match input.max_results {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return bad_request(
                "InvalidParameterException",
                format!("MaxResults must be between 1 and 100, not {n}."),
            );
        }
    };
    let documents = match app.store.call(|conn| store::list_secrets(conn)).await {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let now = now();
    let mut matching = documents
        .iter()
        .filter_map(|d| serde_json::from_str::<Secret>(d).ok())
        .filter(|s| !s.purged(now))
        .filter(|s| input.include_planned_deletion || s.deleted.is_none())
        .filter(|s| {
            let name = s.name.to_lowercase();
            prefixes.is_empty() || prefixes.iter().any(|p| name.starts_with(p.as_str()))
        })
        .filter(|s| {
            input
                .next_token
                .as_ref()
                .is_none_or(|after| s.name > *after)
        });
    let page: Vec<Secret> = matching.by_ref().take(max).collect();
    let mut answer = json!({ "SecretList": page.iter().map(Secret::entry).collect::<Vec<_>>() });
    if matching.next().is_some()
        && let Some(last) = page.last()
    {
        answer["NextToken"] = json!(last.name);
    }
    ok(answer)
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
    recovery_window_in_days: Option<i64>,
    force_delete_without_recovery: Option<bool>,
}

/// Answers one Secrets Manager operation.
pub async fn handle(app: Arc<AppState>, operation: &str, body: &[u8]) -> Response {
    if operation == "ListSecrets" {
        return list(&app, body).await;
    }
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
    // A secret past its recovery window is gone for every operation.
    let stored = match stored {
        Some(s) if s.purged(now()) => {
            let name = name.clone();
            if let Err(e) = app
                .store
                .call(move |conn| store::delete_secret(conn, &name))
                .await
            {
                return internal(e);
            }
            None
        }
        other => other,
    };
    match operation {
        "CreateSecret" => {
            if !valid_name(&name) {
                return bad_request(
                    "InvalidParameterException",
                    "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
                );
            }
            if stored.as_ref().is_some_and(|s| s.deleted.is_some()) {
                return bad_request(
                    "InvalidRequestException",
                    "You can't create this secret because a secret with this name is already scheduled for deletion.",
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
                deleted: None,
                deletion_date: None,
            };
            if let Err(e) = save(&app, &secret).await {
                return e;
            }
            ok(json!({
                "ARN": secret.arn,
                "Name": secret.name,
                "VersionId": secret.version_id,
            }))
        }
        "DescribeSecret" => {
            let Some(s) = stored else {
                return not_found();
            };
            let mut answer = s.entry();
            // DescribeSecret names the map differently from ListSecrets.
            if let Some(map) = answer.as_object_mut()
                && let Some(versions) = map.remove("SecretVersionsToStages")
            {
                map.insert("VersionIdsToStages".to_string(), versions);
            }
            ok(answer)
        }
        "GetSecretValue" => {
            let Some(s) = stored else {
                return not_found();
            };
            if s.deleted.is_some() {
                return marked_for_deletion();
            }
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
            let Some(mut s) = stored else {
                return not_found();
            };
            let force = input.force_delete_without_recovery.unwrap_or(false);
            if force && input.recovery_window_in_days.is_some() {
                return bad_request(
                    "InvalidParameterException",
                    "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
                );
            }
            let days = input.recovery_window_in_days.unwrap_or(30);
            if !(7..=30).contains(&days) {
                return bad_request(
                    "InvalidParameterException",
                    "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
                );
            }
            if force {
                if let Err(e) = app
                    .store
                    .call(move |conn| store::delete_secret(conn, &name))
                    .await
                {
                    return internal(e);
                }
                return ok(json!({ "ARN": s.arn, "Name": s.name, "DeletionDate": now() }));
            }
            if s.deleted.is_some() {
                return marked_for_deletion();
            }
            let at = now();
            s.deleted = Some(at);
            s.deletion_date = Some(at + days as f64 * 86_400.0);
            if let Err(e) = save(&app, &s).await {
                return e;
            }
            ok(json!({ "ARN": s.arn, "Name": s.name, "DeletionDate": s.deletion_date }))
        }
        "RestoreSecret" => {
            let Some(mut s) = stored else {
                return not_found();
            };
            s.deleted = None;
            s.deletion_date = None;
            if let Err(e) = save(&app, &s).await {
                return e;
            }
            ok(json!({ "ARN": s.arn, "Name": s.name }))
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
