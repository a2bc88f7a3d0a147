//! Functions' log groups: observed, planned with the stage's retention, created, updated and
//! deleted against strict CloudWatch Logs mocks.

use aws_sdk_cloudwatchlogs::Client as Logs;
use aws_sdk_cloudwatchlogs::operation::create_log_group::{
    CreateLogGroupError, CreateLogGroupOutput,
};
use aws_sdk_cloudwatchlogs::operation::delete_log_group::{
    DeleteLogGroupError, DeleteLogGroupOutput,
};
use aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsOutput;
use aws_sdk_cloudwatchlogs::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_cloudwatchlogs::operation::put_retention_policy::PutRetentionPolicyOutput;
use aws_sdk_cloudwatchlogs::operation::tag_resource::TagResourceOutput;
use aws_sdk_cloudwatchlogs::types::LogGroup;
use aws_sdk_cloudwatchlogs::types::error::{
    ResourceAlreadyExistsException, ResourceNotFoundException,
};
use aws_sdk_iam::Client as Iam;
use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_lambda::Client as Lambda;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::list_functions::ListFunctionsOutput;
use aws_sdk_lambda::types::FunctionConfiguration;
use aws_smithy_mocks::mock;
use deployer::{
    Action, Actual, ActualLogGroup, App, Desired, Function, LogFormat, ResourceKind, StackError,
    Stage, apply, destroy, observe, plan, plan_destroy,
};

use super::support::{clients_logs, fast, no_tables, packages, up_to_date};
use super::transcript::transcribed;

const REPS: &str = "/aws/lambda/represent-dev-representatives";
const COUNTIES: &str = "/aws/lambda/represent-dev-counties";
/// The group of a function that left the stack and is already deleted.
const GONE: &str = "/aws/lambda/represent-dev-old";

/// The fixture app on an AWS stage with the default log retention (14 days).
fn managed_app(stage: Stage) -> App {
    App::new("represent")
        .function(Function::new("representatives").per_tenant())
        .function(Function::new("counties").per_tenant())
        .stage(stage)
}

fn managed(stage: Stage) -> Desired {
    let app = managed_app(stage);
    deployer::desired(&app, "dev", &packages(&app, "v1")).expect("valid stack")
}

/// A group of one of the stage's functions, tagged as the deployer tags them.
fn group(name: &str, days: Option<u32>) -> ActualLogGroup {
    let function = name.trim_start_matches("/aws/lambda/");
    let logical = function.trim_start_matches("represent-dev-");
    let logical = logical.strip_suffix("-r").unwrap_or(logical);
    ActualLogGroup {
        name: name.to_string(),
        function: function.to_string(),
        retention_days: days,
        arn: format!("arn:aws:logs:us-east-1:123456789012:log-group:{name}"),
        tags: deployer::desired::function_tags("represent", "dev", logical),
    }
}

/// Functions and role deployed, log groups as given.
fn deployed_with(d: &Desired, groups: Vec<ActualLogGroup>) -> Actual {
    let mut actual = up_to_date(d);
    actual.log_groups = groups;
    actual
}

#[test]
fn stages_default_to_two_weeks_on_aws_and_one_on_the_emulator() {
    assert_eq!(Stage::aws("prod").log_retention_days, Some(14));
    assert_eq!(Stage::emulator("dev").log_retention_days, Some(7));
    assert_eq!(managed(Stage::aws("dev")).log_retention_days, Some(14));
}

#[test]
fn a_retention_cloudwatch_refuses_is_a_stack_error() {
    let app = managed_app(Stage::aws("dev").log_retention_days(10));
    let errors = deployer::validate(&app, "dev").expect_err("10 days is not allowed");
    assert!(
        errors.0.contains(&StackError::LogRetention {
            stage: "dev".to_string(),
            days: 10
        }),
        "{errors}"
    );
    let message = errors.to_string();
    assert!(
        message.contains("10 days") && message.contains("14, 30"),
        "{message}"
    );
}

#[test]
fn functions_keep_json_logs() {
    let d = managed(Stage::aws("dev"));
    assert!(d.functions.iter().all(|f| f.log_format == LogFormat::Json));
}

