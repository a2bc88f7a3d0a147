//! DynamoDB's table operations: CreateTable, UpdateTable, DescribeTable, DeleteTable,
//! ListTables, the tag operations and time to live, with DynamoDB's validation of key schemas,
//! secondary indexes, billing modes and ARNs, and the `CREATING`/`UPDATING` states a deployer
//! waits out.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::value::{Item, KeyAttribute, KeySchema, KeyType};
use super::{DynamoError, MAX_LIST_TABLES, Settling, input, required, table_name, with_store};
use crate::clock;
use crate::server::AppState;
use crate::store::{self, IndexKey, StoreError, StoredTable};
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
    #[serde(default)]
    pub(super) indexes: Vec<Index>,
    #[serde(default)]
    deletion_protection: bool,
    /// Server-side encryption with a KMS key (`SSEType` and the key, when one was named);
    /// `None` is DynamoDB's default encryption, which DescribeTable does not describe.
    #[serde(default)]
    sse: Option<(String, Option<String>)>,
    /// `WarmThroughput` as read and write units per second.
    #[serde(default)]
    warm_throughput: Option<(i64, i64)>,
    /// The time-to-live attribute, when TTL is enabled.
    #[serde(default)]
    pub(super) ttl: Option<String>,
}

/// A global or local secondary index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Index {
    pub(super) name: String,
    pub(super) global: bool,
    pub(super) key_schema: KeySchema,
    pub(super) projection: Projection,
    provisioned: Option<(i64, i64)>,
}

/// Which attributes an index holds besides the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

impl Definition {
    pub(super) fn index(&self, name: &str) -> Option<&Index> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// The item's entries in the table's indexes: one per index whose key attributes the item
    /// has. A key attribute of the wrong type is refused, as DynamoDB refuses it.
    pub(super) fn index_keys(&self, item: &Item) -> Result<Vec<IndexKey>, DynamoError> {
        let mut keys = Vec::new();
        for index in &self.indexes {
            let attributes = std::iter::once(&index.key_schema.hash).chain(&index.key_schema.range);
            let mut present = true;
            for attribute in attributes {
                match item.get(&attribute.name) {
                    None => present = false,
                    Some(value) => {
                        let actual = value
                            .as_object()
                            .and_then(|o| o.keys().next())
                            .map_or("", String::as_str);
                        if actual != attribute.kind.as_str() {
                            return Err(DynamoError::validation(format!(
                                "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {actual} IndexName: {}",
                                attribute.name,
                                attribute.kind.as_str(),
                                index.name
                            )));
                        }
                    }
                }
            }
            if present {
                let key = index.key_schema.key_of_item(item)?;
                keys.push(IndexKey {
                    index: index.name.clone(),
                    pk: key.pk,
                    sk: key.sk,
                });
            }
        }
        Ok(keys)
    }
}

