//! Apply against strict SDK mocks on the real client types: every call is expected, counted
//! and checked.

use aws_sdk_iam::Client as Iam;
use aws_sdk_iam::operation::attach_role_policy::AttachRolePolicyOutput;
use aws_sdk_iam::operation::create_role::CreateRoleOutput;
use aws_sdk_iam::operation::delete_role::DeleteRoleOutput;
use aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyOutput;
use aws_sdk_iam::operation::detach_role_policy::DetachRolePolicyOutput;
use aws_sdk_lambda::Client as Lambda;
use aws_sdk_lambda::operation::create_function::{CreateFunctionError, CreateFunctionOutput};
use aws_sdk_lambda::operation::delete_function::{DeleteFunctionError, DeleteFunctionOutput};
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::update_function_code::{
    UpdateFunctionCodeError, UpdateFunctionCodeOutput,
};
use aws_sdk_lambda::operation::update_function_configuration::UpdateFunctionConfigurationOutput;
use aws_sdk_lambda::types::error::{
    InvalidParameterValueException, ResourceConflictException, ResourceNotFoundException,
    TooManyRequestsException,
};
use aws_sdk_lambda::types::{
    Architecture as SdkArchitecture, LastUpdateStatus, LogFormat as SdkLogFormat, State,
    TenantIsolationMode,
};
use aws_smithy_mocks::{Rule, mock};
use deployer::{
    Action, Actual, App, DeployError, Desired, Function, Stage, Tenancy, apply, destroy, plan,
    plan_destroy,
};

use super::support::{
    BASIC, Progress, ROLE_ARN, clients, deployed, desired, desired_of, fast, iam_role, status,
    up_to_date,
};
use super::transcript::transcribed;

const REPS: &str = "represent-dev-representatives";
const COUNTIES: &str = "represent-dev-counties";
const PROPAGATION: &str = "The role defined for the function cannot be assumed by Lambda.";

/// GetFunction for the waiters: the function is active and its last update succeeded.
fn settled() -> Rule {
    mock!(Lambda::get_function).then_output(|| {
        GetFunctionOutput::builder()
            .configuration(status("any", State::Active, LastUpdateStatus::Successful))
            .build()
    })
}

fn create_role_ok() -> Rule {
    mock!(Iam::create_role)
        .match_requests(|r| {
            r.role_name() == Some("represent-dev-exec")
                && r.assume_role_policy_document()
                    .is_some_and(|d| d.contains("lambda.amazonaws.com"))
                && r.tags()
                    .iter()
                    .any(|t| t.key() == "deployer:stage" && t.value() == "dev")
        })
        .then_output(|| CreateRoleOutput::builder().role(iam_role()).build())
}

fn attach_basic() -> Rule {
    mock!(Iam::attach_role_policy)
        .match_requests(|r| {
            r.role_name() == Some("represent-dev-exec") && r.policy_arn() == Some(BASIC)
        })
        .then_output(|| AttachRolePolicyOutput::builder().build())
}

async fn run(
    clients: &deployer::Clients,
    d: &Desired,
    actual: &Actual,
) -> Result<deployer::ApplyReport, deployer::ApplyFailure> {
    let p = plan(d, actual);
    apply(clients, &p, &fast(), &|_: &str| {}).await
}

/// A stack with one shared function, for the scenarios about a single function.
fn single() -> (App, Desired) {
    let app = App::new("represent")
        .function(Function::new("counties"))
        .stage(Stage::aws("dev").unmanaged_log_groups());
    let d = desired_of(&app, "v1");
    (app, d)
}

