//! The DynamoDB a multi-tenant function writes against, through the real `aws-sdk-dynamodb`
//! client: UpdateItem, conditional writes, filters and projections, Scan with pages and
//! segments, secondary indexes, transactions, BatchGetItem, time to live, the table settings
//! DynamoDB keeps, and its validation messages.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Get, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, LocalSecondaryIndex, Projection, ProjectionType,
    Put, PutRequest, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, Select, SseSpecification, TableStatus, TimeToLiveSpecification,
    TransactGetItem, TransactWriteItem, Update, WarmThroughput, WriteRequest,
};
use emulator::Emulator;

use crate::support;

const TABLE: &str = "app-data";

fn client(emulator: &Emulator) -> Client {
    Client::new(&support::sdk_config(&emulator.endpoint()))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn n(value: &str) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .unwrap()
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

/// A table keyed (`pk`, `sk`), both strings, ACTIVE when this returns.
async fn create_table(ddb: &Client) {
    ddb.create_table()
        .table_name(TABLE)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .attribute_definitions(attribute("sk", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("CreateTable");
    wait_active(ddb, TABLE).await;
}

async fn wait_active(ddb: &Client, name: &str) {
    for _ in 0..500 {
        let table = ddb.describe_table().table_name(name).send().await.unwrap();
        if table.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("table {name} never became ACTIVE");
}

async fn put(ddb: &Client, item: &[(&str, AttributeValue)]) {
    let mut request = ddb.put_item().table_name(TABLE);
    for (name, value) in item {
        request = request.item(*name, value.clone());
    }
    request.send().await.expect("PutItem");
}

async fn get(ddb: &Client, pk: &str, sk: &str) -> Option<HashMap<String, AttributeValue>> {
    ddb.get_item()
        .table_name(TABLE)
        .key("pk", s(pk))
        .key("sk", s(sk))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
}

fn sks(items: &[HashMap<String, AttributeValue>]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["sk"].as_s().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn a_key_condition_in_parentheses_queries_as_boto3_sends_it() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb).await;
    for sk in ["a", "b", "c"] {
        put(&ddb, &[("pk", s("TX")), ("sk", s(sk))]).await;
    }
    // boto3's `Key('pk').eq('TX') & Key('sk').gt('a')` renders as this.
    let page = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("(#n0 = :v0 AND #n1 > :v1)")
        .expression_attribute_names("#n0", "pk")
        .expression_attribute_names("#n1", "sk")
        .expression_attribute_values(":v0", s("TX"))
        .expression_attribute_values(":v1", s("a"))
        .send()
        .await
        .expect("a parenthesised key condition is accepted");
    assert_eq!(sks(page.items()), ["b", "c"]);
    let page = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("((pk = :v0)) AND (begins_with(sk, :v1))")
        .expression_attribute_values(":v0", s("TX"))
        .expression_attribute_values(":v1", s("c"))
        .send()
        .await
        .expect("nested parentheses are accepted");
    assert_eq!(sks(page.items()), ["c"]);
}

#[tokio::test]
async fn update_item_sets_removes_adds_and_deletes_and_returns_what_changed() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb).await;
    put(
        &ddb,
        &[
            ("pk", s("TX")),
            ("sk", s("counter")),
            ("hits", n("41")),
            ("note", s("old")),
            ("tags", AttributeValue::Ss(vec!["a".into(), "b".into()])),
            ("seen_by", AttributeValue::Ss(vec!["a".into(), "z".into()])),
        ],
    )
    .await;
    let out = ddb
        .update_item()
        .table_name(TABLE)
        .key("pk", s("TX"))
        .key("sk", s("counter"))
        .update_expression(
            "SET hits = hits + :one, #seen = if_not_exists(#seen, :now) REMOVE note ADD tags :c DELETE seen_by :a",
        )
        .expression_attribute_names("#seen", "first_seen")
        .expression_attribute_values(":one", n("1"))
        .expression_attribute_values(":now", n("1700000000"))
        .expression_attribute_values(":c", AttributeValue::Ss(vec!["c".into()]))
        .expression_attribute_values(":a", AttributeValue::Ss(vec!["a".into()]))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .expect("UpdateItem");
    let attributes = out.attributes().unwrap();
    assert_eq!(attributes["hits"], n("42"));
    assert_eq!(attributes["first_seen"], n("1700000000"));
    let mut tags = attributes["tags"].as_ss().unwrap().clone();
    tags.sort();
    assert_eq!(tags, ["a", "b", "c"]);
    assert_eq!(attributes["seen_by"], AttributeValue::Ss(vec!["z".into()]));
    assert!(
        !attributes.contains_key("pk"),
        "UPDATED_NEW holds only what changed"
    );

    let item = get(&ddb, "TX", "counter").await.unwrap();
    assert!(!item.contains_key("note"));

    // An update of a missing item creates it from the key.
    let out = ddb
        .update_item()
        .table_name(TABLE)
        .key("pk", s("TX"))
        .key("sk", s("new"))
        .update_expression("ADD visits :one")
        .expression_attribute_values(":one", n("1"))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes().unwrap()["visits"], n("1"));
    assert_eq!(out.attributes().unwrap()["pk"], s("TX"));

    let err = ddb
        .update_item()
        .table_name(TABLE)
        .key("pk", s("TX"))
        .key("sk", s("new"))
        .update_expression("SET pk = :v")
        .expression_attribute_values(":v", s("CA"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(
            "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"
        )
    );
}

#[tokio::test]
async fn conditional_writes_fail_with_the_item_when_asked() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb).await;
    let create_once = || {
        ddb.put_item()
            .table_name(TABLE)
            .item("pk", s("TX"))
            .item("sk", s("order#1"))
            .item("status", s("new"))
            .condition_expression("attribute_not_exists(pk)")
    };
    create_once().send().await.expect("first put succeeds");
    let err = create_once()
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ConditionalCheckFailedException"));
    assert_eq!(err.message(), Some("The conditional request failed"));
    match err {
        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
            assert_eq!(e.item().unwrap()["status"], s("new"));
        }
        other => panic!("unexpected error {other:?}"),
    }

    let update = |from: &str| {
        ddb.update_item()
            .table_name(TABLE)
            .key("pk", s("TX"))
            .key("sk", s("order#1"))
            .update_expression("SET #s = :to")
            .condition_expression("#s = :from")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s("paid"))
    };
    let err = update("shipped").send().await.unwrap_err();
    assert_eq!(err.code(), Some("ConditionalCheckFailedException"));
    update("new").send().await.expect("the condition holds");
    assert_eq!(
        get(&ddb, "TX", "order#1").await.unwrap()["status"],
        s("paid")
    );

    let err = ddb
        .delete_item()
        .table_name(TABLE)
        .key("pk", s("TX"))
        .key("sk", s("order#1"))
        .condition_expression("#s IN (:a, :b)")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":a", s("new"))
        .expression_attribute_values(":b", s("cancelled"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ConditionalCheckFailedException"));
    assert!(
        get(&ddb, "TX", "order#1").await.is_some(),
        "nothing was deleted"
    );
}

#[tokio::test]
async fn filters_projections_and_count_shape_query_and_scan_results() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb).await;
    for (sk, pop) in [("a", "10"), ("b", "500"), ("c", "2000")] {
        put(
            &ddb,
            &[
                ("pk", s("TX")),
                ("sk", s(sk)),
                ("pop", n(pop)),
                (
                    "info",
                    AttributeValue::M(HashMap::from([
                        ("name".to_string(), s(sk)),
                        ("seat".to_string(), s("x")),
                    ])),
                ),
            ],
        )
        .await;
    }
    let page = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("pk = :pk")
        .filter_expression("pop >= :min")
        .projection_expression("sk, info.#name")
        .expression_attribute_names("#name", "name")
        .expression_attribute_values(":pk", s("TX"))
        .expression_attribute_values(":min", n("100"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.count(), 2);
    assert_eq!(page.scanned_count(), 3, "the filter runs after the read");
    let first = &page.items()[0];
    assert_eq!(first.len(), 2);
    assert_eq!(
        first["info"],
        AttributeValue::M(HashMap::from([("name".to_string(), s("b"))]))
    );

    let scan = ddb
        .scan()
        .table_name(TABLE)
        .filter_expression("contains(info.seat, :x) AND NOT pop < :min")
        .expression_attribute_values(":x", s("x"))
        .expression_attribute_values(":min", n("1000"))
        .select(Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(scan.count(), 1);
    assert!(scan.items().is_empty());
}

#[tokio::test]
async fn scan_pages_and_segments_visit_every_item_exactly_once() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb).await;
    let mut writes = Vec::new();
    for i in 0..20 {
        writes.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .item("pk", s(&format!("P{}", i % 7)))
                        .item("sk", s(&format!("{i:02}")))
                        .build()
                        .unwrap(),
                )
                .build(),
        );
    }
    ddb.batch_write_item()
        .request_items(TABLE, writes)
        .send()
        .await
        .unwrap();
    let mut paged = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(TABLE)
            .limit(6)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        paged.extend(sks(page.items()));
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    paged.sort();
    let expected: Vec<String> = (0..20).map(|i| format!("{i:02}")).collect();
    assert_eq!(paged, expected);

    let mut segmented = Vec::new();
    for segment in 0..3 {
        let items: Vec<_> = ddb
            .scan()
            .table_name(TABLE)
            .segment(segment)
            .total_segments(3)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        segmented.extend(sks(&items));
    }
    let unique: HashSet<&String> = segmented.iter().collect();
    assert_eq!(segmented.len(), 20);
    assert_eq!(unique.len(), 20);

    let err = ddb
        .scan()
        .table_name(TABLE)
        .segment(3)
        .total_segments(3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 3 is out of bounds for TotalSegments: 3"
        )
    );
}

