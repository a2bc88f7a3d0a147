//! What callers of `counties` see: every route, every refusal, in both request shapes.

use serde_json::{Value, json};

use crate::support::{apigw, deps, fixture, invoke, proxy};

#[tokio::test]
async fn a_county_is_found_by_its_fips() {
    let deps = deps(&["TX"]);
    let (status, body) = proxy(&invoke(&deps, Some("TX"), fixture("apigw-get-county.json")).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "state": {"id": "TX", "name": "Texas"},
            "county": {"fips": "48201", "name": "Harris County"}
        })
    );
}

#[tokio::test]
async fn a_state_lists_all_its_counties_in_fips_order() {
    let deps = deps(&["TX"]);
    let (status, body) = proxy(&invoke(&deps, Some("TX"), apigw("/counties")).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["id"], "TX");
    let counties = body["counties"].as_array().expect("counties");
    assert_eq!(counties.len(), 254);
    assert_eq!(
        counties[0],
        json!({"fips": "48001", "name": "Anderson County"})
    );
    let fips: Vec<&str> = counties
        .iter()
        .map(|c| c["fips"].as_str().expect("fips"))
        .collect();
    assert!(fips.windows(2).all(|w| w[0] < w[1]), "sorted by FIPS");
}

#[tokio::test]
async fn a_county_of_another_state_is_not_in_this_one() {
    let deps = deps(&["TX", "CA"]);
    let (status, body) = proxy(&invoke(&deps, Some("TX"), apigw("/counties/06037")).await);
    assert_eq!(status, 404, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("county 06037 is not in Texas"),
        "{message}"
    );
    assert!(!body.to_string().contains("Los Angeles"), "{body}");
    assert_eq!(
        deps.cache.tenant(),
        Some("TX"),
        "California's data was never read"
    );
    assert_eq!(deps.source.loads(), 1);
}

#[tokio::test]
async fn an_unknown_county_of_this_state_is_not_found() {
    let deps = deps(&["TX"]);
    let (status, body) = proxy(&invoke(&deps, Some("TX"), apigw("/counties/48999")).await);
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": {"status": 404, "message": "Texas has no county 48999"}})
    );
}

#[tokio::test]
async fn a_malformed_fips_is_a_bad_request() {
    let deps = deps(&["TX"]);
    for fips in ["4820", "482011", "48a01", "%2E%2E"] {
        let (status, body) =
            proxy(&invoke(&deps, Some("TX"), apigw(&format!("/counties/{fips}"))).await);
        assert_eq!(status, 400, "{fips}: {body}");
        assert_eq!(
            body["error"]["message"],
            format!("county FIPS must be 5 digits, got \"{fips}\"")
        );
    }
}

#[tokio::test]
async fn a_territory_has_no_counties_yet() {
    let deps = deps(&["PR"]);
    let answer = invoke(&deps, Some("PR"), json!({})).await;
    assert_eq!(answer["state"], json!({"id": "PR", "name": "Puerto Rico"}));
    assert_eq!(answer["counties"], json!([]));
}

#[tokio::test]
async fn an_unknown_tenant_is_forbidden_without_reading_data() {
    let deps = deps(&["TX"]);
    let (status, body) = proxy(&invoke(&deps, Some("ZZ"), apigw("/counties/48201")).await);
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"error": {"status": 403, "message": "unknown tenant `ZZ`"}})
    );
    assert_eq!(deps.source.loads(), 0, "the table is not touched");
}

#[tokio::test]
async fn an_invoke_without_tenant_is_a_bad_request() {
    let deps = deps(&["TX"]);
    let answer = invoke(&deps, None, json!({"path": "/counties/48201"})).await;
    assert_eq!(answer["error"]["status"], 400, "{answer}");
    assert_eq!(deps.source.loads(), 0);
}

#[tokio::test]
async fn data_is_loaded_once_per_environment_and_never_for_another_tenant() {
    let deps = deps(&["TX", "CA"]);
    invoke(&deps, Some("TX"), json!({})).await;
    let again = invoke(&deps, Some("TX"), json!({"path": "/counties/48201"})).await;
    assert_eq!(again["county"]["name"], "Harris County");
    assert_eq!(deps.source.loads(), 1);

    let refused = invoke(&deps, Some("CA"), json!({"path": "/counties/06037"})).await;
    assert_eq!(refused["error"]["status"], 500, "{refused}");
    assert!(!refused.to_string().contains("Los Angeles"));
    assert_eq!(deps.source.loads(), 1);
}

#[tokio::test]
async fn direct_invokes_and_api_gateway_events_get_the_same_data() {
    let deps = deps(&["TX"]);
    for path in [
        "/counties",
        "/counties/48201",
        "/counties/06037",
        "/counties/x",
        "/nope",
    ] {
        let (_, via_gateway) = proxy(&invoke(&deps, Some("TX"), apigw(path)).await);
        let direct = invoke(&deps, Some("TX"), json!({"path": path})).await;
        assert_eq!(via_gateway, direct, "{path}");
    }
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let deps = deps(&["TX"]);
    for path in ["/counties/48201/x", "/county/48201", "/countiesx", "/"] {
        let answer = invoke(&deps, Some("TX"), json!({"path": path})).await;
        assert_eq!(answer["error"]["status"], 404, "{path}: {answer}");
    }
    let answer = invoke(&deps, Some("TX"), Value::Null).await;
    assert_eq!(answer["counties"].as_array().map(Vec::len), Some(254));
}
