//! The build step. Functions that run on this machine (an emulator stage) are built by one plain
//! `cargo build` in the workspace's own dev profile and target directory, reusing every
//! dependency the tools already compiled; every other stage gets one optimised cargo-lambda build
//! per architecture.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::BuildError;
use crate::stack::{App, Architecture, Stage, Target};

/// How one group of functions is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BuildKind {
    /// `cargo build` in the dev profile: the binaries run here, as `cargo lambda watch` runs them.
    Host,
    /// `cargo lambda build --release` for the architecture Lambda runs.
    CargoLambda(Architecture),
}

/// The builds a stage needs: every function's binary, grouped by how it is built. Pure, so a
/// deploy can say what it is about to build before it starts.
pub fn stage_builds(app: &App, stage: &Stage) -> BTreeMap<BuildKind, BTreeSet<(String, String)>> {
    let mut groups: BTreeMap<BuildKind, BTreeSet<(String, String)>> = BTreeMap::new();
    for function in &app.functions {
        let architecture = function.architecture.unwrap_or(stage.architecture);
        let key = if stage.target == Target::Emulator && architecture == Architecture::host() {
            BuildKind::Host
        } else {
            BuildKind::CargoLambda(architecture)
        };
        groups
            .entry(key)
            .or_default()
            .insert((function.package.clone(), function.bin.clone()));
    }
    groups
}

/// What [`build_stage`] needs besides the stack.
#[derive(Debug, Clone)]
pub struct StageBuild<'a> {
    pub workspace_root: &'a Path,
    /// Packages named beside the functions in the host build so that cargo resolves the same
    /// dependency features as for them: the tool running the deploy (`xtask`), whose
    /// already-compiled dependencies are then reused instead of compiled a second time.
    pub unify_with: Vec<String>,
    /// Build only these binaries (a watch rebuilding what changed); `None` builds all.
    pub only: Option<BTreeSet<String>>,
}

/// Builds every function of `app` for `stage` and returns each binary's path, by binary name.
/// cargo-lambda is located (or installed) only when a group needs it.
pub fn build_stage(
    app: &App,
    stage: &Stage,
    req: &StageBuild,
) -> Result<BTreeMap<String, PathBuf>, BuildError> {
    let mut out = BTreeMap::new();
    for (kind, functions) in stage_builds(app, stage) {
        let functions: BTreeSet<(String, String)> = functions
            .into_iter()
            .filter(|(_, bin)| req.only.as_ref().is_none_or(|only| only.contains(bin)))
            .collect();
        if functions.is_empty() {
            continue;
        }
        let packages: Vec<String> = functions
            .iter()
            .map(|(package, _)| package.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let built = match kind {
            BuildKind::Host => build_host(&HostBuild {
                workspace_root: req.workspace_root,
                packages,
                bins: functions.iter().map(|(_, bin)| bin.clone()).collect(),
                unify_with: req.unify_with.clone(),
            })?,
            BuildKind::CargoLambda(architecture) => {
                let tool = crate::tools::cargo_lambda(req.workspace_root)?;
                let bins = build(&BuildRequest {
                    workspace_root: req.workspace_root,
                    cargo_lambda: &tool.command,
                    packages,
                    architecture,
                    envs: vec![("PATH".into(), tool.path_env())],
                })?;
                bins.into_iter()
                    .filter(|(bin, _)| functions.iter().any(|(_, b)| b == bin))
                    .collect()
            }
        };
        out.extend(built);
    }
    Ok(out)
}

/// A plain `cargo build` of function binaries for this machine.
#[derive(Debug, Clone)]
pub struct HostBuild<'a> {
    pub workspace_root: &'a Path,
    pub packages: Vec<String>,
    pub bins: Vec<String>,
    /// See [`StageBuild::unify_with`].
    pub unify_with: Vec<String>,
}

/// Builds `bins` with one `cargo build` in the dev profile and returns each executable, by
/// binary name. Compiler messages reach the user's terminal as cargo renders them.
pub fn build_host(req: &HostBuild) -> Result<BTreeMap<String, PathBuf>, BuildError> {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut args: Vec<OsString> = vec![
        "build".into(),
        "--message-format=json-render-diagnostics".into(),
    ];
    let mut seen = BTreeSet::new();
    for p in req.unify_with.iter().chain(&req.packages) {
        if seen.insert(p) {
            args.push("-p".into());
            args.push(p.into());
        }
    }
    for bin in &req.bins {
        args.push("--bin".into());
        args.push(bin.into());
    }
    let command = std::iter::once(&program)
        .chain(args.iter())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("$ {command}");
    let mut cargo = Command::new(&program);
    remove_package_env(&mut cargo);
    let mut child = cargo
        .args(&args)
        .current_dir(req.workspace_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| BuildError::Spawn {
            command: command.clone(),
            source,
        })?;
    let mut out = BTreeMap::new();
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some((bin, path)) = built_binary(&line)
                && req.bins.contains(&bin)
            {
                out.insert(bin, path);
            }
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !status.success() {
        return Err(BuildError::Failed {
            command,
            status: status.to_string(),
        });
    }
    if let Some(missing) = req.bins.iter().find(|bin| !out.contains_key(*bin)) {
        return Err(BuildError::MissingOutput {
            command,
            path: PathBuf::from(missing),
        });
    }
    Ok(out)
}

/// The binary name and executable of a cargo `compiler-artifact` message for a binary.
fn built_binary(line: &str) -> Option<(String, PathBuf)> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let target = &message["target"];
    let is_bin = target["kind"]
        .as_array()
        .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
    let executable = message["executable"].as_str()?;
    is_bin.then(|| {
        (
            target["name"].as_str().unwrap_or_default().to_owned(),
            executable.into(),
        )
    })
}

fn remove_package_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if is_package_env(&key.to_string_lossy()) {
            command.env_remove(key);
        }
    }
}

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
    remove_package_env(&mut cargo_lambda);
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
