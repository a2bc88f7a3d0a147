//! The deployer's integration tests: one binary, one module per area.

mod apply;
mod build;
mod invoke;
mod log_group;
mod logs;
mod observe;
mod package;
mod parallel;
mod plan;
mod rest_api;
mod seed;
mod support;
mod tenant_role;
mod validate;