#[tokio::test]
async fn global_and_local_secondary_indexes_are_created_queried_and_projected() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    ddb.create_table()
        .table_name(TABLE)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .attribute_definitions(attribute("sk", ScalarAttributeType::S))
        .attribute_definitions(attribute("status", ScalarAttributeType::S))
        .attribute_definitions(attribute("amount", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by-status")
                .key_schema(key("status", KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("by-amount")
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("amount", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("a table with secondary indexes is created");
    wait_active(&ddb, TABLE).await;
    let table = ddb.describe_table().table_name(TABLE).send().await.unwrap();
    let table = table.table().unwrap();
    assert_eq!(
        table.global_secondary_indexes()[0].index_name(),
        Some("by-status")
    );
    assert_eq!(
        table.local_secondary_indexes()[0].index_name(),
        Some("by-amount")
    );

    for (sk, status, amount) in [
        ("o1", "open", "30"),
        ("o2", "paid", "10"),
        ("o3", "open", "20"),
    ] {
        put(
            &ddb,
            &[
                ("pk", s("TX")),
                ("sk", s(sk)),
                ("status", s(status)),
                ("amount", n(amount)),
                ("note", s("n")),
            ],
        )
        .await;
    }
    put(&ddb, &[("pk", s("TX")), ("sk", s("o4"))]).await;
    // Moving an item to another index key moves its index entry.
    put(
        &ddb,
        &[
            ("pk", s("TX")),
            ("sk", s("o2")),
            ("status", s("open")),
            ("amount", n("5")),
        ],
    )
    .await;

    let open = ddb
        .query()
        .table_name(TABLE)
        .index_name("by-status")
        .key_condition_expression("#s = :s")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", s("open"))
        .send()
        .await
        .unwrap();
    let mut found = sks(open.items());
    found.sort();
    assert_eq!(found, ["o1", "o2", "o3"]);
    assert!(
        open.items().iter().all(|i| !i.contains_key("note")),
        "a KEYS_ONLY index holds only keys"
    );

    let by_amount = ddb
        .query()
        .table_name(TABLE)
        .index_name("by-amount")
        .key_condition_expression("pk = :pk AND amount > :min")
        .expression_attribute_values(":pk", s("TX"))
        .expression_attribute_values(":min", n("6"))
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(sks(by_amount.items()), ["o3"]);
    let last = by_amount.last_evaluated_key().unwrap();
    assert_eq!(
        last.len(),
        3,
        "table keys and the index's sort key: {last:?}"
    );

    let err = ddb
        .query()
        .table_name(TABLE)
        .index_name("nope")
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s("TX"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some("The table does not have the specified index: nope")
    );
}

#[tokio::test]
async fn transactions_are_all_or_nothing_with_a_reason_per_action() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb).await;
    put(
        &ddb,
        &[("pk", s("TX")), ("sk", s("balance")), ("amount", n("10"))],
    )
    .await;
    put(&ddb, &[("pk", s("TX")), ("sk", s("account"))]).await;
    let transfer = |amount: &str| {
        ddb.transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(TABLE)
                            .key("pk", s("TX"))
                            .key("sk", s("balance"))
                            .update_expression("SET amount = amount - :a")
                            .condition_expression("amount >= :a")
                            .expression_attribute_values(":a", n(amount))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(TABLE)
                            .item("pk", s("TX"))
                            .item("sk", s(&format!("payment#{amount}")))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name(TABLE)
                            .key("pk", s("TX"))
                            .key("sk", s("account"))
                            .condition_expression("attribute_exists(pk)")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
    };
    let err = transfer("100")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        err.message(),
        Some(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None, None]"
        )
    );
    match err {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e) => {
            let codes: Vec<_> = e.cancellation_reasons().iter().map(|r| r.code().unwrap()).collect();
            assert_eq!(codes, ["ConditionalCheckFailed", "None", "None"]);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(
        get(&ddb, "TX", "payment#100").await.is_none(),
        "nothing was written"
    );

    transfer("4")
        .send()
        .await
        .expect("the transfer goes through");
    let got = ddb
        .transact_get_items()
        .transact_items(
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name(TABLE)
                        .key("pk", s("TX"))
                        .key("sk", s("balance"))
                        .projection_expression("amount")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactGetItem::builder()
                .get(
                    Get::builder()
                        .table_name(TABLE)
                        .key("pk", s("TX"))
                        .key("sk", s("missing"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let responses = got.responses();
    assert_eq!(
        responses[0].item().unwrap(),
        &HashMap::from([("amount".to_string(), n("6"))])
    );
    assert!(responses[1].item().is_none());
}

#[tokio::test]
async fn batch_get_item_returns_the_items_found() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb).await;
    put(&ddb, &[("pk", s("TX")), ("sk", s("a")), ("v", s("1"))]).await;
    put(&ddb, &[("pk", s("TX")), ("sk", s("b")), ("v", s("2"))]).await;
    let keys = KeysAndAttributes::builder()
        .keys(HashMap::from([
            ("pk".to_string(), s("TX")),
            ("sk".to_string(), s("a")),
        ]))
        .keys(HashMap::from([
            ("pk".to_string(), s("TX")),
            ("sk".to_string(), s("zzz")),
        ]))
        .keys(HashMap::from([
            ("pk".to_string(), s("TX")),
            ("sk".to_string(), s("b")),
        ]))
        .projection_expression("v")
        .build()
        .unwrap();
    let out = ddb
        .batch_get_item()
        .request_items(TABLE, keys)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let mut values: Vec<String> = out.responses().unwrap()[TABLE]
        .iter()
        .map(|i| i["v"].as_s().unwrap().clone())
        .collect();
    values.sort();
    assert_eq!(values, ["1", "2"]);
    assert!(out.unprocessed_keys().unwrap().is_empty());
    assert_eq!(out.consumed_capacity()[0].table_name(), Some(TABLE));
}

#[tokio::test]
async fn time_to_live_is_described_and_expired_items_are_deleted() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb).await;
    let described = ddb
        .describe_time_to_live()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described
            .time_to_live_description()
            .unwrap()
            .time_to_live_status()
            .map(|s| s.as_str()),
        Some("DISABLED")
    );
    ddb.update_time_to_live()
        .table_name(TABLE)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let described = ddb
        .describe_time_to_live()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    let description = described.time_to_live_description().unwrap();
    assert_eq!(description.attribute_name(), Some("expires"));
    assert_eq!(
        description.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );

    put(
        &ddb,
        &[("pk", s("TX")), ("sk", s("old")), ("expires", n("1000"))],
    )
    .await;
    put(
        &ddb,
        &[
            ("pk", s("TX")),
            ("sk", s("future")),
            ("expires", n("99999999999")),
        ],
    )
    .await;
    put(&ddb, &[("pk", s("TX")), ("sk", s("forever"))]).await;
    let items = ddb.scan().table_name(TABLE).send().await.unwrap();
    let mut left = sks(items.items());
    left.sort();
    assert_eq!(left, ["forever", "future"]);
}

