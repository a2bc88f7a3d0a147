//! Tables and tenant data: observed, planned and written against strict DynamoDB mocks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client as Dynamo;
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::create_table::CreateTableOutput;
use aws_sdk_dynamodb::operation::delete_table::{DeleteTableError, DeleteTableOutput};
use aws_sdk_dynamodb::operation::describe_table::{DescribeTableError, DescribeTableOutput};
use aws_sdk_dynamodb::operation::list_tables::ListTablesOutput;
use aws_sdk_dynamodb::operation::list_tags_of_resource::ListTagsOfResourceOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::error::ResourceNotFoundException;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, ScalarAttributeType, TableStatus, Tag, WriteRequest,
};
use aws_sdk_iam::Client as Iam;
use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
use aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput;
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_lambda::Client as Lambda;
use aws_sdk_lambda::operation::list_functions::ListFunctionsOutput;
use aws_smithy_mocks::{Rule, mock};
use deployer::{
    Action, Actual, ApplyReport, DeployError, Desired, KeySchema, Seed, apply, destroy,
    observe_seeds, observe_stage, plan, plan_destroy, plan_seeds,
};

use super::support::{
    DATA, Progress, clients_with, fast, iam_role, records, stage_up_to_date, table_arn,
    table_description, tenant_desired,
};
use super::transcript::transcribed;

/// Every write of the BatchWriteItem calls a rule saw, call by call.
#[derive(Clone, Default)]
struct Batches(Arc<Mutex<Vec<Vec<WriteRequest>>>>);

impl Batches {
    fn record(&self, input: &BatchWriteItemInput) {
        let writes = input
            .request_items()
            .and_then(|m| m.get(DATA))
            .cloned()
            .unwrap_or_default();
        self.0.lock().expect("batches lock").push(writes);
    }

    fn calls(&self) -> Vec<Vec<WriteRequest>> {
        self.0.lock().expect("batches lock").clone()
    }
}

/// BatchWriteItem that records each call and processes everything.
fn batch_ok(batches: &Batches) -> Rule {
    let batches = batches.clone();
    mock!(Dynamo::batch_write_item)
        .match_requests(move |r| {
            batches.record(r);
            true
        })
        .then_output(|| BatchWriteItemOutput::builder().build())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn put_of(w: &WriteRequest) -> Option<(String, String, String)> {
    let item = w.put_request()?.item();
    let get = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some((get("tenant")?, get("record")?, get("data")?))
}

fn delete_of(w: &WriteRequest) -> Option<(String, String)> {
    let key = w.delete_request()?.key();
    let get = |k: &str| key.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some((get("tenant")?, get("record")?))
}

fn described(status: TableStatus) -> DescribeTableOutput {
    DescribeTableOutput::builder()
        .table(table_description(DATA, status))
        .build()
}

fn not_found() -> DescribeTableError {
    DescribeTableError::ResourceNotFoundException(
        ResourceNotFoundException::builder()
            .message("Requested resource not found")
            .build(),
    )
}

async fn run(
    clients: &deployer::Clients,
    d: &Desired,
    actual: &Actual,
    progress: &Progress,
) -> Result<ApplyReport, deployer::ApplyFailure> {
    let p = plan(d, actual);
    apply(clients, &p, &fast(), &|l: &str| progress.log(l)).await
}

/// The stage with everything deployed but the table, as before the first seed.
fn without_table(d: &Desired) -> Actual {
    let mut actual = stage_up_to_date(d);
    actual.tables.clear();
    actual.partitions.clear();
    actual
}

#[tokio::test]
async fn first_seed_creates_the_table_waits_and_writes_in_batches_of_25() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 60)]);
    let create = mock!(Dynamo::create_table)
        .match_requests(|r| {
            let key = |t: KeyType| {
                r.key_schema()
                    .iter()
                    .find(|k| *k.key_type() == t)
                    .map(|k| k.attribute_name().to_string())
            };
            r.table_name() == Some(DATA)
                && key(KeyType::Hash).as_deref() == Some("tenant")
                && key(KeyType::Range).as_deref() == Some("record")
                && r.attribute_definitions()
                    .iter()
                    .all(|a| *a.attribute_type() == ScalarAttributeType::S)
                && r.billing_mode() == Some(&BillingMode::PayPerRequest)
                && r.tags()
                    .iter()
                    .any(|t| t.key() == "deployer:logical-id" && t.value() == "data")
                && r.tags()
                    .iter()
                    .any(|t| t.key() == "deployer:stage" && t.value() == "dev")
        })
        .then_output(|| CreateTableOutput::builder().build());
    let wait = mock!(Dynamo::describe_table)
        .sequence()
        .error(not_found)
        .output(|| described(TableStatus::Creating))
        .output(|| described(TableStatus::Active))
        .build();
    let batches = Batches::default();
    let batch = batch_ok(&batches);
    let (c, transcript) = transcribed(clients_with(&[], &[], &[&create, &wait, &batch]));

    let report = run(&c, &d, &without_table(&d), &Progress::default())
        .await
        .expect("seeded");

    assert_eq!(create.num_calls(), 1);
    assert_eq!(wait.num_calls(), 3, "polled until ACTIVE");
    let calls = batches.calls();
    let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![25, 25, 10]);
    let written: Vec<(String, String, String)> =
        calls.iter().flatten().filter_map(put_of).collect();
    assert_eq!(written.len(), 60, "every write is a complete put");
    assert_eq!(
        written[42],
        (
            "TX".to_string(),
            "COUNTY#00042".to_string(),
            r#"{"county":42}"#.to_string()
        )
    );
    assert_eq!(
        report.mutating_calls, 4,
        "one CreateTable, three BatchWriteItem"
    );
    assert_eq!(
        transcript.calls(),
        [
            "DynamoDB CreateTable represent-dev-data",
            "DynamoDB DescribeTable represent-dev-data",
            "DynamoDB DescribeTable represent-dev-data",
            "DynamoDB DescribeTable represent-dev-data",
            "DynamoDB BatchWriteItem represent-dev-data TX put=25 delete=0",
            "DynamoDB BatchWriteItem represent-dev-data TX put=25 delete=0",
            "DynamoDB BatchWriteItem represent-dev-data TX put=10 delete=0",
        ],
        "the tenant is written once the table is active"
    );
}

