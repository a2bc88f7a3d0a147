//! The deployer: typed stacks of multi-tenant Lambda functions, validated, packaged, observed,
//! planned and applied through the AWS SDK.
//!
//! The pipeline, in order: [`stack`] (the app as typed Rust, [`stack::validate`]), [`build`]
//! (one cargo-lambda run), [`package`] (reproducible zips), [`desired`] (stack + stage +
//! packages + tenant [`seed`]s), [`observe`] (read AWS), [`plan`] (pure diff), [`apply`] (the
//! only mutating code). [`table`] and [`seed`] hold the types and pure diffs of DynamoDB tables
//! and of the tenant data seeded into them; [`rest_api`] those of the API Gateway REST APIs in
//! front of the functions.

pub mod apply;
pub mod build;
#[cfg(feature = "cli")]
pub mod cli;
pub mod desired;
pub mod error;
pub mod invoke;
pub mod log_group;
pub mod logs;
pub mod names;
pub mod observe;
pub mod package;
pub mod plan;
pub mod rest_api;
pub mod seed;
pub mod stack;
pub mod table;
pub mod tenant;
pub mod tools;

pub use apply::{ApplyOptions, ApplyReport, apply, destroy};
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
    Action, Change, Plan, ResourceKind, RoleDiff, Summary, plan, plan_destroy, plan_seeds,
};
pub use rest_api::{
    ActualRestApi, ApiKind, DesiredRestApi, RestApi, Route, TenantSource, invoke_url,
};
pub use seed::{ActualPartition, DesiredSeed, Seed, SeedDiff};
pub use stack::{App, Architecture, Function, LogFormat, Role, Stage, Target, Tenancy, validate};
pub use table::{ActualTable, DesiredTable, KeySchema, Table};
pub use tenant::validate_tenant_id;
