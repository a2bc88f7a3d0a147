//! The SDK clients the deployer talks through, built once at the edge and passed in.

/// One client per service, and the endpoint they all call when it is not AWS's.
#[derive(Debug, Clone)]
pub struct Clients {
    pub lambda: aws_sdk_lambda::Client,
    pub iam: aws_sdk_iam::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    /// The endpoint every call goes to when it is not AWS's (an emulator): REST API invoke URLs
    /// are then paths on it. The SDK's service configs do not expose it, so it is kept here.
    pub endpoint_url: Option<String>,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients {
            lambda: aws_sdk_lambda::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            apigateway: aws_sdk_apigateway::Client::new(config),
            endpoint_url: config.endpoint_url().map(str::to_string),
        }
    }

    /// The region calls go to, from the Lambda client's configuration.
    pub fn region(&self) -> String {
        self.lambda
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_default()
    }
}
