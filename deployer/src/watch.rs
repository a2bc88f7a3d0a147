//! Watch mode: after a deploy, rebuilds the functions whose crates changed on disk and updates
//! only their code (`UpdateFunctionCode`, nothing else), through the same plan and apply as a
//! deploy, planned against the stage observed once at the start and kept current. Each function
//! is built and updated on its own, the one whose own crate changed first, so it answers with its
//! new code while the next one compiles. The stage keeps its API and its other functions; the
//! new code revision retires the old execution environments, so every tenant's next invoke runs
//! the new code. A failed build leaves the last good code serving.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::apply::ApplyOptions;
use crate::build::{StageBuild, build_stage};
use crate::change::Action;
use crate::clients::Clients;
use crate::observe::Actual;
use crate::package::{Package, package_file};
use crate::plan::{Change, Op};
use crate::stack::{App, Stage};

/// What to watch and where the code runs.
#[derive(Debug, Clone)]
pub struct WatchSpec<'a> {
    pub workspace_root: &'a Path,
    pub app: &'a App,
    pub stage: &'a Stage,
    /// See [`StageBuild::unify_with`].
    pub unify_with: Vec<String>,
    /// The packages deployed now, by binary name (what the deploy before the watch uploaded):
    /// a rebuild that gives the same `CodeSha256` uploads nothing.
    pub deployed: BTreeMap<String, Package>,
    /// Changes that land within this time of each other make one rebuild (an editor's save is
    /// often several writes).
    pub debounce: Duration,
}

/// One thing the watch did, for the user (one line each, see `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Watching these directories for the functions' crates.
    Watching { functions: Vec<String>, dirs: usize },
    /// Rebuilt `functions`; `updated` are the ones whose code changed and was updated.
    Rebuilt {
        functions: Vec<String>,
        updated: Vec<String>,
        took: Duration,
        /// When cargo was done, and when the packages were, since the save was seen.
        compiled: Duration,
        packaged: Duration,
    },
    /// The build failed (cargo showed why); the last good code keeps serving.
    BuildFailed {
        functions: Vec<String>,
        error: String,
        took: Duration,
    },
    /// The build succeeded but updating the functions' code failed.
    UpdateFailed {
        functions: Vec<String>,
        error: String,
        took: Duration,
    },
}

