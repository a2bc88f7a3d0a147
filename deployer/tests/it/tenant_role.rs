//! Tenant-scoped functions' roles against strict SDK mocks: created before the function that
//! runs as them, unchanged when IAM has them as desired, and rewritten when their policy or
//! trust drifted.

use aws_sdk_iam::Client as Iam;
use aws_sdk_iam::operation::attach_role_policy::AttachRolePolicyOutput;
use aws_sdk_iam::operation::create_role::CreateRoleOutput;
use aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput;
use aws_sdk_iam::operation::update_assume_role_policy::UpdateAssumeRolePolicyOutput;
use aws_sdk_lambda::Client as Lambda;
use aws_sdk_lambda::operation::create_function::CreateFunctionOutput;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::types::{LastUpdateStatus, State};
use aws_smithy_mocks::{Rule, mock};
use deployer::tenant_role::{self, ActualTenantRole};
use deployer::{Action, Actual, App, Desired, Function, Stage, Table, apply, plan};

use super::support::{ACCOUNT, BASIC, clients, deployed, desired_of, fast, status, up_to_date};

const FUNCTION: &str = "represent-dev-counties";
const EXEC: &str = "represent-dev-counties-exec";
const DATA: &str = "represent-dev-counties-data";

fn exec_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/represent/dev/{EXEC}")
}

fn data_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/represent/dev/{DATA}")
}

fn scoped() -> (App, Desired) {
    let app = App::new("represent")
        .table(Table::new("data"))
        .function(
            Function::new("counties")
                .per_tenant()
                .tenant_scoped()
                .reads_table("data", "TABLE_NAME"),
        )
        .stage(Stage::aws("dev").region("us-east-1").unmanaged_log_groups());
    let d = desired_of(&app, "v1");
    (app, d)
}

