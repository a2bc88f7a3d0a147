//! `cargo xtask invoke`: call a deployed function as one tenant and print its answer.

use anyhow::{Context as _, bail};
use deployer::stack::Tenancy;
use serde::Serialize;

use crate::context::{self, StageArgs};
use crate::output::{OutputFormat, print_json};
use xtask::stack;

#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Tenant to invoke as: a state's USPS code such as TX (`cargo xtask tenants list` shows
    /// them). Required by functions in tenant isolation mode
    #[arg(long)]
    pub tenant: Option<String>,
    /// Function to invoke, by its name in the stack
    #[arg(long, default_value = "representatives")]
    pub function: String,
    /// Event to send, as JSON
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
    status: i32,
    function_error: Option<&'a str>,
    payload: serde_json::Value,
    log: Option<&'a str>,
}

pub async fn invoke(args: InvokeArgs) -> anyhow::Result<()> {
    let app = stack::represent();
    let stage = context::checked_stage(&app, &args.stage.stage)?;
    // Everything the user typed is checked before the first network call.
    let Some(function) = app.find_function(&args.function) else {
        let known: Vec<&str> = app.functions.iter().map(|f| f.logical.as_str()).collect();
        bail!(
            "unknown function `{}`: the stack has {}",
            args.function,
            known.join(", ")
        );
    };
    let payload: serde_json::Value = serde_json::from_str(&args.payload)
        .with_context(|| format!("--payload is not valid JSON: {:?}", args.payload))?;
    let tenant = args.tenant.as_deref();
    match (function.tenancy, tenant) {
        (Tenancy::PerTenant, None) => bail!(
            "function `{}` runs in tenant isolation mode: every invoke needs a tenant, for \
             example `--tenant TX` (`cargo xtask tenants list` shows the tenants)",
            function.logical
        ),
        (Tenancy::Shared, Some(_)) => bail!(
            "function `{}` is not in tenant isolation mode: invoke it without --tenant",
            function.logical
        ),
        _ => {}
    }
    if let Some(tenant) = tenant {
        deployer::tenant::validate_tenant_id(tenant)?;
        if !represent::registry::is_known(tenant) {
            bail!(
                "unknown tenant `{tenant}`: Represent's tenants are the states, DC and the \
                 territories by USPS code; `cargo xtask tenants list` shows them"
            );
        }
    }

    let target = context::connect(stage, &args.stage).await?;
    let actual = deployer::observe::observe(&target.clients, &app.name, &stage.name).await?;
    let Some(deployed) = actual
        .functions
        .iter()
        .find(|f| f.logical.as_deref() == Some(function.logical.as_str()))
    else {
        bail!(
            "function `{}` is not deployed in stage `{}`: run `cargo xtask deploy --stage {}`",
            function.logical,
            stage.name,
            stage.name
        );
    };
    let outcome = deployer::invoke::invoke(
        &target.clients,
        &deployed.name,
        tenant,
        serde_json::to_vec(&payload)?,
        args.logs,
    )
    .await?;
    let answer: serde_json::Value = serde_json::from_slice(&outcome.payload).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&outcome.payload).into_owned())
    });
    if args.logs
        && let Some(log) = &outcome.log_tail
    {
        eprint!("{log}");
    }
    match args.stage.output {
        OutputFormat::Json => print_json(&InvokeResult {
            function: &function.logical,
            tenant,
            status: outcome.status,
            function_error: outcome.function_error.as_deref(),
            payload: answer.clone(),
            log: outcome.log_tail.as_deref(),
        })?,
        OutputFormat::Text => {
            if outcome.function_error.is_none() {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            }
        }
    }
    if let Some(kind) = &outcome.function_error {
        let error_type = answer["errorType"].as_str().unwrap_or(kind);
        let message = answer["errorMessage"].as_str().unwrap_or_default();
        bail!(
            "function `{}` failed for tenant {}: {error_type}: {message}",
            function.logical,
            tenant.unwrap_or("(none)")
        );
    }
    Ok(())
}
