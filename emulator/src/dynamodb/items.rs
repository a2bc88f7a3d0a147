//! DynamoDB's item operations: PutItem, GetItem, DeleteItem, Query over one partition (in
//! sort-key order, paged by `Limit` and 1 MB) and BatchWriteItem (at most 25 writes, applied in
//! one transaction, with the test knob that leaves some unprocessed).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Value, json};

use super::tables::{Table, load_table};
use super::value::{self, Item, KeySchema, MAX_ITEM_BYTES, StoredKey};
use super::{
    DynamoError, MAX_BATCH_WRITES, PAGE_BYTES, Settling, expr, input, required, table_name,
    with_store,
};
use crate::server::AppState;
use crate::store::{self, ItemWrite, PartitionQuery, SortKeyRange, StoreError};
/// The table an item operation addresses, which must exist and be ACTIVE: DynamoDB does not
/// accept item operations on a table that is still being created.
fn active_table(
    app: &AppState,
    conn: &Connection,
    name: &str,
) -> Result<Option<Table>, StoreError> {
    if app.dynamodb.settling(name) == Some(Settling::Creating) {
        return Ok(None);
    }
    load_table(conn, name)
}

/// What PutItem and DeleteItem return: nothing, or the old item for `ReturnValues: ALL_OLD`.
fn return_old(return_values: Option<&str>) -> Result<bool, DynamoError> {
    match return_values {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(other @ ("UPDATED_OLD" | "ALL_NEW" | "UPDATED_NEW")) => Err(DynamoError::validation(
            format!("Return values set to invalid value: {other}"),
        )),
        Some(other) => Err(DynamoError::constraint(
            other,
            "returnValues",
            "Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]",
        )),
    }
}

fn old_attributes(old: Option<String>, table: &str) -> Result<Value, StoreError> {
    let Some(old) = old else {
        return Ok(json!({}));
    };
    let item: Value = serde_json::from_str(&old).map_err(|source| StoreError::Corrupt {
        what: "DynamoDB item",
        name: table.to_string(),
        source,
    })?;
    Ok(json!({ "Attributes": item }))
}

/// Parameters the emulator does not implement; a request using one is refused, not half-served.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Unsupported {
    condition_expression: Option<Value>,
    expected: Option<Value>,
    projection_expression: Option<Value>,
    attributes_to_get: Option<Value>,
    filter_expression: Option<Value>,
    query_filter: Option<Value>,
    index_name: Option<Value>,
    key_conditions: Option<Value>,
}

