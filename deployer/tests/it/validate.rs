//! Stack validation: every problem is reported, before any network call, naming the culprit.

use deployer::{App, Function, Stage, validate};

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
