//! Deploys that survive the real world: the Represent stack deployed to an emulator that injects
//! AWS-shaped faults (throttling, 5xx, conflicts, dropped connections, lost answers), and deploys
//! interrupted at chosen calls, each checked by listing what the stage holds afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use deployer::clients::{Clients, Retries};
use deployer::package::Package;
use deployer::plan::Plan;
use deployer::stack::App;

use crate::support::{self, packages};

const STAGE: &str = "dev";

/// The production retry policy with delays short enough for tests.
fn test_retries() -> Retries {
    Retries {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
        total_timeout: Duration::from_secs(30),
        ..Retries::default()
    }
}

/// An emulator with its own state that can be restarted with other faults.
struct Faulty {
    emulator: Option<emulator::Emulator>,
    state: tempfile::TempDir,
    clients: Clients,
}

async fn start(state: &std::path::Path, faults: &str) -> (emulator::Emulator, Clients) {
    let mut config = emulator::Config::new(state);
    config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.faults = (!faults.is_empty())
        .then(|| emulator::faults::FaultSpec::parse(faults).expect("fault spec parses"));
    let emulator = emulator::Emulator::start(config)
        .await
        .expect("emulator starts");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(deployer::clients::https_client())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(emulator.endpoint())
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    (emulator, Clients::with_retries(&sdk, test_retries()))
}

impl Faulty {
    async fn new(faults: &str) -> Faulty {
        let state = tempfile::tempdir().expect("temp dir");
        let (emulator, clients) = start(state.path(), faults).await;
        Faulty {
            emulator: Some(emulator),
            state,
            clients,
        }
    }

    /// The same state, served again with other faults (`""` for none).
    async fn restart(&mut self, faults: &str) {
        if let Some(e) = self.emulator.take() {
            e.shutdown().await;
        }
        let (emulator, clients) = start(self.state.path(), faults).await;
        self.emulator = Some(emulator);
        self.clients = clients;
    }
}

/// observe -> plan -> apply with the tenants' data; the error is the one line a user reads.
async fn deploy(
    clients: &Clients,
    app: &App,
    packages: &BTreeMap<String, Package>,
) -> Result<(Plan, deployer::apply::ApplyReport), String> {
    let desired = deployer::desired_with_seeds(app, STAGE, packages, vec![support::tenant_seed()])
        .expect("valid stack");
    let actual = deployer::observe_stage(clients, &desired)
        .await
        .map_err(|e| e.to_string())?;
    let plan = deployer::plan::plan(&desired, &actual);
    let report = deployer::apply::apply(clients, &plan, &support::options(), &|_| {})
        .await
        .map_err(|e| e.to_string())?;
    Ok((plan, report))
}

