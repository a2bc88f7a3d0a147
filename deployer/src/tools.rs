//! Finds cargo-lambda, or installs it into the project (`.tools/`) from PyPI, where it ships with
//! zig: a fresh machine with only the Rust toolchain and python3 can build Lambda functions.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cargo-lambda release the project is built and tested with.
pub const CARGO_LAMBDA_VERSION: &str = "1.9.2";

/// How to run cargo-lambda: the command, and directories to put first on `PATH` (where the
/// `python3` that carries zig lives).
#[derive(Debug, Clone)]
pub struct CargoLambda {
    pub command: Vec<OsString>,
    pub path_prefix: Vec<PathBuf>,
}

impl CargoLambda {
    /// `PATH` for the cargo-lambda process.
    pub fn path_env(&self) -> OsString {
        let rest = std::env::var_os("PATH").unwrap_or_default();
        let dirs = self
            .path_prefix
            .iter()
            .cloned()
            .chain(std::env::split_paths(&rest));
        std::env::join_paths(dirs).unwrap_or(rest)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("could not install cargo-lambda into `{dir}`: `{command}` failed ({status})")]
    Install {
        dir: PathBuf,
        command: String,
        status: String,
    },
    #[error("could not install cargo-lambda into `{dir}`: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Returns cargo-lambda: the project's own copy in `<root>/.tools/venv`, else one on `PATH`, else
/// installs the project's copy first (saying so on stderr). Concurrent callers (parallel tests)
/// wait for one install through a lock file.
pub fn cargo_lambda(project_root: &Path) -> Result<CargoLambda, ToolError> {
    let tools = project_root.join(".tools");
    let venv = tools.join("venv");
    let bin = venv.join("bin");
    let local = CargoLambda {
        command: vec![bin.join("cargo-lambda").into(), "lambda".into()],
        path_prefix: vec![bin.clone()],
    };
    if bin.join("cargo-lambda").is_file() {
        return Ok(local);
    }
    if let Some(found) = on_path("cargo-lambda") {
        return Ok(CargoLambda {
            command: vec![found.into(), "lambda".into()],
            path_prefix: Vec::new(),
        });
    }
    let io = |source| ToolError::Io {
        dir: tools.clone(),
        source,
    };
    std::fs::create_dir_all(&tools).map_err(io)?;
    let lock = File::create(tools.join(".install.lock")).map_err(io)?;
    lock.lock().map_err(io)?;
    if !bin.join("cargo-lambda").is_file() {
        eprintln!(
            "cargo-lambda not found: installing cargo-lambda {CARGO_LAMBDA_VERSION} (with zig) into {} from PyPI",
            tools.display()
        );
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            &tools,
        )?;
        run(
            Command::new(bin.join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .arg(format!("cargo-lambda=={CARGO_LAMBDA_VERSION}")),
            &tools,
        )?;
    }
    Ok(local)
}

fn run(command: &mut Command, dir: &Path) -> Result<(), ToolError> {
    let line = format!("{command:?}");
    let status = command.status().map_err(|source| ToolError::Io {
        dir: dir.to_path_buf(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(ToolError::Install {
            dir: dir.to_path_buf(),
            command: line,
            status: status.to_string(),
        })
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
