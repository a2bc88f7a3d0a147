//! Reading the functions' logs back: one tenant's lines (FilterLogEvents with a JSON filter on
//! `tenantId`), the `platform.report` records of every invocation, and per-tenant statistics
//! computed from them (pure, so fixtures test them).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::DeployError;
use crate::observe::Clients;
use crate::tenant::validate_tenant_id;

/// The filter that selects `platform.report` events, one per invocation.
pub const REPORT_FILTER_PATTERN: &str = r#"{ $.type = "platform.report" }"#;

/// Tenant isolation's price per execution environment created, per GB of configured memory:
/// the AWS pricing page's worked example (x86, US East). The arm64 and other regions' rates are
/// unverified, so every figure computed from it is an estimate.
pub const PRICE_PER_GB_ENVIRONMENT: f64 = 0.000167;

/// One log event of one function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// The physical function name (the log group without `/aws/lambda/`).
    pub function: String,
    pub log_stream: String,
    pub timestamp_ms: i64,
    pub message: String,
    /// CloudWatch's id of the event, which `--follow` deduplicates on.
    pub event_id: String,
}

/// The JSON filter pattern matching one tenant's lines: application lines carry `tenantId` at
/// the top level, platform events inside `record`. The id is validated first; the tenant id
/// alphabet has no `"` or `\`, so quoting it cannot break out of the pattern.
pub fn tenant_filter_pattern(tenant: &str) -> Result<String, DeployError> {
    validate_tenant_id(tenant)?;
    Ok(format!(
        r#"{{ $.tenantId = "{tenant}" || $.record.tenantId = "{tenant}" }}"#
    ))
}

/// One tenant's log lines across the given log groups, between `since_ms` and `until_ms`
/// (milliseconds since the epoch), every page of each, merged oldest first (newest last).
pub async fn tenant_events(
    clients: &Clients,
    log_groups: &[String],
    tenant: &str,
    since_ms: i64,
    until_ms: Option<i64>,
) -> Result<Vec<LogLine>, DeployError> {
    let pattern = tenant_filter_pattern(tenant)?;
    filter_events(clients, log_groups, &pattern, since_ms, until_ms).await
}

/// Every `platform.report` event of the given log groups in the window, merged newest last.
pub async fn report_events(
    clients: &Clients,
    log_groups: &[String],
    since_ms: i64,
    until_ms: Option<i64>,
) -> Result<Vec<LogLine>, DeployError> {
    filter_events(
        clients,
        log_groups,
        REPORT_FILTER_PATTERN,
        since_ms,
        until_ms,
    )
    .await
}

