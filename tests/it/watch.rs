//! Watch mode end to end: a function in a temporary workspace is deployed to the emulator, its
//! source is edited, and the watch rebuilds it and updates its code; every tenant's next invoke
//! runs the new code in a new environment, and a build error keeps the last good code serving.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use deployer::stack::{App, Function, Role, Stage};
use deployer::watch::{WatchEvent, WatchSpec};
use tokio::sync::mpsc;

use crate::support;

/// A function with no dependencies (it compiles in a second): it speaks the Runtime API over
/// plain HTTP/1.1 and answers every invoke with its version and its process id.
const FUNCTION: &str = r#"//! A tiny function: answers every invoke with its version and process id.
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;

const VERSION: &str = "v1";

fn main() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API is set");
    loop {
        let mut next = TcpStream::connect(&api).expect("runtime API");
        write!(next, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n").expect("write");
        let mut reader = BufReader::new(next);
        let (mut id, mut length, mut line) = (String::new(), 0usize, String::new());
        reader.read_line(&mut line).expect("status line");
        loop {
            line.clear();
            reader.read_line(&mut line).expect("header");
            let Some((name, value)) = line.trim_end().split_once(':') else { break };
            match name.to_ascii_lowercase().as_str() {
                "lambda-runtime-aws-request-id" => id = value.trim().to_owned(),
                "content-length" => length = value.trim().parse().expect("length"),
                _ => {}
            }
        }
        let mut event = vec![0; length];
        reader.read_exact(&mut event).expect("event");
        let answer = format!("{{\"version\":\"{VERSION}\",\"pid\":{}}}", std::process::id());
        let mut done = TcpStream::connect(&api).expect("runtime API");
        write!(done, "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len()).expect("write");
        let _ = done.read_to_end(&mut Vec::new());
    }
}
"#;

fn workspace(root: &Path) {
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("dir");
        std::fs::write(path, text).expect("write");
    };
    write(
        "Cargo.toml",
        "[workspace]\nresolver = \"3\"\nmembers = [\"hello\"]\n",
    );
    write(
        "hello/Cargo.toml",
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    );
    write("hello/src/main.rs", FUNCTION);
}

/// The function reads a signing key, as Represent's authorizer does: the watch must see the
/// key the deploy created and change nothing but code.
fn app() -> App {
    App::new("watched")
        .role(Role::lambda_basic())
        .function(
            Function::new("hello")
                .per_tenant()
                .reads_signing_key("token-key", "TOKEN_KEY_SECRET"),
        )
        .stage(Stage::emulator("dev"))
}

async fn answer(stage: &support::Stage, app: &App, tenant: &str) -> (String, u64) {
    let answer = support::invoke(
        stage,
        app,
        "dev",
        "hello",
        Some(tenant),
        serde_json::json!({}),
    )
    .await;
    (
        answer["version"].as_str().expect("a version").to_owned(),
        answer["pid"].as_u64().expect("a pid"),
    )
}

/// Waits for the next event that `wanted` accepts; a watch that never gets there fails the test
/// after a generous bound (this is not a timing assertion).
async fn next_event(
    events: &mut mpsc::UnboundedReceiver<WatchEvent>,
    wanted: impl Fn(&WatchEvent) -> bool,
) -> WatchEvent {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(event)) if wanted(&event) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the watch stopped"),
            Err(_) => panic!("the watch did not get there in 5 minutes"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_reaches_every_tenant_and_a_broken_build_keeps_the_last_good_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    workspace(root);
    let app = app();
    let dev = app.find_stage("dev").expect("dev stage").clone();
    let stage = support::emulator().await;

    let binaries = deployer::build::build_stage(
        &app,
        &dev,
        &deployer::build::StageBuild {
            workspace_root: root,
            unify_with: Vec::new(),
            only: None,
        },
    )
    .expect("the function builds");
    let packages: BTreeMap<_, _> = binaries
        .iter()
        .map(|(bin, path)| (bin.clone(), deployer::package_file(path).expect("packages")))
        .collect();
    let desired = deployer::desired(&app, "dev", &packages).expect("valid stack");
    let actual = deployer::observe_stage(&stage.clients, &desired)
        .await
        .expect("observe");
    let plan = deployer::plan(&desired, &actual);
    deployer::apply(&stage.clients, &plan, &support::options(), &|_| {})
        .await
        .expect("deploy");

    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let spec = WatchSpec {
        workspace_root: root,
        app: &app,
        stage: &dev,
        unify_with: Vec::new(),
        deployed: packages,
        debounce: Duration::from_millis(50),
    };
    let on_event = move |event: &WatchEvent| {
        let _ = events_tx.send(event.clone());
    };
    let watching = deployer::watch::watch(&stage.clients, spec, &on_event, async {
        let _ = stop_rx.await;
    });

    let driver = async {
        next_event(&mut events, |e| matches!(e, WatchEvent::Watching { .. })).await;
        let (v_a, pid_a) = answer(&stage, &app, "TX").await;
        let (v_b, pid_b) = answer(&stage, &app, "../CA").await;
        assert_eq!((v_a.as_str(), v_b.as_str()), ("v1", "v1"));
        assert_ne!(pid_a, pid_b, "each tenant has its own environment");

        let source = root.join("hello/src/main.rs");
        std::fs::write(&source, FUNCTION.replace("\"v1\"", "\"v2\"")).expect("edit");
        let rebuilt = next_event(&mut events, |e| {
            matches!(
                e,
                WatchEvent::Rebuilt { .. } | WatchEvent::BuildFailed { .. }
            )
        })
        .await;
        assert!(
            matches!(&rebuilt, WatchEvent::Rebuilt { updated, .. } if updated == &["hello"]),
            "{rebuilt}"
        );
        let (v2_a, pid2_a) = answer(&stage, &app, "TX").await;
        let (v2_b, pid2_b) = answer(&stage, &app, "../CA").await;
        assert_eq!((v2_a.as_str(), v2_b.as_str()), ("v2", "v2"));
        assert!(
            pid2_a != pid_a && pid2_b != pid_b && pid2_a != pid2_b,
            "every tenant runs the new code in a new environment of its own"
        );

        std::fs::write(
            &source,
            FUNCTION.replace("fn main() {", "fn main() { not rust"),
        )
        .expect("edit");
        let failed = next_event(&mut events, |e| {
            matches!(
                e,
                WatchEvent::Rebuilt { .. } | WatchEvent::BuildFailed { .. }
            )
        })
        .await;
        assert!(matches!(failed, WatchEvent::BuildFailed { .. }), "{failed}");
        assert_eq!(answer(&stage, &app, "TX").await, (v2_a, pid2_a));
        let _ = stop_tx.send(());
    };
    let (watched, ()) = tokio::join!(watching, driver);
    watched.expect("the watch ends cleanly");
}