#[tokio::test]
async fn fresh_deploy_creates_role_then_functions() {
    let d = desired();
    let create_role = create_role_ok();
    let attach = attach_basic();
    let create_isolated = mock!(Lambda::create_function)
        .match_requests(|r| {
            r.function_name() == Some(REPS)
                && r.role() == Some(ROLE_ARN)
                && r.tenancy_config().map(|t| t.tenant_isolation_mode())
                    == Some(&TenantIsolationMode::PerTenant)
                && r.memory_size() == Some(256)
                && r.timeout() == Some(10)
                && r.runtime().map(|r| r.as_str()) == Some("provided.al2023")
                && r.handler() == Some("bootstrap")
                && r.architectures() == [SdkArchitecture::Arm64]
                && r.logging_config().and_then(|l| l.log_format()) == Some(&SdkLogFormat::Json)
                && r.environment()
                    .and_then(|e| e.variables())
                    .and_then(|v| v.get("TABLE"))
                    .map(String::as_str)
                    == Some("reps")
                && r.tags()
                    .and_then(|t| t.get("deployer:logical-id"))
                    .map(String::as_str)
                    == Some("representatives")
                && r.code().and_then(|c| c.zip_file()).is_some()
        })
        .then_output(|| CreateFunctionOutput::builder().function_name(REPS).build());
    let create_shared = mock!(Lambda::create_function)
        .match_requests(|r| r.function_name() == Some(COUNTIES) && r.tenancy_config().is_none())
        .then_output(|| {
            CreateFunctionOutput::builder()
                .function_name(COUNTIES)
                .build()
        });
    let get = settled();
    let (c, calls) = transcribed(clients(
        &[&create_isolated, &create_shared, &get],
        &[&create_role, &attach],
    ));

    let p = plan(&d, &Actual::default());
    let report = apply(&c, &p, &fast(), &|_: &str| {})
        .await
        .expect("deployed");

    assert_eq!(create_role.num_calls(), 1);
    assert_eq!(attach.num_calls(), 1);
    assert_eq!(create_isolated.num_calls(), 1);
    assert_eq!(create_shared.num_calls(), 1);
    assert_eq!(get.num_calls(), 2, "one wait for each new function");
    assert_eq!(report.mutating_calls, 4);
    assert_eq!(report.changes.len(), 3);
    let role_ready = calls
        .last_answered("IAM AttachRolePolicy represent-dev-exec")
        .expect("the policy is attached");
    for function in [REPS, COUNTIES] {
        let created = calls
            .sent(&format!("Lambda CreateFunction {function}"))
            .expect("the function is created");
        assert!(role_ready < created, "{:#?}", calls.events());
    }
    assert_eq!(
        calls.mutating()[..2],
        [
            "IAM CreateRole represent-dev-exec".to_string(),
            format!("IAM AttachRolePolicy represent-dev-exec {BASIC}"),
        ]
    );
}

#[tokio::test]
async fn unchanged_code_is_not_uploaded_and_redeploy_makes_no_call() {
    let d = desired();
    // No rules at all: any call, mutating or not, fails the test.
    let c = clients(&[], &[]);
    let report = run(&c, &d, &up_to_date(&d)).await.expect("nothing to do");
    assert_eq!(report.mutating_calls, 0);
    assert!(report.changes.is_empty());
}

#[tokio::test]
async fn code_change_updates_code_only() {
    let old = desired();
    let new = desired_of(&super::support::app(), "v2");
    let mut actual = up_to_date(&new);
    actual.functions[0] = deployed(&old, "representatives");
    let new_zip = new.functions[0].code.clone();

    let update_code = mock!(Lambda::update_function_code)
        .match_requests(move |r| {
            r.function_name() == Some(REPS)
                && r.zip_file().map(|z| z.as_ref()) == Some(new_zip.as_slice())
                && r.architectures() == [SdkArchitecture::Arm64]
        })
        .then_output(|| UpdateFunctionCodeOutput::builder().build());
    let get = settled();
    // No UpdateFunctionConfiguration rule: calling it would fail the test.
    let c = clients(&[&update_code, &get], &[]);
    let report = run(&c, &new, &actual).await.expect("deployed");
    assert_eq!(update_code.num_calls(), 1);
    assert_eq!(get.num_calls(), 1);
    assert_eq!(report.mutating_calls, 1);
}

#[tokio::test]
async fn configuration_change_updates_configuration_only() {
    let d = desired();
    let mut actual = up_to_date(&d);
    actual.functions[1].memory_mb = 1024;
    let update_config = mock!(Lambda::update_function_configuration)
        .match_requests(|r| {
            r.function_name() == Some(COUNTIES)
                && r.memory_size() == Some(128)
                && r.role() == Some(ROLE_ARN)
                && r.logging_config().and_then(|l| l.log_format()) == Some(&SdkLogFormat::Json)
        })
        .then_output(|| UpdateFunctionConfigurationOutput::builder().build());
    let get = settled();
    let c = clients(&[&update_config, &get], &[]);
    let report = run(&c, &d, &actual).await.expect("deployed");
    assert_eq!(update_config.num_calls(), 1);
    assert_eq!(report.mutating_calls, 1);
}

