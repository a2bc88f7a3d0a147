//! The plan a user reads, as snapshots: for each scenario the rendered plan (as `plan` prints
//! it, and with `-v`) and the plan's JSON (the `plan` of `deploy --dry-run --output json`), in
//! one file under `snapshots/`. A change in rendering fails here; `UPDATE_EXPECT=1 cargo test -p
//! deployer --test it plan_snapshots` rewrites the files, and the diff is the review.

use deployer::{Actual, Desired, Function, KeySchema, RenderOptions, Tenancy, plan};
use expect_test::expect_file;

use super::fixtures::{ActualStage, StackBuilder};

/// The three views of the plan of `desired` against `actual`, as one text.
fn views(desired: &Desired, actual: &Actual) -> String {
    let p = plan(desired, actual);
    let render = |verbose| {
        p.render(&RenderOptions {
            verbose,
            color: false,
        })
    };
    let json = serde_json::to_string_pretty(&p).expect("a plan serializes");
    format!(
        "## plan\n{}\n## plan -v\n{}\n## deploy --dry-run --output json: .plan\n{json}\n",
        render(false),
        render(true),
    )
}

#[test]
fn fresh_stage_creates_everything() {
    let d = StackBuilder::represent().desired();
    expect_file!["snapshots/fresh_stage.txt"].assert_eq(&views(&d, &ActualStage::empty().build()));
}

#[test]
fn deployed_stage_is_a_no_op() {
    let d = StackBuilder::represent().desired();
    let actual = ActualStage::deployed(&d).build();
    expect_file!["snapshots/no_op.txt"].assert_eq(&views(&d, &actual));
    assert!(!plan(&d, &actual).has_changes());
}

#[test]
fn new_code_of_one_function_updates_its_code_only() {
    let before = StackBuilder::represent().desired();
    let after = StackBuilder::represent()
        .code("representatives", "v2")
        .desired();
    let actual = ActualStage::deployed(&before).build();
    expect_file!["snapshots/code_change.txt"].assert_eq(&views(&after, &actual));
}

#[test]
fn tenancy_change_replaces_the_function_and_moves_its_routes() {
    let stack = StackBuilder::represent();
    let before = stack.desired();
    let after = stack
        .function(Function::new("counties").per_tenant())
        .desired();
    let actual = ActualStage::deployed(&before).build();
    expect_file!["snapshots/tenancy_replace.txt"].assert_eq(&views(&after, &actual));
}

#[test]
fn interrupted_tenancy_change_is_planned_from_where_it_stopped() {
    let before = StackBuilder::represent().desired();
    let actual = ActualStage::deployed(&before)
        .function("representatives", |f| f.tenancy = Tenancy::Shared)
        .build();
    expect_file!["snapshots/tenancy_replace_back.txt"].assert_eq(&views(&before, &actual));
}

#[test]
fn function_left_out_of_the_stack_is_deleted_with_its_routes_and_log_group() {
    let before = StackBuilder::represent().desired();
    let after = StackBuilder::represent()
        .without_function("counties")
        .desired();
    let actual = ActualStage::deployed(&before).build();
    expect_file!["snapshots/removed_function.txt"].assert_eq(&views(&after, &actual));
}

#[test]
fn table_with_another_key_is_replaced_and_reseeded() {
    let d = StackBuilder::represent().desired();
    let actual = ActualStage::deployed(&d)
        .table("data", |t| {
            t.key_schema = Some(KeySchema {
                partition: deployer::table::KeyAttribute::string("pk"),
                sort: None,
            })
        })
        .build();
    expect_file!["snapshots/table_change.txt"].assert_eq(&views(&d, &actual));
}

#[test]
fn route_change_updates_the_api_and_redeploys_it() {
    let before = StackBuilder::represent().desired();
    let after = StackBuilder::represent()
        .without_route("GET", "/counties/{fips}")
        .route("GET", "/representatives/{district}", "representatives")
        .desired();
    let actual = ActualStage::deployed(&before).build();
    expect_file!["snapshots/route_change.txt"].assert_eq(&views(&after, &actual));
}

#[test]
fn seed_change_writes_only_the_tenants_that_differ() {
    let before = StackBuilder::represent().desired();
    let after = StackBuilder::represent()
        .record("TX", "STATE", r#"{"name":"Texas","capital":"Austin"}"#)
        .without_record("TX", "COUNTY#48201")
        .record("TX", "COUNTY#48453", r#"{"name":"Travis"}"#)
        .desired();
    // CA's partition is as desired; an item someone added by hand is removed.
    let actual = ActualStage::deployed(&before)
        .record("CA", "NOTE", Some("{}"))
        .build();
    expect_file!["snapshots/seed_change.txt"].assert_eq(&views(&after, &actual));
}

/// The stage's desired state with its data-events store, recording the `data` table.
fn audited() -> Desired {
    let mut d = StackBuilder::represent().desired();
    let app = deployer::App::new("represent")
        .table(deployer::Table::new("data"))
        .audit_data_events()
        .stage(deployer::Stage::aws("dev"));
    d.trail = deployer::trail::resolve(&app, "dev");
    d
}

#[test]
fn audit_store_is_created_for_an_app_that_audits_data_events() {
    let d = audited();
    let actual = ActualStage::deployed(&d).build();
    expect_file!["snapshots/audit_store.txt"].assert_eq(&views(&d, &actual));
}

#[test]
fn audit_store_whose_settings_drifted_is_updated_in_place() {
    let d = audited();
    let mut actual = ActualStage::deployed(&d).build();
    actual.trail = Some(deployer::trail::ActualTrail {
        name: "represent-dev-data-events".into(),
        arn: "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/eds-1".into(),
        status: "ENABLED".into(),
        selectors: Vec::new(),
        multi_region: true,
        organization: false,
        termination_protection: true,
        retention_days: Some(2557),
        tags: Default::default(),
    });
    expect_file!["snapshots/audit_store_drift.txt"].assert_eq(&views(&d, &actual));
}
