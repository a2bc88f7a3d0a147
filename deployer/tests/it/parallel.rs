//! Apply as a graph: the order steps keep, what a failure stops, and the mutating-call count
//! after one, against strict mocks whose call transcripts show when each step started.

use aws_sdk_dynamodb::Client as Dynamo;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
use aws_sdk_dynamodb::operation::create_table::CreateTableOutput;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput;
use aws_sdk_dynamodb::types::TableStatus;
use aws_sdk_iam::Client as Iam;
use aws_sdk_iam::operation::attach_role_policy::AttachRolePolicyOutput;
use aws_sdk_iam::operation::create_role::{CreateRoleError, CreateRoleOutput};
use aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput;
use aws_sdk_iam::types::error::MalformedPolicyDocumentException;
use aws_sdk_lambda::Client as Lambda;
use aws_sdk_lambda::operation::create_function::CreateFunctionOutput;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::update_function_code::{
    UpdateFunctionCodeError, UpdateFunctionCodeOutput,
};
use aws_sdk_lambda::types::error::InvalidParameterValueException;
use aws_sdk_lambda::types::{LastUpdateStatus, State};
use aws_smithy_mocks::{Rule, mock};
use deployer::apply::{Step, graph};
use deployer::{Actual, ApplyOptions, Clients, DeployError, Seed, apply, plan};

use super::support::{
    DATA, clients, clients_with, desired, desired_of, fast, iam_role, records, status,
    table_description, tenant_desired, up_to_date,
};
use super::transcript::{Transcript, transcribed};

const REPS: &str = "represent-dev-representatives";
const COUNTIES: &str = "represent-dev-counties";

fn settled() -> Rule {
    mock!(Lambda::get_function).then_output(|| {
        GetFunctionOutput::builder()
            .configuration(status("any", State::Active, LastUpdateStatus::Successful))
            .build()
    })
}

fn update_ok(name: &'static str) -> Rule {
    mock!(Lambda::update_function_code)
        .match_requests(move |r| r.function_name() == Some(name))
        .then_output(|| UpdateFunctionCodeOutput::builder().build())
}

fn update_refused(name: &'static str) -> Rule {
    mock!(Lambda::update_function_code)
        .match_requests(move |r| r.function_name() == Some(name))
        .then_error(|| {
            UpdateFunctionCodeError::InvalidParameterValueException(
                InvalidParameterValueException::builder()
                    .message("Unzipped size must be smaller than 262144000 bytes")
                    .build(),
            )
        })
}

fn with_parallelism(n: usize) -> ApplyOptions {
    ApplyOptions {
        parallelism: n,
        ..fast()
    }
}

#[test]
fn a_step_never_depends_on_one_that_comes_after_its_prerequisites() {
    let d = desired();
    let p = plan(&d, &Actual::default());
    let nodes = graph(&p);
    let label = |i: usize| nodes[i].step.label(&p);
    let role = nodes
        .iter()
        .position(|n| matches!(n.step, Step::Role(_)))
        .expect("the role is created");
    for (i, n) in nodes.iter().enumerate() {
        if matches!(n.step, Step::Function(_)) {
            assert!(
                n.depends_on.contains(&role),
                "{} waits for the role",
                label(i)
            );
        }
        assert!(
            n.depends_on.iter().all(|d| *d != i),
            "no step waits for itself"
        );
    }
}

#[test]
fn a_replacement_deletes_the_old_function_only_after_the_new_one() {
    let d = desired();
    let mut actual = up_to_date(&d);
    actual.functions[1].tenancy = deployer::Tenancy::PerTenant;
    let p = plan(&d, &actual);
    let nodes = graph(&p);
    let create = nodes
        .iter()
        .position(|n| matches!(n.step, Step::Function(_)))
        .expect("the new function is created");
    let delete = nodes
        .iter()
        .find(|n| matches!(&n.step, Step::DeleteFunction { name, .. } if name == COUNTIES))
        .expect("the old function is deleted");
    assert!(delete.depends_on.contains(&create), "{p}");
}

