//! The `hello` function: answers with the tenant of the invoke and how many invokes its
//! execution environment has served. In tenant isolation mode an environment serves one tenant,
//! so each tenant counts on its own.

use std::sync::atomic::{AtomicU64, Ordering};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::Value;

/// Invokes served by this execution environment.
static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The answer, in this field order.
#[derive(Debug, Serialize)]
struct Answer {
    tenant: Option<String>,
    invocations: u64,
    event: Value,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(Answer {
            tenant: event.context.tenant_id,
            invocations: INVOCATIONS.fetch_add(1, Ordering::Relaxed) + 1,
            event: event.payload,
        })
    }))
    .await
}
