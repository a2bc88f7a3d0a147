//! The audit through CloudTrail Lake, from the outside: the Represent stack deployed to the
//! emulator with its data-events store, a session of a function's tenant-data role tagged TX
//! reading TX and refused on CA with the real SDK clients, then `audit --denied`'s Lake query
//! (the code path of an AWS stage) showing the CA attempt as cross-tenant, and a redeploy that
//! changes nothing.

use std::time::Duration;

use deployer::ResourceKind;
use deployer::cli::audit::{LakeQuery, read_lake};

use crate::support::{deploy, emulator, packages, query_partition};

const ACCOUNT: &str = "000000000000";
const TABLE: &str = "represent-dev-data";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_tenant_attempt_is_read_back_from_cloudtrail_lake() {
    let stage = emulator().await;
    let app = xtask::stack::represent();
    let (plan, _) = deploy(&stage, &app, "dev", &packages()).await;
    let store = plan
        .changes
        .iter()
        .find(|c| c.kind == ResourceKind::EventDataStore)
        .expect("the plan has the data-events store");
    assert_eq!(store.name, "represent-dev-data-events");
    assert_eq!(store.action, deployer::Action::Create);

    // A session of the representatives function's tenant-data role, tagged and named as the
    // functions' shared library assumes it (the developer may assume any role).
    let data_role =
        format!("arn:aws:iam::{ACCOUNT}:role/represent/dev/represent-dev-representatives-data");
    let tx = aws_sdk_sts::Client::new(&stage.sdk)
        .assume_role()
        .role_arn(&data_role)
        .role_session_name(represent::data::session_name("TX"))
        .tags(
            aws_sdk_sts::types::Tag::builder()
                .key("tenant")
                .value("TX")
                .build()
                .expect("a tag"),
        )
        .send()
        .await
        .expect("the tenant-data role is assumed for TX");
    let creds = tx.credentials().expect("credentials");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(deployer::clients::https_client())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&stage.endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_string()),
            None,
            "assumed",
        ))
        .load()
        .await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    assert!(
        query_partition(&ddb, TABLE, "TX")
            .await
            .expect("TX reads TX")
            > 0
    );
    let refused = query_partition(&ddb, TABLE, "CA")
        .await
        .expect_err("TX is refused on CA");
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&refused.into_service_error()),
        Some("AccessDeniedException")
    );

    // `audit --denied` on the Lake store: the CA attempt, by TX's session, flagged.
    let tenants = vec!["TX".to_string(), "CA".to_string()];
    let lake = LakeQuery {
        app: "represent",
        stage: "dev",
        tenants: &tenants,
        since_ms: 0,
        denied_only: true,
        tenant: None,
        wait: Duration::from_secs(30),
    };
    let denied = read_lake(&stage.clients, &lake)
        .await
        .expect("the store answers")
        .expect("the stage has a store");
    assert_eq!(denied.len(), 1, "{denied:?}");
    let attempt = &denied[0];
    assert_eq!(attempt.action, "dynamodb:Query");
    assert_eq!(attempt.table, TABLE);
    assert_eq!(attempt.partition_keys, ["CA"]);
    assert_eq!(
        attempt.tenant.as_deref(),
        Some("TX"),
        "read back from the session name"
    );
    assert!(!attempt.allowed);
    assert!(
        attempt
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("AccessDenied: User: arn:aws:sts::")),
        "{attempt:?}"
    );
    assert!(attempt.is_cross_tenant());
    assert!(deployer::cli::audit::render(attempt).ends_with("CROSS-TENANT ATTEMPT"));

    // Without --denied the allowed TX read is there too, and --tenant CA finds the attempt.
    let all = read_lake(
        &stage.clients,
        &LakeQuery {
            denied_only: false,
            ..lake.clone()
        },
    )
    .await
    .expect("the store answers")
    .expect("a store");
    assert!(
        all.iter().any(|e| e.allowed && e.partition_keys == ["TX"]),
        "{all:?}"
    );
    let ca = read_lake(
        &stage.clients,
        &LakeQuery {
            tenant: Some("CA"),
            ..lake.clone()
        },
    )
    .await
    .expect("the store answers")
    .expect("a store");
    assert_eq!(ca.len(), 1);

    // A redeploy changes nothing, the store included.
    let (again, report) = deploy(&stage, &app, "dev", &packages()).await;
    assert!(!again.has_changes(), "{again}");
    assert_eq!(report.mutating_calls, 0);
}

#[test]
fn the_deployer_reads_session_names_as_the_functions_write_them() {
    for id in ["TX", "a b/c:d", "x=y+z@w", &"long".repeat(30)] {
        assert_eq!(
            deployer::trail::session_name(id),
            represent::data::session_name(id),
            "{id}"
        );
    }
}