#[tokio::test]
async fn unchanged_data_is_read_and_nothing_is_written() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 3)]);
    let list_functions =
        mock!(Lambda::list_functions).then_output(|| ListFunctionsOutput::builder().build());
    let no_role = mock!(Iam::get_role).then_error(|| {
        GetRoleError::NoSuchEntityException(NoSuchEntityException::builder().build())
    });
    let list = mock!(Dynamo::list_tables).then_output(|| {
        ListTablesOutput::builder()
            .table_names("represent-dev-2-data")
            .table_names(DATA)
            .table_names("someone-else")
            .build()
    });
    let describe = mock!(Dynamo::describe_table)
        .match_requests(|r| r.table_name() == Some(DATA))
        .then_output(|| described(TableStatus::Active));
    let other_stage = mock!(Dynamo::describe_table)
        .match_requests(|r| r.table_name() == Some("represent-dev-2-data"))
        .then_output(|| {
            DescribeTableOutput::builder()
                .table(table_description(
                    "represent-dev-2-data",
                    TableStatus::Active,
                ))
                .build()
        });
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().expect("tag");
    let tags = mock!(Dynamo::list_tags_of_resource)
        .match_requests(|r| r.resource_arn() == Some(table_arn(DATA).as_str()))
        .then_output(move || {
            ListTagsOfResourceOutput::builder()
                .tags(tag("deployer:app", "represent"))
                .tags(tag("deployer:stage", "dev"))
                .tags(tag("deployer:logical-id", "data"))
                .build()
        });
    let other_tags = mock!(Dynamo::list_tags_of_resource)
        .match_requests(|r| r.resource_arn() == Some(table_arn("represent-dev-2-data").as_str()))
        .then_output(move || {
            ListTagsOfResourceOutput::builder()
                .tags(tag("deployer:app", "represent"))
                .tags(tag("deployer:stage", "dev-2"))
                .build()
        });
    let item = |record: &str, data: &str| {
        BTreeMap::from([
            ("tenant".to_string(), s("TX")),
            ("record".to_string(), s(record)),
            ("data".to_string(), s(data)),
        ])
        .into_iter()
        .collect()
    };
    // Two pages, the second asked for with the first one's LastEvaluatedKey.
    let page1 = mock!(Dynamo::query)
        .match_requests(|r| {
            r.table_name() == Some(DATA)
                && r.exclusive_start_key().is_none()
                && r.expression_attribute_values()
                    .and_then(|v| v.get(":tenant"))
                    == Some(&s("TX"))
                && r.consistent_read() == Some(true)
        })
        .then_output(move || {
            QueryOutput::builder()
                .items(item("COUNTY#00000", r#"{"county":0}"#))
                .items(item("COUNTY#00001", r#"{"county":1}"#))
                .last_evaluated_key("tenant", s("TX"))
                .last_evaluated_key("record", s("COUNTY#00001"))
                .build()
        });
    let page2 = mock!(Dynamo::query)
        .match_requests(|r| {
            r.exclusive_start_key().and_then(|k| k.get("record")) == Some(&s("COUNTY#00001"))
        })
        .then_output(move || {
            QueryOutput::builder()
                .items(item("COUNTY#00002", r#"{"county":2}"#))
                .build()
        });
    let c = clients_with(
        &[&list_functions],
        &[&no_role],
        &[
            &list,
            &describe,
            &other_stage,
            &tags,
            &other_tags,
            &page1,
            &page2,
        ],
    );

    let observed = observe_stage(&c, &d).await.expect("observed");
    assert_eq!(observed.tables.len(), 1, "{:#?}", observed.tables);
    assert_eq!(
        observed.tables[0].key_schema,
        Some(KeySchema::tenant_record())
    );
    assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
    assert_eq!(observed.partitions.len(), 1);
    assert_eq!(observed.partitions[0].records.len(), 3);

    // With functions and role deployed too, the stage is a no-op: no table, no seed change.
    let mut actual = stage_up_to_date(&d);
    actual.tables = observed.tables;
    actual.partitions = observed.partitions;
    let p = plan(&d, &actual);
    assert!(!p.has_changes(), "{p}");
    // No rules: any call at all, BatchWriteItem or CreateTable included, fails the test.
    let quiet = clients_with(&[], &[], &[]);
    let report = apply(&quiet, &p, &fast(), &|_: &str| {})
        .await
        .expect("nothing to do");
    assert_eq!(report.mutating_calls, 0);
}

#[tokio::test]
async fn changed_record_is_one_put() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 30)]);
    let mut actual = stage_up_to_date(&d);
    actual.partitions[0].records.insert(
        "COUNTY#00007".to_string(),
        Some("{\"county\":\"old\"}".to_string()),
    );
    let batches = Batches::default();
    let batch = batch_ok(&batches);
    let c = clients_with(&[], &[], &[&batch]);
    let report = run(&c, &d, &actual, &Progress::default())
        .await
        .expect("seeded");
    let calls = batches.calls();
    assert_eq!(calls.len(), 1);
    let puts: Vec<_> = calls[0].iter().filter_map(put_of).collect();
    assert_eq!(
        puts,
        vec![(
            "TX".to_string(),
            "COUNTY#00007".to_string(),
            r#"{"county":7}"#.to_string()
        )]
    );
    assert_eq!(calls[0].len(), 1);
    assert_eq!(report.mutating_calls, 1);
}

#[tokio::test]
async fn removed_record_is_one_delete() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 2)]);
    let mut actual = stage_up_to_date(&d);
    actual.partitions[0]
        .records
        .insert("SEAT#99".to_string(), Some("{}".to_string()));
    let batches = Batches::default();
    let batch = batch_ok(&batches);
    let c = clients_with(&[], &[], &[&batch]);
    run(&c, &d, &actual, &Progress::default())
        .await
        .expect("seeded");
    let calls = batches.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].len(), 1);
    assert_eq!(
        delete_of(&calls[0][0]),
        Some(("TX".to_string(), "SEAT#99".to_string()))
    );
}