#[test]
fn empty_stage_plans_a_log_group_per_function() {
    let d = managed(Stage::aws("dev"));
    let rendered = plan(&d, &Actual::default()).to_string();
    assert!(
        rendered.contains(&format!(
            "  + create  log group {REPS}  (not deployed yet)\n        retention 14 days\n"
        )),
        "{rendered}"
    );
    assert!(
        rendered.contains(&format!("  + create  log group {COUNTIES}")),
        "{rendered}"
    );
    assert!(rendered.contains("Plan: 5 to create"), "{rendered}");
}

#[tokio::test]
async fn fresh_log_groups_are_created_with_the_stage_retention() {
    let d = managed(Stage::aws("dev"));
    let p = plan(&d, &deployed_with(&d, Vec::new()));
    let create = mock!(Logs::create_log_group)
        .match_requests(|r| {
            matches!(r.log_group_name(), Some(REPS) | Some(COUNTIES))
                && r.tags()
                    .is_some_and(|t| t.get("deployer:stage").map(String::as_str) == Some("dev"))
        })
        .then_output(|| CreateLogGroupOutput::builder().build());
    let retention = mock!(Logs::put_retention_policy)
        .match_requests(|r| r.retention_in_days() == Some(14))
        .then_output(|| PutRetentionPolicyOutput::builder().build());
    let (c, calls) = transcribed(clients_logs(&[], &[], &[], &[&create, &retention]));

    let report = apply(&c, &p, &fast(), &|_| {}).await.expect("applied");
    assert_eq!((create.num_calls(), retention.num_calls()), (2, 2));
    assert_eq!(report.mutating_calls, 4);
    for group in [REPS, COUNTIES] {
        let created = calls.last_answered(&format!("CloudWatchLogs CreateLogGroup {group}"));
        let retained = calls.sent(&format!(
            "CloudWatchLogs PutRetentionPolicy {group} days=14"
        ));
        assert!(
            created.is_some() && created < retained,
            "{group}: created, then its retention set: {:#?}",
            calls.events()
        );
    }
}

#[tokio::test]
async fn a_log_group_lambda_already_created_gets_the_retention() {
    let d = managed(Stage::aws("dev"));
    let p = plan(&d, &deployed_with(&d, vec![group(COUNTIES, Some(14))]));
    let create = mock!(Logs::create_log_group)
        .match_requests(|r| r.log_group_name() == Some(REPS))
        .then_error(|| {
            CreateLogGroupError::ResourceAlreadyExistsException(
                ResourceAlreadyExistsException::builder()
                    .message("The specified log group already exists")
                    .build(),
            )
        });
    let retention = mock!(Logs::put_retention_policy)
        .match_requests(|r| r.log_group_name() == Some(REPS) && r.retention_in_days() == Some(14))
        .then_output(|| PutRetentionPolicyOutput::builder().build());
    let (c, calls) = transcribed(clients_logs(&[], &[], &[], &[&create, &retention]));

    apply(&c, &p, &fast(), &|_| {}).await.expect("applied");
    assert_eq!((create.num_calls(), retention.num_calls()), (1, 1));
    assert_eq!(
        calls.calls(),
        [
            format!("CloudWatchLogs CreateLogGroup {REPS}"),
            format!("CloudWatchLogs PutRetentionPolicy {REPS} days=14"),
        ],
        "\"already exists\" is not retried: the group is taken over"
    );
}

#[tokio::test]
async fn unchanged_log_groups_make_no_call() {
    let d = managed(Stage::aws("dev"));
    let actual = deployed_with(&d, vec![group(COUNTIES, Some(14)), group(REPS, Some(14))]);
    let p = plan(&d, &actual);
    assert!(!p.has_changes(), "{p}");
    assert!(
        p.to_string()
            .contains(&format!("    no-op   log group {REPS}  (up to date)")),
        "{p}"
    );
    // No rule at all: any CloudWatch Logs call would fail the test.
    let c = clients_logs(&[], &[], &[], &[]);
    let report = apply(&c, &p, &fast(), &|_| {}).await.expect("applied");
    assert_eq!(report.mutating_calls, 0);
}

