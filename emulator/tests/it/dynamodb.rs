//! DynamoDB over the JSON 1.0 protocol, as the real `aws-sdk-dynamodb` client sees it: the table
//! lifecycle and tags the deployer drives, items, the partition Query Represent's functions run
//! on their cold path, BatchWriteItem's limits and unprocessed items, and durability.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    PutRequest, ScalarAttributeType, TableStatus, Tag, WriteRequest,
};
use emulator::{Config, Emulator};

use crate::support;

const TABLE: &str = "represent-dev-data";

fn client(emulator: &Emulator) -> Client {
    Client::new(&support::sdk_config(&emulator.endpoint()))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

/// Creates a table keyed as Represent's (`tenant`, `record`), tagged, and waits until it is
/// ACTIVE.
async fn create_table(ddb: &Client, name: &str) {
    send_create_table(ddb, name).await.expect("CreateTable");
    wait_active(ddb, name).await;
}

async fn send_create_table(
    ddb: &Client,
    name: &str,
) -> Result<
    aws_sdk_dynamodb::operation::create_table::CreateTableOutput,
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::create_table::CreateTableError>,
> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(attribute("tenant"))
        .attribute_definitions(attribute("record"))
        .key_schema(key("tenant", KeyType::Hash))
        .key_schema(key("record", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .tags(tag("deployer:app", "represent"))
        .tags(tag("deployer:stage", "dev"))
        .send()
        .await
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

/// Polls DescribeTable (the SDK's waiter polls every 20 seconds at least, too slow for tests).
async fn wait_active(ddb: &Client, name: &str) {
    for _ in 0..500 {
        let table = ddb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .expect("DescribeTable");
        if table.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("table {name} never became ACTIVE");
}

fn put(tenant: &str, record: &str, data: &str) -> WriteRequest {
    WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .item("tenant", s(tenant))
                .item("record", s(record))
                .item("data", s(data))
                .build()
                .unwrap(),
        )
        .build()
}

fn delete(tenant: &str, record: &str) -> WriteRequest {
    WriteRequest::builder()
        .delete_request(
            DeleteRequest::builder()
                .key("tenant", s(tenant))
                .key("record", s(record))
                .build()
                .unwrap(),
        )
        .build()
}

/// Writes `writes` in batches of 25, failing on anything left unprocessed.
async fn write_all(ddb: &Client, table: &str, writes: Vec<WriteRequest>) {
    for chunk in writes.chunks(25) {
        let out = ddb
            .batch_write_item()
            .request_items(table, chunk.to_vec())
            .send()
            .await
            .expect("BatchWriteItem");
        assert!(
            out.unprocessed_items().is_none_or(|m| m.is_empty()),
            "unexpected unprocessed items: {:?}",
            out.unprocessed_items()
        );
    }
}

/// The `record` keys of one tenant's partition, following every page, with `limit` per page.
async fn query_records(ddb: &Client, tenant: &str, limit: Option<i32>) -> (Vec<String>, usize) {
    let mut records = Vec::new();
    let mut pages = 0;
    let mut start: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let page = ddb
            .query()
            .table_name(TABLE)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", "tenant")
            .expression_attribute_values(":pk", s(tenant))
            .set_limit(limit)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("Query");
        pages += 1;
        for item in page.items() {
            assert_eq!(item["tenant"], s(tenant), "an item of another partition");
            records.push(item["record"].as_s().unwrap().clone());
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
        assert!(pages < 1000, "Query never stopped paging");
    }
    (records, pages)
}

#[tokio::test]
async fn create_table_is_creating_then_active_and_a_duplicate_is_in_use() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);

    let missing = ddb
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{missing:?}"
    );

    let created = send_create_table(&ddb, TABLE).await.expect("CreateTable");
    let table = created.table_description().expect("TableDescription");
    assert_eq!(table.table_status(), Some(&TableStatus::Creating));
    assert_eq!(
        table.table_arn(),
        Some("arn:aws:dynamodb:us-east-1:000000000000:table/represent-dev-data")
    );
    assert!(
        table
            .creation_date_time()
            .is_some_and(|t| t.secs() > 1_600_000_000)
    );
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let keys: Vec<(&str, &KeyType)> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    assert_eq!(
        keys,
        [("tenant", &KeyType::Hash), ("record", &KeyType::Range)]
    );

    wait_active(&ddb, TABLE).await;

    let again = send_create_table(&ddb, TABLE).await.unwrap_err();
    let again = again.into_service_error();
    assert!(again.is_resource_in_use_exception(), "{again:?}");
    assert_eq!(
        again.message(),
        Some("Table already exists: represent-dev-data")
    );

    let listed = ddb.list_tables().send().await.expect("ListTables");
    assert_eq!(listed.table_names(), [TABLE]);
}

