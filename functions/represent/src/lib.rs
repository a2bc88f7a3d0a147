//! Shared code of the Represent functions: tenant files and their DynamoDB records, the tenant
//! registry, the per-environment data cache, request and response shapes, the invoke path every
//! function shares, and JSON logging with the tenant on every line.

pub mod aws;
pub mod data;
pub mod handler;
pub mod http;
pub mod logging;
pub mod records;
pub mod registry;
pub mod tenant;

pub use data::{DynamoSource, StaticSource, TenantCache, TenantSource};
pub use handler::{Deps, Function, handle, state_json};
pub use http::{Answer, ApiError, Form, Request};
pub use records::{TenantData, from_records, to_records};
