//! The Lambda control plane through the real SDK client: create, read, update, delete, tags,
//! permissions and pagination, with Lambda's states and errors.

use std::time::Duration;

use aws_sdk_lambda::client::Waiters as _;
use aws_sdk_lambda::error::ProvideErrorMetadata as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Environment, FunctionCode, LastUpdateStatus, Runtime, State, TenancyConfig, TenantIsolationMode,
};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::support::{self, create_function, zip_with};

fn code(zip: Vec<u8>) -> FunctionCode {
    FunctionCode::builder().zip_file(Blob::new(zip)).build()
}

fn status_of<E>(
    error: &aws_sdk_lambda::error::SdkError<E, aws_sdk_lambda::config::http::HttpResponse>,
) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

#[tokio::test]
async fn create_function_is_pending_then_active_with_tenancy_everywhere() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    let zip = zip_with("bootstrap", b"#!/bin/sh\n");
    let expected_sha = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip));

    let created = lambda
        .create_function()
        .function_name("represent-dev-representatives")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(&role)
        .memory_size(256)
        .timeout(10)
        .environment(Environment::builder().variables("STAGE", "dev").build())
        .tags("deployer:app", "represent")
        .tenancy_config(
            TenancyConfig::builder()
                .tenant_isolation_mode(TenantIsolationMode::PerTenant)
                .build()
                .unwrap(),
        )
        .code(code(zip.clone()))
        .send()
        .await
        .expect("CreateFunction");
    assert_eq!(created.state(), Some(&State::Pending));
    assert_eq!(
        created.state_reason_code().map(|c| c.as_str()),
        Some("Creating")
    );
    assert_eq!(created.code_sha256(), Some(expected_sha.as_str()));
    assert_eq!(created.code_size(), zip.len() as i64);
    assert_eq!(
        created.function_arn(),
        Some("arn:aws:lambda:us-east-1:000000000000:function:represent-dev-representatives")
    );

    // The SDK's own waiter must understand the states the emulator reports.
    lambda
        .wait_until_function_active_v2()
        .function_name("represent-dev-representatives")
        .wait(Duration::from_secs(30))
        .await
        .expect("function becomes Active");

    let got = lambda
        .get_function()
        .function_name("represent-dev-representatives")
        .send()
        .await
        .expect("GetFunction");
    let config = got.configuration().expect("configuration");
    assert_eq!(config.state(), Some(&State::Active));
    assert_eq!(
        config.last_update_status(),
        Some(&LastUpdateStatus::Successful)
    );
    assert_eq!(
        config.tenancy_config().map(|t| t.tenant_isolation_mode()),
        Some(&TenantIsolationMode::PerTenant)
    );
    assert_eq!(config.memory_size(), Some(256));
    assert_eq!(config.timeout(), Some(10));
    assert_eq!(
        config
            .environment()
            .and_then(|e| e.variables())
            .and_then(|v| v.get("STAGE"))
            .map(String::as_str),
        Some("dev")
    );
    assert_eq!(
        got.tags()
            .and_then(|t| t.get("deployer:app"))
            .map(String::as_str),
        Some("represent")
    );
    let location = got
        .code()
        .and_then(|c| c.location())
        .expect("code location");
    assert!(location.starts_with(&emulator.endpoint()), "{location}");

    let by_arn = lambda
        .get_function_configuration()
        .function_name(
            "arn:aws:lambda:us-east-1:000000000000:function:represent-dev-representatives",
        )
        .send()
        .await
        .expect("GetFunctionConfiguration by ARN");
    assert_eq!(
        by_arn.tenancy_config().map(|t| t.tenant_isolation_mode()),
        Some(&TenantIsolationMode::PerTenant)
    );

    let listed = lambda.list_functions().send().await.expect("ListFunctions");
    assert_eq!(listed.functions().len(), 1);
    assert!(listed.functions()[0].tenancy_config().is_some());
}

