//! Answers to a direct invoke (`cargo xtask invoke --tenant TX --function F`), the form every
//! Represent function accepts besides API Gateway events.

use serde_json::{Value, json};

/// Errors a function reports to its caller; the variant name is the stable `errorType`.
#[derive(Debug)]
pub enum FunctionError {
    /// The invoke carried no tenant id: every Represent function runs in tenant isolation mode.
    MissingTenant,
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FunctionError::MissingTenant => {
                f.write_str("this function serves one state per invoke: pass a tenant id")
            }
        }
    }
}

impl std::error::Error for FunctionError {}

impl From<FunctionError> for lambda_runtime::Diagnostic {
    fn from(error: FunctionError) -> Self {
        let error_type = match error {
            FunctionError::MissingTenant => "MissingTenant",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: error.to_string(),
        }
    }
}

/// Answers a direct invoke for `tenant`. Tenant-specific data arrives with the tenants work; for
/// now the answer says which function served which tenant, which is what a caller checks first.
pub fn handle(
    function: &str,
    tenant: Option<&str>,
    _payload: &Value,
) -> Result<Value, FunctionError> {
    let tenant = tenant.ok_or(FunctionError::MissingTenant)?;
    Ok(json!({
        "function": function,
        "tenant": tenant,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_for_the_invoking_tenant() {
        let answer = handle("representatives", Some("TX"), &json!({})).unwrap();
        assert_eq!(answer["tenant"], "TX");
        assert_eq!(answer["function"], "representatives");
    }

    #[test]
    fn refuses_an_invoke_without_tenant() {
        let error = handle("representatives", None, &json!({})).unwrap_err();
        let diagnostic = lambda_runtime::Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "MissingTenant");
    }
}
