//! CloudWatch Logs through the real `aws-sdk-cloudwatchlogs` client: log groups and retention,
//! one stream per execution environment, filter patterns that pick one tenant's lines, time
//! windows, and paging that visits every event once.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatchlogs::types::{InputLogEvent, OrderBy};
use emulator::Emulator;
use serde_json::{Value, json};

use crate::runtime::{Probe, deploy, invoke};
use crate::support;

fn logs_client(emulator: &Emulator) -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(&support::sdk_config(&emulator.endpoint()))
}

async fn group_names(logs: &aws_sdk_cloudwatchlogs::Client, prefix: &str) -> Vec<String> {
    logs.describe_log_groups()
        .log_group_name_prefix(prefix)
        .send()
        .await
        .expect("DescribeLogGroups")
        .log_groups()
        .iter()
        .filter_map(|group| group.log_group_name().map(str::to_owned))
        .collect()
}

async fn retention(logs: &aws_sdk_cloudwatchlogs::Client, name: &str) -> Option<i32> {
    let output = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .expect("DescribeLogGroups");
    let group = output
        .log_groups()
        .iter()
        .find(|group| group.log_group_name() == Some(name))
        .unwrap_or_else(|| panic!("{name} is listed"));
    group.retention_in_days()
}

/// Every event FilterLogEvents returns for `pattern`, following `nextToken` with pages of `limit`.
async fn filter_all(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    pattern: &str,
    limit: i32,
) -> Vec<aws_sdk_cloudwatchlogs::types::FilteredLogEvent> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let output = logs
            .filter_log_events()
            .log_group_name(group)
            .filter_pattern(pattern)
            .limit(limit)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("FilterLogEvents");
        assert!(
            output.events().len() <= limit as usize,
            "a page respects the limit"
        );
        events.extend(output.events().iter().cloned());
        token = output.next_token().map(str::to_owned);
        if token.is_none() {
            return events;
        }
    }
    panic!("FilterLogEvents never stopped returning a nextToken");
}

fn messages(events: &[aws_sdk_cloudwatchlogs::types::FilteredLogEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| event.message().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn log_groups_are_created_listed_retained_and_deleted() {
    let (emulator, _dir) = support::start().await;
    let logs = logs_client(&emulator);
    for name in ["/represent/dev/app", "/represent/dev/other", "/elsewhere"] {
        logs.create_log_group()
            .log_group_name(name)
            .send()
            .await
            .expect("CreateLogGroup");
    }
    let again = logs
        .create_log_group()
        .log_group_name("/represent/dev/app")
        .send()
        .await
        .expect_err("a second create fails");
    assert!(
        again
            .as_service_error()
            .is_some_and(|e| e.is_resource_already_exists_exception()),
        "{again:?}"
    );

    assert_eq!(
        group_names(&logs, "/represent/").await,
        ["/represent/dev/app", "/represent/dev/other"]
    );
    let described = logs
        .describe_log_groups()
        .log_group_name_prefix("/represent/dev/app")
        .send()
        .await
        .expect("DescribeLogGroups");
    let group = &described.log_groups()[0];
    assert_eq!(
        group.arn(),
        Some("arn:aws:logs:us-east-1:000000000000:log-group:/represent/dev/app:*")
    );
    assert!(group.creation_time().is_some_and(|t| t > 0));
    assert_eq!(group.retention_in_days(), None);

    logs.put_retention_policy()
        .log_group_name("/represent/dev/app")
        .retention_in_days(14)
        .send()
        .await
        .expect("PutRetentionPolicy");
    assert_eq!(retention(&logs, "/represent/dev/app").await, Some(14));
    let invalid = logs
        .put_retention_policy()
        .log_group_name("/represent/dev/app")
        .retention_in_days(13)
        .send()
        .await
        .expect_err("13 days is not a retention CloudWatch Logs offers");
    assert!(
        invalid
            .as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_exception()),
        "{invalid:?}"
    );
    assert_eq!(
        retention(&logs, "/represent/dev/app").await,
        Some(14),
        "unchanged"
    );
    logs.delete_retention_policy()
        .log_group_name("/represent/dev/app")
        .send()
        .await
        .expect("DeleteRetentionPolicy");
    assert_eq!(retention(&logs, "/represent/dev/app").await, None);

    // One group per page still lists every group once, in name order.
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = logs
            .describe_log_groups()
            .limit(1)
            .set_next_token(token)
            .send()
            .await
            .expect("DescribeLogGroups");
        assert!(page.log_groups().len() <= 1);
        paged.extend(
            page.log_groups()
                .iter()
                .filter_map(|g| g.log_group_name().map(str::to_owned)),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(
        paged,
        ["/elsewhere", "/represent/dev/app", "/represent/dev/other"]
    );

    logs.delete_log_group()
        .log_group_name("/represent/dev/app")
        .send()
        .await
        .expect("DeleteLogGroup");
    assert_eq!(
        group_names(&logs, "/represent/").await,
        ["/represent/dev/other"]
    );
    let gone = logs
        .delete_log_group()
        .log_group_name("/represent/dev/app")
        .send()
        .await
        .expect_err("the group is gone");
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{gone:?}"
    );
    let gone = logs
        .put_retention_policy()
        .log_group_name("/represent/dev/app")
        .retention_in_days(7)
        .send()
        .await
        .expect_err("the group is gone");
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{gone:?}"
    );
    emulator.shutdown().await;
}

