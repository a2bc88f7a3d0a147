//! Tenant-scoped credentials on the emulator, from the outside with the real SDK clients: STS
//! AssumeRole with a `tenant` session tag, DynamoDB calls refused by the role's policy with
//! IAM's `AccessDeniedException` text, and the audit of the refused cross-tenant attempt.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};

use crate::support::{Stage, emulator, http_get, query_partition};

const ACCOUNT: &str = "000000000000";
const TABLE: &str = "represent-dev-data";

const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn data_trust(exec: &str, actions: &[&str]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:role/{exec}")},
            "Action": actions,
        }]
    })
    .to_string()
}

fn tenant_data_policy() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"],
            "Resource": format!("arn:aws:dynamodb:*:*:table/{TABLE}"),
            "Condition": {"ForAllValues:StringEquals": {
                "dynamodb:LeadingKeys": ["${aws:PrincipalTag/tenant}"]
            }}
        }]
    })
    .to_string()
}

async fn create_role(stage: &Stage, name: &str, trust: &str, policy: Option<String>) -> String {
    let out = stage
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("role is created");
    if let Some(policy) = policy {
        stage
            .iam
            .put_role_policy()
            .role_name(name)
            .policy_name("policy")
            .policy_document(policy)
            .send()
            .await
            .expect("policy is put");
    }
    out.role().expect("role").arn().to_string()
}

/// The table with one item in TX's and one in CA's partition, written with the developer's keys.
async fn seeded_table(stage: &Stage) {
    stage
        .dynamodb
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("tenant")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("record")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("tenant")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("record")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("table is created");
    // The emulator keeps a new table CREATING for a few milliseconds.
    for _ in 0..500 {
        let table = stage
            .dynamodb
            .describe_table()
            .table_name(TABLE)
            .send()
            .await
            .expect("table is described");
        if table
            .table()
            .and_then(|t| t.table_status())
            .map(|s| s.as_str())
            == Some("ACTIVE")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for tenant in ["TX", "CA"] {
        stage
            .dynamodb
            .put_item()
            .table_name(TABLE)
            .item("tenant", AttributeValue::S(tenant.into()))
            .item("record", AttributeValue::S("STATE".into()))
            .item(
                "data",
                AttributeValue::S(format!("{{\"id\":\"{tenant}\"}}")),
            )
            .send()
            .await
            .expect("the developer writes any partition");
    }
}

/// An SDK configuration for the stage's endpoint with the given temporary credentials.
async fn sdk_with(stage: &Stage, creds: &aws_sdk_sts::types::Credentials) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
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
        .await
}