#[tokio::test]
async fn tenancy_change_replaces_function() {
    let d = desired();
    let mut actual = up_to_date(&d);
    actual.functions[0].tenancy = Tenancy::Shared;
    let create_new = mock!(Lambda::create_function)
        .match_requests(|r| {
            r.function_name() == Some("represent-dev-representatives-r")
                && r.tenancy_config().map(|t| t.tenant_isolation_mode())
                    == Some(&TenantIsolationMode::PerTenant)
        })
        .then_output(|| CreateFunctionOutput::builder().build());
    let wait_active = mock!(Lambda::get_function)
        .match_requests(|r| r.function_name() == Some("represent-dev-representatives-r"))
        .then_output(|| {
            GetFunctionOutput::builder()
                .configuration(status("r", State::Active, LastUpdateStatus::Successful))
                .build()
        });
    let delete_old = mock!(Lambda::delete_function)
        .match_requests(|r| r.function_name() == Some(REPS))
        .then_output(|| DeleteFunctionOutput::builder().build());
    // Strict: no update rule, so TenancyConfig can never travel on an update.
    let (c, calls) = transcribed(clients(&[&create_new, &wait_active, &delete_old], &[]));
    let p = plan(&d, &actual);
    let progress = Progress::default();
    let report = apply(&c, &p, &fast(), &|l: &str| progress.log(l))
        .await
        .expect("replaced");
    assert_eq!(create_new.num_calls(), 1);
    assert_eq!(wait_active.num_calls(), 1);
    assert_eq!(delete_old.num_calls(), 1);
    assert_eq!(report.mutating_calls, 2);
    assert_eq!(
        calls.calls(),
        [
            "Lambda CreateFunction represent-dev-representatives-r tenancy=PER_TENANT",
            "Lambda GetFunction represent-dev-representatives-r",
            "Lambda DeleteFunction represent-dev-representatives",
        ],
        "the old function is deleted once the new one is active"
    );
    let told = progress.lines();
    for step in [
        "creating function represent-dev-representatives-r",
        "deleting function represent-dev-representatives,",
    ] {
        assert!(
            told.iter().any(|l| l.starts_with(step)),
            "the user is told `{step}…`: {told:#?}"
        );
    }
}

#[tokio::test]
async fn new_role_is_retried_until_lambda_can_assume_it() {
    let (_, d) = single();
    let create_role = create_role_ok();
    let attach = attach_basic();
    let create = mock!(Lambda::create_function)
        .sequence()
        .error(|| {
            CreateFunctionError::InvalidParameterValueException(
                InvalidParameterValueException::builder()
                    .message(PROPAGATION)
                    .build(),
            )
        })
        .times(2)
        .output(|| CreateFunctionOutput::builder().build())
        .build();
    let get = settled();
    let c = clients(&[&create, &get], &[&create_role, &attach]);
    let report = run(&c, &d, &Actual::default()).await.expect("deployed");
    assert_eq!(create.num_calls(), 3);
    assert_eq!(
        report.mutating_calls, 5,
        "role, policy, three CreateFunction attempts"
    );
}

#[tokio::test]
async fn propagation_error_is_not_retried_for_an_existing_role() {
    let (_, d) = single();
    let actual = Actual {
        role: up_to_date(&d).role,
        ..Actual::default()
    };
    let create = mock!(Lambda::create_function).then_error(|| {
        CreateFunctionError::InvalidParameterValueException(
            InvalidParameterValueException::builder()
                .message(PROPAGATION)
                .build(),
        )
    });
    let c = clients(&[&create], &[]);
    let err = run(&c, &d, &actual).await.expect_err("a real error");
    assert_eq!(create.num_calls(), 1);
    let msg = err.to_string();
    assert!(
        msg.contains("CreateFunction failed for function represent-dev-counties"),
        "{msg}"
    );
    assert!(msg.contains("cannot be assumed"), "{msg}");
}

#[tokio::test]
async fn conflict_and_throttling_are_retried() {
    let (app, d1) = single();
    let d2 = desired_of(&app, "v2");
    let actual = up_to_date(&d1);
    let update_code = mock!(Lambda::update_function_code)
        .sequence()
        .error(|| {
            UpdateFunctionCodeError::ResourceConflictException(
                ResourceConflictException::builder()
                    .message("The operation cannot be performed at this time. An update is in progress for resource: represent-dev-counties")
                    .build(),
            )
        })
        .error(|| {
            UpdateFunctionCodeError::TooManyRequestsException(
                TooManyRequestsException::builder().message("Rate exceeded").build(),
            )
        })
        .output(|| UpdateFunctionCodeOutput::builder().build())
        .build();
    let get = settled();
    let (c, calls) = transcribed(clients(&[&update_code, &get], &[]));
    let report = run(&c, &d2, &actual).await.expect("deployed");
    assert_eq!(update_code.num_calls(), 3);
    assert_eq!(report.mutating_calls, 3);
    assert_eq!(
        calls.calls(),
        [
            "Lambda UpdateFunctionCode represent-dev-counties",
            "Lambda UpdateFunctionCode represent-dev-counties",
            "Lambda UpdateFunctionCode represent-dev-counties",
            "Lambda GetFunction represent-dev-counties",
        ],
        "the SDK's retry sends the same call again, then the update is waited for"
    );
}

