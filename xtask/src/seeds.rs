//! The tenant files as seed data for the stage's `data` table: one partition per state, one
//! record per state, county, senator and House seat.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::bail;
use deployer::Seed;
use deployer::seed::Records;
use represent::tenant::TenantFile;

use crate::tenants::validate;

/// The table (logical name in the stack) that holds every tenant's partition.
pub const TABLE: &str = "data";

/// Reads and validates every tenant file: a broken file stops the deploy before any AWS call.
pub fn tenant_files(project_root: &Path) -> anyhow::Result<Vec<TenantFile>> {
    let dir = project_root.join("tenants");
    let checked = validate::check_dir(&dir);
    if !checked.problems.is_empty() {
        bail!(
            "{} problems in {} (run `cargo xtask tenants validate`):\n  - {}",
            checked.problems.len(),
            dir.display(),
            checked.problems.join("\n  - ")
        );
    }
    Ok(checked.tenants)
}

/// One partition per tenant, one record per state, county, senator and House seat.
pub fn seed(tenants: &[TenantFile]) -> Seed {
    let mut seed = Seed::new(TABLE);
    for tenant in tenants {
        seed.partitions
            .insert(tenant.id.clone(), represent::records::to_records(tenant));
    }
    seed
}

/// A tenant's records, for the deployer's command line: the directory is read and validated
/// once, on the first tenant asked for, and every problem in it is the answer for every tenant.
pub fn records(project_root: PathBuf) -> impl Fn(&str) -> anyhow::Result<Records> + 'static {
    let files: OnceLock<Result<BTreeMap<String, TenantFile>, String>> = OnceLock::new();
    move |tenant| {
        let all = files.get_or_init(|| {
            tenant_files(&project_root)
                .map(|files| files.into_iter().map(|t| (t.id.clone(), t)).collect())
                .map_err(|error| format!("{error:#}"))
        });
        let all = all.as_ref().map_err(|error| anyhow::anyhow!("{error}"))?;
        match all.get(tenant) {
            Some(file) => Ok(represent::records::to_records(file)),
            None => bail!(
                "tenant `{tenant}` is in the registry but has no file in tenants/ (run `cargo \
                 xtask tenants validate`)"
            ),
        }
    }
}
