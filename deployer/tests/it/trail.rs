//! The stage's CloudTrail Lake store of data events against strict SDK mocks: created with
//! selectors naming exactly the stage's tables, unchanged when CloudTrail has it as desired,
//! updated in place when its selectors drifted, deleted on destroy, and never created twice
//! when the answer to a create was lost.

use aws_sdk_cloudtrail::Client as CloudTrail;
use aws_sdk_cloudtrail::operation::create_event_data_store::CreateEventDataStoreOutput;
use aws_sdk_cloudtrail::operation::delete_event_data_store::DeleteEventDataStoreOutput;
use aws_sdk_cloudtrail::operation::get_event_data_store::GetEventDataStoreOutput;
use aws_sdk_cloudtrail::operation::list_event_data_stores::ListEventDataStoresOutput;
use aws_sdk_cloudtrail::operation::list_tags::ListTagsOutput;
use aws_sdk_cloudtrail::operation::update_event_data_store::UpdateEventDataStoreOutput;
use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, EventDataStore, EventDataStoreStatus,
    ResourceTag, Tag,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use deployer::plan::{Op, Plan};
use deployer::trail::{self, ActualTrail};
use deployer::{Action, App, Stage, Table, apply};

use super::support::{ROLE_ARN, clients, fast, fast_retries};

const STORE: &str = "represent-dev-data-events";
const ARN: &str = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/eds-1";
const DATA: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/represent-dev-data";
const MESSAGES: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/represent-dev-messages";

fn audited() -> App {
    App::new("represent")
        .table(Table::new("data"))
        .table(Table::new("messages"))
        .audit_data_events()
        .stage(Stage::aws("dev").region("us-east-1").unmanaged_log_groups())
}

fn desired() -> trail::DesiredTrail {
    trail::resolve(&audited(), "dev").expect("the app audits data events")
}

fn selectors(arns: &[&str]) -> Vec<AdvancedEventSelector> {
    let field = |name: &str, values: &[&str]| {
        AdvancedFieldSelector::builder()
            .field(name)
            .set_equals(Some(values.iter().map(|v| v.to_string()).collect()))
            .build()
            .expect("a field selector")
    };
    vec![
        AdvancedEventSelector::builder()
            .name("anything")
            .field_selectors(field("resources.ARN", arns))
            .field_selectors(field("eventCategory", &["Data"]))
            .field_selectors(field("resources.type", &["AWS::DynamoDB::Table"]))
            .build()
            .expect("a selector"),
    ]
}

fn listed() -> Rule {
    mock!(CloudTrail::list_event_data_stores).then_output(|| {
        ListEventDataStoresOutput::builder()
            .event_data_stores(
                EventDataStore::builder()
                    .name("someone-elses-store")
                    .event_data_store_arn(
                        "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/other",
                    )
                    .build(),
            )
            .event_data_stores(
                EventDataStore::builder()
                    .name(STORE)
                    .event_data_store_arn(ARN)
                    .build(),
            )
            .build()
    })
}

fn none_listed() -> Rule {
    mock!(CloudTrail::list_event_data_stores)
        .then_output(|| ListEventDataStoresOutput::builder().build())
}

fn got(arns: &'static [&'static str]) -> Rule {
    mock!(CloudTrail::get_event_data_store)
        .match_requests(|r| r.event_data_store() == Some(ARN))
        .then_output(move || {
            GetEventDataStoreOutput::builder()
                .event_data_store_arn(ARN)
                .name(STORE)
                .status(EventDataStoreStatus::Enabled)
                .set_advanced_event_selectors(Some(selectors(arns)))
                .multi_region_enabled(false)
                .organization_enabled(false)
                .termination_protection_enabled(false)
                .retention_period(trail::RETENTION_DAYS)
                .build()
        })
}

fn tagged() -> Rule {
    mock!(CloudTrail::list_tags).then_output(|| {
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().expect("a tag");
        ListTagsOutput::builder()
            .resource_tag_list(
                ResourceTag::builder()
                    .resource_id(ARN)
                    .tags_list(tag("deployer:app", "represent"))
                    .tags_list(tag("deployer:stage", "dev"))
                    .tags_list(tag("deployer:logical-id", "data-events"))
                    .build(),
            )
            .build()
    })
}

/// Mocked clients where only CloudTrail answers (strict: any other call panics).
fn with_cloudtrail(rules: &[&Rule]) -> deployer::Clients {
    clients(&[], &[]).with_cloudtrail(
        mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, rules),
        fast_retries(),
    )
}