#[tokio::test]
async fn a_table_being_created_takes_no_items_and_cannot_be_deleted_yet() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.pending_delay = Duration::from_secs(600);
    let emulator = Emulator::start(config).await.unwrap();
    let ddb = client(&emulator);
    send_create_table(&ddb, TABLE).await.expect("CreateTable");

    let put = ddb
        .put_item()
        .table_name(TABLE)
        .item("tenant", s("TX"))
        .item("record", s("meta"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(put.is_resource_not_found_exception(), "{put:?}");

    let deleted = ddb
        .delete_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(deleted.is_resource_in_use_exception(), "{deleted:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn tags_round_trip_by_table_arn() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb, TABLE).await;
    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/represent-dev-data";

    let tags = |out: &[Tag]| -> Vec<(String, String)> {
        out.iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    };
    let listed = ddb
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("ListTagsOfResource");
    assert_eq!(
        tags(listed.tags()),
        [
            ("deployer:app".to_string(), "represent".to_string()),
            ("deployer:stage".to_string(), "dev".to_string())
        ]
    );

    ddb.tag_resource()
        .resource_arn(arn)
        .tags(tag("deployer:logical-id", "data"))
        .tags(tag("deployer:stage", "prod"))
        .send()
        .await
        .expect("TagResource");
    ddb.untag_resource()
        .resource_arn(arn)
        .tag_keys("deployer:app")
        .send()
        .await
        .expect("UntagResource");
    let listed = ddb
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("ListTagsOfResource");
    assert_eq!(
        tags(listed.tags()),
        [
            ("deployer:logical-id".to_string(), "data".to_string()),
            ("deployer:stage".to_string(), "prod".to_string())
        ]
    );

    let missing = ddb
        .list_tags_of_resource()
        .resource_arn("arn:aws:dynamodb:us-east-1:000000000000:table/nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");
    let malformed = ddb
        .list_tags_of_resource()
        .resource_arn("represent-dev-data")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(malformed.code(), Some("ValidationException"));
}

#[tokio::test]
async fn items_round_trip_every_attribute_type() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb, TABLE).await;

    let nested = AttributeValue::M(HashMap::from([
        ("n".to_string(), AttributeValue::N("-12.50".into())),
        (
            "l".to_string(),
            AttributeValue::L(vec![AttributeValue::Bool(true), AttributeValue::Null(true)]),
        ),
    ]));
    let item = HashMap::from([
        ("tenant".to_string(), s("TX")),
        ("record".to_string(), s("meta")),
        (
            "data".to_string(),
            s(r#"{"name":"Texas \"Lone Star\" ünïcode"}"#),
        ),
        ("nested".to_string(), nested),
        (
            "set".to_string(),
            AttributeValue::Ss(vec!["a".into(), "b".into()]),
        ),
    ]);
    let first = ddb
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item.clone()))
        .send()
        .await
        .expect("PutItem");
    assert!(first.attributes().is_none());

    let got = ddb
        .get_item()
        .table_name(TABLE)
        .key("tenant", s("TX"))
        .key("record", s("meta"))
        .send()
        .await
        .expect("GetItem");
    assert_eq!(got.item(), Some(&item));

    let replaced = ddb
        .put_item()
        .table_name(TABLE)
        .item("tenant", s("TX"))
        .item("record", s("meta"))
        .item("data", s("v2"))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await
        .expect("PutItem replacing");
    assert_eq!(replaced.attributes(), Some(&item));

    ddb.delete_item()
        .table_name(TABLE)
        .key("tenant", s("TX"))
        .key("record", s("meta"))
        .send()
        .await
        .expect("DeleteItem");
    let gone = ddb
        .get_item()
        .table_name(TABLE)
        .key("tenant", s("TX"))
        .key("record", s("meta"))
        .send()
        .await
        .expect("GetItem after delete");
    assert!(gone.item().is_none());

    let missing_key = ddb
        .put_item()
        .table_name(TABLE)
        .item("tenant", s("TX"))
        .item("data", s("no sort key"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(missing_key.code(), Some("ValidationException"));
    assert_eq!(
        missing_key.message(),
        Some("One or more parameter values were invalid: Missing the key record in the item")
    );
    let wrong_type = ddb
        .get_item()
        .table_name(TABLE)
        .key("tenant", AttributeValue::N("1".into()))
        .key("record", s("meta"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(wrong_type.code(), Some("ValidationException"));
    assert!(
        wrong_type
            .message()
            .is_some_and(|m| m.contains("Type mismatch for key tenant expected: S actual: N")),
        "{wrong_type:?}"
    );
    let no_table = ddb
        .get_item()
        .table_name("represent-dev-missing")
        .key("tenant", s("TX"))
        .key("record", s("meta"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(no_table.is_resource_not_found_exception(), "{no_table:?}");
}

#[tokio::test]
async fn errors_carry_dynamodb_wire_shape() {
    let (emulator, _dir) = support::start().await;
    let response = support::raw_request(
        emulator.local_addr(),
        "POST",
        "/",
        &[
            ("X-Amz-Target", "DynamoDB_20120810.DescribeTable"),
            ("Content-Type", "application/x-amz-json-1.0"),
        ],
        br#"{"TableName":"represent-dev-data"}"#,
    )
    .await;
    assert_eq!(response.status, 400);
    assert_eq!(
        response.header("content-type"),
        Some("application/x-amz-json-1.0")
    );
    assert_eq!(
        response.json(),
        serde_json::json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            "message": "Requested resource not found: Table: represent-dev-data not found",
        })
    );
}

#[tokio::test]
async fn query_returns_one_partition_in_sort_key_order() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb, TABLE).await;
    write_all(
        &ddb,
        TABLE,
        vec![
            put("TX", "county#Travis", "t"),
            put("TX", "meta", "m"),
            put("TX", "county#Bexar", "b"),
            put("TXX", "county#Zzz", "other tenant sharing a prefix"),
            put("OK", "county#Tulsa", "other tenant"),
            put("TX", "district#01", "d"),
        ],
    )
    .await;

    let (records, _) = query_records(&ddb, "TX", None).await;
    assert_eq!(
        records,
        ["county#Bexar", "county#Travis", "district#01", "meta"]
    );

    let counties = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("tenant = :t AND begins_with(#sk, :prefix)")
        .expression_attribute_names("#sk", "record")
        .expression_attribute_values(":t", s("TX"))
        .expression_attribute_values(":prefix", s("county#"))
        .scan_index_forward(false)
        .send()
        .await
        .expect("Query with begins_with");
    let records: Vec<&str> = counties
        .items()
        .iter()
        .map(|i| i["record"].as_s().unwrap().as_str())
        .collect();
    assert_eq!(records, ["county#Travis", "county#Bexar"]);
    assert_eq!(counties.count(), 2);
    assert!(counties.last_evaluated_key().is_none());

    let exact = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("#pk = :t AND #sk = :v")
        .expression_attribute_names("#pk", "tenant")
        .expression_attribute_names("#sk", "record")
        .expression_attribute_values(":t", s("TX"))
        .expression_attribute_values(":v", s("meta"))
        .send()
        .await
        .expect("Query by full key");
    assert_eq!(exact.items().len(), 1);
    assert_eq!(exact.items()[0]["data"], s("m"));

    let (nobody, _) = query_records(&ddb, "WY", None).await;
    assert!(nobody.is_empty());

    let unused = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("tenant = :t")
        .expression_attribute_names("#sk", "record")
        .expression_attribute_values(":t", s("TX"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(unused.code(), Some("ValidationException"));
    let no_partition = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("record = :v")
        .expression_attribute_values(":v", s("meta"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        no_partition.message(),
        Some("Query condition missed key schema element: tenant")
    );
}

#[tokio::test]
async fn query_pages_visit_every_item_exactly_once() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb, TABLE).await;
    let mut expected: Vec<String> = (0..300).map(|i| format!("county#{i:03}")).collect();
    write_all(
        &ddb,
        TABLE,
        expected.iter().rev().map(|r| put("CA", r, "x")).collect(),
    )
    .await;
    write_all(&ddb, TABLE, vec![put("NV", "county#000", "x")]).await;
    expected.sort();

    let (records, pages) = query_records(&ddb, "CA", Some(7)).await;
    assert_eq!(records, expected);
    // 300 items in pages of 7: 42 full pages and a last one of 6.
    assert_eq!(pages, 43);

    let (records, pages) = query_records(&ddb, "CA", None).await;
    assert_eq!(records, expected);
    assert_eq!(pages, 1);
}

#[tokio::test]
async fn query_pages_stop_at_one_megabyte() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb, TABLE).await;
    let big = "x".repeat(100 * 1024);
    let writes: Vec<WriteRequest> = (0..15)
        .map(|i| put("TX", &format!("chunk#{i:02}"), &big))
        .collect();
    write_all(&ddb, TABLE, writes).await;

    let first = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("tenant = :t")
        .expression_attribute_values(":t", s("TX"))
        .send()
        .await
        .expect("Query");
    assert_eq!(first.items().len(), 10, "ten 100 KB items fit in 1 MB");
    assert!(first.last_evaluated_key().is_some());

    let (records, pages) = query_records(&ddb, "TX", None).await;
    assert_eq!(records.len(), 15);
    assert_eq!(pages, 2);
}

