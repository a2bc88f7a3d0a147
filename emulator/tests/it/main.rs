//! The emulator's integration tests: the real `aws-sdk-lambda`, `aws-sdk-iam`, `aws-sdk-dynamodb`
//! and `aws-sdk-cloudwatchlogs` clients over HTTP against an emulator on an ephemeral port.

mod apigateway;
mod boto3;
mod cloudwatch_logs;
mod dynamodb;
mod dynamodb_items;
mod fidelity;
mod iam;
mod invoke;
mod invoke_probe;
mod isolation;
mod lambda;
mod restart;
mod runtime;
mod support;