impl Unsupported {
    fn check(&self) -> Result<(), DynamoError> {
        let used = [
            ("ConditionExpression", &self.condition_expression),
            ("Expected", &self.expected),
            ("ProjectionExpression", &self.projection_expression),
            ("AttributesToGet", &self.attributes_to_get),
            ("FilterExpression", &self.filter_expression),
            ("QueryFilter", &self.query_filter),
            ("IndexName", &self.index_name),
            ("KeyConditions", &self.key_conditions),
        ];
        match used.iter().find(|(_, v)| v.is_some()) {
            Some((name, _)) => Err(DynamoError::unsupported(name)),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ItemInput {
    table_name: Option<String>,
    item: Option<Item>,
    key: Option<Item>,
    return_values: Option<String>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

/// A validated item to put: its key and stored text.
fn prepared_put(schema: &KeySchema, item: &Item) -> Result<(StoredKey, String, i64), DynamoError> {
    value::validate_item(item)?;
    let key = schema.key_of_item(item)?;
    let size = value::item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(DynamoError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    let text = serde_json::to_string(item).map_err(|e| DynamoError::internal(e.to_string()))?;
    Ok((key, text, size))
}

pub(super) async fn put_item(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: ItemInput = input(body)?;
    input.unsupported.check()?;
    let name = table_name(input.table_name)?;
    let item = required(input.item, "item")?;
    let return_old = return_old(input.return_values.as_deref())?;
    let state = Arc::clone(app);
    with_store(app, move |conn| {
        let Some(table) = active_table(&state, conn, &name)? else {
            return Ok(Err(DynamoError::resource_not_found()));
        };
        let (key, text, size) = match prepared_put(&table.definition.key_schema, &item) {
            Ok(prepared) => prepared,
            Err(e) => return Ok(Err(e)),
        };
        let write = ItemWrite::Put {
            table: name.clone(),
            pk: key.pk,
            sk: key.sk,
            item: text,
            size,
        };
        let old = store::write_dynamodb_items(conn, &[write])?.pop().flatten();
        let old = if return_old { old } else { None };
        Ok(Ok(old_attributes(old, &name)?.to_string()))
    })
    .await
}

pub(super) async fn get_item(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: ItemInput = input(body)?;
    input.unsupported.check()?;
    let name = table_name(input.table_name)?;
    let key = required(input.key, "key")?;
    let state = Arc::clone(app);
    with_store(app, move |conn| {
        let Some(table) = active_table(&state, conn, &name)? else {
            return Ok(Err(DynamoError::resource_not_found()));
        };
        let key = match table.definition.key_schema.key_of_key(&key) {
            Ok(key) => key,
            Err(e) => return Ok(Err(e)),
        };
        let found = store::dynamodb_item(conn, &name, &key.pk, &key.sk)?;
        Ok(Ok(match found {
            Some(item) => format!("{{\"Item\":{item}}}"),
            None => "{}".to_string(),
        }))
    })
    .await
}

pub(super) async fn delete_item(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: ItemInput = input(body)?;
    input.unsupported.check()?;
    let name = table_name(input.table_name)?;
    let key = required(input.key, "key")?;
    let return_old = return_old(input.return_values.as_deref())?;
    let state = Arc::clone(app);
    with_store(app, move |conn| {
        let Some(table) = active_table(&state, conn, &name)? else {
            return Ok(Err(DynamoError::resource_not_found()));
        };
        let key = match table.definition.key_schema.key_of_key(&key) {
            Ok(key) => key,
            Err(e) => return Ok(Err(e)),
        };
        let write = ItemWrite::Delete {
            table: name.clone(),
            pk: key.pk,
            sk: key.sk,
        };
        let old = store::write_dynamodb_items(conn, &[write])?.pop().flatten();
        let old = if return_old { old } else { None };
        Ok(Ok(old_attributes(old, &name)?.to_string()))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueryInput {
    table_name: Option<String>,
    key_condition_expression: Option<String>,
    #[serde(default)]
    expression_attribute_names: HashMap<String, String>,
    #[serde(default)]
    expression_attribute_values: HashMap<String, Value>,
    limit: Option<i64>,
    exclusive_start_key: Option<Item>,
    scan_index_forward: Option<bool>,
    select: Option<String>,
    #[serde(flatten)]
    unsupported: Unsupported,
}

pub(super) async fn query(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: QueryInput = input(body)?;
    input.unsupported.check()?;
    let name = table_name(input.table_name)?;
    let Some(expression) = input.key_condition_expression else {
        return Err(DynamoError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ));
    };
    let limit = match input.limit {
        None => None,
        Some(limit) if limit >= 1 => Some(limit as usize),
        Some(limit) => {
            return Err(DynamoError::constraint(
                &limit.to_string(),
                "limit",
                "Member must have value greater than or equal to 1",
            ));
        }
    };
    let count_only = match input.select.as_deref() {
        None | Some("ALL_ATTRIBUTES") => false,
        Some("COUNT") => true,
        Some(other) => return Err(DynamoError::unsupported(&format!("Select {other}"))),
    };
    let forward = input.scan_index_forward.unwrap_or(true);
    let names = input.expression_attribute_names;
    let values = input.expression_attribute_values;
    let start = input.exclusive_start_key;
    let state = Arc::clone(app);
    with_store(app, move |conn| {
        let Some(table) = active_table(&state, conn, &name)? else {
            return Ok(Err(DynamoError::resource_not_found()));
        };
        let schema = &table.definition.key_schema;
        let condition = match expr::key_condition(&expression, &names, &values, schema) {
            Ok(condition) => condition,
            Err(e) => return Ok(Err(e)),
        };
        let after = match start.as_ref().map(|key| schema.key_of_key(key)) {
            None => None,
            Some(Ok(key)) if key.pk == condition.pk => Some(key.sk),
            Some(Ok(_)) => {
                return Ok(Err(DynamoError::validation(
                    "The provided starting key is invalid: The provided key element does not match the schema",
                )));
            }
            Some(Err(e)) => return Ok(Err(e)),
        };
        // A table without a sort key holds at most one item per partition.
        let range = if schema.range.is_none() {
            SortKeyRange::All
        } else {
            condition.range
        };
        let page = PartitionQuery {
            table: name.clone(),
            pk: condition.pk,
            range,
            forward,
            after,
            limit,
            max_bytes: PAGE_BYTES,
        };
        let (items, more) = store::query_dynamodb_partition(conn, &page)?;
        let mut body = String::with_capacity(items.iter().map(|i| i.item.len() + 1).sum::<usize>() + 64);
        body.push('{');
        if !count_only {
            body.push_str("\"Items\":[");
            for (i, stored) in items.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&stored.item);
            }
            body.push_str("],");
        }
        body.push_str(&format!(
            "\"Count\":{0},\"ScannedCount\":{0}",
            items.len()
        ));
        if let Some(last) = items.last().filter(|_| more) {
            let item: Item =
                serde_json::from_str(&last.item).map_err(|source| StoreError::Corrupt {
                    what: "DynamoDB item",
                    name: name.clone(),
                    source,
                })?;
            let key = Value::Object(schema.key_attributes(&item));
            body.push_str(&format!(",\"LastEvaluatedKey\":{key}"));
        }
        body.push('}');
        Ok(Ok(body))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchWriteInput {
    request_items: Option<serde_json::Map<String, Value>>,
}

/// One write request of a BatchWriteItem, parsed, with the JSON it came as (UnprocessedItems
/// hands the same request back).
struct BatchWrite {
    table: String,
    request: Value,
    put: Option<Item>,
    key: Option<Item>,
}

fn batch_writes(
    request_items: serde_json::Map<String, Value>,
) -> Result<Vec<BatchWrite>, DynamoError> {
    if request_items.is_empty() {
        return Err(DynamoError::constraint(
            "{}",
            "requestItems",
            "Member must have length greater than or equal to 1",
        ));
    }
    let mut writes = Vec::new();
    for (table, requests) in request_items {
        let table = table_name(Some(table))?;
        let Value::Array(requests) = requests else {
            return Err(DynamoError::serialization(
                "a table's write requests must be a list",
            ));
        };
        if requests.len() > MAX_BATCH_WRITES || requests.is_empty() {
            let constraint = if requests.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 25"
            };
            return Err(DynamoError::constraint(
                &requests.len().to_string(),
                "requestItems",
                constraint,
            ));
        }
        for request in requests {
            let put = request
                .pointer("/PutRequest/Item")
                .and_then(Value::as_object)
                .cloned();
            let key = request
                .pointer("/DeleteRequest/Key")
                .and_then(Value::as_object)
                .cloned();
            if put.is_some() == key.is_some() {
                return Err(DynamoError::validation(
                    "A WriteRequest must hold exactly one of PutRequest (with an Item) and DeleteRequest (with a Key)",
                ));
            }
            writes.push(BatchWrite {
                table: table.clone(),
                request,
                put,
                key,
            });
        }
    }
    if writes.len() > MAX_BATCH_WRITES {
        return Err(DynamoError::validation(
            "Too many items requested for the BatchWriteItem call",
        ));
    }
    Ok(writes)
}

pub(super) async fn batch_write_item(
    app: &Arc<AppState>,
    body: &[u8],
) -> Result<String, DynamoError> {
    let input: BatchWriteInput = input(body)?;
    let mut writes = batch_writes(required(input.request_items, "requestItems")?)?;
    let state = Arc::clone(app);
    let every = app.config.dynamodb_unprocessed_every.filter(|n| *n > 0);
    with_store(app, move |conn| {
        let mut tables: HashMap<String, Table> = HashMap::new();
        let mut stored = Vec::with_capacity(writes.len());
        let mut seen = HashSet::new();
        for write in &writes {
            if !tables.contains_key(&write.table) {
                let Some(table) = active_table(&state, conn, &write.table)? else {
                    return Ok(Err(DynamoError::resource_not_found()));
                };
                tables.insert(write.table.clone(), table);
            }
            let schema = &tables[&write.table].definition.key_schema;
            let prepared = match (&write.put, &write.key) {
                (Some(item), _) => {
                    prepared_put(schema, item).map(|(key, text, size)| ItemWrite::Put {
                        table: write.table.clone(),
                        pk: key.pk,
                        sk: key.sk,
                        item: text,
                        size,
                    })
                }
                (None, Some(key)) => schema.key_of_key(key).map(|key| ItemWrite::Delete {
                    table: write.table.clone(),
                    pk: key.pk,
                    sk: key.sk,
                }),
                (None, None) => Err(DynamoError::internal("write request without a write")),
            };
            let prepared = match prepared {
                Ok(prepared) => prepared,
                Err(e) => return Ok(Err(e)),
            };
            let (ItemWrite::Put { table, pk, sk, .. } | ItemWrite::Delete { table, pk, sk }) =
                &prepared;
            if !seen.insert((table.clone(), pk.clone(), sk.clone())) {
                return Ok(Err(DynamoError::validation(
                    "Provided list of item keys contains duplicates",
                )));
            }
            stored.push(prepared);
        }
        // The test knob: every Nth call leaves its last write undone and hands it back, as
        // DynamoDB does under load, so that callers' retry paths run for real.
        let call = state.dynamodb.batch_writes.fetch_add(1, Ordering::Relaxed) + 1;
        let mut unprocessed = serde_json::Map::new();
        if every.is_some_and(|n| call.is_multiple_of(u64::from(n))) {
            stored.pop();
            if let Some(left) = writes.pop() {
                unprocessed.insert(left.table, Value::Array(vec![left.request]));
            }
        }
        store::write_dynamodb_items(conn, &stored)?;
        Ok(Ok(json!({ "UnprocessedItems": unprocessed }).to_string()))
    })
    .await
}
