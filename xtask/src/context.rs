//! Represent's paths (the workspace and its target directory) and the stage helpers its own
//! commands share with the deployer's command line.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use deployer::stack::{App, Stage};

pub use deployer::cli::context::emulator_config;

/// The workspace root (this crate lives one level below it).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory, where builds, the emulator's state and its logs live.
pub fn target_dir() -> PathBuf {
    deployer::cli::context::target_dir(&project_root())
}

/// Validates the stack for `stage` (before any network call) and returns the stage.
pub fn checked_stage<'a>(app: &'a App, stage: &str) -> anyhow::Result<&'a Stage> {
    deployer::stack::validate(app, stage)
        .map_err(|errors| anyhow::anyhow!("the `{}` stack is invalid:\n{errors}", app.name))?;
    app.find_stage(stage)
        .with_context(|| format!("unknown stage `{stage}`"))
}
