//! CloudWatch Logs' JSON 1.1 protocol (`POST /` with `X-Amz-Target: Logs_20140328.<Operation>`),
//! backed by the log lines the emulator already keeps for each execution environment.
//!
//! Every execution environment writes to `/aws/lambda/<function>` under its own stream, so a
//! tenant's lines are the lines of that tenant's streams. A log group exists once CreateLogGroup
//! made it or once an environment first logged to it, as Lambda creates its groups itself.
//! Groups (with their retention), streams and events live in the store; `pattern.rs` parses and
//! matches filter patterns, and `error.rs` shapes the service's errors.
//!
//! Reads first wait for the log writer to store every line emitted so far, so a caller that just
//! invoked a function sees the lines of that invoke the platform wrote (START, END, REPORT).
//! Retention is recorded and reported but events are never expired.

mod error;
mod pattern;
mod tags;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::clock::now_millis;
use crate::server::AppState;
use crate::store::{self, LogEventScan, StoredLogStream};

use error::LogsError;
use pattern::Pattern;

/// The retention periods CloudWatch Logs accepts, in days.
const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
/// DescribeLogGroups' and DescribeLogStreams' default and largest page.
const MAX_DESCRIBE: usize = 50;
/// GetLogEvents' and FilterLogEvents' default and largest page, in events.
const MAX_EVENTS: usize = 10_000;
/// A page of events ends before it holds this many bytes, counted as PutLogEvents counts them:
/// the message plus 26 bytes per event.
const PAGE_BYTES: usize = 1024 * 1024;
const EVENT_OVERHEAD: usize = 26;
/// How many events one FilterLogEvents call examines before it returns what it has with a
/// `nextToken`, so that a rare match in a large group cannot hold a request for long.
const SCAN_BUDGET: usize = 100_000;

/// Answers one CloudWatch Logs operation.
pub async fn handle(app: Arc<AppState>, operation: &str, body: &[u8]) -> Response {
    let result = match operation {
        "CreateLogGroup" => create_log_group(&app, body).await,
        "DeleteLogGroup" => delete_log_group(&app, body).await,
        "DescribeLogGroups" => describe_log_groups(&app, body).await,
        "PutRetentionPolicy" => put_retention_policy(&app, body).await,
        "DeleteRetentionPolicy" => delete_retention_policy(&app, body).await,
        "CreateLogStream" => create_log_stream(&app, body).await,
        "DescribeLogStreams" => describe_log_streams(&app, body).await,
        "PutLogEvents" => put_log_events(&app, body).await,
        "GetLogEvents" => get_log_events(&app, body).await,
        "FilterLogEvents" => filter_log_events(&app, body).await,
        "TagResource" => tags::tag(&app, body, true).await,
        "TagLogGroup" => tags::tag(&app, body, false).await,
        "UntagResource" => tags::untag(&app, body).await,
        "ListTagsForResource" => tags::list(&app, body, true).await,
        "ListTagsLogGroup" => tags::list(&app, body, false).await,
        other => Err(LogsError::unknown_operation(other)),
    };
    match result {
        Ok(body) => json_response(StatusCode::OK, body.to_string()),
        Err(error) => error.into_response(),
    }
}

/// A CloudWatch Logs response: its JSON protocol's content type and a request id.
fn json_response(status: StatusCode, body: String) -> Response {
    crate::aws_json::response("application/x-amz-json-1.1", status, body)
}

fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, LogsError> {
    crate::aws_json::parse(body).map_err(LogsError::serialization)
}

/// Runs `f` on the store's connection; `f` may fail with a CloudWatch Logs error of its own.
async fn with_store<T, F>(app: &AppState, f: F) -> Result<T, LogsError>
where
    T: Send + 'static,
    F: FnOnce(&mut rusqlite::Connection) -> Result<Result<T, LogsError>, store::StoreError>
        + Send
        + 'static,
{
    app.store.call(f).await?
}

