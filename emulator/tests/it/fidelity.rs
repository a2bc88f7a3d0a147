//! Answers AWS was recorded giving, checked through the real SDK clients: Lambda's runtime list,
//! request ids, configuration limits, qualifiers and tenancy errors; IAM's tag limits and
//! listings; CloudWatch Logs' event time window and KMS keys; API Gateway's REST API settings.

use aws_sdk_apigateway::types::{ApiKeySourceType, EndpointConfiguration, EndpointType};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_iam::types::Tag;
use aws_sdk_lambda::error::ProvideErrorMetadata as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, EphemeralStorage, FunctionCode, Runtime, TracingConfig, TracingMode,
};

use crate::support::{self, create_function, zip_with};

fn code() -> FunctionCode {
    FunctionCode::builder()
        .zip_file(Blob::new(zip_with("bootstrap", b"1")))
        .build()
}

async fn lambda_with_role() -> (
    emulator::Emulator,
    tempfile::TempDir,
    aws_sdk_lambda::Client,
    String,
) {
    let (emulator, dir) = support::start().await;
    let role = support::create_role(&support::iam_client(&emulator)).await;
    let lambda = support::lambda_client(&emulator);
    (emulator, dir, lambda, role)
}

#[tokio::test]
async fn lambda_takes_every_runtime_of_the_sdk_model_and_refuses_others_as_aws_does() {
    let (_emulator, _dir, lambda, role) = lambda_with_role().await;
    for (name, runtime) in [
        ("py", "python3.14"),
        ("node", "nodejs24.x"),
        ("java", "java25"),
    ] {
        lambda
            .create_function()
            .function_name(name)
            .runtime(Runtime::from(runtime))
            .handler("index.handler")
            .role(&role)
            .code(code())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{runtime} is refused: {e:?}"));
    }
    let err = lambda
        .create_function()
        .function_name("bad")
        .runtime(Runtime::from("non-existent-runtime"))
        .handler("index.handler")
        .role(&role)
        .code(code())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_parameter_value_exception(), "{err:?}");
    let message = err.message().unwrap();
    // The emulator keeps its own copy of Lambda's runtime names; the SDK's model of the same
    // release must agree with it name for name.
    assert_eq!(
        message,
        format!(
            "Value non-existent-runtime at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}] or be a valid ARN",
            Runtime::values().join(", ")
        )
    );
}

#[tokio::test]
async fn lambda_and_api_gateway_answers_carry_a_request_id() {
    let (emulator, _dir, lambda, _role) = lambda_with_role().await;
    let listed = support::raw_request(
        emulator.local_addr(),
        "GET",
        "/2015-03-31/functions",
        &[],
        b"",
    )
    .await;
    assert!(listed.header("x-amzn-RequestId").is_some());
    let missing = support::raw_request(
        emulator.local_addr(),
        "GET",
        "/2015-03-31/functions/nope",
        &[],
        b"",
    )
    .await;
    assert_eq!(missing.status, 404);
    assert!(missing.header("x-amzn-RequestId").is_some());
    let apis = support::raw_request(emulator.local_addr(), "GET", "/restapis", &[], b"").await;
    assert!(apis.header("x-amzn-RequestId").is_some());
    drop(lambda);
}

#[tokio::test]
async fn lambda_configuration_limits_and_tracing_are_kept() {
    let (_emulator, _dir, lambda, role) = lambda_with_role().await;
    let err = lambda
        .create_function()
        .function_name("arch")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(&role)
        .architectures(Architecture::from("foo"))
        .code(code())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(
            "1 validation error detected: Value '[foo]' at 'architectures' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]"
        )
    );
    let err = lambda
        .create_function()
        .function_name("disk")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(&role)
        .ephemeral_storage(EphemeralStorage::builder().size(3_000_000).build().unwrap())
        .code(code())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(
            "1 validation error detected: Value '3000000' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value less than or equal to 10240"
        )
    );
    let created = lambda
        .create_function()
        .function_name("traced")
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(&role)
        .ephemeral_storage(EphemeralStorage::builder().size(2048).build().unwrap())
        .tracing_config(TracingConfig::builder().mode(TracingMode::Active).build())
        .code(code())
        .send()
        .await
        .unwrap();
    assert_eq!(created.ephemeral_storage().map(|e| e.size()), Some(2048));
    support::wait_active(&lambda, "traced").await;
    let read = lambda
        .get_function_configuration()
        .function_name("traced")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.tracing_config().and_then(|t| t.mode()),
        Some(&TracingMode::Active)
    );
}

