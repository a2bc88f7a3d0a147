//! The deployer's integration tests: one binary, one module per area.

mod apply;
mod build;
mod fixtures;
mod invoke;
mod log_group;
mod logs;
mod observe;
mod package;
mod parallel;
mod partitions;
mod plan;
mod plan_snapshots;
mod rest_api;
mod seed;
mod signing_key;
mod support;
mod tenant_role;
mod trail;
mod transcript;
mod validate;
