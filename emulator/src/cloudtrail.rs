//! CloudTrail Lake, the part a stage's audit needs: event data stores
//! (`CreateEventDataStore`, `GetEventDataStore`, `ListEventDataStores`, `UpdateEventDataStore`,
//! `DeleteEventDataStore`, `AddTags`, `ListTags`) and queries (`StartQuery`, `DescribeQuery`,
//! `GetQueryResults`) over the JSON 1.1 protocol (`X-Amz-Target: CloudTrail_20131101.*`),
//! kept in the state database.
//!
//! Every audited DynamoDB data call (see `dynamodb/access.rs`) that a store's advanced event
//! selectors match becomes a CloudTrail-shaped record in that store. Queries accept one SQL
//! shape, the one `cargo xtask audit` sends: `SELECT <columns> FROM <store id> WHERE <filters>
//! [ORDER BY eventTime [ASC|DESC]] [LIMIT n]`, where a column is a record field
//! (`eventTime`, `userIdentity.arn`, ...) or `element_at(requestParameters, 'name')`, each
//! with an optional `AS alias`, and filters are `AND`ed comparisons of `eventTime`,
//! `eventSource`, `eventName` or `errorCode` with a quoted literal, or `errorCode IS [NOT]
//! NULL`. Anything else is `InvalidQueryStatementException`. Queries finish when started.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::AuditEvent;
use crate::aws_json;
use crate::clock;
use crate::server::AppState;
use crate::store::StoreError;
use crate::sts::Session;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The tables CloudTrail keeps in the state database.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cloudtrail_stores (
    arn TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cloudtrail_events (
    seq INTEGER PRIMARY KEY,
    store_arn TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cloudtrail_events_by_store ON cloudtrail_events (store_arn, time_ms);
CREATE TABLE IF NOT EXISTS cloudtrail_queries (
    id TEXT PRIMARY KEY,
    store_arn TEXT NOT NULL,
    statement TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    rows TEXT NOT NULL
);
";

/// One event data store.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Store {
    arn: String,
    name: String,
    status: String,
    selectors: Vec<Value>,
    multi_region: bool,
    organization: bool,
    termination_protection: bool,
    retention: i64,
    /// Seconds since the epoch.
    created: f64,
    updated: f64,
    tags: Vec<(String, String)>,
}

impl Store {
    fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    fn describe(&self) -> Value {
        json!({
            "EventDataStoreArn": self.arn,
            "Name": self.name,
            "Status": self.status,
            "AdvancedEventSelectors": self.selectors,
            "MultiRegionEnabled": self.multi_region,
            "OrganizationEnabled": self.organization,
            "RetentionPeriod": self.retention,
            "TerminationProtectionEnabled": self.termination_protection,
            "CreatedTimestamp": self.created,
            "UpdatedTimestamp": self.updated,
            "BillingMode": "EXTENDABLE_RETENTION_PRICING",
        })
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    aws_json::error(CONTENT_TYPE, status, code, message)
}

fn bad_request(code: &str, message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, code, message)
}

fn ok(body: Value) -> Response {
    aws_json::response(CONTENT_TYPE, StatusCode::OK, body.to_string())
}

fn internal(e: impl std::fmt::Display) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerException",
        e.to_string(),
    )
}

fn not_found(id: &str) -> Response {
    bad_request(
        "EventDataStoreNotFoundException",
        format!("The specified event data store {id} was not found."),
    )
}

fn invalid_query(message: impl Into<String>) -> Response {
    bad_request("InvalidQueryStatementException", message)
}

fn now_secs() -> f64 {
    clock::now_millis() as f64 / 1000.0
}

fn load_all(conn: &Connection) -> Result<Vec<Store>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT arn, document FROM cloudtrail_stores ORDER BY arn")?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (arn, doc) = row?;
        out.push(
            serde_json::from_str(&doc).map_err(|source| StoreError::Corrupt {
                what: "event data store",
                name: arn,
                source,
            })?,
        );
    }
    Ok(out)
}