/// Waits until every line emitted so far is stored, so that reads see them.
async fn flush_logs(app: &AppState) -> Result<(), LogsError> {
    let sink = Arc::clone(&app.log_sink);
    tokio::task::spawn_blocking(move || sink.flush())
        .await
        .map_err(|e| LogsError::internal(format!("log flush failed: {e}")))
}

/// Checks a log group name against CloudWatch Logs' constraints: 1 to 512 characters of
/// `[.\-_/#A-Za-z0-9]`.
fn group_name(name: Option<String>) -> Result<String, LogsError> {
    let name = name.ok_or_else(|| LogsError::missing("logGroupName"))?;
    let constraint = if name.is_empty() {
        "Member must have length greater than or equal to 1"
    } else if name.chars().count() > 512 {
        "Member must have length less than or equal to 512"
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#'))
    {
        "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
    } else {
        return Ok(name);
    };
    Err(LogsError::constraint(&name, "logGroupName", constraint))
}

/// The group a read names, by `logGroupName` or by `logGroupIdentifier` (a name or an ARN).
fn group_reference(name: Option<String>, identifier: Option<String>) -> Result<String, LogsError> {
    match (name, identifier) {
        (Some(_), Some(_)) => Err(LogsError::invalid(
            "LogGroupName and LogGroupIdentifier are mutually exclusive parameters.",
        )),
        (Some(name), None) => group_name(Some(name)),
        (None, Some(identifier)) => {
            let name = match identifier.split_once(":log-group:") {
                Some((_, rest)) => rest.strip_suffix(":*").unwrap_or(rest).to_string(),
                None => identifier,
            };
            group_name(Some(name))
        }
        (None, None) => Err(LogsError::missing("logGroupName")),
    }
}

fn stream_name(name: Option<String>) -> Result<String, LogsError> {
    let name = name.ok_or_else(|| LogsError::missing("logStreamName"))?;
    let constraint = if name.is_empty() {
        "Member must have length greater than or equal to 1"
    } else if name.chars().count() > 512 {
        "Member must have length less than or equal to 512"
    } else if name.contains([':', '*']) {
        "Member must satisfy regular expression pattern: [^:*]*"
    } else {
        return Ok(name);
    };
    Err(LogsError::constraint(&name, "logStreamName", constraint))
}

fn limit(limit: Option<i64>, max: usize) -> Result<usize, LogsError> {
    match limit {
        None => Ok(max),
        Some(n) if n >= 1 && usize::try_from(n).is_ok_and(|n| n <= max) => {
            Ok(usize::try_from(n).unwrap_or(max))
        }
        Some(n) if n < 1 => Err(LogsError::constraint(
            &n.to_string(),
            "limit",
            "Member must have value greater than or equal to 1",
        )),
        Some(n) => Err(LogsError::constraint(
            &n.to_string(),
            "limit",
            &format!("Member must have value less than or equal to {max}"),
        )),
    }
}

fn group_arn(app: &AppState, name: &str) -> String {
    format!(
        "arn:aws:logs:{}:{}:log-group:{name}",
        app.config.region, app.config.account_id
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupInput {
    log_group_name: Option<String>,
    kms_key_id: Option<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

async fn create_log_group(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let input = input::<GroupInput>(body)?;
    let name = group_name(input.log_group_name)?;
    let kms_key_id = input.kms_key_id;
    tags::check_tags(&input.tags)?;
    let tags = input.tags;
    if let Some(key) = &kms_key_id
        && key.chars().count() > 256
    {
        return Err(LogsError::constraint(
            key,
            "kmsKeyId",
            "Member must have length less than or equal to 256",
        ));
    }
    with_store(app, move |conn| {
        if store::create_log_group(conn, &name, now_millis(), kms_key_id.as_deref())? {
            store::tag_log_group(conn, &name, &tags)?;
            Ok(Ok(json!({})))
        } else {
            Ok(Err(LogsError::already_exists("log group")))
        }
    })
    .await
}

async fn delete_log_group(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let name = group_name(input::<GroupInput>(body)?.log_group_name)?;
    // Lines still queued for this group would bring it back right after the delete.
    flush_logs(app).await?;
    with_store(app, move |conn| {
        if store::delete_log_group(conn, &name)? {
            Ok(Ok(json!({})))
        } else {
            Ok(Err(LogsError::group_not_found()))
        }
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeGroupsInput {
    log_group_name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

async fn describe_log_groups(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let input: DescribeGroupsInput = input(body)?;
    let limit = limit(input.limit, MAX_DESCRIBE)?;
    flush_logs(app).await?;
    let prefix = input.log_group_name_prefix;
    let after = input.next_token;
    let mut groups = app
        .store
        .call(move |conn| store::log_groups(conn, prefix.as_deref(), after.as_deref(), limit + 1))
        .await?;
    let next_token = if groups.len() > limit {
        groups.truncate(limit);
        groups.last().map(|group| group.name.clone())
    } else {
        None
    };
    let groups: Vec<Value> = groups
        .iter()
        .map(|group| {
            let arn = group_arn(app, &group.name);
            let mut out = json!({
                "logGroupName": group.name,
                "creationTime": group.created_ms,
                "metricFilterCount": 0,
                "arn": format!("{arn}:*"),
                "logGroupArn": arn,
                "storedBytes": 0,
                "logGroupClass": "STANDARD",
            });
            if let Some(days) = group.retention_days {
                out["retentionInDays"] = days.into();
            }
            if let Some(key) = &group.kms_key_id {
                out["kmsKeyId"] = key.clone().into();
            }
            out
        })
        .collect();
    let mut out = json!({ "logGroups": groups });
    if let Some(token) = next_token {
        out["nextToken"] = token.into();
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetentionInput {
    log_group_name: Option<String>,
    retention_in_days: Option<i64>,
}

async fn put_retention_policy(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let input: RetentionInput = input(body)?;
    let name = group_name(input.log_group_name)?;
    let days = input
        .retention_in_days
        .ok_or_else(|| LogsError::missing("retentionInDays"))?;
    if !RETENTION_DAYS.contains(&days) {
        let allowed: Vec<String> = RETENTION_DAYS.iter().map(i64::to_string).collect();
        return Err(LogsError::constraint(
            &days.to_string(),
            "retentionInDays",
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ));
    }
    set_retention(app, name, Some(days)).await
}

async fn delete_retention_policy(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let name = group_name(input::<GroupInput>(body)?.log_group_name)?;
    set_retention(app, name, None).await
}

async fn set_retention(
    app: &AppState,
    name: String,
    days: Option<i64>,
) -> Result<Value, LogsError> {
    flush_logs(app).await?;
    with_store(app, move |conn| {
        if store::set_log_retention(conn, &name, days)? {
            Ok(Ok(json!({})))
        } else {
            Ok(Err(LogsError::group_not_found()))
        }
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamInput {
    log_group_name: Option<String>,
    log_stream_name: Option<String>,
}

async fn create_log_stream(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let input: StreamInput = input(body)?;
    let group = group_name(input.log_group_name)?;
    let stream = stream_name(input.log_stream_name)?;
    flush_logs(app).await?;
    with_store(app, move |conn| {
        if store::log_group(conn, &group)?.is_none() {
            return Ok(Err(LogsError::group_not_found()));
        }
        if store::create_log_stream(conn, &group, &stream, now_millis())? {
            Ok(Ok(json!({})))
        } else {
            Ok(Err(LogsError::already_exists("log stream")))
        }
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeStreamsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    #[serde(default)]
    descending: bool,
    next_token: Option<String>,
    limit: Option<i64>,
}

async fn describe_log_streams(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let input: DescribeStreamsInput = input(body)?;
    let group = group_reference(input.log_group_name, input.log_group_identifier)?;
    let limit = limit(input.limit, MAX_DESCRIBE)?;
    let by_time = match input.order_by.as_deref() {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(other) => {
            return Err(LogsError::constraint(
                other,
                "orderBy",
                "Member must satisfy enum value set: [LogStreamName, LastEventTime]",
            ));
        }
    };
    if by_time && input.log_stream_name_prefix.is_some() {
        return Err(LogsError::invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    flush_logs(app).await?;
    let lookup = group.clone();
    let streams = with_store(app, move |conn| {
        if store::log_group(conn, &lookup)?.is_none() {
            return Ok(Err(LogsError::group_not_found()));
        }
        Ok(Ok(store::log_streams(conn, &lookup)?))
    })
    .await?;
    let prefix = input.log_stream_name_prefix.unwrap_or_default();
    let mut streams: Vec<StoredLogStream> = streams
        .into_iter()
        .filter(|stream| stream.name.starts_with(&prefix))
        .collect();
    // Streams that never logged sort first by time, as their last event time is unset.
    let key = |stream: &StoredLogStream| {
        (
            if by_time { stream.last_event_ms } else { None },
            stream.name.clone(),
        )
    };
    streams.sort_by_key(key);
    if input.descending {
        streams.reverse();
    }
    let start = match &input.next_token {
        None => 0,
        Some(token) => {
            streams
                .iter()
                .position(|stream| &stream.name == token)
                .ok_or_else(LogsError::invalid_token)?
                + 1
        }
    };
    let page: Vec<&StoredLogStream> = streams.iter().skip(start).take(limit).collect();
    let next_token = (start + page.len() < streams.len())
        .then(|| page.last().map(|stream| stream.name.clone()))
        .flatten();
    let arn = group_arn(app, &group);
    let page: Vec<Value> = page
        .iter()
        .map(|stream| {
            let mut out = json!({
                "logStreamName": stream.name,
                "creationTime": stream.created_ms,
                "arn": format!("{arn}:log-stream:{}", stream.name),
                "storedBytes": stream.stored_bytes,
            });
            if let (Some(first), Some(last)) = (stream.first_event_ms, stream.last_event_ms) {
                out["firstEventTimestamp"] = first.into();
                out["lastEventTimestamp"] = last.into();
                out["lastIngestionTime"] = last.into();
            }
            out
        })
        .collect();
    let mut out = json!({ "logStreams": page });
    if let Some(token) = next_token {
        out["nextToken"] = token.into();
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutEventsInput {
    log_group_name: Option<String>,
    log_stream_name: Option<String>,
    log_events: Option<Vec<InputEvent>>,
}

#[derive(Deserialize)]
struct InputEvent {
    timestamp: i64,
    message: String,
}

async fn put_log_events(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let input: PutEventsInput = input(body)?;
    let group = group_name(input.log_group_name)?;
    let stream = stream_name(input.log_stream_name)?;
    let events = input
        .log_events
        .ok_or_else(|| LogsError::missing("logEvents"))?;
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(LogsError::constraint(
            &events.len().to_string(),
            "logEvents",
            "Member must have length between 1 and 10000",
        ));
    }
    if events.windows(2).any(|w| w[1].timestamp < w[0].timestamp) {
        return Err(LogsError::invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    let events: Vec<(i64, String)> = events
        .into_iter()
        .map(|event| (event.timestamp, event.message))
        .collect();
    flush_logs(app).await?;
    with_store(app, move |conn| {
        let Some(log_group) = store::log_group(conn, &group)? else {
            return Ok(Err(LogsError::group_not_found()));
        };
        if !store::log_stream_exists(conn, &group, &stream)? {
            return Ok(Err(LogsError::stream_not_found()));
        }
        let (accepted, rejected) = accepted_events(&events, now_millis(), log_group.retention_days);
        if !accepted.is_empty() {
            store::put_log_events(conn, &group, &stream, accepted)?;
        }
        let mut out = json!({});
        if !rejected.is_empty() {
            out["rejectedLogEventsInfo"] = Value::Object(rejected);
        }
        Ok(Ok(out))
    })
    .await
}

/// CloudWatch Logs takes events from 14 days (or the group's retention, when shorter) back to
/// 2 hours ahead. Events arrive in time order, so the too old (or expired) ones are a prefix
/// and the too new ones a suffix; the answer names where each ends or starts.
fn accepted_events(
    events: &[(i64, String)],
    now_ms: i64,
    retention_days: Option<i64>,
) -> (&[(i64, String)], serde_json::Map<String, Value>) {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let oldest = now_ms - 14 * DAY_MS;
    let newest = now_ms + 2 * 3600 * 1000;
    let expired_before = retention_days.map(|days| now_ms - days * DAY_MS);
    let mut rejected = serde_json::Map::new();
    let too_old = events.iter().take_while(|(t, _)| *t < oldest).count();
    let expired = match expired_before {
        Some(limit) => events.iter().take_while(|(t, _)| *t < limit).count(),
        None => 0,
    };
    let start = too_old.max(expired);
    if too_old > 0 {
        rejected.insert("tooOldLogEventEndIndex".into(), (too_old - 1).into());
    }
    if expired > 0 {
        rejected.insert("expiredLogEventEndIndex".into(), (expired - 1).into());
    }
    let too_new = events.iter().rev().take_while(|(t, _)| *t > newest).count();
    let end = (events.len() - too_new).max(start);
    if too_new > 0 {
        rejected.insert(
            "tooNewLogEventStartIndex".into(),
            (events.len() - too_new).into(),
        );
    }
    (&events[start..end], rejected)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetEventsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

/// A position between two events, (timestamp, seq) of the event just before it.
type Position = (i64, i64);

fn parse_position(text: &str) -> Option<Position> {
    let (timestamp, seq) = text.split_once('/')?;
    Some((timestamp.parse().ok()?, seq.parse().ok()?))
}

async fn get_log_events(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let input: GetEventsInput = input(body)?;
    let group = group_reference(input.log_group_name, input.log_group_identifier)?;
    let stream = stream_name(input.log_stream_name)?;
    let limit = limit(input.limit, MAX_EVENTS)?;
    // GetLogEvents' tokens are `f/<timestamp>/<seq>` (events after that one, oldest first) and
    // `b/<timestamp>/<seq>` (events before it, newest first); without one, the page starts at
    // the head or, by default, ends at the tail.
    let (forward, from) = match input.next_token.as_deref() {
        None => (input.start_from_head.unwrap_or(false), None),
        Some(token) => {
            let (direction, position) = token
                .split_at_checked(2)
                .ok_or_else(LogsError::invalid_token)?;
            let position = parse_position(position).ok_or_else(LogsError::invalid_token)?;
            match direction {
                "f/" => (true, Some(position)),
                "b/" => (false, Some(position)),
                _ => return Err(LogsError::invalid_token()),
            }
        }
    };
    flush_logs(app).await?;
    let (start_ms, end_before_ms) = (input.start_time, input.end_time);
    let events = with_store(app, move |conn| {
        if store::log_group(conn, &group)?.is_none() {
            return Ok(Err(LogsError::group_not_found()));
        }
        if !store::log_stream_exists(conn, &group, &stream)? {
            return Ok(Err(LogsError::stream_not_found()));
        }
        let streams = [stream];
        let scan = LogEventScan {
            log_group: &group,
            log_streams: Some(&streams),
            start_ms,
            end_before_ms,
            from,
            forward,
        };
        let mut events = Vec::new();
        let mut bytes = 0;
        store::scan_log_events(conn, &scan, |event| {
            bytes += event.message.len() + EVENT_OVERHEAD;
            if !events.is_empty() && bytes > PAGE_BYTES {
                return false;
            }
            events.push(event);
            events.len() < limit
        })?;
        if !forward {
            events.reverse();
        }
        Ok(Ok(events))
    })
    .await?;
    let (next_forward, next_backward) = match (events.first(), events.last()) {
        (Some(first), Some(last)) => (
            (last.timestamp_ms, last.seq),
            (first.timestamp_ms, first.seq),
        ),
        // An empty page leaves both tokens where the request was, so that a caller following
        // `nextForwardToken` sees the same token back and knows it reached the end.
        _ => {
            let here = from.unwrap_or(if forward {
                (i64::MIN, i64::MIN)
            } else {
                (i64::MAX, i64::MAX)
            });
            (here, here)
        }
    };
    let events: Vec<Value> = events
        .iter()
        .map(|event| {
            json!({
                "timestamp": event.timestamp_ms,
                "message": event.message,
                "ingestionTime": event.timestamp_ms,
            })
        })
        .collect();
    Ok(json!({
        "events": events,
        "nextForwardToken": format!("f/{}/{}", next_forward.0, next_forward.1),
        "nextBackwardToken": format!("b/{}/{}", next_backward.0, next_backward.1),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

async fn filter_log_events(app: &AppState, body: &[u8]) -> Result<Value, LogsError> {
    let input: FilterInput = input(body)?;
    let group = group_reference(input.log_group_name, input.log_group_identifier)?;
    let limit = limit(input.limit, MAX_EVENTS)?;
    if input.log_stream_names.is_some() && input.log_stream_name_prefix.is_some() {
        return Err(LogsError::invalid(
            "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
        ));
    }
    let pattern = Pattern::parse(input.filter_pattern.as_deref().unwrap_or(""))
        .map_err(|e| LogsError::invalid(e.to_string()))?;
    let from = match input.next_token.as_deref() {
        None => None,
        Some(token) => Some(parse_position(token).ok_or_else(LogsError::invalid_token)?),
    };
    flush_logs(app).await?;
    let (names, prefix) = (input.log_stream_names, input.log_stream_name_prefix);
    // FilterLogEvents' end time is inclusive, the scan's bound exclusive.
    let (start_ms, end_before_ms) = (
        input.start_time,
        input.end_time.map(|end| end.saturating_add(1)),
    );
    let (events, next) = with_store(app, move |conn| {
        if store::log_group(conn, &group)?.is_none() {
            return Ok(Err(LogsError::group_not_found()));
        }
        let streams = match (names, prefix) {
            (Some(names), _) => Some(names),
            (None, Some(prefix)) => Some(
                store::log_streams(conn, &group)?
                    .into_iter()
                    .map(|stream| stream.name)
                    .filter(|name| name.starts_with(&prefix))
                    .collect(),
            ),
            (None, None) => None,
        };
        if streams.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Ok((Vec::new(), None)));
        }
        let scan = LogEventScan {
            log_group: &group,
            log_streams: streams.as_deref(),
            start_ms,
            end_before_ms,
            from,
            forward: true,
        };
        let mut events = Vec::new();
        let mut bytes = 0;
        let mut scanned = 0;
        let mut next: Option<Position> = None;
        store::scan_log_events(conn, &scan, |event| {
            scanned += 1;
            let position = (event.timestamp_ms, event.seq);
            if pattern.matches(&event.message) {
                bytes += event.message.len() + EVENT_OVERHEAD;
                if !events.is_empty() && bytes > PAGE_BYTES {
                    // This event starts the next page: resume just before it.
                    next = events
                        .last()
                        .map(|e: &store::StoredLogEvent| (e.timestamp_ms, e.seq));
                    return false;
                }
                events.push(event);
                if events.len() >= limit {
                    next = Some(position);
                    return false;
                }
            }
            if scanned >= SCAN_BUDGET {
                next = Some(position);
                return false;
            }
            true
        })?;
        Ok(Ok((events, next)))
    })
    .await?;
    let events: Vec<Value> = events
        .iter()
        .map(|event| {
            json!({
                "logStreamName": event.log_stream,
                "timestamp": event.timestamp_ms,
                "message": event.message,
                "ingestionTime": event.timestamp_ms,
                "eventId": event.seq.to_string(),
            })
        })
        .collect();
    let mut out = json!({ "events": events });
    if let Some((timestamp, seq)) = next {
        out["nextToken"] = format!("{timestamp}/{seq}").into();
    }
    Ok(out)
}
