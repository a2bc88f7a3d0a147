//! Call transcripts: an interceptor on every mocked client records each attempt of each call
//! (service, operation and the inputs that say which resource) when it is sent and when it is
//! answered, so tests assert the order of calls, not of progress messages.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef, Input,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use deployer::Clients;
use deployer::clients::is_mutating;

/// One moment of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The attempt went out: `Lambda CreateFunction represent-dev-counties` (the service as the
    /// SDK names it, without spaces: `CloudWatchLogs`).
    Sent(String),
    /// Its answer came back; `ok` is false for an error.
    Answered { call: String, ok: bool },
}

/// Every attempt the clients made, in order, shared by all five clients of one [`Clients`].
#[derive(Debug, Clone, Default)]
pub struct Transcript(Arc<Mutex<Vec<Event>>>);

impl Transcript {
    fn push(&self, event: Event) {
        self.0.lock().expect("transcript lock").push(event);
    }

    pub fn events(&self) -> Vec<Event> {
        self.0.lock().expect("transcript lock").clone()
    }

    /// Every attempt sent, reads included.
    pub fn calls(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Sent(call) => Some(call),
                Event::Answered { .. } => None,
            })
            .collect()
    }

    /// Every attempt of a call that changes something, in the order sent.
    pub fn mutating(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.split(' ').nth(1).is_some_and(is_mutating))
            .collect()
    }

    /// Where the first event matching `what` is, so tests can compare positions.
    pub fn position(&self, what: impl Fn(&Event) -> bool) -> Option<usize> {
        self.events().iter().position(what)
    }

    /// Where the first call starting with `prefix` was sent.
    pub fn sent(&self, prefix: &str) -> Option<usize> {
        self.position(|e| matches!(e, Event::Sent(c) if c.starts_with(prefix)))
    }

    /// Where the last answer to a call starting with `prefix` came back.
    pub fn last_answered(&self, prefix: &str) -> Option<usize> {
        self.events()
            .iter()
            .rposition(|e| matches!(e, Event::Answered { call, .. } if call.starts_with(prefix)))
    }
}

/// The call's description, kept for its attempts.
#[derive(Debug, Clone)]
struct Call(String);

impl Storable for Call {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Transcript {
    fn name(&self) -> &'static str {
        "Transcript"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().replace(" ", ""), m.name().to_string()))
            .unwrap_or_default();
        let keys = keys(context.input());
        let call = match keys.is_empty() {
            true => format!("{service} {operation}"),
            false => format!("{service} {operation} {keys}"),
        };
        cfg.interceptor_state().store_put(Call(call));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Call(call)) = cfg.load::<Call>() {
            self.push(Event::Sent(call.clone()));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Call(call)) = cfg.load::<Call>() {
            let ok = matches!(context.inner().output_or_error(), Some(Ok(_)));
            self.push(Event::Answered {
                call: call.clone(),
                ok,
            });
        }
        Ok(())
    }
}

