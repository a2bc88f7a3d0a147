//! The build step: one cargo-lambda invocation for every function of the stack.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::BuildError;
use crate::stack::Architecture;

/// What to build. The caller locates (or installs) cargo-lambda and passes its command line.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    pub workspace_root: &'a Path,
    /// The command, e.g. `["/x/.tools/bin/cargo-lambda", "lambda"]`.
    pub cargo_lambda: &'a [OsString],
    pub packages: Vec<String>,
    pub architecture: Architecture,
    /// Extra environment, e.g. a `PATH` that contains zig.
    pub envs: Vec<(OsString, OsString)>,
}

/// Builds every package in one cargo invocation (one dependency graph, one lock wait) and returns
/// the `bootstrap` of every binary cargo-lambda produced, keyed by binary name.
pub fn build(req: &BuildRequest) -> Result<BTreeMap<String, PathBuf>, BuildError> {
    let (program, prefix) = req
        .cargo_lambda
        .split_first()
        .ok_or(BuildError::NoCommand)?;
    let mut args: Vec<OsString> = prefix.to_vec();
    args.push("build".into());
    args.push("--release".into());
    args.push(match req.architecture {
        Architecture::Arm64 => "--arm64".into(),
        Architecture::X86_64 => "--x86-64".into(),
    });
    for p in &req.packages {
        args.push("-p".into());
        args.push(p.into());
    }
    let command = std::iter::once(program)
        .chain(args.iter())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("$ {command}");

    let mut cargo_lambda = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if is_package_env(&key.to_string_lossy()) {
            cargo_lambda.env_remove(key);
        }
    }
    let status = cargo_lambda
        .args(&args)
        .current_dir(req.workspace_root)
        .envs(req.envs.iter().map(|(k, v)| (k, v)))
        .status()
        .map_err(|source| BuildError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !status.success() {
        return Err(BuildError::Failed {
            command,
            status: status.to_string(),
        });
    }

    let lambda_dir = target_dir(req).join("lambda");
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(&lambda_dir) {
        for entry in entries.flatten() {
            let bootstrap = entry.path().join("bootstrap");
            if bootstrap.is_file() {
                out.insert(entry.file_name().to_string_lossy().into_owned(), bootstrap);
            }
        }
    }
    // An empty result means cargo-lambda put the binaries somewhere this code does not know
    // about; failing here is clearer than a "missing package" later.
    if out.is_empty() {
        return Err(BuildError::MissingOutput {
            command,
            path: lambda_dir,
        });
    }
    Ok(out)
}

/// Variables cargo sets for the package it runs (a test, a `cargo run`): passed on to the
/// nested build they reach build scripts that watch them (ring watches `CARGO_MANIFEST_DIR`),
/// so the functions would be rebuilt, and could differ, depending on who asked for the build.
fn is_package_env(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || key.starts_with("CARGO_BIN_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "OUT_DIR"
        )
}

/// The target directory cargo used: `CARGO_TARGET_DIR` (from the request or this process) or
/// `<workspace>/target`.
fn target_dir(req: &BuildRequest) -> PathBuf {
    let from_req = req
        .envs
        .iter()
        .find(|(k, _)| k == "CARGO_TARGET_DIR")
        .map(|(_, v)| PathBuf::from(v));
    let dir = from_req
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| req.workspace_root.join("target"));
    if dir.is_absolute() {
        dir
    } else {
        req.workspace_root.join(dir)
    }
}
