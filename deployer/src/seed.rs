//! Tenant data seeded into the stack's tables: the seed a caller hands in, its validation, the
//! partitions observed in DynamoDB, the pure per-tenant diff the planner makes, and the batched
//! writes apply sends.
//!
//! One tenant's data is one partition (`tenant = TX`); an item is `{tenant, record, data}`, all
//! strings, `data` being a JSON document. Only the partitions of tenants named in the seed are
//! ever read or written. A tenant that disappears from the registry keeps its partition: the
//! deployer cannot tell "removed" from "never managed here" without scanning the whole table, and
//! silently deleting a state's data because a file went missing is a surprise nobody wants. To
//! empty a tenant on purpose, seed it with no records: every record it has is then removed.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use serde::Serialize;

use crate::change::{Action, Planned, ResourceKind};
use crate::clients::Clients;
use crate::error::{DeployError, StackError, render};
use crate::names::{self, DATA_ATTRIBUTE, PARTITION_KEY, SORT_KEY};
use crate::step::{Ctx, build_error, call_error};
use crate::table::{Table, TableOp};
use crate::tenant::validate_tenant_id;

/// DynamoDB's limit on a sort key value, in bytes.
pub const MAX_RECORD_KEY: usize = 1024;
/// DynamoDB's limit on an item is 400 KB, key attributes and names included; this leaves room
/// for them.
pub const MAX_DATA: usize = 400 * 1024 - 2048;

/// Records per tenant: record (sort key) -> data (a JSON document).
pub type Records = BTreeMap<String, String>;

/// Seed data for one table, as the caller (the tenant registry) provides it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Seed {
    /// The table's logical name in the stack.
    pub table: String,
    /// Tenant id -> its records.
    pub partitions: BTreeMap<String, Records>,
}

impl Seed {
    pub fn new(table: &str) -> Self {
        Seed {
            table: table.to_string(),
            partitions: BTreeMap::new(),
        }
    }

    /// Adds one record to a tenant's partition.
    pub fn record(mut self, tenant: &str, record: &str, data: &str) -> Self {
        self.partitions
            .entry(tenant.to_string())
            .or_default()
            .insert(record.to_string(), data.to_string());
        self
    }

    /// Declares a tenant whose partition must end up empty.
    pub fn empty_tenant(mut self, tenant: &str) -> Self {
        self.partitions.entry(tenant.to_string()).or_default();
        self
    }
}

/// The seed of one table, resolved against a stage. The data itself is not serialized: plans
/// and states are printed and logged, tenant data is not theirs to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredSeed {
    /// The table's logical name.
    pub table: String,
    /// The table's physical name.
    pub name: String,
    #[serde(skip)]
    pub partitions: BTreeMap<String, Records>,
}

/// One tenant's partition as DynamoDB holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualPartition {
    /// The table's physical name.
    pub table: String,
    pub tenant: String,
    /// Record -> its `data` attribute; `None` when the item has no string `data`, which makes it
    /// differ from any desired record. Not serialized, like the desired data.
    #[serde(skip)]
    pub records: BTreeMap<String, Option<String>>,
}

/// The writes one tenant's partition needs. Only record keys, never their data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeedDiff {
    /// The table's physical name.
    pub table: String,
    pub tenant: String,
    pub add: Vec<String>,
    pub change: Vec<String>,
    pub remove: Vec<String>,
}

impl SeedDiff {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.change.is_empty() && self.remove.is_empty()
    }

    /// `3 to add, 1 to change, 0 to remove`
    pub fn counts(&self) -> String {
        format!(
            "{} to add, {} to change, {} to remove",
            self.add.len(),
            self.change.len(),
            self.remove.len()
        )
    }
}

/// Compares a tenant's desired records with its partition. `None` means the partition is known
/// to be empty (a table created or replaced by this plan).
pub fn diff_partition(
    table: &str,
    tenant: &str,
    desired: &Records,
    actual: Option<&BTreeMap<String, Option<String>>>,
) -> SeedDiff {
    let empty = BTreeMap::new();
    let actual = actual.unwrap_or(&empty);
    let mut diff = SeedDiff {
        table: table.to_string(),
        tenant: tenant.to_string(),
        ..SeedDiff::default()
    };
    for (record, data) in desired {
        match actual.get(record) {
            None => diff.add.push(record.clone()),
            Some(have) if have.as_deref() != Some(data.as_str()) => {
                diff.change.push(record.clone())
            }
            Some(_) => {}
        }
    }
    diff.remove = actual
        .keys()
        .filter(|record| !desired.contains_key(*record))
        .cloned()
        .collect();
    diff
}