#[tokio::test]
async fn waiter_polls_until_pending_becomes_active() {
    let (_, d) = single();
    let actual = Actual {
        role: up_to_date(&d).role,
        ..Actual::default()
    };
    let create =
        mock!(Lambda::create_function).then_output(|| CreateFunctionOutput::builder().build());
    let get = mock!(Lambda::get_function)
        .sequence()
        .output(|| {
            GetFunctionOutput::builder()
                .configuration(status(
                    COUNTIES,
                    State::Pending,
                    LastUpdateStatus::InProgress,
                ))
                .build()
        })
        .times(2)
        .output(|| {
            GetFunctionOutput::builder()
                .configuration(status(
                    COUNTIES,
                    State::Active,
                    LastUpdateStatus::Successful,
                ))
                .build()
        })
        .build();
    let c = clients(&[&create, &get], &[]);
    run(&c, &d, &actual).await.expect("deployed");
    assert_eq!(get.num_calls(), 3);
}

#[tokio::test]
async fn failed_update_reports_the_reason() {
    let (app, d1) = single();
    let d2 = desired_of(&app, "v2");
    let update_code = mock!(Lambda::update_function_code)
        .then_output(|| UpdateFunctionCodeOutput::builder().build());
    let get = mock!(Lambda::get_function).then_output(|| {
        let mut conf = status(COUNTIES, State::Active, LastUpdateStatus::Failed);
        conf.last_update_status_reason = Some("bootstrap is not executable".to_string());
        GetFunctionOutput::builder().configuration(conf).build()
    });
    let c = clients(&[&update_code, &get], &[]);
    let err = run(&c, &d2, &up_to_date(&d1))
        .await
        .expect_err("failed update");
    let msg = err.to_string();
    assert!(
        msg.contains("function represent-dev-counties")
            && msg.contains("bootstrap is not executable"),
        "{msg}"
    );
}

#[tokio::test]
async fn interrupted_create_converges_by_updating() {
    let (_, d) = single();
    let actual = Actual {
        role: up_to_date(&d).role,
        ..Actual::default()
    };
    let create = mock!(Lambda::create_function).then_error(|| {
        CreateFunctionError::ResourceConflictException(
            ResourceConflictException::builder()
                .message("Function already exist: represent-dev-counties")
                .build(),
        )
    });
    let update_code = mock!(Lambda::update_function_code)
        .then_output(|| UpdateFunctionCodeOutput::builder().build());
    let update_config = mock!(Lambda::update_function_configuration)
        .then_output(|| UpdateFunctionConfigurationOutput::builder().build());
    let get = settled();
    let c = clients(&[&create, &update_code, &update_config, &get], &[]);
    run(&c, &d, &actual).await.expect("converged");
    assert_eq!(create.num_calls(), 1, "already exists is not retried");
    assert_eq!(update_code.num_calls(), 1);
    assert_eq!(update_config.num_calls(), 1);
}

#[tokio::test]
async fn functions_no_longer_in_the_stack_are_pruned() {
    let d = desired();
    let mut actual = up_to_date(&d);
    let mut old = deployed(&d, "counties");
    old.name = "represent-dev-old".to_string();
    old.logical = Some("old".to_string());
    actual.functions.push(old);
    // Already gone by the time apply runs: deleting still converges.
    let delete = mock!(Lambda::delete_function)
        .match_requests(|r| r.function_name() == Some("represent-dev-old"))
        .then_error(|| {
            DeleteFunctionError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("Function not found")
                    .build(),
            )
        });
    let c = clients(&[&delete], &[]);
    let report = run(&c, &d, &actual).await.expect("pruned");
    assert_eq!(delete.num_calls(), 1);
    assert_eq!(report.changes.len(), 1);
    assert_eq!(report.changes[0].action, Action::Delete);
}

