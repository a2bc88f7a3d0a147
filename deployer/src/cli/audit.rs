//! `cargo xtask audit`: the data calls role sessions made on the stage's tables (time,
//! principal, its tenant tag, action, table, partition keys, allowed or denied), with every
//! denied call on a partition other than the caller's tenant flagged as a cross-tenant attempt.
//!
//! Two sources. A stage whose app audits data events (`App::audit_data_events`) has a
//! CloudTrail Lake event data store of its tables' DynamoDB data events, which the command
//! queries with SQL (`--source lake`, the default for such a stage, on AWS and on the emulator
//! alike). On the emulator, the emulator's own audit (`GET /_emulator/audit`, `--source
//! emulator`, the default without a store) also carries the session's `tenant` tag, which
//! CloudTrail does not record. An AWS stage without a store gets a sentence saying how to enable
//! one.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::context::{self, StageArgs};
use super::logs::{format_timestamp, parse_since, since_ms};
use super::output::{OutputFormat, outln, print_json};
use super::{Ctx, Outcome};
use crate::stack::Target;

/// What the Lake source covers and what it does not, printed beside its results.
pub const LAKE_COVERAGE: &str = "read from CloudTrail Lake: the DynamoDB data events of the \
    stage's tables (item reads and writes, allowed or refused with errorCode AccessDenied), by \
    any principal; on AWS they arrive minutes after the call. Not covered: the session's tenant \
    tag (CloudTrail does not record session tags; the tenant is read back from the session name \
    `tenant-<id>` when exactly one of the app's tenants has that name), the partition of Scan, \
    BatchGetItem, BatchWriteItem and transactions (only GetItem, PutItem, UpdateItem, DeleteItem \
    keys and a Query's key condition carry one), and calls on anything but the stage's tables";

/// What the command says when the stage has no data-events store to read.
pub fn no_store(bin: &str, stage: &str, enabled: bool) -> String {
    if enabled {
        format!(
            "stage {stage} has no CloudTrail Lake store of data events yet: deploy it first (`{bin} deploy --stage {stage}`), which creates it"
        )
    } else {
        format!(
            "stage {stage} records no data events: CloudTrail's LookupEvents returns management events only, so enable the stage's CloudTrail Lake store with `.audit_data_events()` on the app in the stack and deploy; events are recorded from then on"
        )
    }
}

/// Where the audit is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// Lake when the app audits data events, the emulator's own audit otherwise
    Auto,
    /// The stage's CloudTrail Lake event data store (AWS or the emulator)
    Lake,
    /// The emulator's own audit, which also records each session's tenant tag
    Emulator,
}

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
    /// Where to read: `lake` (the stage's CloudTrail Lake store), `emulator` (the emulator's
    /// own audit), or `auto`: Lake when the app audits data events
    #[arg(long, value_enum, default_value = "auto")]
    pub source: Source,
    /// How long to wait for a CloudTrail Lake query to finish: a number and a unit (`2m`)
    #[arg(long, default_value = "5m", value_parser = parse_since)]
    pub wait: Duration,
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
    let on_aws = matches!(stage.target, Target::Aws { .. });
    let enabled = ctx.app.stack.audit_data_events;
    let source = match args.source {
        Source::Auto if enabled => Source::Lake,
        Source::Auto if on_aws => bail!("{}", no_store(&ctx.app.bin_name, &stage.name, false)),
        Source::Auto => Source::Emulator,
        Source::Emulator if on_aws => bail!(
            "stage {} is on AWS, where there is no emulator audit; read its CloudTrail Lake store with `--source lake`",
            stage.name
        ),
        other => other,
    };
    let events = match source {
        Source::Lake => lake_events(ctx, stage, &args, enabled).await?,
        _ => emulator_events(ctx, &args).await?,
    };
    print(&args, &events, source == Source::Lake)
}

/// Reads the stage's CloudTrail Lake store: StartQuery, then the results once it finished.
async fn lake_events(
    ctx: &Ctx<'_>,
    stage: &crate::stack::Stage,
    args: &AuditArgs,
    enabled: bool,
) -> anyhow::Result<Vec<AuditEvent>> {
    let target = context::connect(ctx, stage, &args.stage).await?;
    let query = LakeQuery {
        app: &ctx.app.stack.name,
        stage: &stage.name,
        tenants: &ctx.app.tenants,
        since_ms: since_ms(args.since),
        denied_only: args.denied,
        tenant: args.tenant.as_deref(),
        wait: args.wait,
    };
    match read_lake(&target.clients, &query).await? {
        Some(events) => Ok(events),
        None => bail!("{}", no_store(&ctx.app.bin_name, &stage.name, enabled)),
    }
}

/// What to read from a stage's Lake store.
#[derive(Debug, Clone)]
pub struct LakeQuery<'a> {
    pub app: &'a str,
    pub stage: &'a str,
    /// The app's tenants, which session names are read back against.
    pub tenants: &'a [String],
    pub since_ms: i64,
    pub denied_only: bool,
    /// Only calls by this tenant's sessions or on its partition.
    pub tenant: Option<&'a str>,
    /// How long the query may take.
    pub wait: Duration,
}

