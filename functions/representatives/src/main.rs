//! The `representatives` Lambda function: a state's senators and House seats, answered from an
//! execution environment that only ever serves that state.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        represent::direct::handle(
            "representatives",
            event.context.tenant_id.as_deref(),
            &event.payload,
        )
    }))
    .await
}
