//! DynamoDB tables: the stack's declaration and validation, the desired and observed table, the
//! pure diff the planner makes between them, and the DynamoDB calls that create, update, wait
//! for and delete them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TableDescription, TableStatus,
};
use serde::Serialize;

use crate::change::{Action, Planned, ResourceKind};
use crate::clients::Clients;
use crate::error::{DeployError, StackError};
use crate::names::{self, PARTITION_KEY, SORT_KEY, TAG_APP, TAG_LOGICAL, TAG_STAGE};
use crate::step::{Ctx, Failure, build_error, call_error, failure_error, sent};

/// The only billing mode the deployer creates tables with: a tenant's traffic is spiky and small,
/// and on-demand tables cost nothing while idle.
pub const PAY_PER_REQUEST: &str = "PAY_PER_REQUEST";

/// A DynamoDB table of the app, one per stage. By default a table is keyed `tenant` (the
/// partition key) and `record` (the sort key), so that one tenant's data is one partition; a
/// table may declare its own key instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub logical: String,
    pub key_schema: KeySchema,
}

impl Table {
    pub fn new(logical: &str) -> Self {
        Table {
            logical: logical.to_string(),
            key_schema: KeySchema::tenant_record(),
        }
    }

    /// Keys the table by string attributes of the caller's choosing: `partition` and, if given,
    /// `sort`. Tenant data can only be seeded into tables keyed the default way.
    pub fn key(mut self, partition: &str, sort: Option<&str>) -> Self {
        self.key_schema = KeySchema {
            partition: KeyAttribute::string(partition),
            sort: sort.map(KeyAttribute::string),
        };
        self
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

/// Checks the declared tables, adding each problem to `errors`; returns their logical names.
pub(crate) fn validate<'a>(
    app: &str,
    stage: &str,
    tables_declared: &'a [Table],
    errors: &mut Vec<StackError>,
) -> BTreeSet<&'a str> {
    let mut tables = BTreeSet::new();
    for t in tables_declared {
        if !tables.insert(t.logical.as_str()) {
            errors.push(StackError::DuplicateTable {
                logical: t.logical.clone(),
            });
            continue;
        }
        if !names::is_valid_name(&t.logical) {
            errors.push(StackError::InvalidName {
                what: "table",
                value: t.logical.clone(),
            });
        }
        let name = names::table_name(app, stage, &t.logical);
        if !names::is_valid_table_name(&name) {
            errors.push(StackError::InvalidTableName {
                logical: t.logical.clone(),
                name,
            });
        }
    }
    tables
}

/// What apply sends for a table: the table to create or update; `None` on a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableOp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<DesiredTable>,
}

fn table_change(
    name: &str,
    logical: Option<&str>,
    action: Action,
    reason: String,
    table: Option<&DesiredTable>,
) -> Planned<TableOp> {
    Planned::new(
        ResourceKind::Table,
        format!("table {name}"),
        name,
        logical,
        action,
        reason,
        TableOp {
            table: table.cloned(),
        },
    )
}

/// The desired tables against the deployed ones: creates, key-schema replacements and billing
/// updates, in stack order. Also returns the tables this plan leaves empty (created or
/// replaced), whose seeds are then written in full.
pub fn plan(
    desired: &[DesiredTable],
    actual: &[ActualTable],
) -> (Vec<Planned<TableOp>>, BTreeSet<String>) {
    let mut changes = Vec::new();
    let mut fresh = BTreeSet::new();
    for d in desired {
        let Some(a) = actual.iter().find(|a| a.name == d.name) else {
            fresh.insert(d.name.clone());
            changes.push(table_change(
                &d.name,
                Some(&d.logical),
                Action::Create,
                "not deployed yet".to_string(),
                Some(d),
            ));
            continue;
        };
        let change = match diff_table(d, a) {
            TableDiff::Same => table_change(
                &d.name,
                Some(&d.logical),
                Action::NoOp,
                "up to date".to_string(),
                Some(d),
            ),
            TableDiff::KeySchema { from, to } => {
                fresh.insert(d.name.clone());
                let mut c = table_change(
                    &d.name,
                    Some(&d.logical),
                    Action::Replace,
                    "key schema is immutable: the table is deleted and created again, all its \
                     data is lost and seeded tenants are seeded again"
                        .to_string(),
                    Some(d),
                );
                c.details = vec![format!("key schema {from} -> {to}")];
                c
            }
            TableDiff::BillingMode { from, to } => {
                let mut c = table_change(
                    &d.name,
                    Some(&d.logical),
                    Action::Update,
                    "billing mode changed".to_string(),
                    Some(d),
                );
                c.details = vec![format!("billing mode {from} -> {to}")];
                c
            }
        };
        changes.push(change);
    }
    (changes, fresh)
}