/// The audit events of the stage's CloudTrail Lake store, oldest first; `None` when the
/// stage has no store.
pub async fn read_lake(
    clients: &crate::Clients,
    q: &LakeQuery<'_>,
) -> anyhow::Result<Option<Vec<AuditEvent>>> {
    let Some(store) = crate::trail::observe(clients, q.app, q.stage).await? else {
        return Ok(None);
    };
    let sql = crate::trail::audit_query(store.id(), q.since_ms, q.denied_only);
    let rows =
        crate::trail::query(clients, &store.arn, &sql, q.wait, Duration::from_secs(1)).await?;
    Ok(Some(
        rows.iter()
            .filter_map(|row| from_lake(row, q.tenants))
            .filter(|e| {
                q.tenant.is_none_or(|t| {
                    e.tenant.as_deref() == Some(t) || e.partition_keys.iter().any(|k| k == t)
                })
            })
            .collect(),
    ))
}

/// One Lake row as an audit event; `None` for a row without its time or principal.
pub fn from_lake(row: &crate::trail::Row, tenants: &[String]) -> Option<AuditEvent> {
    use crate::trail::COLUMNS;
    let get = |i: usize| {
        row.get(crate::trail::column_name(COLUMNS[i]))
            .filter(|v| !v.is_empty() && v.as_str() != "null")
            .cloned()
    };
    let principal = get(2)?;
    let session = principal.rsplit('/').next().unwrap_or_default();
    let error = get(9);
    Some(AuditEvent {
        time_ms: crate::trail::parse_lake_time(&get(0)?)?,
        tenant: crate::trail::tenant_from_session(session, tenants).map(str::to_string),
        principal,
        role_arn: get(3).unwrap_or_default(),
        action: format!("dynamodb:{}", get(1).unwrap_or_default()),
        table: get(4).unwrap_or_default(),
        partition_keys: crate::trail::partition_keys(row, crate::names::PARTITION_KEY),
        allowed: error.is_none(),
        reason: error.map(|code| match get(10) {
            Some(message) => format!("{code}: {message}"),
            None => code,
        }),
    })
}

/// Reads the emulator's own audit.
async fn emulator_events(ctx: &Ctx<'_>, args: &AuditArgs) -> anyhow::Result<Vec<AuditEvent>> {
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
    Ok(page.events)
}

fn print(args: &AuditArgs, events: &[AuditEvent], lake: bool) -> Outcome {
    match args.stage.output {
        OutputFormat::Json => {
            let rows: Vec<Row> = events
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
            for event in events {
                outln!("{}", render(event))?;
            }
            let attempts = events.iter().filter(|e| e.is_cross_tenant()).count();
            eprintln!(
                "{} call(s), {} cross-tenant attempt(s)",
                events.len(),
                attempts
            );
            if lake {
                eprintln!("{LAKE_COVERAGE}");
            }
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
    fn a_lake_row_is_an_audit_event_with_the_tenant_read_back_from_the_session() {
        use crate::trail::{COLUMNS, column_name};
        let row: crate::trail::Row = [
            (0, "2026-12-01 15:04:23.000"),
            (1, "GetItem"),
            (
                2,
                "arn:aws:sts::1:assumed-role/represent-dev-counties-data/tenant-TX",
            ),
            (
                3,
                "arn:aws:iam::1:role/represent/dev/represent-dev-counties-data",
            ),
            (4, "represent-dev-data"),
            (5, r#"{"tenant":"CA","record":"STATE"}"#),
            (9, "AccessDenied"),
            (10, "User: ... is not authorized"),
        ]
        .into_iter()
        .map(|(i, v)| (column_name(COLUMNS[i]).to_string(), v.to_string()))
        .collect();
        let tenants = vec!["TX".to_string(), "CA".to_string()];
        let event = from_lake(&row, &tenants).expect("a complete row");
        assert_eq!(event.time_ms, 1_796_137_463_000);
        assert_eq!(event.tenant.as_deref(), Some("TX"));
        assert_eq!(event.action, "dynamodb:GetItem");
        assert_eq!(event.partition_keys, ["CA"]);
        assert!(!event.allowed && event.is_cross_tenant());
        // Without the app's tenants the session name says nothing certain.
        assert_eq!(from_lake(&row, &[]).expect("a row").tenant, None);
    }

    #[test]
    fn a_stage_without_a_store_is_told_how_to_get_one() {
        let never = no_store("cargo xtask", "prod", false);
        assert!(never.contains("`.audit_data_events()`"), "{never}");
        assert!(
            never.contains("LookupEvents returns management events only"),
            "{never}"
        );
        let not_yet = no_store("cargo xtask", "prod", true);
        assert!(
            not_yet.contains("`cargo xtask deploy --stage prod`"),
            "{not_yet}"
        );
    }

    #[test]
    fn tenant_ids_are_encoded_for_the_query_string() {
        assert_eq!(query_value("a b/c+d"), "a%20b%2Fc%2Bd");
    }
}
