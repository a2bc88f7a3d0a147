//! CloudWatch Logs groups of the stack's functions: their names and retention, what observe
//! reads of them, the pure diff the planner makes, and the calls apply sends.
//!
//! Lambda writes a function's logs to `/aws/lambda/<function name>` and creates that group on the
//! first invoke if it is missing, with no retention: logs kept forever, and paid for forever. The
//! deployer creates the group itself with the stage's retention before the function exists, and
//! deletes it when the function leaves the stack. A replaced function's group is kept: its logs
//! are the history of the function, and the stage's retention still expires them.

use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::error::SdkError;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::change::{Action, Planned, ResourceKind};
use crate::clients::Clients;
use crate::error::DeployError;
use crate::function::ActualFunction;
use crate::names;
use crate::step::Ctx;

pub use crate::names::RETENTION_DAYS;
/// The default retention of an AWS stage: two weeks is enough to investigate an incident and
/// keeps a busy stage's log bill bounded.
pub const AWS_RETENTION_DAYS: u32 = 14;
/// The default retention of an emulator stage: local logs only serve the current work.
pub const EMULATOR_RETENTION_DAYS: u32 = 7;

/// The log group Lambda writes a function's logs to.
pub fn log_group_name(function: &str) -> String {
    format!("/aws/lambda/{function}")
}

/// A log group of one of the stage's deployed functions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualLogGroup {
    pub name: String,
    /// The physical name of the function whose logs it holds.
    pub function: String,
    /// `None` means the logs never expire.
    pub retention_days: Option<u32>,
    /// The group's ARN for tagging (without DescribeLogGroups' trailing `:*`).
    #[serde(default)]
    pub arn: String,
    /// The group's tags (ListTagsForResource); empty for a group nobody tagged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl ActualLogGroup {
    /// Whether the group carries the stage's app and stage tags.
    pub fn tagged_for(&self, app: &str, stage: &str) -> bool {
        self.tags.get(names::TAG_APP).map(String::as_str) == Some(app)
            && self.tags.get(names::TAG_STAGE).map(String::as_str) == Some(stage)
    }
}

/// What a log group needs to match the stage's retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogGroupDiff {
    Create,
    Same,
    Retention { from: Option<u32>, to: u32 },
}

/// Compares a function's log group (if observed) with the stage's retention.
pub fn diff_log_group(actual: Option<&ActualLogGroup>, days: u32) -> LogGroupDiff {
    match actual {
        None => LogGroupDiff::Create,
        Some(a) if a.retention_days == Some(days) => LogGroupDiff::Same,
        Some(a) => LogGroupDiff::Retention {
            from: a.retention_days,
            to: days,
        },
    }
}

/// `14 days`, or `never expire` for a group without retention.
pub fn describe_retention(days: Option<u32>) -> String {
    match days {
        Some(1) => "1 day".to_string(),
        Some(d) => format!("{d} days"),
        None => "never expire".to_string(),
    }
}

fn call_error<E>(
    call: &'static str,
    name: &str,
    err: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> DeployError
where
    E: std::error::Error
        + aws_smithy_types::error::metadata::ProvideErrorMetadata
        + Send
        + Sync
        + 'static,
{
    crate::step::call_error(call, &format!("log group {name}"), err)
}

/// The log groups of the given functions (the stage's, already filtered by tags), of the other
/// slot of each, of both slots of every `declared` logical function (the stack's, whose
/// function may already be gone), and every other group under the stage's prefix that is tagged
/// with the stage (a group of a function that left the stack and is already gone): one listing
/// of the stage's prefix, every page, then each listed group's tags. A group that matches only
/// by prefix and is not tagged with the stage is never claimed, so a stage whose name extends
/// another's (`dev` and `dev-2`) never claims the other's groups.
pub(crate) async fn observe(
    clients: &Clients,
    app: &str,
    stage: &str,
    functions: &[ActualFunction],
    declared: &[String],
) -> Result<Vec<ActualLogGroup>, DeployError> {
    let both_slots = |logical: &str| {
        [
            names::function_name(app, stage, logical),
            names::replacement_name(app, stage, logical),
        ]
    };
    // Both slots of each logical function: a replaced function's group outlives it.
    let by_group: BTreeMap<String, String> = functions
        .iter()
        .flat_map(|f| {
            let mut slots = vec![f.name.clone()];
            if let Some(logical) = &f.logical {
                slots.extend(both_slots(logical));
            }
            slots
        })
        .chain(declared.iter().flat_map(|logical| both_slots(logical)))
        .map(|name| (log_group_name(&name), name))
        .collect();
    let prefix = log_group_name(&names::function_prefix(app, stage));
    let listed = clients
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&prefix)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error("DescribeLogGroups", &format!("{prefix}*"), e))?;
    // Made before they are streamed, so the future holds no closure (and stays `Send`).
    let read: Vec<_> = listed
        .iter()
        .filter_map(|g| {
            let name = g.log_group_name()?.to_string();
            // The tagging ARN is the group's ARN without the `:*` DescribeLogGroups' `arn` ends with.
            let arn = g
                .log_group_arn()
                .map(str::to_string)
                .or_else(|| g.arn().map(|a| a.trim_end_matches(":*").to_string()))
                .unwrap_or_default();
            let retention_days = g.retention_in_days().and_then(|d| u32::try_from(d).ok());
            Some(async move {
                let tags = read_tags(clients, &name, &arn).await?;
                Ok::<_, DeployError>(ActualLogGroup {
                    name,
                    function: String::new(),
                    retention_days,
                    arn,
                    tags,
                })
            })
        })
        .collect();
    let read: Vec<_> = futures::stream::iter(read)
        .buffered(crate::observe::READ_PARALLELISM)
        .try_collect()
        .await?;
    let mut groups = Vec::new();
    for mut group in read {
        group.function = match by_group.get(&group.name) {
            Some(f) => f.clone(),
            // Claimed by its tags alone: the group of a function already gone.
            None if group.tagged_for(app, stage) => group
                .name
                .strip_prefix("/aws/lambda/")
                .unwrap_or(&group.name)
                .to_string(),
            None => continue,
        };
        groups.push(group);
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(groups)
}

