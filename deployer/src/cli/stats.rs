//! `cargo xtask stats`: per-tenant invocations, errors, cold starts, latency and an estimate of
//! the tenant isolation fee, from the functions' `platform.report` log events; optionally as a
//! self-contained HTML page with an SVG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;

use super::context::{self, StageArgs};
use super::logs::{parse_since, since_ms};
use super::output::{OutputFormat, print_json, write_stdout};
use super::{Ctx, Outcome};
use crate::logs::{PRICE_PER_GB_ENVIRONMENT, report_events};
use crate::{ReportRecord, TenantStats, tenant_stats};

/// Why the fee is an estimate, shown with every fee.
pub const FEE_NOTE: &str = "estimated isolation fee: cold starts x memory GB x $0.000167 per \
                            environment-GB (AWS pricing page, x86 US East; arm64 and other \
                            regions unverified)";

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// How far back to read: a number and a unit, `30s`, `15m`, `1h` or `2d`
    #[arg(long, default_value = "24h", value_parser = parse_since)]
    pub since: Duration,
    /// Also write a self-contained HTML report (an SVG chart, no scripts) to this file
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct StatsReport<'a> {
    stage: &'a str,
    since_seconds: u64,
    price_per_gb_environment: f64,
    note: &'static str,
    tenants: &'a [TenantStats],
}

pub async fn run(ctx: &Ctx<'_>, args: StatsArgs) -> Outcome {
    let app = &ctx.app.stack;
    let stage = context::checked_stage(ctx.app, &args.stage)?;
    let target = context::connect(ctx, stage, &args.stage).await?;
    let actual = crate::observe::observe(&target.clients, &app.name, &stage.name).await?;
    let ours: Vec<_> = actual
        .functions
        .iter()
        .filter(|f| f.logical.is_some())
        .collect();
    if ours.is_empty() {
        anyhow::bail!(
            "no function of the stack is deployed in stage `{}`: run `{} deploy --stage {}`",
            stage.name,
            ctx.app.bin_name,
            stage.name
        );
    }
    let groups: Vec<String> = ours
        .iter()
        .map(|f| crate::log_group::log_group_name(&f.name))
        .collect();
    let memory: BTreeMap<String, u32> =
        ours.iter().map(|f| (f.name.clone(), f.memory_mb)).collect();

    let events = report_events(&target.clients, &groups, since_ms(args.since), None).await?;
    let reports: Vec<ReportRecord> = events
        .iter()
        .filter_map(|e| ReportRecord::parse(&e.function, &e.message))
        .collect();
    let stats = tenant_stats(&reports, &memory, PRICE_PER_GB_ENVIRONMENT);

    if let Some(path) = &args.html {
        std::fs::write(path, render_html(&stage.name, &stats))
            .with_context(|| format!("could not write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    match args.stage.output {
        OutputFormat::Json => print_json(&StatsReport {
            stage: &stage.name,
            since_seconds: args.since.as_secs(),
            price_per_gb_environment: PRICE_PER_GB_ENVIRONMENT,
            note: FEE_NOTE,
            tenants: &stats,
        })?,
        OutputFormat::Text => write_stdout(render_table(&stats).as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The per-tenant table, with the fee's caveat below it.
pub fn render_table(stats: &[TenantStats]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>11} {:>7} {:>11} {:>9} {:>9} {:>14}",
        "tenant", "invocations", "errors", "cold starts", "p50 ms", "p99 ms", "est. fee $"
    );
    for s in stats {
        let _ = writeln!(
            out,
            "{:<10} {:>11} {:>7} {:>11} {:>9.2} {:>9.2} {:>14.6}",
            s.tenant,
            s.invocations,
            s.errors,
            s.cold_starts,
            s.p50_ms,
            s.p99_ms,
            s.isolation_fee_usd
        );
    }
    if stats.is_empty() {
        out.push_str("no invocation in the window\n");
    }
    let _ = writeln!(out, "\n{FEE_NOTE}");
    out
}

/// Escapes text for HTML. Tenant ids cannot hold `<`, `&` or quotes today, but the page must not
/// depend on that rule staying the same.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A self-contained page: the table and an inline SVG bar chart with, per tenant, one bar for
/// invocations and one for cold starts on the same scale. No script, no external resource.
pub fn render_html(stage: &str, stats: &[TenantStats]) -> String {
    const BAR: u32 = 14;
    const GROUP: u32 = 2 * BAR + 12;
    const LABEL: u32 = 110;
    const WIDTH: u32 = 640;
    let max = stats
        .iter()
        .map(|s| s.invocations)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |n: u64| (n as f64 / max as f64 * f64::from(WIDTH - LABEL - 60)).round();
    let height = GROUP
        * u32::try_from(stats.len())
            .unwrap_or(u32::MAX / GROUP)
            .max(1)
        + 30;

    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img" aria-label="invocations and cold starts per tenant">"#
    );
    for (i, s) in stats.iter().enumerate() {
        let y = 20 + GROUP * u32::try_from(i).unwrap_or(0);
        let tenant = escape(&s.tenant);
        let _ = write!(
            svg,
            r##"<text x="0" y="{}" font-size="12">{tenant}</text><rect class="bar invocations" x="{LABEL}" y="{y}" width="{}" height="{BAR}" fill="#4a7fb5"><title>{tenant}: {} invocations</title></rect><text x="{}" y="{}" font-size="11">{}</text><rect class="bar cold-starts" x="{LABEL}" y="{}" width="{}" height="{BAR}" fill="#d9822b"><title>{tenant}: {} cold starts</title></rect><text x="{}" y="{}" font-size="11">{}</text>"##,
            y + BAR + 2,
            scale(s.invocations),
            s.invocations,
            f64::from(LABEL) + scale(s.invocations) + 4.0,
            y + BAR - 3,
            s.invocations,
            y + BAR,
            scale(s.cold_starts),
            s.cold_starts,
            f64::from(LABEL) + scale(s.cold_starts) + 4.0,
            y + 2 * BAR - 3,
            s.cold_starts,
        );
    }
    svg.push_str("</svg>");

    let mut rows = String::new();
    for s in stats {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.6}</td></tr>",
            escape(&s.tenant),
            s.invocations,
            s.errors,
            s.cold_starts,
            s.p50_ms,
            s.p99_ms,
            s.isolation_fee_usd
        );
    }
    let stage = escape(stage);
    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{stage}: tenant statistics</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}</style>
