//! DynamoDB's table operations: CreateTable, UpdateTable, DescribeTable, DeleteTable,
//! ListTables and the tag operations, with DynamoDB's validation of key schemas, billing modes and
//! ARNs, and the `CREATING`/`UPDATING` states a deployer waits out.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::value::{KeyAttribute, KeySchema, KeyType};
use super::{DynamoError, MAX_LIST_TABLES, Settling, input, required, table_name, with_store};
use crate::clock;
use crate::server::AppState;
use crate::store::{self, StoreError, StoredTable};
/// What is persisted about a table besides its name, tags and creation time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Definition {
    table_id: String,
    pub(super) key_schema: KeySchema,
    /// `AttributeDefinitions` in the order the client gave them.
    attributes: Vec<KeyAttribute>,
    billing_mode: String,
    /// Read and write capacity units of a PROVISIONED table.
    provisioned: Option<(i64, i64)>,
}

#[derive(Debug, Clone)]
pub(super) struct Table {
    name: String,
    pub(super) definition: Definition,
    tags: BTreeMap<String, String>,
    created_ms: i64,
}

pub(super) fn load_table(conn: &Connection, name: &str) -> Result<Option<Table>, StoreError> {
    let Some(stored) = store::dynamodb_table(conn, name)? else {
        return Ok(None);
    };
    let corrupt = |source| StoreError::Corrupt {
        what: "DynamoDB table",
        name: name.to_string(),
        source,
    };
    Ok(Some(Table {
        definition: serde_json::from_str(&stored.definition).map_err(corrupt)?,
        tags: serde_json::from_str(&stored.tags).map_err(corrupt)?,
        name: stored.name,
        created_ms: stored.created_ms,
    }))
}

fn encode_definition(table: &Table) -> Result<String, StoreError> {
    serde_json::to_string(&table.definition).map_err(|source| StoreError::Encode {
        what: "DynamoDB table",
        name: table.name.clone(),
        source,
    })
}

fn encode_tags(name: &str, tags: &BTreeMap<String, String>) -> Result<String, StoreError> {
    serde_json::to_string(tags).map_err(|source| StoreError::Encode {
        what: "DynamoDB table tags",
        name: name.to_string(),
        source,
    })
}

fn table_arn(app: &AppState, name: &str) -> String {
    format!(
        "arn:aws:dynamodb:{}:{}:table/{name}",
        app.config.region, app.config.account_id
    )
}

