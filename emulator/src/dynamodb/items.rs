//! DynamoDB's item operations: PutItem, GetItem, UpdateItem and DeleteItem (with conditions
//! and return values), Query and Scan (on the table or a secondary index, with filters,
//! projections, `Select`, pages of `Limit` items or 1 MB, and parallel Scan segments),
//! BatchWriteItem (at most 25 writes, with the test knob that leaves some unprocessed),
//! BatchGetItem, and TransactWriteItems / TransactGetItems (all or nothing, with a cancellation
//! reason per action).
//!
//! Every operation runs on the store's one connection, so a condition is checked and the write
//! made with no other request in between.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Value, json};

use super::expr::{self, Action, Condition, Kind, Path, Placeholders};
use super::tables::{Definition, Index, Table, load_table};
use super::value::{self, Item, MAX_ITEM_BYTES, StoredKey};
use super::{
    DynamoError, MAX_BATCH_WRITES, PAGE_BYTES, Settling, input, required, table_name, with_store,
};
use crate::clock;
use crate::server::AppState;
use crate::store::{self, IndexKey, ItemWrite, PageRead, Position, SortKeyRange, StoreError};

/// BatchGetItem's and the transactions' limit on items per call.
const MAX_BATCH_GETS: usize = 100;
const MAX_TRANSACT_ITEMS: usize = 100;

/// The table an item operation addresses, which must exist and be ACTIVE: DynamoDB does not
/// accept item operations on a table that is still being created. On a table with time to
/// live, items whose time has passed are deleted first.
fn open_table(
    app: &AppState,
    conn: &mut Connection,
    name: &str,
) -> Result<Option<Table>, StoreError> {
    if app.dynamodb.settling(name) == Some(Settling::Creating) {
        return Ok(None);
    }
    let table = load_table(conn, name)?;
    if let Some(attribute) = table.as_ref().and_then(|t| t.definition.ttl.as_ref()) {
        store::expire_dynamodb_items(conn, name, attribute, clock::now_millis() / 1000)?;
    }
    Ok(table)
}

fn parse_item(text: &str, table: &str) -> Result<Item, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        what: "DynamoDB item",
        name: table.to_string(),
        source,
    })
}

/// Legacy parameters (from before expressions) the emulator does not implement; a request using
/// one is refused, not half-served.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Legacy {
    expected: Option<Value>,
    attributes_to_get: Option<Value>,
    query_filter: Option<Value>,
    scan_filter: Option<Value>,
    key_conditions: Option<Value>,
    attribute_updates: Option<Value>,
    conditional_operator: Option<Value>,
}

impl Legacy {
    fn check(&self) -> Result<(), DynamoError> {
        let used = [
            ("Expected", &self.expected),
            ("AttributesToGet", &self.attributes_to_get),
            ("QueryFilter", &self.query_filter),
            ("ScanFilter", &self.scan_filter),
            ("KeyConditions", &self.key_conditions),
            ("AttributeUpdates", &self.attribute_updates),
            ("ConditionalOperator", &self.conditional_operator),
        ];
        match used.iter().find(|(_, v)| v.is_some()) {
            Some((name, _)) => Err(DynamoError::unsupported(&format!(
                "the legacy parameter {name}; use the expression parameters instead"
            ))),
            None => Ok(()),
        }
    }
}

/// The placeholders of a request, refusing them where no expression could use them.
fn placeholders(
    names: Option<HashMap<String, String>>,
    values: Option<Item>,
    uses_expressions: bool,
) -> Result<Placeholders, DynamoError> {
    if let Some(names) = &names {
        if !uses_expressions {
            return Err(DynamoError::validation(
                "ExpressionAttributeNames can only be specified when using expressions",
            ));
        }
        if names.is_empty() {
            return Err(DynamoError::validation(
                "ExpressionAttributeNames must not be empty",
            ));
        }
    }
    if let Some(values) = &values {
        if !uses_expressions {
            return Err(DynamoError::validation(
                "ExpressionAttributeValues can only be specified when using expressions",
            ));
        }
        if values.is_empty() {
            return Err(DynamoError::validation(
                "ExpressionAttributeValues must not be empty",
            ));
        }
        value::validate_item(values)?;
    }
    Ok(Placeholders::new(
        names.unwrap_or_default(),
        values.unwrap_or_default().into_iter().collect(),
    ))
}

/// `ReturnConsumedCapacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capacity {
    None,
    Total,
    Indexes,
}

fn capacity(value: Option<&str>) -> Result<Capacity, DynamoError> {
    match value {
        None | Some("NONE") => Ok(Capacity::None),
        Some("TOTAL") => Ok(Capacity::Total),
        Some("INDEXES") => Ok(Capacity::Indexes),
        Some(other) => Err(DynamoError::constraint(
            other,
            "returnConsumedCapacity",
            "Member must satisfy enum value set: [INDEXES, TOTAL, NONE]",
        )),
    }
}

