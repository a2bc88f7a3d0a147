//! DynamoDB tables: the stack's declaration, the desired and observed table, and the pure diff
//! the planner makes between them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::names::{PARTITION_KEY, SORT_KEY, TAG_APP, TAG_LOGICAL, TAG_STAGE};

/// The only billing mode the deployer creates tables with: a tenant's traffic is spiky and small,
/// and on-demand tables cost nothing while idle.
pub const PAY_PER_REQUEST: &str = "PAY_PER_REQUEST";

/// A DynamoDB table of the app, one per stage. Every table is keyed the same way: partition key
/// `tenant`, sort key `record`, so that one tenant's data is one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub logical: String,
}

impl Table {
    pub fn new(logical: &str) -> Self {
        Table {
            logical: logical.to_string(),
        }
    }
}

/// One key attribute: its name and DynamoDB scalar type (`S`, `N` or `B`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyAttribute {
    pub name: String,
    pub kind: String,
}

impl KeyAttribute {
    pub fn string(name: &str) -> Self {
        KeyAttribute {
            name: name.to_string(),
            kind: "S".to_string(),
        }
    }
}

/// A table's primary key. DynamoDB never changes it after creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySchema {
    pub partition: KeyAttribute,
    pub sort: Option<KeyAttribute>,
}

impl KeySchema {
    /// The key every deployer table has: `tenant` (S), `record` (S).
    pub fn tenant_record() -> Self {
        KeySchema {
            partition: KeyAttribute::string(PARTITION_KEY),
            sort: Some(KeyAttribute::string(SORT_KEY)),
        }
    }
}

impl fmt::Display for KeySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.partition.name, self.partition.kind)?;
        if let Some(sort) = &self.sort {
            write!(f, ", {} ({})", sort.name, sort.kind)?;
        }
        Ok(())
    }
}

/// A table as it should be deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredTable {
    pub logical: String,
    pub name: String,
    pub key_schema: KeySchema,
    pub billing_mode: String,
    pub tags: BTreeMap<String, String>,
}

/// A deployed table tagged with this app and stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualTable {
    pub name: String,
    pub arn: String,
    /// From the `deployer:logical-id` tag; `None` if the tag is missing.
    pub logical: Option<String>,
    /// `None` when DescribeTable gave no usable key schema.
    pub key_schema: Option<KeySchema>,
    /// `None` when DescribeTable says nothing; old tables without a billing summary are
    /// provisioned, but an emulator may simply leave it out, so absence is not a difference.
    pub billing_mode: Option<String>,
    pub status: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The tags of every table of a stage.
pub fn table_tags(app: &str, stage: &str, logical: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_APP.to_string(), app.to_string()),
        (TAG_STAGE.to_string(), stage.to_string()),
        (TAG_LOGICAL.to_string(), logical.to_string()),
    ])
}

/// What a deployed table needs to match the desired one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableDiff {
    Same,
    /// The key schema differs: only a new table can have the new key.
    KeySchema {
        from: String,
        to: String,
    },
    /// The billing mode differs, which UpdateTable can change in place.
    BillingMode {
        from: String,
        to: String,
    },
}

/// Compares one table with what is deployed.
pub fn diff_table(desired: &DesiredTable, actual: &ActualTable) -> TableDiff {
    if actual.key_schema.as_ref() != Some(&desired.key_schema) {
        return TableDiff::KeySchema {
            from: actual
                .key_schema
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "unknown".to_string()),
            to: desired.key_schema.to_string(),
        };
    }
    match &actual.billing_mode {
        Some(have) if *have != desired.billing_mode => TableDiff::BillingMode {
            from: have.clone(),
            to: desired.billing_mode.clone(),
        },
        _ => TableDiff::Same,
    }
}