/// A group's tags (ListTagsForResource on its ARN); a group deleted meanwhile has none.
async fn read_tags(
    clients: &Clients,
    name: &str,
    arn: &str,
) -> Result<BTreeMap<String, String>, DeployError> {
    if arn.is_empty() {
        return Ok(BTreeMap::new());
    }
    match clients
        .logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(BTreeMap::new())
        }
        Err(e) => Err(call_error("ListTagsForResource", name, e)),
    }
}

/// Tags a group (TagResource on the ARN observe read), adding to the tags it has.
async fn tag_log_group(
    clients: &Clients,
    name: &str,
    arn: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), DeployError> {
    clients
        .logs
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| call_error("TagResource", name, e))?;
    Ok(())
}

/// Creates a log group, tolerating one an interrupted run (or Lambda itself, on a first invoke)
/// already created, then sets its retention.
async fn create_log_group(
    clients: &Clients,
    name: &str,
    days: u32,
    tags: &BTreeMap<String, String>,
) -> Result<(), DeployError> {
    let result = clients
        .logs
        .create_log_group()
        .log_group_name(name)
        .set_tags(Some(tags.clone().into_iter().collect()))
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
        Err(e) => return Err(call_error("CreateLogGroup", name, e)),
    }
    put_retention(clients, name, days).await
}

/// Sets a log group's retention.
async fn put_retention(clients: &Clients, name: &str, days: u32) -> Result<(), DeployError> {
    clients
        .logs
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(i32::try_from(days).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| call_error("PutRetentionPolicy", name, e))?;
    Ok(())
}

/// Deletes a log group; one already gone counts as deleted.
async fn delete_log_group(clients: &Clients, name: &str) -> Result<(), DeployError> {
    match clients
        .logs
        .delete_log_group()
        .log_group_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(call_error("DeleteLogGroup", name, e)),
    }
}

/// What apply sends for a log group: its retention and, on a create, its tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogGroupOp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// On an update that tags an existing group: the group's ARN, which TagResource takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_arn: Option<String>,
}

/// Whether a group carries every one of `tags`.
fn has_tags(g: &ActualLogGroup, tags: &BTreeMap<String, String>) -> bool {
    tags.iter().all(|(k, v)| g.tags.get(k) == Some(v))
}

