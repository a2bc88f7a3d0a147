//! Durability and startup: what the emulator acknowledged survives a restart, and a taken port is
//! reported clearly.

use std::time::Duration;

use aws_sdk_lambda::types::{State, TenantIsolationMode};
use emulator::Emulator;

use crate::support::{self, create_function, zip_with};

#[tokio::test]
async fn functions_roles_tags_and_policies_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    // A function that is still Pending when the emulator stops must come back Active.
    config.pending_delay = Duration::from_secs(600);
    let first = Emulator::start(config).await.unwrap();
    let iam = support::iam_client(&first);
    let lambda = support::lambda_client(&first);
    let role = support::create_role(&iam).await;
    iam.attach_role_policy()
        .role_name("represent-test-exec")
        .policy_arn("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
        .send()
        .await
        .unwrap();
    let created = lambda
        .create_function()
        .function_name("durable")
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(&role)
        .tags("deployer:app", "represent")
        .tenancy_config(
            aws_sdk_lambda::types::TenancyConfig::builder()
                .tenant_isolation_mode(TenantIsolationMode::PerTenant)
                .build()
                .unwrap(),
        )
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip_with(
                    "bootstrap",
                    b"1",
                )))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.state(), Some(&State::Pending));
    lambda
        .add_permission()
        .function_name("durable")
        .statement_id("apigateway")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .send()
        .await
        .unwrap();
    first.shutdown().await;

    let second = Emulator::start(support::config(dir.path())).await.unwrap();
    let iam = support::iam_client(&second);
    let lambda = support::lambda_client(&second);
    let fetched_role = iam
        .get_role()
        .role_name("represent-test-exec")
        .send()
        .await
        .expect("the role survived");
    assert_eq!(fetched_role.role().map(|r| r.arn()), Some(role.as_str()));
    let attached = iam
        .list_attached_role_policies()
        .role_name("represent-test-exec")
        .send()
        .await
        .unwrap();
    assert_eq!(attached.attached_policies().len(), 1);

    let got = lambda
        .get_function()
        .function_name("durable")
        .send()
        .await
        .expect("the function survived");
    let config = got.configuration().unwrap();
    assert_eq!(config.state(), Some(&State::Active));
    assert_eq!(config.code_sha256(), created.code_sha256());
    assert_eq!(config.revision_id(), created.revision_id());
    assert_eq!(
        config.tenancy_config().map(|t| t.tenant_isolation_mode()),
        Some(&TenantIsolationMode::PerTenant)
    );
    assert_eq!(
        got.tags()
            .and_then(|t| t.get("deployer:app"))
            .map(String::as_str),
        Some("represent")
    );
    let policy = lambda
        .get_policy()
        .function_name("durable")
        .send()
        .await
        .unwrap();
    assert!(policy.policy().unwrap().contains("apigateway"));

    // The restored function accepts updates again.
    lambda
        .update_function_code()
        .function_name("durable")
        .zip_file(aws_sdk_lambda::primitives::Blob::new(zip_with(
            "bootstrap",
            b"2",
        )))
        .send()
        .await
        .expect("an update after restart");
    second.shutdown().await;
}

#[tokio::test]
async fn deleted_functions_stay_deleted_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = Emulator::start(support::config(dir.path())).await.unwrap();
    let iam = support::iam_client(&first);
    let lambda = support::lambda_client(&first);
    let role = support::create_role(&iam).await;
    create_function(&lambda, &role, "kept", zip_with("bootstrap", b"1"), false).await;
    create_function(
        &lambda,
        &role,
        "dropped",
        zip_with("bootstrap", b"2"),
        false,
    )
    .await;
    lambda
        .delete_function()
        .function_name("dropped")
        .send()
        .await
        .unwrap();
    first.shutdown().await;

    let second = Emulator::start(support::config(dir.path())).await.unwrap();
    let lambda = support::lambda_client(&second);
    let names: Vec<String> = lambda
        .list_functions()
        .send()
        .await
        .unwrap()
        .functions()
        .iter()
        .filter_map(|f| f.function_name().map(str::to_string))
        .collect();
    assert_eq!(names, ["kept"]);
    second.shutdown().await;
}

#[tokio::test]
async fn a_taken_port_is_reported_with_what_to_do() {
    let (running, _dir) = support::start().await;
    let other = tempfile::tempdir().unwrap();
    let mut config = support::config(other.path());
    config.bind = running.local_addr();
    let error = Emulator::start(config)
        .await
        .expect_err("the port is taken")
        .to_string();
    let port = running.local_addr().port();
    assert!(
        error.starts_with(&format!("port {port} is already in use: ")),
        "{error}"
    );
    assert!(error.contains("cargo xtask emulator stop"), "{error}");
    assert!(error.contains("--port"), "{error}");
}
