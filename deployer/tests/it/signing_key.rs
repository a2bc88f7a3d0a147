//! Signing keys against strict Secrets Manager mocks: created once with the stage's tags, never
//! touched when they exist, restored after a destroy, deleted with a recovery window when no
//! function reads them, and a deletion whose first answer was lost still counts as done.

use aws_sdk_secretsmanager::Client as Secrets;
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretOutput;
use aws_sdk_secretsmanager::operation::delete_secret::{DeleteSecretError, DeleteSecretOutput};
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::operation::list_secrets::ListSecretsOutput;
use aws_sdk_secretsmanager::operation::restore_secret::RestoreSecretOutput;
use aws_sdk_secretsmanager::types::SecretListEntry;
use aws_sdk_secretsmanager::types::error::InvalidRequestException;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use deployer::signing_key::{self, ActualSigningKey};
use deployer::{Action, Actual, App, Clients, Desired, Function, Stage, apply, plan};

use super::support::{clients, desired_of, fast, fast_retries, up_to_date};

const KEY: &str = "represent/dev/token-signing-key";
const OLD: &str = "represent/dev/old-key";

fn keyed() -> Desired {
    let app = App::new("represent")
        .function(Function::new("authorizer").reads_signing_key("token-signing-key", "KEY_NAME"))
        .stage(Stage::aws("dev").region("us-east-1").unmanaged_log_groups());
    desired_of(&app, "v1")
}

/// The stage as deployed, its role granting the read of the key.
fn stage_of(d: &Desired) -> Actual {
    let mut actual = up_to_date(d);
    if let Some(role) = &mut actual.role {
        role.inline_policies = d.role.inline_policies.clone();
    }
    actual
}

fn with_secrets(rules: &[&Rule]) -> Clients {
    clients(&[], &[]).with_secrets(
        mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, rules),
        fast_retries(),
    )
}

fn key_changes(plan: &deployer::Plan) -> Vec<(Action, String)> {
    plan.changes
        .iter()
        .filter(|c| c.kind == deployer::ResourceKind::SigningKey)
        .map(|c| (c.action, c.name.clone()))
        .collect()
}

