//! The audit trail of a stage on CloudTrail Lake: one event data store,
//! `{app}-{stage}-data-events`, recording only the DynamoDB data events of the stage's tables
//! (who read or wrote which item, allowed or refused), for apps that ask for it with
//! [`crate::stack::App::audit_data_events`]. This module owns its observation, diff and apply,
//! and the query `cargo xtask audit` reads it with.
//!
//! CloudTrail Lake rather than a trail delivering to S3: an event data store needs no bucket (the
//! deployer has no S3 kind) and answers SQL through the same SDK, on AWS and on the emulator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector, Tag};
use serde::Serialize;

use crate::change::{Action, Planned, ResourceKind};
use crate::clients::{Clients, no_retry};
use crate::error::DeployError;
use crate::names;
use crate::step::{
    Ctx, Failure, build_error, call_error, create_observed, delete_converged, failure_error, sent,
};

/// Days the store keeps events. On CloudTrail Lake's default billing mode (one-year extendable
/// retention) the ingestion price already pays for the first 366 days, so a shorter period saves
/// nothing, and a cross-tenant investigation often starts weeks after the attempt.
pub const RETENTION_DAYS: i32 = 366;

/// The logical id the store is tagged with.
pub const LOGICAL: &str = "data-events";

/// The name of the selector the deployer writes.
pub const SELECTOR_NAME: &str = "DynamoDB data events of the stage's tables";

/// The event data store's name: `{app}-{stage}-data-events`.
pub fn store_name(app: &str, stage: &str) -> String {
    format!("{app}-{stage}-{LOGICAL}")
}

/// The stage's data-events store, as it should exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredTrail {
    pub name: String,
    /// The physical names of the tables whose data events it records, sorted.
    pub tables: Vec<String>,
    pub retention_days: i32,
    pub tags: BTreeMap<String, String>,
}

/// The store the stage needs: one when the app audits data events, recording every table of
/// the stack.
pub fn resolve(app: &crate::stack::App, stage: &str) -> Option<DesiredTrail> {
    if !app.audit_data_events {
        return None;
    }
    let mut tables: Vec<String> = app
        .tables
        .iter()
        .map(|t| names::table_name(&app.name, stage, &t.logical))
        .collect();
    tables.sort();
    Some(DesiredTrail {
        name: store_name(&app.name, stage),
        tables,
        retention_days: RETENTION_DAYS,
        tags: names::tags(&app.name, stage, LOGICAL),
    })
}

/// One field selector as observed, in a form that compares without regard to order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FieldSelector {
    pub field: String,
    /// `Equals`, `StartsWith`, ... with the sorted values of each.
    pub operators: BTreeMap<String, Vec<String>>,
}

/// The stage's store as it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualTrail {
    pub name: String,
    pub arn: String,
    pub status: String,
    /// Every advanced event selector, each its field selectors sorted.
    pub selectors: Vec<Vec<FieldSelector>>,
    pub multi_region: bool,
    pub organization: bool,
    pub termination_protection: bool,
    pub retention_days: Option<i32>,
    pub tags: BTreeMap<String, String>,
}

impl ActualTrail {
    /// The store's id, the last part of its ARN: what a Lake query names after `FROM`.
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }
}

/// What apply sends for the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailOp {
    pub name: String,
    /// The tables whose data events are recorded; their ARNs are built at apply, when the
    /// account is known.
    pub tables: Vec<String>,
    pub retention_days: i32,
    pub tags: BTreeMap<String, String>,
    /// The existing store (update, delete).
    pub arn: Option<String>,
}

/// `(partition, region, account)` of an ARN.
fn arn_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.split(':');
    let (_, partition, _, region, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    Some((partition, region, account))
}

/// A table's ARN in `partition`, `region` and `account`.
pub fn table_arn(partition: &str, region: &str, account: &str, table: &str) -> String {
    format!("arn:{partition}:dynamodb:{region}:{account}:table/{table}")
}