/// A `ConsumedCapacity` entry, or nothing when none was asked for.
fn consumed(mode: Capacity, table: &str, units: f64, index: Option<&Index>) -> Option<Value> {
    let mut entry = json!({ "TableName": table, "CapacityUnits": units });
    match (mode, index) {
        (Capacity::None, _) => return None,
        (Capacity::Total, _) => {}
        (Capacity::Indexes, None) => entry["Table"] = json!({ "CapacityUnits": units }),
        (Capacity::Indexes, Some(index)) => {
            let kind = if index.global {
                "GlobalSecondaryIndexes"
            } else {
                "LocalSecondaryIndexes"
            };
            entry["Table"] = json!({ "CapacityUnits": 0.0 });
            entry[kind] = json!({ index.name.clone(): { "CapacityUnits": units } });
        }
    }
    Some(entry)
}

/// Write units: one per started kilobyte, at least one.
fn write_units(size: i64) -> f64 {
    ((size.max(1) + 1023) / 1024) as f64
}

/// Read units: one per started 4 KB for a strongly consistent read, half that otherwise.
fn read_units(bytes: i64, consistent: bool) -> f64 {
    let units = ((bytes.max(1) + 4095) / 4096) as f64;
    if consistent { units } else { units / 2.0 }
}

/// `ReturnValues`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Returns {
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

fn returns(value: Option<&str>, update: bool) -> Result<Returns, DynamoError> {
    let parsed = match value {
        None | Some("NONE") => Returns::None,
        Some("ALL_OLD") => Returns::AllOld,
        Some("UPDATED_OLD") => Returns::UpdatedOld,
        Some("ALL_NEW") => Returns::AllNew,
        Some("UPDATED_NEW") => Returns::UpdatedNew,
        Some(other) => {
            return Err(DynamoError::constraint(
                other,
                "returnValues",
                "Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]",
            ));
        }
    };
    if !update && !matches!(parsed, Returns::None | Returns::AllOld) {
        return Err(DynamoError::validation(format!(
            "Return values set to invalid value: {}",
            value.unwrap_or_default()
        )));
    }
    Ok(parsed)
}

/// `ReturnValuesOnConditionCheckFailure`: whether to hand back the item.
fn old_on_failure(value: Option<&str>) -> Result<bool, DynamoError> {
    match value {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(other) => Err(DynamoError::constraint(
            other,
            "returnValuesOnConditionCheckFailure",
            "Member must satisfy enum value set: [ALL_OLD, NONE]",
        )),
    }
}

