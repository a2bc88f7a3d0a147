//! Who may make a DynamoDB call: the caller's session is evaluated against its role's policies
//! for each action and table the call touches, with the partition keys it reads or writes as
//! `dynamodb:LeadingKeys`; the data calls of sessions are recorded in the audit.
//!
//! Calls with the developer's keys are not evaluated. A request the emulator cannot read is
//! left to the operation itself, which refuses it with DynamoDB's validation error.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rusqlite::Connection;
use serde_json::Value;

use super::error::DynamoError;
use super::expr::{self, Placeholders};
use super::tables::load_table;
use crate::audit::{self, AuditEvent};
use crate::clock;
use crate::policy::Decision;
use crate::server::AppState;
use crate::store::StoreError;
use crate::sts::{self, Permissions, Principal, Session};

/// One action on one table (or index) that a call needs, with the partition keys it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Access {
    action: &'static str,
    table: String,
    index: Option<String>,
    /// The partition key values the call reads or writes; `None` when the call names none
    /// (Scan, and the control plane), so the condition key is absent.
    keys: Option<Vec<String>>,
    /// Item reads and writes are audited; table operations are only evaluated.
    data: bool,
}

/// Refuses a DynamoDB call its caller's session may not make (400 `AccessDeniedException`, or
/// `ExpiredTokenException`); `None` lets the operation run.
pub async fn authorize(
    app: &Arc<AppState>,
    headers: &HeaderMap,
    operation: &str,
    body: &[u8],
) -> Option<Response> {
    let session = match app.sessions.principal(headers).await {
        Ok(Principal::Admin) => return None,
        Ok(Principal::Session(session)) => session,
        Err(error) => return Some(DynamoError::from(error).into_response()),
    };
    if session.expires_ms <= clock::now_millis() {
        return Some(DynamoError::expired_token().into_response());
    }
    let request: Value = serde_json::from_slice(body).ok()?;
    let operation = operation.to_string();
    let region = app.config.region.clone();
    let outcome = app
        .store
        .call(move |conn| decide(conn, &session, &operation, &request, &region))
        .await;
    match outcome {
        Ok(None) => None,
        Ok(Some(message)) => Some(DynamoError::access_denied(message).into_response()),
        Err(error) => Some(DynamoError::from(error).into_response()),
    }
}