/// Writes `lines` (JSON values or plain text) to a new stream of a new group, one millisecond
/// apart starting at `base`.
async fn put_lines(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    base: i64,
    lines: &[String],
) {
    let _ = logs.create_log_group().log_group_name(group).send().await;
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .expect("CreateLogStream");
    let events: Vec<InputLogEvent> = lines
        .iter()
        .zip(0..)
        .map(|(line, i)| {
            InputLogEvent::builder()
                .timestamp(base + i)
                .message(line)
                .build()
                .expect("log event")
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("PutLogEvents");
}

#[tokio::test]
async fn filter_patterns_time_windows_and_errors() {
    let (emulator, _dir) = support::start().await;
    let logs = logs_client(&emulator);
    // An hour ago, whole seconds: CloudWatch Logs takes events from the last 14 days only.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now - 3_600_000) / 1000 * 1000;
    let app_line = |tenant: &str, level: &str, n: u32| {
        json!({"level": level, "tenantId": tenant, "message": format!("looked up {n}"), "count": n})
            .to_string()
    };
    let lines = vec![
        app_line("TX", "INFO", 38),
        app_line("CA", "ERROR", 52),
        "plain ERROR line without JSON".to_string(),
        json!({"type": "platform.report", "record": {"tenantId": "TX"}}).to_string(),
        app_line("TX", "ERROR", 40),
        json!({"type": "platform.report", "record": {"tenantId": "CA"}}).to_string(),
    ];
    put_lines(&logs, "/app/api", "s1", base, &lines).await;

    let texas = filter_all(&logs, "/app/api", r#"{ $.tenantId = "TX" }"#, 100).await;
    assert_eq!(messages(&texas), [lines[0].clone(), lines[4].clone()]);
    let texas_everywhere = filter_all(
        &logs,
        "/app/api",
        r#"{ $.record.tenantId = "TX" || $.tenantId = "TX" }"#,
        100,
    )
    .await;
    assert_eq!(
        messages(&texas_everywhere),
        [lines[0].clone(), lines[3].clone(), lines[4].clone()]
    );
    let errors = filter_all(&logs, "/app/api", "ERROR", 100).await;
    assert_eq!(
        messages(&errors),
        [lines[1].clone(), lines[2].clone(), lines[4].clone()],
        "a plain term matches JSON and plain lines alike"
    );
    let counted = filter_all(
        &logs,
        "/app/api",
        "{ $.count > 39 && $.level = \"ERROR\" }",
        100,
    )
    .await;
    assert_eq!(messages(&counted), [lines[1].clone(), lines[4].clone()]);
    let first = &texas[0];
    assert_eq!(first.log_stream_name(), Some("s1"));
    assert_eq!(first.timestamp(), Some(base));
    assert!(first.event_id().is_some() && first.ingestion_time().is_some());

    // startTime and endTime are both inclusive.
    let window = logs
        .filter_log_events()
        .log_group_name("/app/api")
        .start_time(base + 1)
        .end_time(base + 3)
        .send()
        .await
        .expect("FilterLogEvents");
    let stamps: Vec<i64> = window
        .events()
        .iter()
        .filter_map(|e| e.timestamp())
        .collect();
    assert_eq!(stamps, [base + 1, base + 2, base + 3]);

    let missing = logs
        .filter_log_events()
        .log_group_name("/aws/lambda/nothing-here")
        .send()
        .await
        .expect_err("no such group");
    let service = missing.as_service_error().expect("a service error");
    assert!(service.is_resource_not_found_exception(), "{missing:?}");
    assert_eq!(
        aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::message(service),
        Some("The specified log group does not exist.")
    );
    let invalid = logs
        .filter_log_events()
        .log_group_name("/app/api")
        .filter_pattern(r#"{ $.tenantId = "TX" "#)
        .send()
        .await
        .expect_err("an unclosed JSON pattern");
    let service = invalid.as_service_error().expect("a service error");
    assert!(service.is_invalid_parameter_exception(), "{invalid:?}");
    assert_eq!(
        aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::message(service),
        Some("Invalid filter pattern")
    );
    emulator.shutdown().await;
}

/// The tenant a platform line names (`record.tenantId`), for lines of JSON log format.
fn platform_tenant(message: &str) -> Option<String> {
    let value: Value = serde_json::from_str(message).ok()?;
    value["record"]["tenantId"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn each_tenant_logs_to_its_own_streams_and_filters_pick_one_tenant() {
    let (emulator, dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    let probe = Probe {
        per_tenant: true,
        json_logs: true,
        ..Probe::default()
    };
    deploy(&emulator, &lambda, "logger", probe).await;
    for _ in 0..2 {
        invoke(
            &lambda,
            "logger",
            Some("TX"),
            json!({"op": "log", "lines": 3}),
        )
        .await;
    }
    invoke(
        &lambda,
        "logger",
        Some("CA"),
        json!({"op": "log", "lines": 2}),
    )
    .await;
    // A function's stdout reaches the log through a pipe; stopping the emulator drains every
    // environment's output, so the restarted one holds all of it without any waiting.
    emulator.shutdown().await;
    let emulator = Emulator::start(support::config(dir.path()))
        .await
        .expect("emulator restarts");
    let logs = logs_client(&emulator);
    let group = "/aws/lambda/logger";

    assert_eq!(
        group_names(&logs, "/aws/lambda/").await,
        [group],
        "Lambda made the group"
    );
    let streams = logs
        .describe_log_streams()
        .log_group_name(group)
        .order_by(OrderBy::LastEventTime)
        .descending(true)
        .send()
        .await
        .expect("DescribeLogStreams");
    assert_eq!(
        streams.log_streams().len(),
        2,
        "one stream per environment: {streams:?}"
    );

    let mut tenant_of_stream = BTreeMap::new();
    for stream in streams.log_streams() {
        let name = stream.log_stream_name().expect("stream name");
        let (date, env) = name
            .split_once("/[$LATEST]")
            .expect("YYYY/MM/DD/[$LATEST]<id>");
        assert_eq!(date.len(), 10, "{name}");
        assert!(
            env.len() == 32 && env.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}"
        );
        assert!(stream.first_event_timestamp() <= stream.last_event_timestamp());

        // GetLogEvents from the head, two at a time, until the forward token stops moving.
        let mut paged = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let page = logs
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(name)
                .start_from_head(true)
                .limit(2)
                .set_next_token(token.clone())
                .send()
                .await
                .expect("GetLogEvents");
            assert!(page.events().len() <= 2);
            paged.extend(
                page.events()
                    .iter()
                    .filter_map(|e| e.message().map(str::to_owned)),
            );
            let next = page.next_forward_token().map(str::to_owned);
            if next == token {
                break;
            }
            token = next;
        }
        let whole = logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(name)
            .start_from_head(true)
            .send()
            .await
            .expect("GetLogEvents");
        let whole: Vec<String> = whole
            .events()
            .iter()
            .filter_map(|e| e.message().map(str::to_owned))
            .collect();
        assert_eq!(
            paged, whole,
            "paging forward visits every event once, in order"
        );

        let tenants: BTreeSet<String> = whole.iter().filter_map(|m| platform_tenant(m)).collect();
        assert_eq!(tenants.len(), 1, "a stream serves one tenant: {whole:?}");
        let tenant = tenants.into_iter().next().expect("one tenant");
        let probe_lines = whole
            .iter()
            .filter(|m| m.starts_with("probe log line"))
            .count();
        assert_eq!(probe_lines, if tenant == "TX" { 6 } else { 2 }, "{whole:?}");
        tenant_of_stream.insert(name.to_owned(), tenant);
    }
    let tenants: BTreeSet<&str> = tenant_of_stream.values().map(String::as_str).collect();
    assert_eq!(tenants, BTreeSet::from(["CA", "TX"]));

    // Texas's platform lines: START, runtimeDone and REPORT for each of its two invokes.
    let texas = filter_all(
        &logs,
        group,
        r#"{ $.record.tenantId = "TX" || $.tenantId = "TX" }"#,
        100,
    )
    .await;
    assert_eq!(texas.len(), 6, "{:?}", messages(&texas));
    for event in &texas {
        let stream = event.log_stream_name().expect("stream");
        assert_eq!(tenant_of_stream[stream], "TX");
        assert_eq!(
            platform_tenant(event.message().unwrap_or_default()).as_deref(),
            Some("TX")
        );
    }
    let probe_lines = filter_all(&logs, group, r#""probe log line""#, 100).await;
    assert_eq!(probe_lines.len(), 8);
    let not_line_two = filter_all(&logs, group, r#""probe log line" -"line 2""#, 100).await;
    assert_eq!(not_line_two.len(), 6, "{:?}", messages(&not_line_two));

    // Small pages visit every event exactly once, in timestamp order.
    let all = filter_all(&logs, group, "", 10_000).await;
    let paged = filter_all(&logs, group, "", 2).await;
    let ids = |events: &[aws_sdk_cloudwatchlogs::types::FilteredLogEvent]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| e.event_id().map(str::to_owned))
            .collect()
    };
    assert_eq!(ids(&paged), ids(&all));
    assert_eq!(
        all.len(),
        8 + 9,
        "8 probe lines and 3 platform lines per invoke"
    );
    let stamps: Vec<i64> = all.iter().filter_map(|e| e.timestamp()).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");

    logs.delete_log_group()
        .log_group_name(group)
        .send()
        .await
        .expect("DeleteLogGroup");
    let gone = logs
        .filter_log_events()
        .log_group_name(group)
        .send()
        .await
        .expect_err("the group and its events are gone");
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{gone:?}"
    );
    emulator.shutdown().await;
}

async fn tags_of(logs: &aws_sdk_cloudwatchlogs::Client, arn: &str) -> BTreeMap<String, String> {
    logs.list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("ListTagsForResource")
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn log_group_tags_are_created_added_removed_and_go_with_the_group() {
    let (emulator, _dir) = support::start().await;
    let logs = logs_client(&emulator);
    let name = "/aws/lambda/represent-dev-counties";
    logs.create_log_group()
        .log_group_name(name)
        .tags("deployer:app", "represent")
        .tags("deployer:stage", "dev")
        .send()
        .await
        .expect("CreateLogGroup with tags");
    let listed = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .expect("DescribeLogGroups");
    let group = &listed.log_groups()[0];
    let arn = group.log_group_arn().expect("logGroupArn").to_string();
    assert_eq!(group.arn(), Some(format!("{arn}:*").as_str()));
    let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        tags_of(&logs, &arn).await,
        tags(&[("deployer:app", "represent"), ("deployer:stage", "dev")])
    );

    logs.tag_resource()
        .resource_arn(&arn)
        .tags("deployer:stage", "dev-2")
        .tags("team", "civic")
        .send()
        .await
        .expect("TagResource");
    logs.untag_resource()
        .resource_arn(&arn)
        .tag_keys("deployer:app")
        .tag_keys("never-set")
        .send()
        .await
        .expect("UntagResource ignores keys that are not set");
    assert_eq!(
        tags_of(&logs, &arn).await,
        tags(&[("deployer:stage", "dev-2"), ("team", "civic")])
    );

    // The ARN with DescribeLogGroups' `:*` is not a tagging ARN; a reserved key is refused.
    let star = logs
        .list_tags_for_resource()
        .resource_arn(format!("{arn}:*"))
        .send()
        .await
        .expect_err("the :* form is refused");
    assert!(
        star.as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_exception()),
        "{star:?}"
    );
    let reserved = logs
        .tag_resource()
        .resource_arn(&arn)
        .tags("aws:owner", "me")
        .send()
        .await
        .expect_err("aws: keys are reserved");
    assert!(
        reserved
            .as_service_error()
            .is_some_and(|e| e.is_invalid_parameter_exception()),
        "{reserved:?}"
    );

    // A deleted group's tags go with it: the same name created again has none.
    logs.delete_log_group()
        .log_group_name(name)
        .send()
        .await
        .expect("DeleteLogGroup");
    let missing = logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect_err("a deleted group has no tags to list");
    assert!(
        missing
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{missing:?}"
    );
    logs.create_log_group()
        .log_group_name(name)
        .send()
        .await
        .expect("CreateLogGroup");
    assert_eq!(tags_of(&logs, &arn).await, BTreeMap::new());
}

/// The thread that stores log lines shares the cores with the functions: it runs at a lower
/// priority than the invoke path, so that an invoke never waits for it.
#[tokio::test]
async fn the_log_writer_runs_below_the_invoke_path() {
    let (emulator, _dir) = support::start().await;
    // Linux keeps a nice value per thread: field 19 of /proc/self/task/<tid>/stat.
    let nice = |task: &std::path::Path| -> Option<i64> {
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        // The command name may hold spaces; the fields after it do not.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        fields.get(16)?.parse().ok()
    };
    // Thread names are cut to 15 bytes.
    let writers: Vec<i64> = std::fs::read_dir("/proc/self/task")
        .expect("list this process's threads")
        .filter_map(|task| {
            let task = task.ok()?.path();
            let comm = std::fs::read_to_string(task.join("comm")).ok()?;
            (comm.trim_end() == "emulator-log-wr").then(|| nice(&task))?
        })
        .collect();
    assert!(!writers.is_empty(), "no log writer thread was found");
    assert!(writers.iter().all(|nice| *nice == 10), "{writers:?}");
    // This thread runs the emulator's invokes in this test; only the writer was lowered.
    assert_eq!(nice(std::path::Path::new("/proc/thread-self")), Some(0));
    emulator.shutdown().await;
}