#[tokio::test]
async fn table_settings_are_kept_and_a_protected_table_cannot_be_deleted() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    ddb.create_table()
        .table_name(TABLE)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .billing_mode(BillingMode::PayPerRequest)
        .deletion_protection_enabled(true)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .warm_throughput(
            WarmThroughput::builder()
                .read_units_per_second(15_000)
                .write_units_per_second(5_000)
                .build(),
        )
        .send()
        .await
        .unwrap();
    wait_active(&ddb, TABLE).await;
    let described = ddb.describe_table().table_name(TABLE).send().await.unwrap();
    let table = described.table().unwrap();
    assert_eq!(table.deletion_protection_enabled(), Some(true));
    assert_eq!(
        table
            .sse_description()
            .and_then(|d| d.status())
            .map(|s| s.as_str()),
        Some("ENABLED")
    );
    assert_eq!(
        table
            .warm_throughput()
            .and_then(|w| w.read_units_per_second()),
        Some(15_000)
    );

    let err = ddb
        .delete_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ResourceInUseException"));
    assert_eq!(
        err.message(),
        Some(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first."
        )
    );
    ddb.update_table()
        .table_name(TABLE)
        .deletion_protection_enabled(false)
        .send()
        .await
        .unwrap();
    wait_active(&ddb, TABLE).await;
    ddb.delete_table()
        .table_name(TABLE)
        .send()
        .await
        .expect("an unprotected table is deleted");
}

