//! Reading what a stage has in AWS (or the emulator): functions, the execution role, tables,
//! the partitions of the tenants the stage seeds, log groups and REST APIs. Each resource kind
//! reads its own part; independent reads run at once.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::desired::Desired;
use crate::error::DeployError;
use crate::log_group::ActualLogGroup;
use crate::names;
use crate::rest_api::{ActualRestApi, invoke_url};
use crate::seed::{ActualPartition, read_partition, seeded_tenants};
use crate::table::{ActualTable, read_table};
use crate::{function, log_group, rest_api, role, table};

pub use crate::clients::Clients;
pub use crate::function::{ActualFunction, actual_function};
pub use crate::role::{ActualRole, percent_decode};
pub use crate::table::actual_table;

/// How many reads observe sends at once.
pub const READ_PARALLELISM: usize = 32;

/// What exists for one stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Actual {
    pub role: Option<ActualRole>,
    pub functions: Vec<ActualFunction>,
    pub tables: Vec<ActualTable>,
    /// The partitions of the seeded tenants that were read. A partition that was not read is
    /// planned as empty, so deploys observe with [`observe_stage`].
    pub partitions: Vec<ActualPartition>,
    /// The log groups of the stage's functions.
    pub log_groups: Vec<ActualLogGroup>,
    /// The stage's REST APIs, with their resources and which functions they may invoke.
    pub rest_apis: Vec<ActualRestApi>,
    /// The execution and tenant-data roles of the stage's tenant-scoped functions.
    pub tenant_roles: Vec<crate::tenant_role::ActualTenantRole>,
    /// The stage's signing keys, live or scheduled for deletion. Read for stacks that declare
    /// one and for destroy ([`observe_app`]); a stack that never reads a key does not call
    /// Secrets Manager.
    pub signing_keys: Vec<crate::signing_key::ActualSigningKey>,
    /// The stage's CloudTrail Lake store of data events (read when the clients have a
    /// CloudTrail client).
    pub trail: Option<crate::trail::ActualTrail>,
    /// Every deployer statement on the stage's functions, whichever API it names (one that no
    /// longer exists included).
    pub api_statements: Vec<crate::rest_api::ActualStatement>,
}

impl Actual {
    pub fn find_table(&self, name: &str) -> Option<&ActualTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn find_partition(&self, table: &str, tenant: &str) -> Option<&ActualPartition> {
        self.partitions
            .iter()
            .find(|p| p.table == table && p.tenant == tenant)
    }
}

/// Reads every function, log group, table, REST API and the role of a stage. Functions come
/// first (log groups and APIs are matched against them); the rest is read at once.
pub async fn observe(clients: &Clients, app: &str, stage: &str) -> Result<Actual, DeployError> {
    observe_declared(clients, app, stage, &[]).await
}

/// [`observe`] for a stack: also finds the log groups of both slots of every function the stack
/// declares, even when the function itself is gone (a deploy or destroy interrupted between a
/// function's deletion and its log group's), so the next deploy or destroy deletes them.
pub async fn observe_app(
    clients: &Clients,
    app: &crate::stack::App,
    stage: &str,
) -> Result<Actual, DeployError> {
    let declared: Vec<String> = app.functions.iter().map(|f| f.logical.clone()).collect();
    let mut actual = Box::pin(observe_declared(clients, &app.name, stage, &declared)).await?;
    actual.signing_keys = crate::signing_key::observe(clients, &app.name, stage).await?;
    Ok(actual)
}

async fn observe_declared(
    clients: &Clients,
    app: &str,
    stage: &str,
    declared: &[String],
) -> Result<Actual, DeployError> {
    let role_name = names::role_name(app, stage);
    // Each read is boxed: the SDK's futures are large in debug builds, and a join of them
    // would not fit the 2 MiB stack of a test thread (or of a small worker).
    let (functions, role, tables, tenant_roles, trail) = tokio::try_join!(
        Box::pin(function::observe(clients, app, stage)),
        Box::pin(role::observe_role(clients, &role_name)),
        Box::pin(table::observe(clients, app, stage)),
        Box::pin(crate::tenant_role::observe(clients, app, stage)),
        Box::pin(crate::trail::observe(clients, app, stage)),
    )?;
    let (log_groups, (rest_apis, api_statements)) = tokio::try_join!(
        Box::pin(log_group::observe(
            clients, app, stage, &functions, declared
        )),
        Box::pin(rest_api::observe(clients, app, stage, &functions)),
    )?;
    Ok(Actual {
        role,
        functions,
        tables,
        partitions: Vec::new(),
        log_groups,
        rest_apis,
        tenant_roles,
        signing_keys: Vec::new(),
        trail,
        api_statements,
    })
}

