//! `cargo xtask logs`: one tenant's log lines across the stack's functions, newest last, once or
//! followed as they arrive.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use deployer::LogLine;
use deployer::stack::App;

use crate::context::{self, StageArgs};
use crate::output::{OutputFormat, print_json};
use xtask::stack;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Tenant whose lines to show: a state's USPS code such as TX (`cargo xtask tenants list`
    /// shows them). Only lines that carry this tenant id are read
    #[arg(long)]
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
pub fn check(app: &App, tenant: &str, function: Option<&str>) -> anyhow::Result<Vec<String>> {
    deployer::tenant::validate_tenant_id(tenant)?;
    if !represent::registry::is_known(tenant) {
        bail!(
            "unknown tenant `{tenant}`: Represent's tenants are the states, DC and the \
             territories by USPS code; `cargo xtask tenants list` shows them"
        );
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
    clients: &deployer::Clients,
    app: &App,
    stage: &str,
    logical: &[String],
) -> anyhow::Result<Vec<String>> {
    let actual = deployer::observe::observe(clients, &app.name, stage).await?;
    let groups: Vec<String> = actual
        .functions
        .iter()
        .filter(|f| f.logical.as_ref().is_some_and(|l| logical.contains(l)))
        .map(|f| deployer::log_group::log_group_name(&f.name))
        .collect();
    if groups.is_empty() {
        bail!(
            "no function of the stack is deployed in stage `{stage}`: run `cargo xtask deploy \
             --stage {stage}`"
        );
    }
    Ok(groups)
}

/// `2026-11-27T09:41:02.123Z` for milliseconds since the epoch (UTC, proleptic Gregorian).
pub fn format_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// One line as text: `timestamp function stream message`, the message on one line.
pub fn render_line(line: &LogLine) -> String {
    format!(
        "{} {} {} {}",
        format_timestamp(line.timestamp_ms),
        line.function,
        line.log_stream,
        line.message.trim_end()
    )
}

fn print_lines(lines: &[LogLine], output: OutputFormat, ndjson: bool) -> anyhow::Result<()> {
    for line in lines {
        match output {
            OutputFormat::Text => println!("{}", render_line(line)),
            OutputFormat::Json if ndjson => println!("{}", serde_json::to_string(line)?),
            OutputFormat::Json => {}
        }
    }
    Ok(())
}

pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let app = stack::represent();
    let stage = context::checked_stage(&app, &args.stage.stage)?;
    let logical = check(&app, &args.tenant, args.function.as_deref())?;
    let target = context::connect(stage, &args.stage).await?;
    let groups = deployed_log_groups(&target.clients, &app, &stage.name, &logical).await?;

    let start = since_ms(args.since);
    let lines =
        deployer::tenant_events(&target.clients, &groups, &args.tenant, start, None).await?;
    if !args.follow {
        return match args.stage.output {
            OutputFormat::Json => print_json(&lines),
            OutputFormat::Text => print_lines(&lines, OutputFormat::Text, false),
        };
    }

    print_lines(&lines, args.stage.output, true)?;
    let mut last = lines.last().map(|l| l.timestamp_ms).unwrap_or(start);
    // Events of the last millisecond may arrive in several polls; their ids tell them apart.
    let mut seen: HashSet<String> = lines
        .iter()
        .filter(|l| l.timestamp_ms == last)
        .map(|l| l.event_id.clone())
        .collect();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let fresh = deployer::tenant_events(&target.clients, &groups, &args.tenant, last, None)
            .await
            .context("could not poll for new log lines")?;
        let new: Vec<LogLine> = fresh
            .into_iter()
            .filter(|l| !seen.contains(&l.event_id))
            .collect();
        print_lines(&new, args.stage.output, true)?;
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

    #[test]
    fn tenant_and_function_are_checked_against_the_rules_and_the_stack() {
        let app = stack::represent();
        assert_eq!(
            check(&app, "TX", Some("counties")).expect("valid"),
            vec!["counties"]
        );
        assert_eq!(
            check(&app, "TX", None).expect("valid").len(),
            app.functions.len()
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