#[tokio::test]
async fn batch_write_puts_deletes_and_refuses_more_than_25() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb, TABLE).await;
    write_all(
        &ddb,
        TABLE,
        vec![
            put("TX", "a", "1"),
            put("TX", "b", "2"),
            put("TX", "c", "3"),
        ],
    )
    .await;
    write_all(
        &ddb,
        TABLE,
        vec![
            delete("TX", "a"),
            put("TX", "b", "two"),
            delete("TX", "zzz"),
        ],
    )
    .await;
    let (records, _) = query_records(&ddb, "TX", None).await;
    assert_eq!(records, ["b", "c"]);

    let too_many: Vec<WriteRequest> = (0..26).map(|i| put("TX", &format!("r{i}"), "x")).collect();
    let refused = ddb
        .batch_write_item()
        .request_items(TABLE, too_many)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(refused.code(), Some("ValidationException"));
    assert!(
        refused
            .message()
            .unwrap()
            .ends_with("at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"),
        "{refused:?}"
    );
    let (records, _) = query_records(&ddb, "TX", None).await;
    assert_eq!(records, ["b", "c"], "a refused batch writes nothing");

    let duplicates = ddb
        .batch_write_item()
        .request_items(TABLE, vec![put("TX", "d", "1"), delete("TX", "d")])
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        duplicates.message(),
        Some("Provided list of item keys contains duplicates")
    );
}