/// The selectors the deployer writes for `table_arns`, in observed form: data events, of
/// DynamoDB tables, of exactly these tables.
pub fn expected_selectors(table_arns: &[String]) -> Vec<Vec<FieldSelector>> {
    let one = |field: &str, values: Vec<String>| FieldSelector {
        field: field.to_string(),
        operators: BTreeMap::from([("Equals".to_string(), values)]),
    };
    let mut arns = table_arns.to_vec();
    arns.sort();
    let mut fields = vec![
        one("eventCategory", vec!["Data".into()]),
        one("resources.type", vec!["AWS::DynamoDB::Table".into()]),
        one("resources.ARN", arns),
    ];
    fields.sort();
    vec![fields]
}

fn sdk_selectors(table_arns: &[String]) -> Result<Vec<AdvancedEventSelector>, String> {
    let field = |name: &str, values: &[String]| {
        AdvancedFieldSelector::builder()
            .field(name)
            .set_equals(Some(values.to_vec()))
            .build()
            .map_err(|e| e.to_string())
    };
    let selector = AdvancedEventSelector::builder()
        .name(SELECTOR_NAME)
        .field_selectors(field("eventCategory", &["Data".into()])?)
        .field_selectors(field("resources.type", &["AWS::DynamoDB::Table".into()])?)
        .field_selectors(field("resources.ARN", table_arns)?)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(vec![selector])
}

fn observed_selectors(selectors: &[AdvancedEventSelector]) -> Vec<Vec<FieldSelector>> {
    let mut out: Vec<Vec<FieldSelector>> = selectors
        .iter()
        .map(|s| {
            let mut fields: Vec<FieldSelector> = s
                .field_selectors()
                .iter()
                .map(|f| {
                    let mut operators = BTreeMap::new();
                    for (op, values) in [
                        ("Equals", f.equals()),
                        ("StartsWith", f.starts_with()),
                        ("EndsWith", f.ends_with()),
                        ("NotEquals", f.not_equals()),
                        ("NotStartsWith", f.not_starts_with()),
                        ("NotEndsWith", f.not_ends_with()),
                    ] {
                        if !values.is_empty() {
                            let mut v = values.to_vec();
                            v.sort();
                            operators.insert(op.to_string(), v);
                        }
                    }
                    FieldSelector {
                        field: f.field().to_string(),
                        operators,
                    }
                })
                .collect();
            fields.sort();
            fields
        })
        .collect();
    out.sort();
    out
}