fn denied_message(
    err: aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::query::QueryError>,
) -> String {
    let service = err.into_service_error();
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&service),
        Some("AccessDeniedException"),
        "{service:?}"
    );
    aws_sdk_dynamodb::error::ProvideErrorMetadata::message(&service)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_session_reads_only_its_own_partition_and_the_refusal_is_audited() {
    let stage = emulator().await;
    seeded_table(&stage).await;
    let data_arn = create_role(
        &stage,
        "represent-dev-data-role",
        &data_trust("represent-dev-exec", &["sts:AssumeRole", "sts:TagSession"]),
        Some(tenant_data_policy()),
    )
    .await;
    let exec_policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"],
                       "Resource": data_arn}]
    });
    let exec_arn = create_role(
        &stage,
        "represent-dev-exec",
        LAMBDA_TRUST,
        Some(exec_policy.to_string()),
    )
    .await;
    let admin_sts = aws_sdk_sts::Client::new(&stage.sdk);

    // The execution role's own credentials (here from the developer, who may assume any
    // role) reach no tenant's data.
    let exec = admin_sts
        .assume_role()
        .role_arn(&exec_arn)
        .role_session_name("represent-dev-counties")
        .send()
        .await
        .expect("the developer assumes the execution role");
    let exec_creds = exec.credentials().expect("credentials");
    assert!(exec_creds.access_key_id().starts_with("ASIA"));
    let exec_sdk = sdk_with(&stage, exec_creds).await;
    let exec_ddb = aws_sdk_dynamodb::Client::new(&exec_sdk);
    for tenant in ["TX", "CA"] {
        let message = denied_message(query_partition(&exec_ddb, TABLE, tenant).await.unwrap_err());
        assert_eq!(
            message,
            format!(
                "User: arn:aws:sts::{ACCOUNT}:assumed-role/represent-dev-exec/represent-dev-counties is not authorized to perform: dynamodb:Query on resource: arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TABLE} because no identity-based policy allows the dynamodb:Query action"
            )
        );
    }

    // The execution role assumes the data role for Texas, with the tenant as a session tag.
    let exec_sts = aws_sdk_sts::Client::new(&exec_sdk);
    let who = exec_sts
        .get_caller_identity()
        .send()
        .await
        .expect("who am I");
    assert_eq!(
        who.arn(),
        Some(
            format!(
                "arn:aws:sts::{ACCOUNT}:assumed-role/represent-dev-exec/represent-dev-counties"
            )
            .as_str()
        )
    );
    let tx = exec_sts
        .assume_role()
        .role_arn(&data_arn)
        .role_session_name("TX-env")
        .tags(
            aws_sdk_sts::types::Tag::builder()
                .key("tenant")
                .value("TX")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("the execution role assumes the data role with a tenant tag");
    let tx_ddb =
        aws_sdk_dynamodb::Client::new(&sdk_with(&stage, tx.credentials().expect("creds")).await);
    assert_eq!(
        query_partition(&tx_ddb, TABLE, "TX")
            .await
            .expect("TX reads TX"),
        1
    );
    let message = denied_message(query_partition(&tx_ddb, TABLE, "CA").await.unwrap_err());
    assert_eq!(
        message,
        format!(
            "User: arn:aws:sts::{ACCOUNT}:assumed-role/represent-dev-data-role/TX-env is not authorized to perform: dynamodb:Query on resource: arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{TABLE} because no identity-based policy allows the dynamodb:Query action"
        )
    );
    let get_ca = tx_ddb
        .get_item()
        .table_name(TABLE)
        .key("tenant", AttributeValue::S("CA".into()))
        .key("record", AttributeValue::S("STATE".into()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&get_ca.into_service_error()),
        Some("AccessDeniedException")
    );

    // Without a tag the session has no tenant, so no partition matches.
    let untagged = exec_sts
        .assume_role()
        .role_arn(&data_arn)
        .role_session_name("untagged")
        .send()
        .await
        .expect("assumes without tags");
    let untagged_ddb = aws_sdk_dynamodb::Client::new(
        &sdk_with(&stage, untagged.credentials().expect("creds")).await,
    );
    denied_message(
        query_partition(&untagged_ddb, TABLE, "TX")
            .await
            .unwrap_err(),
    );

    // The audit has the CA attempt, refused, by a session tagged TX.
    let (status, body) = http_get(
        &format!("{}/_emulator/audit?denied=true&tenant=CA", stage.endpoint),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let audit: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let events = audit["events"].as_array().expect("events");
    let attempts: Vec<_> = events
        .iter()
        .filter(|e| e["tenant"] == "TX" && e["partitionKeys"] == serde_json::json!(["CA"]))
        .collect();
    assert_eq!(attempts.len(), 2, "the Query and the GetItem: {body}");
    assert!(attempts.iter().all(|e| e["allowed"] == false));
    assert_eq!(attempts[0]["action"], "dynamodb:Query");
    assert!(
        events.iter().all(|e| e["allowed"] == false),
        "only denied calls: {body}"
    );
    // `cargo xtask audit --denied` reads the same page and flags the attempt as cross-tenant.
    let events: Vec<deployer::cli::audit::AuditEvent> =
        serde_json::from_value(audit["events"].clone()).expect("the command reads the page");
    let flagged: Vec<String> = events
        .iter()
        .filter(|e| e.is_cross_tenant())
        .map(deployer::cli::audit::render)
        .collect();
    assert_eq!(flagged.len(), 2, "{flagged:?}");
    assert!(
        flagged[0].contains("DENIED  tenant=TX")
            && flagged[0].contains("dynamodb:Query represent-dev-data partition=CA")
            && flagged[0].ends_with("CROSS-TENANT ATTEMPT"),
        "{flagged:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_needs_the_trust_policy_and_tag_session() {
    let stage = emulator().await;
    // This data role's trust policy allows AssumeRole but not TagSession.
    let data_arn = create_role(
        &stage,
        "untaggable",
        &data_trust("exec", &["sts:AssumeRole"]),
        Some(tenant_data_policy()),
    )
    .await;
    let stranger_arn = create_role(&stage, "stranger", LAMBDA_TRUST, None).await;
    let exec_policy = serde_json::json!({
        "Statement": [{"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]
    });
    let exec_arn = create_role(&stage, "exec", LAMBDA_TRUST, Some(exec_policy.to_string())).await;
    let admin_sts = aws_sdk_sts::Client::new(&stage.sdk);
    let exec = admin_sts
        .assume_role()
        .role_arn(&exec_arn)
        .role_session_name("fn")
        .send()
        .await
        .expect("the developer assumes any role");
    let exec_sts =
        aws_sdk_sts::Client::new(&sdk_with(&stage, exec.credentials().expect("creds")).await);
    let tagged = exec_sts
        .assume_role()
        .role_arn(&data_arn)
        .role_session_name("TX")
        .tags(
            aws_sdk_sts::types::Tag::builder()
                .key("tenant")
                .value("TX")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        aws_sdk_sts::error::ProvideErrorMetadata::message(&tagged),
        Some(
            format!(
                "User: arn:aws:sts::{ACCOUNT}:assumed-role/exec/fn is not authorized to perform: sts:TagSession on resource: {data_arn}"
            )
            .as_str()
        )
    );
    exec_sts
        .assume_role()
        .role_arn(&data_arn)
        .role_session_name("plain")
        .send()
        .await
        .expect("without tags, AssumeRole alone is needed");
    // A role whose trust policy names only Lambda cannot be assumed by the execution role.
    let refused = exec_sts
        .assume_role()
        .role_arn(&stranger_arn)
        .role_session_name("x1")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        aws_sdk_sts::error::ProvideErrorMetadata::code(&refused),
        Some("AccessDenied")
    );
}
