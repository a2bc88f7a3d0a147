//! IAM over the Query protocol: role lifecycle, tags, policies and IAM's errors, as the IAM SDK
//! client sees them.

use aws_sdk_iam::error::ProvideErrorMetadata as _;
use aws_sdk_iam::types::Tag;

use crate::support::{self, LAMBDA_TRUST_POLICY};

fn url_decode(encoded: &str) -> String {
    form_urlencoded::parse(format!("x={encoded}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn role_lifecycle_round_trips_and_deletes_only_when_empty() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);

    let created = iam
        .create_role()
        .role_name("represent-dev-exec")
        .path("/service/")
        .description("Represent <dev> & friends")
        .assume_role_policy_document(LAMBDA_TRUST_POLICY)
        .tags(
            Tag::builder()
                .key("deployer:app")
                .value("represent")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateRole");
    let role = created.role().expect("role");
    assert_eq!(
        role.arn(),
        "arn:aws:iam::000000000000:role/service/represent-dev-exec"
    );
    assert!(role.role_id().starts_with("AROA"));
    assert_eq!(role.path(), "/service/");

    let fetched = iam
        .get_role()
        .role_name("represent-dev-exec")
        .send()
        .await
        .expect("GetRole");
    let role = fetched.role().expect("role");
    assert_eq!(role.description(), Some("Represent <dev> & friends"));
    let document = role.assume_role_policy_document().expect("trust policy");
    assert_ne!(
        document, LAMBDA_TRUST_POLICY,
        "IAM returns documents URL-encoded"
    );
    assert_eq!(url_decode(document), LAMBDA_TRUST_POLICY);
    assert_eq!(role.tags().len(), 1);

    iam.tag_role()
        .role_name("represent-dev-exec")
        .tags(
            Tag::builder()
                .key("deployer:stage")
                .value("dev")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("TagRole");
    let tags = iam
        .list_role_tags()
        .role_name("represent-dev-exec")
        .send()
        .await
        .expect("ListRoleTags");
    let keys: Vec<&str> = tags.tags().iter().map(|t| t.key()).collect();
    assert_eq!(keys, ["deployer:app", "deployer:stage"]);

    let basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
    iam.attach_role_policy()
        .role_name("represent-dev-exec")
        .policy_arn(basic)
        .send()
        .await
        .expect("AttachRolePolicy");
    let attached = iam
        .list_attached_role_policies()
        .role_name("represent-dev-exec")
        .send()
        .await
        .expect("ListAttachedRolePolicies");
    assert_eq!(attached.attached_policies().len(), 1);
    assert_eq!(attached.attached_policies()[0].policy_arn(), Some(basic));
    assert_eq!(
        attached.attached_policies()[0].policy_name(),
        Some("AWSLambdaBasicExecutionRole")
    );

    let inline = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}]}"#;
    iam.put_role_policy()
        .role_name("represent-dev-exec")
        .policy_name("tables")
        .policy_document(inline)
        .send()
        .await
        .expect("PutRolePolicy");

    let conflict = iam
        .delete_role()
        .role_name("represent-dev-exec")
        .send()
        .await
        .expect_err("a role with attached policies cannot be deleted")
        .into_service_error();
    assert!(conflict.is_delete_conflict_exception(), "{conflict:?}");

    iam.detach_role_policy()
        .role_name("represent-dev-exec")
        .policy_arn(basic)
        .send()
        .await
        .expect("DetachRolePolicy");
    let conflict = iam
        .delete_role()
        .role_name("represent-dev-exec")
        .send()
        .await
        .expect_err("a role with inline policies cannot be deleted")
        .into_service_error();
    assert!(conflict.is_delete_conflict_exception(), "{conflict:?}");

    let names = iam
        .list_role_policies()
        .role_name("represent-dev-exec")
        .send()
        .await
        .expect("ListRolePolicies");
    assert_eq!(names.policy_names(), ["tables"]);
    iam.delete_role_policy()
        .role_name("represent-dev-exec")
        .policy_name("tables")
        .send()
        .await
        .expect("DeleteRolePolicy");
    iam.delete_role()
        .role_name("represent-dev-exec")
        .send()
        .await
        .expect("DeleteRole");

    let missing = iam
        .get_role()
        .role_name("represent-dev-exec")
        .send()
        .await
        .expect_err("the role is gone")
        .into_service_error();
    assert!(missing.is_no_such_entity_exception(), "{missing:?}");
    assert_eq!(
        missing.message(),
        Some("The role with name represent-dev-exec cannot be found.")
    );
}

#[tokio::test]
async fn creating_an_existing_role_is_entity_already_exists() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    support::create_named_role(&iam, "twice").await;
    let error = iam
        .create_role()
        .role_name("twice")
        .assume_role_policy_document(LAMBDA_TRUST_POLICY)
        .send()
        .await
        .expect_err("the name is taken")
        .into_service_error();
    assert!(error.is_entity_already_exists_exception(), "{error:?}");
}

#[tokio::test]
async fn inline_policy_documents_come_back_url_encoded_and_intact() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    support::create_named_role(&iam, "docs").await;
    let document = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "arn:aws:logs:*:*:log-group:/aws/lambda/a+b?c=d&e"}]}"#;
    iam.put_role_policy()
        .role_name("docs")
        .policy_name("logs")
        .policy_document(document)
        .send()
        .await
        .expect("PutRolePolicy");
    let fetched = iam
        .get_role_policy()
        .role_name("docs")
        .policy_name("logs")
        .send()
        .await
        .expect("GetRolePolicy");
    assert!(fetched.policy_document().starts_with("%7B%22Version%22"));
    assert_eq!(url_decode(fetched.policy_document()), document);

    let missing = iam
        .get_role_policy()
        .role_name("docs")
        .policy_name("nope")
        .send()
        .await
        .expect_err("no such inline policy")
        .into_service_error();
    assert!(missing.is_no_such_entity_exception(), "{missing:?}");
}

#[tokio::test]
async fn malformed_documents_and_names_are_rejected() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let malformed = iam
        .create_role()
        .role_name("bad-doc")
        .assume_role_policy_document("{not json")
        .send()
        .await
        .expect_err("invalid JSON")
        .into_service_error();
    assert!(
        malformed.is_malformed_policy_document_exception(),
        "{malformed:?}"
    );

    let invalid = iam
        .create_role()
        .role_name("no spaces allowed")
        .assume_role_policy_document(LAMBDA_TRUST_POLICY)
        .send()
        .await
        .expect_err("invalid role name")
        .into_service_error();
    assert_eq!(invalid.code(), Some("ValidationError"), "{invalid:?}");

    let missing = iam
        .delete_role()
        .role_name("never-created")
        .send()
        .await
        .expect_err("no such role")
        .into_service_error();
    assert!(missing.is_no_such_entity_exception(), "{missing:?}");
}