/// Finds the stage's store: ListEventDataStores (the SDK's paginator) by name, then
/// GetEventDataStore for its selectors and status and ListTags for its owner. A store pending
/// deletion counts as gone; one named like the stage's but tagged for another app or stage is
/// not the stage's. `None` without reading when the clients have no CloudTrail client, and when
/// CloudTrail refuses the listing as access denied: every deploy observes the store, and an app
/// that does not audit must not need CloudTrail permissions (one that does is refused at
/// CreateEventDataStore, with AWS's sentence).
pub async fn observe(
    clients: &Clients,
    app: &str,
    stage: &str,
) -> Result<Option<ActualTrail>, DeployError> {
    let Some(cloudtrail) = &clients.cloudtrail else {
        return Ok(None);
    };
    let name = store_name(app, stage);
    let resource = format!("event data store {name}");
    let mut pages = cloudtrail.list_event_data_stores().into_paginator().send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(e) if is_access_denied(&e) => return Ok(None),
            Err(e) => return Err(call_error("ListEventDataStores", &resource, e)),
        };
        arns.extend(
            page.event_data_stores()
                .iter()
                .filter(|s| s.name() == Some(name.as_str()))
                .filter_map(|s| s.event_data_store_arn().map(str::to_string)),
        );
    }
    for arn in arns {
        let store = match cloudtrail
            .get_event_data_store()
            .event_data_store(&arn)
            .send()
            .await
        {
            Ok(store) => store,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_event_data_store_not_found_exception()) =>
            {
                continue;
            }
            Err(e) => return Err(call_error("GetEventDataStore", &resource, e)),
        };
        let status = store
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if status == "PENDING_DELETION" {
            continue;
        }
        let tags: BTreeMap<String, String> = cloudtrail
            .list_tags()
            .resource_id_list(&arn)
            .send()
            .await
            .map_err(|e| call_error("ListTags", &resource, e))?
            .resource_tag_list()
            .iter()
            .filter(|r| r.resource_id() == Some(arn.as_str()))
            .flat_map(|r| r.tags_list())
            .map(|t| {
                (
                    t.key().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        if tags.get(names::TAG_APP).map(String::as_str) != Some(app)
            || tags.get(names::TAG_STAGE).map(String::as_str) != Some(stage)
        {
            continue;
        }
        return Ok(Some(ActualTrail {
            name: name.clone(),
            arn,
            status,
            selectors: observed_selectors(store.advanced_event_selectors()),
            multi_region: store.multi_region_enabled().unwrap_or(false),
            organization: store.organization_enabled().unwrap_or(false),
            termination_protection: store.termination_protection_enabled().unwrap_or(false),
            retention_days: store.retention_period(),
            tags,
        }));
    }
    Ok(None)
}

/// Whether CloudTrail refused a call for want of permission (IAM's code; CloudTrail has no typed
/// error for it).
fn is_access_denied<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(
    e: &aws_sdk_cloudtrail::error::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> bool {
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|code| matches!(code, "AccessDeniedException" | "AccessDenied"))
}

fn op(d: &DesiredTrail, arn: Option<&str>) -> TrailOp {
    TrailOp {
        name: d.name.clone(),
        tables: d.tables.clone(),
        retention_days: d.retention_days,
        tags: d.tags.clone(),
        arn: arn.map(str::to_string),
    }
}

/// What differs between the store and what the stage asks for, one sentence each.
fn drift(d: &DesiredTrail, a: &ActualTrail) -> Vec<String> {
    let mut out = Vec::new();
    let arns: Vec<String> = match arn_parts(&a.arn) {
        Some((partition, region, account)) => d
            .tables
            .iter()
            .map(|t| table_arn(partition, region, account, t))
            .collect(),
        None => Vec::new(),
    };
    if a.selectors != expected_selectors(&arns) {
        out.push("selectors: DynamoDB data events of exactly the stage's tables".to_string());
    }
    if a.multi_region {
        out.push("multi-region: true -> false".to_string());
    }
    if a.organization {
        out.push("organization: true -> false".to_string());
    }
    if a.termination_protection {
        out.push("termination protection: true -> false (so destroy works)".to_string());
    }
    if a.retention_days != Some(d.retention_days) {
        let have = a
            .retention_days
            .map_or_else(|| "unknown".to_string(), |n| n.to_string());
        out.push(format!("retention: {have} -> {} days", d.retention_days));
    }
    out
}

/// Creates the store, updates it in place when its settings drifted, or deletes it when the
/// app no longer audits data events.
pub fn plan(desired: Option<&DesiredTrail>, actual: Option<&ActualTrail>) -> Vec<Planned<TrailOp>> {
    let resource = |name: &str| format!("event data store {name}");
    match (desired, actual) {
        (None, None) => Vec::new(),
        (None, Some(a)) => vec![plan_delete(a, "the app no longer audits data events")],
        (Some(d), None) => {
            let details = d
                .tables
                .iter()
                .map(|t| format!("records data events of table {t}"))
                .chain([format!("keeps events {} days", d.retention_days)])
                .collect();
            vec![
                Planned::new(
                    ResourceKind::EventDataStore,
                    resource(&d.name),
                    &d.name,
                    Some(LOGICAL),
                    Action::Create,
                    "not created yet: CloudTrail Lake, DynamoDB data events of the stage's tables",
                    op(d, None),
                )
                .with_details(details),
            ]
        }
        (Some(d), Some(a)) => {
            let details = drift(d, a);
            let (action, reason) = if details.is_empty() {
                (Action::NoOp, "records the stage's tables")
            } else {
                (Action::Update, "settings differ; updated in place")
            };
            vec![
                Planned::new(
                    ResourceKind::EventDataStore,
                    resource(&d.name),
                    &d.name,
                    Some(LOGICAL),
                    action,
                    reason,
                    op(d, Some(&a.arn)),
                )
                .with_details(details),
            ]
        }
    }
}

/// Deletes an existing store (destroy, or an app that no longer asks for one).
pub fn plan_delete(a: &ActualTrail, reason: &str) -> Planned<TrailOp> {
    Planned::new(
        ResourceKind::EventDataStore,
        format!("event data store {}", a.name),
        &a.name,
        Some(LOGICAL),
        Action::Delete,
        reason,
        TrailOp {
            name: a.name.clone(),
            tables: Vec::new(),
            retention_days: a.retention_days.unwrap_or(RETENTION_DAYS),
            tags: a.tags.clone(),
            arn: Some(a.arn.clone()),
        },
    )
}

/// The table ARNs of `op` in the account of the stage's role and the clients' region.
fn table_arns(ctx: &Ctx<'_>, c: &Planned<TrailOp>) -> Result<Vec<String>, DeployError> {
    let role = ctx.role_arn(&c.resource)?;
    let (partition, _, account) = arn_parts(&role).ok_or_else(|| DeployError::Call {
        call: "CreateEventDataStore",
        resource: c.resource.clone(),
        message: format!("the role ARN `{role}` names no account"),
        source: None,
    })?;
    let region = ctx.clients.region();
    Ok(c.op
        .tables
        .iter()
        .map(|t| table_arn(partition, &region, account, t))
        .collect())
}

fn client<'a>(
    ctx: &'a Ctx<'_>,
    resource: &str,
) -> Result<&'a aws_sdk_cloudtrail::Client, DeployError> {
    ctx.clients
        .cloudtrail
        .as_ref()
        .ok_or_else(|| DeployError::Call {
            call: "CloudTrail",
            resource: resource.to_string(),
            message: "these clients have no CloudTrail client; build them with `Clients::new` or `with_cloudtrail`".to_string(),
            source: None,
        })
}