#[tokio::test]
async fn unprocessed_items_are_sent_again_and_only_they() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 5)]);
    let mut actual = stage_up_to_date(&d);
    actual.partitions.clear();
    let batches = Batches::default();
    let recorder = batches.clone();
    // DynamoDB under load: the first answer leaves the last two writes unprocessed; once the
    // request is down to those two, everything goes through.
    let batch = mock!(Dynamo::batch_write_item)
        .match_requests(move |r| {
            recorder.record(r);
            true
        })
        .then_compute_output(|r| {
            let writes = r
                .request_items()
                .and_then(|m| m.get(DATA))
                .cloned()
                .unwrap_or_default();
            if writes.len() <= 2 {
                BatchWriteItemOutput::builder().build()
            } else {
                BatchWriteItemOutput::builder()
                    .unprocessed_items(DATA, writes[3..].to_vec())
                    .build()
            }
        });
    let c = clients_with(&[], &[], &[&batch]);
    let report = run(&c, &d, &actual, &Progress::default())
        .await
        .expect("seeded after a retry");
    let calls = batches.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].len(), 5);
    assert_eq!(
        calls[1],
        calls[0][3..].to_vec(),
        "exactly the unprocessed writes"
    );
    assert_eq!(report.mutating_calls, 2);
}

#[tokio::test]
async fn unprocessed_items_that_never_clear_name_the_table_and_tenant() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 3)]);
    let mut actual = stage_up_to_date(&d);
    actual.partitions.clear();
    let batch = mock!(Dynamo::batch_write_item).then_compute_output(|r| {
        let writes = r
            .request_items()
            .and_then(|m| m.get(DATA))
            .cloned()
            .unwrap_or_default();
        BatchWriteItemOutput::builder()
            .unprocessed_items(DATA, writes)
            .build()
    });
    let c = clients_with(&[], &[], &[&batch]);
    let err = run(&c, &d, &actual, &Progress::default())
        .await
        .expect_err("gives up");
    assert_eq!(batch.num_calls(), 5, "bounded by max_attempts");
    let msg = err.to_string();
    assert!(
        msg.contains("BatchWriteItem failed for tenant TX in represent-dev-data after 5 attempts"),
        "{msg}"
    );
    assert!(msg.contains("3 writes were left unprocessed"), "{msg}");
}

