//! The Represent stack: what `cargo xtask deploy` ships, described in typed Rust.

use deployer::rest_api::{RestApi, TenantSource};
use deployer::stack::{App, Function, Role, Stage};
use deployer::table::Table;

/// The signing key of staff tokens: a per-stage secret the deployer creates, which the
/// authorizer reads at init and `cargo xtask token` signs with.
pub const TOKEN_KEY: &str = "token-signing-key";

/// Represent: look up the elected representatives, counties and districts of a US state. Every
/// state is a tenant, so every function runs in tenant isolation mode: an execution environment
/// only ever serves one state, and what it caches can never reach another.
pub fn represent() -> App {
    App::new("represent")
        .role(Role::lambda_basic())
        // Every state's data, one partition per tenant, seeded from tenants/ on each deploy.
        .table(Table::new("data"))
        // Constituents' messages to their state's offices, one partition per state, newest first.
        .table(Table::new("messages"))
        // Every read and write of those tables, allowed or refused, in a CloudTrail Lake store per
        // stage, which `cargo xtask audit` reads: cross-tenant attempts are visible on AWS too.
        .audit_data_events()
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
        .function(
            Function::new("messages")
                .description("Constituents' messages to a state's congressional offices")
                .memory(256)
                .timeout(10)
                .per_tenant()
                .tenant_scoped()
                .reads_table("data", "TABLE_NAME")
                .writes_table("messages", "MESSAGES_TABLE"),
        )
        // The staff routes' token authorizer: it verifies a signed token and names the state
        // the caller works for. API Gateway invokes it without a tenant, so it is shared.
        .function(
            Function::new("authorizer")
                .description("Verifies staff tokens and names their state")
                .memory(128)
                .timeout(5)
                .reads_signing_key(TOKEN_KEY, "TOKEN_KEY_SECRET"),
        )
        // The public front door: the caller names its state in a header, and API Gateway passes
        // it to Lambda as the invoke's tenant id.
        .rest_api(
            RestApi::new("api")
                .tenant_from(TenantSource::Header("x-tenant-id"))
                .route("GET", "/representatives", "representatives")
                .route("GET", "/counties", "counties")
                .route("GET", "/counties/{fips}", "counties")
                .route("POST", "/messages", "messages")
                // Staff read their state's inbox: the state comes from the verified token, never
                // from a header the caller could set.
                .route_with_tenant(
                    "GET",
                    "/messages",
                    "messages",
                    TenantSource::Authorizer {
                        function: "authorizer",
                        context_key: "tenantId",
                    },
                ),
        )
        // Local development: the embedded emulator, built for this machine's architecture.
        .stage(Stage::emulator("dev"))
        .stage(Stage::aws("staging"))
        .stage(Stage::aws("prod"))
}
