//! The audit of data calls: every DynamoDB item read or write made with a role session's
//! credentials (time, principal, its `tenant` tag, action, table, partition keys, allowed or
//! denied) is kept in the store, and `GET /_emulator/audit` lists them.
//!
//! Query parameters: `tenant` (events whose caller is tagged with it or that touch its
//! partition), `since_ms` (epoch milliseconds), `denied=true`, and `limit` (newest first, at
//! most 10,000; 1,000 by default). Calls with the developer's keys are not audited.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::clock;
use crate::server::AppState;
use crate::store::StoreError;

/// One audited data call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub time_ms: i64,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub principal: String,
    pub role_arn: String,
    /// The session's `tenant` tag, if it has one.
    pub tenant: Option<String>,
    /// `dynamodb:Query`, ...
    pub action: String,
    pub table: String,
    pub partition_keys: Vec<String>,
    pub allowed: bool,
    /// IAM's refusal sentence, for a denied call.
    pub reason: Option<String>,
}

pub fn record(conn: &mut Connection, events: &[AuditEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO audit_events (time_ms, principal, role_arn, tenant, action, table_name,
                                       partition_keys, allowed, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for event in events {
            let keys = serde_json::to_string(&event.partition_keys).map_err(|source| {
                StoreError::Encode {
                    what: "audit event",
                    name: event.principal.clone(),
                    source,
                }
            })?;
            stmt.execute(params![
                event.time_ms,
                event.principal,
                event.role_arn,
                event.tenant,
                event.action,
                event.table,
                keys,
                event.allowed,
                event.reason,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tenant: Option<String>,
    pub since_ms: Option<i64>,
    pub denied_only: bool,
    pub limit: usize,
}

/// The matching events, oldest first (the newest `limit` of them).
pub fn events(conn: &Connection, filter: &Filter) -> Result<Vec<AuditEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT time_ms, principal, role_arn, tenant, action, table_name, partition_keys,
                allowed, reason
         FROM audit_events
         WHERE time_ms >= ?1 AND (?2 = 0 OR allowed = 0)
         ORDER BY seq DESC",
    )?;
    let rows = stmt.query_map(
        params![filter.since_ms.unwrap_or(0), filter.denied_only],
        |row| {
            Ok((
                AuditEvent {
                    time_ms: row.get(0)?,
                    principal: row.get(1)?,
                    role_arn: row.get(2)?,
                    tenant: row.get(3)?,
                    action: row.get(4)?,
                    table: row.get(5)?,
                    partition_keys: Vec::new(),
                    allowed: row.get(7)?,
                    reason: row.get(8)?,
                },
                row.get::<_, String>(6)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (mut event, keys) = row?;
        event.partition_keys =
            serde_json::from_str(&keys).map_err(|source| StoreError::Corrupt {
                what: "audit event",
                name: event.principal.clone(),
                source,
            })?;
        // Tenant ids are outside data, so the filter compares in Rust rather than build SQL
        // patterns from them.
        if let Some(tenant) = &filter.tenant
            && event.tenant.as_deref() != Some(tenant.as_str())
            && !event.partition_keys.contains(tenant)
        {
            continue;
        }
        out.push(event);
        if out.len() == filter.limit {
            break;
        }
    }
    out.reverse();
    Ok(out)
}

/// `GET /_emulator/audit`.
pub async fn handle(
    State(app): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let bad = |message: String| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "message": message }).to_string(),
        )
            .into_response()
    };
    let since_ms = match query.get("since_ms").map(|s| s.parse::<i64>()) {
        None => None,
        Some(Ok(ms)) => Some(ms),
        Some(Err(_)) => return bad("since_ms must be epoch milliseconds".into()),
    };
    let limit = match query.get("limit").map(|s| s.parse::<usize>()) {
        None => 1000,
        Some(Ok(n)) if (1..=10_000).contains(&n) => n,
        Some(_) => return bad("limit must be between 1 and 10000".into()),
    };
    let filter = Filter {
        tenant: query.get("tenant").cloned(),
        since_ms,
        denied_only: query.get("denied").is_some_and(|v| v == "true"),
        limit,
    };
    match app.store.call(move |conn| events(conn, &filter)).await {
        Ok(events) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "now": clock::now_millis(), "events": events }).to_string(),
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "message": error.to_string() }).to_string(),
        )
            .into_response(),
    }
}
