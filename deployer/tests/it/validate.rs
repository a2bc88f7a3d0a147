//! Stack validation: every problem is reported, before any network call, naming the culprit.

use deployer::{App, Function, Role, Seed, Stage, Table, desired_with_seeds, validate};

use super::support::{packages, tenant_app, tenant_desired};

fn errors(app: &App, stage: &str) -> String {
    validate(app, stage)
        .expect_err("stack should be rejected")
        .to_string()
}

fn base() -> App {
    App::new("represent").stage(Stage::aws("dev"))
}

#[test]
fn valid_stack_passes() {
    assert_eq!(validate(&super::support::app(), "dev"), Ok(()));
}

#[test]
fn bad_names_are_rejected() {
    let app = App::new("Represent")
        .function(Function::new("my_fn"))
        .stage(Stage::aws("dev"));
    let msg = errors(&app, "dev");
    assert!(msg.contains("app name `Represent`"), "{msg}");
    assert!(msg.contains("function name `my_fn`"), "{msg}");
    let msg = errors(&App::new("").stage(Stage::aws("dev")), "dev");
    assert!(msg.contains("app name ``"), "{msg}");
}

#[test]
fn unknown_stage_names_the_known_ones() {
    let msg = errors(&base(), "prod");
    assert!(
        msg.contains("unknown stage `prod`") && msg.contains("dev"),
        "{msg}"
    );
}

#[test]
fn names_too_long_for_lambda_or_iam_are_rejected() {
    let long = "a".repeat(50);
    let app = base().function(Function::new(&long));
    let msg = errors(&app, "dev");
    assert!(
        msg.contains(&format!("represent-dev-{long}-r")) && msg.contains("Lambda allows 64"),
        "{msg}"
    );
    // The function name fits only without the replacement suffix: still rejected, because a
    // later tenancy change would need the longer slot.
    let logical = "a".repeat(64 - "represent-dev-".len());
    let msg = errors(&base().function(Function::new(&logical)), "dev");
    assert!(msg.contains("66 characters"), "{msg}");

    let app = App::new(&"x".repeat(60)).stage(Stage::aws("dev"));
    let msg = errors(&app, "dev");
    assert!(
        msg.contains("role name") && msg.contains("IAM allows 64"),
        "{msg}"
    );
}

#[test]
fn memory_and_timeout_out_of_range_are_rejected() {
    let app = base()
        .function(Function::new("small").memory(64))
        .function(Function::new("slow").timeout(901))
        .function(Function::new("instant").timeout(0));
    let msg = errors(&app, "dev");
    assert!(msg.contains("function `small`: memory 64 MB"), "{msg}");
    assert!(msg.contains("function `slow`: timeout 901 s"), "{msg}");
    assert!(msg.contains("function `instant`: timeout 0 s"), "{msg}");
}

#[test]
fn duplicate_functions_are_rejected() {
    let app = base()
        .function(Function::new("a"))
        .function(Function::new("a"));
    let msg = errors(&app, "dev");
    assert!(
        msg.contains("function `a` is defined more than once"),
        "{msg}"
    );
}

#[test]
fn per_tenant_refuses_url_provisioned_concurrency_and_snapstart() {
    let app = base().function(
        Function::new("iso")
            .per_tenant()
            .function_url()
            .provisioned_concurrency(2)
            .snap_start(),
    );
    let msg = errors(&app, "dev");
    for feature in ["a function URL", "provisioned concurrency", "SnapStart"] {
        assert!(
            msg.contains(&format!(
                "function `iso`: per-tenant isolation cannot be combined with {feature}"
            )),
            "{msg}"
        );
    }
    // The same features on a shared function are fine.
    let shared = base().function(Function::new("shared").function_url().snap_start());
    assert_eq!(validate(&shared, "dev"), Ok(()));
}

#[test]
fn environment_keys_must_be_valid_and_not_reserved() {
    let app = base().function(
        Function::new("f")
            .env("1BAD", "x")
            .env("AWS_REGION", "x")
            .env("AWS_LAMBDA_FUNCTION_NAME", "x")
            .env("_HANDLER", "x")
            .env("GOOD_KEY", "x"),
    );
    let msg = errors(&app, "dev");
    assert!(msg.contains("environment key `1BAD` is invalid"), "{msg}");
    assert!(msg.contains("`AWS_REGION` is reserved"), "{msg}");
    assert!(
        msg.contains("`AWS_LAMBDA_FUNCTION_NAME` is reserved"),
        "{msg}"
    );
    assert!(msg.contains("`_HANDLER`"), "{msg}");
    assert!(!msg.contains("GOOD_KEY"), "{msg}");
}