#[tokio::test]
async fn independent_updates_run_at_once_and_every_failure_is_reported() {
    let before = desired();
    let after = desired_of(&super::support::app(), "v2");
    let (reps, counties, get) = (update_ok(REPS), update_refused(COUNTIES), settled());
    let c = clients(&[&reps, &counties, &get], &[]);
    let p = plan(&after, &up_to_date(&before));
    let failure = apply(&c, &p, &with_parallelism(10), &|_| {})
        .await
        .expect_err("one update is refused");
    assert_eq!((reps.num_calls(), counties.num_calls()), (1, 1));
    assert!(
        matches!(
            failure.errors.as_slice(),
            [DeployError::Call { call: "UpdateFunctionCode", resource, .. }] if resource.contains(COUNTIES)
        ),
        "{failure}"
    );
    assert_eq!(
        failure.report.mutating_calls, 2,
        "both uploads are counted, the refused one too"
    );
    let done: Vec<&str> = failure
        .report
        .changes
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(done, vec![REPS], "the update that succeeded is reported");
    assert!(
        failure.to_string().starts_with(
            "UpdateFunctionCode failed for function represent-dev-counties: InvalidParameterValueException"
        ),
        "one line naming the call, the resource and the cause: {failure}"
    );
}

#[tokio::test]
async fn after_a_failure_no_new_step_starts() {
    let before = desired();
    let after = desired_of(&super::support::app(), "v2");
    // One step at a time: the first (representatives) fails, counties is never sent.
    let (reps, counties, get) = (update_refused(REPS), update_ok(COUNTIES), settled());
    let c = clients(&[&reps, &counties, &get], &[]);
    let p = plan(&after, &up_to_date(&before));
    let failure = apply(&c, &p, &with_parallelism(1), &|_| {})
        .await
        .expect_err("the first update is refused");
    assert_eq!((reps.num_calls(), counties.num_calls()), (1, 0));
    assert_eq!(failure.errors.len(), 1);
    assert_eq!(failure.report.mutating_calls, 1);
    assert!(failure.report.changes.is_empty());
}

/// The tenant stack's first deploy: the role with its table policy, the table (which reports
/// CREATING once), the tenant's records, both functions.
struct FreshTenantStage {
    create_role: Rule,
    attach: Rule,
    put_policy: Rule,
    create_table: Rule,
    describe: Rule,
    batch: Rule,
    create_function: Rule,
    get_reps: Rule,
    get_counties: Rule,
}

/// GetFunction of `name` for the waiter: pending once, then active.
fn pending_then_active(name: &'static str) -> Rule {
    let answer = move |state: State, update: LastUpdateStatus| {
        GetFunctionOutput::builder()
            .configuration(status(name, state, update))
            .build()
    };
    mock!(Lambda::get_function)
        .match_requests(move |r| r.function_name() == Some(name))
        .sequence()
        .output(move || answer(State::Pending, LastUpdateStatus::InProgress))
        .output(move || answer(State::Active, LastUpdateStatus::Successful))
        .build()
}

impl FreshTenantStage {
    fn new(create_role: Rule) -> Self {
        let described = |status: TableStatus| {
            DescribeTableOutput::builder()
                .table(table_description(DATA, status))
                .build()
        };
        FreshTenantStage {
            create_role,
            attach: mock!(Iam::attach_role_policy)
                .then_output(|| AttachRolePolicyOutput::builder().build()),
            put_policy: mock!(Iam::put_role_policy)
                .then_output(|| PutRolePolicyOutput::builder().build()),
            create_table: mock!(Dynamo::create_table)
                .then_output(|| CreateTableOutput::builder().build()),
            describe: mock!(Dynamo::describe_table)
                .sequence()
                .output(move || described(TableStatus::Creating))
                .output(move || described(TableStatus::Active))
                .build(),
            batch: mock!(Dynamo::batch_write_item)
                .then_output(|| BatchWriteItemOutput::builder().build()),
            create_function: mock!(Lambda::create_function)
                .then_output(|| CreateFunctionOutput::builder().build()),
            get_reps: pending_then_active(REPS),
            get_counties: pending_then_active(COUNTIES),
        }
    }

    fn clients(&self) -> (Clients, Transcript) {
        transcribed(clients_with(
            &[&self.create_function, &self.get_reps, &self.get_counties],
            &[&self.create_role, &self.attach, &self.put_policy],
            &[&self.create_table, &self.describe, &self.batch],
        ))
    }
}

fn role_created() -> Rule {
    mock!(Iam::create_role).then_output(|| CreateRoleOutput::builder().role(iam_role()).build())
}