#[tokio::test]
async fn a_qualifier_naming_no_version_is_not_found() {
    let (_emulator, _dir, lambda, role) = lambda_with_role().await;
    create_function(&lambda, &role, "fn", zip_with("bootstrap", b"1"), false).await;
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:fn:7";
    let err = lambda
        .get_function()
        .function_name("fn")
        .qualifier("7")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    assert_eq!(
        err.message(),
        Some(format!("Function not found: {arn}").as_str())
    );
    let err = lambda
        .add_permission()
        .function_name("fn")
        .qualifier("7")
        .statement_id("s1")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    let err = lambda
        .get_policy()
        .function_name("fn:7")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    lambda
        .get_function()
        .function_name("fn")
        .qualifier("$LATEST")
        .send()
        .await
        .expect("$LATEST is always there");
}

#[tokio::test]
async fn iam_tag_limits_read_as_iam_writes_them() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    let create = |name: &str, tags: Vec<Tag>| {
        iam.create_role()
            .role_name(name)
            .assume_role_policy_document(support::LAMBDA_TRUST_POLICY)
            .set_tags(Some(tags))
    };
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
    let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
    let err = create("many", many).send().await.unwrap_err();
    let message = err.message().unwrap();
    assert!(
        message.starts_with("1 validation error detected: Value '[k0=v, "),
        "{message}"
    );
    assert!(
        message.ends_with(
            "' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"
        ),
        "{message}"
    );
    let err = create("dup", vec![tag("Team", "a"), tag("team", "b")])
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidInput"));
    assert_eq!(
        err.message(),
        Some("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
    );
    let err = create("chars", vec![tag("a#b", "v")])
        .send()
        .await
        .unwrap_err();
    assert!(
        err.message().unwrap().contains("at 'tags.1.member.key'"),
        "{err:?}"
    );
    let long = "v".repeat(257);
    let err = create("long", vec![tag("k", &long)])
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        Some(
            format!(
                "1 validation error detected: Value '{long}' at 'tags.1.member.value' failed to satisfy constraint: Member must have length less than or equal to 256"
            )
            .as_str()
        )
    );

    let tags: Vec<Tag> = (0..5).map(|i| tag(&format!("k{i}"), "v")).collect();
    create("ok", tags).send().await.unwrap();
    let keys: Vec<String> = (0..51).map(|i| format!("k{i}")).collect();
    let err = iam
        .untag_role()
        .role_name("ok")
        .set_tag_keys(Some(keys))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.message()
            .unwrap()
            .ends_with("at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50"),
        "{err:?}"
    );
    let first = iam
        .list_role_tags()
        .role_name("ok")
        .max_items(2)
        .send()
        .await
        .unwrap();
    assert_eq!(first.tags().len(), 2);
    assert!(first.is_truncated());
    let rest = iam
        .list_role_tags()
        .role_name("ok")
        .marker(first.marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.tags().len(), 3);
    assert!(!rest.is_truncated());
}

