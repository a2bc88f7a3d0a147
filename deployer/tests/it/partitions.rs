//! A deploy seeding many tenants reads their table with one parallel Scan instead of a Query per
//! tenant, and plans exactly what the queries would have: drift in a seeded partition is seen,
//! a tenant with no items is empty, other tenants' items are never planned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client as Dynamo;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput;
use aws_sdk_dynamodb::operation::list_tables::ListTablesOutput;
use aws_sdk_dynamodb::operation::list_tags_of_resource::ListTagsOfResourceOutput;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::types::{AttributeValue, TableStatus, Tag};
use aws_sdk_iam::Client as Iam;
use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_iam::types::error::NoSuchEntityException;
use aws_sdk_lambda::Client as Lambda;
use aws_sdk_lambda::operation::list_functions::ListFunctionsOutput;
use aws_smithy_mocks::{Rule, mock};
use deployer::partitions::{SCAN_FROM, SCAN_SEGMENTS};
use deployer::{Action, ResourceKind, Seed, observe_stage, plan};

use super::support::{
    DATA, clients_with, stage_up_to_date, table_arn, table_description, tenant_desired,
};
use super::transcript::transcribed;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn item(tenant: &str, record: &str, data: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("tenant".to_string(), s(tenant)),
        ("record".to_string(), s(record)),
        ("data".to_string(), s(data)),
    ])
}

/// The stage's one table, `represent-dev-data`, active and tagged.
fn table_rules() -> Vec<Rule> {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().expect("tag");
    vec![
        mock!(Dynamo::list_tables)
            .then_output(|| ListTablesOutput::builder().table_names(DATA).build()),
        mock!(Dynamo::describe_table).then_output(|| {
            DescribeTableOutput::builder()
                .table(table_description(DATA, TableStatus::Active))
                .build()
        }),
        mock!(Dynamo::list_tags_of_resource)
            .match_requests(|r| r.resource_arn() == Some(table_arn(DATA).as_str()))
            .then_output(move || {
                ListTagsOfResourceOutput::builder()
                    .tags(tag("deployer:app", "represent"))
                    .tags(tag("deployer:stage", "dev"))
                    .tags(tag("deployer:logical-id", "data"))
                    .build()
            }),
    ]
}

fn tenant(i: usize) -> String {
    format!("county-{i:05}")
}

#[tokio::test]
async fn many_seeded_tenants_are_read_by_one_parallel_scan() {
    let seed = (0..SCAN_FROM).fold(Seed::new("data"), |seed, i| {
        seed.record(&tenant(i), "STATE", &format!(r#"{{"county":{i}}}"#))
    });
    let d = tenant_desired(vec![seed]);
    // Segment 0 holds two pages; the other segments one each. Tenant 1 drifted, tenant 2 has
    // nothing, and `left-the-registry` is not seeded.
    let segments = Arc::new(Mutex::new(Vec::new()));
    let seen = segments.clone();
    let scan = mock!(Dynamo::scan)
        .match_requests(move |r| {
            seen.lock().expect("segments lock").push(r.segment());
            r.table_name() == Some(DATA)
                && r.total_segments() == Some(SCAN_SEGMENTS)
                && r.consistent_read() == Some(true)
        })
        .then_compute_output(|r| {
            let segment = r.segment().unwrap_or_default() as usize;
            let first_page = r.exclusive_start_key().is_none();
            let mut out = ScanOutput::builder();
            for i in (0..SCAN_FROM).filter(|i| i % SCAN_SEGMENTS as usize == segment) {
                let data = match i {
                    1 => r#"{"county":"changed by hand"}"#.to_string(),
                    _ => format!(r#"{{"county":{i}}}"#),
                };
                // Segment 0's first page ends after its first item.
                let on_first_page = segment != 0 || i == 0;
                if i != 2 && on_first_page == first_page {
                    out = out.items(item(&tenant(i), "STATE", &data));
                }
            }
            if segment == 3 && first_page {
                out = out.items(item("left-the-registry", "STATE", "{}"));
            }
            if segment == 0 && first_page {
                out = out
                    .last_evaluated_key("tenant", s(&tenant(0)))
                    .last_evaluated_key("record", s("STATE"));
            }
            out.build()
        });
    let list_functions =
        mock!(Lambda::list_functions).then_output(|| ListFunctionsOutput::builder().build());
    let no_role = mock!(Iam::get_role).then_error(|| {
        GetRoleError::NoSuchEntityException(NoSuchEntityException::builder().build())
    });
    let tables = table_rules();
    let mut dynamodb: Vec<&Rule> = tables.iter().collect();
    dynamodb.push(&scan);
    // No Query rule: a Query per tenant would fail the test.
    let (c, calls) = transcribed(clients_with(&[&list_functions], &[&no_role], &dynamodb));

    let observed = observe_stage(&c, &d).await.expect("observed");
    assert_eq!(
        scan.num_calls(),
        SCAN_SEGMENTS as usize + 1,
        "one request per segment, and segment 0's second page: {:#?}",
        calls.calls()
    );
    let mut asked = segments.lock().expect("segments lock").clone();
    asked.sort();
    asked.dedup();
    assert_eq!(asked, (0..SCAN_SEGMENTS).map(Some).collect::<Vec<_>>());
    assert_eq!(observed.partitions.len(), SCAN_FROM, "every seeded tenant");
    assert!(observed.find_partition(DATA, "left-the-registry").is_none());

    let mut actual = stage_up_to_date(&d);
    actual.tables = observed.tables;
    actual.partitions = observed.partitions;
    let p = plan(&d, &actual);
    let seeded: Vec<(&str, Action)> = p
        .changes
        .iter()
        .filter(|c| c.kind == ResourceKind::Seed && c.action != Action::NoOp)
        .map(|c| (c.resource.as_str(), c.action))
        .collect();
    assert_eq!(
        seeded,
        [
            ("tenant county-00001 in represent-dev-data", Action::Update),
            ("tenant county-00002 in represent-dev-data", Action::Update),
        ],
        "the drifted tenant and the empty one are written, nothing else: {p}"
    );
}
