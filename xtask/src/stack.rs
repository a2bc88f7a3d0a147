//! The Represent stack: what `cargo xtask deploy` ships, described in typed Rust.

use deployer::rest_api::{RestApi, TenantSource};
use deployer::stack::{App, Function, Role, Stage};
use deployer::table::Table;

/// Represent: look up the elected representatives, counties and districts of a US state. Every
/// state is a tenant, so every function runs in tenant isolation mode: an execution environment
/// only ever serves one state, and what it caches can never reach another.
pub fn represent() -> App {
    App::new("represent")
        .role(Role::lambda_basic())
        // Every state's data, one partition per tenant, seeded from tenants/ on each deploy.
        .table(Table::new("data"))
        .function(
            Function::new("representatives")
                .description("A state's senators and House seats")
                .memory(256)
                .timeout(10)
                .per_tenant()
                .tenant_scoped()
                .reads_table("data", "TABLE_NAME"),
        )
        .function(
            Function::new("counties")
                .description("A state's counties, by FIPS code")
                .memory(256)
                .timeout(10)
                .per_tenant()
                .tenant_scoped()
                .reads_table("data", "TABLE_NAME"),
        )
        // The public front door: the caller names its state in a header, and API Gateway passes
        // it to Lambda as the invoke's tenant id.
        .rest_api(
            RestApi::new("api")
                .tenant_from(TenantSource::Header("x-tenant-id"))
                .route("GET", "/representatives", "representatives")
                .route("GET", "/counties", "counties")
                .route("GET", "/counties/{fips}", "counties"),
        )
        // Local development: the embedded emulator, built for this machine's architecture.
        .stage(Stage::emulator("dev"))
        .stage(Stage::aws("staging"))
        .stage(Stage::aws("prod"))
}
