//! hello-tenants through its own command line, against an emulator on an ephemeral port: the
//! deployer's commands work for an app that is not Represent, and behave as a user of Terraform,
//! CDK or cargo-lambda expects (prompts on real stages, exit codes, pipes, payloads).

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// Deploying tests run one at a time: two cargo-lambda builds at once replace each other's
/// binaries while the other deploy packages them.
fn deploying() -> std::sync::MutexGuard<'static, ()> {
    static DEPLOYS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    DEPLOYS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The CLI with no terminal on stdin and nothing from the user's AWS setup: AWS stages get fixed
/// credentials that only the emulator accepts.
fn hello() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hello-tenants"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    command
}

fn run(args: &[&str]) -> Output {
    hello().args(args).output().expect("hello-tenants runs")
}

fn ok(args: &[&str]) -> Output {
    let output = run(args);
    assert!(
        output.status.success(),
        "{args:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&ok(args).stdout).expect("--output json prints JSON")
}

/// Runs with stdout already closed, as `| head` leaves it: the command must still succeed,
/// quietly.
fn closed_stdout(args: &[&str], port: &str) -> Output {
    let mut child = hello()
        .args(args)
        .env("REPRESENT_EMULATOR_PORT", port)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hello-tenants runs");
    drop(child.stdout.take());
    child.wait_with_output().expect("hello-tenants ends")
}

struct Emulator {
    runtime: tokio::runtime::Runtime,
    emulator: Option<emulator::Emulator>,
    _state: tempfile::TempDir,
}

impl Emulator {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let state = tempfile::tempdir().expect("temp dir");
        let emulator = runtime.block_on(async {
            let mut config = emulator::Config::new(state.path());
            config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            emulator::Emulator::start(config)
                .await
                .expect("emulator starts")
        });
        Emulator {
            runtime,
            emulator: Some(emulator),
            _state: state,
        }
    }

    fn url(&self) -> String {
        self.emulator.as_ref().expect("running").endpoint()
    }

    fn lambda(&self) -> aws_sdk_lambda::Client {
        let url = self.url();
        self.runtime.block_on(async {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(deployer::clients::https_client())
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url(url)
                .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .load()
                .await;
            aws_sdk_lambda::Client::new(&sdk)
        })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            self.runtime.block_on(emulator.shutdown());
        }
    }
}