#[test]
fn several_problems_are_all_listed_one_per_line() {
    let app = App::new("Bad App")
        .function(Function::new("f").memory(1).timeout(1000))
        .stage(Stage::aws("dev"));
    let err = validate(&app, "qa").expect_err("rejected");
    assert_eq!(err.0.len(), 4, "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("the stack has 4 problems:"), "{msg}");
    for problem in [
        "app name `Bad App`",
        "unknown stage `qa`",
        "memory 1 MB",
        "timeout 1000 s",
    ] {
        assert!(msg.contains(problem), "{msg}");
    }
    assert_eq!(msg.lines().count(), 5, "{msg}");
}

#[test]
fn reading_an_undeclared_table_lists_the_declared_ones() {
    let app = base()
        .table(Table::new("data"))
        .table(Table::new("cache"))
        .function(Function::new("f").reads_table("reps", "TABLE_NAME"));
    let msg = errors(&app, "dev");
    assert!(
        msg.contains(
            "function `f` reads table `reps`, which the stack does not declare; declared tables: data, cache"
        ),
        "{msg}"
    );
}

#[test]
fn tables_need_valid_unique_names_and_their_env_key_must_be_free() {
    let app = base()
        .table(Table::new("data"))
        .table(Table::new("data"))
        .table(Table::new("Bad"))
        .function(
            Function::new("f")
                .env("TABLE_NAME", "x")
                .reads_table("data", "TABLE_NAME")
                .reads_table("data", "AWS_REGION"),
        )
        .role(Role::lambda_basic().inline_policy("table-read", "{}"));
    let msg = errors(&app, "dev");
    assert!(
        msg.contains("table `data` is defined more than once"),
        "{msg}"
    );
    assert!(msg.contains("table name `Bad`"), "{msg}");
    assert!(
        msg.contains("environment key `TABLE_NAME` is set both by `env` and by `reads_table"),
        "{msg}"
    );
    assert!(msg.contains("`AWS_REGION` is reserved"), "{msg}");
    assert!(
        msg.contains("inline policy `table-read` is reserved"),
        "{msg}"
    );
    // The physical name must suit DynamoDB: at most 255 characters.
    let long = base().table(Table::new(&"t".repeat(250)));
    let msg = errors(&long, "dev");
    assert!(msg.contains("DynamoDB allows 3 to 255 characters"), "{msg}");
}

#[test]
fn functions_get_the_physical_table_name_and_read_only_access_to_exactly_their_tables() {
    let app = tenant_app()
        .table(Table::new("unread"))
        .table(Table::new("cache"))
        .function(Function::new("cacher").reads_table("cache", "CACHE"));
    let d = deployer::desired(&app, "dev", &packages(&app, "v1")).expect("valid");
    let reps = d.find_function("representatives").expect("function");
    assert_eq!(
        reps.environment.get("TABLE_NAME").map(String::as_str),
        Some("represent-dev-data")
    );
    let counties = d.find_function("counties").expect("function");
    assert!(counties.environment.is_empty());

    let doc: serde_json::Value =
        serde_json::from_str(&d.role.inline_policies["table-read"]).expect("JSON policy");
    let statements = doc["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Effect"], "Allow");
    assert_eq!(
        statements[0]["Action"],
        serde_json::json!([
            "dynamodb:BatchGetItem",
            "dynamodb:GetItem",
            "dynamodb:Query"
        ])
    );
    assert_eq!(
        statements[0]["Resource"],
        serde_json::json!([
            "arn:aws:dynamodb:*:*:table/represent-dev-cache",
            "arn:aws:dynamodb:*:*:table/represent-dev-data",
        ]),
        "only the tables some function reads"
    );

    // No function reads a table: the role has no DynamoDB access at all.
    let quiet = base()
        .table(Table::new("data"))
        .function(Function::new("f"));
    let d = deployer::desired(&quiet, "dev", &packages(&quiet, "v1")).expect("valid");
    assert!(d.role.inline_policies.is_empty());
}

#[test]
fn seed_problems_are_all_reported_before_any_call() {
    let app = tenant_app();
    let seeds = vec![
        Seed::new("nope").record("TX", "STATE", "{}"),
        Seed::new("data")
            .record("T;X", "STATE", "{}")
            .record("TX", "", "{}")
            .record("TX", "STATE", "not json"),
        Seed::new("data").record("TX", "SEAT#01", "{}"),
    ];
    let err = desired_with_seeds(&app, "dev", &packages(&app, "v1"), seeds).expect_err("rejected");
    let msg = err.to_string();
    assert_eq!(err.0.len(), 5, "{msg}");
    assert!(
        msg.contains(
            "seed data names table `nope`, which the stack does not declare; declared tables: data"
        ),
        "{msg}"
    );
    assert!(msg.contains("tenant id \"T;X\" contains ';'"), "{msg}");
    assert!(msg.contains("record key \"\" is empty"), "{msg}");
    assert!(
        msg.contains("record \"STATE\": data is not a JSON document"),
        "{msg}"
    );
    assert!(msg.contains("lists tenant \"TX\" more than once"), "{msg}");
}

#[test]
fn desired_state_never_serializes_tenant_data() {
    let d = tenant_desired(vec![Seed::new("data").record(
        "TX",
        "STATE",
        r#"{"secret":1}"#,
    )]);
    let json = serde_json::to_string(&d).expect("serializable");
    assert!(json.contains("represent-dev-data"), "{json}");
    assert!(!json.contains("secret"), "{json}");
}
