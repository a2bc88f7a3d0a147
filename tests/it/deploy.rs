//! Deploying the Represent stack to the emulator: first deploy, no-op redeploy, code update,
//! tenancy replacement and destroy, observed through the same SDK a user's AWS account would see.

use deployer::plan::Action;
use deployer::stack::Tenancy;
use serde_json::json;

use crate::support::{self, changed_package, deploy, emulator, http_get, invoke, packages};

const STAGE: &str = "dev";

fn actions(plan: &deployer::plan::Plan) -> Vec<(String, Action)> {
    plan.changes
        .iter()
        .map(|c| (c.resource.clone(), c.action))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_invoke_redeploy_update_and_destroy() {
    let stage = emulator().await;
    let app = xtask::stack::represent();
    let packages = packages();

    // First deploy: the role and every function are created, in tenant isolation mode.
    let (plan, report) = deploy(&stage, &app, STAGE, &packages).await;
    assert!(plan.has_changes());
    assert!(
        actions(&plan)
            .iter()
            .all(|(resource, action)| *action == Action::Create
                || (*action == Action::Update && resource.starts_with("tenant "))),
        "{plan}"
    );
    assert!(report.mutating_calls > 0);
    let config = stage
        .lambda
        .get_function_configuration()
        .function_name("represent-dev-representatives")
        .send()
        .await
        .expect("function exists under its stage name");
    assert_eq!(
        config
            .tenancy_config()
            .map(|t| t.tenant_isolation_mode().as_str()),
        Some("PER_TENANT")
    );
    assert_eq!(
        config.code_sha256(),
        Some(packages["representatives"].code_sha256.as_str()),
        "Lambda's CodeSha256 is the package's"
    );

    // Each tenant is answered with its own data, read from its own partition.
    let tx = invoke(
        &stage,
        &app,
        STAGE,
        "representatives",
        Some("TX"),
        json!({}),
    )
    .await;
    assert_eq!(tx["state"]["id"], "TX", "{tx}");
    assert_eq!(tx["senators"].as_array().map(Vec::len), Some(2), "{tx}");
    assert_eq!(tx["seats"].as_array().map(Vec::len), Some(38), "{tx}");
    let vacant = &tx["seats"][22];
    assert_eq!(
        (vacant["district"].as_u64(), vacant["vacant"].as_bool()),
        (Some(23), Some(true))
    );
    let ca = invoke(&stage, &app, STAGE, "counties", Some("CA"), json!({})).await;
    assert_eq!(ca["state"]["id"], "CA", "{ca}");
    assert_eq!(ca["counties"].as_array().map(Vec::len), Some(58), "{ca}");
    // Texas's environment cannot be used to read a California county.
    let across = invoke(
        &stage,
        &app,
        STAGE,
        "counties",
        Some("TX"),
        json!({"path": "/counties/06037"}),
    )
    .await;
    assert_eq!(across["error"]["status"], 404, "{across}");
    let harris = invoke(
        &stage,
        &app,
        STAGE,
        "counties",
        Some("TX"),
        json!({"path": "/counties/48201"}),
    )
    .await;
    assert_eq!(harris["county"]["name"], "Harris County", "{harris}");

    // The REST API: a plain HTTP client names its state in a header and is served by that
    // state's environments, as API Gateway maps `x-tenant-id` to `X-Amz-Tenant-Id`.
    let api = report
        .api_urls
        .get("api")
        .expect("the deploy reports the API's URL")
        .clone();
    let (status, body) =
        http_get(&format!("{api}/representatives"), &[("x-tenant-id", "TX")]).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(answer["state"]["id"], "TX", "{answer}");
    let (status, body) = http_get(&format!("{api}/counties/06037"), &[("x-tenant-id", "CA")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Los Angeles County"), "{body}");
    let (status, body) = http_get(&format!("{api}/counties/06037"), &[("x-tenant-id", "TX")]).await;
    assert_eq!(status, 404, "Texas cannot read California: {body}");
    let (status, body) = http_get(
        &format!("{api}/representatives?district=7"),
        &[("x-tenant-id", "TX")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"district\":7"), "{body}");
    let (status, _) = http_get(&format!("{api}/representatives"), &[]).await;
    assert_eq!(status, 400, "no tenant header, no function run");
    let (status, _) = http_get(&format!("{api}/senators"), &[("x-tenant-id", "TX")]).await;
    assert_eq!(
        status, 403,
        "unknown route: API Gateway's Missing Authentication Token"
    );
    let (status, body) =
        http_get(&format!("{api}/representatives"), &[("x-tenant-id", "ZZ")]).await;
    assert_eq!(status, 403, "not a state: {body}");

    // Nothing changed: nothing is sent.
    let (plan, report) = deploy(&stage, &app, STAGE, &packages).await;
    assert!(!plan.has_changes(), "{plan}");
    assert_eq!(report.mutating_calls, 0);

    // A code change uploads the code and touches nothing else.
    let mut changed = packages.clone();
    changed.insert("representatives".into(), changed_package("representatives"));
    let (plan, _) = deploy(&stage, &app, STAGE, &changed).await;
    assert_eq!(
        actions(&plan)
            .iter()
            .filter(|(_, a)| *a != Action::NoOp)
            .cloned()
            .collect::<Vec<_>>(),
        vec![(
            "function represent-dev-representatives".to_string(),
            Action::Update
        )],
        "{plan}"
    );
    let code_only = plan
        .changes
        .iter()
        .any(|c| matches!(&c.op, deployer::Op::Function(op) if op.code && !op.configuration));
    assert!(
        code_only,
        "only the code is sent:
{plan}"
    );
    let config = stage
        .lambda
        .get_function_configuration()
        .function_name("represent-dev-representatives")
        .send()
        .await
        .expect("function still there");
    assert_eq!(
        config.code_sha256(),
        Some(changed["representatives"].code_sha256.as_str())
    );
    let tx = invoke(
        &stage,
        &app,
        STAGE,
        "representatives",
        Some("TX"),
        json!({}),
    )
    .await;
    assert_eq!(tx["state"]["id"], "TX", "the new code answers");

    // Destroy removes every function, the table and the role of the stage.
    let actual = deployer::observe::observe_app(&stage.clients, &app, STAGE)
        .await
        .expect("observe");
    let plan = deployer::plan::plan_destroy(&actual, &app.name, STAGE);
    deployer::apply::destroy(&stage.clients, &plan, &support::options(), &|_| {})
        .await
        .expect("destroy");
    let left = stage.lambda.list_functions().send().await.expect("list");
    assert!(left.functions().is_empty(), "{:?}", left.functions());
    let tables = stage
        .dynamodb
        .list_tables()
        .send()
        .await
        .expect("list tables");
    assert!(
        tables.table_names().is_empty(),
        "{:?}",
        tables.table_names()
    );
    let role = stage
        .iam
        .get_role()
        .role_name("represent-dev-exec")
        .send()
        .await;
    assert!(
        role.as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_no_such_entity_exception()),
        "the role is gone: {role:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_change_replaces_the_function_without_a_gap() {
    let stage = emulator().await;
    let packages = packages();
    let mut app = xtask::stack::represent();
    for function in &mut app.functions {
        function.tenancy = Tenancy::Shared;
        // Tenant-scoped credentials need one tenant per environment.
        function.tenant_scoped = false;
    }
    deploy(&stage, &app, STAGE, &packages).await;
    let before = stage
        .lambda
        .get_function_configuration()
        .function_name("represent-dev-representatives")
        .send()
        .await
        .expect("deployed");
    assert!(before.tenancy_config().is_none());

    // Back to the real stack: PER_TENANT cannot be switched on in place.
    let app = xtask::stack::represent();
    let (plan, _) = deploy(&stage, &app, STAGE, &packages).await;
    let replace = plan
        .changes
        .iter()
        .find(|c| c.action == Action::Replace)
        .unwrap_or_else(|| panic!("a replace is planned:\n{plan}"));
    assert!(replace.reason.contains("tenancy"), "{}", replace.reason);

    let listed = stage.lambda.list_functions().send().await.expect("list");
    assert_eq!(
        listed.functions().len(),
        app.functions.len(),
        "one function per logical function, the old ones are gone: {:?}",
        listed.functions()
    );
    for config in listed.functions() {
        // Every function is back in tenant isolation mode but the token authorizer, which API
        // Gateway invokes without a tenant.
        let name = config.function_name().unwrap_or_default();
        let logical = name
            .trim_start_matches("represent-dev-")
            .trim_end_matches("-r");
        let wanted = app
            .find_function(logical)
            .is_some_and(|f| f.tenancy == Tenancy::PerTenant)
            .then_some("PER_TENANT");
        assert_eq!(
            config
                .tenancy_config()
                .map(|t| t.tenant_isolation_mode().as_str()),
            wanted,
            "{name}"
        );
    }
    let tx = invoke(
        &stage,
        &app,
        STAGE,
        "representatives",
        Some("TX"),
        json!({}),
    )
    .await;
    assert_eq!(tx["state"]["id"], "TX");

    // The replacement converged: the next deploy has nothing to do.
    let (plan, report) = deploy(&stage, &app, STAGE, &packages).await;
    assert!(!plan.has_changes(), "{plan}");
    assert_eq!(report.mutating_calls, 0);
}
