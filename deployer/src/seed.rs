//! Tenant data seeded into the stack's tables: the seed a caller hands in, its validation, the
//! partitions observed in DynamoDB, and the pure per-tenant diff the planner makes.
//!
//! One tenant's data is one partition (`tenant = TX`); an item is `{tenant, record, data}`, all
//! strings, `data` being a JSON document. Only the partitions of tenants named in the seed are
//! ever read or written. A tenant that disappears from the registry keeps its partition: the
//! deployer cannot tell "removed" from "never managed here" without scanning the whole table, and
//! silently deleting a state's data because a file went missing is a surprise nobody wants. To
//! empty a tenant on purpose, seed it with no records: every record it has is then removed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::StackError;
use crate::names;
use crate::stack::App;
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
    app: &App,
    stage: &str,
    seeds: Vec<Seed>,
) -> Result<Vec<DesiredSeed>, Vec<StackError>> {
    let mut errors = Vec::new();
    let mut by_table: BTreeMap<String, DesiredSeed> = BTreeMap::new();
    for seed in seeds {
        if app.find_table(&seed.table).is_none() {
            errors.push(StackError::UnknownSeedTable {
                table: seed.table.clone(),
                declared: app.tables.iter().map(|t| t.logical.clone()).collect(),
            });
            continue;
        }
        let entry = by_table
            .entry(seed.table.clone())
            .or_insert_with(|| DesiredSeed {
                table: seed.table.clone(),
                name: names::table_name(&app.name, stage, &seed.table),
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