/// `k=v, k=v`.
fn describe_tags(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A group the plan keeps as it is, or tags when it lacks the stage's tags (one that predates
/// tagging), so that a later sweep by tag finds it once its function is gone.
fn keep_group(
    g: &ActualLogGroup,
    logical: Option<&str>,
    reason: String,
    tags: &BTreeMap<String, String>,
) -> Planned<LogGroupOp> {
    if has_tags(g, tags) || g.arn.is_empty() {
        return change(
            &g.name,
            logical,
            Action::NoOp,
            reason,
            LogGroupOp::default(),
        );
    }
    change(
        &g.name,
        logical,
        Action::Update,
        format!("{reason}; not tagged with the stage"),
        LogGroupOp {
            tags: tags.clone(),
            tag_arn: Some(g.arn.clone()),
            ..LogGroupOp::default()
        },
    )
    .with_details(vec![format!("tags {}", describe_tags(tags))])
}

fn change(
    name: &str,
    logical: Option<&str>,
    action: Action,
    reason: impl Into<String>,
    op: LogGroupOp,
) -> Planned<LogGroupOp> {
    Planned::new(
        ResourceKind::LogGroup,
        format!("log group {name}"),
        name,
        logical,
        action,
        reason,
        op,
    )
}

/// Where one logical function ends up after a plan, as far as its log group is concerned.
#[derive(Debug, Clone)]
pub struct FunctionSlot {
    pub logical: String,
    /// The physical function after the plan (a replacement's new slot).
    pub name: String,
    /// The other slot the function alternates with when it is replaced.
    pub other_slot: String,
    /// The function a replacement supersedes.
    pub replaces: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The log group of every function the plan keeps or creates (under the slot name it ends up
/// with), at the stage's retention. The group of a replaced function is kept, and the plan says
/// so; the groups of functions the stack no longer declares are deleted. Nothing at all when
/// the stage leaves its log groups to Lambda (`days` is `None`).
pub fn plan(
    days: Option<u32>,
    observed: &[ActualLogGroup],
    functions: &[FunctionSlot],
) -> Vec<Planned<LogGroupOp>> {
    let Some(days) = days else {
        return Vec::new();
    };
    let find = |name: &str| observed.iter().find(|g| g.name == name);
    let mut keep = Vec::new();
    let mut claimed = std::collections::BTreeSet::new();
    for f in functions {
        let name = log_group_name(&f.name);
        claimed.insert(name.clone());
        let logical = Some(f.logical.as_str());
        let retention = describe_retention(Some(days));
        let existing = find(&name);
        keep.push(match (diff_log_group(existing, days), existing) {
            (LogGroupDiff::Create, _) | (_, None) => change(
                &name,
                logical,
                Action::Create,
                "not deployed yet",
                LogGroupOp {
                    retention_days: Some(days),
                    tags: f.tags.clone(),
                    tag_arn: None,
                },
            )
            .with_details(vec![format!("retention {retention}")]),
            (LogGroupDiff::Same, Some(g)) => {
                keep_group(g, logical, "up to date".to_string(), &f.tags)
            }
            (LogGroupDiff::Retention { from, .. }, Some(g)) => {
                let mut c = keep_group(g, logical, "retention changed".to_string(), &f.tags);
                c.action = Action::Update;
                c.op.retention_days = Some(days);
                c.details.insert(
                    0,
                    format!("retention {} -> {retention}", describe_retention(from)),
                );
                c
            }
        });
        if let Some(old) = &f.replaces {
            let old_group = log_group_name(old);
            if let Some(g) = find(&old_group) {
                claimed.insert(old_group.clone());
                keep.push(keep_group(
                    g,
                    logical,
                    format!("kept: the history of function {old}, which is replaced"),
                    &f.tags,
                ));
            }
        }
    }
    // The other slot of a function still in the stack holds the history of an earlier
    // replacement; anything else belongs to a function that left the stack.
    let mut delete = Vec::new();
    for g in observed.iter().filter(|g| !claimed.contains(&g.name)) {
        match functions.iter().find(|f| f.other_slot == g.function) {
            Some(f) => keep.push(keep_group(
                g,
                Some(&f.logical),
                format!("kept: the history of an earlier function {}", g.function),
                &f.tags,
            )),
            None => delete.push(change(
                &g.name,
                None,
                Action::Delete,
                format!("function {} is deleted", g.function),
                LogGroupOp::default(),
            )),
        }
    }
    keep.extend(delete);
    keep
}

/// Deletes of every log group of a stage, for a destroy.
pub fn plan_destroy(observed: &[ActualLogGroup]) -> Vec<Planned<LogGroupOp>> {
    observed
        .iter()
        .map(|g| {
            change(
                &g.name,
                None,
                Action::Delete,
                "destroying the stage",
                LogGroupOp::default(),
            )
        })
        .collect()
}

/// Creates a function's log group with the stage's retention, or changes its retention or tags
/// it.
pub(crate) async fn apply(ctx: &Ctx<'_>, c: &Planned<LogGroupOp>) -> Result<(), DeployError> {
    match (c.action, c.op.retention_days) {
        (Action::Create, Some(days)) => {
            ctx.say(&format!(
                "creating log group {} ({})",
                c.name,
                describe_retention(Some(days))
            ));
            create_log_group(ctx.clients, &c.name, days, &c.op.tags).await?;
        }
        (Action::Update, days) => {
            ctx.say(&format!(
                "updating {} ({})",
                c.resource,
                c.details.join(", ")
            ));
            if let Some(days) = days {
                put_retention(ctx.clients, &c.name, days).await?;
            }
            if let Some(arn) = &c.op.tag_arn
                && !c.op.tags.is_empty()
            {
                tag_log_group(ctx.clients, &c.name, arn, &c.op.tags).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Deletes a log group; one already gone counts as deleted.
pub(crate) async fn delete(ctx: &Ctx<'_>, c: &Planned<LogGroupOp>) -> Result<(), DeployError> {
    ctx.say(&format!("deleting log group {} ({})", c.name, c.reason));
    delete_log_group(ctx.clients, &c.name).await
}
