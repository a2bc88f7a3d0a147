//! Observation against strict SDK mocks: tags decide membership, IAM documents are decoded.

use aws_sdk_iam::Client as Iam;
use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
use aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput;
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput;
use aws_sdk_iam::types::AttachedPolicy;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_lambda::Client as Lambda;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::list_functions::ListFunctionsOutput;
use aws_sdk_lambda::types::FunctionConfiguration;
use aws_smithy_mocks::{Rule, mock};
use deployer::{Role, observe, plan};

use super::support::{
    BASIC, clients_with, deployed, deployed_as, desired, desired_of, no_tables, sdk_configuration,
};

fn listed(name: &str) -> FunctionConfiguration {
    FunctionConfiguration::builder().function_name(name).build()
}

fn no_role() -> Rule {
    mock!(Iam::get_role).then_error(|| {
        GetRoleError::NoSuchEntityException(
            NoSuchEntityException::builder()
                .message("The role cannot be found")
                .build(),
        )
    })
}

#[tokio::test]
async fn only_functions_tagged_with_the_stage_are_observed() {
    let d = desired();
    let ours = deployed(&d, "representatives");
    let ours_conf = sdk_configuration(&ours);
    // `represent-dev-` is a prefix of `represent-dev-2-...`: same prefix, other stage.
    let mut other_stage = deployed_as(&d, "counties", "represent-dev-2-counties");
    other_stage
        .tags
        .insert("deployer:stage".to_string(), "dev-2".to_string());
    let other_conf = sdk_configuration(&other_stage);

    let page1 = mock!(Lambda::list_functions)
        .match_requests(|r| r.marker().is_none())
        .then_output(|| {
            ListFunctionsOutput::builder()
                .functions(listed("represent-dev-representatives"))
                .functions(listed("someone-else"))
                .next_marker("page2")
                .build()
        });
    let page2 = mock!(Lambda::list_functions)
        .match_requests(|r| r.marker() == Some("page2"))
        .then_output(|| {
            ListFunctionsOutput::builder()
                .functions(listed("represent-dev-2-counties"))
                .build()
        });
    let ours_tags = ours.tags.clone();
    let get_ours = mock!(Lambda::get_function)
        .match_requests(|r| r.function_name() == Some("represent-dev-representatives"))
        .then_output(move || {
            GetFunctionOutput::builder()
                .configuration(ours_conf.clone())
                .set_tags(Some(ours_tags.clone().into_iter().collect()))
                .build()
        });
    let other_tags = other_stage.tags.clone();
    let get_other = mock!(Lambda::get_function)
        .match_requests(|r| r.function_name() == Some("represent-dev-2-counties"))
        .then_output(move || {
            GetFunctionOutput::builder()
                .configuration(other_conf.clone())
                .set_tags(Some(other_tags.clone().into_iter().collect()))
                .build()
        });
    let get_role = no_role();
    // No GetFunction rule for `someone-else`: it must not even be read.
    let tables = no_tables();
    let c = clients_with(
        &[&page1, &page2, &get_ours, &get_other],
        &[&get_role],
        &[&tables],
    );

    let actual = observe(&c, "represent", "dev").await.expect("observed");
    assert_eq!(actual.functions, vec![ours]);
    assert_eq!(actual.role, None);
    assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
    assert_eq!((get_ours.num_calls(), get_other.num_calls()), (1, 1));
}

#[tokio::test]
async fn role_policy_documents_are_url_decoded() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}]}"#;
    // What IAM sends: the document percent-encoded, spaces included.
    let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22dynamodb%3AGetItem%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
    let list = mock!(Lambda::list_functions).then_output(|| ListFunctionsOutput::builder().build());
    let get_role = mock!(Iam::get_role)
        .match_requests(|r| r.role_name() == Some("represent-dev-exec"))
        .then_output(|| {
            GetRoleOutput::builder()
                .role(super::support::iam_role())
                .build()
        });
    let attached = mock!(Iam::list_attached_role_policies).then_output(|| {
        ListAttachedRolePoliciesOutput::builder()
            .attached_policies(
                AttachedPolicy::builder()
                    .policy_name("AWSLambdaBasicExecutionRole")
                    .policy_arn(BASIC)
                    .build(),
            )
            .build()
    });
    let inline = mock!(Iam::list_role_policies).then_output(|| {
        ListRolePoliciesOutput::builder()
            .policy_names("tables")
            .build()
            .expect("policy names set")
    });
    let get_policy = mock!(Iam::get_role_policy)
        .match_requests(|r| r.policy_name() == Some("tables"))
        .then_output(move || {
            GetRolePolicyOutput::builder()
                .role_name("represent-dev-exec")
                .policy_name("tables")
                .policy_document(encoded)
                .build()
                .expect("fields set")
        });
    let tables = no_tables();
    let c = clients_with(
        &[&list],
        &[&get_role, &attached, &inline, &get_policy],
        &[&tables],
    );

    let actual = observe(&c, "represent", "dev").await.expect("observed");
    let role = actual.role.clone().expect("role exists");
    assert_eq!(role.arn, super::support::ROLE_ARN);
    assert_eq!(role.managed_policies, vec![BASIC.to_string()]);
    assert_eq!(
        role.inline_policies.get("tables").map(String::as_str),
        Some(doc)
    );

    // The decoded document equals the stack's, so the role needs no update.
    let app = super::support::app().role(Role::lambda_basic().inline_policy("tables", doc));
    let d = desired_of(&app, "v1");
    let p = plan(&d, &actual);
    assert_eq!(p.changes[0].action, deployer::Action::NoOp, "{p}");
}
