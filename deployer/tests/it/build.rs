//! The build step: which functions a stage builds how, and, with a stand-in for cargo-lambda,
//! the command line it gets, the binaries it finds, and a failing build reported with its command.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use deployer::build::{BuildKind, stage_builds};
use deployer::{App, Architecture, BuildError, BuildRequest, Function, Role, Stage, build};

/// A shell script posing as `cargo lambda`: records its arguments and writes a `bootstrap` for
/// every `-p` package into the target directory, as cargo-lambda does.
const FAKE: &str = r#"
echo "$@" > "$CARGO_TARGET_DIR/args"
[ -n "$FAIL" ] && exit 3
while [ $# -gt 0 ]; do
  if [ "$1" = "-p" ]; then mkdir -p "$CARGO_TARGET_DIR/lambda/$2"; echo bin > "$CARGO_TARGET_DIR/lambda/$2/bootstrap"; fi
  shift
done
"#;

fn command() -> Vec<OsString> {
    vec![
        "sh".into(),
        "-c".into(),
        FAKE.into(),
        "cargo-lambda".into(),
        "lambda".into(),
    ]
}

#[test]
fn one_invocation_builds_every_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("target");
    std::fs::create_dir_all(&target).expect("target dir");
    let cmd = command();
    let req = BuildRequest {
        workspace_root: dir.path(),
        cargo_lambda: &cmd,
        packages: vec!["representatives".to_string(), "counties".to_string()],
        architecture: Architecture::Arm64,
        envs: vec![("CARGO_TARGET_DIR".into(), target.clone().into())],
    };
    let bins = build(&req).expect("built");
    let args = std::fs::read_to_string(target.join("args")).expect("args recorded");
    assert_eq!(
        args.trim(),
        "lambda build --release --arm64 -p representatives -p counties"
    );
    assert_eq!(
        bins.keys().collect::<Vec<_>>(),
        ["counties", "representatives"]
    );
    assert_eq!(bins["counties"], target.join("lambda/counties/bootstrap"));
}

#[test]
fn failing_build_names_the_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("target");
    std::fs::create_dir_all(&target).expect("target dir");
    let cmd = command();
    let req = BuildRequest {
        workspace_root: dir.path(),
        cargo_lambda: &cmd,
        packages: vec!["counties".to_string()],
        architecture: Architecture::X86_64,
        envs: vec![
            ("CARGO_TARGET_DIR".into(), target.into()),
            ("FAIL".into(), "1".into()),
        ],
    };
    let err = build(&req).expect_err("fails");
    assert!(matches!(err, BuildError::Failed { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("build --release --x86-64 -p counties") && msg.contains("exit status: 3"),
        "{msg}"
    );
}

/// A stack with one function on the stage's architecture and one pinned to the other one.
fn two_architectures() -> (App, Architecture) {
    let other = match Architecture::host() {
        Architecture::X86_64 => Architecture::Arm64,
        Architecture::Arm64 => Architecture::X86_64,
    };
    let app = App::new("shop")
        .role(Role::lambda_basic())
        .function(Function::new("orders"))
        .function(Function::new("images").architecture(other))
        .stage(Stage::emulator("dev"))
        .stage(Stage::aws("prod"));
    (app, other)
}

#[test]
fn emulator_stages_build_host_functions_with_cargo_and_the_rest_with_cargo_lambda() {
    let (app, other) = two_architectures();
    let dev = app.find_stage("dev").expect("dev");
    let builds = stage_builds(&app, dev);
    let pair = |name: &str| (name.to_string(), name.to_string());
    assert_eq!(
        builds,
        BTreeMap::from([
            (BuildKind::Host, BTreeSet::from([pair("orders")])),
            (
                BuildKind::CargoLambda(other),
                BTreeSet::from([pair("images")])
            ),
        ])
    );
}

#[test]
fn aws_stages_build_every_function_with_cargo_lambda() {
    let (app, other) = two_architectures();
    let prod = app.find_stage("prod").expect("prod");
    let builds = stage_builds(&app, prod);
    assert!(!builds.contains_key(&BuildKind::Host), "{builds:?}");
    assert!(builds.contains_key(&BuildKind::CargoLambda(other)));
    assert!(builds.contains_key(&BuildKind::CargoLambda(prod.architecture)));
}