fn plan_of(changes: Vec<deployer::change::Planned<trail::TrailOp>>) -> Plan {
    Plan {
        app: "represent".into(),
        stage: "dev".into(),
        changes: changes.into_iter().map(|c| c.map(Op::Trail)).collect(),
        role_arn: Some(ROLE_ARN.into()),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn an_audited_stage_gets_a_store_of_exactly_its_tables_data_events() {
    let create = mock!(CloudTrail::create_event_data_store)
        .match_requests(|r| {
            let fields = r.advanced_event_selectors()[0].field_selectors();
            let arns = fields
                .iter()
                .find(|f| f.field() == "resources.ARN")
                .map(|f| sorted(f.equals().to_vec()));
            r.name() == Some(STORE)
                && arns == Some(vec![DATA.to_string(), MESSAGES.to_string()])
                && fields
                    .iter()
                    .any(|f| f.field() == "eventCategory" && f.equals() == ["Data"])
                && r.multi_region_enabled() == Some(false)
                && r.organization_enabled() == Some(false)
                && r.termination_protection_enabled() == Some(false)
                && r.retention_period() == Some(366)
                && r.tags_list()
                    .iter()
                    .any(|t| t.key() == "deployer:stage" && t.value() == Some("dev"))
        })
        .then_output(|| {
            CreateEventDataStoreOutput::builder()
                .event_data_store_arn(ARN)
                .build()
        });
    let list = none_listed();
    let c = with_cloudtrail(&[&list, &create]);
    let actual = trail::observe(&c, "represent", "dev")
        .await
        .expect("observed");
    assert_eq!(actual, None);
    let changes = trail::plan(Some(&desired()), None);
    assert_eq!(changes[0].action, Action::Create);
    assert_eq!(changes[0].resource, format!("event data store {STORE}"));
    let report = apply::apply(&c, &plan_of(changes), &fast(), &|_| {})
        .await
        .expect("applied");
    assert_eq!(create.num_calls(), 1);
    assert_eq!(report.mutating_calls, 1);
}

#[tokio::test]
async fn a_store_as_desired_is_left_alone() {
    let (list, get, tags) = (listed(), got(&[DATA, MESSAGES]), tagged());
    let c = with_cloudtrail(&[&list, &get, &tags]);
    let actual = trail::observe(&c, "represent", "dev")
        .await
        .expect("observed")
        .expect("the stage's store, tagged for it");
    assert_eq!(actual.arn, ARN);
    let changes = trail::plan(Some(&desired()), Some(&actual));
    assert_eq!(changes[0].action, Action::NoOp, "{:?}", changes[0].details);
    let report = apply::apply(&c, &plan_of(changes), &fast(), &|_| {})
        .await
        .expect("applied");
    assert_eq!(report.mutating_calls, 0);
    assert_eq!(get.num_calls(), 1);
}

#[tokio::test]
async fn selector_drift_is_updated_in_place() {
    let (list, get, tags) = (listed(), got(&[DATA]), tagged());
    let update = mock!(CloudTrail::update_event_data_store)
        .match_requests(|r| {
            let arns = r.advanced_event_selectors()[0]
                .field_selectors()
                .iter()
                .find(|f| f.field() == "resources.ARN")
                .map(|f| sorted(f.equals().to_vec()));
            r.event_data_store() == Some(ARN)
                && arns == Some(vec![DATA.to_string(), MESSAGES.to_string()])
                && r.termination_protection_enabled() == Some(false)
        })
        .then_output(|| UpdateEventDataStoreOutput::builder().build());
    let c = with_cloudtrail(&[&list, &get, &tags, &update]);
    let actual = trail::observe(&c, "represent", "dev")
        .await
        .expect("observed")
        .expect("the store");
    let changes = trail::plan(Some(&desired()), Some(&actual));
    assert_eq!(changes[0].action, Action::Update);
    assert_eq!(
        changes[0].details,
        ["selectors: DynamoDB data events of exactly the stage's tables"]
    );
    apply::apply(&c, &plan_of(changes), &fast(), &|_| {})
        .await
        .expect("applied");
    assert_eq!(update.num_calls(), 1);
}

fn existing() -> ActualTrail {
    ActualTrail {
        name: STORE.into(),
        arn: ARN.into(),
        status: "ENABLED".into(),
        selectors: Vec::new(),
        multi_region: false,
        organization: false,
        termination_protection: false,
        retention_days: Some(366),
        tags: Default::default(),
    }
}

#[tokio::test]
async fn destroy_deletes_the_store_and_a_store_already_gone_counts_as_deleted() {
    let delete = mock!(CloudTrail::delete_event_data_store)
        .match_requests(|r| r.event_data_store() == Some(ARN))
        .then_output(|| DeleteEventDataStoreOutput::builder().build());
    let c = with_cloudtrail(&[&delete]);
    let actual = deployer::Actual {
        trail: Some(existing()),
        ..Default::default()
    };
    let plan = deployer::plan::plan_destroy(&actual, "represent", "dev");
    let store = plan
        .changes
        .iter()
        .find(|c| c.kind == deployer::ResourceKind::EventDataStore)
        .expect("the store is in the destroy plan");
    assert_eq!(store.action, Action::Delete);
    apply::apply(&c, &plan, &fast(), &|_| {})
        .await
        .expect("destroyed");
    assert_eq!(delete.num_calls(), 1);

    // An app that stops auditing deletes its store; one deleted meanwhile is done.
    let gone = mock!(CloudTrail::delete_event_data_store).then_error(|| {
        aws_sdk_cloudtrail::operation::delete_event_data_store::DeleteEventDataStoreError::EventDataStoreNotFoundException(
            aws_sdk_cloudtrail::types::error::EventDataStoreNotFoundException::builder().build(),
        )
    });
    let c = with_cloudtrail(&[&gone]);
    let changes = trail::plan(None, Some(&existing()));
    assert_eq!(changes[0].action, Action::Delete);
    apply::apply(&c, &plan_of(changes), &fast(), &|_| {})
        .await
        .expect("a store already gone is deleted");
}

#[tokio::test]
async fn an_ambiguous_create_is_observed_before_it_is_sent_again() {
    // The create was applied but its answer lost (a 500): the store is found by name and tags,
    // and CreateEventDataStore is never sent a second time.
    let create = mock!(CloudTrail::create_event_data_store).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(500).expect("a status"),
            aws_smithy_types::body::SdkBody::from(r#"{"__type":"InternalFailure"}"#),
        )
    });
    let list = mock!(CloudTrail::list_event_data_stores)
        .sequence()
        .output(|| ListEventDataStoresOutput::builder().build())
        .output(|| {
            ListEventDataStoresOutput::builder()
                .event_data_stores(
                    EventDataStore::builder()
                        .name(STORE)
                        .event_data_store_arn(ARN)
                        .build(),
                )
                .build()
        })
        .build();
    let (get, tags) = (got(&[DATA, MESSAGES]), tagged());
    let c = with_cloudtrail(&[&list, &create, &get, &tags]);
    assert_eq!(
        trail::observe(&c, "represent", "dev")
            .await
            .expect("observed"),
        None
    );
    let changes = trail::plan(Some(&desired()), None);
    let lines = std::sync::Mutex::new(Vec::new());
    apply::apply(&c, &plan_of(changes), &fast(), &|l| {
        lines.lock().expect("lines").push(l.to_string())
    })
    .await
    .expect("the store that was made is used");
    let said = lines.into_inner().expect("lines");
    assert_eq!(create.num_calls(), 1, "never created twice");
    assert!(
        said.iter().any(|l| l.contains("it was made; using it")),
        "{said:?}"
    );
}

