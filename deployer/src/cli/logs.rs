//! `cargo xtask logs`: one tenant's log lines across the stack's functions, newest last, once or
//! followed as they arrive; one readable line per event, or the events as JSON objects.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::context::{self, StageArgs};
use super::output::{OutputFormat, outln, print_json};
use super::{Ctx, Outcome};
use crate::LogLine;
use crate::stack::App;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Tenant whose lines to show (the help names the app's tenants)
    #[arg(long, visible_alias = "tenant-id")]
    pub tenant: String,
    /// Only this function, by its name in the stack; every function by default
    #[arg(long)]
    pub function: Option<String>,
    /// How far back to read: a number and a unit, `30s`, `15m`, `1h` or `2d`
    #[arg(long, default_value = "1h", value_parser = parse_since)]
    pub since: Duration,
    /// Keep polling every second for new lines until Ctrl-C
    #[arg(long)]
    pub follow: bool,
}

/// Parses `30s`, `15m`, `1h`, `2d` into a duration; anything else is refused with the accepted
/// forms, before any network call.
pub fn parse_since(value: &str) -> Result<Duration, String> {
    let help = "use a number and a unit: 30s, 15m, 1h or 2d";
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{value}` has no unit; {help}"))?;
    let (number, unit) = value.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{value}` does not start with a number; {help}"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{value}` has unknown unit `{unit}`; {help}")),
    };
    if n == 0 {
        return Err(format!("`{value}` is an empty window; {help}"));
    }
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{value}` is too long; {help}"))
}

/// Milliseconds since the epoch, `since` ago.
pub fn since_ms(since: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.saturating_sub(since).as_millis()).unwrap_or(i64::MAX)
}

/// Checks the tenant and the function against the rules and the stack, before any call.
/// Returns the logical names of the functions to read.
pub fn check(
    cli: &super::App,
    tenant: &str,
    function: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let app = &cli.stack;
    crate::tenant::validate_tenant_id(tenant)?;
    if !cli.is_tenant(tenant) {
        return Err(cli.unknown_tenant(tenant));
    }
    match function {
        Some(f) if app.find_function(f).is_none() => {
            let known: Vec<&str> = app.functions.iter().map(|f| f.logical.as_str()).collect();
            bail!("unknown function `{f}`: the stack has {}", known.join(", "));
        }
        Some(f) => Ok(vec![f.to_string()]),
        None => Ok(app.functions.iter().map(|f| f.logical.clone()).collect()),
    }
}

/// The log groups of the deployed functions among `logical`, by observing the stage.
pub async fn deployed_log_groups(
    clients: &crate::Clients,
    cli: &super::App,
    stage: &str,
    logical: &[String],
) -> anyhow::Result<Vec<String>> {
    let app: &App = &cli.stack;
    let actual = crate::observe::observe(clients, &app.name, stage).await?;
    let groups: Vec<String> = actual
        .functions
        .iter()
        .filter(|f| f.logical.as_ref().is_some_and(|l| logical.contains(l)))
        .map(|f| crate::log_group::log_group_name(&f.name))
        .collect();
    if groups.is_empty() {
        bail!(
            "no function of the stack is deployed in stage `{stage}`: run `{} deploy --stage \
             {stage}`",
            cli.bin_name
        );
    }
    Ok(groups)
}

/// `2026-11-27T09:41:02.123Z` for milliseconds since the epoch (UTC, proleptic Gregorian).
pub fn format_timestamp(ms: i64) -> String {
    emulator::clock::iso8601_millis(ms)
}

/// One line as text: time, function (its name in the stack), tenant, level and message, the
/// message on one line. A platform report reads `REPORT 12.3 ms cold`; a line that is not JSON
/// is shown as it is.
pub fn render_line(line: &LogLine, prefix: &str) -> String {
    let time = format_timestamp(line.timestamp_ms);
    let function = short_function(&line.function, prefix);
    let message = line.message.trim_end();
    let Ok(serde_json::Value::Object(event)) = serde_json::from_str::<serde_json::Value>(message)
    else {
        return format!("{time} {function} - - {}", one_line(message));
    };
    let record = &event.get("record").cloned().unwrap_or_default();
    let tenant = event
        .get("tenantId")
        .or_else(|| record.get("tenantId"))
        .and_then(|t| t.as_str())
        .unwrap_or("-");
    if let Some(kind) = event.get("type").and_then(|t| t.as_str())
        && let Some(platform) = kind.strip_prefix("platform.")
    {
        return format!(
            "{time} {function} {tenant} {}",
            platform_line(platform, record)
        );
    }
    let level = ["level", "severity", "levelname"]
        .iter()
        .find_map(|k| event.get(*k).and_then(|l| l.as_str()))
        .unwrap_or("-")
        .to_uppercase();
    let text = event
        .get("message")
        .or_else(|| event.get("fields").and_then(|f| f.get("message")))
        .or_else(|| event.get("msg"))
        .map(|m| match m {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| message.to_string());
    format!("{time} {function} {tenant} {level} {}", one_line(&text))
}

/// `REPORT 12.3 ms cold`, `START`, `END success`, or the platform event's own name.
fn platform_line(platform: &str, record: &serde_json::Value) -> String {
    match platform {
        "report" => {
            let metrics = &record["metrics"];
            let duration = metrics["durationMs"].as_f64().unwrap_or_default();
            let cold = if metrics.get("initDurationMs").is_some_and(|v| !v.is_null()) {
                " cold"
            } else {
                ""
            };
            let status = match record["status"].as_str() {
                Some("success") | None => String::new(),
                Some(other) => format!(" {other}"),
            };
            format!("REPORT {duration:.1} ms{cold}{status}")
        }
        "start" => "START".to_string(),
        "runtimeDone" => format!("END {}", record["status"].as_str().unwrap_or(""))
            .trim_end()
            .to_string(),
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The function's name in the stack: the physical name less `{app}-{stage}-` (and the `-r`
/// of a replacement slot).
fn short_function<'a>(physical: &'a str, prefix: &str) -> &'a str {
    let name = physical.strip_prefix(prefix).unwrap_or(physical);
    name.strip_suffix("-r").unwrap_or(name)
}

/// One event as `--output json` shows it: the message parsed when it is JSON.
#[derive(Debug, Serialize)]
struct JsonLine<'a> {
    function: &'a str,
    log_stream: &'a str,
    timestamp_ms: i64,
    event_id: &'a str,
    message: serde_json::Value,
}

fn json_line(line: &LogLine) -> JsonLine<'_> {
    JsonLine {
        function: &line.function,
        log_stream: &line.log_stream,
        timestamp_ms: line.timestamp_ms,
        event_id: &line.event_id,
        message: serde_json::from_str(line.message.trim_end())
            .unwrap_or_else(|_| serde_json::Value::String(line.message.trim_end().to_string())),
    }
}

fn print_lines(lines: &[LogLine], output: OutputFormat, prefix: &str) -> anyhow::Result<()> {
    for line in lines {
        match output {
            OutputFormat::Text => outln!("{}", render_line(line, prefix))?,
            OutputFormat::Json => outln!("{}", serde_json::to_string(&json_line(line))?)?,
        }
    }
    Ok(())
}

pub async fn run(ctx: &Ctx<'_>, args: LogsArgs) -> Outcome {
    let app = &ctx.app.stack;
    let stage = context::checked_stage(ctx.app, &args.stage)?;
    let logical = check(ctx.app, &args.tenant, args.function.as_deref())?;
    let target = context::connect(ctx, stage, &args.stage).await?;
    let groups = deployed_log_groups(&target.clients, ctx.app, &stage.name, &logical).await?;
    let prefix = format!("{}-{}-", app.name, stage.name);

    let start = since_ms(args.since);
    let lines = crate::tenant_events(&target.clients, &groups, &args.tenant, start, None).await?;
    if !args.follow {
        match args.stage.output {
            OutputFormat::Json => {
                print_json(&lines.iter().map(json_line).collect::<Vec<_>>())?;
            }
            OutputFormat::Text => print_lines(&lines, OutputFormat::Text, &prefix)?,
        }
        return Ok(ExitCode::SUCCESS);
    }

    // Followed, JSON is one object per line (NDJSON), so a reader can act on each as it comes.
    print_lines(&lines, args.stage.output, &prefix)?;
    let mut last = lines.last().map(|l| l.timestamp_ms).unwrap_or(start);
    // Events of the last millisecond may arrive in several polls; their ids tell them apart.
    let mut seen: HashSet<String> = lines
        .iter()
        .filter(|l| l.timestamp_ms == last)
        .map(|l| l.event_id.clone())
        .collect();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let fresh = crate::tenant_events(&target.clients, &groups, &args.tenant, last, None)
            .await
            .context("could not poll for new log lines")?;
        let new: Vec<LogLine> = fresh
            .into_iter()
            .filter(|l| !seen.contains(&l.event_id))
            .collect();
        print_lines(&new, args.stage.output, &prefix)?;
        if let Some(newest) = new.iter().map(|l| l.timestamp_ms).max() {
            if newest > last {
                seen.clear();
                last = newest;
            }
            seen.extend(
                new.iter()
                    .filter(|l| l.timestamp_ms == last)
                    .map(|l| l.event_id.clone()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_seconds_minutes_hours_and_days() {
        assert_eq!(parse_since("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_since("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_since("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_since("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn since_refuses_what_it_cannot_read_and_says_how() {
        for bad in [
            "",
            "1",
            "h",
            "1w",
            "-1h",
            "1.5h",
            "0m",
            "99999999999999999999d",
        ] {
            let err = parse_since(bad).expect_err(bad);
            assert!(err.contains("30s, 15m, 1h or 2d"), "{bad}: {err}");
        }
    }

    fn app() -> super::super::App {
        use crate::stack::{App, Function, Stage};
        let stack = App::new("represent")
            .function(Function::new("representatives").per_tenant())
            .function(Function::new("counties").per_tenant())
            .stage(Stage::emulator("dev"));
        super::super::App::new(env!("CARGO_MANIFEST_DIR"), stack).tenants(["TX", "CA"])
    }

    fn line(message: &str) -> LogLine {
        LogLine {
            function: "represent-dev-counties".to_string(),
            log_stream: "2026/11/27/[$LATEST]abc".to_string(),
            timestamp_ms: 1_795_772_462_005,
            message: message.to_string(),
            event_id: "1".to_string(),
        }
    }

    #[test]
    fn a_line_reads_time_function_tenant_level_message() {
        let prefix = "represent-dev-";
        assert_eq!(
            render_line(
                &line(r#"{"level":"INFO","tenantId":"TX","message":"answered\nfrom cache"}"#),
                prefix
            ),
            "2026-11-27T09:41:02.005Z counties TX INFO answered from cache"
        );
        assert_eq!(
            render_line(
                &line(
                    r#"{"time":"x","type":"platform.report","record":{"tenantId":"TX","status":"success","metrics":{"durationMs":12.34,"initDurationMs":40.1}}}"#
                ),
                prefix
            ),
            "2026-11-27T09:41:02.005Z counties TX REPORT 12.3 ms cold"
        );
        assert_eq!(
            render_line(
                &line(
                    r#"{"type":"platform.report","record":{"tenantId":"CA","metrics":{"durationMs":2.0}}}"#
                ),
                prefix
            ),
            "2026-11-27T09:41:02.005Z counties CA REPORT 2.0 ms"
        );
        assert_eq!(
            render_line(&line("plain text\n"), prefix),
            "2026-11-27T09:41:02.005Z counties - - plain text"
        );
    }

    #[test]
    fn tenant_and_function_are_checked_against_the_rules_and_the_stack() {
        let app = app();
        assert_eq!(
            check(&app, "TX", Some("counties")).expect("valid"),
            vec!["counties"]
        );
        assert_eq!(
            check(&app, "TX", None).expect("valid").len(),
            app.stack.functions.len()
        );
        let err = check(&app, "ZZ", None)
            .expect_err("not a state")
            .to_string();
        assert!(err.contains("unknown tenant `ZZ`"), "{err}");
        let err = check(&app, "T\"X", None).expect_err("quote").to_string();
        assert!(err.contains("tenant id"), "{err}");
        let err = check(&app, "TX", Some("nope"))
            .expect_err("no such function")
            .to_string();
        assert!(
            err.contains("unknown function `nope`") && err.contains("counties"),
            "{err}"
        );
    }

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_timestamp(951_782_400_123),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            format_timestamp(1_795_772_462_005),
            "2026-11-27T09:41:02.005Z"
        );
    }
}
