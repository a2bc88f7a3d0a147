//! Reading the seeded partitions of a table in bulk, for a deploy's plan: one parallel,
//! consistent Scan of [`SCAN_SEGMENTS`] segments reads the whole table in a handful of requests
//! instead of one Query per tenant. Every item of every seeded partition is read, so drift is
//! seen exactly as with the queries; items of tenants the seed does not name are dropped as they
//! arrive, never planned. [`crate::observe::observe_stage`] decides which way a table is read.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, TryStreamExt};

use crate::clients::Clients;
use crate::error::DeployError;
use crate::names::{DATA_ATTRIBUTE, PARTITION_KEY, SORT_KEY};
use crate::seed::ActualPartition;
use crate::step::call_error;

/// From this many seeded tenants in one table, a deploy reads the table with one parallel Scan
/// instead of a Query per tenant: past it, the requests (each a round trip) cost more than
/// reading the items of tenants the seed does not name.
pub const SCAN_FROM: usize = 64;

/// The segments of that Scan, read at once.
pub const SCAN_SEGMENTS: i32 = 8;

/// The partitions of `tenants` in `table`, in the order given, from one Scan of the table.
pub(crate) async fn scan(
    clients: &Clients,
    table: &str,
    tenants: &[String],
) -> Result<Vec<ActualPartition>, DeployError> {
    let mut partitions: BTreeMap<&str, BTreeMap<String, Option<String>>> = tenants
        .iter()
        .map(|t| (t.as_str(), BTreeMap::new()))
        .collect();
    let segments: Vec<Vec<_>> = futures::stream::iter(0..SCAN_SEGMENTS)
        .map(|segment| scan_segment(clients, table, segment))
        .buffer_unordered(SCAN_SEGMENTS as usize)
        .try_collect()
        .await?;
    for item in segments.iter().flatten() {
        let string = |key: &str| item.get(key).and_then(|v| v.as_s().ok());
        let (Some(tenant), Some(record)) = (string(PARTITION_KEY), string(SORT_KEY)) else {
            continue;
        };
        if let Some(records) = partitions.get_mut(tenant.as_str()) {
            records.insert(record.clone(), string(DATA_ATTRIBUTE).cloned());
        }
    }
    Ok(tenants
        .iter()
        .map(|tenant| ActualPartition {
            table: table.to_string(),
            tenant: tenant.clone(),
            records: partitions.remove(tenant.as_str()).unwrap_or_default(),
        })
        .collect())
}

/// Every item of one segment of `table`, every page, only the attributes the plan compares.
async fn scan_segment(
    clients: &Clients,
    table: &str,
    segment: i32,
) -> Result<Vec<HashMap<String, AttributeValue>>, DeployError> {
    clients
        .dynamodb
        .scan()
        .table_name(table)
        .segment(segment)
        .total_segments(SCAN_SEGMENTS)
        .consistent_read(true)
        // `data` is a reserved word in DynamoDB's expressions.
        .projection_expression("#tenant, #record, #data")
        .expression_attribute_names("#tenant", PARTITION_KEY)
        .expression_attribute_names("#record", SORT_KEY)
        .expression_attribute_names("#data", DATA_ATTRIBUTE)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| {
            call_error(
                "Scan",
                &format!("the seeded tenants in {table} (segment {segment})"),
                e,
            )
        })
}