/// FilterLogEvents on each group with `pattern`, following `nextToken`. A group that does not
/// exist (a function never invoked, its logs left to Lambda) simply has no lines.
pub async fn filter_events(
    clients: &Clients,
    log_groups: &[String],
    pattern: &str,
    since_ms: i64,
    until_ms: Option<i64>,
) -> Result<Vec<LogLine>, DeployError> {
    let mut lines = Vec::new();
    for group in log_groups {
        let function = group.strip_prefix("/aws/lambda/").unwrap_or(group);
        let mut token: Option<String> = None;
        loop {
            let page = match clients
                .logs
                .filter_log_events()
                .log_group_name(group)
                .filter_pattern(pattern)
                .start_time(since_ms)
                .set_end_time(until_ms)
                .set_next_token(token.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    break;
                }
                Err(e) => {
                    return Err(crate::step::call_error(
                        "FilterLogEvents",
                        &format!("log group {group}"),
                        e,
                    ));
                }
            };
            lines.extend(page.events().iter().map(|e| LogLine {
                function: function.to_string(),
                log_stream: e.log_stream_name().unwrap_or_default().to_string(),
                timestamp_ms: e.timestamp().unwrap_or_default(),
                message: e.message().unwrap_or_default().to_string(),
                event_id: e.event_id().unwrap_or_default().to_string(),
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    // Stable: lines of one group with the same timestamp keep CloudWatch's order.
    lines.sort_by_key(|l| l.timestamp_ms);
    Ok(lines)
}

/// One invocation's `platform.report`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRecord {
    /// The physical function name, from the log group the line came from.
    pub function: String,
    pub request_id: String,
    /// `None` for text-format lines and shared functions, which carry no tenant.
    pub tenant: Option<String>,
    pub duration_ms: f64,
    pub billed_duration_ms: f64,
    pub memory_size_mb: u32,
    pub max_memory_used_mb: u32,
    /// Present only on an invocation that started a new execution environment.
    pub init_duration_ms: Option<f64>,
    /// `success`, `error`, `timeout`, ...; text lines carry none and count as successes.
    pub status: String,
}

impl ReportRecord {
    /// Parses a `platform.report` JSON event or a text `REPORT RequestId: ...` line; `None` for
    /// any other line.
    pub fn parse(function: &str, message: &str) -> Option<ReportRecord> {
        let message = message.trim();
        if message.starts_with('{') {
            Self::parse_json(function, message)
        } else {
            Self::parse_text(function, message)
        }
    }

    fn parse_json(function: &str, message: &str) -> Option<ReportRecord> {
        let v: serde_json::Value = serde_json::from_str(message).ok()?;
        if v["type"] != "platform.report" {
            return None;
        }
        let record = &v["record"];
        let metrics = &record["metrics"];
        let mb = |key: &str| {
            metrics[key]
                .as_u64()
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(0)
        };
        Some(ReportRecord {
            function: function.to_string(),
            request_id: record["requestId"].as_str().unwrap_or_default().to_string(),
            tenant: record["tenantId"].as_str().map(str::to_string),
            duration_ms: metrics["durationMs"].as_f64()?,
            billed_duration_ms: metrics["billedDurationMs"].as_f64().unwrap_or(0.0),
            memory_size_mb: mb("memorySizeMB"),
            max_memory_used_mb: mb("maxMemoryUsedMB"),
            init_duration_ms: metrics["initDurationMs"].as_f64(),
            status: record["status"].as_str().unwrap_or("success").to_string(),
        })
    }

    /// `REPORT RequestId: id\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t
    /// Max Memory Used: 20 MB\tInit Duration: 30.00 ms`
    fn parse_text(function: &str, message: &str) -> Option<ReportRecord> {
        let rest = message.strip_prefix("REPORT ")?;
        let fields: BTreeMap<&str, &str> = rest
            .split('\t')
            .filter_map(|f| f.split_once(": "))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let number = |key: &str| -> Option<f64> {
            fields
                .get(key)
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        };
        let mb = |key: &str| number(key).map(|n| n as u32).unwrap_or(0);
        Some(ReportRecord {
            function: function.to_string(),
            request_id: fields.get("RequestId")?.to_string(),
            tenant: None,
            duration_ms: number("Duration")?,
            billed_duration_ms: number("Billed Duration").unwrap_or(0.0),
            memory_size_mb: mb("Memory Size"),
            max_memory_used_mb: mb("Max Memory Used"),
            init_duration_ms: number("Init Duration"),
            status: "success".to_string(),
        })
    }

    /// A report with an init duration is the first invocation of a new execution environment.
    pub fn is_cold_start(&self) -> bool {
        self.init_duration_ms.is_some()
    }
}

/// One tenant's invocations over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantStats {
    /// The tenant id, or `-` for reports that carry none.
    pub tenant: String,
    pub invocations: u64,
    /// Reports whose status is not `success`.
    pub errors: u64,
    /// New execution environments (reports with an init duration).
    pub cold_starts: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// An estimate of the tenant isolation fee: for each cold start, the function's memory in
    /// GB times the price per environment-GB.
    pub isolation_fee_usd: f64,
}

/// The nearest-rank percentile of sorted values: the smallest value such that at least `p`
/// percent of the values are at or below it (rank `ceil(p/100 * n)`, 1-based). No interpolation,
/// so the answer is always a duration that was actually measured. `0.0` for no values.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Statistics per tenant, sorted by tenant id. The memory of a cold start is the function's
/// configured memory from `memory_mb_by_function` (physical name -> MB), or the report's own
/// `memorySizeMB` for a function not listed.
pub fn tenant_stats(
    reports: &[ReportRecord],
    memory_mb_by_function: &BTreeMap<String, u32>,
    price_per_gb_environment: f64,
) -> Vec<TenantStats> {
    let mut by_tenant: BTreeMap<&str, Vec<&ReportRecord>> = BTreeMap::new();
    for r in reports {
        by_tenant
            .entry(r.tenant.as_deref().unwrap_or("-"))
            .or_default()
            .push(r);
    }
    by_tenant
        .into_iter()
        .map(|(tenant, reports)| {
            let mut durations: Vec<f64> = reports.iter().map(|r| r.duration_ms).collect();
            durations.sort_by(f64::total_cmp);
            let fee: f64 = reports
                .iter()
                .filter(|r| r.is_cold_start())
                .map(|r| {
                    let mb = memory_mb_by_function
                        .get(&r.function)
                        .copied()
                        .unwrap_or(r.memory_size_mb);
                    f64::from(mb) / 1024.0 * price_per_gb_environment
                })
                .sum();
            TenantStats {
                tenant: tenant.to_string(),
                invocations: reports.len() as u64,
                errors: reports.iter().filter(|r| r.status != "success").count() as u64,
                cold_starts: reports.iter().filter(|r| r.is_cold_start()).count() as u64,
                p50_ms: nearest_rank(&durations, 50.0),
                p99_ms: nearest_rank(&durations, 99.0),
                isolation_fee_usd: fee,
            }
        })
        .collect()
}
