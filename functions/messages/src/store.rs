//! Where messages are kept: the `messages` table, one partition per state (`tenant`), one item
//! per message under its id (`record`), the message itself as JSON (`data`).

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;
use represent::data::{DATA_ATTRIBUTE, PARTITION_KEY, SORT_KEY};

use crate::{Message, Page};

/// Keeps and lists a state's messages. `DynamoMessages` in Lambda; memory in tests.
pub trait MessageStore {
    /// Stores one message in `tenant`'s partition.
    fn put(
        &self,
        tenant: &str,
        message: &Message,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `limit` of `tenant`'s messages, newest first, starting after the message `after`.
    fn page(
        &self,
        tenant: &str,
        limit: u32,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;
}

/// Why the table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "environment variable `{}` is not set: the deployer passes the messages table's name",
        crate::MESSAGES_TABLE_VAR
    )]
    NoTable,
    #[error("{call} on table `{table}` failed")]
    Call {
        call: &'static str,
        table: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("an item of table `{table}` is not a message: {problem}")]
    Malformed { table: String, problem: String },
}

/// The messages table, through a DynamoDB client built once per environment.
#[derive(Debug, Clone)]
pub struct DynamoMessages {
    client: aws_sdk_dynamodb::Client,
    table: Option<String>,
}

impl DynamoMessages {
    pub fn new(client: aws_sdk_dynamodb::Client, table: Option<String>) -> Self {
        DynamoMessages { client, table }
    }

    fn table(&self) -> Result<&str, StoreError> {
        self.table.as_deref().ok_or(StoreError::NoTable)
    }
}

impl MessageStore for DynamoMessages {
    async fn put(&self, tenant: &str, message: &Message) -> Result<(), StoreError> {
        let table = self.table()?;
        let data = serde_json::to_string(message).expect("a message serializes");
        self.client
            .put_item()
            .table_name(table)
            .item(PARTITION_KEY, AttributeValue::S(tenant.to_string()))
            .item(SORT_KEY, AttributeValue::S(message.id.clone()))
            .item(DATA_ATTRIBUTE, AttributeValue::S(data))
            // Ids are unique; never overwrite one.
            .condition_expression("attribute_not_exists(#record)")
            .expression_attribute_names("#record", SORT_KEY)
            .send()
            .await
            .map_err(|e| StoreError::Call {
                call: "PutItem",
                table: table.to_string(),
                source: Box::new(e),
            })?;
        Ok(())
    }

    async fn page(
        &self,
        tenant: &str,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        let table = self.table()?;
        let start = after.map(|id| {
            HashMap::from([
                (
                    PARTITION_KEY.to_string(),
                    AttributeValue::S(tenant.to_string()),
                ),
                (SORT_KEY.to_string(), AttributeValue::S(id.to_string())),
            ])
        });
        let output = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("#tenant = :tenant")
            .expression_attribute_names("#tenant", PARTITION_KEY)
            .expression_attribute_values(":tenant", AttributeValue::S(tenant.to_string()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::Call {
                call: "Query",
                table: table.to_string(),
                source: Box::new(e),
            })?;
        let malformed = |problem: String| StoreError::Malformed {
            table: table.to_string(),
            problem,
        };
        let mut messages = Vec::new();
        for item in output.items() {
            let data = item
                .get(DATA_ATTRIBUTE)
                .and_then(|v| v.as_s().ok())
                .ok_or_else(|| malformed(format!("no string attribute `{DATA_ATTRIBUTE}`")))?;
            messages.push(serde_json::from_str(data).map_err(|e| malformed(e.to_string()))?);
        }
        // DynamoDB says where it stopped when the page is full; the last id is all the next
        // page needs, as the partition comes from the tenant again.
        let next = output
            .last_evaluated_key()
            .and_then(|key| key.get(SORT_KEY))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(Page { messages, next })
    }
}