#[tokio::test]
async fn unprocessed_items_come_back_and_a_retry_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        dynamodb_unprocessed_every: Some(2),
        ..support::config(dir.path())
    };
    let emulator = Emulator::start(config).await.unwrap();
    let ddb = client(&emulator);
    create_table(&ddb, TABLE).await;

    let first = ddb
        .batch_write_item()
        .request_items(TABLE, vec![put("TX", "a", "1"), put("TX", "b", "2")])
        .send()
        .await
        .expect("first BatchWriteItem");
    assert!(first.unprocessed_items().is_none_or(|m| m.is_empty()));

    let second = ddb
        .batch_write_item()
        .request_items(TABLE, vec![put("TX", "c", "3"), put("TX", "d", "4")])
        .send()
        .await
        .expect("second BatchWriteItem");
    let left = second
        .unprocessed_items()
        .and_then(|m| m.get(TABLE))
        .cloned()
        .expect("the second call leaves work undone");
    assert_eq!(left, vec![put("TX", "d", "4")]);
    let (records, _) = query_records(&ddb, "TX", None).await;
    assert_eq!(
        records,
        ["a", "b", "c"],
        "an unprocessed write is not applied"
    );

    let retry = ddb
        .batch_write_item()
        .request_items(TABLE, left)
        .send()
        .await
        .expect("retry");
    assert!(retry.unprocessed_items().is_none_or(|m| m.is_empty()));
    let (records, _) = query_records(&ddb, "TX", None).await;
    assert_eq!(records, ["a", "b", "c", "d"]);
    emulator.shutdown().await;
}

#[tokio::test]
async fn tables_and_items_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = Emulator::start(support::config(dir.path())).await.unwrap();
    let ddb = client(&first);
    create_table(&ddb, TABLE).await;
    write_all(
        &ddb,
        TABLE,
        vec![put("TX", "meta", "texas"), put("OK", "meta", "oklahoma")],
    )
    .await;
    first.shutdown().await;

    let second = Emulator::start(support::config(dir.path())).await.unwrap();
    let ddb = client(&second);
    let table = ddb
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .expect("DescribeTable after restart");
    let table = table.table().unwrap();
    assert_eq!(table.table_status(), Some(&TableStatus::Active));
    assert_eq!(table.item_count(), Some(2));
    let tags = ddb
        .list_tags_of_resource()
        .resource_arn(table.table_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 2);
    let got = ddb
        .get_item()
        .table_name(TABLE)
        .key("tenant", s("TX"))
        .key("record", s("meta"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().and_then(|i| i.get("data")), Some(&s("texas")));
    second.shutdown().await;
}

