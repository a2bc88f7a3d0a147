//! The `authorizer` Lambda function: API Gateway's TOKEN authorizer for the staff routes. It
//! reads the stage's signing key once, at init, from the secret the deployer created.

use std::time::{SystemTime, UNIX_EPOCH};

use authorizer::TokenEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

/// Environment variable naming the secret that holds the signing key (its name only; the key
/// itself is never in the function's configuration).
const KEY_SECRET_VAR: &str = "TOKEN_KEY_SECRET";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    represent::logging::init();
    let key = signing_key().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<TokenEvent>| {
        let key = key.clone();
        async move { handle(event.payload, &key) }
    }))
    .await
}

/// The stage's key, read with the execution role's narrow grant (`secretsmanager:GetSecretValue`
/// on this one secret). A function that cannot read it fails its init, and API Gateway answers
/// 500 rather than let anybody in.
async fn signing_key() -> Result<Vec<u8>, Error> {
    let name = std::env::var(KEY_SECRET_VAR).map_err(|_| {
        format!("environment variable `{KEY_SECRET_VAR}` is not set: the deployer names the signing key's secret")
    })?;
    let config = represent::aws::load().await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let out = client
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading the signing key from secret `{name}` failed: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            )
        })?;
    let value = out
        .secret_string()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("secret `{name}` has no string value"))?;
    Ok(value.as_bytes().to_vec())
}

fn handle(event: TokenEvent, key: &[u8]) -> Result<Value, Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    match authorizer::authorize(&event, key, now) {
        Ok(answer) => Ok(answer),
        Err(refusal) => {
            tracing::info!(reason = %refusal, "token refused");
            // API Gateway answers 401 for exactly this error message.
            Err("Unauthorized".into())
        }
    }
}