/// The ARN of the stage's store named `name`, if one exists (after an ambiguous create).
async fn find(ctx: &Ctx<'_>, app: &str, stage: &str) -> Result<Option<String>, DeployError> {
    Ok(observe(ctx.clients, app, stage).await?.map(|a| a.arn))
}

/// Creates, updates or deletes the store. CreateEventDataStore is not idempotent: after an
/// ambiguous failure the store is looked for by name (and tags) before it is sent again.
pub(crate) async fn apply(
    ctx: &Ctx<'_>,
    app: &str,
    stage: &str,
    c: &Planned<TrailOp>,
) -> Result<(), DeployError> {
    let cloudtrail = client(ctx, &c.resource)?;
    match c.action {
        Action::NoOp | Action::Replace => Ok(()),
        Action::Create => {
            ctx.say(&format!("creating {}", c.resource));
            let arns = table_arns(ctx, c)?;
            let selectors = sdk_selectors(&arns)
                .map_err(|e| build_error("CreateEventDataStore", &c.resource, e))?;
            let mut tags = Vec::new();
            for (k, v) in &c.op.tags {
                tags.push(
                    Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .map_err(|e| build_error("CreateEventDataStore", &c.resource, e))?,
                );
            }
            let send = || {
                cloudtrail
                    .create_event_data_store()
                    .name(&c.op.name)
                    .set_advanced_event_selectors(Some(selectors.clone()))
                    .multi_region_enabled(false)
                    .organization_enabled(false)
                    .termination_protection_enabled(false)
                    .retention_period(c.op.retention_days)
                    .set_tags_list(Some(tags.clone()))
                    .customize()
                    .config_override(no_retry!(aws_sdk_cloudtrail))
                    .send()
            };
            let created = create_observed(
                ctx,
                &c.resource,
                || async { send().await.map(|_| ()) },
                || async { Ok(find(ctx, app, stage).await?.map(|_| ())) },
            )
            .await?;
            match created {
                Ok(()) => Ok(()),
                // Made by an interrupted run: bring it to what the stage asks for.
                Err(Failure::Fatal(e))
                    if e.as_service_error()
                        .is_some_and(|s| s.is_event_data_store_already_exists_exception()) =>
                {
                    match find(ctx, app, stage).await? {
                        Some(arn) => update(ctx, cloudtrail, c, &arn, &arns).await,
                        None => Err(call_error("CreateEventDataStore", &c.resource, e)),
                    }
                }
                Err(f) => Err(failure_error("CreateEventDataStore", &c.resource, f)),
            }
        }
        Action::Update => {
            ctx.say(&format!("updating {}", c.resource));
            let arn = c.op.arn.clone().unwrap_or_default();
            let arns = table_arns(ctx, c)?;
            update(ctx, cloudtrail, c, &arn, &arns).await
        }
        Action::Delete => {
            ctx.say(&format!("deleting {}", c.resource));
            let arn = c.op.arn.clone().unwrap_or_default();
            let result = sent(
                ctx,
                cloudtrail
                    .delete_event_data_store()
                    .event_data_store(&arn)
                    .send(),
            )
            .await;
            delete_converged("DeleteEventDataStore", &c.resource, result, |e| {
                e.is_event_data_store_not_found_exception()
                    || e.is_inactive_event_data_store_exception()
            })
        }
    }
}