#[tokio::test]
async fn key_schema_change_replaces_the_table_and_seeds_again() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 2)]);
    let mut actual = stage_up_to_date(&d);
    if let Some(key) = actual.tables[0].key_schema.as_mut() {
        key.sort = None;
    }
    let delete = mock!(Dynamo::delete_table)
        .match_requests(|r| r.table_name() == Some(DATA))
        .then_output(|| DeleteTableOutput::builder().build());
    let create = mock!(Dynamo::create_table).then_output(|| CreateTableOutput::builder().build());
    // Deleting, then gone; after the create, active.
    let describe = mock!(Dynamo::describe_table)
        .sequence()
        .output(|| described(TableStatus::Deleting))
        .error(not_found)
        .output(|| described(TableStatus::Active))
        .build();
    let batches = Batches::default();
    let batch = batch_ok(&batches);
    let c = clients_with(&[], &[], &[&delete, &create, &describe, &batch]);
    let p = plan(&d, &actual);
    let table = &p.changes[1];
    assert_eq!(table.action, Action::Replace);
    let report = apply(&c, &p, &fast(), &|_: &str| {})
        .await
        .expect("replaced");
    assert_eq!((delete.num_calls(), create.num_calls()), (1, 1));
    assert_eq!(describe.num_calls(), 3);
    assert_eq!(
        batches.calls().concat().len(),
        2,
        "every record is written again, though it was observed before"
    );
    assert_eq!(report.mutating_calls, 3);
}

#[tokio::test]
async fn destroy_deletes_tables_after_functions_and_before_the_role() {
    let d = tenant_desired(Vec::new());
    let actual = stage_up_to_date(&d);
    let delete_fn = mock!(Lambda::delete_function).then_output(|| {
        aws_sdk_lambda::operation::delete_function::DeleteFunctionOutput::builder().build()
    });
    // Already gone: deleting converges.
    let delete_table = mock!(Dynamo::delete_table)
        .match_requests(|r| r.table_name() == Some(DATA))
        .then_error(|| {
            DeleteTableError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        });
    let detach = mock!(Iam::detach_role_policy).then_output(|| {
        aws_sdk_iam::operation::detach_role_policy::DetachRolePolicyOutput::builder().build()
    });
    let delete_role = mock!(Iam::delete_role)
        .then_output(|| aws_sdk_iam::operation::delete_role::DeleteRoleOutput::builder().build());
    let delete_inline = mock!(Iam::delete_role_policy)
        .match_requests(|r| r.policy_name() == Some("table-read"))
        .then_output(|| {
            aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyOutput::builder().build()
        });
    let (c, transcript) = transcribed(clients_with(
        &[&delete_fn],
        &[&detach, &delete_inline, &delete_role],
        &[&delete_table],
    ));
    let p = plan_destroy(&actual, "represent", "dev");
    destroy(&c, &p, &fast(), &|_: &str| {})
        .await
        .expect("destroyed");
    assert_eq!(delete_table.num_calls(), 1);
    let functions_gone = transcript
        .last_answered("Lambda DeleteFunction")
        .expect("functions deleted");
    let table = transcript
        .sent("DynamoDB DeleteTable represent-dev-data")
        .expect("table deleted");
    let table_gone = transcript
        .last_answered("DynamoDB DeleteTable")
        .expect("table deleted");
    let role = transcript
        .sent("IAM DetachRolePolicy")
        .expect("role deleted");
    assert!(
        functions_gone < table && table_gone < role,
        "{:#?}",
        transcript.events()
    );
}