/// Evaluates every access of the call, records the data accesses, and returns the refusal of
/// the first one denied.
fn decide(
    conn: &mut Connection,
    session: &Session,
    operation: &str,
    request: &Value,
    region: &str,
) -> Result<Option<String>, StoreError> {
    let Some(accesses) = accesses(conn, operation, request)? else {
        return Ok(None);
    };
    let permissions = Permissions::load(conn, session)?;
    let principal = session.arn();
    let tenant = session.tag("tenant").map(str::to_string);
    let mut refusal = None;
    let mut events = Vec::new();
    for access in accesses {
        let mut resource = format!(
            "arn:aws:dynamodb:{region}:{}:table/{}",
            session.account, access.table
        );
        if let Some(index) = &access.index {
            resource.push_str("/index/");
            resource.push_str(index);
        }
        let mut ctx = session.context();
        if let Some(keys) = &access.keys {
            ctx.set("dynamodb:LeadingKeys", keys.clone());
        }
        let action = format!("dynamodb:{}", access.action);
        let (decision, why) = permissions.decide(&action, &resource, &ctx);
        let reason = (decision != Decision::Allow)
            .then(|| sts::denial_message(&principal, &action, &resource, why));
        if access.data {
            events.push(AuditEvent {
                time_ms: clock::now_millis(),
                principal: principal.clone(),
                role_arn: session.role_arn.clone(),
                tenant: tenant.clone(),
                action: action.clone(),
                table: access.table.clone(),
                partition_keys: access.keys.clone().unwrap_or_default(),
                allowed: decision == Decision::Allow,
                reason: reason.clone(),
            });
        }
        if refusal.is_none() {
            refusal = reason;
        }
    }
    audit::record(conn, &events)?;
    let key_names = |table: &str| -> Vec<String> {
        load_table(conn, table)
            .ok()
            .flatten()
            .map(|t| {
                let schema = &t.definition.key_schema;
                std::iter::once(schema.hash.name.clone())
                    .chain(schema.range.as_ref().map(|r| r.name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let keys: HashMap<String, Vec<String>> = events
        .iter()
        .map(|e| (e.table.clone(), key_names(&e.table)))
        .collect();
    crate::cloudtrail::record(
        conn,
        &events,
        session,
        operation,
        request,
        region,
        &|table| keys.get(table).cloned().unwrap_or_default(),
    )?;
    Ok(refusal)
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The partition key's value in an item or key, as the condition key sees it: a string, or a
/// number's text.
fn partition_value(item: Option<&Value>, attribute: &str) -> Option<String> {
    let value = item?.get(attribute)?;
    value
        .get("S")
        .or_else(|| value.get("N"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Reads what a call touches. `None` when the request is not readable enough to tell, which
/// the operation then refuses.
fn accesses(
    conn: &Connection,
    operation: &str,
    request: &Value,
) -> Result<Option<Vec<Access>>, StoreError> {
    let mut schemas: HashMap<String, Option<String>> = HashMap::new();
    let mut hash_key = |table: &str| -> Result<Option<String>, StoreError> {
        if let Some(known) = schemas.get(table) {
            return Ok(known.clone());
        }
        let name = load_table(conn, table)?.map(|t| t.definition.key_schema.hash.name.clone());
        schemas.insert(table.to_string(), name.clone());
        Ok(name)
    };
    let data = |action: &'static str, table: String, keys: Option<Vec<String>>| Access {
        action,
        table,
        index: None,
        keys,
        data: true,
    };
    let single = |action: &'static str,
                  member: &str,
                  hash_key: &mut dyn FnMut(&str) -> Result<Option<String>, StoreError>,
                  request: &Value|
     -> Result<Option<Access>, StoreError> {
        let Some(table) = text(request, "TableName") else {
            return Ok(None);
        };
        let keys = match hash_key(&table)? {
            Some(attribute) => partition_value(request.get(member), &attribute).map(|k| vec![k]),
            None => Some(Vec::new()),
        };
        Ok(keys.map(|keys| data(action, table, Some(keys))))
    };
    let found = match operation {
        "GetItem" => single("GetItem", "Key", &mut hash_key, request)?.map(|a| vec![a]),
        "DeleteItem" => single("DeleteItem", "Key", &mut hash_key, request)?.map(|a| vec![a]),
        "UpdateItem" => single("UpdateItem", "Key", &mut hash_key, request)?.map(|a| vec![a]),
        "PutItem" => single("PutItem", "Item", &mut hash_key, request)?.map(|a| vec![a]),
        "Query" => query(conn, request)?.map(|a| vec![a]),
        "Scan" => text(request, "TableName").map(|table| {
            vec![Access {
                index: text(request, "IndexName"),
                ..data("Scan", table, None)
            }]
        }),
        "BatchGetItem" | "BatchWriteItem" => {
            let Some(Value::Object(tables)) = request.get("RequestItems") else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for (table, entry) in tables {
                let attribute = hash_key(table)?;
                let items: Vec<Option<&Value>> = if operation == "BatchGetItem" {
                    entry
                        .get("Keys")
                        .and_then(Value::as_array)
                        .map(|keys| keys.iter().map(Some).collect())
                        .unwrap_or_default()
                } else {
                    entry
                        .as_array()
                        .map(|writes| {
                            writes
                                .iter()
                                .map(|w| {
                                    w.pointer("/PutRequest/Item")
                                        .or_else(|| w.pointer("/DeleteRequest/Key"))
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let mut keys = Vec::new();
                if let Some(attribute) = &attribute {
                    for item in items {
                        let Some(key) = partition_value(item, attribute) else {
                            return Ok(None);
                        };
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                    }
                }
                let action = if operation == "BatchGetItem" {
                    "BatchGetItem"
                } else {
                    "BatchWriteItem"
                };
                out.push(data(action, table.clone(), Some(keys)));
            }
            Some(out)
        }
        "TransactGetItems" | "TransactWriteItems" => {
            let Some(items) = request.get("TransactItems").and_then(Value::as_array) else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for item in items {
                let (action, member, inner) = if let Some(inner) = item.get("Get") {
                    ("GetItem", "Key", inner)
                } else if let Some(inner) = item.get("Put") {
                    ("PutItem", "Item", inner)
                } else if let Some(inner) = item.get("Update") {
                    ("UpdateItem", "Key", inner)
                } else if let Some(inner) = item.get("Delete") {
                    ("DeleteItem", "Key", inner)
                } else if let Some(inner) = item.get("ConditionCheck") {
                    ("ConditionCheckItem", "Key", inner)
                } else {
                    return Ok(None);
                };
                match single(action, member, &mut hash_key, inner)? {
                    Some(access) => out.push(access),
                    None => return Ok(None),
                }
            }
            Some(out)
        }
        other => {
            // The control plane: evaluated on the table (ListTables on `*`), never audited.
            let action = control_action(other);
            let table = text(request, "TableName").or_else(|| {
                text(request, "ResourceArn")
                    .and_then(|arn| arn.rsplit_once(":table/").map(|(_, t)| t.to_string()))
            });
            match (action, table) {
                (Some(action), Some(table)) => Some(vec![Access {
                    action,
                    table,
                    index: None,
                    keys: None,
                    data: false,
                }]),
                _ => None,
            }
        }
    };
    Ok(found)
}

fn control_action(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "CreateTable" => "CreateTable",
        "UpdateTable" => "UpdateTable",
        "DescribeTable" => "DescribeTable",
        "DeleteTable" => "DeleteTable",
        "TagResource" => "TagResource",
        "UntagResource" => "UntagResource",
        "ListTagsOfResource" => "ListTagsOfResource",
        "UpdateTimeToLive" => "UpdateTimeToLive",
        "DescribeTimeToLive" => "DescribeTimeToLive",
        _ => return None,
    })
}

/// A Query's partition key: the equality of its key condition on the table's (or index's)
/// partition key.
fn query(conn: &Connection, request: &Value) -> Result<Option<Access>, StoreError> {
    let Some(table_name) = text(request, "TableName") else {
        return Ok(None);
    };
    let index_name = text(request, "IndexName");
    let access = |keys| Access {
        action: "Query",
        table: table_name.clone(),
        index: index_name.clone(),
        keys: Some(keys),
        data: true,
    };
    let Some(table) = load_table(conn, &table_name)? else {
        return Ok(Some(access(Vec::new())));
    };
    let schema = match &index_name {
        None => &table.definition.key_schema,
        Some(name) => match table.definition.index(name) {
            Some(index) => &index.key_schema,
            None => return Ok(None),
        },
    };
    let Some(expression) = text(request, "KeyConditionExpression") else {
        return Ok(None);
    };
    let names: HashMap<String, String> = request
        .get("ExpressionAttributeNames")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let values: HashMap<String, Value> = request
        .get("ExpressionAttributeValues")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let mut placeholders = Placeholders::new(names, values);
    Ok(expr::key_condition(&expression, &mut placeholders, schema)
        .ok()
        .map(|condition| access(vec![condition.pk])))
}