#[tokio::test]
async fn destroy_deletes_functions_then_role() {
    let d = desired();
    let mut actual = up_to_date(&d);
    if let Some(role) = actual.role.as_mut() {
        role.inline_policies
            .insert("tables".to_string(), "{}".to_string());
    }
    let delete_fn = mock!(Lambda::delete_function)
        .match_requests(|r| matches!(r.function_name(), Some(REPS) | Some(COUNTIES)))
        .then_output(|| DeleteFunctionOutput::builder().build());
    let detach = mock!(Iam::detach_role_policy)
        .match_requests(|r| r.policy_arn() == Some(BASIC))
        .then_output(|| DetachRolePolicyOutput::builder().build());
    let delete_inline = mock!(Iam::delete_role_policy)
        .match_requests(|r| r.policy_name() == Some("tables"))
        .then_output(|| DeleteRolePolicyOutput::builder().build());
    let delete_role = mock!(Iam::delete_role)
        .match_requests(|r| r.role_name() == Some("represent-dev-exec"))
        .then_output(|| DeleteRoleOutput::builder().build());
    let (c, calls) = transcribed(clients(
        &[&delete_fn],
        &[&detach, &delete_inline, &delete_role],
    ));
    let p = plan_destroy(&actual, "represent", "dev");
    let report = destroy(&c, &p, &fast(), &|_: &str| {})
        .await
        .expect("destroyed");
    assert_eq!(delete_fn.num_calls(), 2);
    assert_eq!(detach.num_calls(), 1);
    assert_eq!(delete_inline.num_calls(), 1);
    assert_eq!(delete_role.num_calls(), 1);
    assert_eq!(report.mutating_calls, 5);
    let mut functions = calls.calls()[..2].to_vec();
    functions.sort();
    assert_eq!(
        functions,
        [
            format!("Lambda DeleteFunction {COUNTIES}"),
            format!("Lambda DeleteFunction {REPS}"),
        ],
        "both functions go first, at once"
    );
    assert_eq!(
        calls.calls()[2..],
        [
            format!("IAM DetachRolePolicy represent-dev-exec {BASIC}"),
            "IAM DeleteRolePolicy represent-dev-exec tables".to_string(),
            "IAM DeleteRole represent-dev-exec".to_string(),
        ],
        "the role, last, once nothing runs as it"
    );
    let role_deleted = calls.sent("IAM DetachRolePolicy").expect("detached");
    assert!(calls.last_answered("Lambda DeleteFunction") < Some(role_deleted));
}

#[tokio::test]
async fn exhausted_retries_name_the_call() {
    let (app, d1) = single();
    let d2 = desired_of(&app, "v2");
    let update_code = mock!(Lambda::update_function_code).then_error(|| {
        UpdateFunctionCodeError::ResourceConflictException(
            ResourceConflictException::builder()
                .message("An update is in progress for resource: represent-dev-counties")
                .build(),
        )
    });
    let c = clients(&[&update_code], &[]);
    let err = run(&c, &d2, &up_to_date(&d1)).await.expect_err("gives up");
    assert_eq!(update_code.num_calls(), 5, "bounded by max_attempts");
    assert!(matches!(
        err.errors.as_slice(),
        [DeployError::RetriesExhausted {
            call: "UpdateFunctionCode",
            attempts: 5,
            ..
        }]
    ));
    assert_eq!(err.report.mutating_calls, 5, "every attempt is counted");
    let msg = err.to_string();
    assert!(
        msg.contains(
            "UpdateFunctionCode failed for function represent-dev-counties after 5 attempts"
        ),
        "{msg}"
    );
    assert!(msg.contains("update is in progress"), "{msg}");
}

#[tokio::test]
async fn role_left_by_an_interrupted_deploy_is_reused() {
    let (_, d) = single();
    let create_role = mock!(Iam::create_role).then_error(|| {
        aws_sdk_iam::operation::create_role::CreateRoleError::EntityAlreadyExistsException(
            aws_sdk_iam::types::error::EntityAlreadyExistsException::builder()
                .message("Role with name represent-dev-exec already exists.")
                .build(),
        )
    });
    let get_role = mock!(Iam::get_role)
        .match_requests(|r| r.role_name() == Some("represent-dev-exec"))
        .then_output(|| {
            aws_sdk_iam::operation::get_role::GetRoleOutput::builder()
                .role(iam_role())
                .build()
        });
    let attach = attach_basic();
    let create = mock!(Lambda::create_function)
        .match_requests(|r| r.role() == Some(ROLE_ARN))
        .then_output(|| CreateFunctionOutput::builder().build());
    let get = settled();
    let c = clients(&[&create, &get], &[&create_role, &get_role, &attach]);
    // Observed before the role appeared, so the plan still says "create".
    let report = run(&c, &d, &Actual::default()).await.expect("converged");
    assert_eq!(create_role.num_calls(), 1);
    assert_eq!(
        get_role.num_calls(),
        1,
        "the existing role's ARN is looked up"
    );
    assert_eq!(attach.num_calls(), 1);
    assert_eq!(create.num_calls(), 1);
    assert_eq!(report.mutating_calls, 3);
}