/// The two roles as IAM would report them after a deploy of `d`.
fn deployed_roles(d: &Desired) -> Vec<ActualTenantRole> {
    d.tenant_roles
        .iter()
        .map(|r| ActualTenantRole {
            name: r.name.clone(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role{}{}", r.path, r.name),
            trust_policy: match r.kind {
                tenant_role::TenantRoleKind::Execution => {
                    deployer::apply::LAMBDA_TRUST_POLICY.to_string()
                }
                tenant_role::TenantRoleKind::Data => tenant_role::data_trust_policy(&exec_arn()),
            },
            managed_policies: r.managed_policies.clone(),
            inline_policies: r.inline_policies.clone(),
            tags: r.tags.clone(),
        })
        .collect()
}

fn settled() -> Rule {
    mock!(Lambda::get_function).then_output(|| {
        GetFunctionOutput::builder()
            .configuration(status("any", State::Active, LastUpdateStatus::Successful))
            .build()
    })
}

fn role_out(name: &str, arn: String) -> CreateRoleOutput {
    CreateRoleOutput::builder()
        .role(
            aws_sdk_iam::types::Role::builder()
                .path("/represent/dev/")
                .role_name(name)
                .role_id("AROAEXAMPLE")
                .arn(arn)
                .create_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .expect("role"),
        )
        .build()
}

#[tokio::test]
async fn a_tenant_scoped_function_gets_both_roles_before_it_is_created() {
    let (_, d) = scoped();
    let mut actual = up_to_date(&d);
    actual.functions.clear();

    let create_exec = mock!(Iam::create_role)
        .match_requests(|r| {
            r.role_name() == Some(EXEC)
                && r.path() == Some("/represent/dev/")
                && r.assume_role_policy_document()
                    .is_some_and(|p| p.contains("lambda.amazonaws.com"))
                && r.tags()
                    .iter()
                    .any(|t| t.key() == "deployer:logical-id" && t.value() == "counties")
        })
        .then_output(|| role_out(EXEC, exec_arn()));
    let create_data = mock!(Iam::create_role)
        .match_requests(|r| {
            r.role_name() == Some(DATA)
                && r.assume_role_policy_document()
                    .is_some_and(|p| p.contains(&exec_arn()) && p.contains("sts:TagSession"))
        })
        .then_output(|| role_out(DATA, data_arn()));
    let attach = mock!(Iam::attach_role_policy)
        .match_requests(|r| r.role_name() == Some(EXEC) && r.policy_arn() == Some(BASIC))
        .then_output(|| AttachRolePolicyOutput::builder().build());
    let put_assume = mock!(Iam::put_role_policy)
        .match_requests(|r| {
            r.role_name() == Some(EXEC)
                && r.policy_name() == Some("assume-tenant-data")
                && r.policy_document().is_some_and(|p| {
                    p.contains("sts:AssumeRole")
                        && p.contains(&format!("role/represent/dev/{DATA}"))
                })
        })
        .then_output(|| PutRolePolicyOutput::builder().build());
    let put_data = mock!(Iam::put_role_policy)
        .match_requests(|r| {
            r.role_name() == Some(DATA)
                && r.policy_name() == Some("tenant-data")
                && r.policy_document().is_some_and(|p| {
                    p.contains("dynamodb:LeadingKeys")
                        && p.contains("${aws:PrincipalTag/tenant}")
                        && p.contains("table/represent-dev-data")
                        && !p.contains("dynamodb:Scan")
                        && !p.contains("dynamodb:PutItem")
                })
        })
        .then_output(|| PutRolePolicyOutput::builder().build());
    let create_function = mock!(Lambda::create_function)
        .match_requests(|r| {
            r.function_name() == Some(FUNCTION)
                && r.role() == Some(exec_arn().as_str())
                && r.environment()
                    .and_then(|e| e.variables())
                    .and_then(|v| v.get("TENANT_DATA_ROLE"))
                    .map(String::as_str)
                    == Some("/represent/dev/represent-dev-counties-data")
        })
        .then_output(|| {
            CreateFunctionOutput::builder()
                .function_name(FUNCTION)
                .build()
        });
    let get = settled();
    let c = clients(
        &[&create_function, &get],
        &[&create_exec, &create_data, &attach, &put_assume, &put_data],
    );

    let p = plan(&d, &actual);
    let role_actions: Vec<(String, Action)> = p
        .changes
        .iter()
        .filter(|c| c.resource.starts_with("tenant role"))
        .map(|c| (c.name.clone(), c.action))
        .collect();
    assert_eq!(
        role_actions,
        vec![
            (EXEC.to_string(), Action::Create),
            (DATA.to_string(), Action::Create)
        ]
    );
    // The data role waits for the role it trusts; the function waits for both.
    let nodes = deployer::apply::graph(&p);
    let index = |label: &str| {
        nodes
            .iter()
            .position(|n| n.step.label(&p) == label)
            .unwrap_or_else(|| panic!("no step {label}"))
    };
    let (exec, data, function) = (
        index(&format!("tenant role {EXEC}")),
        index(&format!("tenant role {DATA}")),
        index(&format!("function {FUNCTION}")),
    );
    assert!(nodes[data].depends_on.contains(&exec));
    assert!(nodes[function].depends_on.contains(&exec));
    assert!(nodes[function].depends_on.contains(&data));

    apply(&c, &p, &fast(), &|_: &str| {})
        .await
        .expect("apply succeeds");
    for rule in [&create_exec, &create_data, &attach, &put_assume, &put_data] {
        assert_eq!(rule.num_calls(), 1);
    }
    assert_eq!(create_function.num_calls(), 1);
}

fn deployed_scoped(d: &Desired) -> Actual {
    let mut actual = up_to_date(d);
    let mut function = deployed(d, "counties");
    function.role_arn = exec_arn();
    actual.functions = vec![function];
    actual.tenant_roles = deployed_roles(d);
    actual
}

#[tokio::test]
async fn roles_as_desired_are_left_alone() {
    let (_, d) = scoped();
    let p = plan(&d, &deployed_scoped(&d));
    assert!(!p.has_changes(), "{p}");
    // Strict mocks with no rule: any call would fail the apply.
    let c = clients(&[], &[]);
    apply(&c, &p, &fast(), &|_: &str| {})
        .await
        .expect("nothing to do");
}

#[tokio::test]
async fn a_widened_data_policy_and_a_changed_trust_are_put_back() {
    let (_, d) = scoped();
    let mut actual = deployed_scoped(&d);
    let data = actual
        .tenant_roles
        .iter_mut()
        .find(|r| r.name == DATA)
        .expect("data role");
    // Someone removed the tenant condition and let another role in.
    data.inline_policies.insert(
        "tenant-data".to_string(),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:Query","Resource":"*"}]}"#.to_string(),
    );
    data.trust_policy =
        tenant_role::data_trust_policy(&format!("arn:aws:iam::{ACCOUNT}:role/somebody-else"));

    let put = mock!(Iam::put_role_policy)
        .match_requests(|r| {
            r.role_name() == Some(DATA)
                && r.policy_name() == Some("tenant-data")
                && r.policy_document()
                    .is_some_and(|p| p.contains("dynamodb:LeadingKeys"))
        })
        .then_output(|| PutRolePolicyOutput::builder().build());
    let trust = mock!(Iam::update_assume_role_policy)
        .match_requests(|r| {
            r.role_name() == Some(DATA)
                && r.policy_document().is_some_and(|p| p.contains(&exec_arn()))
        })
        .then_output(|| UpdateAssumeRolePolicyOutput::builder().build());
    let c = clients(&[], &[&put, &trust]);

    let p = plan(&d, &actual);
    let changed: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    assert_eq!(changed.len(), 1, "{p}");
    assert_eq!(changed[0].name, DATA);
    assert_eq!(changed[0].action, Action::Update);
    assert_eq!(
        changed[0].details,
        vec![
            "update trust policy".to_string(),
            "put inline policy tenant-data".to_string()
        ]
    );
    apply(&c, &p, &fast(), &|_: &str| {})
        .await
        .expect("apply succeeds");
    assert_eq!((put.num_calls(), trust.num_calls()), (1, 1));
}

#[test]
fn tenant_scoped_needs_per_tenant_and_a_table() {
    let app = App::new("represent")
        .function(Function::new("counties").tenant_scoped())
        .stage(Stage::aws("dev"));
    let errors = deployer::validate(&app, "dev").unwrap_err().to_string();
    assert!(
        errors.contains("tenant_scoped needs per-tenant isolation"),
        "{errors}"
    );
    assert!(
        errors.contains("tenant_scoped needs a table to scope"),
        "{errors}"
    );
}