/// Deploy, invoke as both tenants (each counts on its own environment), seed, and destroy.
#[test]
fn hello_deploys_answers_each_tenant_from_its_own_environment_and_is_destroyed() {
    let _one_at_a_time = deploying();
    let emulator = Emulator::start();
    let url = emulator.url();
    let url = url.as_str();

    let first = json(&["deploy", "--endpoint-url", url, "--output", "json"]);
    assert!(first["mutating_calls"].as_u64() > Some(0), "{first}");
    let planned = |args: &[&str]| {
        let output = run(args);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, text) = planned(&["plan", "--endpoint-url", url, "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "an up-to-date stage exits 0:\n{text}");
    assert!(text.contains("No changes"), "{text}");
    assert!(
        !text.contains("no-op"),
        "unchanged resources collapse: {text}"
    );
    // `-v`: every resource of the plan, and every AWS call made on stderr.
    let verbose = ok(&["plan", "--endpoint-url", url, "-v"]);
    let listed = String::from_utf8_lossy(&verbose.stdout);
    assert!(
        listed.contains("no-op") && listed.contains("function hello-dev-hello"),
        "{listed}"
    );
    let calls = String::from_utf8_lossy(&verbose.stderr);
    assert!(calls.contains("Lambda.ListFunctions GET"), "{calls}");

    let invoke = |tenant: &str| {
        json(&[
            "invoke",
            "--endpoint-url",
            url,
            "--tenant",
            tenant,
            "--output",
            "json",
        ])
    };
    let blue = invoke("blue");
    assert_eq!(blue["payload"]["tenant"], "blue", "{blue}");
    assert_eq!(blue["payload"]["invocations"], 1, "{blue}");
    assert_eq!(blue["status"], 200, "{blue}");
    assert_eq!(invoke("blue")["payload"]["invocations"], 2);
    // The AWS CLI's spelling of the flag; green's environment has served nobody else.
    let green = json(&[
        "invoke",
        "--endpoint-url",
        url,
        "--tenant-id",
        "green",
        "--output",
        "json",
    ]);
    assert_eq!(green["payload"]["tenant"], "green", "{green}");
    assert_eq!(green["payload"]["invocations"], 1, "{green}");

    // The answer in the function's own key order, not sorted.
    let text =
        String::from_utf8(ok(&["invoke", "--endpoint-url", url, "--tenant", "green"]).stdout)
            .expect("UTF-8");
    let tenant_at = text.find("\"tenant\"").expect("tenant");
    let invocations_at = text.find("\"invocations\"").expect("invocations");
    assert!(tenant_at < invocations_at, "{text}");

    // The payload from a file and from stdin.
    let dir = tempfile::tempdir().expect("temp dir");
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"from": "a file", "n": [1, 2]}"#).expect("event written");
    let from_file = json(&[
        "invoke",
        "--endpoint-url",
        url,
        "--tenant",
        "blue",
        "--payload",
        &format!("@{}", event.display()),
        "--output",
        "json",
    ]);
    assert_eq!(
        from_file["payload"]["event"]["from"], "a file",
        "{from_file}"
    );
    let mut child = hello()
        .args([
            "invoke",
            "--endpoint-url",
            url,
            "--tenant",
            "blue",
            "--payload",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("hello-tenants runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"from": "stdin"}"#)
        .expect("payload written");
    let from_stdin = child.wait_with_output().expect("invoke ends");
    assert!(from_stdin.status.success());
    assert!(
        String::from_utf8_lossy(&from_stdin.stdout).contains(r#""from": "stdin""#),
        "{}",
        String::from_utf8_lossy(&from_stdin.stdout)
    );
    let missing = run(&[
        "invoke",
        "--endpoint-url",
        url,
        "--tenant",
        "blue",
        "--payload",
        "@/no/such.json",
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such.json"));

    // A reader that goes away early (`| head`) is no failure and no panic.
    for args in [
        vec!["invoke", "--endpoint-url", url, "--tenant", "blue"],
        vec!["plan", "--endpoint-url", url, "--verbose"],
        vec!["stats", "--endpoint-url", url, "--output", "json"],
        vec!["logs", "--endpoint-url", url, "--tenant", "blue"],
        vec!["completions", "bash"],
        vec!["emulator", "status"],
    ] {
        let port = url.rsplit(':').next().expect("a port");
        let output = closed_stdout(&args, port);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}:\n{stderr}");
    }

    // The seeded table needs nothing more; an unknown tenant is refused before any call.
    let seeded = json(&["tenants", "seed", "--endpoint-url", url, "--output", "json"]);
    assert_eq!(seeded["mutating_calls"], 0, "{seeded}");
    let unknown = run(&["invoke", "--endpoint-url", url, "--tenant", "red"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("unknown tenant `red`"), "{stderr}");

    let destroyed = json(&[
        "destroy",
        "--endpoint-url",
        url,
        "--yes",
        "--output",
        "json",
    ]);
    for change in destroyed["plan"]["changes"].as_array().expect("changes") {
        assert_eq!(change["action"], "delete", "{change}");
    }
    let gone = run(&["invoke", "--endpoint-url", url, "--tenant", "blue"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not deployed"));
}

/// A stage that is not the emulator (`prod`, here through the emulator's endpoint): a plan that
/// deletes something is shown and refused without a terminal unless `--yes`; `destroy` too.
#[test]
fn a_real_stage_asks_before_deleting_and_yes_proceeds() {
    let _one_at_a_time = deploying();
    let emulator = Emulator::start();
    let url = emulator.url();
    let url = url.as_str();
    let prod = |args: &[&'static str]| -> Vec<&str> {
        let mut all = vec!["--stage", "prod", "--endpoint-url", url];
        all.extend_from_slice(args);
        all
    };
    let code = |args: &[&str]| run(args).status.code();

    // Creating deletes nothing: no question asked.
    let mut args = vec!["deploy"];
    args.extend(prod(&[]));
    ok(&args);
    let mut plan = vec!["plan"];
    plan.extend(prod(&["--detailed-exitcode"]));
    assert_eq!(code(&plan), Some(0));

    // A function of the stage that left the stack (tagged as the deployer tags): the next plan
    // deletes it.
    let lambda = emulator.lambda();
    emulator.runtime.block_on(async {
        let role = lambda
            .get_function()
            .function_name("hello-prod-hello")
            .send()
            .await
            .expect("deployed")
            .configuration()
            .and_then(|c| c.role())
            .expect("a role")
            .to_string();
        let code = deployer::package_bootstrap(b"#!/bin/sh\nexit 1\n");
        lambda
            .create_function()
            .function_name("hello-prod-old")
            .role(role)
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .handler("bootstrap")
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(code.bytes))
                    .build(),
            )
            .tags(deployer::TAG_APP, "hello")
            .tags(deployer::TAG_STAGE, "prod")
            .tags(deployer::TAG_LOGICAL, "old")
            .send()
            .await
            .expect("an old function is created");
    });
    assert_eq!(code(&plan), Some(2), "changes: exit 2");

    let refused = run(&args);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("--yes") && stderr.contains("function hello-prod-old"),
        "{stderr}"
    );
    assert!(
        stdout.contains("delete") && stdout.contains("hello-prod-old"),
        "the plan is shown first:\n{stdout}"
    );
    assert_eq!(code(&plan), Some(2), "nothing was changed");

    let mut yes = args.clone();
    yes.push("--yes");
    ok(&yes);
    assert_eq!(code(&plan), Some(0));

    let mut destroy = vec!["destroy"];
    destroy.extend(prod(&[]));
    let refused = run(&destroy);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    destroy.push("--yes");
    let destroyed = ok(&destroy);
    assert!(String::from_utf8_lossy(&destroyed.stdout).contains("Destroyed hello/prod"));
}