#[tokio::test]
async fn seeding_one_tenant_reads_and_writes_only_that_tenant() {
    let seed = records(records(Seed::new("data"), "TX", 2), "CA", 2);
    // Seeding needs no built function.
    let d = deployer::desired_for_seeding(&super::support::tenant_app(), "dev", vec![seed])
        .expect("valid seed");
    assert!(d.functions.is_empty());
    let describe = mock!(Dynamo::describe_table).then_output(|| described(TableStatus::Active));
    let tags = mock!(Dynamo::list_tags_of_resource)
        .then_output(|| ListTagsOfResourceOutput::builder().build());
    // Only TX is queried; a query for CA would find no rule and fail the test.
    let query = mock!(Dynamo::query)
        .match_requests(|r| {
            r.expression_attribute_values()
                .and_then(|v| v.get(":tenant"))
                == Some(&s("TX"))
        })
        .then_output(|| QueryOutput::builder().build());
    let batches = Batches::default();
    let batch = batch_ok(&batches);
    let c = clients_with(&[], &[], &[&describe, &tags, &query, &batch]);

    let actual = observe_seeds(&c, &d, Some("TX")).await.expect("observed");
    let p = plan_seeds(&d, &actual, Some("TX"));
    assert_eq!(
        p.to_string(),
        "  ~ seed    tenant TX in represent-dev-data  (2 to add, 0 to change, 0 to remove)

Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 1 to seed, 0 unchanged.
"
    );
    apply(&c, &p, &fast(), &|_: &str| {}).await.expect("seeded");
    assert_eq!(query.num_calls(), 1);
    let tenants: Vec<String> = batches
        .calls()
        .concat()
        .iter()
        .filter_map(put_of)
        .map(|(tenant, _, _)| tenant)
        .collect();
    assert_eq!(tenants, vec!["TX", "TX"]);

    let err = observe_seeds(&c, &d, Some("ZZ"))
        .await
        .expect_err("unknown tenant");
    assert_eq!(
        err.to_string(),
        "tenant \"ZZ\" has no seed data; tenants with seed data: CA, TX"
    );
}

#[tokio::test]
async fn seeding_before_the_first_deploy_says_to_deploy() {
    let d = tenant_desired(vec![records(Seed::new("data"), "TX", 1)]);
    let describe = mock!(Dynamo::describe_table).then_error(not_found);
    let c = clients_with(&[], &[], &[&describe]);
    let err = observe_seeds(&c, &d, None).await.expect_err("no table");
    assert!(
        matches!(&err, DeployError::TableMissing { table } if table == DATA),
        "{err}"
    );
    assert!(err.to_string().contains("deploy the stage first"), "{err}");
}

#[tokio::test]
async fn role_policy_is_read_back_as_equal() {
    // IAM returns the deployer's own policy document URL-encoded; decoded, it is no change.
    let d = tenant_desired(Vec::new());
    let doc = d.role.inline_policies["table-read"].clone();
    let encoded: String = form_encode(&doc);
    let list_functions =
        mock!(Lambda::list_functions).then_output(|| ListFunctionsOutput::builder().build());
    let get_role =
        mock!(Iam::get_role).then_output(|| GetRoleOutput::builder().role(iam_role()).build());
    let attached = mock!(Iam::list_attached_role_policies)
        .then_output(|| ListAttachedRolePoliciesOutput::builder().build());
    let inline = mock!(Iam::list_role_policies).then_output(|| {
        ListRolePoliciesOutput::builder()
            .policy_names("table-read")
            .build()
            .expect("names set")
    });
    let get_policy = mock!(Iam::get_role_policy).then_output(move || {
        GetRolePolicyOutput::builder()
            .role_name("represent-dev-exec")
            .policy_name("table-read")
            .policy_document(encoded.clone())
            .build()
            .expect("fields set")
    });
    let list = mock!(Dynamo::list_tables).then_output(|| ListTablesOutput::builder().build());
    let c = clients_with(
        &[&list_functions],
        &[&get_role, &attached, &inline, &get_policy],
        &[&list],
    );
    let actual = observe_stage(&c, &d).await.expect("observed");
    let p = plan(&d, &actual);
    let role = &p.changes[0];
    let put = match &role.op {
        deployer::Op::Role(op) => op.put.keys().cloned().collect::<Vec<_>>(),
        other => panic!("the first change is the role's, not {other:?}"),
    };
    assert_eq!(put, Vec::<String>::new(), "{p}");
}

/// Percent-encodes every byte outside the unreserved set, as IAM does.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
