//! Invoking: the tenant id travels with the call, a bad one never leaves the machine.

use aws_sdk_lambda::Client as Lambda;
use aws_sdk_lambda::operation::invoke::InvokeOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use aws_smithy_mocks::mock;
use base64::Engine;
use deployer::{DeployError, invoke};

use super::support::clients;

#[tokio::test]
async fn tenant_id_and_log_tail_round_trip() {
    let tail = base64::engine::general_purpose::STANDARD.encode("START RequestId: 1\nEND\n");
    let call = mock!(Lambda::invoke)
        .match_requests(|r| {
            r.function_name() == Some("represent-dev-representatives")
                && r.tenant_id() == Some("TX")
                && r.log_type() == Some(&LogType::Tail)
                && r.payload().map(|p| p.as_ref()) == Some(br#"{"zip":"78701"}"#.as_slice())
        })
        .then_output(move || {
            InvokeOutput::builder()
                .status_code(200)
                .payload(Blob::new(r#"{"ok":true}"#))
                .log_result(tail.clone())
                .executed_version("$LATEST")
                .build()
        });
    let c = clients(&[&call], &[]);
    let out = invoke(
        &c,
        "represent-dev-representatives",
        Some("TX"),
        br#"{"zip":"78701"}"#.to_vec(),
        true,
    )
    .await
    .expect("invoked");
    assert_eq!(out.status, 200);
    assert_eq!(out.payload, br#"{"ok":true}"#);
    assert_eq!(out.log_tail.as_deref(), Some("START RequestId: 1\nEND\n"));
    assert_eq!(out.executed_version.as_deref(), Some("$LATEST"));
    assert_eq!(out.function_error, None);
    assert_eq!(call.num_calls(), 1);
}

#[tokio::test]
async fn invalid_tenant_id_is_rejected_before_any_call() {
    // No rules: a call would fail the test.
    let c = clients(&[], &[]);
    let err = invoke(
        &c,
        "represent-dev-representatives",
        Some("TX;rm -rf"),
        vec![],
        false,
    )
    .await
    .expect_err("rejected");
    assert!(matches!(err, DeployError::TenantId(_)));
    assert!(err.to_string().contains("\"TX;rm -rf\""), "{err}");
}