/// Reads the given (table, tenant) partitions, [`READ_PARALLELISM`] at a time, in order.
async fn read_partitions(
    clients: &Clients,
    reads: Vec<(String, String)>,
) -> Result<Vec<ActualPartition>, DeployError> {
    futures::stream::iter(reads)
        .map(|(table, tenant)| async move { read_partition(clients, &table, &tenant).await })
        .buffered(READ_PARALLELISM)
        .try_collect()
        .await
}

/// Everything a deploy compares against: [`observe`], plus the partition of every seeded tenant
/// in every table that already has the desired key (a table about to be created or replaced is
/// empty as far as the plan is concerned): one Query per tenant, or one parallel Scan of a table
/// seeding [`crate::partitions::SCAN_FROM`] tenants or more.
pub async fn observe_stage(clients: &Clients, desired: &Desired) -> Result<Actual, DeployError> {
    let declared: Vec<String> = desired
        .functions
        .iter()
        .map(|f| f.logical.clone())
        .collect();
    let mut actual = Box::pin(observe_declared(
        clients,
        &desired.app,
        &desired.stage,
        &declared,
    ))
    .await?;
    let ready = |seed: &&crate::seed::DesiredSeed| {
        actual.find_table(&seed.name).is_some_and(|t| {
            desired
                .find_table(&seed.table)
                .is_some_and(|d| t.key_schema.as_ref() == Some(&d.key_schema))
        })
    };
    // Many tenants in one table: one parallel Scan of it reads them all (see `partitions`).
    let (scanned, queried): (Vec<_>, Vec<_>) = desired
        .seeds
        .iter()
        .filter(ready)
        .partition(|seed| seed.partitions.len() >= crate::partitions::SCAN_FROM);
    let reads = queried
        .iter()
        .flat_map(|seed| {
            seed.partitions
                .keys()
                .map(|t| (seed.name.clone(), t.clone()))
        })
        .collect();
    let scans = futures::future::try_join_all(scanned.iter().map(|seed| {
        let tenants: Vec<String> = seed.partitions.keys().cloned().collect();
        async move { crate::partitions::scan(clients, &seed.name, &tenants).await }
    }));
    let (queried, scanned) = tokio::try_join!(read_partitions(clients, reads), scans)?;
    actual.partitions = queried;
    actual.partitions.extend(scanned.into_iter().flatten());
    if !desired.signing_keys.is_empty() {
        actual.signing_keys =
            crate::signing_key::observe(clients, &desired.app, &desired.stage).await?;
    }
    Ok(actual)
}

/// What `cargo xtask tenants seed` compares against: the seeded tables and the partitions of the
/// seeded tenants (or of one tenant), nothing else. The tables must exist with the desired key,
/// since seeding never creates or replaces a table.
pub async fn observe_seeds(
    clients: &Clients,
    desired: &Desired,
    only_tenant: Option<&str>,
) -> Result<Actual, DeployError> {
    if let Some(tenant) = only_tenant {
        let known = seeded_tenants(&desired.seeds);
        if !known.iter().any(|t| t == tenant) {
            return Err(DeployError::UnknownTenant {
                tenant: tenant.to_string(),
                known,
            });
        }
    }
    let mut actual = Actual::default();
    for seed in &desired.seeds {
        let tenants: Vec<&String> = seed
            .partitions
            .keys()
            .filter(|t| only_tenant.is_none_or(|only| only == t.as_str()))
            .collect();
        if tenants.is_empty() {
            continue;
        }
        let Some(table) = read_table(clients, &seed.name).await? else {
            return Err(DeployError::TableMissing {
                table: seed.name.clone(),
            });
        };
        if let Some(want) = desired.find_table(&seed.table)
            && table.key_schema.as_ref() != Some(&want.key_schema)
        {
            return Err(DeployError::TableOutdated {
                table: seed.name.clone(),
                have: table
                    .key_schema
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "unknown".to_string()),
                want: want.key_schema.to_string(),
            });
        }
        actual.tables.push(table);
        let reads = tenants
            .into_iter()
            .map(|t| (seed.name.clone(), t.clone()))
            .collect();
        actual
            .partitions
            .extend(read_partitions(clients, reads).await?);
    }
    Ok(actual)
}

/// The region calls go to, from the Lambda client's configuration.
pub fn region(clients: &Clients) -> String {
    clients.region()
}

/// The invoke URL of every observed REST API, by logical name, so `plan` and `deploy
/// --dry-run` on an existing stage can show where the API answers.
pub fn api_urls(clients: &Clients, stage: &str, actual: &Actual) -> BTreeMap<String, String> {
    let region = clients.region();
    actual
        .rest_apis
        .iter()
        .filter_map(|a| {
            let url = invoke_url(&a.id, &region, stage, clients.endpoint_url.as_deref());
            Some((a.logical.clone()?, url))
        })
        .collect()
}
