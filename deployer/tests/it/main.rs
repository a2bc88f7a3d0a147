//! The deployer's integration tests: one binary, one module per area.

mod apply;
mod build;
mod invoke;
mod observe;
mod package;
mod plan;
mod seed;
mod support;
mod validate;