/// Checks seeds against the stack and resolves them for a stage, reporting every problem.
pub(crate) fn resolve_seeds(
    app: &str,
    stage: &str,
    tables: &[Table],
    seeds: Vec<Seed>,
) -> Result<Vec<DesiredSeed>, Vec<StackError>> {
    let mut errors = Vec::new();
    let mut by_table: BTreeMap<String, DesiredSeed> = BTreeMap::new();
    for seed in seeds {
        let Some(declared) = tables.iter().find(|t| t.logical == seed.table) else {
            errors.push(StackError::UnknownSeedTable {
                table: seed.table.clone(),
                declared: tables.iter().map(|t| t.logical.clone()).collect(),
            });
            continue;
        };
        if declared.key_schema != crate::table::KeySchema::tenant_record() {
            errors.push(StackError::SeedTableKey {
                table: seed.table.clone(),
                key: declared.key_schema.to_string(),
            });
            continue;
        }
        let entry = by_table
            .entry(seed.table.clone())
            .or_insert_with(|| DesiredSeed {
                table: seed.table.clone(),
                name: names::table_name(app, stage, &seed.table),
                partitions: BTreeMap::new(),
            });
        for (tenant, records) in seed.partitions {
            check_partition(&seed.table, &tenant, &records, &mut errors);
            if entry.partitions.contains_key(&tenant) {
                errors.push(StackError::DuplicateSeedTenant {
                    table: seed.table.clone(),
                    tenant,
                });
                continue;
            }
            entry.partitions.insert(tenant, records);
        }
    }
    if errors.is_empty() {
        Ok(by_table.into_values().collect())
    } else {
        Err(errors)
    }
}

fn check_partition(table: &str, tenant: &str, records: &Records, errors: &mut Vec<StackError>) {
    if let Err(source) = validate_tenant_id(tenant) {
        errors.push(StackError::SeedTenant {
            table: table.to_string(),
            source,
        });
    }
    for (record, data) in records {
        let problem = |reason: &str| StackError::SeedRecord {
            table: table.to_string(),
            tenant: tenant.to_string(),
            record: record.clone(),
            reason: reason.to_string(),
        };
        if record.is_empty() {
            errors.push(problem("is empty; DynamoDB refuses empty key values"));
        } else if record.len() > MAX_RECORD_KEY {
            errors.push(problem(&format!(
                "is {} bytes; DynamoDB allows {MAX_RECORD_KEY} bytes in a sort key",
                record.len()
            )));
        }
        let data_problem = |reason: String| StackError::SeedData {
            table: table.to_string(),
            tenant: tenant.to_string(),
            record: record.clone(),
            reason,
        };
        if let Err(e) = serde_json::from_str::<serde_json::Value>(data) {
            errors.push(data_problem(format!("is not a JSON document ({e})")));
        } else if data.len() > MAX_DATA {
            errors.push(data_problem(format!(
                "is {} bytes; a DynamoDB item holds at most {MAX_DATA} bytes of data",
                data.len()
            )));
        }
    }
}

/// The tenants the seeds name, across tables, sorted.
pub fn seeded_tenants(seeds: &[DesiredSeed]) -> Vec<String> {
    let set: BTreeSet<&String> = seeds.iter().flat_map(|s| s.partitions.keys()).collect();
    set.into_iter().cloned().collect()
}

/// What apply sends for one tenant's partition: the record keys to write (shown in plans) and
/// the records to put, data included (never shown: tenant data is not a plan's to print).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedOp {
    pub diff: SeedDiff,
    /// Record -> data of every record added or changed.
    #[serde(skip)]
    pub put: Records,
}

fn seed_change(logical: &str, diff: SeedDiff, records: &Records) -> Planned<SeedOp> {
    let (action, reason) = if diff.is_empty() {
        let n = records.len();
        let plural = if n == 1 { "" } else { "s" };
        (Action::NoOp, format!("up to date, {n} record{plural}"))
    } else {
        (Action::Update, diff.counts())
    };
    let put = diff
        .add
        .iter()
        .chain(&diff.change)
        .filter_map(|r| Some((r.clone(), records.get(r)?.clone())))
        .collect();
    Planned::new(
        ResourceKind::Seed,
        format!("tenant {} in {}", diff.tenant, diff.table),
        &diff.table.clone(),
        Some(logical),
        action,
        reason,
        SeedOp { diff, put },
    )
}

/// The tables a plan leaves empty (created or replaced) have empty partitions, whatever was
/// observed.
pub fn fresh_tables(tables: &[Planned<TableOp>]) -> BTreeSet<String> {
    tables
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Replace))
        .map(|c| c.name.clone())
        .collect()
}

/// One change per seeded tenant (of `only_tenant` if given), tables in stack order, tenants
/// sorted. Partitions of tables in `fresh` are empty whatever was observed.
pub fn plan(
    seeds: &[DesiredSeed],
    actual: &[ActualPartition],
    fresh: &BTreeSet<String>,
    only_tenant: Option<&str>,
) -> Vec<Planned<SeedOp>> {
    let mut changes = Vec::new();
    for seed in seeds {
        for (tenant, records) in &seed.partitions {
            if only_tenant.is_some_and(|only| only != tenant) {
                continue;
            }
            let observed = if fresh.contains(&seed.name) {
                None
            } else {
                actual
                    .iter()
                    .find(|p| p.table == seed.name && p.tenant == *tenant)
                    .map(|p| &p.records)
            };
            let diff = diff_partition(&seed.name, tenant, records, observed);
            changes.push(seed_change(&seed.table, diff, records));
        }
    }
    changes
}

