//! DynamoDB's JSON 1.0 protocol (`POST /` with `X-Amz-Target: DynamoDB_20120810.<Operation>`):
//! tables (create, update, describe, delete, list, tags, time to live, secondary indexes) and
//! items (put, get, update, delete with conditions; Query and Scan with filters and
//! projections; batch and transactional reads and writes), persisted in the emulator's SQLite
//! store.
//!
//! This file dispatches operations and holds the in-memory table states; `tables.rs` and
//! `items.rs` answer the operations, `value.rs` handles attribute values and keys, `expr.rs`
//! is the one expression grammar (key conditions, conditions, filters, updates, projections),
//! and `error.rs` shapes DynamoDB's errors.
//!
//! Represent keeps each state's data in one partition of a table, and its functions Query that
//! partition on their cold path; the deployer creates the table and seeds it with BatchWriteItem.
//! Items are kept as the DynamoDB JSON the client sent, so whatever a client writes reads back
//! unchanged.

mod access;
mod error;
mod expr;
mod items;
mod tables;
mod value;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rusqlite::Connection;
use serde::de::DeserializeOwned;

use crate::server::AppState;
use crate::store::StoreError;

pub use access::authorize;
pub use error::DynamoError;

/// A Query page ends once it holds this many bytes of items, as DynamoDB's does.
const PAGE_BYTES: i64 = 1024 * 1024;
/// BatchWriteItem's limit on write requests per call.
const MAX_BATCH_WRITES: usize = 25;
/// ListTables' default and largest page.
const MAX_LIST_TABLES: usize = 100;

/// The emulator's in-memory DynamoDB state; tables and items themselves live in the store.
#[derive(Debug, Default)]
pub struct DynamoDb {
    /// Tables of this run that are still `CREATING` or `UPDATING`, with when they settle to
    /// `ACTIVE`. A table that was settling when the emulator stopped comes back `ACTIVE`.
    settling: Mutex<HashMap<String, (Settling, Instant)>>,
    /// BatchWriteItem calls so far, for `Config::dynamodb_unprocessed_every`.
    batch_writes: AtomicU64,
}

/// Why a table is not yet `ACTIVE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settling {
    Creating,
    Updating,
}

impl DynamoDb {
    fn settling(&self, name: &str) -> Option<Settling> {
        let mut settling = self.settling.lock().unwrap_or_else(|e| e.into_inner());
        match settling.get(name) {
            Some((why, deadline)) if *deadline > Instant::now() => Some(*why),
            Some(_) => {
                settling.remove(name);
                None
            }
            None => None,
        }
    }

    /// Marks a table `CREATING` or `UPDATING` for the configured pending delay; returns the
    /// status to report.
    fn start_settling(&self, name: &str, why: Settling, delay: Duration) -> &'static str {
        if delay.is_zero() {
            return "ACTIVE";
        }
        self.settling
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (why, Instant::now() + delay));
        status_text(Some(why))
    }

    fn status(&self, name: &str) -> &'static str {
        status_text(self.settling(name))
    }
}

fn status_text(settling: Option<Settling>) -> &'static str {
    match settling {
        None => "ACTIVE",
        Some(Settling::Creating) => "CREATING",
        Some(Settling::Updating) => "UPDATING",
    }
}

/// Answers one DynamoDB operation.
pub async fn handle(app: Arc<AppState>, operation: &str, body: &[u8]) -> Response {
    let result = match operation {
        "CreateTable" => tables::create_table(&app, body).await,
        "UpdateTable" => tables::update_table(&app, body).await,
        "DescribeTable" => tables::describe_table(&app, body).await,
        "DeleteTable" => tables::delete_table(&app, body).await,
        "ListTables" => tables::list_tables(&app, body).await,
        "TagResource" => tables::tag_resource(&app, body).await,
        "UntagResource" => tables::untag_resource(&app, body).await,
        "ListTagsOfResource" => tables::list_tags(&app, body).await,
        "PutItem" => items::put_item(&app, body).await,
        "GetItem" => items::get_item(&app, body).await,
        "DeleteItem" => items::delete_item(&app, body).await,
        "UpdateItem" => items::update_item(&app, body).await,
        "Query" => items::query(&app, body).await,
        "Scan" => items::scan(&app, body).await,
        "BatchWriteItem" => items::batch_write_item(&app, body).await,
        "BatchGetItem" => items::batch_get_item(&app, body).await,
        "TransactWriteItems" => items::transact_write_items(&app, body).await,
        "TransactGetItems" => items::transact_get_items(&app, body).await,
        "UpdateTimeToLive" => tables::update_time_to_live(&app, body).await,
        "DescribeTimeToLive" => tables::describe_time_to_live(&app, body).await,
        other => Err(DynamoError::unknown_operation(other)),
    };
    match result {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(error) => error.into_response(),
    }
}

/// A DynamoDB response: its JSON protocol's content type and a request id.
fn json_response(status: StatusCode, body: String) -> Response {
    crate::aws_json::response("application/x-amz-json-1.0", status, body)
}

fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, DynamoError> {
    crate::aws_json::parse(body).map_err(DynamoError::serialization)
}

/// Runs `f` on the store's connection; `f` may fail with a DynamoDB error of its own.
async fn with_store<T, F>(app: &AppState, f: F) -> Result<T, DynamoError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<Result<T, DynamoError>, StoreError> + Send + 'static,
{
    app.store.call(f).await?
}

/// Checks a `TableName` against DynamoDB's constraints: 3 to 255 characters of
/// `[a-zA-Z0-9_.-]`.
fn table_name(name: Option<String>) -> Result<String, DynamoError> {
    let Some(name) = name else {
        return Err(DynamoError::validation(
            "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null",
        ));
    };
    let constraint = if name.chars().count() < 3 {
        "Member must have length greater than or equal to 3"
    } else if name.chars().count() > 255 {
        "Member must have length less than or equal to 255"
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    } else {
        return Ok(name);
    };
    Err(DynamoError::constraint(&name, "tableName", constraint))
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, DynamoError> {
    value.ok_or_else(|| {
        DynamoError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}
