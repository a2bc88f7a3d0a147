//! The emulator's integration tests: the real `aws-sdk-lambda` and `aws-sdk-iam` clients over
//! HTTP against an emulator on an ephemeral port.

mod iam;
mod invoke;
mod invoke_probe;
mod isolation;
mod lambda;
mod restart;
mod runtime;
mod support;
