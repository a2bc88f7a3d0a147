//! Invoking a deployed function, with a tenant id for functions isolated per tenant.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine;

use crate::error::DeployError;
use crate::observe::Clients;
use crate::tenant::validate_tenant_id;

/// The result of one synchronous invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeOutcome {
    pub status: i32,
    pub payload: Vec<u8>,
    /// `Unhandled` (or the function's error type) when the function failed.
    pub function_error: Option<String>,
    /// The last 4 KB of the invocation's log, decoded.
    pub log_tail: Option<String>,
    pub executed_version: Option<String>,
}

/// Invokes a function synchronously. The tenant id is checked locally first, so a malformed id
/// is reported with the rule it breaks instead of a service error.
pub async fn invoke(
    clients: &Clients,
    function_name: &str,
    tenant: Option<&str>,
    payload: Vec<u8>,
    tail_logs: bool,
) -> Result<InvokeOutcome, DeployError> {
    if let Some(t) = tenant {
        validate_tenant_id(t)?;
    }
    let mut req = clients
        .lambda
        .invoke()
        .function_name(function_name)
        .payload(Blob::new(payload))
        .set_tenant_id(tenant.map(str::to_string));
    if tail_logs {
        req = req.log_type(LogType::Tail);
    }
    let out = req.send().await.map_err(|e| {
        let resource = match tenant {
            Some(t) => format!("function {function_name} (tenant {t:?})"),
            None => format!("function {function_name}"),
        };
        crate::step::call_error("Invoke", &resource, e)
    })?;
    let log_tail = out.log_result().map(|b64| {
        match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            // Not base64 after all: show it as it came rather than hide it.
            Err(_) => b64.to_string(),
        }
    });
    Ok(InvokeOutcome {
        status: out.status_code(),
        payload: out
            .payload()
            .map(|p| p.as_ref().to_vec())
            .unwrap_or_default(),
        function_error: out.function_error().map(str::to_string),
        log_tail,
        executed_version: out.executed_version().map(str::to_string),
    })
}