/// Deployed tables the stack no longer declares.
pub fn prune(
    desired: &[DesiredTable],
    actual: &[ActualTable],
    reason: &str,
) -> Vec<Planned<TableOp>> {
    actual
        .iter()
        .filter(|a| !desired.iter().any(|d| d.name == a.name))
        .map(|a| {
            table_change(
                &a.name,
                a.logical.as_deref(),
                Action::Delete,
                reason.to_string(),
                None,
            )
        })
        .collect()
}

/// Every table of the stage. Names narrow the search, tags decide, as for functions.
pub(crate) async fn observe(
    clients: &Clients,
    app: &str,
    stage: &str,
) -> Result<Vec<ActualTable>, DeployError> {
    let prefix = names::function_prefix(app, stage);
    let listed: Vec<String> = clients
        .dynamodb
        .list_tables()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("ListTables", &format!("tables {prefix}*"), e))?;
    let candidates = listed.into_iter().filter(|n| n.starts_with(&prefix));
    let mut tables = Vec::new();
    for name in candidates {
        let Some(table) = read_table(clients, &name).await? else {
            continue;
        };
        if table.tags.get(TAG_APP).map(String::as_str) == Some(app)
            && table.tags.get(TAG_STAGE).map(String::as_str) == Some(stage)
        {
            tables.push(table);
        }
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tables)
}

/// DescribeTable and the table's tags; `None` when the table does not exist.
pub(crate) async fn read_table(
    clients: &Clients,
    name: &str,
) -> Result<Option<ActualTable>, DeployError> {
    let resource = format!("table {name}");
    let description = match clients
        .dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await
    {
        Ok(out) => out.table,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(call_error("DescribeTable", &resource, e)),
    };
    let Some(description) = description else {
        return Ok(None);
    };
    let arn = description.table_arn().unwrap_or_default().to_string();
    let mut tags = BTreeMap::new();
    let mut token: Option<String> = None;
    // DynamoDB only lists tags by ARN; a table without one (an emulator's shortcut) has none.
    while !arn.is_empty() {
        let page = clients
            .dynamodb
            .list_tags_of_resource()
            .resource_arn(&arn)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| call_error("ListTagsOfResource", &resource, e))?;
        tags.extend(
            page.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string())),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(Some(actual_table(name, &description, tags)))
}

/// Converts DynamoDB's view of a table into the deployer's.
pub fn actual_table(
    name: &str,
    description: &TableDescription,
    tags: BTreeMap<String, String>,
) -> ActualTable {
    let kind_of = |attribute: &str| {
        description
            .attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == attribute)
            .map(|d| d.attribute_type().as_str().to_string())
            .unwrap_or_else(|| "?".to_string())
    };
    let key = |key_type: KeyType| {
        description
            .key_schema()
            .iter()
            .find(|k| *k.key_type() == key_type)
            .map(|k| KeyAttribute {
                name: k.attribute_name().to_string(),
                kind: kind_of(k.attribute_name()),
            })
    };
    let key_schema = key(KeyType::Hash).map(|partition| KeySchema {
        partition,
        sort: key(KeyType::Range),
    });
    ActualTable {
        name: name.to_string(),
        arn: description.table_arn().unwrap_or_default().to_string(),
        logical: tags.get(TAG_LOGICAL).cloned(),
        key_schema,
        billing_mode: description
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str().to_string()),
        status: description.table_status().map(|s| s.as_str().to_string()),
        tags,
    }
}

/// Creates, replaces or updates a table as planned.
pub(crate) async fn apply(ctx: &Ctx<'_>, c: &Planned<TableOp>) -> Result<(), DeployError> {
    let Some(d) = &c.op.table else {
        return Ok(());
    };
    match c.action {
        Action::Create => {
            ctx.say(&format!("creating table {}", d.name));
            create_table(ctx, d).await
        }
        Action::Replace => {
            ctx.say(&format!("deleting table {} ({})", d.name, c.reason));
            delete(ctx, &d.name).await?;
            wait_table(ctx, &d.name, TableGoal::Gone).await?;
            ctx.say(&format!("creating table {} again", d.name));
            create_table(ctx, d).await
        }
        Action::Update => {
            ctx.say(&format!("updating billing mode of table {}", d.name));
            let resource = format!("table {}", d.name);
            sent(
                ctx,
                ctx.clients
                    .dynamodb
                    .update_table()
                    .table_name(&d.name)
                    .billing_mode(BillingMode::from(d.billing_mode.as_str()))
                    .send(),
            )
            .await
            .map_err(|f| failure_error("UpdateTable", &resource, f))?;
            wait_table(ctx, &d.name, TableGoal::Active).await
        }
        _ => Ok(()),
    }
}