async fn update(
    ctx: &Ctx<'_>,
    cloudtrail: &aws_sdk_cloudtrail::Client,
    c: &Planned<TrailOp>,
    arn: &str,
    table_arns: &[String],
) -> Result<(), DeployError> {
    let selectors = sdk_selectors(table_arns)
        .map_err(|e| build_error("UpdateEventDataStore", &c.resource, e))?;
    sent(
        ctx,
        cloudtrail
            .update_event_data_store()
            .event_data_store(arn)
            .set_advanced_event_selectors(Some(selectors))
            .multi_region_enabled(false)
            .organization_enabled(false)
            .termination_protection_enabled(false)
            .retention_period(c.op.retention_days)
            .send(),
    )
    .await
    .map(|_| ())
    .map_err(|f| failure_error("UpdateEventDataStore", &c.resource, f))
}

// Reading the store: the audit's query.

/// Why reading the store failed, as a sentence.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(transparent)]
    Call(#[from] DeployError),
    #[error(
        "the CloudTrail Lake query {query_id} was still {status} after {waited:?}; run the command again, or look at it in the CloudTrail console"
    )]
    Timeout {
        query_id: String,
        status: String,
        waited: Duration,
    },
    #[error("the CloudTrail Lake query {query_id} ended {status}: {message}")]
    Failed {
        query_id: String,
        status: String,
        message: String,
    },
}

/// The columns the audit reads, in order, each with the alias its values come back under.
pub const COLUMNS: &[&str] = &[
    "eventTime AS event_time",
    "eventName AS event_name",
    "userIdentity.arn AS principal_arn",
    "userIdentity.sessionContext.sessionIssuer.arn AS issuer_arn",
    "element_at(requestParameters, 'tableName') AS table_name",
    "element_at(requestParameters, 'key') AS item_key",
    "element_at(requestParameters, 'keyConditionExpression') AS key_condition",
    "element_at(requestParameters, 'expressionAttributeNames') AS attribute_names",
    "element_at(requestParameters, 'expressionAttributeValues') AS attribute_values",
    "errorCode AS error_code",
    "errorMessage AS error_message",
];

/// The name a column of [`COLUMNS`] comes back under: its alias.
pub fn column_name(column: &str) -> &str {
    column
        .rsplit_once(" AS ")
        .map_or(column, |(_, alias)| alias)
}