fn save(conn: &Connection, store: &Store) -> Result<(), StoreError> {
    let doc = serde_json::to_string(store).map_err(|source| StoreError::Encode {
        what: "event data store",
        name: store.arn.clone(),
        source,
    })?;
    conn.execute(
        "INSERT INTO cloudtrail_stores (arn, document) VALUES (?1, ?2)
         ON CONFLICT(arn) DO UPDATE SET document = ?2",
        params![store.arn, doc],
    )?;
    Ok(())
}

/// The store an operation names: by ARN, or by the id its ARN ends with.
fn find<'a>(stores: &'a [Store], id: &str) -> Option<&'a Store> {
    stores.iter().find(|s| s.arn == id || s.id() == id)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    name: Option<String>,
    event_data_store: Option<String>,
    advanced_event_selectors: Option<Vec<Value>>,
    multi_region_enabled: Option<bool>,
    organization_enabled: Option<bool>,
    termination_protection_enabled: Option<bool>,
    retention_period: Option<i64>,
    #[serde(default)]
    tags_list: Vec<Value>,
    resource_id: Option<String>,
    #[serde(default)]
    resource_id_list: Vec<String>,
    query_statement: Option<String>,
    query_id: Option<String>,
    next_token: Option<String>,
    max_results: Option<usize>,
    max_query_results: Option<usize>,
}

fn tags_of(list: &[Value]) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|t| {
            Some((
                t.get("Key")?.as_str()?.to_string(),
                t.get("Value")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ))
        })
        .collect()
}

fn tags_json(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect(),
    )
}