async fn applied(clients: &Clients, plan: &deployer::Plan) -> Result<u32, String> {
    apply::apply(clients, plan, &fast(), &|_| {})
        .await
        .map(|r| r.mutating_calls)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_missing_key_is_created_once_with_a_random_value_and_the_stages_tags() {
    let d = keyed();
    let mut actual: Actual = stage_of(&d);
    actual.signing_keys.clear();
    let plan = plan::plan(&d, &actual);
    assert_eq!(key_changes(&plan), [(Action::Create, KEY.to_string())]);

    let create = mock!(Secrets::create_secret)
        .match_requests(|r| {
            r.name() == Some(KEY)
                && r.secret_string().is_some_and(|s| s.len() == 43)
                && r.tags()
                    .iter()
                    .any(|t| t.key() == Some("deployer:stage") && t.value() == Some("dev"))
        })
        .then_output(|| CreateSecretOutput::builder().name(KEY).build());
    let clients = with_secrets(&[&create]);
    assert_eq!(applied(&clients, &plan).await, Ok(1));
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test]
async fn an_existing_key_is_never_read_or_rewritten() {
    let d = keyed();
    let plan = plan::plan(&d, &stage_of(&d));
    assert_eq!(key_changes(&plan), [(Action::NoOp, KEY.to_string())]);
    assert!(!plan.has_changes(), "{plan}");
    // Strict mocks with no rule: any Secrets Manager call fails the test.
    let clients = with_secrets(&[]);
    assert_eq!(applied(&clients, &plan).await, Ok(0));
}

#[tokio::test]
async fn a_destroyed_key_is_restored_and_an_unread_one_deleted_with_a_recovery_window() {
    let d = keyed();
    let mut actual = stage_of(&d);
    actual.signing_keys = vec![
        ActualSigningKey {
            name: KEY.to_string(),
            scheduled_for_deletion: true,
        },
        ActualSigningKey::live(OLD),
    ];
    let plan = plan::plan(&d, &actual);
    assert_eq!(
        key_changes(&plan),
        [
            (Action::Update, KEY.to_string()),
            (Action::Delete, OLD.to_string())
        ]
    );
    let text = plan.to_string();
    assert!(text.contains("restored with its value"), "{text}");
    assert!(text.contains("restorable by a deploy for 7 days"), "{text}");

    let restore = mock!(Secrets::restore_secret)
        .match_requests(|r| r.secret_id() == Some(KEY))
        .then_output(|| RestoreSecretOutput::builder().name(KEY).build());
    let delete = mock!(Secrets::delete_secret)
        .match_requests(|r| {
            r.secret_id() == Some(OLD)
                && r.recovery_window_in_days() == Some(signing_key::RECOVERY_DAYS)
                && r.force_delete_without_recovery().is_none()
        })
        .then_output(|| DeleteSecretOutput::builder().name(OLD).build());
    let clients = with_secrets(&[&restore, &delete]);
    assert_eq!(applied(&clients, &plan).await, Ok(2));
    assert_eq!((restore.num_calls(), delete.num_calls()), (1, 1));
}

fn refused_as_scheduled() -> DeleteSecretError {
    DeleteSecretError::InvalidRequestException(
        InvalidRequestException::builder()
            .message("You can't perform this operation on the secret because it was marked for deletion.")
            .build(),
    )
}

#[tokio::test]
async fn a_deletion_refused_because_it_already_happened_counts_as_done() {
    let d = keyed();
    let mut actual = stage_of(&d);
    actual.signing_keys.push(ActualSigningKey::live(OLD));
    let plan = plan::plan(&d, &actual);

    // The first DeleteSecret was applied but its answer lost; the retry is refused.
    let delete = mock!(Secrets::delete_secret).then_error(refused_as_scheduled);
    let scheduled = mock!(Secrets::describe_secret)
        .match_requests(|r| r.secret_id() == Some(OLD))
        .then_output(|| {
            DescribeSecretOutput::builder()
                .name(OLD)
                .deleted_date(DateTime::from_secs(1_800_000_000))
                .build()
        });
    let clients = with_secrets(&[&delete, &scheduled]);
    assert_eq!(applied(&clients, &plan).await, Ok(1));

    // Refused for any other reason, the deletion fails with one sentence.
    let delete = mock!(Secrets::delete_secret).then_error(refused_as_scheduled);
    let live = mock!(Secrets::describe_secret)
        .then_output(|| DescribeSecretOutput::builder().name(OLD).build());
    let clients = with_secrets(&[&delete, &live]);
    let error = applied(&clients, &plan).await.expect_err("refused");
    assert!(
        error.contains("DeleteSecret failed for signing key represent/dev/old-key")
            && error.contains("InvalidRequestException"),
        "{error}"
    );
}

#[tokio::test]
async fn observe_lists_only_the_stages_own_keys_by_their_exact_prefix() {
    let entry = |name: &str, deleted: bool| {
        let e = SecretListEntry::builder().name(name);
        if deleted {
            e.deleted_date(DateTime::from_secs(1_800_000_000)).build()
        } else {
            e.build()
        }
    };
    let list = mock!(Secrets::list_secrets)
        .match_requests(|r| {
            r.include_planned_deletion() == Some(true)
                && r.filters()
                    .iter()
                    .any(|f| f.values() == ["represent/dev/".to_string()])
        })
        .then_output(move || {
            ListSecretsOutput::builder()
                .secret_list(entry(KEY, false))
                .secret_list(entry(OLD, true))
                // The name filter ignores case: another app's secret may come back.
                .secret_list(entry("Represent/dev/theirs", false))
                .build()
        });
    let clients = with_secrets(&[&list]);
    let keys = signing_key::observe(&clients, "represent", "dev")
        .await
        .expect("listed");
    assert_eq!(
        keys,
        [
            ActualSigningKey {
                name: OLD.to_string(),
                scheduled_for_deletion: true
            },
            ActualSigningKey::live(KEY),
        ]
    );
}
