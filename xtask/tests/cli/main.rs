//! The `cargo xtask` command line as a user meets it: help texts, and bad input rejected before
//! any network call (every test points the CLI at a closed port, so reaching the network would
//! fail with a different message).

use std::process::{Command, Output, Stdio};

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
        "{args:?} reached the network:\n{stderr}"
    );
}

#[test]
fn every_command_explains_itself() {
    for (command, flags) in [
        (vec!["deploy"], vec!["--stage", "--dry-run", "--endpoint-url", "--output"]),
        (vec!["plan"], vec!["--stage", "--output"]),
        (vec!["invoke"], vec!["--tenant", "--function", "--payload", "--logs"]),
        (vec!["destroy"], vec!["--stage", "--yes"]),
        (vec!["emulator", "start"], vec!["--port"]),
        (vec!["emulator", "status"], vec!["--output"]),
        (vec!["tenants", "list"], vec!["--output"]),
    ] {
        let mut args = command.clone();
        args.push("--help");
        let output = xtask(&args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}");
        for flag in flags {
            assert!(stdout.contains(flag), "{args:?} documents {flag}:\n{stdout}");
        }
    }
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
        &["invoke", "--endpoint-url", CLOSED, "--tenant", "TX", "--function", "nope"],
        &["unknown function `nope`", "representatives"],
    );
    fails_with(
        &["invoke", "--endpoint-url", CLOSED, "--tenant", "TX", "--payload", "{oops"],
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
