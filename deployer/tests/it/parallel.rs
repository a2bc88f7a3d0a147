//! Apply as a graph: the order steps keep, what a failure stops, and the mutating-call count
//! after one, against strict mocks.

use aws_sdk_lambda::Client as Lambda;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::update_function_code::{
    UpdateFunctionCodeError, UpdateFunctionCodeOutput,
};
use aws_sdk_lambda::types::error::InvalidParameterValueException;
use aws_sdk_lambda::types::{LastUpdateStatus, State};
use aws_smithy_mocks::{Rule, mock};
use deployer::apply::{Step, graph};
use deployer::{Actual, ApplyOptions, DeployError, apply, plan};

use super::support::{clients, desired, desired_of, fast, status, up_to_date};

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
