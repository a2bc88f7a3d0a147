//! What callers of `representatives` see: every route, every refusal, in both request shapes.

use serde_json::{Value, json};

use crate::support::{apigw, deps, invoke, proxy};

#[tokio::test]
async fn a_state_lists_its_senators_and_every_seat_with_vacancies_shown() {
    let deps = deps(&["TX"]);
    let (status, body) = proxy(&invoke(&deps, Some("TX"), apigw(Value::Null)).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], json!({"id": "TX", "name": "Texas"}));
    assert_eq!(body["senators"].as_array().expect("senators").len(), 2);
    let seats = body["seats"].as_array().expect("seats");
    assert_eq!(seats.len(), 38);
    assert_eq!(seats[0]["district"], 1);
    let vacant = &seats[22];
    assert_eq!(vacant["district"], 23);
    assert_eq!(vacant["vacant"], true, "{vacant}");
    assert_eq!(vacant["representative"], Value::Null);
    assert_eq!(vacant["title"], "Representative");
    assert_eq!(seats[6]["vacant"], false);
    assert!(
        seats[6]["representative"]["name"].is_string(),
        "{}",
        seats[6]
    );
}

#[tokio::test]
async fn one_district_comes_with_the_senators() {
    let deps = deps(&["TX"]);
    let (status, body) = proxy(&invoke(&deps, Some("TX"), apigw(json!({"district": "7"}))).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["seat"]["district"], 7);
    assert_eq!(body["seat"]["vacant"], false);
    assert!(body["seat"]["representative"]["bioguide"].is_string());
    assert_eq!(body["senators"].as_array().expect("senators").len(), 2);
    assert!(body.get("seats").is_none(), "only the asked seat: {body}");

    let (_, vacant) = proxy(&invoke(&deps, Some("TX"), apigw(json!({"district": "23"}))).await);
    assert_eq!(vacant["seat"]["vacant"], true);
}

#[tokio::test]
async fn a_malformed_district_is_a_bad_request() {
    let deps = deps(&["TX"]);
    let (status, body) = proxy(&invoke(&deps, Some("TX"), apigw(json!({"district": "x"}))).await);
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": {"status": 400, "message": "district must be a number, got \"x\""}})
    );
}

#[tokio::test]
async fn a_district_the_state_does_not_have_is_not_found_and_the_range_is_named() {
    let deps = deps(&["TX"]);
    let (status, body) = proxy(&invoke(&deps, Some("TX"), apigw(json!({"district": "39"}))).await);
    assert_eq!(status, 404);
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("Texas has districts 1 to 38"), "{message}");
    assert_eq!(body["error"]["status"], 404);

    let (status, _) = proxy(&invoke(&deps, Some("TX"), apigw(json!({"district": "0"}))).await);
    assert_eq!(status, 404, "a state with districts has no at-large seat");
}

#[tokio::test]
async fn an_at_large_state_has_district_zero_only() {
    let deps = deps(&["WY"]);
    let answer = invoke(
        &deps,
        Some("WY"),
        json!({"path": "/representatives", "query": {"district": "0"}}),
    )
    .await;
    assert_eq!(answer["seat"]["district"], 0, "{answer}");
    assert_eq!(answer["state"]["name"], "Wyoming");

    let refused = invoke(
        &deps,
        Some("WY"),
        json!({"path": "/representatives", "query": {"district": "1"}}),
    )
    .await;
    assert_eq!(refused["error"]["status"], 404);
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("Wyoming has one at-large seat, district 0"),
        "{message}"
    );
}

#[tokio::test]
async fn the_district_of_columbia_has_a_delegate_and_no_senators() {
    let deps = deps(&["DC"]);
    let answer = invoke(&deps, Some("DC"), json!({})).await;
    assert_eq!(answer["senators"], json!([]));
    assert_eq!(answer["seats"][0]["title"], "Delegate");
    assert_eq!(answer["seats"][0]["district"], 0);
}

#[tokio::test]
async fn an_unknown_tenant_is_forbidden_without_reading_data() {
    let deps = deps(&["TX"]);
    let (status, body) = proxy(&invoke(&deps, Some("ZZ"), apigw(Value::Null)).await);
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"error": {"status": 403, "message": "unknown tenant `ZZ`"}})
    );
    let direct = invoke(&deps, Some("../x"), json!({"querry": "unread"})).await;
    assert_eq!(direct["error"]["status"], 403);
    assert_eq!(deps.source.loads(), 0, "the table is not touched");
    assert_eq!(deps.cache.tenant(), None);
}

#[tokio::test]
async fn an_invoke_without_tenant_is_a_bad_request() {
    let deps = deps(&["TX"]);
    let (status, body) = proxy(&invoke(&deps, None, apigw(Value::Null)).await);
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("no tenant id"),
        "{body}"
    );
    let direct = invoke(&deps, None, json!({})).await;
    assert_eq!(direct["error"]["status"], 400);
    assert_eq!(deps.source.loads(), 0);
}

#[tokio::test]
async fn data_is_loaded_once_per_environment_and_never_for_another_tenant() {
    let deps = deps(&["TX", "CA"]);
    let first = invoke(&deps, Some("TX"), json!({})).await;
    let second = invoke(&deps, Some("TX"), json!({"query": {"district": 7}})).await;
    assert_eq!(first["state"]["id"], "TX");
    assert_eq!(second["seat"]["district"], 7);
    assert_eq!(
        deps.source.loads(),
        1,
        "the second invoke is served from memory"
    );

    // Tenant isolation promises this never happens; if the platform broke that promise, Texas's
    // data must not be served to California, nor California's loaded next to it.
    let (status, body) = proxy(&invoke(&deps, Some("CA"), apigw(Value::Null)).await);
    assert_eq!(status, 500);
    assert!(body.get("state").is_none(), "{body}");
    assert!(!body.to_string().contains("Texas"), "{body}");
    assert_eq!(deps.source.loads(), 1);
}

#[tokio::test]
async fn direct_invokes_and_api_gateway_events_get_the_same_data() {
    let deps = deps(&["TX"]);
    for (query, direct_query) in [
        (Value::Null, json!({})),
        (json!({"district": "23"}), json!({"district": "23"})),
        (json!({"district": "99"}), json!({"district": "99"})),
        (json!({"district": "x"}), json!({"district": "x"})),
    ] {
        let (_, via_gateway) = proxy(&invoke(&deps, Some("TX"), apigw(query)).await);
        let direct = invoke(
            &deps,
            Some("TX"),
            json!({"path": "/representatives", "query": direct_query}),
        )
        .await;
        assert_eq!(via_gateway, direct);
    }
}

#[tokio::test]
async fn unknown_paths_and_writes_are_refused() {
    let deps = deps(&["TX"]);
    let mut event = apigw(Value::Null);
    event["path"] = json!("/senators");
    let (status, body) = proxy(&invoke(&deps, Some("TX"), event).await);
    assert_eq!(status, 404, "{body}");

    let mut event = apigw(Value::Null);
    event["httpMethod"] = json!("POST");
    event["requestContext"]["httpMethod"] = json!("POST");
    let (status, _) = proxy(&invoke(&deps, Some("TX"), event).await);
    assert_eq!(status, 405);

    let direct = invoke(&deps, Some("TX"), json!({"path": "/counties"})).await;
    assert_eq!(direct["error"]["status"], 404);
}