#[tokio::test]
async fn the_execution_role_must_exist() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    let error = lambda
        .create_function()
        .function_name("orphan")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role("arn:aws:iam::000000000000:role/never-created")
        .code(code(zip_with("bootstrap", b"x")))
        .send()
        .await
        .expect_err("the role does not exist")
        .into_service_error();
    assert!(error.is_invalid_parameter_value_exception(), "{error:?}");
    assert_eq!(
        error.message(),
        Some("The role defined for the function cannot be assumed by Lambda.")
    );
}

#[tokio::test]
async fn invalid_settings_are_rejected_the_way_lambda_words_them() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    let base = || {
        lambda
            .create_function()
            .function_name("settings")
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(&role)
            .code(code(zip_with("bootstrap", b"x")))
    };

    let memory = base()
        .memory_size(100)
        .send()
        .await
        .expect_err("memory too small");
    assert_eq!(status_of(&memory), Some(400));
    let memory = memory.into_service_error();
    assert_eq!(memory.code(), Some("ValidationException"));
    assert_eq!(
        memory.message(),
        Some(
            "1 validation error detected: Value '100' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128"
        )
    );

    let timeout = base()
        .timeout(901)
        .send()
        .await
        .expect_err("timeout too long")
        .into_service_error();
    assert_eq!(timeout.code(), Some("ValidationException"));
    assert!(
        timeout.message().unwrap_or_default().contains("'timeout'"),
        "{timeout:?}"
    );

    let zip = base()
        .code(code(b"this is not a zip".to_vec()))
        .send()
        .await
        .expect_err("not a zip")
        .into_service_error();
    assert!(zip.is_invalid_parameter_value_exception(), "{zip:?}");
    assert_eq!(
        zip.message(),
        Some("Could not unzip uploaded file. Please check your file, then try to upload again.")
    );

    let escaping = base()
        .code(code(zip_with("../outside", b"x")))
        .send()
        .await
        .expect_err("entries may not escape the package")
        .into_service_error();
    assert!(
        escaping.is_invalid_parameter_value_exception(),
        "{escaping:?}"
    );
    assert!(
        escaping
            .message()
            .unwrap_or_default()
            .starts_with("Could not unzip uploaded file."),
        "{escaping:?}"
    );

    let tenancy = base()
        .tenancy_config(
            TenancyConfig::builder()
                .tenant_isolation_mode(TenantIsolationMode::from("SHARED"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect_err("SHARED is not a tenancy mode")
        .into_service_error();
    assert_eq!(tenancy.code(), Some("ValidationException"), "{tenancy:?}");

    let nothing_created = lambda.list_functions().send().await.expect("ListFunctions");
    assert!(nothing_created.functions().is_empty());
}

#[tokio::test]
async fn a_taken_name_is_a_conflict() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    create_function(&lambda, &role, "taken", zip_with("bootstrap", b"1"), false).await;
    let error = lambda
        .create_function()
        .function_name("taken")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(&role)
        .code(code(zip_with("bootstrap", b"2")))
        .send()
        .await
        .expect_err("the name is taken");
    assert_eq!(status_of(&error), Some(409));
    let error = error.into_service_error();
    assert!(error.is_resource_conflict_exception(), "{error:?}");
    assert_eq!(error.message(), Some("Function already exist: taken"));
}

#[tokio::test]
async fn updates_are_in_progress_then_successful_and_conflict_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    // Long enough that the second update surely lands while the first is in progress.
    config.pending_delay = Duration::from_millis(600);
    let emulator = emulator::Emulator::start(config).await.unwrap();
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    let created = create_function(
        &lambda,
        &role,
        "updated",
        zip_with("bootstrap", b"1"),
        false,
    )
    .await;

    let new_zip = zip_with("bootstrap", b"2");
    let updated = lambda
        .update_function_code()
        .function_name("updated")
        .zip_file(Blob::new(new_zip.clone()))
        .send()
        .await
        .expect("UpdateFunctionCode");
    assert_eq!(
        updated.last_update_status(),
        Some(&LastUpdateStatus::InProgress)
    );
    assert_eq!(updated.state(), Some(&State::Active));
    assert_ne!(updated.revision_id(), created.revision_id());
    assert_ne!(updated.code_sha256(), created.code_sha256());

    let conflict = lambda
        .update_function_configuration()
        .function_name("updated")
        .memory_size(512)
        .send()
        .await
        .expect_err("an update is in progress")
        .into_service_error();
    assert!(conflict.is_resource_conflict_exception(), "{conflict:?}");
    assert_eq!(
        conflict.message(),
        Some(
            "The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:us-east-1:000000000000:function:updated"
        )
    );

    support::wait_active(&lambda, "updated").await;
    let reconfigured = lambda
        .update_function_configuration()
        .function_name("updated")
        .memory_size(512)
        .description("bigger")
        .send()
        .await
        .expect("UpdateFunctionConfiguration");
    assert_eq!(
        reconfigured.last_update_status(),
        Some(&LastUpdateStatus::InProgress)
    );
    support::wait_active(&lambda, "updated").await;
    let config = lambda
        .get_function_configuration()
        .function_name("updated")
        .send()
        .await
        .unwrap();
    assert_eq!(config.memory_size(), Some(512));
    assert_eq!(config.description(), Some("bigger"));
    assert_eq!(config.code_sha256(), updated.code_sha256());
    emulator.shutdown().await;
}