#[tokio::test]
async fn validation_messages_read_as_dynamodb_writes_them() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb).await;

    let writes: Vec<WriteRequest> = (0..26)
        .map(|i| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .item("pk", s("TX"))
                        .item("sk", s(&i.to_string()))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect();
    let err = ddb
        .batch_write_item()
        .request_items(TABLE, writes)
        .send()
        .await
        .unwrap_err();
    let message = err.message().unwrap();
    assert!(
        message.starts_with(
            "1 validation error detected: Value '{app-data=[com.amazonaws.dynamodb.v20120810.WriteRequest@"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "]}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"
        ),
        "{message}"
    );

    let long = "x".repeat(2049);
    let err = ddb
        .put_item()
        .table_name(TABLE)
        .item("pk", s(&long))
        .item("sk", s("a"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
        )
    );
    let err = ddb
        .put_item()
        .table_name(TABLE)
        .item("pk", s("TX"))
        .item("sk", s(&"y".repeat(1025)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
        )
    );

    let err = ddb
        .get_item()
        .table_name(TABLE)
        .key("pk", s("TX"))
        .key("sk", s("a"))
        .expression_attribute_names("#a", "a")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some("ExpressionAttributeNames can only be specified when using expressions")
    );

    let err = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s("TX"))
        .select(Select::from("EVERYTHING"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(
            "1 validation error detected: Value 'EVERYTHING' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
        )
    );

    let err = ddb
        .create_table()
        .table_name("other")
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::from("PRIMARY")))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(
            "1 validation error detected: Value 'PRIMARY' at 'keySchema.1.member.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]"
        )
    );

    let err = ddb
        .put_item()
        .table_name(TABLE)
        .item("pk", s("TX"))
        .item("sk", s("a"))
        .return_consumed_capacity(ReturnConsumedCapacity::from("ALL"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(
            "1 validation error detected: Value 'ALL' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
        )
    );
    let out = ddb
        .put_item()
        .table_name(TABLE)
        .item("pk", s("TX"))
        .item("sk", s("a"))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let consumed = out.consumed_capacity().unwrap();
    assert_eq!(consumed.table_name(), Some(TABLE));
    assert_eq!(consumed.capacity_units(), Some(1.0));
}
