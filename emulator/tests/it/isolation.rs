//! PER_TENANT isolation seen through the real Lambda client: one environment per tenant, never
//! shared, with its own memory and temporary directory, even under concurrency.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use crate::runtime::{Probe, deploy, invoke};
use crate::support;

#[tokio::test]
async fn tenants_get_their_own_environments_and_keep_them() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    deploy(
        &emulator,
        &lambda,
        "iso",
        Probe {
            per_tenant: true,
            ..Probe::default()
        },
    )
    .await;
    let tx = invoke(&lambda, "iso", Some("TX"), json!({"op": "whoami"})).await;
    let ca = invoke(&lambda, "iso", Some("CA"), json!({"op": "whoami"})).await;
    let tx_again = invoke(&lambda, "iso", Some("TX"), json!({"op": "whoami"})).await;
    assert_eq!(tx.body["tenant"], "TX");
    assert_eq!(ca.body["tenant"], "CA");
    assert_ne!(tx.pid(), ca.pid(), "two tenants, two environments");
    assert_eq!(
        tx.pid(),
        tx_again.pid(),
        "a tenant's warm environment is reused"
    );
    assert_eq!(tx.body["env"]["AWS_LAMBDA_FUNCTION_NAME"], "iso");
    assert_eq!(
        tx.body["env"]["AWS_ENDPOINT_URL"],
        emulator.endpoint().as_str()
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn memory_and_tmpdir_do_not_leak_between_tenants() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    deploy(
        &emulator,
        &lambda,
        "iso",
        Probe {
            per_tenant: true,
            ..Probe::default()
        },
    )
    .await;
    invoke(
        &lambda,
        "iso",
        Some("TX"),
        json!({"op": "remember", "value": "texas only"}),
    )
    .await;
    let tx = invoke(&lambda, "iso", Some("TX"), json!({"op": "recall"})).await;
    let ca = invoke(&lambda, "iso", Some("CA"), json!({"op": "recall"})).await;
    assert_eq!(tx.body["memory"], "texas only");
    assert_eq!(tx.body["file"], "texas only");
    assert_eq!(ca.body["memory"], Value::Null, "memory is per environment");
    assert_eq!(ca.body["file"], Value::Null, "TMPDIR is per environment");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invokes_scale_out_and_never_cross_tenants() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    deploy(
        &emulator,
        &lambda,
        "iso",
        Probe {
            per_tenant: true,
            ..Probe::default()
        },
    )
    .await;
    let mut calls = tokio::task::JoinSet::new();
    for round in 0..8 {
        let tenant = ["TX", "CA"][round % 2];
        let lambda = lambda.clone();
        calls.spawn(async move {
            let answer = invoke(
                &lambda,
                "iso",
                Some(tenant),
                json!({"op": "sleep", "ms": 300}),
            )
            .await;
            (tenant, answer)
        });
    }
    let mut pids: BTreeMap<&str, HashSet<u32>> = BTreeMap::new();
    while let Some(joined) = calls.join_next().await {
        let (tenant, answer) = joined.expect("invoke task");
        assert_eq!(answer.function_error, None, "{}", answer.body);
        assert_eq!(answer.body["tenant"], tenant, "an answer crossed tenants");
        pids.entry(tenant).or_default().insert(answer.pid());
    }
    assert!(
        pids["TX"].len() > 1,
        "concurrent invokes of one tenant scale out"
    );
    assert!(
        pids["TX"].is_disjoint(&pids["CA"]),
        "no environment served both tenants"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_function_without_tenancy_gets_no_tenant_header() {
    let (emulator, _dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    deploy(&emulator, &lambda, "plain", Probe::default()).await;
    let answer = invoke(&lambda, "plain", None, json!({"op": "whoami"})).await;
    assert_eq!(answer.function_error, None);
    assert_eq!(answer.body["tenant"], Value::Null);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_path_like_tenant_id_never_becomes_a_path() {
    let (emulator, dir) = support::start().await;
    let lambda = support::lambda_client(&emulator);
    deploy(
        &emulator,
        &lambda,
        "iso",
        Probe {
            per_tenant: true,
            ..Probe::default()
        },
    )
    .await;
    // A name nobody else uses, so a file another run left next to the state directory
    // cannot be mistaken for one this tenant created.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    let leaf = format!("escape-{}-{nanos}", std::process::id());
    let tenant = format!("../../{leaf}");
    let tenant = tenant.as_str();
    let answer = invoke(
        &lambda,
        "iso",
        Some(tenant),
        json!({"op": "remember", "value": "v"}),
    )
    .await;
    assert_eq!(answer.function_error, None, "{}", answer.body);
    assert_eq!(answer.body["tenant"], tenant);
    let recall = invoke(&lambda, "iso", Some(tenant), json!({"op": "recall"})).await;
    assert_eq!(recall.body["file"], "v");

    let mut pending = vec![dir.path().to_path_buf()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).expect("read state dir") {
            let entry = entry.expect("dir entry");
            assert_ne!(
                entry.file_name().to_string_lossy(),
                leaf,
                "a path was built from the tenant id"
            );
            if entry.file_type().expect("file type").is_dir() {
                pending.push(entry.path());
            }
        }
    }
    let outside = dir.path().parent().expect("temp root").join(&leaf);
    assert!(
        !outside.exists(),
        "nothing was created next to the state directory"
    );
    emulator.shutdown().await;
}