#[tokio::test]
async fn list_roles_pages_and_filters_by_path() {
    let (emulator, _dir) = support::start().await;
    let iam = support::iam_client(&emulator);
    for (name, path) in [
        ("a", "/"),
        ("b", "/service/"),
        ("c", "/service/"),
        ("d", "/"),
    ] {
        iam.create_role()
            .role_name(name)
            .path(path)
            .assume_role_policy_document(support::LAMBDA_TRUST_POLICY)
            .send()
            .await
            .unwrap();
    }
    let roles: Vec<_> = iam
        .list_roles()
        .max_items(3)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let names: Vec<&str> = roles.iter().map(|r| r.role_name()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    let service = iam
        .list_roles()
        .path_prefix("/service/")
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = service.roles().iter().map(|r| r.role_name()).collect();
    assert_eq!(names, ["b", "c"]);
}

#[tokio::test]
async fn put_log_events_rejects_events_outside_the_time_window() {
    let (emulator, _dir) = support::start().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&support::sdk_config(&emulator.endpoint()));
    logs.create_log_group()
        .log_group_name("app")
        .kms_key_id("arn:aws:kms:us-east-1:000000000000:key/1234")
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name("app")
        .log_stream_name("s")
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let day = 24 * 3600 * 1000;
    let event = |t: i64, m: &str| {
        InputLogEvent::builder()
            .timestamp(t)
            .message(m)
            .build()
            .unwrap()
    };
    let out = logs
        .put_log_events()
        .log_group_name("app")
        .log_stream_name("s")
        .log_events(event(now - 15 * day, "old"))
        .log_events(event(now, "kept"))
        .log_events(event(now + 3 * 3600 * 1000, "new"))
        .send()
        .await
        .unwrap();
    let rejected = out
        .rejected_log_events_info()
        .expect("rejectedLogEventsInfo");
    assert_eq!(rejected.too_old_log_event_end_index(), Some(0));
    assert_eq!(rejected.too_new_log_event_start_index(), Some(2));
    let events = logs
        .get_log_events()
        .log_group_name("app")
        .log_stream_name("s")
        .start_from_head(true)
        .send()
        .await
        .unwrap();
    let messages: Vec<&str> = events.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(messages, ["kept"]);

    let groups = logs.describe_log_groups().send().await.unwrap();
    assert_eq!(
        groups.log_groups()[0].kms_key_id(),
        Some("arn:aws:kms:us-east-1:000000000000:key/1234")
    );
    let err = logs
        .get_log_events()
        .log_group_name("app")
        .log_stream_name("s")
        .limit(10_001)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata::message(&err),
        Some(
            "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000"
        )
    );
}

#[tokio::test]
async fn create_rest_api_keeps_and_validates_its_settings() {
    let (emulator, _dir) = support::start().await;
    let apigw = aws_sdk_apigateway::Client::new(&support::sdk_config(&emulator.endpoint()));
    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let created = apigw
        .create_rest_api()
        .name("api")
        .disable_execute_api_endpoint(true)
        .api_key_source(ApiKeySourceType::Authorizer)
        .endpoint_configuration(
            EndpointConfiguration::builder()
                .types(EndpointType::Regional)
                .build(),
        )
        .policy(policy)
        .binary_media_types("image/png")
        .send()
        .await
        .unwrap();
    let read = apigw
        .get_rest_api()
        .rest_api_id(created.id().unwrap())
        .send()
        .await
        .unwrap();
    assert!(read.disable_execute_api_endpoint());
    assert_eq!(read.api_key_source(), Some(&ApiKeySourceType::Authorizer));
    assert_eq!(
        read.endpoint_configuration().map(|e| e.types()),
        Some([EndpointType::Regional].as_slice())
    );
    assert_eq!(read.policy(), Some(policy));
    assert_eq!(read.binary_media_types(), ["image/png"]);

    let err = apigw
        .create_rest_api()
        .name("bad")
        .api_key_source(ApiKeySourceType::from("BODY"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_apigateway::error::ProvideErrorMetadata::message(&err),
        Some(
            "1 validation error detected: Value 'BODY' at 'createRestApiInput.apiKeySource' failed to satisfy constraint: Member must satisfy enum value set: [AUTHORIZER, HEADER]"
        )
    );
    let err = apigw
        .create_rest_api()
        .name("bad")
        .policy("not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_apigateway::error::ProvideErrorMetadata::code(&err),
        Some("BadRequestException")
    );
}