#[tokio::test]
async fn a_retention_change_is_one_put_retention_policy() {
    let d = managed(Stage::aws("dev").log_retention_days(30));
    let actual = deployed_with(&d, vec![group(COUNTIES, Some(30)), group(REPS, Some(14))]);
    let p = plan(&d, &actual);
    let rendered = p.to_string();
    assert!(
        rendered.contains(&format!(
            "  ~ update  log group {REPS}  (retention changed)\n        retention 14 days -> 30 days"
        )),
        "{rendered}"
    );
    let retention = mock!(Logs::put_retention_policy)
        .match_requests(|r| r.log_group_name() == Some(REPS) && r.retention_in_days() == Some(30))
        .then_output(|| PutRetentionPolicyOutput::builder().build());
    let c = clients_logs(&[], &[], &[], &[&retention]);
    let report = apply(&c, &p, &fast(), &|_| {}).await.expect("applied");
    assert_eq!(retention.num_calls(), 1);
    assert_eq!(report.mutating_calls, 1);
}

#[test]
fn a_function_leaving_the_stack_takes_its_log_group() {
    let before = managed(Stage::aws("dev"));
    let actual = deployed_with(
        &before,
        vec![group(COUNTIES, Some(14)), group(REPS, Some(14))],
    );
    let app = App::new("represent")
        .function(Function::new("representatives").per_tenant())
        .stage(Stage::aws("dev"));
    let after = deployer::desired(&app, "dev", &packages(&app, "v1")).expect("valid");
    let p = plan(&after, &actual);
    let deletes: Vec<&str> = p
        .changes
        .iter()
        .filter(|c| c.kind == ResourceKind::LogGroup && c.action == Action::Delete)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(deletes, vec![COUNTIES], "{p}");
}

#[test]
fn unmanaged_stages_plan_no_log_group() {
    let d = managed(Stage::aws("dev").unmanaged_log_groups());
    let p = plan(&d, &deployed_with(&d, vec![group(REPS, None)]));
    assert!(
        p.changes.iter().all(|c| c.kind != ResourceKind::LogGroup),
        "{p}"
    );
}

#[tokio::test]
async fn destroy_deletes_the_log_groups_even_if_one_is_already_gone() {
    let actual = Actual {
        log_groups: vec![group(COUNTIES, Some(14)), group(REPS, Some(14))],
        ..Actual::default()
    };
    let p = plan_destroy(&actual, "represent", "dev");
    let delete = mock!(Logs::delete_log_group)
        .match_requests(|r| r.log_group_name() == Some(COUNTIES))
        .then_output(|| DeleteLogGroupOutput::builder().build());
    let gone = mock!(Logs::delete_log_group)
        .match_requests(|r| r.log_group_name() == Some(REPS))
        .then_error(|| {
            DeleteLogGroupError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("The specified log group does not exist")
                    .build(),
            )
        });
    let c = clients_logs(&[], &[], &[], &[&delete, &gone]);
    let report = destroy(&c, &p, &fast(), &|_| {}).await.expect("destroyed");
    assert_eq!((delete.num_calls(), gone.num_calls()), (1, 1));
    assert_eq!(report.changes.len(), 2);
}