/// Reads one tenant's partition, every page of it. Consistent reads, so a plan made right after
/// a seed sees the seed's writes.
pub(crate) async fn read_partition(
    clients: &Clients,
    table: &str,
    tenant: &str,
) -> Result<ActualPartition, DeployError> {
    let resource = format!("tenant {tenant} in {table}");
    let items = clients
        .dynamodb
        .query()
        .table_name(table)
        .key_condition_expression("#tenant = :tenant")
        .expression_attribute_names("#tenant", PARTITION_KEY)
        .expression_attribute_values(":tenant", AttributeValue::S(tenant.to_string()))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("Query", &resource, e))?;
    let records = items
        .iter()
        .filter_map(|item| {
            let record = item.get(SORT_KEY).and_then(|v| v.as_s().ok())?;
            let data = item
                .get(DATA_ATTRIBUTE)
                .and_then(|v| v.as_s().ok())
                .cloned();
            Some((record.clone(), data))
        })
        .collect();
    Ok(ActualPartition {
        table: table.to_string(),
        tenant: tenant.to_string(),
        records,
    })
}

/// BatchWriteItem takes at most 25 writes per call.
pub const MAX_BATCH_WRITE: usize = 25;

/// Writes one tenant's partition: puts for added and changed records, deletes for removed
/// ones, in batches of [`MAX_BATCH_WRITE`].
pub(crate) async fn apply(ctx: &Ctx<'_>, c: &Planned<SeedOp>) -> Result<(), DeployError> {
    let diff = &c.op.diff;
    let key = |record: &str| {
        [
            (
                PARTITION_KEY.to_string(),
                AttributeValue::S(diff.tenant.clone()),
            ),
            (SORT_KEY.to_string(), AttributeValue::S(record.to_string())),
        ]
    };
    let mut writes = Vec::new();
    for (record, data) in &c.op.put {
        let mut put = PutRequest::builder();
        for (k, v) in key(record) {
            put = put.item(k, v);
        }
        let put = put
            .item(DATA_ATTRIBUTE, AttributeValue::S(data.clone()))
            .build()
            .map_err(|e| build_error("BatchWriteItem", &c.resource, e))?;
        writes.push(WriteRequest::builder().put_request(put).build());
    }
    for record in &diff.remove {
        let mut delete = DeleteRequest::builder();
        for (k, v) in key(record) {
            delete = delete.key(k, v);
        }
        let delete = delete
            .build()
            .map_err(|e| build_error("BatchWriteItem", &c.resource, e))?;
        writes.push(WriteRequest::builder().delete_request(delete).build());
    }
    ctx.say(&format!("seeding {} ({})", c.resource, c.reason));
    for chunk in writes.chunks(MAX_BATCH_WRITE) {
        write_batch(ctx, &diff.table, &c.resource, chunk.to_vec()).await?;
    }
    Ok(())
}

/// Sends one batch, then resends whatever DynamoDB leaves in `UnprocessedItems` (it does so
/// under load instead of failing), backing off between attempts up to `max_attempts`.
async fn write_batch(
    ctx: &Ctx<'_>,
    table: &str,
    resource: &str,
    mut pending: Vec<WriteRequest>,
) -> Result<(), DeployError> {
    let max = ctx.opts.max_attempts.max(1);
    let mut delay = ctx.opts.base_delay;
    let mut attempt = 1;
    let started = std::time::Instant::now();
    loop {
        let result = ctx
            .clients
            .dynamodb
            .batch_write_item()
            .request_items(table, pending.clone())
            .send()
            .await;
        let last_error = match result {
            Ok(out) => {
                let left = out
                    .unprocessed_items()
                    .and_then(|m| m.get(table))
                    .cloned()
                    .unwrap_or_default();
                if left.is_empty() {
                    return Ok(());
                }
                let message = format!("{} writes were left unprocessed", left.len());
                pending = left;
                message
            }
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_provisioned_throughput_exceeded_exception()
                        || s.is_request_limit_exceeded()
                        || s.is_throttling_exception()
                }) =>
            {
                render(&e)
            }
            Err(e) => {
                return Err(call_error("BatchWriteItem", resource, e));
            }
        };
        if attempt >= max {
            return Err(DeployError::RetriesExhausted {
                call: "BatchWriteItem",
                resource: resource.to_string(),
                attempts: attempt,
                elapsed: started.elapsed(),
                last_error,
                source: None,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(ctx.opts.max_delay.max(ctx.opts.base_delay));
        attempt += 1;
    }
}
