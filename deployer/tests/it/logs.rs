//! Reading logs back: one tenant's lines through FilterLogEvents, and per-tenant statistics from
//! `platform.report` records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatchlogs::Client as Logs;
use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput;
use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use aws_smithy_mocks::mock;
use deployer::logs::{PRICE_PER_GB_ENVIRONMENT, nearest_rank, tenant_filter_pattern};
use deployer::{ReportRecord, tenant_events, tenant_stats};

use super::support::clients_logs;

const REPS: &str = "/aws/lambda/represent-dev-representatives";
const COUNTIES: &str = "/aws/lambda/represent-dev-counties";

fn event(id: &str, stream: &str, ts: i64, message: &str) -> FilteredLogEvent {
    FilteredLogEvent::builder()
        .event_id(id)
        .log_stream_name(stream)
        .timestamp(ts)
        .message(message)
        .build()
}

#[tokio::test]
async fn tenant_lines_use_the_json_filter_follow_pages_and_merge_newest_last() {
    let patterns = Arc::new(Mutex::new(Vec::new()));
    let seen = patterns.clone();
    let reps1 = mock!(Logs::filter_log_events)
        .match_requests(move |r| {
            seen.lock()
                .expect("lock")
                .push(r.filter_pattern().unwrap_or_default().to_string());
            r.log_group_name() == Some(REPS) && r.next_token().is_none()
        })
        .then_output(|| {
            FilterLogEventsOutput::builder()
                .events(event("1", "s1", 100, "first"))
                .events(event("2", "s1", 300, "third"))
                .next_token("more")
                .build()
        });
    let reps2 = mock!(Logs::filter_log_events)
        .match_requests(|r| {
            r.log_group_name() == Some(REPS)
                && r.next_token() == Some("more")
                && r.start_time() == Some(50)
                && r.end_time() == Some(1000)
        })
        .then_output(|| {
            FilterLogEventsOutput::builder()
                .events(event("3", "s1", 500, "fifth"))
                .build()
        });
    let counties = mock!(Logs::filter_log_events)
        .match_requests(|r| r.log_group_name() == Some(COUNTIES))
        .then_output(|| {
            FilterLogEventsOutput::builder()
                .events(event("4", "s2", 200, "second"))
                .events(event("5", "s2", 400, "fourth"))
                .build()
        });
    let c = clients_logs(&[], &[], &[], &[&reps1, &reps2, &counties]);

    let groups = vec![REPS.to_string(), COUNTIES.to_string()];
    let lines = tenant_events(&c, &groups, "TX", 50, Some(1000))
        .await
        .expect("read");
    let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["first", "second", "third", "fourth", "fifth"]);
    assert_eq!(lines[1].function, "represent-dev-counties");
    assert_eq!(lines[1].log_stream, "s2");
    assert_eq!(
        (reps1.num_calls(), reps2.num_calls(), counties.num_calls()),
        (1, 1, 1)
    );
    let patterns = patterns.lock().expect("lock").clone();
    assert!(
        patterns
            .iter()
            .all(|p| p == r#"{ $.tenantId = "TX" || $.record.tenantId = "TX" }"#),
        "{patterns:?}"
    );
}

#[tokio::test]
async fn an_invalid_tenant_is_refused_before_any_call() {
    // No rule: a call would fail the test.
    let c = clients_logs(&[], &[], &[], &[]);
    let err = tenant_events(&c, &[REPS.to_string()], "TX\" || $.x = \"", 0, None)
        .await
        .expect_err("quote is not in the tenant alphabet");
    assert!(err.to_string().contains("contains '\"'"), "{err}");
    assert_eq!(
        tenant_filter_pattern("../x").expect("valid id"),
        r#"{ $.tenantId = "../x" || $.record.tenantId = "../x" }"#
    );
}

