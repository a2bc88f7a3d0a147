//! `cargo xtask logs` and `cargo xtask stats` as a user meets them: bad input refused before any
//! call, and against an emulator, one tenant's lines and per-tenant statistics.

use super::{CLOSED, fails_with, xtask};

#[test]
fn logs_and_stats_explain_themselves() {
    for (command, flags) in [
        (
            "logs",
            vec!["--tenant", "--function", "--since", "--follow", "--output"],
        ),
        ("stats", vec!["--since", "--html", "--output"]),
    ] {
        let output = xtask(&[command, "--help"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{command}");
        for flag in flags {
            assert!(
                stdout.contains(flag),
                "{command} documents {flag}:\n{stdout}"
            );
        }
    }
}

#[test]
fn logs_checks_tenant_function_and_window_before_any_call() {
    fails_with(
        &["logs", "--endpoint-url", CLOSED, "--tenant", "TX;rm"],
        &["tenant id"],
    );
    fails_with(
        &["logs", "--endpoint-url", CLOSED, "--tenant", "ZZ"],
        &["unknown tenant", "cargo xtask tenants list"],
    );
    fails_with(
        &[
            "logs",
            "--endpoint-url",
            CLOSED,
            "--tenant",
            "TX",
            "--function",
            "nope",
        ],
        &["unknown function `nope`", "representatives"],
    );
    fails_with(
        &[
            "logs",
            "--endpoint-url",
            CLOSED,
            "--tenant",
            "TX",
            "--since",
            "1w",
        ],
        &["--since", "30s, 15m, 1h or 2d"],
    );
    fails_with(
        &["stats", "--endpoint-url", CLOSED, "--since", "yesterday"],
        &["--since", "30s, 15m, 1h or 2d"],
    );
}

/// Deploys to an emulator, invokes as Texas and California, then reads Texas's lines: every
/// line is Texas's, and `stats` counts both tenants and writes its HTML page.
#[test]
fn logs_show_only_the_tenant_and_stats_count_every_tenant() {
    let _one_at_a_time = crate::deploying();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let state = tempfile::tempdir().expect("temp dir");
    let config = || {
        let mut config = emulator::Config::new(state.path());
        config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config
    };
    let emulator = runtime.block_on(async {
        emulator::Emulator::start(config())
            .await
            .expect("emulator starts")
    });
    let url = emulator.endpoint();
    let ok = |args: &[&str]| -> Vec<u8> {
        let output = xtask(args);
        assert!(
            output.status.success(),
            "{args:?}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };
    let first: serde_json::Value =
        serde_json::from_slice(&ok(&["deploy", "--endpoint-url", &url, "--output", "json"]))
            .expect("JSON deploy");
    let created = |resource: &str| {
        first["plan"]["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["resource"] == resource && c["action"] == "create")
    };
    assert!(
        created("log group /aws/lambda/represent-dev-representatives"),
        "{first}"
    );
    // Log groups at the stage's retention are left alone by the next deploy.
    let second: serde_json::Value =
        serde_json::from_slice(&ok(&["deploy", "--endpoint-url", &url, "--output", "json"]))
            .expect("JSON deploy");
    assert_eq!(second["mutating_calls"], 0, "{second}");
    for tenant in ["TX", "TX", "CA"] {
        ok(&["invoke", "--endpoint-url", &url, "--tenant", tenant]);
    }
    // Stopping the emulator drains every environment's output into the log store, so the
    // restarted one holds every line without any waiting.
    runtime.block_on(emulator.shutdown());
    let emulator = runtime.block_on(async {
        emulator::Emulator::start(config())
            .await
            .expect("emulator restarts")
    });
    let url = emulator.endpoint();

    let lines: serde_json::Value = serde_json::from_slice(&ok(&[
        "logs",
        "--endpoint-url",
        &url,
        "--tenant",
        "TX",
        "--output",
        "json",
    ]))
    .expect("JSON lines");
    let lines = lines.as_array().expect("an array of lines");
    assert!(!lines.is_empty(), "Texas was invoked twice");
    for line in lines {
        // `--output json` gives each message as the object the function or platform wrote.
        assert!(line["message"].is_object(), "a parsed message: {line}");
        let message = line["message"].to_string();
        assert!(message.contains("\"TX\""), "not Texas's: {message}");
        assert!(!message.contains("\"CA\""), "California leaked: {message}");
        assert_eq!(line["function"], "represent-dev-representatives", "{line}");
    }
    // The function's own request lines carry the tenant at the top level, beside the platform
    // records' `record.tenantId`: both kinds are found.
    let parsed: Vec<serde_json::Value> = lines.iter().map(|l| l["message"].clone()).collect();
    assert!(
        parsed
            .iter()
            .any(|m| m["tenantId"] == "TX" && m.get("record").is_none()),
        "an application line with a top-level tenantId: {parsed:?}"
    );
    assert!(
        parsed.iter().any(|m| m["record"]["tenantId"] == "TX"),
        "a platform record: {parsed:?}"
    );
    let stamps: Vec<i64> = lines
        .iter()
        .map(|l| l["timestamp_ms"].as_i64().expect("timestamp"))
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "newest last");

    // As text, one readable line per event: time, function, tenant, level, message; each
    // invocation's platform report as `REPORT <ms> ms`, `cold` on a new environment.
    let text =
        String::from_utf8(ok(&["logs", "--endpoint-url", &url, "--tenant", "CA"])).expect("UTF-8");
    assert!(text.lines().count() > 0, "{text}");
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(fields.len() >= 4, "{line}");
        assert!(fields[0].ends_with('Z'), "a UTC time first: {line}");
        assert_eq!(fields[1], "representatives", "{line}");
        assert_eq!(fields[2], "CA", "{line}");
        assert!(!line.contains('{'), "no raw JSON: {line}");
    }
    assert!(
        text.lines()
            .any(|l| l.contains(" CA REPORT ") && l.ends_with(" ms cold")),
        "{text}"
    );

    let html = state.path().join("report.html");
    let html_arg = html.to_str().expect("UTF-8 path");
    let stats: serde_json::Value = serde_json::from_slice(&ok(&[
        "stats",
        "--endpoint-url",
        &url,
        "--html",
        html_arg,
        "--output",
        "json",
    ]))
    .expect("JSON stats");
    let tenants = stats["tenants"].as_array().expect("tenants");
    let of = |id: &str| {
        tenants
            .iter()
            .find(|t| t["tenant"] == id)
            .unwrap_or_else(|| panic!("{id} in {stats}"))
    };
    assert_eq!(of("TX")["invocations"], 2, "{stats}");
    assert_eq!(
        of("TX")["cold_starts"],
        1,
        "one environment served Texas: {stats}"
    );
    assert_eq!(of("CA")["invocations"], 1, "{stats}");
    let page = std::fs::read_to_string(&html).expect("the HTML page was written");
    assert_eq!(page.matches(r#"class="bar invocations""#).count(), 2);
    runtime.block_on(emulator.shutdown());
}