#[test]
fn an_app_that_audits_without_tables_is_refused_before_any_call() {
    let app = App::new("represent")
        .audit_data_events()
        .stage(Stage::aws("dev"));
    let errors = deployer::stack::validate(&app, "dev").expect_err("no table to audit");
    assert!(
        errors
            .to_string()
            .contains("audits data events but declares no table"),
        "{errors}"
    );
}

#[tokio::test]
async fn a_principal_without_cloudtrail_permissions_sees_no_store() {
    // Every deploy observes the store; an app that does not audit must not need CloudTrail.
    let refused = mock!(CloudTrail::list_event_data_stores).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).expect("a status"),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"AccessDeniedException","message":"not authorized to perform: cloudtrail:ListEventDataStores"}"#,
            ),
        )
    });
    let c = with_cloudtrail(&[&refused]);
    assert_eq!(
        trail::observe(&c, "represent", "dev")
            .await
            .expect("not an error"),
        None
    );
    let other = mock!(CloudTrail::list_event_data_stores).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).expect("a status"),
            aws_smithy_types::body::SdkBody::from(r#"{"__type":"InvalidNextTokenException"}"#),
        )
    });
    let c = with_cloudtrail(&[&other]);
    let e = trail::observe(&c, "represent", "dev")
        .await
        .expect_err("other refusals fail");
    assert!(e.to_string().contains("ListEventDataStores"), "{e}");
}