#[tokio::test]
async fn every_step_starts_only_once_its_prerequisites_are_answered() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 3)]);
    let stage = FreshTenantStage::new(role_created());
    let (c, calls) = stage.clients();
    let p = plan(&d, &Actual::default());
    let report = apply(&c, &p, &with_parallelism(10), &|_| {})
        .await
        .expect("deployed");

    let role_ready = calls
        .last_answered("IAM PutRolePolicy represent-dev-exec table-read")
        .expect("the table policy is put");
    let table_ready = calls
        .last_answered("DynamoDB DescribeTable represent-dev-data")
        .expect("the table is waited for");
    let seeded = calls
        .sent("DynamoDB BatchWriteItem represent-dev-data TX")
        .expect("the tenant is seeded");
    assert!(table_ready < seeded, "{:#?}", calls.events());
    for function in [REPS, COUNTIES] {
        let created = calls
            .sent(&format!("Lambda CreateFunction {function}"))
            .expect("the function is created");
        assert!(
            role_ready < created && table_ready < created,
            "{function} waits for its role and the table it reads: {:#?}",
            calls.events()
        );
    }
    assert!(
        functions_overlap(&calls),
        "the two functions are created at once: {:#?}",
        calls.events()
    );
    assert_eq!(report.mutating_calls as usize, calls.mutating().len());
    assert_eq!(stage.batch.num_calls(), 1);
    assert_eq!(stage.create_function.num_calls(), 2);
}

#[tokio::test]
async fn parallelism_one_runs_one_step_at_a_time() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 3)]);
    let stage = FreshTenantStage::new(role_created());
    let (c, calls) = stage.clients();
    let p = plan(&d, &Actual::default());
    apply(&c, &p, &with_parallelism(1), &|_| {})
        .await
        .expect("deployed");
    assert!(!functions_overlap(&calls), "{:#?}", calls.events());
    assert_eq!(stage.create_function.num_calls(), 2);
}

/// Whether each function was created before the other one's wait was over.
fn functions_overlap(calls: &Transcript) -> bool {
    let started = |f: &str| calls.sent(&format!("Lambda CreateFunction {f}"));
    let settled = |f: &str| calls.last_answered(&format!("Lambda GetFunction {f}"));
    started(REPS) < settled(COUNTIES) && started(COUNTIES) < settled(REPS)
}

#[tokio::test]
async fn a_failed_role_stops_its_dependents_while_the_running_table_finishes() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 3)]);
    let refused = mock!(Iam::create_role).then_error(|| {
        CreateRoleError::MalformedPolicyDocumentException(
            MalformedPolicyDocumentException::builder()
                .message("This policy contains invalid Json")
                .build(),
        )
    });
    let stage = FreshTenantStage::new(refused);
    let (c, calls) = stage.clients();
    let p = plan(&d, &Actual::default());
    let failure = apply(&c, &p, &with_parallelism(10), &|_| {})
        .await
        .expect_err("the role is refused");

    assert_eq!(
        calls.mutating(),
        [
            "IAM CreateRole represent-dev-exec",
            "DynamoDB CreateTable represent-dev-data",
        ],
        "nothing new starts after the failure: no seed, no function, no policy"
    );
    assert_eq!(
        failure.report.mutating_calls, 2,
        "the count after a failure is every request sent, the refused one included"
    );
    let finished: Vec<&str> = failure
        .report
        .changes
        .iter()
        .map(|c| c.resource.as_str())
        .collect();
    assert_eq!(
        finished,
        ["table represent-dev-data"],
        "the step that was running when the role failed finished and is reported"
    );
    assert!(
        matches!(
            failure.errors.as_slice(),
            [DeployError::Call {
                call: "CreateRole",
                ..
            }]
        ),
        "{failure}"
    );
    assert_eq!(stage.describe.num_calls(), 2, "the table was waited for");
    assert_eq!(
        (stage.batch.num_calls(), stage.create_function.num_calls()),
        (0, 0)
    );
}

#[tokio::test]
async fn two_failures_at_once_are_both_reported() {
    let before = desired();
    let after = desired_of(&super::support::app(), "v2");
    let (reps, counties) = (update_refused(REPS), update_refused(COUNTIES));
    let (c, calls) = transcribed(clients(&[&reps, &counties], &[]));
    let p = plan(&after, &up_to_date(&before));
    let failure = apply(&c, &p, &with_parallelism(10), &|_| {})
        .await
        .expect_err("both updates are refused");
    assert_eq!(failure.errors.len(), 2, "{failure}");
    let text = failure.to_string();
    assert!(text.starts_with("2 steps failed:"), "{text}");
    assert!(text.contains(REPS) && text.contains(COUNTIES), "{text}");
    assert_eq!(failure.report.mutating_calls, 2);
    assert_eq!(calls.mutating().len(), 2);
    assert!(failure.report.changes.is_empty());
}