impl Index {
    /// What of an item the index holds.
    pub(super) fn project(&self, table: &KeySchema, item: &Item) -> Item {
        let keep = |name: &str| match &self.projection {
            Projection::All => true,
            Projection::KeysOnly | Projection::Include(_) => {
                let keys = [table, &self.key_schema];
                keys.iter().any(|k| {
                    k.hash.name == name || k.range.as_ref().is_some_and(|r| r.name == name)
                }) || matches!(&self.projection, Projection::Include(extra) if extra.iter().any(|e| e == name))
            }
        };
        item.iter()
            .filter(|(name, _)| keep(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
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
    let mut description = json!({
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
        "DeletionProtectionEnabled": definition.deletion_protection,
    });
    let key_schema_json = |schema: &KeySchema| {
        let mut elements = vec![json!({ "AttributeName": schema.hash.name, "KeyType": "HASH" })];
        if let Some(range) = &schema.range {
            elements.push(json!({ "AttributeName": range.name, "KeyType": "RANGE" }));
        }
        elements
    };
    let mut globals = Vec::new();
    let mut locals = Vec::new();
    for index in &definition.indexes {
        let projection = match &index.projection {
            Projection::All => json!({ "ProjectionType": "ALL" }),
            Projection::KeysOnly => json!({ "ProjectionType": "KEYS_ONLY" }),
            Projection::Include(extra) => {
                json!({ "ProjectionType": "INCLUDE", "NonKeyAttributes": extra })
            }
        };
        let mut described = json!({
            "IndexName": index.name,
            "KeySchema": key_schema_json(&index.key_schema),
            "Projection": projection,
            "IndexSizeBytes": usage.1,
            "ItemCount": usage.0,
            "IndexArn": format!("{}/index/{}", table_arn(app, &table.name), index.name),
        });
        if index.global {
            let (read, write) = index.provisioned.unwrap_or((0, 0));
            described["IndexStatus"] = json!("ACTIVE");
            described["ProvisionedThroughput"] = json!({
                "NumberOfDecreasesToday": 0,
                "ReadCapacityUnits": read,
                "WriteCapacityUnits": write,
            });
            globals.push(described);
        } else {
            locals.push(described);
        }
    }
    if !globals.is_empty() {
        description["GlobalSecondaryIndexes"] = json!(globals);
    }
    if !locals.is_empty() {
        description["LocalSecondaryIndexes"] = json!(locals);
    }
    if let Some((sse_type, key)) = &definition.sse {
        let key = key.clone().unwrap_or_else(|| {
            format!(
                "arn:aws:kms:{}:{}:key/aws/dynamodb",
                app.config.region, app.config.account_id
            )
        });
        let key = if key.starts_with("arn:") {
            key
        } else {
            format!(
                "arn:aws:kms:{}:{}:key/{key}",
                app.config.region, app.config.account_id
            )
        };
        description["SSEDescription"] = json!({
            "Status": "ENABLED",
            "SSEType": sse_type,
            "KMSMasterKeyArn": key,
        });
    }
    let (read, write) = definition.warm_throughput.unwrap_or((12_000, 4_000));
    description["WarmThroughput"] = json!({
        "ReadUnitsPerSecond": read,
        "WriteUnitsPerSecond": write,
        "Status": "ACTIVE",
    });
    description
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
struct ProjectionInput {
    projection_type: Option<String>,
    non_key_attributes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexInput {
    index_name: Option<String>,
    key_schema: Option<Vec<KeySchemaElement>>,
    projection: Option<ProjectionInput>,
    provisioned_throughput: Option<Throughput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SseInput {
    enabled: Option<bool>,
    #[serde(rename = "SSEType")]
    sse_type: Option<String>,
    #[serde(rename = "KMSMasterKeyId")]
    kms_master_key_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WarmThroughputInput {
    read_units_per_second: Option<i64>,
    write_units_per_second: Option<i64>,
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
    global_secondary_indexes: Option<Vec<IndexInput>>,
    local_secondary_indexes: Option<Vec<IndexInput>>,
    stream_specification: Option<Value>,
    deletion_protection_enabled: Option<bool>,
    #[serde(rename = "SSESpecification")]
    sse_specification: Option<SseInput>,
    warm_throughput: Option<WarmThroughputInput>,
}

/// Reads `AttributeDefinitions`.
fn attribute_definitions(
    definitions: Vec<AttributeDefinition>,
) -> Result<Vec<KeyAttribute>, DynamoError> {
    let mut attributes = Vec::new();
    for (i, definition) in definitions.into_iter().enumerate() {
        let kind = match definition.attribute_type.as_str() {
            "S" => KeyType::S,
            "N" => KeyType::N,
            "B" => return Err(DynamoError::unsupported("binary (B) key attributes")),
            other => {
                return Err(DynamoError::constraint(
                    other,
                    &format!("attributeDefinitions.{}.member.attributeType", i + 1),
                    "Member must satisfy enum value set: [B, N, S]",
                ));
            }
        };
        attributes.push(KeyAttribute {
            name: definition.attribute_name,
            kind,
        });
    }
    Ok(attributes)
}

/// Validates one key schema (the table's, at `field`, or an index's) against the attribute
/// definitions.
fn key_schema(
    elements: &[KeySchemaElement],
    attributes: &[KeyAttribute],
    field: &str,
) -> Result<KeySchema, DynamoError> {
    if elements.is_empty() || elements.len() > 2 {
        let constraint = if elements.is_empty() {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 2"
        };
        return Err(DynamoError::constraint(
            &format!("{} elements", elements.len()),
            field,
            constraint,
        ));
    }
    for (i, element) in elements.iter().enumerate() {
        if !matches!(element.key_type.as_str(), "HASH" | "RANGE") {
            return Err(DynamoError::constraint(
                &element.key_type,
                &format!("{field}.{}.member.keyType", i + 1),
                "Member must satisfy enum value set: [HASH, RANGE]",
            ));
        }
    }
    let names = |list: Vec<&str>| format!("[{}]", list.join(", "));
    let mut resolved = Vec::new();
    for element in elements {
        let Some(attribute) = attributes
            .iter()
            .find(|a| a.name == element.attribute_name)
            .cloned()
        else {
            return Err(DynamoError::validation(format!(
                "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: {}, AttributeDefinitions: {}",
                names(elements.iter().map(|e| e.attribute_name.as_str()).collect()),
                names(attributes.iter().map(|a| a.name.as_str()).collect()),
            )));
        };
        resolved.push((element.key_type.as_str(), attribute));
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
    Ok(KeySchema { hash, range })
}

/// Validates CreateTable's secondary indexes.
fn indexes(
    table: &KeySchema,
    attributes: &[KeyAttribute],
    globals: Vec<IndexInput>,
    locals: Vec<IndexInput>,
    billing_mode: &str,
) -> Result<Vec<Index>, DynamoError> {
    let mut indexes: Vec<Index> = Vec::new();
    let kinds = globals
        .into_iter()
        .map(|i| (true, i))
        .chain(locals.into_iter().map(|i| (false, i)));
    let mut counts = (0usize, 0usize);
    for (global, input) in kinds {
        let field = if global {
            "globalSecondaryIndexes"
        } else {
            "localSecondaryIndexes"
        };
        let n = if global {
            counts.0 += 1;
            counts.0
        } else {
            counts.1 += 1;
            counts.1
        };
        let name = required(input.index_name, &format!("{field}.{n}.member.indexName"))?;
        if name.chars().count() < 3
            || name.chars().count() > 255
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(DynamoError::constraint(
                &name,
                &format!("{field}.{n}.member.indexName"),
                "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
            ));
        }
        if indexes.iter().any(|i| i.name == name) {
            return Err(DynamoError::validation(format!(
                "One or more parameter values were invalid: Duplicate index name: {name}"
            )));
        }
        let elements = required(input.key_schema, &format!("{field}.{n}.member.keySchema"))?;
        let schema = key_schema(
            &elements,
            attributes,
            &format!("{field}.{n}.member.keySchema"),
        )?;
        let projection = required(input.projection, &format!("{field}.{n}.member.projection"))?;
        let projection = match (
            projection.projection_type.as_deref(),
            projection.non_key_attributes,
        ) {
            (Some("ALL"), None) => Projection::All,
            (Some("KEYS_ONLY"), None) => Projection::KeysOnly,
            (Some("INCLUDE"), Some(extra)) if !extra.is_empty() => Projection::Include(extra),
            (Some("INCLUDE"), _) => {
                return Err(DynamoError::validation(
                    "One or more parameter values were invalid: NonKeyAttributes must not be empty",
                ));
            }
            (Some(kind @ ("ALL" | "KEYS_ONLY")), Some(_)) => {
                return Err(DynamoError::validation(format!(
                    "One or more parameter values were invalid: ProjectionType is {kind}, but NonKeyAttributes is specified"
                )));
            }
            (None, _) => {
                return Err(DynamoError::validation(
                    "One or more parameter values were invalid: Unknown ProjectionType: null",
                ));
            }
            (Some(other), _) => {
                return Err(DynamoError::constraint(
                    other,
                    &format!("{field}.{n}.member.projection.projectionType"),
                    "Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]",
                ));
            }
        };
        let provisioned = if global {
            billing(billing_mode, input.provisioned_throughput)?
        } else {
            if table.range.is_none() {
                return Err(DynamoError::validation(
                    "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
                ));
            }
            if schema.hash.name != table.hash.name {
                return Err(DynamoError::validation(format!(
                    "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: {name}. index hash key: {}, table hash key: {}",
                    schema.hash.name, table.hash.name
                )));
            }
            if schema.range.is_none() {
                return Err(DynamoError::validation(format!(
                    "One or more parameter values were invalid: Index KeySchema does not have a range key for index: {name}"
                )));
            }
            None
        };
        indexes.push(Index {
            name,
            global,
            key_schema: schema,
            projection,
            provisioned,
        });
    }
    if counts.0 > 20 || counts.1 > 5 {
        return Err(DynamoError::validation(
            "One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of 20, or LocalSecondaryIndex count exceeds the limit of 5",
        ));
    }
    Ok(indexes)
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

/// `SSESpecification`: `Enabled: true` means a KMS key (AWS-owned unless one is named).
fn sse(input: Option<SseInput>) -> Result<Option<(String, Option<String>)>, DynamoError> {
    let Some(input) = input else {
        return Ok(None);
    };
    if let Some(kind) = input.sse_type.as_deref()
        && !matches!(kind, "AES256" | "KMS")
    {
        return Err(DynamoError::constraint(
            kind,
            "sSESpecification.sSEType",
            "Member must satisfy enum value set: [AES256, KMS]",
        ));
    }
    if input.enabled != Some(true) {
        if input.sse_type.is_some() || input.kms_master_key_id.is_some() {
            return Err(DynamoError::validation(
                "One or more parameter values were invalid: SSEType is specified but SSE is not enabled",
            ));
        }
        return Ok(None);
    }
    Ok(Some(("KMS".to_string(), input.kms_master_key_id)))
}

/// `WarmThroughput`: both rates at least 1 when given; DynamoDB's defaults otherwise.
fn warm_throughput(input: Option<WarmThroughputInput>) -> Result<Option<(i64, i64)>, DynamoError> {
    let Some(input) = input else {
        return Ok(None);
    };
    let (read, write) = (
        input.read_units_per_second.unwrap_or(12_000),
        input.write_units_per_second.unwrap_or(4_000),
    );
    for (value, field) in [
        (read, "warmThroughput.readUnitsPerSecond"),
        (write, "warmThroughput.writeUnitsPerSecond"),
    ] {
        if value < 1 {
            return Err(DynamoError::constraint(
                &value.to_string(),
                field,
                "Member must have value greater than or equal to 1",
            ));
        }
    }
    Ok(Some((read, write)))
}

pub(super) async fn create_table(app: &Arc<AppState>, body: &[u8]) -> Result<String, DynamoError> {
    let input: CreateTableInput = input(body)?;
    let name = table_name(input.table_name)?;
    let attributes = attribute_definitions(required(
        input.attribute_definitions,
        "attributeDefinitions",
    )?)?;
    let schema = key_schema(
        &required(input.key_schema, "keySchema")?,
        &attributes,
        "keySchema",
    )?;
    if input.stream_specification.is_some() {
        return Err(DynamoError::unsupported("streams"));
    }
    let billing_mode = input
        .billing_mode
        .unwrap_or_else(|| "PROVISIONED".to_string());
    let provisioned = billing(&billing_mode, input.provisioned_throughput)?;
    let indexes = indexes(
        &schema,
        &attributes,
        input.global_secondary_indexes.unwrap_or_default(),
        input.local_secondary_indexes.unwrap_or_default(),
        &billing_mode,
    )?;
    let mut used: Vec<&str> = Vec::new();
    for key in std::iter::once(&schema).chain(indexes.iter().map(|i| &i.key_schema)) {
        for attribute in std::iter::once(&key.hash).chain(&key.range) {
            if !used.contains(&attribute.name.as_str()) {
                used.push(&attribute.name);
            }
        }
    }
    if attributes.len() != used.len() {
        let defined: Vec<&str> = attributes.iter().map(|a| a.name.as_str()).collect();
        return Err(DynamoError::validation(if indexes.is_empty() {
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions".to_string()
        } else {
            format!(
                "One or more parameter values were invalid: Some AttributeDefinitions are not used. AttributeDefinitions: [{}], keys used: [{}]",
                defined.join(", "),
                used.join(", ")
            )
        }));
    }
    let table = Table {
        name: name.clone(),
        definition: Definition {
            table_id: uuid::Uuid::new_v4().to_string(),
            key_schema: schema,
            attributes,
            billing_mode,
            provisioned,
            indexes,
            deletion_protection: input.deletion_protection_enabled.unwrap_or(false),
            sse: sse(input.sse_specification)?,
            warm_throughput: warm_throughput(input.warm_throughput)?,
            ttl: None,
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
    deletion_protection_enabled: Option<bool>,
    #[serde(rename = "SSESpecification")]
    sse_specification: Option<SseInput>,
    warm_throughput: Option<WarmThroughputInput>,
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
    let sse = match input.sse_specification {
        Some(spec) => Some(sse(Some(spec))?),
        None => None,
    };
    let warm = warm_throughput(input.warm_throughput)?;
    let protection = input.deletion_protection_enabled;
    if input.billing_mode.is_none()
        && input.provisioned_throughput.is_none()
        && protection.is_none()
        && sse.is_none()
        && warm.is_none()
    {
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
        if input.billing_mode.is_some() || input.provisioned_throughput.is_some() {
            let mode = input
                .billing_mode
                .unwrap_or_else(|| table.definition.billing_mode.clone());
            let provisioned = match billing(&mode, input.provisioned_throughput) {
                Ok(provisioned) => provisioned,
                Err(e) => return Ok(Err(e)),
            };
            table.definition.billing_mode = mode;
            table.definition.provisioned = provisioned;
        }
        if let Some(protection) = protection {
            table.definition.deletion_protection = protection;
        }
        if let Some(sse) = sse {
            table.definition.sse = sse;
        }
        if warm.is_some() {
            table.definition.warm_throughput = warm;
        }
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
        if table.definition.deletion_protection {
            return Ok(Err(DynamoError::resource_in_use(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
            )));
        }
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TimeToLiveSpecification {
    enabled: Option<bool>,
    attribute_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateTimeToLiveInput {
    table_name: Option<String>,
    time_to_live_specification: Option<TimeToLiveSpecification>,
}

/// UpdateTimeToLive: items whose TTL attribute (epoch seconds) has passed are deleted by the
/// emulator before the next item operation on the table reads or writes it.
pub(super) async fn update_time_to_live(
    app: &Arc<AppState>,
    body: &[u8],
) -> Result<String, DynamoError> {
    let input: UpdateTimeToLiveInput = input(body)?;
    let name = table_name(input.table_name)?;
    let spec = required(input.time_to_live_specification, "timeToLiveSpecification")?;
    let enabled = required(spec.enabled, "timeToLiveSpecification.enabled")?;
    let attribute = required(spec.attribute_name, "timeToLiveSpecification.attributeName")?;
    if attribute.is_empty() || attribute.len() > 255 {
        return Err(DynamoError::constraint(
            &attribute,
            "timeToLiveSpecification.attributeName",
            "Member must have length less than or equal to 255, Member must have length greater than or equal to 1",
        ));
    }
    let answer = json!({
        "TimeToLiveSpecification": { "Enabled": enabled, "AttributeName": attribute },
    });
    with_store(app, move |conn| {
        let Some(mut table) = load_table(conn, &name)? else {
            return Ok(Err(DynamoError::table_not_found(&name)));
        };
        match (&table.definition.ttl, enabled) {
            (Some(_), true) => {
                return Ok(Err(DynamoError::validation("TimeToLive is already enabled")));
            }
            (None, false) => {
                return Ok(Err(DynamoError::validation("TimeToLive is already disabled")));
            }
            (Some(current), false) if *current != attribute => {
                return Ok(Err(DynamoError::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName is {current}"
                ))));
            }
            _ => {}
        }
        table.definition.ttl = enabled.then_some(attribute);
        store::set_dynamodb_table_definition(conn, &name, &encode_definition(&table)?)?;
        Ok(Ok(()))
    })
    .await?;
    Ok(answer.to_string())
}

pub(super) async fn describe_time_to_live(
    app: &Arc<AppState>,
    body: &[u8],
) -> Result<String, DynamoError> {
    let name = table_name(input::<TableNameInput>(body)?.table_name)?;
    let table = with_store(app, move |conn| {
        Ok(load_table(conn, &name)?.ok_or_else(|| DynamoError::table_not_found(&name)))
    })
    .await?;
    let description = match &table.definition.ttl {
        Some(attribute) => json!({ "TimeToLiveStatus": "ENABLED", "AttributeName": attribute }),
        None => json!({ "TimeToLiveStatus": "DISABLED" }),
    };
    Ok(json!({ "TimeToLiveDescription": description }).to_string())
}
