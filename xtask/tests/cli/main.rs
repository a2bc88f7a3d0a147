//! The `cargo xtask` command line as a user meets it: help texts, and bad input rejected before
//! any network call (every test points the CLI at a closed port, so reaching the network would
//! fail with a different message).

use std::process::{Command, Output, Stdio};

/// Tests that deploy run one at a time: each deploy runs cargo-lambda, and two builds of the
/// same functions at once replace each other's `bootstrap` while the other deploy packages it.
pub fn deploying() -> std::sync::MutexGuard<'static, ()> {
    static DEPLOYS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    DEPLOYS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A loopback port nothing listens on: any AWS call would fail with a connection error.
const CLOSED: &str = "http://127.0.0.1:9";

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("xtask runs")
}

fn fails_with(args: &[&str], expected: &[&str]) {
    let output = xtask(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} should fail");
    for needle in expected {
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("dispatch failure") && !stderr.contains("Connection refused"),
        "{args:?} failed on the network instead:\n{stderr}"
    );
}

#[test]
fn every_command_explains_itself() {
    for (command, flags) in [
        (
            vec!["deploy"],
            vec![
                "--stage",
                "--dry-run",
                "--endpoint-url",
                "--output",
                "--parallelism",
            ],
        ),
        (vec!["watch"], vec!["--stage", "--endpoint-url"]),
        (vec!["plan"], vec!["--stage", "--output"]),
        (
            vec!["invoke"],
            vec!["--tenant", "--function", "--payload", "--logs"],
        ),
        (vec!["destroy"], vec!["--stage", "--yes"]),
        (vec!["emulator", "start"], vec!["--port"]),
        (vec!["emulator", "status"], vec!["--output"]),
        (vec!["tenants", "list"], vec!["--output"]),
        (
            vec!["audit"],
            vec!["--tenant", "--since", "--denied", "--output"],
        ),
    ] {
        let mut args = command.clone();
        args.push("--help");
        let output = xtask(&args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}");
        for flag in flags {
            assert!(
                stdout.contains(flag),
                "{args:?} documents {flag}:\n{stdout}"
            );
        }
    }
}

#[test]
fn audit_of_the_emulator_on_an_aws_stage_points_to_cloudtrail_lake_before_any_call() {
    fails_with(
        &[
            "audit",
            "--stage",
            "prod",
            "--source",
            "emulator",
            "--endpoint-url",
            CLOSED,
        ],
        &["stage prod is on AWS", "--source lake"],
    );
}

#[test]
fn deploy_refuses_no_parallelism_before_any_call() {
    fails_with(
        &["deploy", "--parallelism", "0", "--endpoint-url", CLOSED],
        &["--parallelism", "0"],
    );
}

#[test]
fn invoke_without_tenant_says_how_to_pass_one() {
    fails_with(
        &["invoke", "--endpoint-url", CLOSED],
        &["tenant isolation mode", "--tenant TX"],
    );
}

#[test]
fn invoke_rejects_tenant_ids_that_aws_would_refuse() {
    let long = "A".repeat(257);
    for bad in ["", "T\u{7}X", "TX;rm", long.as_str()] {
        fails_with(
            &["invoke", "--endpoint-url", CLOSED, "--tenant", bad],
            &["tenant id"],
        );
    }
}

#[test]
fn invoke_rejects_a_tenant_that_is_not_a_state() {
    // `../x` is a valid Lambda tenant id, but no state: it must never reach a function.
    for unknown in ["ZZ", "../x", "tx"] {
        fails_with(
            &["invoke", "--endpoint-url", CLOSED, "--tenant", unknown],
            &["unknown tenant", "cargo xtask tenants list"],
        );
    }
}

#[test]
fn invoke_rejects_unknown_function_and_bad_payload() {
    fails_with(
        &[
            "invoke",
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
            "invoke",
            "--endpoint-url",
            CLOSED,
            "--tenant",
            "TX",
            "--payload",
            "{oops",
        ],
        &["--payload is not valid JSON"],
    );
}

#[test]
fn unknown_stage_is_rejected() {
    fails_with(
        &["plan", "--stage", "qa", "--endpoint-url", CLOSED],
        &["qa"],
    );
}

#[test]
fn destroy_needs_confirmation() {
    fails_with(
        &["destroy", "--stage", "dev", "--endpoint-url", CLOSED],
        &["--yes"],
    );
}

#[test]
fn an_aws_stage_without_credentials_says_how_to_provide_them() {
    let home = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    let output = command
        .args(["plan", "--stage", "prod"])
        .env("HOME", home.path())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        // No instance metadata lookup: this machine is not in AWS, and the test must not try.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .output()
        .expect("xtask runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no AWS credentials"), "{stderr}");
    assert!(stderr.contains("AWS_PROFILE"), "{stderr}");
    assert!(stderr.contains("--stage dev"), "{stderr}");
    assert!(
        !stderr.contains("cargo-lambda"),
        "nothing was built first:\n{stderr}"
    );
}

