//! Where a function's tenant data comes from (`TenantSource`: DynamoDB in Lambda, memory in
//! tests) and the per-environment cache that reads it once.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use tokio::sync::OnceCell;

use crate::records::{self, RecordsError, TenantData};

/// Environment variable holding the table's physical name, set by the deployer.
pub const TABLE_NAME_VAR: &str = "TABLE_NAME";
/// Partition key attribute: the tenant id.
pub const PARTITION_KEY: &str = "tenant";
/// Sort key attribute: the record name (`STATE`, `COUNTY#48201`, see `records`).
pub const SORT_KEY: &str = "record";
/// Attribute holding a record's JSON.
pub const DATA_ATTRIBUTE: &str = "data";
/// Environment variable naming a tenant-scoped function's tenant-data role by IAM path and name
/// (`/represent/dev/represent-dev-counties-data`), set by the deployer.
pub const DATA_ROLE_VAR: &str = "TENANT_DATA_ROLE";
/// The session tag naming the tenant, which the data role's policy compares partition keys to.
pub const TENANT_TAG: &str = "tenant";

/// Reads the whole of one tenant's data. Implemented by `DynamoSource` in Lambda and by
/// `StaticSource` in tests, so handlers run without a network.
pub trait TenantSource {
    fn load(&self, tenant: &str) -> impl Future<Output = Result<TenantData, LoadError>> + Send;
}