/// Lake's timestamp literal: `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn lake_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // The civil date of a day number (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// The SQL the audit sends: the stage's DynamoDB data events since `since_ms`, oldest first,
/// only refused ones with `denied_only`.
pub fn audit_query(store_id: &str, since_ms: i64, denied_only: bool) -> String {
    let mut sql = format!(
        "SELECT {} FROM {store_id} WHERE eventSource = 'dynamodb.amazonaws.com' AND eventTime >= '{}'",
        COLUMNS.join(", "),
        lake_time(since_ms)
    );
    if denied_only {
        sql.push_str(" AND errorCode IS NOT NULL");
    }
    sql.push_str(" ORDER BY eventTime ASC");
    sql
}

/// One result row: column -> value (a column without a value is absent).
pub type Row = BTreeMap<String, String>;

/// Runs `sql` on the store and returns its rows: StartQuery, DescribeQuery until the query
/// finished (polling every `poll`, at most `wait`), then GetQueryResults through the SDK's
/// paginator.
pub async fn query(
    clients: &Clients,
    store: &str,
    sql: &str,
    wait: Duration,
    poll: Duration,
) -> Result<Vec<Row>, LakeError> {
    let resource = format!("event data store {store}");
    let cloudtrail = clients
        .cloudtrail
        .as_ref()
        .ok_or_else(|| DeployError::Call {
            call: "StartQuery",
            resource: resource.clone(),
            message: "these clients have no CloudTrail client".to_string(),
            source: None,
        })?;
    let started = cloudtrail
        .start_query()
        .query_statement(sql)
        .send()
        .await
        .map_err(|e| call_error("StartQuery", &resource, e))?;
    let query_id = started.query_id().unwrap_or_default().to_string();
    let begun = Instant::now();
    loop {
        let described = cloudtrail
            .describe_query()
            .query_id(&query_id)
            .send()
            .await
            .map_err(|e| call_error("DescribeQuery", &resource, e))?;
        let status = described
            .query_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        match status.as_str() {
            "FINISHED" => break,
            "FAILED" | "CANCELLED" | "TIMED_OUT" => {
                return Err(LakeError::Failed {
                    query_id,
                    status,
                    message: described
                        .error_message()
                        .unwrap_or("no reason given")
                        .to_string(),
                });
            }
            _ if begun.elapsed() >= wait => {
                return Err(LakeError::Timeout {
                    query_id,
                    status,
                    waited: wait,
                });
            }
            _ => tokio::time::sleep(poll).await,
        }
    }
    let mut rows = Vec::new();
    let mut pages = cloudtrail
        .get_query_results()
        .query_id(&query_id)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("GetQueryResults", &resource, e))?;
        for row in page.query_result_rows() {
            rows.push(
                row.iter()
                    .flat_map(|column| column.iter())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// The session name the functions' shared library gives a tenant's session: `tenant-<id>`,
/// every character STS refuses as `-`, cut to 64 (`functions/represent/src/data.rs`).
pub fn session_name(tenant: &str) -> String {
    let mut name: String = format!("tenant-{tenant}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

/// The tenant of a session, read back from its name: CloudTrail records the session name, not
/// its tags. The encoding loses characters (`a/b` and `a-b` are both `tenant-a-b`), so the
/// name is decoded only against the app's tenants, and only when exactly one of them has it.
pub fn tenant_from_session<'a>(session: &str, tenants: &'a [String]) -> Option<&'a str> {
    let mut found = tenants.iter().filter(|t| session_name(t) == session);
    match (found.next(), found.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// A plain value of a DynamoDB attribute (`{"S": "TX"}` -> `TX`), or the text itself.
fn plain(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Object(o) => o
            .get("S")
            .or_else(|| o.get("N"))
            .and_then(|v| v.as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// The partition key values a data event names: the `key` of GetItem, PutItem, UpdateItem and
/// DeleteItem, or the equality on the partition key in a Query's key condition (with the
/// expression's names and values). Empty when the record does not carry it.
pub fn partition_keys(row: &Row, attribute: &str) -> Vec<String> {
    let json = |column: &str| -> Option<serde_json::Value> {
        row.get(column_name(column))
            .and_then(|v| serde_json::from_str(v).ok())
    };
    if let Some(key) = json(COLUMNS[5]) {
        return key.get(attribute).and_then(plain).into_iter().collect();
    }
    let Some(condition) = row.get(column_name(COLUMNS[6])) else {
        return Vec::new();
    };
    let names = json(COLUMNS[7]).unwrap_or_default();
    let values = json(COLUMNS[8]).unwrap_or_default();
    let resolve_name = |token: &str| -> String {
        if token.starts_with('#') {
            names
                .get(token)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        } else {
            token.to_string()
        }
    };
    for clause in condition.split(" AND ").chain(condition.split(" and ")) {
        let Some((left, right)) = clause.split_once('=') else {
            continue;
        };
        let (left, right) = (
            left.trim().trim_start_matches('('),
            right.trim().trim_end_matches(')'),
        );
        if resolve_name(left) == attribute
            && let Some(value) = values.get(right).and_then(plain)
        {
            return vec![value];
        }
    }
    Vec::new()
}

/// Milliseconds since the epoch of a Lake timestamp (`2026-12-01 15:04:23.000`, or ISO 8601).
pub fn parse_lake_time(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let millis = format!("{frac:0<3}")[..3].parse::<i64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) * 60_000 + s * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(usize, &str)]) -> Row {
        pairs
            .iter()
            .map(|(i, v)| (column_name(COLUMNS[*i]).to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_partition_comes_from_the_key_or_the_key_condition() {
        assert_eq!(
            partition_keys(
                &row(&[(5, r#"{"tenant":"CA","record":"STATE"}"#)]),
                "tenant"
            ),
            ["CA"]
        );
        let query = row(&[
            (6, "#pk = :pk AND begins_with(#sk, :sk)"),
            (7, r##"{"#pk":"tenant","#sk":"record"}"##),
            (8, r#"{":pk":{"S":"CA"},":sk":{"S":"SEAT"}}"#),
        ]);
        assert_eq!(partition_keys(&query, "tenant"), ["CA"]);
        assert!(partition_keys(&row(&[(6, "#pk = :pk")]), "tenant").is_empty());
    }

    #[test]
    fn a_session_name_gives_its_tenant_only_when_one_tenant_has_it() {
        let tenants = vec!["TX".to_string(), "a/b".to_string(), "a-b".to_string()];
        assert_eq!(tenant_from_session("tenant-TX", &tenants), Some("TX"));
        assert_eq!(
            tenant_from_session("tenant-a-b", &tenants),
            None,
            "ambiguous"
        );
        assert_eq!(
            tenant_from_session("represent-dev-counties", &tenants),
            None
        );
    }

    #[test]
    fn lake_times_round_trip() {
        let ms = 1_796_137_463_123;
        assert_eq!(
            parse_lake_time("2026-12-01T15:04:23.123Z"),
            Some(1_796_137_463_123)
        );
        assert_eq!(lake_time(ms), "2026-12-01 15:04:23");
        assert_eq!(parse_lake_time(&lake_time(ms)), Some(ms - 123));
    }

    #[test]
    fn selectors_compare_whatever_their_order() {
        let arns = vec![
            "arn:aws:dynamodb:us-east-1:1:table/b".to_string(),
            "arn:aws:dynamodb:us-east-1:1:table/a".to_string(),
        ];
        let mut reversed = arns.clone();
        reversed.reverse();
        assert_eq!(expected_selectors(&arns), expected_selectors(&reversed));
        let sdk = sdk_selectors(&arns).expect("selectors build");
        assert_eq!(observed_selectors(&sdk), expected_selectors(&arns));
    }
}
