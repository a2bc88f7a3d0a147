//! The `representatives` Lambda function: a state's senators and House seats, answered from an
//! execution environment that only ever serves that state.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use represent::{Deps, DynamoSource};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    represent::logging::init();
    let deps = Deps::new(&representatives::FUNCTION, DynamoSource::from_env().await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        represent::handle(event, &deps)
    }))
    .await
}