/// A validated item to put: its key, stored text, size and index entries.
fn prepared_put(
    definition: &Definition,
    item: &Item,
) -> Result<(StoredKey, String, i64, Vec<IndexKey>), DynamoError> {
    value::validate_item(item)?;
    let key = definition.key_schema.key_of_item(item)?;
    let size = value::item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(DynamoError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    let index_keys = definition.index_keys(item)?;
    let text = serde_json::to_string(item).map_err(|e| DynamoError::internal(e.to_string()))?;
    Ok((key, text, size, index_keys))
}

/// What a single write or a transaction action does.
#[derive(Debug, Clone)]
enum WriteKind {
    Put(Item),
    Delete,
    Update(Vec<Action>),
    Check,
}

#[derive(Debug, Clone)]
struct WriteOp {
    table: String,
    /// The item's key (for a Put, the item itself).
    key: Item,
    kind: WriteKind,
    condition: Option<Condition>,
    old_on_failure: bool,
}

/// A write checked against the stored item and ready to be made.
#[derive(Debug)]
struct Planned {
    write: Option<ItemWrite>,
    old: Option<Item>,
    new: Option<Item>,
    touched: BTreeSet<String>,
    size: i64,
}

/// Checks `op` against the item it addresses and works out the write.
fn plan_write(
    conn: &Connection,
    table: &Table,
    op: &WriteOp,
) -> Result<Result<Planned, DynamoError>, StoreError> {
    let definition = &table.definition;
    let schema = &definition.key_schema;
    let key = match &op.kind {
        WriteKind::Put(item) => value::validate_item(item).and_then(|()| schema.key_of_item(item)),
        _ => schema.key_of_key(&op.key),
    };
    let key = match key {
        Ok(key) => key,
        Err(e) => return Ok(Err(e)),
    };
    let old = match store::dynamodb_item(conn, &op.table, &key.pk, &key.sk)? {
        Some(text) => Some(parse_item(&text, &op.table)?),
        None => None,
    };
    if let Some(condition) = &op.condition {
        let empty = Item::new();
        if !expr::evaluate(condition, old.as_ref().unwrap_or(&empty)) {
            let item = old.clone().filter(|_| op.old_on_failure).map(Value::Object);
            return Ok(Err(DynamoError::conditional_check_failed(item)));
        }
    }
    let old_size = old.as_ref().map_or(0, value::item_size);
    let put = |item: &Item| -> Result<(ItemWrite, i64), DynamoError> {
        let (key, text, size, index_keys) = prepared_put(definition, item)?;
        Ok((
            ItemWrite::Put {
                table: op.table.clone(),
                pk: key.pk,
                sk: key.sk,
                item: text,
                size,
                index_keys,
            },
            size,
        ))
    };
    let planned = match &op.kind {
        WriteKind::Put(item) => put(item).map(|(write, size)| Planned {
            write: Some(write),
            old,
            new: Some(item.clone()),
            touched: BTreeSet::new(),
            size: size.max(old_size),
        }),
        WriteKind::Delete => Ok(Planned {
            write: Some(ItemWrite::Delete {
                table: op.table.clone(),
                pk: key.pk,
                sk: key.sk,
            }),
            old,
            new: None,
            touched: BTreeSet::new(),
            size: old_size,
        }),
        WriteKind::Update(actions) => {
            let keys: Vec<&str> = std::iter::once(&schema.hash)
                .chain(&schema.range)
                .map(|a| a.name.as_str())
                .collect();
            let mut new = old.clone().unwrap_or_else(|| op.key.clone());
            expr::check_updated_keys(actions, &keys)
                .and_then(|()| expr::apply_update(&mut new, actions))
                .and_then(|touched| {
                    let (write, size) = put(&new)?;
                    Ok(Planned {
                        write: Some(write),
                        old,
                        new: Some(new),
                        touched,
                        size: size.max(old_size),
                    })
                })
        }
        WriteKind::Check => Ok(Planned {
            write: None,
            old,
            new: None,
            touched: BTreeSet::new(),
            size: old_size,
        }),
    };
    Ok(planned)
}

/// The `Attributes` a single write returns.
fn returned(planned: &Planned, returns: Returns) -> Option<Item> {
    let attributes = match returns {
        Returns::None => None,
        Returns::AllOld => planned.old.clone(),
        Returns::AllNew => planned.new.clone(),
        Returns::UpdatedOld => planned
            .old
            .as_ref()
            .map(|old| expr::only(old, &planned.touched)),
        Returns::UpdatedNew => planned
            .new
            .as_ref()
            .map(|new| expr::only(new, &planned.touched)),
    };
    attributes.filter(|a| !a.is_empty())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WriteInput {
    table_name: Option<String>,
    item: Option<Item>,
    key: Option<Item>,
    update_expression: Option<String>,
    condition_expression: Option<String>,
    expression_attribute_names: Option<HashMap<String, String>>,
    expression_attribute_values: Option<Item>,
    return_values: Option<String>,
    return_values_on_condition_check_failure: Option<String>,
    return_consumed_capacity: Option<String>,
    #[serde(flatten)]
    legacy: Legacy,
}

/// Turns one write (single or part of a transaction) into a [`WriteOp`], parsing its
/// expressions against its own placeholders.
fn write_op(
    input: WriteInput,
    kind: &str,
    name_field: &str,
) -> Result<(WriteOp, Placeholders), DynamoError> {
    input.legacy.check()?;
    let table = match input.table_name {
        Some(name) => table_name(Some(name))?,
        None => required(None, name_field)?,
    };
    let uses_expressions =
        input.condition_expression.is_some() || input.update_expression.is_some();
    let mut placeholders = placeholders(
        input.expression_attribute_names,
        input.expression_attribute_values,
        uses_expressions,
    )?;
    let condition = match &input.condition_expression {
        Some(text) => Some(expr::condition(Kind::Condition, text, &mut placeholders)?),
        None => None,
    };
    let (key, kind) = match kind {
        "Put" => {
            let item = required(input.item, "item")?;
            (item.clone(), WriteKind::Put(item))
        }
        "Update" => {
            let actions = match &input.update_expression {
                Some(text) => expr::update(text, &mut placeholders)?,
                None => Vec::new(),
            };
            (required(input.key, "key")?, WriteKind::Update(actions))
        }
        "Delete" => (required(input.key, "key")?, WriteKind::Delete),
        _ => {
            if condition.is_none() {
                return Err(DynamoError::validation(
                    "1 validation error detected: Value null at 'transactItems.member.conditionCheck.conditionExpression' failed to satisfy constraint: Member must not be null",
                ));
            }
            (required(input.key, "key")?, WriteKind::Check)
        }
    };
    let op = WriteOp {
        table,
        key,
        kind,
        condition,
        old_on_failure: old_on_failure(input.return_values_on_condition_check_failure.as_deref())?,
    };
    Ok((op, placeholders))
}

/// PutItem, UpdateItem and DeleteItem.
async fn single_write(
    app: &Arc<AppState>,
    body: &[u8],
    kind: &'static str,
) -> Result<String, DynamoError> {
    let input: WriteInput = input(body)?;
    let returns = returns(input.return_values.as_deref(), kind == "Update")?;
    let capacity = capacity(input.return_consumed_capacity.as_deref())?;
    let (op, placeholders) = write_op(input, kind, "tableName")?;
    placeholders.finish(true)?;
    let state = Arc::clone(app);
    with_store(app, move |conn| {
        let Some(table) = open_table(&state, conn, &op.table)? else {
            return Ok(Err(DynamoError::resource_not_found()));
        };
        let planned = match plan_write(conn, &table, &op)? {
            Ok(planned) => planned,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(write) = &planned.write {
            store::write_dynamodb_items(conn, std::slice::from_ref(write))?;
        }
        let mut body = json!({});
        if let Some(attributes) = returned(&planned, returns) {
            body["Attributes"] = Value::Object(attributes);
        }
        if let Some(c) = consumed(capacity, &op.table, write_units(planned.size), None) {
            body["ConsumedCapacity"] = c;
        }
        Ok(Ok(body.to_string()))
    })
    .await
}

pub(super) async fn put_item(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    single_write(app, body, "Put").await
}

pub(super) async fn update_item(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    single_write(app, body, "Update").await
}

pub(super) async fn delete_item(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    single_write(app, body, "Delete").await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetInput {
    table_name: Option<String>,
    key: Option<Item>,
    projection_expression: Option<String>,
    expression_attribute_names: Option<HashMap<String, String>>,
    expression_attribute_values: Option<Item>,
    consistent_read: Option<bool>,
    return_consumed_capacity: Option<String>,
    #[serde(flatten)]
    legacy: Legacy,
}

/// A get's parsed projection (if any), checked placeholders included.
fn get_projection(
    projection: Option<&str>,
    names: Option<HashMap<String, String>>,
    values: Option<Item>,
) -> Result<Option<Vec<Path>>, DynamoError> {
    let mut placeholders = placeholders(names, values, projection.is_some())?;
    let paths = match projection {
        Some(text) => Some(expr::projection(text, &mut placeholders)?),
        None => None,
    };
    placeholders.finish(false)?;
    Ok(paths)
}

pub(super) async fn get_item(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: GetInput = input(body)?;
    input.legacy.check()?;
    let name = table_name(input.table_name)?;
    let key = required(input.key, "key")?;
    let capacity = capacity(input.return_consumed_capacity.as_deref())?;
    let paths = get_projection(
        input.projection_expression.as_deref(),
        input.expression_attribute_names,
        input.expression_attribute_values,
    )?;
    let consistent = input.consistent_read.unwrap_or(false);
    let state = Arc::clone(app);
    with_store(app, move |conn| {
        let Some(table) = open_table(&state, conn, &name)? else {
            return Ok(Err(DynamoError::resource_not_found()));
        };
        let key = match table.definition.key_schema.key_of_key(&key) {
            Ok(key) => key,
            Err(e) => return Ok(Err(e)),
        };
        let found = store::dynamodb_item(conn, &name, &key.pk, &key.sk)?;
        let size = found.as_ref().map_or(0, |t| t.len() as i64);
        let mut body = json!({});
        if let Some(text) = found {
            let item = parse_item(&text, &name)?;
            let item = match &paths {
                Some(paths) => expr::project(&item, paths),
                None => item,
            };
            body["Item"] = Value::Object(item);
        }
        if let Some(c) = consumed(capacity, &name, read_units(size, consistent), None) {
            body["ConsumedCapacity"] = c;
        }
        Ok(Ok(body.to_string()))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReadInput {
    table_name: Option<String>,
    index_name: Option<String>,
    key_condition_expression: Option<String>,
    filter_expression: Option<String>,
    projection_expression: Option<String>,
    expression_attribute_names: Option<HashMap<String, String>>,
    expression_attribute_values: Option<Item>,
    limit: Option<i64>,
    exclusive_start_key: Option<Item>,
    scan_index_forward: Option<bool>,
    select: Option<String>,
    consistent_read: Option<bool>,
    segment: Option<i64>,
    total_segments: Option<i64>,
    return_consumed_capacity: Option<String>,
    #[serde(flatten)]
    legacy: Legacy,
}

/// `Select`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    AllAttributes,
    AllProjected,
    Specific,
    Count,
}

fn select(value: Option<&str>, projection: bool, index: bool) -> Result<Select, DynamoError> {
    let parsed = match value {
        None if projection => Select::Specific,
        None if index => Select::AllProjected,
        None => Select::AllAttributes,
        Some("ALL_ATTRIBUTES") => Select::AllAttributes,
        Some("ALL_PROJECTED_ATTRIBUTES") => Select::AllProjected,
        Some("SPECIFIC_ATTRIBUTES") => Select::Specific,
        Some("COUNT") => Select::Count,
        Some(other) => {
            return Err(DynamoError::constraint(
                other,
                "select",
                "Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]",
            ));
        }
    };
    match parsed {
        Select::Specific if !projection => Err(DynamoError::validation(
            "One or more parameter values were invalid: Select type SPECIFIC_ATTRIBUTES requires ProjectionExpression or AttributesToGet",
        )),
        Select::AllAttributes | Select::AllProjected | Select::Count if projection => {
            Err(DynamoError::validation(format!(
                "One or more parameter values were invalid: Cannot specify the ProjectionExpression when choosing to get {}",
                value.unwrap_or_default()
            )))
        }
        Select::AllProjected if !index => Err(DynamoError::validation(
            "One or more parameter values were invalid: ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        )),
        other => Ok(other),
    }
}

/// Scan's `Segment` and `TotalSegments`.
fn segments(segment: Option<i64>, total: Option<i64>) -> Result<Option<(u32, u32)>, DynamoError> {
    match (segment, total) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(DynamoError::validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        )),
        (None, Some(_)) => Err(DynamoError::validation(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        )),
        (Some(segment), Some(total)) => {
            if !(1..=1_000_000).contains(&total) {
                let constraint = if total < 1 {
                    "Member must have value greater than or equal to 1"
                } else {
                    "Member must have value less than or equal to 1000000"
                };
                return Err(DynamoError::constraint(
                    &total.to_string(),
                    "totalSegments",
                    constraint,
                ));
            }
            if segment < 0 {
                return Err(DynamoError::constraint(
                    &segment.to_string(),
                    "segment",
                    "Member must have value greater than or equal to 0",
                ));
            }
            if segment >= total {
                return Err(DynamoError::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {segment} is out of bounds for TotalSegments: {total}"
                )));
            }
            Ok(Some((segment as u32, total as u32)))
        }
    }
}

pub(super) async fn query(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    read(app, body, false).await
}

pub(super) async fn scan(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    read(app, body, true).await
}

/// Query and Scan.
async fn read(app: &Arc<AppState>, body: &[u8], scan: bool) -> Result<String, DynamoError> {
    let input: ReadInput = input(body)?;
    input.legacy.check()?;
    let name = table_name(input.table_name)?;
    let expression = input.key_condition_expression;
    if scan && expression.is_some() {
        return Err(DynamoError::validation(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {} Expression parameters: {KeyConditionExpression}",
        ));
    }
    if !scan && expression.is_none() {
        return Err(DynamoError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ));
    }
    if !scan && (input.segment.is_some() || input.total_segments.is_some()) {
        return Err(DynamoError::unsupported("Segment on Query"));
    }
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
    let select = select(
        input.select.as_deref(),
        input.projection_expression.is_some(),
        input.index_name.is_some(),
    )?;
    let segment = segments(input.segment, input.total_segments)?;
    let capacity = capacity(input.return_consumed_capacity.as_deref())?;
    let uses_expressions = expression.is_some()
        || input.filter_expression.is_some()
        || input.projection_expression.is_some();
    let mut placeholders = placeholders(
        input.expression_attribute_names,
        input.expression_attribute_values,
        uses_expressions,
    )?;
    let filter_kind = Kind::Filter;
    let filter = match &input.filter_expression {
        Some(text) => Some(expr::condition(filter_kind, text, &mut placeholders)?),
        None => None,
    };
    let paths = match &input.projection_expression {
        Some(text) => Some(expr::projection(text, &mut placeholders)?),
        None => None,
    };
    let forward = input.scan_index_forward.unwrap_or(true);
    let consistent = input.consistent_read.unwrap_or(false);
    let start = input.exclusive_start_key;
    let index_name = input.index_name;
    let state = Arc::clone(app);
    with_store(app, move |conn| {
        let Some(table) = open_table(&state, conn, &name)? else {
            return Ok(Err(DynamoError::resource_not_found()));
        };
        let index = match &index_name {
            None => None,
            Some(wanted) => match table.definition.index(wanted) {
                Some(index) => Some(index.clone()),
                None => {
                    return Ok(Err(DynamoError::validation(format!(
                        "The table does not have the specified index: {wanted}"
                    ))));
                }
            },
        };
        if let Some(index) = &index {
            if index.global && consistent {
                return Ok(Err(DynamoError::validation(
                    "Consistent reads are not supported on global secondary indexes",
                )));
            }
            if index.global
                && select == Select::AllAttributes
                && index.projection != super::tables::Projection::All
            {
                return Ok(Err(DynamoError::validation(format!(
                    "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                    index.name
                ))));
            }
        }
        let table_schema = &table.definition.key_schema;
        let schema = index.as_ref().map_or(table_schema, |i| &i.key_schema);
        let condition = match &expression {
            Some(text) => match expr::key_condition(text, &mut placeholders, schema) {
                Ok(condition) => Some(condition),
                Err(e) => return Ok(Err(e)),
            },
            None => None,
        };
        if let Err(e) = placeholders.finish(false) {
            return Ok(Err(e));
        }
        let after = match &start {
            None => None,
            Some(start) => match start_position(&table.definition, index.as_ref(), start) {
                Ok(position) => Some(position),
                Err(e) => return Ok(Err(e)),
            },
        };
        if let (Some(after), Some(condition)) = (&after, &condition)
            && after.pk != condition.pk
        {
            return Ok(Err(DynamoError::validation(
                "The provided starting key is invalid: The provided key element does not match the schema",
            )));
        }
        let (pk, range) = match condition {
            // A table or index without a sort key holds at most one item per partition key.
            Some(c) if schema.range.is_none() => (Some(c.pk), SortKeyRange::All),
            Some(c) => (Some(c.pk), c.range),
            None => (None, SortKeyRange::All),
        };
        let page = PageRead {
            table: name.clone(),
            index: index.as_ref().map(|i| i.name.clone()),
            pk,
            range,
            forward,
            after,
            limit,
            max_bytes: PAGE_BYTES,
            segment,
        };
        let (rows, more) = store::read_dynamodb_page(conn, &page)?;
        let scanned = rows.len();
        // The page's last item read, filtered out or not, is where the next page starts.
        let last_key = match rows.last().filter(|_| more) {
            Some(last) => {
                let item = parse_item(&last.item, &name)?;
                let mut key = table_schema.key_attributes(&item);
                if let Some(index) = &index {
                    key.extend(index.key_schema.key_attributes(&item));
                }
                Some(Value::Object(key))
            }
            None => None,
        };
        // Without an index, filter or projection the stored text is the answer, unparsed.
        let plain = index.is_none() && filter.is_none() && paths.is_none();
        let mut items: Vec<String> = Vec::with_capacity(scanned);
        let mut bytes = 0;
        for row in rows {
            bytes += row.size;
            if plain {
                items.push(row.item);
                continue;
            }
            let mut item = parse_item(&row.item, &name)?;
            if let Some(index) = &index
                && select != Select::AllAttributes
            {
                item = index.project(table_schema, &item);
            }
            if let Some(filter) = &filter
                && !expr::evaluate(filter, &item)
            {
                continue;
            }
            if let Some(paths) = &paths {
                item = expr::project(&item, paths);
            }
            items.push(Value::Object(item).to_string());
        }
        let mut body =
            String::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 96);
        body.push('{');
        if select != Select::Count {
            body.push_str("\"Items\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(item);
            }
            body.push_str("],");
        }
        body.push_str(&format!(
            "\"Count\":{},\"ScannedCount\":{scanned}",
            items.len()
        ));
        if let Some(key) = last_key {
            body.push_str(&format!(",\"LastEvaluatedKey\":{key}"));
        }
        if let Some(c) = consumed(capacity, &name, read_units(bytes, consistent), index.as_ref()) {
            body.push_str(&format!(",\"ConsumedCapacity\":{c}"));
        }
        body.push('}');
        Ok(Ok(body))
    })
    .await
}

/// Where an `ExclusiveStartKey` puts the next page: the table's key, and on an index also the
/// index's key.
fn start_position(
    definition: &Definition,
    index: Option<&Index>,
    start: &Item,
) -> Result<Position, DynamoError> {
    let invalid = || {
        DynamoError::validation(
            "The provided starting key is invalid: The provided key element does not match the schema",
        )
    };
    match index {
        None => {
            let key = definition.key_schema.key_of_key(start)?;
            Ok(Position {
                pk: key.pk.clone(),
                sk: key.sk.clone(),
                item_pk: key.pk,
                item_sk: key.sk,
            })
        }
        Some(index) => {
            let table = definition
                .key_schema
                .key_of_item(start)
                .map_err(|_| invalid())?;
            let own = index.key_schema.key_of_item(start).map_err(|_| invalid())?;
            Ok(Position {
                pk: own.pk,
                sk: own.sk,
                item_pk: table.pk,
                item_sk: table.sk,
            })
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchWriteInput {
    request_items: Option<serde_json::Map<String, Value>>,
    return_consumed_capacity: Option<String>,
}

/// One write request of a BatchWriteItem, parsed, with the JSON it came as (UnprocessedItems
/// hands the same request back).
struct BatchWrite {
    table: String,
    request: Value,
    put: Option<Item>,
    key: Option<Item>,
}

/// How the service framework prints a request it refuses: Java object names with a hash.
fn java_object(kind: &str, value: &Value) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in value.to_string().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("com.amazonaws.dynamodb.v20120810.{kind}@{hash:08x}")
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
    let out_of_bounds = request_items.values().any(|requests| {
        requests
            .as_array()
            .is_some_and(|r| r.is_empty() || r.len() > MAX_BATCH_WRITES)
    });
    if out_of_bounds {
        let rendered: Vec<String> = request_items
            .iter()
            .map(|(table, requests)| {
                let list: Vec<String> = requests
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| java_object("WriteRequest", r))
                    .collect();
                format!("{table}=[{}]", list.join(", "))
            })
            .collect();
        return Err(DynamoError::constraint(
            &format!("{{{}}}", rendered.join(", ")),
            "requestItems",
            "Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
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
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
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
    let capacity = capacity(input.return_consumed_capacity.as_deref())?;
    let mut writes = batch_writes(required(input.request_items, "requestItems")?)?;
    let state = Arc::clone(app);
    let every = app.config.dynamodb_unprocessed_every.filter(|n| *n > 0);
    with_store(app, move |conn| {
        let mut tables: HashMap<String, Table> = HashMap::new();
        let mut stored = Vec::with_capacity(writes.len());
        let mut seen = HashSet::new();
        let mut units: Vec<(String, f64)> = Vec::new();
        for write in &writes {
            if !tables.contains_key(&write.table) {
                let Some(table) = open_table(&state, conn, &write.table)? else {
                    return Ok(Err(DynamoError::resource_not_found()));
                };
                tables.insert(write.table.clone(), table);
            }
            let definition = &tables[&write.table].definition;
            let prepared = match (&write.put, &write.key) {
                (Some(item), _) => {
                    prepared_put(definition, item).map(|(key, text, size, index_keys)| {
                        ItemWrite::Put {
                            table: write.table.clone(),
                            pk: key.pk,
                            sk: key.sk,
                            item: text,
                            size,
                            index_keys,
                        }
                    })
                }
                (None, Some(key)) => {
                    definition
                        .key_schema
                        .key_of_key(key)
                        .map(|key| ItemWrite::Delete {
                            table: write.table.clone(),
                            pk: key.pk,
                            sk: key.sk,
                        })
                }
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
            let size = match &prepared {
                ItemWrite::Put { size, .. } => *size,
                ItemWrite::Delete { .. } => 1,
            };
            match units.iter_mut().find(|(t, _)| t == table) {
                Some((_, total)) => *total += write_units(size),
                None => units.push((table.clone(), write_units(size))),
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
        let mut body = json!({ "UnprocessedItems": unprocessed });
        let consumed: Vec<Value> = units
            .iter()
            .filter_map(|(table, units)| consumed(capacity, table, *units, None))
            .collect();
        if capacity != Capacity::None {
            body["ConsumedCapacity"] = json!(consumed);
        }
        Ok(Ok(body.to_string()))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeysAndAttributes {
    keys: Option<Vec<Item>>,
    projection_expression: Option<String>,
    expression_attribute_names: Option<HashMap<String, String>>,
    consistent_read: Option<bool>,
    attributes_to_get: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchGetInput {
    request_items: Option<serde_json::Map<String, Value>>,
    return_consumed_capacity: Option<String>,
}

pub(super) async fn batch_get_item(
    app: &Arc<AppState>,
    body: &[u8],
) -> Result<String, DynamoError> {
    let input: BatchGetInput = input(body)?;
    let capacity = capacity(input.return_consumed_capacity.as_deref())?;
    let request_items = required(input.request_items, "requestItems")?;
    if request_items.is_empty() {
        return Err(DynamoError::constraint(
            "{}",
            "requestItems",
            "Member must have length greater than or equal to 1",
        ));
    }
    let mut requests = Vec::new();
    let mut total = 0;
    for (table, request) in request_items {
        let table = table_name(Some(table))?;
        let request: KeysAndAttributes =
            serde_json::from_value(request).map_err(DynamoError::serialization)?;
        if request.attributes_to_get.is_some() {
            return Err(DynamoError::unsupported(
                "the legacy parameter AttributesToGet; use ProjectionExpression instead",
            ));
        }
        let keys = required(request.keys, "requestItems.member.keys")?;
        if keys.is_empty() {
            return Err(DynamoError::constraint(
                "[]",
                "requestItems.member.keys",
                "Member must have length greater than or equal to 1",
            ));
        }
        total += keys.len();
        let paths = get_projection(
            request.projection_expression.as_deref(),
            request.expression_attribute_names,
            None,
        )?;
        requests.push((table, keys, paths, request.consistent_read.unwrap_or(false)));
    }
    if total > MAX_BATCH_GETS {
        return Err(DynamoError::validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    let state = Arc::clone(app);
    with_store(app, move |conn| {
        let mut responses = serde_json::Map::new();
        let mut used = Vec::new();
        for (name, keys, paths, consistent) in &requests {
            let Some(table) = open_table(&state, conn, name)? else {
                return Ok(Err(DynamoError::resource_not_found()));
            };
            let mut seen = HashSet::new();
            let mut found = Vec::new();
            let mut bytes = 0;
            for key in keys {
                let key = match table.definition.key_schema.key_of_key(key) {
                    Ok(key) => key,
                    Err(e) => return Ok(Err(e)),
                };
                if !seen.insert(key.clone()) {
                    return Ok(Err(DynamoError::validation(
                        "Provided list of item keys contains duplicates",
                    )));
                }
                if let Some(text) = store::dynamodb_item(conn, name, &key.pk, &key.sk)? {
                    bytes += text.len() as i64;
                    let item = parse_item(&text, name)?;
                    let item = match paths {
                        Some(paths) => expr::project(&item, paths),
                        None => item,
                    };
                    found.push(Value::Object(item));
                }
            }
            responses.insert(name.clone(), Value::Array(found));
            if let Some(c) = consumed(capacity, name, read_units(bytes, *consistent), None) {
                used.push(c);
            }
        }
        let mut body = json!({ "Responses": responses, "UnprocessedKeys": {} });
        if capacity != Capacity::None {
            body["ConsumedCapacity"] = json!(used);
        }
        Ok(Ok(body.to_string()))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactWriteItem {
    condition_check: Option<WriteInput>,
    put: Option<WriteInput>,
    delete: Option<WriteInput>,
    update: Option<WriteInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactWriteInput {
    transact_items: Option<Vec<TransactWriteItem>>,
    return_consumed_capacity: Option<String>,
    client_request_token: Option<String>,
}

fn transact_count(n: usize) -> Result<(), DynamoError> {
    if n == 0 || n > MAX_TRANSACT_ITEMS {
        let constraint = if n == 0 {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 100"
        };
        return Err(DynamoError::constraint(
            &format!("{n} items"),
            "transactItems",
            constraint,
        ));
    }
    Ok(())
}

pub(super) async fn transact_write_items(
    app: &Arc<AppState>,
    body: &[u8],
) -> Result<String, DynamoError> {
    let input: TransactWriteInput = input(body)?;
    let capacity = capacity(input.return_consumed_capacity.as_deref())?;
    if let Some(token) = &input.client_request_token
        && (token.is_empty() || token.len() > 36)
    {
        return Err(DynamoError::constraint(
            token,
            "clientRequestToken",
            "Member must have length less than or equal to 36",
        ));
    }
    let items = required(input.transact_items, "transactItems")?;
    transact_count(items.len())?;
    let mut ops = Vec::new();
    for item in items {
        let actions = [
            ("ConditionCheck", item.condition_check),
            ("Put", item.put),
            ("Delete", item.delete),
            ("Update", item.update),
        ];
        let mut given = actions.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)));
        let (Some((kind, write)), None) = (given.next(), given.next()) else {
            return Err(DynamoError::validation(
                "TransactItems can only contain one of Check, Put, Update or Delete",
            ));
        };
        if write.return_values.is_some() {
            return Err(DynamoError::unsupported("ReturnValues in a transaction"));
        }
        let (op, placeholders) = write_op(write, kind, "transactItems.member.tableName")?;
        placeholders.finish(true)?;
        ops.push(op);
    }
    let state = Arc::clone(app);
    with_store(app, move |conn| {
        let mut tables: HashMap<String, Table> = HashMap::new();
        let mut seen = HashSet::new();
        for op in &ops {
            if !tables.contains_key(&op.table) {
                let Some(table) = open_table(&state, conn, &op.table)? else {
                    return Ok(Err(DynamoError::resource_not_found()));
                };
                tables.insert(op.table.clone(), table);
            }
            let schema = &tables[&op.table].definition.key_schema;
            let key = match &op.kind {
                WriteKind::Put(item) => schema.key_of_item(item),
                _ => schema.key_of_key(&op.key),
            };
            match key {
                Ok(key) if !seen.insert((op.table.clone(), key.clone())) => {
                    return Ok(Err(DynamoError::validation(
                        "Transaction request cannot include multiple operations on one item",
                    )));
                }
                Ok(_) => {}
                Err(e) => return Ok(Err(e)),
            }
        }
        let mut planned = Vec::new();
        let mut reasons = Vec::new();
        let mut failed = false;
        for op in &ops {
            match plan_write(conn, &tables[&op.table], op)? {
                Ok(p) => {
                    reasons.push(json!({ "Code": "None" }));
                    planned.push(p);
                }
                Err(e) if e.is_conditional_check_failed() => {
                    failed = true;
                    let mut reason = json!({
                        "Code": "ConditionalCheckFailed",
                        "Message": e.message(),
                    });
                    if let Some(item) = e.item() {
                        reason["Item"] = item.clone();
                    }
                    reasons.push(reason);
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        if failed {
            return Ok(Err(DynamoError::transaction_canceled(reasons)));
        }
        let writes: Vec<ItemWrite> = planned.iter().filter_map(|p| p.write.clone()).collect();
        store::write_dynamodb_items(conn, &writes)?;
        let mut body = json!({});
        if capacity != Capacity::None {
            let mut units: Vec<(String, f64)> = Vec::new();
            for (op, p) in ops.iter().zip(&planned) {
                let u = 2.0 * write_units(p.size);
                match units.iter_mut().find(|(t, _)| *t == op.table) {
                    Some((_, total)) => *total += u,
                    None => units.push((op.table.clone(), u)),
                }
            }
            let used: Vec<Value> = units
                .iter()
                .filter_map(|(t, u)| consumed(capacity, t, *u, None))
                .collect();
            body["ConsumedCapacity"] = json!(used);
        }
        Ok(Ok(body.to_string()))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactGet {
    get: Option<GetInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactGetInput {
    transact_items: Option<Vec<TransactGet>>,
    return_consumed_capacity: Option<String>,
}

pub(super) async fn transact_get_items(
    app: &Arc<AppState>,
    body: &[u8],
) -> Result<String, DynamoError> {
    let input: TransactGetInput = input(body)?;
    let capacity = capacity(input.return_consumed_capacity.as_deref())?;
    let items = required(input.transact_items, "transactItems")?;
    transact_count(items.len())?;
    let mut gets = Vec::new();
    for item in items {
        let get = required(item.get, "transactItems.member.get")?;
        get.legacy.check()?;
        let table = match get.table_name {
            Some(name) => table_name(Some(name))?,
            None => required(None, "transactItems.member.get.tableName")?,
        };
        let key = required(get.key, "transactItems.member.get.key")?;
        let paths = get_projection(
            get.projection_expression.as_deref(),
            get.expression_attribute_names,
            get.expression_attribute_values,
        )?;
        gets.push((table, key, paths));
    }
    let state = Arc::clone(app);
    with_store(app, move |conn| {
        let mut tables: HashMap<String, Table> = HashMap::new();
        let mut responses = Vec::new();
        let mut units: Vec<(String, f64)> = Vec::new();
        for (name, key, paths) in &gets {
            if !tables.contains_key(name) {
                let Some(table) = open_table(&state, conn, name)? else {
                    return Ok(Err(DynamoError::resource_not_found()));
                };
                tables.insert(name.clone(), table);
            }
            let key = match tables[name].definition.key_schema.key_of_key(key) {
                Ok(key) => key,
                Err(e) => return Ok(Err(e)),
            };
            let found = store::dynamodb_item(conn, name, &key.pk, &key.sk)?;
            let u = 2.0 * read_units(found.as_ref().map_or(0, |t| t.len() as i64), true);
            match units.iter_mut().find(|(t, _)| t == name) {
                Some((_, total)) => *total += u,
                None => units.push((name.clone(), u)),
            }
            responses.push(match found {
                Some(text) => {
                    let item = parse_item(&text, name)?;
                    let item = match paths {
                        Some(paths) => expr::project(&item, paths),
                        None => item,
                    };
                    json!({ "Item": item })
                }
                None => json!({}),
            });
        }
        let mut body = json!({ "Responses": responses });
        if capacity != Capacity::None {
            let used: Vec<Value> = units
                .iter()
                .filter_map(|(t, u)| consumed(capacity, t, *u, None))
                .collect();
            body["ConsumedCapacity"] = json!(used);
        }
        Ok(Ok(body.to_string()))
    })
    .await
}
