//! `cargo xtask audit`: the data calls role sessions made on the stage's tables (time,
//! principal, its tenant tag, action, table, partition keys, allowed or denied), with every
//! denied call on a partition other than the caller's tenant flagged as a cross-tenant attempt.
//!
//! On the emulator the audit is its own (`GET /_emulator/audit`). On AWS stages the equivalent
//! records are CloudTrail data events, which `LookupEvents` does not return (it serves
//! management events only): they need a trail delivering to S3 or CloudTrail Lake, so the
//! command says where to look instead of pretending there is nothing.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::context::{self, StageArgs};
use super::logs::{format_timestamp, parse_since, since_ms};
use super::output::{OutputFormat, outln, print_json};
use super::{Ctx, Outcome};
use crate::stack::Target;

/// What the command says on an AWS stage, in one sentence.
pub const AWS_COVERAGE: &str = "on AWS stages the audit of data calls is in CloudTrail data \
    events, which LookupEvents does not return (management events only): enable a trail with \
    DynamoDB data events for the stage's tables delivering to S3 or CloudTrail Lake and query \
    it there (a refused call has errorCode AccessDenied); this command reads the emulator's \
    audit only";

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Only calls by sessions tagged with this tenant, or on its partition
    #[arg(long, visible_alias = "tenant-id")]
    pub tenant: Option<String>,
    /// How far back to read: a number and a unit, `30s`, `15m`, `1h` or `2d`
    #[arg(long, default_value = "1h", value_parser = parse_since)]
    pub since: Duration,
    /// Only refused calls
    #[arg(long)]
    pub denied: bool,
}

/// One audited call, as the emulator reports it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub time_ms: i64,
    pub principal: String,
    pub role_arn: String,
    pub tenant: Option<String>,
    pub action: String,
    pub table: String,
    pub partition_keys: Vec<String>,
    pub allowed: bool,
    pub reason: Option<String>,
}

impl AuditEvent {
    /// A refused call by a session with a tenant on a partition that is not that tenant's.
    pub fn is_cross_tenant(&self) -> bool {
        !self.allowed
            && self
                .tenant
                .as_ref()
                .is_some_and(|t| self.partition_keys.iter().any(|k| k != t))
    }
}

#[derive(Debug, Deserialize)]
struct AuditPage {
    events: Vec<AuditEvent>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    #[serde(flatten)]
    event: &'a AuditEvent,
    time: String,
    cross_tenant: bool,
}

/// `tenant` percent-encoded for a query string: tenant ids hold `/`, `+`, `=` and spaces.
fn query_value(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One line: time, decision, the caller's tenant, action, table, partition keys, principal,
/// and the cross-tenant flag.
pub fn render(event: &AuditEvent) -> String {
    let mut line = format!(
        "{}  {:<7} tenant={:<4} {} {} partition={} {}",
        format_timestamp(event.time_ms),
        if event.allowed { "allowed" } else { "DENIED" },
        event.tenant.as_deref().unwrap_or("-"),
        event.action,
        event.table,
        if event.partition_keys.is_empty() {
            "-".to_string()
        } else {
            event.partition_keys.join(",")
        },
        event.principal,
    );
    if event.is_cross_tenant() {
        line.push_str("  CROSS-TENANT ATTEMPT");
    }
    line
}

pub async fn run(ctx: &Ctx<'_>, args: AuditArgs) -> Outcome {
    let stage = context::checked_stage(ctx.app, &args.stage)?;
    if let Some(tenant) = &args.tenant {
        crate::tenant::validate_tenant_id(tenant)?;
        if !ctx.app.is_tenant(tenant) {
            return Err(ctx.app.unknown_tenant(tenant));
        }
    }
    if matches!(stage.target, Target::Aws { .. }) {
        bail!("{AWS_COVERAGE}");
    }
    let endpoint = match &args.stage.endpoint_url {
        Some(url) => url.clone(),
        None => super::emulator_cmd::ensure_running(ctx.app).await?,
    };
    let port = endpoint
        .strip_prefix("http://127.0.0.1:")
        .or_else(|| endpoint.strip_prefix("http://localhost:"))
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok());
    let Some(port) = port else {
        bail!(
            "the audit is read from a local emulator (`http://127.0.0.1:PORT`), not from `{endpoint}`"
        );
    };
    let mut path = format!(
        "/_emulator/audit?limit=10000&since_ms={}",
        since_ms(args.since)
    );
    if args.denied {
        path.push_str("&denied=true");
    }
    if let Some(tenant) = &args.tenant {
        path.push_str(&format!("&tenant={}", query_value(tenant)));
    }
    let body =
        tokio::task::spawn_blocking(move || super::emulator_cmd::http_get(port, &path)).await?;
    let Some(body) = body else {
        bail!(
            "the emulator at {endpoint} did not answer its audit: is it this version's? restart it with `{} emulator stop` and `{} emulator start`",
            ctx.app.bin_name,
            ctx.app.bin_name
        );
    };
    let page: AuditPage = serde_json::from_str(&body)?;
    match args.stage.output {
        OutputFormat::Json => {
            let rows: Vec<Row> = page
                .events
                .iter()
                .map(|event| Row {
                    event,
                    time: format_timestamp(event.time_ms),
                    cross_tenant: event.is_cross_tenant(),
                })
                .collect();
            print_json(&rows)?;
        }
        OutputFormat::Text => {
            for event in &page.events {
                outln!("{}", render(event))?;
            }
            let attempts = page.events.iter().filter(|e| e.is_cross_tenant()).count();
            eprintln!(
                "{} call(s), {} cross-tenant attempt(s)",
                page.events.len(),
                attempts
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tenant: Option<&str>, keys: &[&str], allowed: bool) -> AuditEvent {
        AuditEvent {
            time_ms: 0,
            principal: "arn:aws:sts::000000000000:assumed-role/r/s".into(),
            role_arn: "arn:aws:iam::000000000000:role/r".into(),
            tenant: tenant.map(str::to_string),
            action: "dynamodb:Query".into(),
            table: "represent-dev-data".into(),
            partition_keys: keys.iter().map(|k| k.to_string()).collect(),
            allowed,
            reason: None,
        }
    }

    #[test]
    fn only_refused_calls_on_another_partition_are_cross_tenant() {
        assert!(event(Some("TX"), &["CA"], false).is_cross_tenant());
        assert!(!event(Some("TX"), &["TX"], false).is_cross_tenant());
        assert!(!event(Some("TX"), &["CA"], true).is_cross_tenant());
        assert!(!event(None, &["CA"], false).is_cross_tenant());
        assert!(render(&event(Some("TX"), &["CA"], false)).ends_with("CROSS-TENANT ATTEMPT"));
    }

    #[test]
    fn tenant_ids_are_encoded_for_the_query_string() {
        assert_eq!(query_value("a b/c+d"), "a%20b%2Fc%2Bd");
    }
}
