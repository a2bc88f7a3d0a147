//! The deployer: typed stacks of multi-tenant Lambda functions, validated, packaged, observed,
//! planned and applied through the AWS SDK.
//!
//! The pipeline, in order: [`stack`] (the app as typed Rust, [`stack::validate`]), [`build`]
//! (`cargo build` for the emulator, one cargo-lambda run per architecture for AWS), [`package`]
//! (reproducible zips), [`desired`] (stack + stage + packages + tenant [`seed`]s), [`observe`]
//! (read AWS), [`plan`] (pure diff), [`apply`] (the only mutating code, a graph of steps run in
//! parallel).
//!
//! The layers, bottom up, each using only those below it:
//! - shared vocabulary: [`names`] (physical names and tags), [`error`], [`clients`],
//!   [`change`] (actions, resource kinds, a planned change), [`step`] (what apply steps share);
//! - one module per resource kind, owning its declaration, validation, resolution, observation,
//!   pure diff and apply steps: [`role`], [`function`], [`table`], [`seed`], [`log_group`],
//!   [`rest_api`];
//! - orchestration: [`stack`], [`desired`], [`observe`], [`plan`], [`apply`], and [`watch`], which
//!   rebuilds and updates the functions whose crates change.

pub mod apply;
pub mod build;
pub mod change;
#[cfg(feature = "cli")]
pub mod cli;
pub mod clients;
pub mod desired;
pub mod error;
pub mod function;
pub mod invoke;
pub mod log_group;
pub mod logs;
pub mod names;
pub mod observe;
pub mod package;
pub mod partitions;
pub mod plan;
pub mod rest_api;
pub mod role;
pub mod seed;
pub mod signing_key;
pub mod stack;
pub mod step;
pub mod table;
pub mod tenant;
pub mod tenant_role;
pub mod tools;
pub mod trail;
pub mod watch;

pub use apply::{ApplyFailure, ApplyOptions, ApplyReport, apply, destroy};
pub use build::{BuildRequest, build};
pub use desired::{
    Desired, DesiredFunction, DesiredRole, desired, desired_for_seeding, desired_with_seeds,
};
pub use error::{BuildError, DeployError, PackageError, StackError, StackErrors, TenantIdError};
pub use invoke::{InvokeOutcome, invoke};
pub use log_group::ActualLogGroup;
pub use logs::{LogLine, ReportRecord, TenantStats, tenant_events, tenant_stats};
pub use names::{
    TAG_APP, TAG_LOGICAL, TAG_STAGE, function_name, replacement_name, role_name, table_name,
};
pub use observe::{
    Actual, ActualFunction, ActualRole, Clients, api_urls, observe, observe_seeds, observe_stage,
};
pub use package::{Package, package_bootstrap, package_file};
pub use plan::{
    Action, Change, Op, Plan, RenderOptions, ResourceKind, Summary, plan, plan_destroy, plan_seeds,
};
pub use rest_api::{
    ActualRestApi, ApiKind, DesiredRestApi, RestApi, Route, TenantSource, invoke_url,
};
pub use role::RoleOp;
pub use seed::{ActualPartition, DesiredSeed, Seed, SeedDiff};
pub use stack::{App, Architecture, Function, LogFormat, Role, Stage, Target, Tenancy, validate};
pub use table::{ActualTable, DesiredTable, KeySchema, Table};
pub use tenant::validate_tenant_id;
