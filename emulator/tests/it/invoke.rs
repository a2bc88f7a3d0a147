//! Invoke's front door: everything Lambda rejects before a function runs (unknown function,
//! Pending state, payload size, tenant id rules, malformed JSON).

use std::time::Duration;

use aws_sdk_lambda::error::ProvideErrorMetadata as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::support::{self, create_function, zip_with};

/// Recorded from AWS.
const TENANT_MISSING: &str = "The invoked function is enabled with tenancy configuration. Add a valid tenant ID in your request and try again.";
/// Unverified: the mirror of the recorded sentence.
const TENANT_UNEXPECTED: &str = "The invoked function is not enabled with tenancy configuration. Remove the tenant ID from your request and try again.";

async fn with_functions() -> (
    emulator::Emulator,
    tempfile::TempDir,
    aws_sdk_lambda::Client,
) {
    let (emulator, dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    create_function(
        &lambda,
        &role,
        "isolated",
        zip_with("bootstrap", b"1"),
        true,
    )
    .await;
    create_function(&lambda, &role, "shared", zip_with("bootstrap", b"1"), false).await;
    (emulator, dir, lambda)
}

#[tokio::test]
async fn unknown_functions_are_not_found() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    let error = lambda
        .invoke()
        .function_name("nope")
        .send()
        .await
        .expect_err("no such function")
        .into_service_error();
    assert!(error.is_resource_not_found_exception(), "{error:?}");
    assert_eq!(
        error.message(),
        Some("Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope:$LATEST")
    );
}

#[tokio::test]
async fn tenancy_must_match_the_function() {
    let (_emulator, _dir, lambda) = with_functions().await;
    let missing = lambda
        .invoke()
        .function_name("isolated")
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect_err("a PER_TENANT function needs a tenant")
        .into_service_error();
    assert!(
        missing.is_invalid_parameter_value_exception(),
        "{missing:?}"
    );
    assert_eq!(missing.message(), Some(TENANT_MISSING));

    let unexpected = lambda
        .invoke()
        .function_name("shared")
        .tenant_id("TX")
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect_err("a shared function takes no tenant")
        .into_service_error();
    assert!(
        unexpected.is_invalid_parameter_value_exception(),
        "{unexpected:?}"
    );
    assert_eq!(unexpected.message(), Some(TENANT_UNEXPECTED));
}

#[tokio::test]
async fn malformed_tenant_ids_fail_validation() {
    let (_emulator, _dir, lambda) = with_functions().await;
    let too_long = "a".repeat(257);
    let cases = [
        ("", "Member must have length greater than or equal to 1"),
        (
            too_long.as_str(),
            "Member must have length less than or equal to 256",
        ),
        ("a\tb", "Member must satisfy regular expression pattern"),
        ("tenant|1", "Member must satisfy regular expression pattern"),
    ];
    for (tenant, constraint) in cases {
        let error = lambda
            .invoke()
            .function_name("isolated")
            .tenant_id(tenant)
            .payload(Blob::new("{}"))
            .send()
            .await
            .expect_err("invalid tenant id")
            .into_service_error();
        assert_eq!(
            error.code(),
            Some("ValidationException"),
            "{tenant:?}: {error:?}"
        );
        let message = error.message().unwrap_or_default();
        assert!(
            message.starts_with("1 validation error detected: Value '")
                && message.contains("at 'tenantId' failed to satisfy constraint")
                && message.contains(constraint),
            "{tenant:?}: {message}"
        );
    }
}

#[tokio::test]
async fn tenant_ids_are_data_so_path_like_ids_are_valid() {
    let (_emulator, _dir, lambda) = with_functions().await;
    for tenant in ["../x", "New York", "a:b/c=d+e-f@g.h_i", &"z".repeat(256)] {
        // DryRun stops after validation, so this checks the front door alone.
        let output = lambda
            .invoke()
            .function_name("isolated")
            .invocation_type(InvocationType::DryRun)
            .tenant_id(tenant)
            .payload(Blob::new("{}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{tenant:?} is a valid tenant id: {e:?}"));
        assert_eq!(output.status_code(), 204);
    }
}

#[tokio::test]
async fn payloads_must_be_json_and_at_most_six_megabytes() {
    let (_emulator, _dir, lambda) = with_functions().await;
    let malformed = lambda
        .invoke()
        .function_name("shared")
        .payload(Blob::new("{not json"))
        .send()
        .await
        .expect_err("malformed JSON")
        .into_service_error();
    assert!(
        malformed.is_invalid_request_content_exception(),
        "{malformed:?}"
    );
    assert!(
        malformed
            .message()
            .unwrap_or_default()
            .starts_with("Could not parse request body into json: "),
        "{malformed:?}"
    );

    let oversized = format!("\"{}\"", "x".repeat(6 * 1024 * 1024));
    let error = lambda
        .invoke()
        .function_name("shared")
        .payload(Blob::new(oversized))
        .send()
        .await
        .expect_err("payload too large");
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(413));
    let error = error.into_service_error();
    assert!(error.is_request_too_large_exception(), "{error:?}");
    assert_eq!(
        error.message(),
        Some("Request must be smaller than 6291456 bytes for the InvokeFunction operation")
    );
}

#[tokio::test]
async fn pending_functions_cannot_be_invoked_or_updated() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    // The function stays Pending for the whole test.
    config.pending_delay = Duration::from_secs(600);
    let emulator = emulator::Emulator::start(config).await.unwrap();
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    lambda
        .create_function()
        .function_name("pending")
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(&role)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(Blob::new(zip_with("bootstrap", b"1")))
                .build(),
        )
        .send()
        .await
        .expect("CreateFunction");

    let pending_message = "The operation cannot be performed at this time. The function is currently in the following state: Pending";
    let invoke = lambda
        .invoke()
        .function_name("pending")
        .send()
        .await
        .expect_err("Pending functions are not invoked")
        .into_service_error();
    assert!(invoke.is_resource_conflict_exception(), "{invoke:?}");
    assert_eq!(invoke.message(), Some(pending_message));

    let update = lambda
        .update_function_code()
        .function_name("pending")
        .zip_file(Blob::new(zip_with("bootstrap", b"2")))
        .send()
        .await
        .expect_err("Pending functions are not updated")
        .into_service_error();
    assert!(update.is_resource_conflict_exception(), "{update:?}");
    assert_eq!(update.message(), Some(pending_message));
    emulator.shutdown().await;
}