/// A `TableDescription` as CreateTable, DescribeTable and DeleteTable return it.
fn description(app: &AppState, table: &Table, status: &str, usage: (i64, i64)) -> Value {
    let definition = &table.definition;
    let mut key_schema = vec![json!({
        "AttributeName": definition.key_schema.hash.name,
        "KeyType": "HASH",
    })];
    if let Some(range) = &definition.key_schema.range {
        key_schema.push(json!({ "AttributeName": range.name, "KeyType": "RANGE" }));
    }
    let attributes: Vec<Value> = definition
        .attributes
        .iter()
        .map(|a| json!({ "AttributeName": a.name, "AttributeType": a.kind.as_str() }))
        .collect();
    let created = table.created_ms as f64 / 1000.0;
    let (read, write) = definition.provisioned.unwrap_or((0, 0));
    let mut billing = json!({ "BillingMode": definition.billing_mode });
    if definition.billing_mode == "PAY_PER_REQUEST" {
        billing["LastUpdateToPayPerRequestDateTime"] = json!(created);
    }
    json!({
        "TableName": table.name,
        "TableArn": table_arn(app, &table.name),
        "TableId": definition.table_id,
        "TableStatus": status,
        "CreationDateTime": created,
        "KeySchema": key_schema,
        "AttributeDefinitions": attributes,
        "BillingModeSummary": billing,
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": read,
            "WriteCapacityUnits": write,
        },
        "ItemCount": usage.0,
        "TableSizeBytes": usage.1,
        "DeletionProtectionEnabled": false,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeySchemaElement {
    attribute_name: String,
    key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeDefinition {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Throughput {
    read_capacity_units: Option<i64>,
    write_capacity_units: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateTableInput {
    table_name: Option<String>,
    key_schema: Option<Vec<KeySchemaElement>>,
    attribute_definitions: Option<Vec<AttributeDefinition>>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<Throughput>,
    tags: Option<Vec<Tag>>,
    global_secondary_indexes: Option<Value>,
    local_secondary_indexes: Option<Value>,
    stream_specification: Option<Value>,
}

/// Validates a CreateTable's key schema against its attribute definitions.
fn key_schema(
    elements: Vec<KeySchemaElement>,
    definitions: Vec<AttributeDefinition>,
) -> Result<(KeySchema, Vec<KeyAttribute>), DynamoError> {
    if elements.is_empty() || elements.len() > 2 {
        let constraint = if elements.is_empty() {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 2"
        };
        return Err(DynamoError::constraint(
            &format!("{} elements", elements.len()),
            "keySchema",
            constraint,
        ));
    }
    let mut attributes = Vec::new();
    for definition in definitions {
        let kind = match definition.attribute_type.as_str() {
            "S" => KeyType::S,
            "N" => KeyType::N,
            "B" => return Err(DynamoError::unsupported("binary (B) key attributes")),
            other => {
                return Err(DynamoError::constraint(
                    other,
                    "attributeDefinitions.member.attributeType",
                    "Member must satisfy enum value set: [B, N, S]",
                ));
            }
        };
        attributes.push(KeyAttribute {
            name: definition.attribute_name,
            kind,
        });
    }
    let names = |list: Vec<&str>| format!("[{}]", list.join(", "));
    let find = |name: &str| attributes.iter().find(|a| a.name == name).cloned();
    let mut resolved = Vec::new();
    for element in &elements {
        let Some(attribute) = find(&element.attribute_name) else {
            return Err(DynamoError::validation(format!(
                "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: {}, AttributeDefinitions: {}",
                names(elements.iter().map(|e| e.attribute_name.as_str()).collect()),
                names(attributes.iter().map(|a| a.name.as_str()).collect()),
            )));
        };
        resolved.push((element.key_type.as_str(), attribute));
    }
    if attributes.len() != elements.len() {
        return Err(DynamoError::validation(
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    let mut resolved = resolved.into_iter();
    let hash = match resolved.next() {
        Some(("HASH", attribute)) => attribute,
        _ => {
            return Err(DynamoError::validation(
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
            ));
        }
    };
    let range = match resolved.next() {
        None => None,
        Some(("RANGE", attribute)) if attribute.name == hash.name => {
            return Err(DynamoError::validation(
                "Both the Hash Key and the Range Key element in the KeySchema have the same name",
            ));
        }
        Some(("RANGE", attribute)) => Some(attribute),
        Some(_) => {
            return Err(DynamoError::validation(
                "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
            ));
        }
    };
    Ok((KeySchema { hash, range }, attributes))
}

fn tag_map(tags: Vec<Tag>) -> Result<BTreeMap<String, String>, DynamoError> {
    let mut map = BTreeMap::new();
    for tag in tags {
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(DynamoError::constraint(
                &tag.key,
                "tags.member.key",
                "Member must have length between 1 and 128",
            ));
        }
        if tag.value.chars().count() > 256 {
            return Err(DynamoError::constraint(
                &tag.value,
                "tags.member.value",
                "Member must have length less than or equal to 256",
            ));
        }
        map.insert(tag.key, tag.value);
    }
    Ok(map)
}

pub(super) async fn create_table(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: CreateTableInput = input(body)?;
    let name = table_name(input.table_name)?;
    let (schema, attributes) = key_schema(
        required(input.key_schema, "keySchema")?,
        required(input.attribute_definitions, "attributeDefinitions")?,
    )?;
    if input.global_secondary_indexes.is_some() || input.local_secondary_indexes.is_some() {
        return Err(DynamoError::unsupported("secondary indexes"));
    }
    if input.stream_specification.is_some() {
        return Err(DynamoError::unsupported("streams"));
    }
    let billing_mode = input
        .billing_mode
        .unwrap_or_else(|| "PROVISIONED".to_string());
    let provisioned = billing(&billing_mode, input.provisioned_throughput)?;
    let table = Table {
        name: name.clone(),
        definition: Definition {
            table_id: uuid::Uuid::new_v4().to_string(),
            key_schema: schema,
            attributes,
            billing_mode,
            provisioned,
        },
        tags: tag_map(input.tags.unwrap_or_default())?,
        created_ms: clock::now_millis(),
    };

    let stored = StoredTable {
        name: name.clone(),
        definition: encode_definition(&table)?,
        tags: encode_tags(&name, &table.tags)?,
        created_ms: table.created_ms,
    };
    let delay = app.config.pending_delay;
    let state = Arc::clone(app);
    let status = with_store(app, move |conn| {
        if !store::insert_dynamodb_table(conn, &stored)? {
            return Ok(Err(DynamoError::resource_in_use(format!(
                "Table already exists: {}",
                stored.name
            ))));
        }
        // Marked while the store is still held, so that no DescribeTable finds the new table
        // before it is marked and calls it ACTIVE too early.
        Ok(Ok(state.dynamodb.start_settling(
            &stored.name,
            Settling::Creating,
            delay,
        )))
    })
    .await?;
    Ok(json!({ "TableDescription": description(app, &table, status, (0, 0)) }).to_string())
}

/// DynamoDB's refusal to change a table that is still being created or updated.
fn still_in_use(name: &str, settling: Settling) -> DynamoError {
    let doing = match settling {
        Settling::Creating => "created",
        Settling::Updating => "updated",
    };
    DynamoError::resource_in_use(format!(
        "Attempt to change a resource which is still in use: Table is being {doing}: {name}"
    ))
}

/// The billing mode and capacity a CreateTable or UpdateTable asks for, validated.
fn billing(
    billing_mode: &str,
    throughput: Option<Throughput>,
) -> Result<Option<(i64, i64)>, DynamoError> {
    match (billing_mode, throughput) {
        ("PAY_PER_REQUEST", None) => Ok(None),
        ("PAY_PER_REQUEST", Some(_)) => Err(DynamoError::validation(
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        )),
        (
            "PROVISIONED",
            Some(Throughput {
                read_capacity_units: Some(read),
                write_capacity_units: Some(write),
            }),
        ) if read > 0 && write > 0 => Ok(Some((read, write))),
        ("PROVISIONED", _) => Err(DynamoError::validation(
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        )),
        (other, _) => Err(DynamoError::constraint(
            other,
            "billingMode",
            "Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]",
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateTableInput {
    table_name: Option<String>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<Throughput>,
    global_secondary_index_updates: Option<Value>,
    stream_specification: Option<Value>,
}

/// UpdateTable changes the billing mode (and provisioned capacity); the table is `UPDATING`
/// for the pending delay, during which it still serves items but refuses further changes.
pub(super) async fn update_table(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: UpdateTableInput = input(body)?;
    let name = table_name(input.table_name)?;
    if input.global_secondary_index_updates.is_some() {
        return Err(DynamoError::unsupported("secondary indexes"));
    }
    if input.stream_specification.is_some() {
        return Err(DynamoError::unsupported("streams"));
    }
    if input.billing_mode.is_none() && input.provisioned_throughput.is_none() {
        return Err(DynamoError::validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
        ));
    }
    if let Some(settling) = app.dynamodb.settling(&name) {
        return Err(still_in_use(&name, settling));
    }
    let delay = app.config.pending_delay;
    let state = Arc::clone(app);
    let (table, usage, status) = with_store(app, move |conn| {
        let Some(mut table) = load_table(conn, &name)? else {
            return Ok(Err(DynamoError::table_not_found(&name)));
        };
        let mode = input
            .billing_mode
            .unwrap_or_else(|| table.definition.billing_mode.clone());
        let provisioned = match billing(&mode, input.provisioned_throughput) {
            Ok(provisioned) => provisioned,
            Err(e) => return Ok(Err(e)),
        };
        table.definition.billing_mode = mode;
        table.definition.provisioned = provisioned;
        store::set_dynamodb_table_definition(conn, &name, &encode_definition(&table)?)?;
        let usage = store::dynamodb_table_usage(conn, &name)?;
        let status = state
            .dynamodb
            .start_settling(&name, Settling::Updating, delay);
        Ok(Ok((table, usage, status)))
    })
    .await?;
    Ok(json!({ "TableDescription": description(app, &table, status, usage) }).to_string())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableNameInput {
    table_name: Option<String>,
}

pub(super) async fn describe_table(
    app: &Arc<AppState>,
    body: &[u8],
) -> Result<String, DynamoError> {
    let name = table_name(input::<TableNameInput>(body)?.table_name)?;
    let lookup = name.clone();
    let found = with_store(app, move |conn| {
        let Some(table) = load_table(conn, &lookup)? else {
            return Ok(Err(DynamoError::table_not_found(&lookup)));
        };
        let usage = store::dynamodb_table_usage(conn, &lookup)?;
        Ok(Ok((table, usage)))
    })
    .await;
    let (table, usage) = found?;
    let status = app.dynamodb.status(&name);
    Ok(json!({ "Table": description(app, &table, status, usage) }).to_string())
}

pub(super) async fn delete_table(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let name = table_name(input::<TableNameInput>(body)?.table_name)?;
    if let Some(settling) = app.dynamodb.settling(&name) {
        return Err(still_in_use(&name, settling));
    }
    let lookup = name.clone();
    let (table, usage) = with_store(app, move |conn| {
        let Some(table) = load_table(conn, &lookup)? else {
            return Ok(Err(DynamoError::table_not_found(&lookup)));
        };
        let usage = store::dynamodb_table_usage(conn, &lookup)?;
        if !store::delete_dynamodb_table(conn, &lookup)? {
            return Ok(Err(DynamoError::table_not_found(&lookup)));
        }
        Ok(Ok((table, usage)))
    })
    .await?;
    Ok(json!({ "TableDescription": description(app, &table, "DELETING", usage) }).to_string())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTablesInput {
    exclusive_start_table_name: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn list_tables(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: ListTablesInput = input(body)?;
    let limit = match input.limit {
        None => MAX_LIST_TABLES,
        Some(limit) if (1..=MAX_LIST_TABLES as i64).contains(&limit) => limit as usize,
        Some(limit) => {
            let constraint = if limit < 1 {
                "Member must have value greater than or equal to 1"
            } else {
                "Member must have value less than or equal to 100"
            };
            return Err(DynamoError::constraint(
                &limit.to_string(),
                "limit",
                constraint,
            ));
        }
    };
    let after = input.exclusive_start_table_name;
    // One more than the page, to know whether another page follows.
    let mut names = app
        .store
        .call(move |conn| store::dynamodb_table_names(conn, after.as_deref(), limit + 1))
        .await?;
    let mut body = json!({});
    if names.len() > limit {
        names.truncate(limit);
        body["LastEvaluatedTableName"] = json!(names.last());
    }
    body["TableNames"] = json!(names);
    Ok(body.to_string())
}

/// The table name in a DynamoDB table ARN (`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`).
fn table_of_arn(arn: &str) -> Result<String, DynamoError> {
    let invalid = || {
        DynamoError::validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        ))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, "dynamodb", _, _, resource] = parts.as_slice() else {
        return Err(invalid());
    };
    let name = resource.strip_prefix("table/").ok_or_else(invalid)?;
    let name = name.split('/').next().unwrap_or_default();
    table_name(Some(name.to_string())).map_err(|_| invalid())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourceInput {
    resource_arn: Option<String>,
    tags: Option<Vec<Tag>>,
    tag_keys: Option<Vec<String>>,
}

/// Applies `change` to the tags of the table named by `arn`, returning the new tags.
async fn change_tags(
    app: &Arc<AppState>,
    arn: Option<String>,
    change: impl FnOnce(&mut BTreeMap<String, String>) + Send + 'static,
) -> Result<BTreeMap<String, String>, DynamoError> {
    let arn = required(arn, "resourceArn")?;
    let name = table_of_arn(&arn)?;
    with_store(app, move |conn| {
        let Some(mut table) = load_table(conn, &name)? else {
            return Ok(Err(DynamoError::table_not_found_message(format!(
                "Requested resource not found: ResourcArn: {arn} not found"
            ))));
        };
        let before = table.tags.clone();
        change(&mut table.tags);
        if table.tags != before {
            store::set_dynamodb_table_tags(conn, &name, &encode_tags(&name, &table.tags)?)?;
        }
        Ok(Ok(table.tags))
    })
    .await
}

pub(super) async fn tag_resource(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: TagResourceInput = input(body)?;
    let tags = tag_map(required(input.tags, "tags")?)?;
    change_tags(app, input.resource_arn, move |current| current.extend(tags)).await?;
    Ok("{}".to_string())
}

pub(super) async fn untag_resource(
    app: &Arc<AppState>,
    body: &[u8],
) -> Result<String, DynamoError> {
    let input: TagResourceInput = input(body)?;
    let keys = required(input.tag_keys, "tagKeys")?;
    change_tags(app, input.resource_arn, move |current| {
        for key in &keys {
            current.remove(key);
        }
    })
    .await?;
    Ok("{}".to_string())
}

pub(super) async fn list_tags(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: TagResourceInput = input(body)?;
    let tags = change_tags(app, input.resource_arn, |_| {}).await?;
    let tags: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect();
    Ok(json!({ "Tags": tags }).to_string())
}