</head><body>
<h1>Stage {stage}: invocations and cold starts per tenant</h1>
<p><span style="color:#4a7fb5">&#9632; invocations</span> <span style="color:#d9822b">&#9632; cold starts (new execution environments)</span></p>
{svg}
<table><tr><th>tenant</th><th>invocations</th><th>errors</th><th>cold starts</th><th>p50 ms</th><th>p99 ms</th><th>est. isolation fee $</th></tr>
{rows}</table>
<p>{}</p>
</body></html>
"##,
        escape(FEE_NOTE)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(tenant: &str, invocations: u64, cold_starts: u64) -> TenantStats {
        TenantStats {
            tenant: tenant.to_string(),
            invocations,
            errors: 0,
            cold_starts,
            p50_ms: 1.0,
            p99_ms: 2.0,
            isolation_fee_usd: 0.000167 * cold_starts as f64,
        }
    }

    #[test]
    fn html_has_an_svg_with_one_bar_of_each_kind_per_tenant_and_no_script() {
        let all = [stats("CA", 40, 2), stats("TX", 10, 1), stats("a/b", 0, 0)];
        let html = render_html("dev", &all);
        assert_eq!(html.matches("<svg").count(), 1);
        assert_eq!(html.matches(r#"class="bar invocations""#).count(), 3);
        assert_eq!(html.matches(r#"class="bar cold-starts""#).count(), 3);
        assert!(html.contains("TX: 10 invocations"), "{html}");
        // The busiest tenant's bar is the longest.
        assert!(html.contains(r#"class="bar invocations" x="110" y="20" width="470""#));
        assert!(!html.contains("<script"));
        assert!(!html.contains("src="));
        assert!(html.contains("estimated isolation fee"));
    }

    #[test]
    fn html_escapes_what_it_shows() {
        let html = render_html("dev", &[stats("<b>&", 1, 1)]);
        assert!(
            html.contains("&lt;b&gt;&amp;") && !html.contains("<b>&"),
            "{html}"
        );
    }

    #[test]
    fn the_table_labels_the_fee_an_estimate() {
        let table = render_table(&[stats("TX", 10, 1)]);
        assert!(table.starts_with("tenant"), "{table}");
        assert!(
            table.contains("TX") && table.contains("0.000167"),
            "{table}"
        );
        assert!(table.contains("estimated isolation fee"), "{table}");
        assert!(render_table(&[]).contains("no invocation in the window"));
    }
}
