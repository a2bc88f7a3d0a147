//! `cargo xtask invoke`: call a deployed function as one tenant and print its answer, in the
//! function's own key order; the exit code fails when the function does or its answer is an
//! error status, like `curl --fail`.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::value::RawValue;

use super::context::{self, StageArgs};
use super::output::{OutputFormat, pretty_json, write_stdout};
use super::{Ctx, Outcome};
use crate::stack::Tenancy;

#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Tenant to invoke as (the help names the app's tenants)
    #[arg(long, visible_alias = "tenant-id")]
    pub tenant: Option<String>,
    /// Function to invoke, by its name in the stack
    #[arg(long)]
    pub function: String,
    /// Event to send: JSON, `@file.json` to read it from a file, or `-` for stdin
    #[arg(long, default_value = "{}")]
    pub payload: String,
    /// Also print the end of the invocation's log (Lambda's last 4 KB) on stderr
    #[arg(long)]
    pub logs: bool,
}

#[derive(Debug, Serialize)]
struct InvokeResult<'a> {
    function: &'a str,
    tenant: Option<&'a str>,
    /// The answer's status: its `statusCode` (an API Gateway proxy answer) or `error.status`,
    /// else Lambda's status for the invoke.
    status: i64,
    /// Lambda's HTTP status for the Invoke call itself.
    invoke_status: i32,
    function_error: Option<&'a str>,
    payload: &'a RawValue,
    log: Option<&'a str>,
}

/// Reads `--payload`: inline JSON, `@path` or `-` (stdin), checked to be JSON.
fn read_payload(arg: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = if arg == "-" {
        let mut buffer = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buffer)
            .context("could not read the payload from stdin")?;
        buffer
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read(path).with_context(|| format!("could not read --payload file `{path}`"))?
    } else {
        arg.as_bytes().to_vec()
    };
    if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        let source = match arg {
            "-" => "stdin".to_string(),
            a if a.starts_with('@') => format!("`{}`", &a[1..]),
            a => format!("{a:?}"),
        };
        bail!("--payload is not valid JSON ({error}): {source}");
    }
    Ok(bytes)
}

/// The status an answer carries: `statusCode` (an API Gateway proxy answer) or
/// `error.status` (a direct-invoke error), if any.
fn answer_status(answer: &[u8]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(answer).ok()?;
    value["statusCode"]
        .as_i64()
        .or_else(|| value["error"]["status"].as_i64())
}

pub async fn invoke(ctx: &Ctx<'_>, args: InvokeArgs) -> Outcome {
    let app = &ctx.app.stack;
    let stage = context::checked_stage(ctx.app, &args.stage)?;
    // Everything the user typed is checked before the first network call.
    let Some(function) = app.find_function(&args.function) else {
        let known: Vec<&str> = app.functions.iter().map(|f| f.logical.as_str()).collect();
        bail!(
            "unknown function `{}`: the stack has {}",
            args.function,
            known.join(", ")
        );
    };
    let payload = read_payload(&args.payload)?;
    let tenant = args.tenant.as_deref();
    match (function.tenancy, tenant) {
        (Tenancy::PerTenant, None) => bail!(
            "function `{}` runs in tenant isolation mode: every invoke needs a tenant, for \
             example `--tenant {}` (`{} tenants list` shows the tenants)",
            function.logical,
            ctx.app.example_tenant(),
            ctx.app.bin_name
        ),
        (Tenancy::Shared, Some(_)) => bail!(
            "function `{}` is not in tenant isolation mode: invoke it without --tenant",
            function.logical
        ),
        _ => {}
    }
    if let Some(tenant) = tenant {
        crate::tenant::validate_tenant_id(tenant)?;
        if !ctx.app.is_tenant(tenant) {
            return Err(ctx.app.unknown_tenant(tenant));
        }
    }

    let target = context::connect(ctx, stage, &args.stage).await?;
    let actual = crate::observe::observe(&target.clients, &app.name, &stage.name).await?;
    let Some(deployed) = actual
        .functions
        .iter()
        .find(|f| f.logical.as_deref() == Some(function.logical.as_str()))
    else {
        bail!(
            "function `{}` is not deployed in stage `{}`: run `{} deploy --stage {}`",
            function.logical,
            stage.name,
            ctx.app.bin_name,
            stage.name
        );
    };
    let outcome =
        crate::invoke::invoke(&target.clients, &deployed.name, tenant, payload, args.logs).await?;
    // The answer as the function wrote it; an answer that is not JSON is shown as a string.
    let raw: Box<RawValue> = serde_json::from_slice(&outcome.payload).or_else(|_| {
        RawValue::from_string(serde_json::to_string(&String::from_utf8_lossy(
            &outcome.payload,
        ))?)
    })?;
    if args.logs
        && let Some(log) = &outcome.log_tail
    {
        eprint!("{log}");
    }
    let status = answer_status(raw.get().as_bytes()).unwrap_or(i64::from(outcome.status));
    match args.stage.output {
        OutputFormat::Json => {
            let result = serde_json::to_string(&InvokeResult {
                function: &function.logical,
                tenant,
                status,
                invoke_status: outcome.status,
                function_error: outcome.function_error.as_deref(),
                payload: &raw,
                log: outcome.log_tail.as_deref(),
            })?;
            let mut text = pretty_json(result.as_bytes()).unwrap_or(result);
            text.push('\n');
            write_stdout(text.as_bytes())?;
        }
        OutputFormat::Text if outcome.function_error.is_none() => {
            let mut text = pretty_json(raw.get().as_bytes()).unwrap_or_else(|| raw.to_string());
            text.push('\n');
            write_stdout(text.as_bytes())?;
        }
        OutputFormat::Text => {}
    }
    let who = tenant.unwrap_or("(none)");
    if let Some(kind) = &outcome.function_error {
        let answer: serde_json::Value = serde_json::from_str(raw.get()).unwrap_or_default();
        let error_type = answer["errorType"].as_str().unwrap_or(kind);
        let message = answer["errorMessage"].as_str().unwrap_or_default();
        bail!(
            "function `{}` failed for tenant {who}: {error_type}: {message}",
            function.logical,
        );
    }
    if status >= 400 {
        eprintln!(
            "error: function `{}` answered status {status} for tenant {who}",
            function.logical
        );
        return Ok(ExitCode::from(22));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_status_is_the_proxy_status_or_the_error_status() {
        assert_eq!(
            answer_status(br#"{"statusCode": 404, "body": "{}"}"#),
            Some(404)
        );
        assert_eq!(
            answer_status(br#"{"error": {"status": 403, "message": "no"}}"#),
            Some(403)
        );
        assert_eq!(answer_status(br#"{"state": {"id": "TX"}}"#), None);
        assert_eq!(answer_status(b"\"text\""), None);
    }

    #[test]
    fn a_payload_comes_inline_or_from_a_file() {
        assert_eq!(read_payload(r#"{"a":1}"#).expect("inline"), br#"{"a":1}"#);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("event.json");
        std::fs::write(&path, br#"{"path": "/x"}"#).expect("written");
        let arg = format!("@{}", path.display());
        assert_eq!(read_payload(&arg).expect("file"), br#"{"path": "/x"}"#);
        let err = read_payload("@/no/such/file.json").expect_err("missing");
        assert!(format!("{err:#}").contains("/no/such/file.json"), "{err:#}");
        let err = read_payload("{oops").expect_err("not JSON").to_string();
        assert!(err.contains("--payload is not valid JSON"), "{err}");
    }
}
