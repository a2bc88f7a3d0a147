//! A verified tenant at the gateway: the Represent stack deployed to the emulator, its public
//! `POST /messages` taking the state from a header, its staff `GET /messages` taking it from a
//! signed token through the token authorizer, all through plain HTTP as a browser would call it.

use std::time::{SystemTime, UNIX_EPOCH};

use deployer::cli::token::mint;
use serde_json::{Value, json};

use crate::support::{deploy, emulator, packages};

/// One HTTP/1.1 request, as `curl` sends it; returns the status and the body.
async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("connects");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("reads");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The emulator's execution environments that serve a tenant, as `(function, tenant)`.
async fn tenant_environments(endpoint: &str) -> Vec<(String, String)> {
    let (_, body) = http("GET", &format!("{endpoint}/_emulator/status"), &[], "").await;
    json_of(&body)["environments"]
        .as_array()
        .expect("a list of environments")
        .iter()
        .filter_map(|e| {
            Some((
                e["function"].as_str()?.to_string(),
                e["tenant"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn letter(subject: &str) -> String {
    json!({"name": "Ada Lovelace", "email": "ada@example.org", "district": 7,
           "subject": subject, "body": "Please fund the county library."})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_read_only_their_own_states_inbox_and_bad_tokens_start_nothing() {
    let stage = emulator().await;
    let app = xtask::stack::represent();
    let (plan, report) = deploy(&stage, &app, "dev", &packages()).await;
    let rendered = plan.to_string();
    for shown in [
        "signing key represent/dev/token-signing-key",
        "authorizer",
        "request validator deployer-tenant-parameters",
    ] {
        assert!(rendered.contains(shown), "{shown}: {rendered}");
    }
    let api = report.api_urls["api"].clone();
    let endpoint = stage.clients.endpoint_url.clone().expect("an emulator");
    let key = deployer::signing_key::read(&stage.clients, "represent/dev/token-signing-key")
        .await
        .expect("the deploy created the stage's signing key");
    assert!(key.len() >= 43, "32 random bytes, base64url: {}", key.len());
    let tx_token = format!("Bearer {}", mint(&key, "TX", "staff@tx", now() + 3600));
    let inbox = format!("{api}/messages");

    // Refused at the gateway: no token, a forged one, an expired one (401), a genuine token
    // of a state Represent does not serve (403). No tenant's environment ever starts.
    let (status, body) = http("GET", &inbox, &[], "").await;
    assert_eq!(
        (status, json_of(&body)),
        (401, json!({"message": "Unauthorized"}))
    );
    let forged = format!(
        "Bearer {}",
        mint(b"not the stage's key", "TX", "x", now() + 3600)
    );
    let expired = format!("Bearer {}", mint(&key, "TX", "x", now() - 60));
    for token in [&forged, &expired] {
        let (status, body) = http("GET", &inbox, &[("Authorization", token)], "").await;
        assert_eq!(status, 401, "{body}");
    }
    let unknown = format!("Bearer {}", mint(&key, "ZZ", "x", now() + 3600));
    let (status, _) = http("GET", &inbox, &[("Authorization", &unknown)], "").await;
    assert_eq!(status, 403);
    assert_eq!(tenant_environments(&endpoint).await, []);

    // The public route: a request without the state is refused by the request validator,
    // before any function runs; bad messages are refused by the function.
    let (status, body) = http("POST", &inbox, &[], &letter("no state")).await;
    assert_eq!(status, 400);
    assert_eq!(
        json_of(&body)["message"],
        "Missing required request parameters: [x-tenant-id]"
    );
    assert_eq!(tenant_environments(&endpoint).await, []);
    let bad = json!({"name": "Ada", "email": "ada", "district": 99, "subject": "s", "body": "b"});
    let (status, body) = http("POST", &inbox, &[("x-tenant-id", "TX")], &bad.to_string()).await;
    assert_eq!(status, 400, "{body}");
    let message = json_of(&body)["error"]["message"].to_string();
    assert!(
        message.contains("email") && message.contains("Texas has no district 99"),
        "{message}"
    );
    let huge = letter(&"x".repeat(20_000));
    let (status, _) = http("POST", &inbox, &[("x-tenant-id", "TX")], &huge).await;
    assert_eq!(status, 413);

    // Constituents write: one to California, three to Texas.
    let (status, body) = http(
        "POST",
        &inbox,
        &[("x-tenant-id", "CA")],
        &letter("for California"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    for subject in ["first", "second", "third"] {
        let (status, body) = http("POST", &inbox, &[("x-tenant-id", "TX")], &letter(subject)).await;
        assert_eq!(status, 201, "{body}");
        // Ids are ordered by arrival in milliseconds.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    // Texas's staff read Texas's inbox, newest first, whatever header they add.
    let (status, body) = http(
        "GET",
        &inbox,
        &[("Authorization", &tx_token), ("x-tenant-id", "CA")],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page = json_of(&body);
    assert_eq!(page["state"]["id"], "TX", "{page}");
    let subjects: Vec<&str> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["subject"].as_str())
        .collect();
    assert_eq!(subjects, ["third", "second", "first"]);

    // Pages of two: the token of the first page leads to the last message only.
    let (_, body) = http(
        "GET",
        &format!("{inbox}?limit=2"),
        &[("Authorization", &tx_token)],
        "",
    )
    .await;
    let first = json_of(&body);
    assert_eq!(
        first["messages"].as_array().map(Vec::len),
        Some(2),
        "{first}"
    );
    let next = first["next"].as_str().expect("a next token").to_string();
    let (_, body) = http(
        "GET",
        &format!("{inbox}?limit=2&next={next}"),
        &[("Authorization", &tx_token)],
        "",
    )
    .await;
    let last = json_of(&body);
    assert_eq!(last["messages"][0]["subject"], "first", "{last}");
    assert_eq!(last["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(last["next"], Value::Null);

    // California's staff see California's message only, even with Texas's page token.
    let ca_token = format!("Bearer {}", mint(&key, "CA", "staff@ca", now() + 3600));
    let (_, body) = http(
        "GET",
        &format!("{inbox}?next={next}"),
        &[("Authorization", &ca_token)],
        "",
    )
    .await;
    let ca = json_of(&body);
    assert_eq!(ca["state"]["id"], "CA", "{ca}");
    let subjects: Vec<&Value> = ca["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["subject"])
        .collect();
    assert_eq!(
        subjects,
        [&json!("for California")],
        "a page token is a place in the caller's own inbox, never another state's"
    );
    let (_, body) = http("GET", &inbox, &[("Authorization", &ca_token)], "").await;
    let ca = json_of(&body);
    let subjects: Vec<&Value> = ca["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["subject"])
        .collect();
    assert_eq!(subjects, [&json!("for California")]);

    // Only the states that wrote or read have environments of the messages function.
    let mut envs = tenant_environments(&endpoint).await;
    envs.sort();
    envs.dedup();
    assert_eq!(
        envs,
        [
            ("represent-dev-messages".to_string(), "CA".to_string()),
            ("represent-dev-messages".to_string(), "TX".to_string())
        ]
    );

    // A redeploy changes nothing: the key, the authorizer and the validator are kept.
    let (again, report) = deploy(&stage, &app, "dev", &packages()).await;
    assert!(!again.has_changes(), "{again}");
    assert_eq!(report.mutating_calls, 0);

    // Destroy schedules the key for deletion: it can no longer be read, and the stage has
    // nothing left to sign with.
    let actual = deployer::observe::observe_app(&stage.clients, &app, "dev")
        .await
        .expect("observe");
    let plan = deployer::plan::plan_destroy(&actual, &app.name, "dev");
    assert!(
        plan.to_string()
            .contains("signing key represent/dev/token-signing-key"),
        "{plan}"
    );
    deployer::apply::destroy(&stage.clients, &plan, &crate::support::options(), &|_| {})
        .await
        .expect("destroy");
    deployer::signing_key::read(&stage.clients, "represent/dev/token-signing-key")
        .await
        .expect_err("a destroyed stage's key cannot be read");
    let gone = deployer::observe::observe_app(&stage.clients, &app, "dev")
        .await
        .expect("observe");
    assert!(
        !deployer::plan::plan_destroy(&gone, &app.name, "dev").has_changes(),
        "a second destroy has nothing to do"
    );

    // Deploying the stage again restores the same key, so staff tokens minted before the
    // destroy still verify.
    let (restored, _) = deploy(&stage, &app, "dev", &packages()).await;
    assert!(
        restored.to_string().contains("restored with its value"),
        "{restored}"
    );
    let same = deployer::signing_key::read(&stage.clients, "represent/dev/token-signing-key")
        .await
        .expect("restored");
    assert_eq!(same, key);
    let api = deployer::observe::api_urls(
        &stage.clients,
        "dev",
        &deployer::observe::observe(&stage.clients, "represent", "dev")
            .await
            .expect("observe"),
    )["api"]
        .clone();
    let (status, body) = http(
        "GET",
        &format!("{api}/messages"),
        &[("Authorization", &tx_token)],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["state"]["id"], "TX", "{body}");
}
