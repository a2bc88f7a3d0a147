//! CloudWatch Logs groups of the stack's functions: their names and retention, what observe
//! reads of them, the pure diff the planner makes, and the calls apply sends.
//!
//! Lambda writes a function's logs to `/aws/lambda/<function name>` and creates that group on the
//! first invoke if it is missing, with no retention: logs kept forever, and paid for forever. The
//! deployer creates the group itself with the stage's retention before the function exists, and
//! deletes it when the function leaves the stack, so a log group lives and dies with its function.

use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::error::SdkError;
use serde::Serialize;

use crate::error::{DeployError, render};
use crate::observe::{ActualFunction, Clients};

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy's `retentionInDays`).
pub const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
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

fn call_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    call: &'static str,
    name: &str,
    err: SdkError<E, R>,
) -> DeployError {
    DeployError::Call {
        call,
        resource: format!("log group {name}"),
        message: render(&err),
    }
}

/// The log groups of the given functions (the stage's, already filtered by tags): one listing
/// of the stage's prefix, every page, keeping only the groups named after those functions, so a
/// stage whose name extends another's (`dev` and `dev-2`) never claims the other's groups.
pub(crate) async fn observe_log_groups(
    clients: &Clients,
    function_prefix: &str,
    functions: &[ActualFunction],
) -> Result<Vec<ActualLogGroup>, DeployError> {
    if functions.is_empty() {
        return Ok(Vec::new());
    }
    let by_group: BTreeMap<String, &str> = functions
        .iter()
        .map(|f| (log_group_name(&f.name), f.name.as_str()))
        .collect();
    let prefix = log_group_name(function_prefix);
    let mut groups = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = clients
            .logs
            .describe_log_groups()
            .log_group_name_prefix(&prefix)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| call_error("DescribeLogGroups", &format!("{prefix}*"), e))?;
        for g in page.log_groups() {
            let Some(name) = g.log_group_name() else {
                continue;
            };
            if let Some(function) = by_group.get(name) {
                groups.push(ActualLogGroup {
                    name: name.to_string(),
                    function: function.to_string(),
                    retention_days: g.retention_in_days().and_then(|d| u32::try_from(d).ok()),
                });
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(groups)
}

/// Creates a log group, tolerating one an interrupted run (or Lambda itself, on a first invoke)
/// already created, then sets its retention. Returns the number of mutating calls sent.
pub(crate) async fn create_log_group(
    clients: &Clients,
    name: &str,
    days: u32,
    tags: &BTreeMap<String, String>,
) -> Result<u32, DeployError> {
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
    put_retention(clients, name, days).await?;
    Ok(2)
}

/// Sets a log group's retention.
pub(crate) async fn put_retention(
    clients: &Clients,
    name: &str,
    days: u32,
) -> Result<(), DeployError> {
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
pub(crate) async fn delete_log_group(clients: &Clients, name: &str) -> Result<(), DeployError> {
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