/// Why a tenant's data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "environment variable `{TABLE_NAME_VAR}` is not set: the deployer passes the table's name to every Represent function"
    )]
    NoTable,
    #[error("failed to query table `{table}` for tenant `{tenant}`")]
    Query {
        table: String,
        tenant: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "an item of tenant `{tenant}` in table `{table}` has no string attribute `{attribute}`"
    )]
    MissingAttribute {
        table: String,
        tenant: String,
        attribute: &'static str,
    },
    #[error("tenant `{tenant}` has no records in table `{table}`: was the table seeded?")]
    NotSeeded { table: String, tenant: String },
    #[error("tenant `{tenant}` is not in this source")]
    Unknown { tenant: String },
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error("failed to find the account to assume the tenant-data role `{role}` in")]
    Account {
        role: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The tenant's partition of the Represent table, read with `Query`.
#[derive(Debug, Clone)]
pub struct DynamoSource {
    client: aws_sdk_dynamodb::Client,
    /// `None` when `TABLE_NAME` was not set: every load then fails with `LoadError::NoTable`.
    table: Option<String>,
    /// Set for a tenant-scoped function: the table is read with credentials of the tenant-data
    /// role for the environment's tenant, never with the execution role's.
    scoped: Option<std::sync::Arc<Scoped>>,
}

/// The tenant-data role and, once the first invoke named the environment's tenant, the client
/// whose credentials are that tenant's session of it.
#[derive(Debug)]
struct Scoped {
    /// IAM path and name, from `TENANT_DATA_ROLE`.
    role: String,
    base: aws_config::SdkConfig,
    client: OnceCell<(String, aws_sdk_dynamodb::Client)>,
}

/// The RoleSessionName for a tenant's session: STS allows `[\w+=,.@-]{2,64}`, tenant ids
/// allow more (`/`, `:`, spaces), so other characters become `-`. The session name is only a
/// label in audits; the tenant itself travels unchanged in the `tenant` tag.
pub fn session_name(tenant: &str) -> String {
    let mut name: String = format!("tenant-{tenant}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

/// The SDK configuration of a tenant's client: `base` with credentials of the tenant's session
/// of `role_arn`, tagged `tenant=<id>`. Every valid tenant id (1 to 256 of
/// `[a-zA-Z0-9._:/=+-@ ]`) is a valid session tag value (up to 256 of
/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`), so the tag is the id unchanged. The client's identity cache
/// keeps the credentials and assumes the role again shortly before they expire.
pub async fn tenant_config(
    base: &aws_config::SdkConfig,
    role_arn: &str,
    tenant: &str,
) -> aws_sdk_dynamodb::Config {
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name(session_name(tenant))
        .tags([(TENANT_TAG, tenant)])
        .configure(base)
        .build()
        .await;
    scoped_config(base, provider).build()
}

/// `base` with `provider`'s credentials behind the client's identity cache, which keeps them
/// until shortly before their expiry and then asks the provider again.
pub fn scoped_config(
    base: &aws_config::SdkConfig,
    provider: impl aws_sdk_dynamodb::config::ProvideCredentials + 'static,
) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::from(base).credentials_provider(provider)
}

impl Scoped {
    /// The client for `tenant`, built on the environment's first load. The account (and
    /// partition) of the data role are the execution role's, from `GetCallerIdentity`.
    async fn client(&self, tenant: &str) -> Result<&aws_sdk_dynamodb::Client, LoadError> {
        let (cached, client) = self
            .client
            // Boxed: the SDK's futures are deep, and the function's whole invoke future must
            // stay within the compiler's layout limits.
            .get_or_try_init(|| {
                Box::pin(async {
                    let who = aws_sdk_sts::Client::new(&self.base)
                        .get_caller_identity()
                        .send()
                        .await
                        .map_err(|e| LoadError::Account {
                            role: self.role.clone(),
                            source: Box::new(e),
                        })?;
                    let arn = who.arn().unwrap_or_default();
                    let partition = arn.split(':').nth(1).unwrap_or("aws");
                    let account = who.account().unwrap_or_default();
                    let role_arn = format!("arn:{partition}:iam::{account}:role{}", self.role);
                    let config = tenant_config(&self.base, &role_arn, tenant).await;
                    Ok::<_, LoadError>((
                        tenant.to_string(),
                        aws_sdk_dynamodb::Client::from_conf(config),
                    ))
                })
            })
            .await?;
        if cached != tenant {
            // The cache above refuses this too; credentials of one tenant never serve another.
            return Err(LoadError::Unknown {
                tenant: tenant.to_string(),
            });
        }
        Ok(client)
    }
}

impl DynamoSource {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoSource {
            client,
            table: Some(table.into()),
            scoped: None,
        }
    }

    /// Builds the client once per environment from the standard configuration, which honours
    /// `AWS_ENDPOINT_URL` (set by the emulator), and takes the table from `TABLE_NAME`.
    ///
    /// A missing `TABLE_NAME` does not stop the function from starting: requests that need no
    /// data (a missing or unknown tenant) are still answered, and the others get a 500 whose log
    /// line names the missing variable.
    ///
    /// With `TENANT_DATA_ROLE` set (a tenant-scoped function), the table is read through that
    /// role, assumed once per environment for the tenant of its first invoke.
    pub async fn from_env() -> Self {
        let table = std::env::var(TABLE_NAME_VAR).ok().filter(|t| !t.is_empty());
        let config = crate::aws::load().await;
        let scoped = std::env::var(DATA_ROLE_VAR)
            .ok()
            .filter(|r| !r.is_empty())
            .map(|role| {
                std::sync::Arc::new(Scoped {
                    role,
                    base: config.clone(),
                    client: OnceCell::new(),
                })
            });
        DynamoSource {
            client: aws_sdk_dynamodb::Client::new(&config),
            table,
            scoped,
        }
    }

    pub fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    /// The client for `tenant`'s items: the tenant's session of the data role in a
    /// tenant-scoped function, the execution role's own client otherwise. Functions that keep
    /// more tables than the seeded one (a tenant's messages) reach them through this client.
    pub async fn client_for(&self, tenant: &str) -> Result<&aws_sdk_dynamodb::Client, LoadError> {
        match &self.scoped {
            Some(scoped) => Box::pin(scoped.client(tenant)).await,
            None => Ok(&self.client),
        }
    }
}

impl TenantSource for DynamoSource {
    async fn load(&self, tenant: &str) -> Result<TenantData, LoadError> {
        let table = self.table.as_deref().ok_or(LoadError::NoTable)?;
        let client = match &self.scoped {
            Some(scoped) => Box::pin(scoped.client(tenant)).await?,
            None => &self.client,
        };
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        // A large state is a few hundred kilobytes, more than one 1 MB page only in the future,
        // but a partial read would be a silently wrong answer: follow every page.
        loop {
            let page = client
                .query()
                .table_name(table)
                .key_condition_expression("#tenant = :tenant")
                .expression_attribute_names("#tenant", PARTITION_KEY)
                .expression_attribute_values(":tenant", AttributeValue::S(tenant.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| LoadError::Query {
                    table: table.to_string(),
                    tenant: tenant.to_string(),
                    source: Box::new(e),
                })?;
            for item in page.items() {
                found.push((
                    string_attribute(item, SORT_KEY, table, tenant)?,
                    string_attribute(item, DATA_ATTRIBUTE, table, tenant)?,
                ));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        if found.is_empty() {
            return Err(LoadError::NotSeeded {
                table: table.to_string(),
                tenant: tenant.to_string(),
            });
        }
        Ok(records::from_records(tenant, found)?)
    }
}

fn string_attribute(
    item: &HashMap<String, AttributeValue>,
    attribute: &'static str,
    table: &str,
    tenant: &str,
) -> Result<String, LoadError> {
    match item.get(attribute) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(LoadError::MissingAttribute {
            table: table.to_string(),
            tenant: tenant.to_string(),
            attribute,
        }),
    }
}

/// Tenants held in memory, for tests and local runs; counts its loads so that tests can see the
/// cache at work.
#[derive(Debug, Default)]
pub struct StaticSource {
    tenants: BTreeMap<String, TenantData>,
    loads: AtomicUsize,
}

impl StaticSource {
    pub fn new(tenants: impl IntoIterator<Item = TenantData>) -> Self {
        StaticSource {
            tenants: tenants
                .into_iter()
                .map(|t| (t.id().to_string(), t))
                .collect(),
            loads: AtomicUsize::new(0),
        }
    }

    /// How many times `load` was called.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

impl TenantSource for StaticSource {
    async fn load(&self, tenant: &str) -> Result<TenantData, LoadError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.tenants
            .get(tenant)
            .cloned()
            .ok_or_else(|| LoadError::Unknown {
                tenant: tenant.to_string(),
            })
    }
}

/// Whether an invoke found the tenant's data already in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
        }
    }
}

/// Why the cache could not answer for a tenant.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The environment already holds another tenant's data. In tenant isolation mode this
    /// cannot happen; if it does, the platform routed a tenant to another tenant's environment.
    #[error(
        "this environment holds the data of tenant `{cached}` and was invoked for `{requested}`"
    )]
    OtherTenant { cached: String, requested: String },
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// The tenant's data, read once per execution environment and kept for its life.
///
/// The cell is keyed by nothing: it holds one tenant's data, whichever tenant invoked first. That
/// is safe because the functions run in tenant isolation mode (PER_TENANT), where Lambda (and the
/// emulator) give an execution environment to exactly one tenant for its whole life, so every
/// invoke this process sees is for the same tenant. The cache still checks that promise on every
/// invoke and refuses to answer when it is broken, rather than serve one state's data to another.
#[derive(Debug, Default)]
pub struct TenantCache {
    cell: OnceCell<TenantData>,
}

impl TenantCache {
    pub fn new() -> Self {
        TenantCache::default()
    }

    /// The data of `tenant`, loaded from `source` on the first invoke only. A failed load is not
    /// cached: the next invoke tries again.
    pub async fn get<S: TenantSource>(
        &self,
        tenant: &str,
        source: &S,
    ) -> Result<(&TenantData, CacheStatus), CacheError> {
        let mut status = CacheStatus::Hit;
        let data = self
            .cell
            .get_or_try_init(|| {
                status = CacheStatus::Miss;
                source.load(tenant)
            })
            .await?;
        if data.id() != tenant {
            return Err(CacheError::OtherTenant {
                cached: data.id().to_string(),
                requested: tenant.to_string(),
            });
        }
        Ok((data, status))
    }

    /// The tenant whose data this environment holds, once it holds any.
    pub fn tenant(&self) -> Option<&str> {
        self.cell.get().map(TenantData::id)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;
    use crate::tenant::TenantFile;

    fn committed(id: &str) -> TenantFile {
        let path = format!("{}/../../tenants/{id}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("committed tenant file");
        serde_json::from_str(&text).expect("committed tenant file parses")
    }

    fn item(record: &str, data: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                PARTITION_KEY.to_string(),
                AttributeValue::S("WY".to_string()),
            ),
            (SORT_KEY.to_string(), AttributeValue::S(record.to_string())),
            (
                DATA_ATTRIBUTE.to_string(),
                AttributeValue::S(data.to_string()),
            ),
        ])
    }

    #[tokio::test]
    async fn dynamo_source_follows_every_page_of_the_partition() {
        let wy = committed("WY");
        let records: Vec<(String, String)> = records::to_records(&wy).into_iter().collect();
        let (first, second) = records.split_at(10);
        let first: Vec<_> = first.iter().map(|(k, d)| item(k, d)).collect();
        let second: Vec<_> = second.iter().map(|(k, d)| item(k, d)).collect();
        let last_key = HashMap::from([
            (
                PARTITION_KEY.to_string(),
                AttributeValue::S("WY".to_string()),
            ),
            (
                SORT_KEY.to_string(),
                AttributeValue::S(records[9].0.clone()),
            ),
        ]);
        let expected_start = last_key.clone();

        let page1 = mock!(aws_sdk_dynamodb::Client::query)
            .match_requests(|r| {
                r.table_name() == Some("represent-dev-data")
                    && r.expression_attribute_values()
                        .and_then(|v| v.get(":tenant"))
                        == Some(&AttributeValue::S("WY".to_string()))
                    && r.exclusive_start_key().is_none()
            })
            .then_output(move || {
                QueryOutput::builder()
                    .set_items(Some(first.clone()))
                    .set_last_evaluated_key(Some(last_key.clone()))
                    .build()
            });
        let page2 = mock!(aws_sdk_dynamodb::Client::query)
            .match_requests(move |r| r.exclusive_start_key() == Some(&expected_start))
            .then_output(move || {
                QueryOutput::builder()
                    .set_items(Some(second.clone()))
                    .build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&page1, &page2]);
        let source = DynamoSource::new(client, "represent-dev-data");

        let data = source.load("WY").await.expect("WY loads");
        assert_eq!(data.file(), &wy);
        assert_eq!(page1.num_calls(), 1);
        assert_eq!(page2.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_empty_partition_says_the_table_was_not_seeded() {
        let empty =
            mock!(aws_sdk_dynamodb::Client::query).then_output(|| QueryOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&empty]);
        let source = DynamoSource::new(client, "represent-dev-data");
        let err = source.load("WY").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "tenant `WY` has no records in table `represent-dev-data`: was the table seeded?"
        );
    }

    #[tokio::test]
    async fn a_source_without_table_name_says_so_when_asked_for_data() {
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, []);
        let source = DynamoSource {
            client,
            table: None,
            scoped: None,
        };
        let err = source.load("WY").await.unwrap_err();
        assert!(err.to_string().contains("`TABLE_NAME` is not set"), "{err}");
    }

    /// Hands out credentials valid for `lifetime`, counting how often it is asked.
    #[derive(Debug, Clone)]
    struct Expiring {
        lifetime: std::time::Duration,
        asked: std::sync::Arc<AtomicUsize>,
    }

    impl aws_sdk_dynamodb::config::ProvideCredentials for Expiring {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.asked.fetch_add(1, Ordering::SeqCst);
            let expiry = std::time::SystemTime::now() + self.lifetime;
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
                aws_sdk_dynamodb::config::Credentials::new(
                    "ASIATENANT",
                    "secret",
                    Some("token".into()),
                    Some(expiry),
                    "tenant",
                ),
            ))
        }
    }

    /// How often a scoped client asks for credentials over two queries, when each set lives
    /// `lifetime`.
    async fn credential_fetches(lifetime: std::time::Duration) -> usize {
        // The configuration's own HTTP client is never reached: the mocks answer.
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        let asked = std::sync::Arc::new(AtomicUsize::new(0));
        let provider = Expiring {
            lifetime,
            asked: asked.clone(),
        };
        let rule =
            mock!(aws_sdk_dynamodb::Client::query).then_output(|| QueryOutput::builder().build());
        let config = scoped_config(&base, provider)
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(aws_smithy_mocks::MockResponseInterceptor::new().with_rule(&rule))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        for _ in 0..2 {
            client
                .query()
                .table_name("represent-dev-data")
                .send()
                .await
                .expect("mocked query");
        }
        asked.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn tenant_credentials_are_reused_and_renewed_before_they_expire() {
        // An hour-long session serves both calls.
        assert_eq!(
            credential_fetches(std::time::Duration::from_secs(3600)).await,
            1
        );
        // A session within seconds of its expiry is renewed before the next call.
        assert_eq!(
            credential_fetches(std::time::Duration::from_secs(5)).await,
            2
        );
    }

    #[test]
    fn session_names_fit_sts_and_keep_the_tenant_readable() {
        assert_eq!(session_name("TX"), "tenant-TX");
        assert_eq!(session_name("../x y:z"), "tenant-..-x-y-z");
        assert_eq!(session_name(&"a".repeat(256)).len(), 64);
    }

    #[tokio::test]
    async fn the_cache_loads_once_and_refuses_another_tenant() {
        let source = StaticSource::new([
            TenantData::new(committed("TX")),
            TenantData::new(committed("CA")),
        ]);
        let cache = TenantCache::new();
        let (tx, status) = cache.get("TX", &source).await.expect("TX loads");
        assert_eq!((tx.id(), status), ("TX", CacheStatus::Miss));
        let (tx, status) = cache.get("TX", &source).await.expect("TX is cached");
        assert_eq!((tx.id(), status), ("TX", CacheStatus::Hit));
        assert_eq!(source.loads(), 1);

        let err = cache.get("CA", &source).await.unwrap_err();
        assert!(matches!(err, CacheError::OtherTenant { .. }), "{err}");
        assert_eq!(source.loads(), 1, "another tenant's data is never loaded");
        assert_eq!(cache.tenant(), Some("TX"));
    }

    #[tokio::test]
    async fn a_failed_load_is_retried_by_the_next_invoke() {
        let source = StaticSource::new([TenantData::new(committed("WY"))]);
        let cache = TenantCache::new();
        assert!(cache.get("TX", &source).await.is_err());
        assert_eq!(cache.tenant(), None);
        let (wy, status) = cache.get("WY", &source).await.expect("WY loads");
        assert_eq!((wy.id(), status), ("WY", CacheStatus::Miss));
        assert_eq!(source.loads(), 2);
    }
}