#[tokio::test]
async fn delete_table_removes_the_table_and_its_items() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb, TABLE).await;
    write_all(&ddb, TABLE, vec![put("TX", "meta", "texas")]).await;

    let deleted = ddb
        .delete_table()
        .table_name(TABLE)
        .send()
        .await
        .expect("DeleteTable");
    assert_eq!(
        deleted.table_description().and_then(|t| t.table_status()),
        Some(&TableStatus::Deleting)
    );
    let gone = ddb
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(gone.is_resource_not_found_exception(), "{gone:?}");
    let again = ddb
        .delete_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(again.is_resource_not_found_exception(), "{again:?}");

    // A table created again under the same name starts empty.
    create_table(&ddb, TABLE).await;
    let (records, _) = query_records(&ddb, "TX", None).await;
    assert!(records.is_empty(), "{records:?}");
}

#[tokio::test]
async fn update_table_changes_the_billing_mode() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    create_table(&ddb, TABLE).await;

    let updated = ddb
        .update_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(
            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                .read_capacity_units(5)
                .write_capacity_units(3)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("UpdateTable");
    assert_eq!(
        updated.table_description().and_then(|t| t.table_status()),
        Some(&TableStatus::Updating)
    );
    wait_active(&ddb, TABLE).await;
    let described = ddb.describe_table().table_name(TABLE).send().await.unwrap();
    let table = described.table().unwrap();
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::Provisioned)
    );
    let throughput = table.provisioned_throughput().unwrap();
    assert_eq!(
        (
            throughput.read_capacity_units(),
            throughput.write_capacity_units()
        ),
        (Some(5), Some(3))
    );

    let no_capacity = ddb
        .update_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .provisioned_throughput(
            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                .read_capacity_units(5)
                .write_capacity_units(3)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(no_capacity.code(), Some("ValidationException"));
}

#[tokio::test]
async fn a_table_settling_at_shutdown_comes_back_active_and_an_update_blocks_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(dir.path());
    config.pending_delay = Duration::from_secs(600);
    let first = Emulator::start(config.clone()).await.unwrap();
    send_create_table(&client(&first), TABLE)
        .await
        .expect("CreateTable");
    first.shutdown().await;

    let second = Emulator::start(config).await.unwrap();
    let ddb = client(&second);
    let described = ddb.describe_table().table_name(TABLE).send().await.unwrap();
    assert_eq!(
        described.table().and_then(|t| t.table_status()),
        Some(&TableStatus::Active)
    );

    let updated = ddb
        .update_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("UpdateTable");
    assert_eq!(
        updated.table_description().and_then(|t| t.table_status()),
        Some(&TableStatus::Updating)
    );
    // An updating table still serves items, but refuses other changes until it settles.
    write_all(&ddb, TABLE, vec![put("TX", "meta", "texas")]).await;
    let deleted = ddb
        .delete_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(deleted.is_resource_in_use_exception(), "{deleted:?}");
    assert_eq!(
        deleted.message(),
        Some(
            "Attempt to change a resource which is still in use: Table is being updated: represent-dev-data"
        )
    );
    second.shutdown().await;
}

#[tokio::test]
async fn list_tables_pages_in_name_order() {
    let (emulator, _dir) = support::start().await;
    let ddb = client(&emulator);
    for name in ["represent-dev-c", "represent-dev-a", "represent-dev-b"] {
        send_create_table(&ddb, name).await.expect("CreateTable");
    }
    let first = ddb.list_tables().limit(2).send().await.expect("ListTables");
    assert_eq!(first.table_names(), ["represent-dev-a", "represent-dev-b"]);
    assert_eq!(first.last_evaluated_table_name(), Some("represent-dev-b"));
    let second = ddb
        .list_tables()
        .limit(2)
        .exclusive_start_table_name("represent-dev-b")
        .send()
        .await
        .expect("ListTables");
    assert_eq!(second.table_names(), ["represent-dev-c"]);
    assert_eq!(second.last_evaluated_table_name(), None);
}