#[tokio::test]
async fn tenancy_in_a_raw_configuration_update_is_ignored() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    create_function(&lambda, &role, "shared", zip_with("bootstrap", b"1"), false).await;

    let response = support::raw_request(
        emulator.local_addr(),
        "PUT",
        "/2015-03-31/functions/shared/configuration",
        &[("Content-Type", "application/json")],
        br#"{"Description":"tried to change tenancy","TenancyConfig":{"TenantIsolationMode":"PER_TENANT"}}"#,
    )
    .await;
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(response.json().get("TenancyConfig").is_none());

    support::wait_active(&lambda, "shared").await;
    let got = lambda
        .get_function()
        .function_name("shared")
        .send()
        .await
        .unwrap();
    let config = got.configuration().unwrap();
    assert_eq!(config.description(), Some("tried to change tenancy"));
    assert!(config.tenancy_config().is_none());
}

#[tokio::test]
async fn tags_are_listed_added_and_removed_by_arn() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    let created =
        create_function(&lambda, &role, "tagged", zip_with("bootstrap", b"1"), false).await;
    let arn = created.function_arn().unwrap();

    lambda
        .tag_resource()
        .resource(arn)
        .tags("deployer:app", "represent")
        .tags("deployer:stage", "dev")
        .send()
        .await
        .expect("TagResource");
    lambda
        .untag_resource()
        .resource(arn)
        .tag_keys("deployer:stage")
        .send()
        .await
        .expect("UntagResource");
    let tags = lambda
        .list_tags()
        .resource(arn)
        .send()
        .await
        .expect("ListTags");
    let tags = tags.tags().expect("tags");
    assert_eq!(tags.len(), 1);
    assert_eq!(
        tags.get("deployer:app").map(String::as_str),
        Some("represent")
    );

    let missing = lambda
        .list_tags()
        .resource("arn:aws:lambda:us-east-1:000000000000:function:nope")
        .send()
        .await
        .expect_err("no such function")
        .into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");
}