/// The inputs that say which resource a call is about, for the operations the deployer sends;
/// empty for the others.
fn keys(input: &Input) -> String {
    macro_rules! keys {
        ($($t:ty => |$i:ident| $keys:expr),* $(,)?) => {$(
            if let Some($i) = input.downcast_ref::<$t>() {
                let keys: Vec<String> = $keys;
                return keys.join(" ");
            }
        )*};
    }
    let s = |v: Option<&str>| v.unwrap_or_default().to_string();
    use aws_sdk_cloudwatchlogs::operation as logs;
    use aws_sdk_dynamodb::operation as ddb;
    use aws_sdk_iam::operation as iam;
    use aws_sdk_lambda::operation as lambda;
    keys!(
        lambda::create_function::CreateFunctionInput => |i| {
            let mut keys = vec![s(i.function_name())];
            if let Some(t) = i.tenancy_config() {
                keys.push(format!("tenancy={}", t.tenant_isolation_mode().as_str()));
            }
            keys
        },
        lambda::update_function_code::UpdateFunctionCodeInput => |i| vec![s(i.function_name())],
        lambda::update_function_configuration::UpdateFunctionConfigurationInput =>
            |i| vec![s(i.function_name())],
        lambda::delete_function::DeleteFunctionInput => |i| vec![s(i.function_name())],
        lambda::get_function::GetFunctionInput => |i| vec![s(i.function_name())],
        lambda::add_permission::AddPermissionInput =>
            |i| vec![s(i.function_name()), s(i.statement_id())],
        lambda::get_policy::GetPolicyInput => |i| vec![s(i.function_name())],
        iam::create_role::CreateRoleInput => |i| vec![s(i.role_name())],
        iam::get_role::GetRoleInput => |i| vec![s(i.role_name())],
        iam::delete_role::DeleteRoleInput => |i| vec![s(i.role_name())],
        iam::attach_role_policy::AttachRolePolicyInput =>
            |i| vec![s(i.role_name()), s(i.policy_arn())],
        iam::detach_role_policy::DetachRolePolicyInput =>
            |i| vec![s(i.role_name()), s(i.policy_arn())],
        iam::put_role_policy::PutRolePolicyInput => |i| vec![s(i.role_name()), s(i.policy_name())],
        iam::delete_role_policy::DeleteRolePolicyInput =>
            |i| vec![s(i.role_name()), s(i.policy_name())],
        iam::get_role_policy::GetRolePolicyInput => |i| vec![s(i.role_name()), s(i.policy_name())],
        iam::list_attached_role_policies::ListAttachedRolePoliciesInput =>
            |i| vec![s(i.role_name())],
        iam::list_role_policies::ListRolePoliciesInput => |i| vec![s(i.role_name())],
        ddb::create_table::CreateTableInput => |i| vec![s(i.table_name())],
        ddb::update_table::UpdateTableInput => |i| vec![s(i.table_name())],
        ddb::delete_table::DeleteTableInput => |i| vec![s(i.table_name())],
        ddb::describe_table::DescribeTableInput => |i| vec![s(i.table_name())],
        ddb::query::QueryInput => |i| {
            let tenant = i
                .expression_attribute_values()
                .and_then(|v| v.get(":tenant"))
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            vec![s(i.table_name()), tenant]
        },
        ddb::batch_write_item::BatchWriteItemInput => |i| {
            let mut tables: Vec<String> = i
                .request_items()
                .into_iter()
                .flatten()
                .map(|(table, writes)| {
                    let puts = writes.iter().filter(|w| w.put_request().is_some()).count();
                    let deletes = writes.len() - puts;
                    let tenant = writes
                        .first()
                        .and_then(|w| match (w.put_request(), w.delete_request()) {
                            (Some(p), _) => p.item().get("tenant"),
                            (_, Some(d)) => d.key().get("tenant"),
                            _ => None,
                        })
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default();
                    format!("{table} {tenant} put={puts} delete={deletes}")
                })
                .collect();
            tables.sort();
            tables
        },
        logs::create_log_group::CreateLogGroupInput => |i| vec![s(i.log_group_name())],
        logs::put_retention_policy::PutRetentionPolicyInput => |i| vec![
            s(i.log_group_name()),
            format!("days={}", i.retention_in_days().unwrap_or_default()),
        ],
        logs::delete_log_group::DeleteLogGroupInput => |i| vec![s(i.log_group_name())],
        logs::describe_log_groups::DescribeLogGroupsInput =>
            |i| vec![s(i.log_group_name_prefix())],
    );
    String::new()
}

/// The same clients, each also recording its calls into one new [`Transcript`].
pub fn transcribed(clients: Clients) -> (Clients, Transcript) {
    let t = Transcript::default();
    macro_rules! with {
        ($client:expr, $sdk:ident) => {
            $sdk::Client::from_conf($client.config().to_builder().interceptor(t.clone()).build())
        };
    }
    let recorded = Clients {
        lambda: with!(clients.lambda, aws_sdk_lambda),
        iam: with!(clients.iam, aws_sdk_iam),
        dynamodb: with!(clients.dynamodb, aws_sdk_dynamodb),
        logs: with!(clients.logs, aws_sdk_cloudwatchlogs),
        apigateway: with!(clients.apigateway, aws_sdk_apigateway),
        ..clients
    };
    (recorded, t)
}
