//! Physical names and tags: how a logical stack maps onto AWS resources.

/// Tag naming the app that owns a resource.
pub const TAG_APP: &str = "deployer:app";
/// Tag naming the stage that owns a resource.
pub const TAG_STAGE: &str = "deployer:stage";
/// Tag naming the function's logical id in the stack.
pub const TAG_LOGICAL: &str = "deployer:logical-id";

/// Lambda's limit on function names.
pub const MAX_FUNCTION_NAME: usize = 64;
/// IAM's limit on role names.
pub const MAX_ROLE_NAME: usize = 64;

/// The ARN of the AWS managed policy that lets a function write its logs.
pub const BASIC_EXECUTION_POLICY: &str =
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

/// The function's usual physical name: `{app}-{stage}-{logical}`.
pub fn function_name(app: &str, stage: &str, logical: &str) -> String {
    format!("{app}-{stage}-{logical}")
}

/// The slot a function moves to while it is being replaced: `{app}-{stage}-{logical}-r`.
/// Replacements alternate between this and [`function_name`], so the stage always keeps one
/// working function.
pub fn replacement_name(app: &str, stage: &str, logical: &str) -> String {
    format!("{app}-{stage}-{logical}-r")
}

/// The execution role shared by every function of a stage: `{app}-{stage}-exec`.
pub fn role_name(app: &str, stage: &str) -> String {
    format!("{app}-{stage}-exec")
}

/// The prefix every function name of a stage starts with. A prefix match is only a first filter:
/// `represent-dev-` is also a prefix of `represent-dev-2-x`, so observation trusts tags.
pub fn function_prefix(app: &str, stage: &str) -> String {
    format!("{app}-{stage}-")
}

/// A REST API's physical name: `{app}-{stage}-{logical}`.
pub fn rest_api_name(app: &str, stage: &str, logical: &str) -> String {
    format!("{app}-{stage}-{logical}")
}

/// The name of a role from its ARN (`arn:aws:iam::1:role/path/name` -> `name`).
pub fn role_name_from_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// DynamoDB's limits on table names.
pub const MIN_TABLE_NAME: usize = 3;
pub const MAX_TABLE_NAME: usize = 255;

/// The partition key of every table: the tenant (a US state for Represent) owns a partition.
pub const PARTITION_KEY: &str = "tenant";
/// The sort key of every table: the record within a tenant's partition (`STATE`,
/// `COUNTY#48201`, `SEAT#07`).
pub const SORT_KEY: &str = "record";
/// The attribute holding a record's JSON document.
pub const DATA_ATTRIBUTE: &str = "data";

/// The inline policy of the execution role that lets functions read the tables they declare.
pub const TABLE_READ_POLICY: &str = "table-read";

/// A table's physical name: `{app}-{stage}-{logical}`.
pub fn table_name(app: &str, stage: &str, logical: &str) -> String {
    format!("{app}-{stage}-{logical}")
}

/// The ARN of a table for IAM policies. The plan is pure and runs before any call, so it knows
/// neither the account nor the region; the wildcards are safe because the table name carries the
/// app and stage, and a role only ever acts inside its own account.
pub fn table_arn_pattern(name: &str) -> String {
    format!("arn:aws:dynamodb:*:*:table/{name}")
}

/// Whether DynamoDB accepts a table name: 3 to 255 characters of `[a-zA-Z0-9_.-]`.
pub fn is_valid_table_name(name: &str) -> bool {
    (MIN_TABLE_NAME..=MAX_TABLE_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy's `retentionInDays`).
pub const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Whether a logical name (app, stage, function, table, API) is 1 or more characters of
/// lowercase letters, digits and `-`, which every AWS name it ends up in accepts.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The tags of a resource of one stage that belongs to one logical resource of the stack.
pub fn tags(app: &str, stage: &str, logical: &str) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([
        (TAG_APP.to_string(), app.to_string()),
        (TAG_STAGE.to_string(), stage.to_string()),
        (TAG_LOGICAL.to_string(), logical.to_string()),
    ])
}