#[tokio::test]
async fn permissions_build_a_resource_policy() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    create_function(&lambda, &role, "public", zip_with("bootstrap", b"1"), false).await;

    let none = lambda
        .get_policy()
        .function_name("public")
        .send()
        .await
        .expect_err("no policy yet")
        .into_service_error();
    assert!(none.is_resource_not_found_exception(), "{none:?}");

    let source = "arn:aws:execute-api:us-east-1:000000000000:abc123/*/*/*";
    let added = lambda
        .add_permission()
        .function_name("public")
        .statement_id("apigateway")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(source)
        .send()
        .await
        .expect("AddPermission");
    let statement: serde_json::Value =
        serde_json::from_str(added.statement().expect("statement")).unwrap();
    assert_eq!(
        statement["Principal"]["Service"],
        "apigateway.amazonaws.com"
    );
    assert_eq!(statement["Condition"]["ArnLike"]["AWS:SourceArn"], source);

    let duplicate = lambda
        .add_permission()
        .function_name("public")
        .statement_id("apigateway")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .send()
        .await
        .expect_err("duplicate statement id")
        .into_service_error();
    assert!(duplicate.is_resource_conflict_exception(), "{duplicate:?}");
    assert_eq!(
        duplicate.message(),
        Some(
            "The statement id (apigateway) provided already exists. Please provide a new statement id, or remove the existing statement."
        )
    );

    let policy = lambda
        .get_policy()
        .function_name("public")
        .send()
        .await
        .expect("GetPolicy");
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Sid"], "apigateway");

    lambda
        .remove_permission()
        .function_name("public")
        .statement_id("apigateway")
        .send()
        .await
        .expect("RemovePermission");
    let gone = lambda
        .get_policy()
        .function_name("public")
        .send()
        .await
        .expect_err("the only statement was removed")
        .into_service_error();
    assert!(gone.is_resource_not_found_exception(), "{gone:?}");
}

#[tokio::test]
async fn list_functions_pages_with_markers() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    for name in ["c", "a", "b"] {
        create_function(
            &lambda,
            &role,
            name,
            zip_with("bootstrap", name.as_bytes()),
            false,
        )
        .await;
    }
    let first = lambda.list_functions().max_items(2).send().await.unwrap();
    let names: Vec<&str> = first
        .functions()
        .iter()
        .filter_map(|f| f.function_name())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let marker = first.next_marker().expect("a second page");
    let second = lambda
        .list_functions()
        .max_items(2)
        .marker(marker)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = second
        .functions()
        .iter()
        .filter_map(|f| f.function_name())
        .collect();
    assert_eq!(names, ["c"]);
    assert!(second.next_marker().is_none());

    // The SDK paginator walks the same pages.
    let all: Vec<_> = lambda
        .list_functions()
        .max_items(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate");
    assert_eq!(all.len(), 3);
}

#[tokio::test]
async fn deleted_functions_are_not_found() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    create_function(&lambda, &role, "doomed", zip_with("bootstrap", b"1"), false).await;
    lambda
        .delete_function()
        .function_name("doomed")
        .send()
        .await
        .expect("DeleteFunction");
    let missing = lambda
        .get_function()
        .function_name("doomed")
        .send()
        .await
        .expect_err("deleted")
        .into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");
    assert_eq!(
        missing.message(),
        Some("Function not found: arn:aws:lambda:us-east-1:000000000000:function:doomed")
    );
    let again = lambda
        .delete_function()
        .function_name("doomed")
        .send()
        .await
        .expect_err("already deleted")
        .into_service_error();
    assert!(again.is_resource_not_found_exception(), "{again:?}");
}

#[tokio::test]
async fn unknown_routes_get_a_json_error_and_status_reports_functions() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    create_function(
        &lambda,
        &role,
        "counted",
        zip_with("bootstrap", b"1"),
        false,
    )
    .await;

    let unknown = support::raw_request(
        emulator.local_addr(),
        "GET",
        "/2099-01-01/nothing",
        &[],
        b"",
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.header("x-amzn-ErrorType"),
        Some("UnknownOperationException")
    );
    assert_eq!(unknown.json()["Type"], "User");

    let status =
        support::raw_request(emulator.local_addr(), "GET", "/_emulator/status", &[], b"").await;
    assert_eq!(status.status, 200);
    let status = status.json();
    assert_eq!(status["functions"], 1);
    assert_eq!(status["endpoint"], emulator.endpoint());
    assert!(status["environments"].is_array());

    let health =
        support::raw_request(emulator.local_addr(), "GET", "/_emulator/health", &[], b"").await;
    assert_eq!(
        (health.status, health.body.as_slice()),
        (200, b"ok".as_slice())
    );
}