fn json_report(tenant: &str, duration: f64, init: Option<f64>, status: &str) -> String {
    let mut metrics = serde_json::json!({
        "durationMs": duration,
        "billedDurationMs": duration.ceil(),
        "memorySizeMB": 256,
        "maxMemoryUsedMB": 30,
    });
    if let Some(init) = init {
        metrics["initDurationMs"] = init.into();
    }
    serde_json::json!({
        "time": "2026-11-27T09:00:00.000Z",
        "type": "platform.report",
        "record": {"requestId": "r", "metrics": metrics, "status": status, "tenantId": tenant},
    })
    .to_string()
}

fn reports() -> Vec<ReportRecord> {
    let mut lines = Vec::new();
    // TX: two environments (two cold starts), ten invocations, 1..=10 ms, one error.
    for i in 1..=10 {
        let init = (i == 1 || i == 6).then_some(120.0);
        let status = if i == 7 { "error" } else { "success" };
        lines.push((
            "represent-dev-representatives",
            json_report("TX", f64::from(i), init, status),
        ));
    }
    // CA: one environment, on the 1024 MB function.
    lines.push((
        "represent-dev-counties",
        json_report("CA", 40.0, Some(90.0), "success"),
    ));
    lines.push((
        "represent-dev-counties",
        json_report("CA", 20.0, None, "timeout"),
    ));
    lines
        .iter()
        .map(|(f, l)| ReportRecord::parse(f, l).expect("a report"))
        .collect()
}

#[test]
fn stats_count_environments_percentiles_errors_and_the_fee_per_tenant() {
    let memory = BTreeMap::from([
        ("represent-dev-representatives".to_string(), 512),
        ("represent-dev-counties".to_string(), 1024),
    ]);
    let stats = tenant_stats(&reports(), &memory, PRICE_PER_GB_ENVIRONMENT);
    assert_eq!(stats.len(), 2);
    let (ca, tx) = (&stats[0], &stats[1]);
    assert_eq!(tx.tenant, "TX");
    assert_eq!((tx.invocations, tx.errors, tx.cold_starts), (10, 1, 2));
    // Nearest rank: p50 of 1..=10 is the 5th value, p99 the 10th.
    assert_eq!((tx.p50_ms, tx.p99_ms), (5.0, 10.0));
    // Two environments of the 512 MB function (the configured memory, not the report's 256).
    assert!((tx.isolation_fee_usd - 2.0 * 0.5 * 0.000167).abs() < 1e-12);
    assert_eq!(ca.tenant, "CA");
    assert_eq!((ca.invocations, ca.errors, ca.cold_starts), (2, 1, 1));
    assert_eq!((ca.p50_ms, ca.p99_ms), (20.0, 40.0));
    assert!((ca.isolation_fee_usd - 0.000167).abs() < 1e-12);
}

#[test]
fn the_pricing_page_example_is_reproduced() {
    // 200K environments of 1024 MB: $33.40 on the AWS pricing page.
    let one =
        ReportRecord::parse("f", &json_report("T", 1.0, Some(1.0), "success")).expect("report");
    let reports = vec![one; 200_000];
    let memory = BTreeMap::from([("f".to_string(), 1024)]);
    let stats = tenant_stats(&reports, &memory, PRICE_PER_GB_ENVIRONMENT);
    assert!(
        (stats[0].isolation_fee_usd - 33.4).abs() < 1e-6,
        "{stats:?}"
    );
}

#[test]
fn text_report_lines_parse_and_other_lines_do_not() {
    let text = "REPORT RequestId: abc\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB\tInit Duration: 30.25 ms";
    let r = ReportRecord::parse("f", text).expect("a report");
    assert_eq!(r.request_id, "abc");
    assert_eq!((r.duration_ms, r.memory_size_mb), (1.5, 128));
    assert_eq!(r.init_duration_ms, Some(30.25));
    assert_eq!(r.tenant, None);
    assert!(ReportRecord::parse("f", "START RequestId: abc Version: $LATEST").is_none());
    assert!(
        ReportRecord::parse(
            "f",
            r#"{"type":"platform.start","record":{"requestId":"a"}}"#
        )
        .is_none()
    );
    assert_eq!(nearest_rank(&[], 50.0), 0.0);
    assert_eq!(nearest_rank(&[7.0], 99.0), 7.0);
}