#[tokio::test]
async fn observe_reads_every_page_and_only_the_stage_functions_groups() {
    let d = managed(Stage::aws("dev"));
    let reps = super::support::deployed(&d, "representatives");
    let conf = super::support::sdk_configuration(&reps);
    let list = mock!(Lambda::list_functions).then_output(|| {
        ListFunctionsOutput::builder()
            .functions(
                FunctionConfiguration::builder()
                    .function_name("represent-dev-representatives")
                    .build(),
            )
            .build()
    });
    let tags = reps.tags.clone();
    let get = mock!(Lambda::get_function).then_output(move || {
        GetFunctionOutput::builder()
            .configuration(conf.clone())
            .set_tags(Some(tags.clone().into_iter().collect()))
            .build()
    });
    let role = mock!(Iam::get_role).then_error(|| {
        GetRoleError::NoSuchEntityException(NoSuchEntityException::builder().build())
    });
    let arn = |name: &str| format!("arn:aws:logs:us-east-1:123456789012:log-group:{name}");
    let lg = move |name: &str, days: Option<i32>| {
        LogGroup::builder()
            .log_group_name(name)
            .set_retention_in_days(days)
            .arn(format!("{}:*", arn(name)))
            .log_group_arn(arn(name))
            .build()
    };
    let page1 = mock!(Logs::describe_log_groups)
        .match_requests(|r| {
            r.log_group_name_prefix() == Some("/aws/lambda/represent-dev-")
                && r.next_token().is_none()
        })
        .then_output(move || {
            DescribeLogGroupsOutput::builder()
                // Same prefix, another stage's function: not ours.
                .log_groups(lg("/aws/lambda/represent-dev-2-representatives", Some(7)))
                // Tagged with this stage, its function already gone and out of the stack.
                .log_groups(lg(GONE, Some(14)))
                // Untagged, matching only by prefix: never claimed.
                .log_groups(lg("/aws/lambda/represent-dev-someone-elses", Some(14)))
                .next_token("page2")
                .build()
        });
    let page2 = mock!(Logs::describe_log_groups)
        .match_requests(|r| r.next_token() == Some("page2"))
        .then_output(move || {
            DescribeLogGroupsOutput::builder()
                .log_groups(lg(REPS, None))
                .build()
        });
    // Tags answer by ARN (never with DescribeLogGroups' trailing `:*`).
    let tags = mock!(Logs::list_tags_for_resource)
        .match_requests(|r| r.resource_arn().is_some_and(|a| !a.ends_with(":*")))
        .then_compute_output(|r| {
            let arn = r.resource_arn().unwrap_or_default();
            let tags = if arn.ends_with("represent-dev-2-representatives") {
                deployer::desired::function_tags("represent", "dev-2", "representatives")
            } else if arn.ends_with(GONE) {
                deployer::desired::function_tags("represent", "dev", "old")
            } else {
                // Neither the stranger's group nor ours, created before groups were tagged.
                Default::default()
            };
            ListTagsForResourceOutput::builder()
                .set_tags(Some(tags.into_iter().collect()))
                .build()
        });
    let tables = no_tables();
    let c = clients_logs(
        &[&list, &get],
        &[&role],
        &[&tables],
        &[&page1, &page2, &tags],
    );

    let actual = observe(&c, "represent", "dev").await.expect("observed");
    let untagged = ActualLogGroup {
        tags: Default::default(),
        ..group(REPS, None)
    };
    let mut gone = group(GONE, Some(14));
    gone.tags = deployer::desired::function_tags("represent", "dev", "old");
    assert_eq!(actual.log_groups, vec![gone, untagged]);
    assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
    assert_eq!(
        tags.num_calls(),
        4,
        "one ListTagsForResource per listed group"
    );
    // A group without retention keeps logs forever: the plan sets the stage's, and tags it,
    // once; the tagged group of a function gone from the stack is deleted.
    let p = plan(&d, &actual);
    let rendered = p.to_string();
    assert!(
        rendered.contains("retention never expire -> 14 days"),
        "{rendered}"
    );
    assert!(
        rendered.contains(&format!(
            "update  log group {REPS}  (retention changed; not tagged with the stage)"
        )),
        "{rendered}"
    );
    assert!(
        rendered.contains(&format!(
            "delete  log group {GONE}  (function represent-dev-old is deleted)"
        )),
        "{rendered}"
    );
    assert!(!rendered.contains("someone-elses"), "{rendered}");
}

#[tokio::test]
async fn an_untagged_group_of_a_declared_function_is_tagged_once() {
    let d = managed(Stage::aws("dev"));
    let mut actual = up_to_date(&d);
    actual.log_groups = vec![
        ActualLogGroup {
            tags: Default::default(),
            ..group(REPS, Some(14))
        },
        group(COUNTIES, Some(14)),
    ];
    let p = plan(&d, &actual);
    let changed: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    assert_eq!(changed.len(), 1, "{p}");
    assert_eq!(changed[0].resource, format!("log group {REPS}"));
    assert_eq!(changed[0].action, Action::Update);
    let tag = mock!(Logs::tag_resource)
        .match_requests(|r| {
            r.resource_arn()
                == Some(&format!(
                    "arn:aws:logs:us-east-1:123456789012:log-group:{REPS}"
                ))
                && r.tags().is_some_and(|t| {
                    t.get("deployer:stage").map(String::as_str) == Some("dev")
                        && t.get("deployer:logical-id").map(String::as_str)
                            == Some("representatives")
                })
        })
        .then_output(|| TagResourceOutput::builder().build());
    let c = clients_logs(&[], &[], &[], &[&tag]);
    apply(&c, &p, &fast(), &|_| {}).await.expect("applied");
    assert_eq!(tag.num_calls(), 1);

    // Tagged, the group is up to date.
    actual.log_groups = vec![group(REPS, Some(14)), group(COUNTIES, Some(14))];
    assert!(!plan(&d, &actual).has_changes());
}