async fn destroy(clients: &Clients, app: &App) -> Result<(), String> {
    let actual = deployer::observe::observe_app(clients, app, STAGE)
        .await
        .map_err(|e| e.to_string())?;
    let plan = deployer::plan::plan_destroy(&actual, &app.name, STAGE);
    deployer::apply::destroy(clients, &plan, &support::options(), &|_| {})
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What the stage holds, by listing every service (never by the deployer's own plan). REST API
/// ids differ between runs, so permissions are told apart by whether their API still exists.
#[derive(Debug, PartialEq, Eq, Default)]
struct Inventory {
    functions: BTreeSet<String>,
    /// Names of the stage's REST APIs, one entry per API (so a duplicate shows).
    rest_apis: Vec<String>,
    log_groups: BTreeSet<String>,
    roles: BTreeSet<String>,
    /// `role: policy` of every inline (`inline`) and attached (`attached`) policy of those roles.
    role_policies: BTreeSet<String>,
    tables: BTreeSet<String>,
    /// `function: sid` of permissions for an API that exists.
    permissions: usize,
    /// `function: sid` of permissions naming an API that no longer exists.
    dangling_permissions: Vec<String>,
}

async fn inventory(clients: &Clients) -> Inventory {
    inventory_of(clients, "represent-dev-").await
}

/// What the stage whose physical names start with `prefix` holds, by listing every service.
async fn inventory_of(clients: &Clients, prefix: &str) -> Inventory {
    let mut inv = Inventory::default();
    let functions = clients
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("ListFunctions");
    inv.functions = functions
        .iter()
        .filter_map(|f| f.function_name())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect();
    let apis = clients
        .apigateway
        .get_rest_apis()
        .send()
        .await
        .expect("GetRestApis");
    let api_ids: BTreeSet<String> = apis
        .items()
        .iter()
        .filter(|a| a.name().is_some_and(|n| n.starts_with(prefix)))
        .filter_map(|a| a.id().map(str::to_string))
        .collect();
    inv.rest_apis = apis
        .items()
        .iter()
        .filter_map(|a| a.name())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect();
    inv.rest_apis.sort();
    let groups = clients
        .logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{prefix}"))
        .send()
        .await
        .expect("DescribeLogGroups");
    inv.log_groups = groups
        .log_groups()
        .iter()
        .filter_map(|g| g.log_group_name().map(str::to_string))
        .collect();
    let roles = clients.iam.list_roles().send().await.expect("ListRoles");
    inv.roles = roles
        .roles()
        .iter()
        .map(|r| r.role_name().to_string())
        .filter(|n| n.starts_with(prefix))
        .collect();
    for role in &inv.roles {
        let inline = clients
            .iam
            .list_role_policies()
            .role_name(role)
            .send()
            .await
            .expect("ListRolePolicies");
        for name in inline.policy_names() {
            inv.role_policies.insert(format!("{role}: inline {name}"));
        }
        let attached = clients
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .expect("ListAttachedRolePolicies");
        for policy in attached.attached_policies() {
            let arn = policy.policy_arn().unwrap_or_default();
            inv.role_policies.insert(format!("{role}: attached {arn}"));
        }
    }
    let tables = clients
        .dynamodb
        .list_tables()
        .send()
        .await
        .expect("ListTables");
    inv.tables = tables
        .table_names()
        .iter()
        .filter(|n| n.starts_with(prefix))
        .cloned()
        .collect();
    for function in &inv.functions {
        let Ok(policy) = clients
            .lambda
            .get_policy()
            .function_name(function)
            .send()
            .await
        else {
            continue;
        };
        let doc: serde_json::Value =
            serde_json::from_str(policy.policy().unwrap_or("{}")).expect("policy JSON");
        for statement in doc["Statement"].as_array().into_iter().flatten() {
            let sid = statement["Sid"].as_str().unwrap_or_default();
            let Some(api) = sid.strip_prefix("deployer-apigateway-") else {
                continue;
            };
            let api = api.trim_end_matches("-authorizer");
            if api_ids.contains(api) {
                inv.permissions += 1;
            } else {
                inv.dangling_permissions.push(format!("{function}: {sid}"));
            }
        }
    }
    inv
}

/// Drops a running apply (as a SIGKILL would stop the process) once it has sent `calls`
/// mutating requests: what was sent stays applied, the rest never happens.
async fn interrupted(clients: &Clients, plan: &Plan, calls: u32) {
    let before = clients.mutating_calls.get();
    let options = support::options();
    let apply = deployer::apply::apply(clients, plan, &options, &|_| {});
    let stop = async {
        while clients.mutating_calls.get() < before + calls {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::select! {
        _ = apply => {}
        () = stop => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_deploy_and_a_noop_redeploy_succeed_at_20_percent_faults() {
    let stage = Faulty::new("0.2,seed=14").await;
    let app = xtask::stack::represent();
    let packages = packages();
    let (plan, _) = deploy(&stage.clients, &app, &packages)
        .await
        .expect("a fresh deploy succeeds at 20% faults");
    assert!(plan.has_changes());
    let (plan, report) = deploy(&stage.clients, &app, &packages)
        .await
        .expect("a redeploy succeeds at 20% faults");
    assert!(!plan.has_changes(), "{plan}");
    assert_eq!(report.mutating_calls, 0);
    let inv = inventory(&stage.clients).await;
    assert_eq!(inv.rest_apis.len(), 1, "{inv:?}");
    assert!(inv.dangling_permissions.is_empty(), "{inv:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_rest_api_answer_leaves_exactly_one_api() {
    let stage = Faulty::new("apigateway:CreateRestApi=lost,apigateway:CreateDeployment=lost").await;
    let app = xtask::stack::represent();
    let packages = packages();
    deploy(&stage.clients, &app, &packages)
        .await
        .expect("the deploy adopts the API its lost call made");
    let inv = inventory(&stage.clients).await;
    assert_eq!(
        inv.rest_apis,
        vec!["represent-dev-api".to_string()],
        "{inv:?}"
    );
    let api = stage
        .clients
        .apigateway
        .get_rest_apis()
        .send()
        .await
        .expect("GetRestApis");
    let id = api.items()[0].id().expect("an id");
    let deployments = stage
        .clients
        .apigateway
        .get_deployments()
        .rest_api_id(id)
        .send()
        .await
        .expect("GetDeployments");
    assert_eq!(
        deployments.items().len(),
        1,
        "one deployment, not one per attempt"
    );
    let (plan, _) = deploy(&stage.clients, &app, &packages)
        .await
        .expect("redeploy");
    assert!(!plan.has_changes(), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_100_percent_faults_a_deploy_fails_in_one_sentence_and_the_next_converges() {
    // Every call that changes something fails; reads pass, so the deploy gets to apply.
    let mut stage =
        Faulty::new("*:Create*=1,*:Put*=1,*:Update*=1,*:Attach*=1,*:BatchWrite*=1").await;
    let app = xtask::stack::represent();
    let packages = packages();
    let err = deploy(&stage.clients, &app, &packages)
        .await
        .expect_err("nothing gets through");
    // One sentence per failed step (steps running at once fail together), each naming the
    // call, the resource, what AWS said and the attempts over their time.
    let sentences: Vec<&str> = err
        .lines()
        .filter(|l| !l.ends_with("steps failed:"))
        .map(|l| l.trim_start_matches(['-', ' ']))
        .collect();
    assert!(!sentences.is_empty(), "{err}");
    for sentence in sentences {
        let attempts = format!("after {} attempts over", test_retries().max_attempts);
        // What AWS said: the service's error, or, for a dropped connection, that the answer
        // never came.
        let cause =
            sentence.contains("(injected fault)") || sentence.contains("its connection was lost");
        assert!(
            sentence.contains(&attempts) && sentence.contains(" failed for ") && cause,
            "{sentence}"
        );
    }
    assert!(
        !err.contains("ServiceError {") && !err.contains("raw:"),
        "{err}"
    );

    stage.restart("").await;
    deploy(&stage.clients, &app, &packages)
        .await
        .expect("a fault-free deploy converges");
    let (plan, _) = deploy(&stage.clients, &app, &packages)
        .await
        .expect("redeploy");
    assert!(!plan.has_changes(), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_and_destroys_interrupted_at_chosen_calls_converge_with_no_leftover() {
    let app = xtask::stack::represent();
    let packages = packages();
    let reference = Faulty::new("").await;
    deploy(&reference.clients, &app, &packages)
        .await
        .expect("a clean deploy");
    let the_stack = inventory(&reference.clients).await;
    assert!(the_stack.dangling_permissions.is_empty(), "{the_stack:?}");

    let stage = Faulty::new("").await;
    let desired =
        deployer::desired_with_seeds(&app, STAGE, &packages, vec![support::tenant_seed()])
            .expect("valid stack");
    // (deploy stopped at, destroy stopped at): a destroy stopped between a function's deletion
    // and its log group's leaves a group only the stack's declared names can find.
    for (calls, destroy_calls) in [(3, 3), (12, 6), (30, 8)] {
        let actual = deployer::observe_stage(&stage.clients, &desired)
            .await
            .expect("observe");
        interrupted(
            &stage.clients,
            &deployer::plan::plan(&desired, &actual),
            calls,
        )
        .await;
        let (_, _) = deploy(&stage.clients, &app, &packages)
            .await
            .expect("the next deploy converges");
        let (plan, _) = deploy(&stage.clients, &app, &packages)
            .await
            .expect("redeploy");
        assert!(!plan.has_changes(), "after a stop at call {calls}: {plan}");
        assert_eq!(
            inventory(&stage.clients).await,
            the_stack,
            "after a stop at call {calls}"
        );

        let actual = deployer::observe::observe_app(&stage.clients, &app, STAGE)
            .await
            .expect("observe");
        let plan = deployer::plan::plan_destroy(&actual, &app.name, STAGE);
        interrupted(&stage.clients, &plan, destroy_calls).await;
        destroy(&stage.clients, &app)
            .await
            .expect("the next destroy converges");
        assert_eq!(
            inventory(&stage.clients).await,
            Inventory::default(),
            "destroy stopped at call {destroy_calls}"
        );
    }
}

/// A deploy or destroy stopped after a function's deletion but before its log group's leaves a
/// group that no function points at any more: the stack's declared names still find it, so the
/// next destroy deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_group_whose_function_is_already_gone_is_destroyed() {
    let app = xtask::stack::represent();
    let packages = packages();
    let stage = Faulty::new("").await;
    deploy(&stage.clients, &app, &packages)
        .await
        .expect("a clean deploy");
    let name = deployer::function_name(&app.name, STAGE, "counties");
    stage
        .clients
        .lambda
        .delete_function()
        .function_name(&name)
        .send()
        .await
        .expect("the function is deleted");
    assert!(
        inventory(&stage.clients)
            .await
            .log_groups
            .contains(&format!("/aws/lambda/{name}")),
        "the function's log group outlives it"
    );
    destroy(&stage.clients, &app)
        .await
        .expect("the destroy converges");
    assert_eq!(inventory(&stage.clients).await, Inventory::default());
}

/// A destroy stopped right after the API's deletion leaves the functions with statements
/// naming that API; the next deploy creates a new API and removes them, so only the new API's
/// statements remain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_naming_a_deleted_api_are_removed_by_the_next_deploy() {
    let app = xtask::stack::represent();
    let packages = packages();
    let mut stage = Faulty::new("").await;
    deploy(&stage.clients, &app, &packages)
        .await
        .expect("a clean deploy");
    let the_stack = inventory(&stage.clients).await;
    // The destroy deletes the API first; then every function deletion fails, as if the run had
    // been stopped right after the API's deletion.
    stage.restart("lambda:DeleteFunction=500@1").await;
    destroy(&stage.clients, &app)
        .await
        .expect_err("no function can be deleted");
    stage.restart("").await;
    let left = inventory(&stage.clients).await;
    assert!(left.rest_apis.is_empty(), "{left:?}");
    assert!(!left.dangling_permissions.is_empty(), "{left:?}");

    let (plan, _) = deploy(&stage.clients, &app, &packages)
        .await
        .expect("the next deploy converges");
    assert!(
        plan.to_string().contains("which no longer exists"),
        "the plan shows the removals: {plan}"
    );
    let inv = inventory(&stage.clients).await;
    assert!(inv.dangling_permissions.is_empty(), "{inv:?}");
    assert_eq!(inv.permissions, the_stack.permissions, "{inv:?}");
    let (plan, _) = deploy(&stage.clients, &app, &packages)
        .await
        .expect("redeploy");
    assert!(!plan.has_changes(), "{plan}");
}

/// A small stack on Represent's binaries: a table, a tenant-scoped per-tenant function (its
/// two tenant roles), a per-tenant function that a later version makes shared (a replacement),
/// and an API routing to both. `removed` leaves `representatives` out, route included.
fn mini(shared_counties: bool, removed: bool) -> App {
    use deployer::rest_api::RestApi;
    use deployer::stack::{Function, Role, Stage};
    let counties = Function::new("counties").reads_table("data", "TABLE_NAME");
    let counties = if shared_counties {
        counties
    } else {
        counties.per_tenant()
    };
    let mut api = RestApi::new("api").route("GET", "/counties", "counties");
    let mut app = App::new("mini")
        .role(Role::lambda_basic())
        .table(deployer::table::Table::new("data"))
        .function(counties);
    if !removed {
        api = api.route("GET", "/representatives", "representatives");
        app = app.function(
            Function::new("representatives")
                .per_tenant()
                .tenant_scoped()
                .reads_table("data", "TABLE_NAME"),
        );
    }
    app.rest_api(api).stage(Stage::emulator(STAGE))
}

/// observe -> plan -> apply of a stack without seeds.
async fn deploy_unseeded(
    clients: &Clients,
    app: &App,
    packages: &BTreeMap<String, Package>,
) -> Result<Plan, String> {
    let desired = deployer::desired(app, STAGE, packages).map_err(|e| format!("{e:?}"))?;
    let actual = deployer::observe_stage(clients, &desired)
        .await
        .map_err(|e| e.to_string())?;
    let plan = deployer::plan::plan(&desired, &actual);
    deployer::apply::apply(clients, &plan, &support::options(), &|_| {})
        .await
        .map_err(|e| e.to_string())?;
    Ok(plan)
}

/// Deploys and destroys stopped at chosen calls (a fresh deploy, a replacement, a function's
/// removal, a destroy), each followed by the next deploy or destroy: listing every service then
/// finds exactly what the same changes made without a stop (nothing after the destroy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_each_kind_of_stop_the_next_run_leaves_exactly_the_stack_by_listing() {
    let packages = packages();
    let versions = [mini(false, false), mini(true, false), mini(true, true)];
    let reference = Faulty::new("").await;
    let mut expected = Vec::new();
    for app in &versions {
        deploy_unseeded(&reference.clients, app, &packages)
            .await
            .expect("a clean deploy");
        expected.push(inventory_of(&reference.clients, "mini-dev-").await);
    }
    assert!(
        expected[0].roles.len() == 3 && !expected[0].role_policies.is_empty(),
        "the stage role and the tenant roles with their policies: {:?}",
        expected[0]
    );

    let stage = Faulty::new("").await;
    // (version, the calls it is stopped after): fresh, replacement, removal.
    for ((app, calls), want) in versions.iter().zip([5, 3, 2]).zip(&expected) {
        let desired = deployer::desired(app, STAGE, &packages).expect("valid stack");
        let actual = deployer::observe_stage(&stage.clients, &desired)
            .await
            .expect("observe");
        interrupted(
            &stage.clients,
            &deployer::plan::plan(&desired, &actual),
            calls,
        )
        .await;
        deploy_unseeded(&stage.clients, app, &packages)
            .await
            .expect("the next deploy converges");
        let plan = deploy_unseeded(&stage.clients, app, &packages)
            .await
            .expect("redeploy");
        assert!(!plan.has_changes(), "after a stop at call {calls}: {plan}");
        assert_eq!(
            &inventory_of(&stage.clients, "mini-dev-").await,
            want,
            "after a stop at call {calls}"
        );
    }
    let app = &versions[2];
    let actual = deployer::observe::observe_app(&stage.clients, app, STAGE)
        .await
        .expect("observe");
    let plan = deployer::plan::plan_destroy(&actual, &app.name, STAGE);
    interrupted(&stage.clients, &plan, 3).await;
    // The next destroy runs with the stack as it is now; the removed function's name is no
    // longer declared, so whatever of it is left is found by tag.
    let actual = deployer::observe::observe_app(&stage.clients, app, STAGE)
        .await
        .expect("observe");
    let plan = deployer::plan::plan_destroy(&actual, &app.name, STAGE);
    deployer::apply::destroy(&stage.clients, &plan, &support::options(), &|_| {})
        .await
        .expect("the next destroy converges");
    assert_eq!(
        inventory_of(&stage.clients, "mini-dev-").await,
        Inventory::default()
    );
}

/// A function removed from the stack and deleted before its log group (a stopped deploy) leaves
/// a group no declared name finds: its tags claim it. A group that only shares the stage's
/// prefix, untagged, is never deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tagged_group_of_a_function_gone_from_the_stack_is_deleted_and_an_untagged_one_kept() {
    let packages = packages();
    let stage = Faulty::new("").await;
    deploy_unseeded(&stage.clients, &mini(false, false), &packages)
        .await
        .expect("a clean deploy");
    let stranger = "/aws/lambda/mini-dev-stranger";
    stage
        .clients
        .logs
        .create_log_group()
        .log_group_name(stranger)
        .send()
        .await
        .expect("an untagged group under the stage's prefix");
    // What a deploy removing `representatives` did before it was stopped: the function is gone.
    let removed = deployer::function_name("mini", STAGE, "representatives");
    stage
        .clients
        .lambda
        .delete_function()
        .function_name(&removed)
        .send()
        .await
        .expect("the function is deleted");
    let plan = deploy_unseeded(&stage.clients, &mini(false, true), &packages)
        .await
        .expect("the deploy without it converges");
    assert!(
        plan.to_string()
            .contains(&format!("delete  log group /aws/lambda/{removed}")),
        "{plan}"
    );
    let groups = inventory_of(&stage.clients, "mini-dev-").await.log_groups;
    assert!(
        !groups.contains(&format!("/aws/lambda/{removed}")),
        "{groups:?}"
    );
    assert!(groups.contains(stranger), "{groups:?}");

    destroy(&stage.clients, &mini(false, true))
        .await
        .expect("destroy");
    let groups = inventory_of(&stage.clients, "mini-dev-").await.log_groups;
    assert_eq!(groups, BTreeSet::from([stranger.to_string()]));
}
