//! The emulator's integration tests: the real `aws-sdk-lambda`, `aws-sdk-iam` and
//! `aws-sdk-dynamodb` clients over HTTP against an emulator on an ephemeral port.

mod dynamodb;
mod iam;
mod invoke;
mod invoke_probe;
mod isolation;
mod lambda;
mod restart;
mod runtime;
mod support;