/// Whether CloudTrail accepts a store name: 3 to 128 of `[a-zA-Z0-9._-]`, starting and ending
/// with a letter or digit.
fn valid_name(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Answers one CloudTrail operation.
pub async fn handle(app: Arc<AppState>, operation: &str, body: &[u8]) -> Response {
    let input: Input = match aws_json::parse(body) {
        Ok(input) => input,
        Err(e) => {
            return bad_request(
                "InvalidParameterException",
                format!("invalid request body: {e}"),
            );
        }
    };
    let operation = operation.to_string();
    let region = app.config.region.clone();
    let account = app.config.account_id.clone();
    match app
        .store
        .call(move |conn| Ok(answer(conn, &operation, input, &region, &account)))
        .await
    {
        Ok(response) => response,
        Err(e) => internal(e),
    }
}

fn answer(
    conn: &mut Connection,
    operation: &str,
    input: Input,
    region: &str,
    account: &str,
) -> Response {
    match run(conn, operation, input, region, account) {
        Ok(response) => response,
        Err(e) => internal(e),
    }
}

fn run(
    conn: &mut Connection,
    operation: &str,
    input: Input,
    region: &str,
    account: &str,
) -> Result<Response, StoreError> {
    let stores = load_all(conn)?;
    // The store the operation names, if it names one that exists.
    let id = input.event_data_store.clone().unwrap_or_default();
    let named = find(&stores, &id).cloned();
    Ok(match operation {
        "CreateEventDataStore" => {
            let name = input.name.clone().unwrap_or_default();
            if !valid_name(&name) {
                return Ok(bad_request(
                    "InvalidParameterException",
                    format!(
                        "Event data store name {name} is not valid: use 3-128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit."
                    ),
                ));
            }
            if stores
                .iter()
                .any(|s| s.name == name && s.status != "PENDING_DELETION")
            {
                return Ok(bad_request(
                    "EventDataStoreAlreadyExistsException",
                    format!("An event data store with the name {name} already exists."),
                ));
            }
            let retention = input.retention_period.unwrap_or(2557);
            if !(7..=3653).contains(&retention) {
                return Ok(bad_request(
                    "InvalidParameterException",
                    "RetentionPeriod must be between 7 and 3653 days.",
                ));
            }
            let now = now_secs();
            let store = Store {
                arn: format!(
                    "arn:aws:cloudtrail:{region}:{account}:eventdatastore/{}",
                    uuid::Uuid::new_v4()
                ),
                name,
                status: "ENABLED".into(),
                // Without selectors a store records management events, as on AWS.
                selectors: input.advanced_event_selectors.clone().unwrap_or_else(|| {
                    vec![
                        json!({"Name": "Default management events", "FieldSelectors": [
                            {"Field": "eventCategory", "Equals": ["Management"]}
                        ]}),
                    ]
                }),
                multi_region: input.multi_region_enabled.unwrap_or(true),
                organization: input.organization_enabled.unwrap_or(false),
                termination_protection: input.termination_protection_enabled.unwrap_or(true),
                retention,
                created: now,
                updated: now,
                tags: tags_of(&input.tags_list),
            };
            save(conn, &store)?;
            let mut body = store.describe();
            body["TagsList"] = tags_json(&store.tags);
            ok(body)
        }
        "GetEventDataStore" => match named {
            Some(store) => ok(store.describe()),
            None => not_found(&id),
        },
        "ListEventDataStores" => {
            let start: usize = input
                .next_token
                .as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let max = input.max_results.unwrap_or(1000).clamp(1, 1000);
            let page: Vec<Value> = stores
                .iter()
                .skip(start)
                .take(max)
                .map(Store::describe)
                .collect();
            let mut body = json!({ "EventDataStores": page });
            if start + max < stores.len() {
                body["NextToken"] = json!((start + max).to_string());
            }
            ok(body)
        }
        "UpdateEventDataStore" => {
            let Some(mut store) = named else {
                return Ok(not_found(&id));
            };
            if store.status == "PENDING_DELETION" {
                return Ok(bad_request(
                    "InactiveEventDataStoreException",
                    format!("The event data store {} is pending deletion.", store.arn),
                ));
            }
            if let Some(selectors) = input.advanced_event_selectors {
                store.selectors = selectors;
            }
            if let Some(v) = input.multi_region_enabled {
                store.multi_region = v;
            }
            if let Some(v) = input.organization_enabled {
                store.organization = v;
            }
            if let Some(v) = input.termination_protection_enabled {
                store.termination_protection = v;
            }
            if let Some(v) = input.retention_period {
                store.retention = v;
            }
            if let Some(name) = input.name {
                store.name = name;
            }
            store.updated = now_secs();
            save(conn, &store)?;
            ok(store.describe())
        }
        "DeleteEventDataStore" => {
            let Some(mut store) = named else {
                return Ok(not_found(&id));
            };
            if store.termination_protection {
                return Ok(bad_request(
                    "EventDataStoreTerminationProtectedException",
                    format!(
                        "The event data store {} has termination protection enabled; disable it with UpdateEventDataStore first.",
                        store.arn
                    ),
                ));
            }
            if store.status == "PENDING_DELETION" {
                return Ok(bad_request(
                    "InactiveEventDataStoreException",
                    format!(
                        "The event data store {} is already pending deletion.",
                        store.arn
                    ),
                ));
            }
            // AWS keeps a deleted store 7 days in PENDING_DELETION (it can be restored); it
            // records nothing meanwhile, and its events go with it.
            store.status = "PENDING_DELETION".into();
            store.updated = now_secs();
            save(conn, &store)?;
            conn.execute(
                "DELETE FROM cloudtrail_events WHERE store_arn = ?1",
                [&store.arn],
            )?;
            ok(json!({}))
        }
        "AddTags" => {
            let id = input.resource_id.clone().unwrap_or_default();
            let Some(mut store) = find(&stores, &id).cloned() else {
                return Ok(not_found(&id));
            };
            for (k, v) in tags_of(&input.tags_list) {
                store.tags.retain(|(key, _)| *key != k);
                store.tags.push((k, v));
            }
            save(conn, &store)?;
            ok(json!({}))
        }
        "ListTags" => {
            let mut list = Vec::new();
            for id in &input.resource_id_list {
                let Some(store) = find(&stores, id) else {
                    return Ok(not_found(id));
                };
                list.push(json!({ "ResourceId": store.arn, "TagsList": tags_json(&store.tags) }));
            }
            ok(json!({ "ResourceTagList": list }))
        }
        "StartQuery" => {
            let statement = input.query_statement.clone().unwrap_or_default();
            let parsed = match parse_query(&statement) {
                Ok(parsed) => parsed,
                Err(why) => return Ok(invalid_query(why)),
            };
            let Some(store) = find(&stores, &parsed.from) else {
                return Ok(not_found(&parsed.from));
            };
            if store.status != "ENABLED" {
                return Ok(bad_request(
                    "InactiveEventDataStoreException",
                    format!("The event data store {} is not enabled.", store.arn),
                ));
            }
            let rows = execute(conn, &store.arn, &parsed)?;
            let id = uuid::Uuid::new_v4().to_string();
            let encoded = serde_json::to_string(&rows).map_err(|source| StoreError::Encode {
                what: "query results",
                name: id.clone(),
                source,
            })?;
            conn.execute(
                "INSERT INTO cloudtrail_queries (id, store_arn, statement, created_ms, rows)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, store.arn, statement, clock::now_millis(), encoded],
            )?;
            ok(json!({ "QueryId": id }))
        }
        "DescribeQuery" | "GetQueryResults" => {
            let id = input.query_id.clone().unwrap_or_default();
            let found: Option<(String, String, i64, String)> = conn
                .query_row(
                    "SELECT store_arn, statement, created_ms, rows FROM cloudtrail_queries WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((_, statement, created_ms, rows)) = found else {
                return Ok(bad_request(
                    "QueryIdNotFoundException",
                    format!("The query ID {id} does not exist or does not map to a query."),
                ));
            };
            let rows: Vec<Value> =
                serde_json::from_str(&rows).map_err(|source| StoreError::Corrupt {
                    what: "query results",
                    name: id.clone(),
                    source,
                })?;
            if operation == "DescribeQuery" {
                ok(json!({
                    "QueryId": id,
                    "QueryString": statement,
                    "QueryStatus": "FINISHED",
                    "QueryStatistics": {
                        "EventsMatched": rows.len(),
                        "EventsScanned": rows.len(),
                        "BytesScanned": 0,
                        "ExecutionTimeInMillis": 0,
                        "CreationTime": created_ms as f64 / 1000.0,
                    },
                }))
            } else {
                let start: usize = match input.next_token.as_deref().map(str::parse) {
                    None => 0,
                    Some(Ok(n)) => n,
                    Some(Err(_)) => {
                        return Ok(bad_request(
                            "InvalidNextTokenException",
                            "The NextToken is not valid.",
                        ));
                    }
                };
                let max = input.max_query_results.unwrap_or(1000).clamp(1, 1000);
                let page: Vec<&Value> = rows.iter().skip(start).take(max).collect();
                let mut body = json!({
                    "QueryStatus": "FINISHED",
                    "QueryStatistics": {
                        "ResultsCount": page.len(),
                        "TotalResultsCount": rows.len(),
                        "BytesScanned": 0,
                    },
                    "QueryResultRows": page,
                });
                if start + max < rows.len() {
                    body["NextToken"] = json!((start + max).to_string());
                }
                ok(body)
            }
        }
        other => bad_request(
            "UnsupportedOperationException",
            format!("The emulator does not implement CloudTrail {other}."),
        ),
    })
}

// Recording data events.

/// The value of a record's field for selectors and queries: `eventName`,
/// `userIdentity.sessionContext.sessionIssuer.arn`, ...; `resources.ARN` and `resources.type`
/// are the first resource's.
fn field<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = record;
    for part in path.split('.') {
        at = match at {
            Value::Array(items) => items.first()?.get(part)?,
            other => other.get(part)?,
        };
    }
    (!at.is_null()).then_some(at)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether one advanced event selector matches a record: every field selector holds.
fn selector_matches(selector: &Value, record: &Value) -> bool {
    let Some(fields) = selector.get("FieldSelectors").and_then(Value::as_array) else {
        return false;
    };
    fields.iter().all(|f| {
        let Some(name) = f.get("Field").and_then(Value::as_str) else {
            return false;
        };
        let value = field(record, name).map(text).unwrap_or_default();
        let list = |op: &str| -> Vec<&str> {
            f.get(op)
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        let positive = |op: &str, test: &dyn Fn(&str) -> bool| {
            let values = list(op);
            values.is_empty() || values.iter().any(|v| test(v))
        };
        let negative = |op: &str, test: &dyn Fn(&str) -> bool| list(op).iter().all(|v| !test(v));
        positive("Equals", &|v| value == v)
            && positive("StartsWith", &|v| value.starts_with(v))
            && positive("EndsWith", &|v| value.ends_with(v))
            && negative("NotEquals", &|v| value == v)
            && negative("NotStartsWith", &|v| value.starts_with(v))
            && negative("NotEndsWith", &|v| value.ends_with(v))
    })
}

/// A plain value of a DynamoDB attribute, as CloudTrail writes keys: `{"S": "TX"}` -> `"TX"`.
fn plain(value: &Value) -> Value {
    match value.as_object().and_then(|o| o.iter().next()) {
        Some((kind, v)) if kind == "S" || kind == "N" || kind == "B" => v.clone(),
        _ => value.clone(),
    }
}

/// What CloudTrail records of a call's request: the table, and the key of an item call or the
/// key condition of a Query (with only the names and values it uses).
fn request_parameters(
    operation: &str,
    request: &Value,
    table: &str,
    key_names: &[String],
) -> Value {
    let mut out = json!({ "tableName": table });
    let item = match operation {
        "GetItem" | "DeleteItem" | "UpdateItem" => request.get("Key"),
        "PutItem" => request.get("Item"),
        _ => None,
    };
    if let Some(item) = item {
        let key: serde_json::Map<String, Value> = key_names
            .iter()
            .filter_map(|k| Some((k.clone(), plain(item.get(k)?))))
            .collect();
        out["key"] = Value::Object(key);
    }
    if operation == "Query"
        && let Some(condition) = request
            .get("KeyConditionExpression")
            .and_then(Value::as_str)
    {
        out["keyConditionExpression"] = json!(condition);
        let used = |map: Option<&Value>| -> Value {
            let entries: serde_json::Map<String, Value> = map
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| condition.contains(k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            Value::Object(entries)
        };
        out["expressionAttributeNames"] = used(request.get("ExpressionAttributeNames"));
        out["expressionAttributeValues"] = used(request.get("ExpressionAttributeValues"));
        if let Some(index) = request.get("IndexName") {
            out["indexName"] = index.clone();
        }
    }
    out
}

/// Records the audited data calls of one request in every store whose selectors match them:
/// one CloudTrail record per table the call touched, refused ones with `errorCode`
/// `AccessDenied` and IAM's sentence. `key_names` gives a table's key attributes.
pub fn record(
    conn: &mut Connection,
    events: &[AuditEvent],
    session: &Session,
    operation: &str,
    request: &Value,
    region: &str,
    key_names: &dyn Fn(&str) -> Vec<String>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let stores: Vec<Store> = load_all(conn)?
        .into_iter()
        .filter(|s| s.status == "ENABLED")
        .collect();
    if stores.is_empty() {
        return Ok(());
    }
    // One record per table: a batch or transaction touching a table twice is one call on it.
    let mut by_table: BTreeMap<&str, (i64, bool, Option<&str>)> = BTreeMap::new();
    for e in events {
        let entry = by_table
            .entry(e.table.as_str())
            .or_insert((e.time_ms, true, None));
        if !e.allowed {
            entry.1 = false;
            entry.2 = entry.2.or(e.reason.as_deref());
        }
    }
    let read_only = matches!(
        operation,
        "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems"
    );
    let tx = conn.transaction()?;
    for (table, (time_ms, allowed, reason)) in by_table {
        let table_arn = format!(
            "arn:aws:dynamodb:{region}:{}:table/{table}",
            session.account
        );
        let mut record = json!({
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": format!("{}:{}", session.role_id, session.session_name),
                "arn": session.arn(),
                "accountId": session.account,
                "accessKeyId": session.access_key_id,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": session.role_id,
                        "arn": session.role_arn,
                        "accountId": session.account,
                        "userName": session.role_name,
                    },
                    "attributes": { "mfaAuthenticated": "false" },
                },
            },
            "eventTime": clock::iso8601(time_ms),
            "eventSource": "dynamodb.amazonaws.com",
            "eventName": operation,
            "awsRegion": region,
            "sourceIPAddress": "127.0.0.1",
            "requestParameters": request_parameters(operation, request, table, &key_names(table)),
            "responseElements": null,
            "requestID": uuid::Uuid::new_v4().to_string(),
            "eventID": uuid::Uuid::new_v4().to_string(),
            "readOnly": read_only,
            "resources": [{
                "accountId": session.account,
                "type": "AWS::DynamoDB::Table",
                "ARN": table_arn,
            }],
            "eventType": "AwsApiCall",
            "managementEvent": false,
            "recipientAccountId": session.account,
            "eventCategory": "Data",
        });
        if !allowed {
            record["errorCode"] = json!("AccessDenied");
            record["errorMessage"] = json!(reason.unwrap_or_default());
        }
        let encoded = record.to_string();
        for store in &stores {
            if store.selectors.iter().any(|s| selector_matches(s, &record)) {
                tx.execute(
                    "INSERT INTO cloudtrail_events (store_arn, time_ms, record) VALUES (?1, ?2, ?3)",
                    params![store.arn, time_ms, encoded],
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

// Queries.

/// A column of a query: a field path or one request parameter, and the name it is returned as.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    Field(String),
    RequestParameter(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    /// `field op 'literal'`; `eventTime` compares as a time.
    Compare(String, String, String),
    IsNull(String, bool),
}

#[derive(Debug, Clone, PartialEq)]
struct Parsed {
    columns: Vec<(Column, String)>,
    from: String,
    filters: Vec<Filter>,
    descending: bool,
    limit: Option<usize>,
}

const FILTER_FIELDS: &[&str] = &["eventTime", "eventSource", "eventName", "errorCode"];

/// Splits at `sep` outside parentheses and quotes.
fn split_top(text: &str, sep: char) -> Vec<String> {
    let (mut depth, mut quoted, mut out, mut cur) = (0i32, false, Vec::new(), String::new());
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            _ => {}
        }
        if c == sep && depth == 0 && !quoted {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn is_path(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

fn quoted(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    (!inner.contains('\'')).then(|| inner.to_string())
}

fn parse_column(text: &str) -> Result<(Column, String), String> {
    let text = text.trim();
    let (expr, alias) = match text
        .rsplit_once(" AS ")
        .or_else(|| text.rsplit_once(" as "))
    {
        Some((e, a)) if is_path(a.trim()) && !a.contains('.') => (e.trim(), Some(a.trim())),
        _ => (text, None),
    };
    let column = if let Some(args) = expr
        .strip_prefix("element_at(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let (map, key) = args
            .split_once(',')
            .ok_or_else(|| format!("element_at needs a map and a key: {expr}"))?;
        if map.trim() != "requestParameters" {
            return Err(format!(
                "the emulator reads element_at of requestParameters only, not {}",
                map.trim()
            ));
        }
        Column::RequestParameter(
            quoted(key).ok_or_else(|| format!("element_at's key must be a quoted name: {expr}"))?,
        )
    } else if is_path(expr) {
        Column::Field(expr.to_string())
    } else {
        return Err(format!("the emulator cannot select {expr}"));
    };
    Ok((column, alias.unwrap_or(expr).to_string()))
}

fn parse_filter(text: &str) -> Result<Filter, String> {
    let text = text.trim();
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [f, "IS", "NOT", "NULL"] | [f, "is", "not", "null"] if FILTER_FIELDS.contains(f) => {
            return Ok(Filter::IsNull(f.to_string(), false));
        }
        [f, "IS", "NULL"] | [f, "is", "null"] if FILTER_FIELDS.contains(f) => {
            return Ok(Filter::IsNull(f.to_string(), true));
        }
        _ => {}
    }
    for op in [">=", "<=", "!=", "<>", "=", ">", "<"] {
        if let Some((left, right)) = text.split_once(op) {
            let left = left.trim();
            if !FILTER_FIELDS.contains(&left) {
                return Err(format!(
                    "the emulator filters on {} only, not {left}",
                    FILTER_FIELDS.join(", ")
                ));
            }
            let literal =
                quoted(right).ok_or_else(|| format!("compare {left} with a quoted literal"))?;
            if left == "eventTime" && parse_time(&literal).is_none() {
                return Err(format!(
                    "'{literal}' is not a timestamp (YYYY-MM-DD HH:MM:SS)"
                ));
            }
            return Ok(Filter::Compare(left.to_string(), op.to_string(), literal));
        }
    }
    Err(format!(
        "the emulator does not understand the condition {text}"
    ))
}

fn parse_query(sql: &str) -> Result<Parsed, String> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let rest = sql
        .strip_prefix("SELECT ")
        .or_else(|| sql.strip_prefix("select "))
        .ok_or("a query starts with SELECT")?;
    let (columns, rest) = rest
        .split_once(" FROM ")
        .or_else(|| rest.split_once(" from "))
        .ok_or("a query names its event data store with FROM")?;
    let columns = split_top(columns, ',')
        .iter()
        .map(|c| parse_column(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rest = rest.trim().to_string();
    let mut limit = None;
    if let Some((head, n)) = rest.rsplit_once(" LIMIT ") {
        limit = Some(
            n.trim()
                .parse::<usize>()
                .map_err(|_| format!("LIMIT {n} is not a number"))?,
        );
        rest = head.to_string();
    }
    let mut descending = false;
    if let Some((head, order)) = rest.split_once(" ORDER BY ") {
        descending = match order.trim() {
            "eventTime" | "eventTime ASC" => false,
            "eventTime DESC" => true,
            other => {
                return Err(format!(
                    "the emulator orders by eventTime only, not {other}"
                ));
            }
        };
        rest = head.to_string();
    }
    let (from, filters) = match rest.split_once(" WHERE ") {
        Some((from, conditions)) => (
            from.trim().to_string(),
            conditions
                .split(" AND ")
                .map(parse_filter)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => (rest.trim().to_string(), Vec::new()),
    };
    if from.is_empty() || from.contains(char::is_whitespace) {
        return Err(format!("FROM names one event data store, not {from}"));
    }
    Ok(Parsed {
        columns,
        from,
        filters,
        descending,
        limit,
    })
}

/// Milliseconds of `YYYY-MM-DD HH:MM:SS[.mmm]` or ISO 8601 (UTC).
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let millis = format!("{frac:0<3}").get(..3)?.parse::<i64>().ok()?;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) * 60_000 + s * 1000 + millis)
}

/// Lake's rendering of a time: `2026-12-01 15:04:23.000`.
fn lake_time(ms: i64) -> String {
    clock::iso8601_millis(ms)
        .trim_end_matches('Z')
        .replacen('T', " ", 1)
}

fn holds(filter: &Filter, record: &Value, time_ms: i64) -> bool {
    match filter {
        Filter::IsNull(f, null) => field(record, f).is_none() == *null,
        Filter::Compare(f, op, literal) => {
            let ordering = if f == "eventTime" {
                let Some(bound) = parse_time(literal) else {
                    return false;
                };
                time_ms.cmp(&bound)
            } else {
                let Some(value) = field(record, f) else {
                    return false;
                };
                text(value).as_str().cmp(literal.as_str())
            };
            match op.as_str() {
                "=" => ordering.is_eq(),
                "!=" | "<>" => ordering.is_ne(),
                ">=" => ordering.is_ge(),
                "<=" => ordering.is_le(),
                ">" => ordering.is_gt(),
                _ => ordering.is_lt(),
            }
        }
    }
}

/// The rows of a query, in CloudTrail Lake's shape: each row a list of single-entry
/// `{column: value}` maps, every value a string; a column without a value is left out.
fn execute(conn: &Connection, store_arn: &str, parsed: &Parsed) -> Result<Vec<Value>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT time_ms, record FROM cloudtrail_events WHERE store_arn = ?1 ORDER BY time_ms, seq",
    )?;
    let found = stmt.query_map([store_arn], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut rows = Vec::new();
    for row in found {
        let (time_ms, record) = row?;
        let Ok(record) = serde_json::from_str::<Value>(&record) else {
            continue;
        };
        if !parsed.filters.iter().all(|f| holds(f, &record, time_ms)) {
            continue;
        }
        let columns: Vec<Value> = parsed
            .columns
            .iter()
            .filter_map(|(column, name)| {
                let value = match column {
                    Column::Field(f) if f == "eventTime" => Some(lake_time(time_ms)),
                    Column::Field(f) => field(&record, f).map(text),
                    Column::RequestParameter(k) => record
                        .get("requestParameters")
                        .and_then(|p| p.get(k))
                        .filter(|v| !v.is_null())
                        .map(text),
                }?;
                Some(json!({ name: value }))
            })
            .collect();
        rows.push(Value::Array(columns));
    }
    if parsed.descending {
        rows.reverse();
    }
    if let Some(limit) = parsed.limit {
        rows.truncate(limit);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_query_parses_and_anything_else_is_refused() {
        let parsed = parse_query(
            "SELECT eventTime, userIdentity.arn AS principal, element_at(requestParameters, 'key') AS k FROM abc WHERE eventSource = 'dynamodb.amazonaws.com' AND eventTime >= '2026-12-01 15:00:00' AND errorCode IS NOT NULL ORDER BY eventTime ASC",
        )
        .expect("the audit's shape parses");
        assert_eq!(parsed.from, "abc");
        assert_eq!(
            parsed.columns[1],
            (Column::Field("userIdentity.arn".into()), "principal".into())
        );
        assert_eq!(
            parsed.columns[2],
            (Column::RequestParameter("key".into()), "k".into())
        );
        assert_eq!(parsed.filters.len(), 3);
        assert!(parse_query("DELETE FROM abc").is_err());
        assert!(parse_query("SELECT eventTime FROM abc WHERE sourceIPAddress = '1'").is_err());
        assert!(parse_query("SELECT count(*) FROM abc").is_err());
    }

    #[test]
    fn selectors_match_by_every_field() {
        let record = json!({"eventCategory": "Data", "resources": [{"type": "AWS::DynamoDB::Table", "ARN": "arn:t/a"}]});
        let selector = |arns: &[&str]| {
            json!({"FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.ARN", "Equals": arns},
            ]})
        };
        assert!(selector_matches(&selector(&["arn:t/a"]), &record));
        assert!(!selector_matches(&selector(&["arn:t/b"]), &record));
    }
}
