//! Invoke through the whole emulator with a real function (the probe): the payload and headers a
//! caller sees, asynchronous invokes, new revisions after updates, and log lines that reach the
//! state database.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use base64::Engine as _;
use serde_json::Value;

use crate::support::{self, create_function};

async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    tenant: &str,
    payload: &str,
) -> aws_sdk_lambda::operation::invoke::InvokeOutput {
    lambda
        .invoke()
        .function_name("probe")
        .tenant_id(tenant)
        .payload(Blob::new(payload))
        .send()
        .await
        .expect("Invoke")
}

fn body(output: &aws_sdk_lambda::operation::invoke::InvokeOutput) -> Value {
    serde_json::from_slice(output.payload().expect("payload").as_ref()).expect("JSON payload")
}

#[tokio::test]
async fn tenant_invokes_run_the_function_and_their_logs_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator::Emulator::start(support::config(dir.path()))
        .await
        .unwrap();
    let iam = support::iam_client(&emulator);
    let lambda = support::lambda_client(&emulator);
    let role = support::create_role(&iam).await;
    create_function(&lambda, &role, "probe", support::probe_zip(), true).await;

    let output = lambda
        .invoke()
        .function_name("probe")
        .tenant_id("TX")
        .log_type(LogType::Tail)
        .payload(Blob::new(r#"{"op":"whoami"}"#))
        .send()
        .await
        .expect("Invoke");
    assert_eq!(output.status_code(), 200);
    assert_eq!(output.executed_version(), Some("$LATEST"));
    assert_eq!(output.function_error(), None);
    let whoami = body(&output);
    assert_eq!(whoami["tenant"], "TX");
    assert_eq!(whoami["env"]["AWS_LAMBDA_FUNCTION_NAME"], "probe");
    let tail = output.log_result().expect("a log tail was asked for");
    let tail = base64::engine::general_purpose::STANDARD
        .decode(tail)
        .expect("the log tail is base64");
    assert!(!tail.is_empty());

    invoke(&lambda, "TX", r#"{"op":"log","lines":3}"#).await;

    let failed = invoke(&lambda, "TX", r#"{"op":"fail"}"#).await;
    assert!(failed.function_error().is_some(), "{failed:?}");
    assert_eq!(body(&failed)["errorType"], "ProbeFailure");

    let queued = lambda
        .invoke()
        .function_name("probe")
        .tenant_id("CA")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(r#"{"op":"whoami"}"#))
        .send()
        .await
        .expect("asynchronous Invoke");
    assert_eq!(queued.status_code(), 202);

    let status = support::raw_request(emulator.local_addr(), "GET", "/_emulator/status", &[], b"")
        .await
        .json();
    let tenants: Vec<&str> = status["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .filter_map(|e| e["tenant"].as_str())
        .collect();
    assert!(tenants.contains(&"TX"), "{status}");

    // A configuration update is a new revision: the next invoke runs in a new environment.
    let before = body(&invoke(&lambda, "TX", r#"{"op":"whoami"}"#).await)["pid"].clone();
    lambda
        .update_function_configuration()
        .function_name("probe")
        .memory_size(256)
        .send()
        .await
        .expect("UpdateFunctionConfiguration");
    support::wait_active(&lambda, "probe").await;
    let after = body(&invoke(&lambda, "TX", r#"{"op":"whoami"}"#).await);
    assert_ne!(
        after["pid"], before,
        "the old revision's environment was retired"
    );
    assert_eq!(after["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");

    emulator.shutdown().await;
    let db = rusqlite::Connection::open(dir.path().join("state.sqlite")).unwrap();
    let logged: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM log_events
             WHERE log_group = '/aws/lambda/probe' AND tenant = 'TX' AND message LIKE '%probe log line%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        logged, 3,
        "the function's stdout lines were stored with their tenant"
    );
}
