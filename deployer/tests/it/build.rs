//! The build step, with a stand-in for cargo-lambda: the command line it gets, the binaries it
//! finds, and a failing build reported with its command.

use std::ffi::OsString;

use deployer::{Architecture, BuildError, BuildRequest, build};

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