async fn create_table(ctx: &Ctx<'_>, d: &DesiredTable) -> Result<(), DeployError> {
    let resource = format!("table {}", d.name);
    let call = "CreateTable";
    let mut attributes = Vec::new();
    let mut key_schema = Vec::new();
    let keys = std::iter::once((&d.key_schema.partition, KeyType::Hash))
        .chain(d.key_schema.sort.iter().map(|s| (s, KeyType::Range)));
    for (attribute, key_type) in keys {
        attributes.push(
            AttributeDefinition::builder()
                .attribute_name(&attribute.name)
                .attribute_type(ScalarAttributeType::from(attribute.kind.as_str()))
                .build()
                .map_err(|e| build_error(call, &resource, e))?,
        );
        key_schema.push(
            KeySchemaElement::builder()
                .attribute_name(&attribute.name)
                .key_type(key_type)
                .build()
                .map_err(|e| build_error(call, &resource, e))?,
        );
    }
    let mut tags = Vec::new();
    for (k, v) in &d.tags {
        tags.push(
            aws_sdk_dynamodb::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| build_error(call, &resource, e))?,
        );
    }
    let result = sent(
        ctx,
        ctx.clients
            .dynamodb
            .create_table()
            .table_name(&d.name)
            .set_attribute_definitions(Some(attributes.clone()))
            .set_key_schema(Some(key_schema.clone()))
            .billing_mode(BillingMode::from(d.billing_mode.as_str()))
            .set_tags(Some(tags.clone()))
            .send(),
    )
    .await;
    match result {
        Ok(_) => {}
        // An interrupted run created it already: waiting for it converges.
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            ctx.say(&format!("table {} already exists", d.name));
        }
        Err(f) => return Err(failure_error(call, &resource, f)),
    }
    wait_table(ctx, &d.name, TableGoal::Active).await
}

/// Deletes a table; one already gone counts as deleted.
pub(crate) async fn delete(ctx: &Ctx<'_>, name: &str) -> Result<(), DeployError> {
    let resource = format!("table {name}");
    let result = sent(
        ctx,
        ctx.clients.dynamodb.delete_table().table_name(name).send(),
    )
    .await;
    match result {
        Ok(_) => Ok(()),
        // Already gone: deleting converges.
        Err(Failure::Fatal(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(f) => Err(failure_error("DeleteTable", &resource, f)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableGoal {
    /// `TableStatus: ACTIVE`, after CreateTable or UpdateTable.
    Active,
    /// DescribeTable answers not found, after DeleteTable: only then can the name be reused.
    Gone,
}

/// Polls DescribeTable until the table reaches `goal`, as [`wait`] does for functions. Right
/// after CreateTable, DescribeTable may still say not found; that counts as not yet active.
async fn wait_table(ctx: &Ctx<'_>, name: &str, goal: TableGoal) -> Result<(), DeployError> {
    let resource = format!("table {name}");
    let target = match goal {
        TableGoal::Active => "active",
        TableGoal::Gone => "deleted",
    };
    let start = Instant::now();
    let mut delay = ctx.opts.poll_interval;
    let cap = ctx.opts.max_delay.max(ctx.opts.poll_interval);
    loop {
        let last_seen = match ctx
            .clients
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
        {
            Ok(out) => {
                let status = out.table().and_then(|t| t.table_status());
                if goal == TableGoal::Active && matches!(status, Some(TableStatus::Active) | None) {
                    return Ok(());
                }
                format!("status {}", status.map(|s| s.as_str()).unwrap_or("unknown"))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                if goal == TableGoal::Gone {
                    return Ok(());
                }
                "not found".to_string()
            }
            Err(e) => {
                return Err(call_error("DescribeTable", &resource, e));
            }
        };
        let elapsed = start.elapsed();
        if elapsed >= ctx.opts.wait_timeout {
            return Err(DeployError::WaitTimeout {
                call: "DescribeTable",
                resource,
                target,
                timeout: ctx.opts.wait_timeout,
                last_seen,
            });
        }
        ctx.say(&format!(
            "waiting for table {name} to be {target} ({last_seen})"
        ));
        tokio::time::sleep(delay.min(ctx.opts.wait_timeout - elapsed)).await;
        delay = (delay * 2).min(cap);
    }
}

/// Resolves one declared table for a stage.
pub fn resolve(app: &str, stage: &str, t: &Table) -> DesiredTable {
    DesiredTable {
        logical: t.logical.clone(),
        name: names::table_name(app, stage, &t.logical),
        key_schema: t.key_schema.clone(),
        billing_mode: PAY_PER_REQUEST.to_string(),
        tags: table_tags(app, stage, &t.logical),
    }
}