impl std::fmt::Display for WatchEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = |d: &Duration| format!("{:.2} s", d.as_secs_f64());
        match self {
            WatchEvent::Watching { functions, dirs } => write!(
                f,
                "watching {dirs} crate directories for {}; Ctrl-C stops",
                functions.join(", ")
            ),
            WatchEvent::Rebuilt {
                functions,
                updated,
                took,
                ..
            } if updated.is_empty() => write!(
                f,
                "rebuilt {} in {}: the code is unchanged, nothing updated",
                functions.join(", "),
                secs(took)
            ),
            WatchEvent::Rebuilt {
                updated,
                took,
                compiled,
                packaged,
                ..
            } => write!(
                f,
                "rebuilt and updated {} in {} (compiled {}, zipped {}): new invokes run the new code",
                updated.join(", "),
                secs(took),
                secs(compiled),
                secs(packaged),
            ),
            WatchEvent::BuildFailed {
                functions,
                error,
                took,
            } => write!(
                f,
                "build of {} failed after {} ({error}); the last good code keeps serving",
                functions.join(", "),
                secs(took)
            ),
            WatchEvent::UpdateFailed {
                functions,
                error,
                took,
            } => write!(
                f,
                "updating the code of {} failed after {} ({error}); the last good code keeps serving",
                functions.join(", "),
                secs(took)
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot read the workspace's crates with `cargo metadata` in `{}`: {reason}", root.display())]
    Metadata { root: PathBuf, reason: String },
    #[error("function `{function}` is in no workspace crate: its package `{package}` is not a member of the workspace in `{}`", root.display())]
    UnknownPackage {
        function: String,
        package: String,
        root: PathBuf,
    },
    #[error("function `{0}` is not deployed in the stage: deploy it before watching")]
    NotDeployed(String),
    #[error("cannot watch `{}` for changes: {source}", path.display())]
    Notify {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error(transparent)]
    Deploy(#[from] crate::error::DeployError),
}

/// A workspace crate: where its files are, and the workspace crates it is built from.
#[derive(Debug, Clone)]
struct Crate {
    dir: PathBuf,
    deps: Vec<String>,
}

/// The workspace's crates, from `cargo metadata --no-deps`: path dependencies between members.
fn workspace_crates(root: &Path) -> Result<BTreeMap<String, Crate>, WatchError> {
    let error = |reason: String| WatchError::Metadata {
        root: root.to_path_buf(),
        reason,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root)
        .output()
        .map_err(|e| error(e.to_string()))?;
    if !output.status.success() {
        return Err(error(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| error(e.to_string()))?;
    let mut crates = BTreeMap::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let (Some(name), Some(manifest)) =
            (package["name"].as_str(), package["manifest_path"].as_str())
        else {
            continue;
        };
        let deps = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            // A dev-dependency never changes a function's binary.
            .filter(|dep| dep["path"].is_string() && dep["kind"].as_str() != Some("dev"))
            .filter_map(|dep| dep["name"].as_str().map(str::to_owned))
            .collect();
        let dir = Path::new(manifest)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        crates.insert(name.to_owned(), Crate { dir, deps });
    }
    Ok(crates)
}

/// For every function binary, the directories of the workspace crates it is built from.
fn function_dirs(
    spec: &WatchSpec,
    crates: &BTreeMap<String, Crate>,
) -> Result<BTreeMap<String, BTreeSet<PathBuf>>, WatchError> {
    let mut out = BTreeMap::new();
    for function in &spec.app.functions {
        if !crates.contains_key(&function.package) {
            return Err(WatchError::UnknownPackage {
                function: function.logical.clone(),
                package: function.package.clone(),
                root: spec.workspace_root.to_path_buf(),
            });
        }
        let mut dirs = BTreeSet::new();
        let mut todo = vec![function.package.clone()];
        let mut seen = BTreeSet::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(krate) = crates.get(&name) {
                dirs.insert(krate.dir.clone());
                todo.extend(krate.deps.iter().cloned());
            }
        }
        out.insert(function.bin.clone(), dirs);
    }
    Ok(out)
}

/// Whether a changed path can change a build: not an editor's swap or backup file, not a build
/// output inside a crate directory.
fn is_source_change(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    !(name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || path.components().any(|c| c.as_os_str() == "target"))
}

/// Watches until `stop` completes, rebuilding and updating what changed; reports each rebuild
/// through `on_event`.
pub async fn watch(
    clients: &Clients,
    spec: WatchSpec<'_>,
    on_event: &(dyn Fn(&WatchEvent) + Sync),
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), WatchError> {
    let crates = workspace_crates(spec.workspace_root)?;
    let dirs_of = function_dirs(&spec, &crates)?;
    // Physical names of the deployed functions, by binary (a replaced function lives under its
    // other slot name).
    let mut actual = Box::pin(crate::observe::observe_app(
        clients,
        spec.app,
        &spec.stage.name,
    ))
    .await?;
    for function in &spec.app.functions {
        if !actual
            .functions
            .iter()
            .any(|f| f.logical.as_deref() == Some(function.logical.as_str()))
        {
            return Err(WatchError::NotDeployed(function.logical.clone()));
        }
    }

    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|source| WatchError::Notify {
        path: spec.workspace_root.to_path_buf(),
        source,
    })?;
    let all_dirs: BTreeSet<&PathBuf> = dirs_of.values().flatten().collect();
    for dir in &all_dirs {
        use notify::Watcher as _;
        watcher
            .watch(dir, notify::RecursiveMode::Recursive)
            .map_err(|source| WatchError::Notify {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    on_event(&WatchEvent::Watching {
        functions: dirs_of.keys().cloned().collect(),
        dirs: all_dirs.len(),
    });

    let mut deployed = spec.deployed.clone();
    // Functions a newer save interrupted before they were rebuilt, with that save's first paths.
    let mut carried: Option<(Vec<PathBuf>, BTreeSet<String>)> = None;
    tokio::pin!(stop);
    loop {
        let (mut changed, mut affected) = match carried.take() {
            Some(carried) => carried,
            None => {
                let first = tokio::select! {
                    () = &mut stop => return Ok(()),
                    path = rx.recv() => match path {
                        Some(path) => path,
                        None => return Ok(()),
                    },
                };
                (vec![first], BTreeSet::new())
            }
        };
        // Collect the rest of this save.
        let settle = tokio::time::sleep(spec.debounce);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                () = &mut settle => break,
                path = rx.recv() => match path {
                    Some(path) => changed.push(path),
                    None => break,
                },
            }
        }
        affected.extend(affected_by(&dirs_of, &changed));
        if affected.is_empty() {
            continue;
        }
        let started = Instant::now();
        let order = build_order(&spec, &crates, &changed, &affected);
        for (i, bin) in order.iter().enumerate() {
            if i > 0 {
                // A save while the others were still to build: its edit is what the developer
                // waits for now, so its functions go first and the rest follow in the next round.
                let mut newer = Vec::new();
                while let Ok(path) = rx.try_recv() {
                    newer.push(path);
                }
                if !affected_by(&dirs_of, &newer).is_empty() {
                    carried = Some((newer, order[i..].iter().cloned().collect()));
                    break;
                }
            }
            match rebuild(clients, &spec, &mut actual, &deployed, bin, started).await {
                Ok((event, package)) => {
                    if let Some(package) = package {
                        deployed.insert(bin.clone(), package);
                    }
                    on_event(&event);
                }
                Err(event) => {
                    let build_failed = matches!(event, WatchEvent::BuildFailed { .. });
                    on_event(&event);
                    // A shared crate that does not compile fails the others' builds too.
                    if build_failed && i + 1 < order.len() && shares_a_crate(&dirs_of, &order) {
                        on_event(&WatchEvent::BuildFailed {
                            functions: order[i + 1..].to_vec(),
                            error: "not built: a crate they share did not compile".to_owned(),
                            took: started.elapsed(),
                        });
                        break;
                    }
                }
            }
        }
    }
}

/// The functions whose crates hold a changed source file.
fn affected_by(
    dirs_of: &BTreeMap<String, BTreeSet<PathBuf>>,
    changed: &[PathBuf],
) -> BTreeSet<String> {
    changed
        .iter()
        .filter(|path| is_source_change(path))
        .flat_map(|path| {
            dirs_of
                .iter()
                .filter(|(_, dirs)| dirs.iter().any(|dir| path.starts_with(dir)))
                .map(|(bin, _)| bin.clone())
        })
        .collect()
}

/// The order the changed functions are rebuilt in, one `cargo build` each, so the first one
/// answers with its new code while the next is still compiling: the functions whose own crate
/// changed first (the one being worked on), then the others in the stack's order.
fn build_order(
    spec: &WatchSpec,
    crates: &BTreeMap<String, Crate>,
    changed: &[PathBuf],
    affected: &BTreeSet<String>,
) -> Vec<String> {
    let own_change = |package: &str| {
        crates
            .get(package)
            .is_some_and(|c| changed.iter().any(|path| path.starts_with(&c.dir)))
    };
    let mut order: Vec<String> = Vec::new();
    for first in [true, false] {
        for function in &spec.app.functions {
            if affected.contains(&function.bin)
                && own_change(&function.package) == first
                && !order.contains(&function.bin)
            {
                order.push(function.bin.clone());
            }
        }
    }
    order
}

/// Whether the functions are built from a workspace crate in common.
fn shares_a_crate(dirs_of: &BTreeMap<String, BTreeSet<PathBuf>>, bins: &[String]) -> bool {
    let mut seen = BTreeSet::new();
    bins.iter()
        .filter_map(|bin| dirs_of.get(bin))
        .flatten()
        .any(|dir| !seen.insert(dir))
}

/// Builds, zips and updates one function; the event to show, and the package now deployed
/// when its code changed.
async fn rebuild(
    clients: &Clients,
    spec: &WatchSpec<'_>,
    actual: &mut Actual,
    deployed: &BTreeMap<String, Package>,
    bin: &str,
    started: Instant,
) -> Result<(WatchEvent, Option<Package>), WatchEvent> {
    let functions = vec![bin.to_owned()];
    // Every function's package is named, not only this one's, so cargo resolves the features
    // the deploy's build resolved: the shared crates are not compiled again for this build, and
    // the binary is the one a deploy would build.
    let mut unify_with = spec.unify_with.clone();
    unify_with.extend(spec.app.functions.iter().map(|f| f.package.clone()));
    let request = StageBuild {
        workspace_root: spec.workspace_root,
        unify_with,
        only: Some(BTreeSet::from([bin.to_owned()])),
    };
    let (app, stage) = (spec.app.clone(), spec.stage.clone());
    let root = spec.workspace_root.to_path_buf();
    let built = tokio::task::spawn_blocking(move || {
        let request = StageBuild {
            workspace_root: &root,
            ..request
        };
        let binaries = build_stage(&app, &stage, &request).map_err(|e| e.to_string())?;
        let compiled = started.elapsed();
        let packages = binaries
            .into_iter()
            .map(|(bin, path)| {
                package_file(&path)
                    .map(|package| (bin, package))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok((compiled, started.elapsed(), packages))
    })
    .await
    .unwrap_or_else(|e| Err(format!("the build task failed: {e}")));
    let (compiled, packaged, packages) = built.map_err(|error| WatchEvent::BuildFailed {
        functions: functions.clone(),
        error,
        took: started.elapsed(),
    })?;
    let package = packages
        .iter()
        .find(|(b, _)| b == bin)
        .map(|(_, p)| p.clone());
    let mut next = deployed.clone();
    next.extend(packages);
    match update(clients, spec, actual, &next).await {
        Ok(updated) => Ok((
            WatchEvent::Rebuilt {
                functions,
                updated,
                took: started.elapsed(),
                compiled,
                packaged,
            },
            package,
        )),
        Err(error) => Err(WatchEvent::UpdateFailed {
            functions,
            error,
            took: started.elapsed(),
        }),
    }
}

/// Plans the stage with the new packages against what was observed (kept current in memory)
/// and applies it, which updates the code of the functions whose `CodeSha256` changed and
/// nothing else. Returns the functions updated, by binary name.
async fn update(
    clients: &Clients,
    spec: &WatchSpec<'_>,
    actual: &mut Actual,
    packages: &BTreeMap<String, Package>,
) -> Result<Vec<String>, String> {
    let desired = crate::desired::desired(spec.app, &spec.stage.name, packages)
        .map_err(|errors| format!("the stack is invalid: {errors}"))?;
    let plan = crate::plan::plan(&desired, actual);
    let beyond_code: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp && !code_only(c))
        .map(|c| c.resource.as_str())
        .collect();
    if !beyond_code.is_empty() {
        return Err(format!(
            "the stage differs from the stack in more than code ({}): run a deploy",
            beyond_code.join(", ")
        ));
    }
    let options = ApplyOptions {
        poll_interval: Duration::from_millis(10),
        ..ApplyOptions::default()
    };
    crate::apply::apply(clients, &plan, &options, &|_: &str| {})
        .await
        .map_err(|e| e.to_string())?;
    let mut updated = Vec::new();
    for change in plan.changes.iter().filter(|c| code_only(c)) {
        let Some(function) = spec
            .app
            .functions
            .iter()
            .find(|f| change.logical.as_deref() == Some(f.logical.as_str()))
        else {
            continue;
        };
        if let (Some(package), Some(observed)) = (
            packages.get(&function.bin),
            actual.functions.iter_mut().find(|f| f.name == change.name),
        ) {
            observed.code_sha256 = package.code_sha256.clone();
        }
        updated.push(function.bin.clone());
    }
    Ok(updated)
}

/// A function update that uploads code and sends nothing else.
fn code_only(change: &Change) -> bool {
    matches!(
        &change.op,
        Op::Function(op) if change.action == Action::Update && op.code && !op.configuration
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Function;

    fn krate(dir: &str, deps: &[&str]) -> Crate {
        Crate {
            dir: PathBuf::from(dir),
            deps: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn the_function_whose_own_crate_changed_is_rebuilt_first() {
        let app = App::new("represent")
            .function(Function::new("representatives"))
            .function(Function::new("counties"))
            .stage(Stage::emulator("dev"));
        let crates = BTreeMap::from([
            (
                "represent".to_string(),
                krate("/w/functions/represent", &[]),
            ),
            (
                "representatives".to_string(),
                krate("/w/functions/representatives", &["represent"]),
            ),
            (
                "counties".to_string(),
                krate("/w/functions/counties", &["represent"]),
            ),
        ]);
        let spec = WatchSpec {
            workspace_root: Path::new("/w"),
            app: &app,
            stage: &app.stages[0],
            unify_with: Vec::new(),
            deployed: BTreeMap::new(),
            debounce: Duration::ZERO,
        };
        let both: BTreeSet<String> = ["counties", "representatives"].map(String::from).into();
        let order = |path: &str| build_order(&spec, &crates, &[PathBuf::from(path)], &both);
        assert_eq!(
            order("/w/functions/counties/src/main.rs"),
            ["counties", "representatives"]
        );
        assert_eq!(
            order("/w/functions/represent/src/handler.rs"),
            ["representatives", "counties"],
            "a shared crate's change rebuilds in the stack's order"
        );
        let dirs = function_dirs(&spec, &crates).expect("every package is a member");
        assert!(shares_a_crate(&dirs, &both.into_iter().collect::<Vec<_>>()));
    }
}