#[test]
fn a_closed_or_malformed_endpoint_is_one_sentence_saying_what_to_do() {
    let output = xtask(&["plan", "--endpoint-url", CLOSED]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
    assert!(
        stderr.contains(CLOSED) && stderr.contains("`cargo xtask emulator start`"),
        "{stderr}"
    );
    for bad in ["127.0.0.1:9456", "htp://x", "http://host:99999", "http://"] {
        fails_with(
            &["invoke", "--tenant", "TX", "--endpoint-url", bad],
            &["--endpoint-url", bad, "such as `http://127.0.0.1:9456`"],
        );
    }
}

#[test]
fn a_missing_aws_profile_is_named() {
    let home = tempfile::tempdir().expect("temp dir");
    for (flag, env) in [(None, Some("nosuch")), (Some("nosuch"), None)] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        command
            .args(["plan", "--stage", "prod"])
            .env("HOME", home.path())
            .env("AWS_CONFIG_FILE", home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                home.path().join("credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        if let Some(profile) = flag {
            command.args(["--profile", profile]);
        }
        if let Some(profile) = env {
            command.env("AWS_PROFILE", profile);
        }
        let output = command.output().expect("xtask runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains("AWS profile `nosuch`") && !stderr.contains("no AWS region"),
            "{stderr}"
        );
    }
}

#[test]
fn completions_are_printed_for_each_shell_and_usage_says_cargo_xtask() {
    for shell in ["bash", "zsh", "fish"] {
        let output = xtask(&["completions", shell]);
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(
            script.contains("deploy") && script.contains("endpoint-url"),
            "{shell}"
        );
    }
    let help = String::from_utf8_lossy(&xtask(&["deploy", "--help"]).stdout).into_owned();
    assert!(help.contains("Usage: cargo xtask deploy"), "{help}");
}

/// The README's flow, through the CLI, against an emulator on an ephemeral port: deploy prints a
/// machine-readable plan, a second deploy changes nothing, invoke answers as the tenant, destroy
/// removes the stage.
#[test]
fn deploy_invoke_redeploy_and_destroy_through_the_cli() {
    let _one_at_a_time = deploying();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let state = tempfile::tempdir().expect("temp dir");
    let emulator = runtime.block_on(async {
        let mut config = emulator::Config::new(state.path());
        config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        emulator::Emulator::start(config)
            .await
            .expect("emulator starts")
    });
    let url = emulator.endpoint();
    let json = |args: &[&str]| -> serde_json::Value {
        let output = xtask(args);
        assert!(
            output.status.success(),
            "{args:?}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("--output json prints JSON")
    };

    let first = json(&["deploy", "--endpoint-url", &url, "--output", "json"]);
    let changes = first["plan"]["changes"].as_array().expect("changes");
    assert!(!changes.is_empty());
    for change in changes {
        let action = (change["action"].as_str(), change["kind"].as_str());
        assert!(
            matches!(action, (Some("create"), _) | (Some("update"), Some("seed"))),
            "a first deploy only creates and seeds: {change}"
        );
        assert!(change["resource"].is_string() && change["reason"].is_string());
    }
    assert!(first["mutating_calls"].as_u64() > Some(0));

    let second = json(&["deploy", "--endpoint-url", &url, "--output", "json"]);
    assert_eq!(second["mutating_calls"], 0, "{second}");
    for change in second["plan"]["changes"].as_array().expect("changes") {
        assert_eq!(change["action"], "no_op", "{change}");
    }

    // Seeding alone: nothing differs, nothing is written; a record lost from Texas's partition
    // is put back, and no other state's partition is read.
    let seeded = json(&[
        "tenants",
        "seed",
        "--endpoint-url",
        &url,
        "--tenant",
        "TX",
        "--output",
        "json",
    ]);
    assert_eq!(seeded["mutating_calls"], 0, "{seeded}");
    runtime.block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(deployer::clients::https_client())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&url)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await;
        aws_sdk_dynamodb::Client::new(&sdk)
            .delete_item()
            .table_name("represent-dev-data")
            .key(
                "tenant",
                aws_sdk_dynamodb::types::AttributeValue::S("TX".into()),
            )
            .key(
                "record",
                aws_sdk_dynamodb::types::AttributeValue::S("SEAT#07".into()),
            )
            .send()
            .await
            .expect("a record is deleted behind the deployer's back");
    });
    let seeded = json(&[
        "tenants",
        "seed",
        "--endpoint-url",
        &url,
        "--tenant",
        "TX",
        "--output",
        "json",
    ]);
    assert_eq!(seeded["mutating_calls"], 1, "{seeded}");
    let changes = seeded["plan"]["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "only Texas: {seeded}");

    let answer = json(&[
        "invoke",
        "--endpoint-url",
        &url,
        "--tenant",
        "TX",
        "--output",
        "json",
    ]);
    assert_eq!(
        answer["payload"]["state"]["id"], "TX",
        "{}",
        answer["payload"]["state"]
    );
    assert_eq!(answer["function_error"], serde_json::Value::Null);
    let text = xtask(&["invoke", "--endpoint-url", &url, "--tenant", "CA"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("\"name\": \"California\""), "{text}");

    let destroyed = json(&[
        "destroy",
        "--endpoint-url",
        &url,
        "--yes",
        "--output",
        "json",
    ]);
    for change in destroyed["plan"]["changes"].as_array().expect("changes") {
        assert_eq!(change["action"], "delete", "{change}");
    }
    fails_with(
        &["invoke", "--endpoint-url", &url, "--tenant", "TX"],
        &["not deployed", "cargo xtask deploy"],
    );
    runtime.block_on(emulator.shutdown());
}

mod logs;
