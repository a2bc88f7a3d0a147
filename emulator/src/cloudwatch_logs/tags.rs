//! Log group tags: CreateLogGroup's `tags`, TagResource, UntagResource and ListTagsForResource
//! (by the group's ARN, `arn:aws:logs:<region>:<account>:log-group:<name>`, without the `:*`
//! that DescribeLogGroups' `arn` ends with), and the older TagLogGroup and ListTagsLogGroup (by
//! name). Deleting a group deletes its tags.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::LogsError;
use super::{group_name, input, with_store};
use crate::server::AppState;
use crate::store;

/// At most this many tags on one group, as CloudWatch Logs allows.
const MAX_TAGS: usize = 50;

/// Checks tags against CloudWatch Logs' constraints: keys of 1 to 128 characters that do not
/// start with `aws:`, values of at most 256 characters.
pub(super) fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), LogsError> {
    if tags.len() > MAX_TAGS {
        return Err(LogsError::constraint(
            &format!("{} tags", tags.len()),
            "tags",
            &format!("Member must have length less than or equal to {MAX_TAGS}"),
        ));
    }
    for (key, value) in tags {
        check_key(key)?;
        if value.chars().count() > 256 {
            return Err(LogsError::constraint(
                value,
                "tags",
                "Map value must have length less than or equal to 256",
            ));
        }
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), LogsError> {
    let n = key.chars().count();
    if n == 0 || n > 128 {
        return Err(LogsError::constraint(
            key,
            "tagKeys",
            "Member must have length between 1 and 128",
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(LogsError::invalid(format!(
            "Tag keys prefixed with 'aws:' are reserved: {key}"
        )));
    }
    Ok(())
}

/// The group a tagging ARN names, in this emulator's region and account.
fn group_of_arn(app: &AppState, arn: Option<String>) -> Result<String, LogsError> {
    let arn = arn.ok_or_else(|| LogsError::missing("resourceArn"))?;
    let expected = format!(
        "arn:aws:logs:{}:{}:log-group:",
        app.config.region, app.config.account_id
    );
    let Some(name) = arn.strip_prefix(&expected) else {
        return Err(LogsError::invalid(format!(
            "The specified resource ARN is not valid: {arn}"
        )));
    };
    if name.ends_with(":*") {
        return Err(LogsError::invalid(format!(
            "The specified resource ARN is not valid: {arn} (a log group's ARN for tagging does not end with :*)"
        )));
    }
    group_name(Some(name.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagInput {
    resource_arn: Option<String>,
    log_group_name: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

/// Which group a tagging call names: by ARN (TagResource and friends) or by name (the older
/// calls).
fn target(app: &AppState, input: &TagInput, by_arn: bool) -> Result<String, LogsError> {
    if by_arn {
        group_of_arn(app, input.resource_arn.clone())
    } else {
        group_name(input.log_group_name.clone())
    }
}

/// TagResource (`by_arn`) or TagLogGroup.
pub(super) async fn tag(app: &AppState, body: &[u8], by_arn: bool) -> Result<Value, LogsError> {
    let input: TagInput = input(body)?;
    let name = target(app, &input, by_arn)?;
    check_tags(&input.tags)?;
    let tags = input.tags;
    with_store(app, move |conn| {
        if store::log_group(conn, &name)?.is_none() {
            return Ok(Err(LogsError::group_not_found()));
        }
        let mut all = store::log_group_tags(conn, &name)?;
        all.extend(tags.clone());
        if all.len() > MAX_TAGS {
            return Ok(Err(LogsError::invalid(format!(
                "A log group can have at most {MAX_TAGS} tags."
            ))));
        }
        store::tag_log_group(conn, &name, &tags)?;
        Ok(Ok(json!({})))
    })
    .await
}

/// UntagResource.
pub(super) async fn untag(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let input: TagInput = input(body)?;
    let name = target(app, &input, true)?;
    let keys = input.tag_keys;
    for key in &keys {
        check_key(key)?;
    }
    with_store(app, move |conn| {
        if store::log_group(conn, &name)?.is_none() {
            return Ok(Err(LogsError::group_not_found()));
        }
        store::untag_log_group(conn, &name, &keys)?;
        Ok(Ok(json!({})))
    })
    .await
}

/// ListTagsForResource (`by_arn`) or ListTagsLogGroup: `{"tags": {...}}`.
pub(super) async fn list(app: &AppState, body: &[u8], by_arn: bool) -> Result<Value, LogsError> {
    let input: TagInput = input(body)?;
    let name = target(app, &input, by_arn)?;
    with_store(app, move |conn| {
        if store::log_group(conn, &name)?.is_none() {
            return Ok(Err(LogsError::group_not_found()));
        }
        Ok(Ok(json!({ "tags": store::log_group_tags(conn, &name)? })))
    })
    .await
}
