//! The emulator's durable state: one SQLite database holding functions, their code, IAM roles and
//! policies, and the log lines of execution environments.
//!
//! Control-plane writes use `synchronous=FULL` so that everything the emulator acknowledged to a
//! deployer survives a crash or restart. Log lines arrive on a channel and are written in batches
//! by a dedicated thread with its own connection, so an invoke never waits for the disk.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::runtime::{LogEvent, LogSink};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS code (
    sha256 TEXT PRIMARY KEY,
    zip BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS functions (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    tags TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    revision TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS permissions (
    function TEXT NOT NULL,
    sid TEXT NOT NULL,
    statement TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (function, sid)
);
CREATE TABLE IF NOT EXISTS roles (
    name TEXT PRIMARY KEY,
    role_id TEXT NOT NULL,
    path TEXT NOT NULL,
    arn TEXT NOT NULL,
    assume_role_policy TEXT NOT NULL,
    description TEXT,
    max_session_duration INTEGER NOT NULL,
    create_date TEXT NOT NULL,
    tags TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS role_attached_policies (
    role TEXT NOT NULL,
    policy_arn TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (role, policy_arn)
);
CREATE TABLE IF NOT EXISTS role_inline_policies (
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (role, name)
);
CREATE TABLE IF NOT EXISTS log_events (
    seq INTEGER PRIMARY KEY,
    log_group TEXT NOT NULL,
    log_stream TEXT NOT NULL,
    tenant TEXT,
    timestamp INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_events_by_stream ON log_events (log_group, log_stream, seq);
CREATE INDEX IF NOT EXISTS log_events_by_time ON log_events (log_group, timestamp);
CREATE TABLE IF NOT EXISTS log_groups (
    name TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    retention_days INTEGER
);
CREATE TABLE IF NOT EXISTS log_group_keys (
    name TEXT PRIMARY KEY,
    kms_key_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_group_tags (
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
);
CREATE TABLE IF NOT EXISTS log_streams (
    log_group TEXT NOT NULL,
    log_stream TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (log_group, log_stream)
);
CREATE TABLE IF NOT EXISTS dynamodb_tables (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dynamodb_items (
    table_name TEXT NOT NULL,
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    item TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (table_name, pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dynamodb_index_entries (
    table_name TEXT NOT NULL,
    index_name TEXT NOT NULL,
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    item_pk TEXT NOT NULL,
    item_sk TEXT NOT NULL,
    PRIMARY KEY (table_name, index_name, pk, sk, item_pk, item_sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dynamodb_index_entries_by_item
    ON dynamodb_index_entries (table_name, item_pk, item_sk);
CREATE TABLE IF NOT EXISTS apigateway_rest_apis (
    id TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
";

/// STS's temporary credentials with the principal they stand for (`sts.rs`), and the audit of
/// data calls made by role sessions (`audit.rs`).
const CREDENTIALS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sts_sessions (
    access_key_id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    principal TEXT NOT NULL,
    role_arn TEXT NOT NULL,
    tenant TEXT,
    action TEXT NOT NULL,
    table_name TEXT NOT NULL,
    partition_keys TEXT NOT NULL,
    allowed INTEGER NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS audit_events_by_time ON audit_events (time_ms);
";

/// Everything that can go wrong with the state database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the state database `{path}`: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt {what} record `{name}` in the state database: {source}")]
    Corrupt {
        what: &'static str,
        name: String,
        source: serde_json::Error,
    },
    #[error("failed to encode {what} `{name}` for the state database: {source}")]
    Encode {
        what: &'static str,
        name: String,
        source: serde_json::Error,
    },
    #[error("state database task failed: {0}")]
    Task(String),
}

/// A function as persisted: the configuration and tags as JSON, so that adding a configuration
/// field never needs a schema migration.
#[derive(Debug, Clone)]
pub struct StoredFunction {
    pub name: String,
    pub config: String,
    pub tags: String,
    pub code_sha256: String,
    pub revision: String,
    /// Resource-policy statements in the order they were added: (statement id, statement JSON).
    pub permissions: Vec<(String, String)>,
}

/// An IAM role as persisted.
#[derive(Debug, Clone)]
pub struct StoredRole {
    pub name: String,
    pub role_id: String,
    pub path: String,
    pub arn: String,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: i64,
    pub create_date: String,
    pub tags: Vec<(String, String)>,
}

/// The control-plane connection. One connection behind a mutex is plenty: control-plane calls
/// are rare, and the invoke path never comes here.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the database at `path` and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = open_connection(path, "FULL")?;
        conn.execute_batch(SCHEMA)
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        conn.execute_batch(CREDENTIALS_SCHEMA)
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        conn.execute_batch(crate::cloudtrail::SCHEMA)
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection off the async executor.
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite half-written (statements are
            // atomic), so a poisoned lock is safe to keep using.
            let mut conn = store.conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

fn open_connection(path: &Path, synchronous: &str) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(open_err)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get::<_, String>(0))
        .map_err(open_err)?;
    conn.execute_batch(&format!("PRAGMA synchronous={synchronous};"))
        .map_err(open_err)?;
    Ok(conn)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// Functions, code and permissions.

pub fn load_functions(conn: &Connection) -> Result<Vec<StoredFunction>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT name, config, tags, code_sha256, revision FROM functions ORDER BY name")?;
    let mut functions = stmt
        .query_map([], |row| {
            Ok(StoredFunction {
                name: row.get(0)?,
                config: row.get(1)?,
                tags: row.get(2)?,
                code_sha256: row.get(3)?,
                revision: row.get(4)?,
                permissions: Vec::new(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut perms = conn
        .prepare("SELECT sid, statement FROM permissions WHERE function = ?1 ORDER BY position")?;
    for function in &mut functions {
        function.permissions = perms
            .query_map([&function.name], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(functions)
}

/// Inserts or replaces a function, storing `code` (sha, zip) first when it is new.
pub fn put_function(
    conn: &mut Connection,
    function: &StoredFunction,
    code: Option<(&str, &[u8])>,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    if let Some((sha, zip)) = code {
        tx.execute(
            "INSERT OR IGNORE INTO code (sha256, zip) VALUES (?1, ?2)",
            params![sha, zip],
        )?;
    }
    let now = now_secs();
    tx.execute(
        "INSERT INTO functions (name, config, tags, code_sha256, revision, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT(name) DO UPDATE SET config = ?2, tags = ?3, code_sha256 = ?4, revision = ?5,
         updated_at = ?6",
        params![
            function.name,
            function.config,
            function.tags,
            function.code_sha256,
            function.revision,
            now
        ],
    )?;
    tx.execute(
        "DELETE FROM code WHERE sha256 NOT IN (SELECT code_sha256 FROM functions)",
        [],
    )?;
    tx.commit()?;
    Ok(())
}

pub fn set_function_tags(conn: &Connection, name: &str, tags: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE functions SET tags = ?2, updated_at = ?3 WHERE name = ?1",
        params![name, tags, now_secs()],
    )?;
    Ok(())
}

pub fn delete_function(conn: &mut Connection, name: &str) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM functions WHERE name = ?1", [name])?;
    tx.execute("DELETE FROM permissions WHERE function = ?1", [name])?;
    tx.execute(
        "DELETE FROM code WHERE sha256 NOT IN (SELECT code_sha256 FROM functions)",
        [],
    )?;
    tx.commit()?;
    Ok(())
}

pub fn code_zip(conn: &Connection, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT zip FROM code WHERE sha256 = ?1", [sha256], |row| {
            row.get(0)
        })
        .optional()?)
}

pub fn add_permission(
    conn: &Connection,
    function: &str,
    sid: &str,
    statement: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO permissions (function, sid, statement, position)
         VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(position), 0) + 1 FROM permissions WHERE function = ?1))",
        params![function, sid, statement],
    )?;
    Ok(())
}

pub fn remove_permission(conn: &Connection, function: &str, sid: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM permissions WHERE function = ?1 AND sid = ?2",
        params![function, sid],
    )?;
    Ok(())
}

// API Gateway REST APIs, one JSON document per API (resources, methods, deployments, stages).

pub fn load_rest_apis(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, document FROM apigateway_rest_apis ORDER BY id")?;
    let apis = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(apis)
}

pub fn put_rest_api(conn: &Connection, id: &str, document: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO apigateway_rest_apis (id, document) VALUES (?1, ?2)
         ON CONFLICT(id) DO UPDATE SET document = ?2",
        params![id, document],
    )?;
    Ok(())
}

pub fn delete_rest_api(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM apigateway_rest_apis WHERE id = ?1", [id])?;
    Ok(())
}

// Secrets Manager secrets, one JSON document per secret.

pub fn get_secret(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT document FROM secrets WHERE name = ?1")?;
    let mut rows = stmt.query([name])?;
    Ok(match rows.next()? {
        Some(row) => Some(row.get(0)?),
        None => None,
    })
}

pub fn put_secret(conn: &Connection, name: &str, document: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO secrets (name, document) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET document = ?2",
        params![name, document],
    )?;
    Ok(())
}

/// Every secret's document, in name order.
pub fn list_secrets(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT document FROM secrets ORDER BY name")?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete_secret(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM secrets WHERE name = ?1", [name])? > 0)
}

// Roles and their policies.

fn encode_tags(name: &str, tags: &[(String, String)]) -> Result<String, StoreError> {
    serde_json::to_string(tags).map_err(|source| StoreError::Encode {
        what: "role tags",
        name: name.to_string(),
        source,
    })
}

pub fn get_role(conn: &Connection, name: &str) -> Result<Option<StoredRole>, StoreError> {
    let row = conn
        .query_row(
            "SELECT name, role_id, path, arn, assume_role_policy, description,
                    max_session_duration, create_date, tags
             FROM roles WHERE name = ?1 COLLATE NOCASE",
            [name],
            |row| {
                Ok((
                    StoredRole {
                        name: row.get(0)?,
                        role_id: row.get(1)?,
                        path: row.get(2)?,
                        arn: row.get(3)?,
                        assume_role_policy: row.get(4)?,
                        description: row.get(5)?,
                        max_session_duration: row.get(6)?,
                        create_date: row.get(7)?,
                        tags: Vec::new(),
                    },
                    row.get::<_, String>(8)?,
                ))
            },
        )
        .optional()?;
    let Some((mut role, tags)) = row else {
        return Ok(None);
    };
    role.tags = serde_json::from_str(&tags).map_err(|source| StoreError::Corrupt {
        what: "role",
        name: role.name.clone(),
        source,
    })?;
    Ok(Some(role))
}

/// Every role, in name order.
pub fn list_roles(conn: &Connection) -> Result<Vec<StoredRole>, StoreError> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM roles ORDER BY name")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut roles = Vec::with_capacity(names.len());
    for name in names {
        roles.extend(get_role(conn, &name)?);
    }
    Ok(roles)
}

pub fn insert_role(conn: &Connection, role: &StoredRole) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO roles (name, role_id, path, arn, assume_role_policy, description,
                            max_session_duration, create_date, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            role.name,
            role.role_id,
            role.path,
            role.arn,
            role.assume_role_policy,
            role.description,
            role.max_session_duration,
            role.create_date,
            encode_tags(&role.name, &role.tags)?
        ],
    )?;
    Ok(())
}

pub fn set_role_tags(
    conn: &Connection,
    name: &str,
    tags: &[(String, String)],
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE roles SET tags = ?2 WHERE name = ?1",
        params![name, encode_tags(name, tags)?],
    )?;
    Ok(())
}

pub fn set_assume_role_policy(
    conn: &Connection,
    name: &str,
    document: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE roles SET assume_role_policy = ?2 WHERE name = ?1",
        params![name, document],
    )?;
    Ok(())
}

pub fn delete_role(conn: &Connection, name: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM roles WHERE name = ?1", [name])?;
    Ok(())
}

pub fn attached_policies(conn: &Connection, role: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT policy_arn FROM role_attached_policies WHERE role = ?1 ORDER BY position",
    )?;
    let arns = stmt
        .query_map([role], |row| row.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(arns)
}

pub fn attach_policy(conn: &Connection, role: &str, policy_arn: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO role_attached_policies (role, policy_arn, position)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(position), 0) + 1 FROM role_attached_policies WHERE role = ?1))",
        params![role, policy_arn],
    )?;
    Ok(())
}

/// Returns whether the policy was attached.
pub fn detach_policy(conn: &Connection, role: &str, policy_arn: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "DELETE FROM role_attached_policies WHERE role = ?1 AND policy_arn = ?2",
        params![role, policy_arn],
    )?;
    Ok(n > 0)
}

pub fn inline_policy_names(conn: &Connection, role: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT name FROM role_inline_policies WHERE role = ?1 ORDER BY name")?;
    let names = stmt
        .query_map([role], |row| row.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names)
}

pub fn put_inline_policy(
    conn: &Connection,
    role: &str,
    name: &str,
    document: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO role_inline_policies (role, name, document) VALUES (?1, ?2, ?3)
         ON CONFLICT(role, name) DO UPDATE SET document = ?3",
        params![role, name, document],
    )?;
    Ok(())
}

pub fn inline_policy(
    conn: &Connection,
    role: &str,
    name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT document FROM role_inline_policies WHERE role = ?1 AND name = ?2",
            params![role, name],
            |row| row.get(0),
        )
        .optional()?)
}

/// Returns whether the policy existed.
pub fn delete_inline_policy(conn: &Connection, role: &str, name: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "DELETE FROM role_inline_policies WHERE role = ?1 AND name = ?2",
        params![role, name],
    )?;
    Ok(n > 0)
}

// DynamoDB tables and items.

/// A DynamoDB table as persisted: its definition (key schema, attribute definitions, billing
/// mode) and tags as JSON, so that describing more of a table never needs a schema migration.
#[derive(Debug, Clone)]
pub struct StoredTable {
    pub name: String,
    pub definition: String,
    pub tags: String,
    pub created_ms: i64,
}

/// An item's entry in one secondary index: the index's keys, in stored form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    pub index: String,
    pub pk: String,
    pub sk: String,
}

/// One write of a BatchWriteItem, PutItem or DeleteItem, with keys already in stored form.
#[derive(Debug, Clone)]
pub enum ItemWrite {
    Put {
        table: String,
        pk: String,
        sk: String,
        item: String,
        size: i64,
        /// The item's entries in the table's secondary indexes (those whose keys it has).
        index_keys: Vec<IndexKey>,
    },
    Delete {
        table: String,
        pk: String,
        sk: String,
    },
}

/// Which sort keys of one partition a Query reads. Bounds are in stored (order-preserving) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKeyRange {
    All,
    Eq(String),
    Lt(String),
    Le(String),
    Gt(String),
    Ge(String),
    Between(String, String),
    BeginsWith(String),
}

pub fn dynamodb_table(conn: &Connection, name: &str) -> Result<Option<StoredTable>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT name, definition, tags, created_ms FROM dynamodb_tables WHERE name = ?1",
            [name],
            |row| {
                Ok(StoredTable {
                    name: row.get(0)?,
                    definition: row.get(1)?,
                    tags: row.get(2)?,
                    created_ms: row.get(3)?,
                })
            },
        )
        .optional()?)
}

/// Table names in order, starting after `after`, at most `limit` of them.
pub fn dynamodb_table_names(
    conn: &Connection,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT name FROM dynamodb_tables WHERE ?1 IS NULL OR name > ?1 ORDER BY name LIMIT ?2",
    )?;
    let names = stmt
        .query_map(params![after, limit as i64], |row| row.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names)
}

/// Returns false, changing nothing, when a table of that name exists.
pub fn insert_dynamodb_table(conn: &Connection, table: &StoredTable) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO dynamodb_tables (name, definition, tags, created_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![table.name, table.definition, table.tags, table.created_ms],
    )?;
    Ok(n > 0)
}

pub fn set_dynamodb_table_definition(
    conn: &Connection,
    name: &str,
    definition: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE dynamodb_tables SET definition = ?2 WHERE name = ?1",
        params![name, definition],
    )?;
    Ok(())
}

pub fn set_dynamodb_table_tags(
    conn: &Connection,
    name: &str,
    tags: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE dynamodb_tables SET tags = ?2 WHERE name = ?1",
        params![name, tags],
    )?;
    Ok(())
}

/// Deletes a table and every item in it; returns whether the table existed.
pub fn delete_dynamodb_table(conn: &mut Connection, name: &str) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let n = tx.execute("DELETE FROM dynamodb_tables WHERE name = ?1", [name])?;
    tx.execute("DELETE FROM dynamodb_items WHERE table_name = ?1", [name])?;
    tx.execute(
        "DELETE FROM dynamodb_index_entries WHERE table_name = ?1",
        [name],
    )?;
    tx.commit()?;
    Ok(n > 0)
}

/// How many items a table holds and their total size in bytes.
pub fn dynamodb_table_usage(conn: &Connection, name: &str) -> Result<(i64, i64), StoreError> {
    Ok(conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM dynamodb_items WHERE table_name = ?1",
        [name],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

pub fn dynamodb_item(
    conn: &Connection,
    table: &str,
    pk: &str,
    sk: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT item FROM dynamodb_items WHERE table_name = ?1 AND pk = ?2 AND sk = ?3",
            params![table, pk, sk],
            |row| row.get(0),
        )
        .optional()?)
}

/// Applies every write in one transaction and returns, for each, the item it replaced or
/// deleted (if any).
pub fn write_dynamodb_items(
    conn: &mut Connection,
    writes: &[ItemWrite],
) -> Result<Vec<Option<String>>, StoreError> {
    let tx = conn.transaction()?;
    let mut old_items = Vec::with_capacity(writes.len());
    {
        let mut get = tx.prepare_cached(
            "SELECT item FROM dynamodb_items WHERE table_name = ?1 AND pk = ?2 AND sk = ?3",
        )?;
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO dynamodb_items (table_name, pk, sk, item, size)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut delete = tx.prepare_cached(
            "DELETE FROM dynamodb_items WHERE table_name = ?1 AND pk = ?2 AND sk = ?3",
        )?;
        let mut unindex = tx.prepare_cached(
            "DELETE FROM dynamodb_index_entries WHERE table_name = ?1 AND item_pk = ?2 AND item_sk = ?3",
        )?;
        let mut index = tx.prepare_cached(
            "INSERT OR REPLACE INTO dynamodb_index_entries
             (table_name, index_name, pk, sk, item_pk, item_sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for write in writes {
            let (table, pk, sk) = match write {
                ItemWrite::Put { table, pk, sk, .. } | ItemWrite::Delete { table, pk, sk } => {
                    (table, pk, sk)
                }
            };
            let old: Option<String> = get
                .query_row(params![table, pk, sk], |row| row.get(0))
                .optional()?;
            if old.is_some() {
                unindex.execute(params![table, pk, sk])?;
            }
            match write {
                ItemWrite::Put {
                    item,
                    size,
                    index_keys,
                    ..
                } => {
                    put.execute(params![table, pk, sk, item, size])?;
                    for key in index_keys {
                        index.execute(params![table, key.index, key.pk, key.sk, pk, sk])?;
                    }
                }
                ItemWrite::Delete { .. } => {
                    delete.execute(params![table, pk, sk])?;
                }
            }
            old_items.push(old);
        }
    }
    tx.commit()?;
    Ok(old_items)
}

/// Where a page of a Query or Scan starts: after this position, in the order read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The partition and sort key of the table, or of the index when one is read.
    pub pk: String,
    pub sk: String,
    /// The table's own key, which breaks ties between index entries with equal index keys.
    pub item_pk: String,
    pub item_sk: String,
}

/// One page of a Query (one partition) or a Scan (every partition) of a table or an index.
#[derive(Debug, Clone)]
pub struct PageRead {
    pub table: String,
    pub index: Option<String>,
    /// The partition a Query reads; `None` for a Scan.
    pub pk: Option<String>,
    pub range: SortKeyRange,
    pub forward: bool,
    pub after: Option<Position>,
    pub limit: Option<usize>,
    /// The page ends before the item that would take it past this many bytes.
    pub max_bytes: i64,
    /// A parallel Scan's `(Segment, TotalSegments)`: partitions are dealt to segments by a
    /// hash of their key, so that the segments together read every item once.
    pub segment: Option<(u32, u32)>,
}

/// One item of a page, with where it sits in the order read.
#[derive(Debug, Clone)]
pub struct PageItem {
    pub position: Position,
    pub item: String,
    pub size: i64,
}

/// The segment of a parallel Scan that a partition belongs to (FNV-1a of its stored key).
pub fn segment_of(pk: &str, total: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in pk.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(total.max(1))) as u32
}

/// Reads one page. Also returns whether the page was cut short (by the limit or the byte
/// budget), which is when DynamoDB hands back a `LastEvaluatedKey`.
pub fn read_dynamodb_page(
    conn: &Connection,
    read: &PageRead,
) -> Result<(Vec<PageItem>, bool), StoreError> {
    // Each `?` of a clause takes the next value and is numbered as it is pushed.
    fn push(sql: &mut String, args: &mut Vec<String>, clause: &str, values: &[&str]) {
        let mut values = values.iter();
        for (i, part) in clause.split('?').enumerate() {
            if i > 0 {
                args.push(values.next().map_or_else(String::new, |v| (*v).to_string()));
                sql.push_str(&format!("?{}", args.len()));
            }
            sql.push_str(part);
        }
    }
    let (mut sql, pk, sk, item_pk, item_sk) = match &read.index {
        None => (
            String::from(
                "SELECT pk, sk, pk, sk, item, size FROM dynamodb_items WHERE table_name = ?1",
            ),
            "pk",
            "sk",
            "pk",
            "sk",
        ),
        Some(_) => (
            String::from(
                "SELECT e.pk, e.sk, e.item_pk, e.item_sk, i.item, i.size
                 FROM dynamodb_index_entries e JOIN dynamodb_items i
                 ON i.table_name = e.table_name AND i.pk = e.item_pk AND i.sk = e.item_sk
                 WHERE e.table_name = ?1",
            ),
            "e.pk",
            "e.sk",
            "e.item_pk",
            "e.item_sk",
        ),
    };
    let mut args: Vec<String> = vec![read.table.clone()];
    if let Some(index) = &read.index {
        push(&mut sql, &mut args, " AND e.index_name = ?", &[index]);
    }
    if let Some(partition) = &read.pk {
        push(&mut sql, &mut args, &format!(" AND {pk} = ?"), &[partition]);
    }
    let bound = |op: &str| format!(" AND {sk} {op} ?");
    match &read.range {
        SortKeyRange::All => {}
        SortKeyRange::Eq(v) => push(&mut sql, &mut args, &bound("="), &[v]),
        SortKeyRange::Lt(v) => push(&mut sql, &mut args, &bound("<"), &[v]),
        SortKeyRange::Le(v) => push(&mut sql, &mut args, &bound("<="), &[v]),
        SortKeyRange::Gt(v) => push(&mut sql, &mut args, &bound(">"), &[v]),
        SortKeyRange::Ge(v) => push(&mut sql, &mut args, &bound(">="), &[v]),
        SortKeyRange::Between(low, high) => {
            push(&mut sql, &mut args, &bound(">="), &[low]);
            push(&mut sql, &mut args, &bound("<="), &[high]);
        }
        SortKeyRange::BeginsWith(prefix) => {
            // The range condition lets SQLite seek in the primary key; the substring test
            // decides.
            push(&mut sql, &mut args, &bound(">="), &[prefix]);
            push(
                &mut sql,
                &mut args,
                &format!(" AND substr({sk}, 1, length(?)) = ?"),
                &[prefix, prefix],
            );
        }
    }
    let direction = if read.forward { ">" } else { "<" };
    if let Some(after) = &read.after {
        if read.index.is_some() {
            push(
                &mut sql,
                &mut args,
                &format!(" AND ({pk}, {sk}, {item_pk}, {item_sk}) {direction} (?, ?, ?, ?)"),
                &[&after.pk, &after.sk, &after.item_pk, &after.item_sk],
            );
        } else {
            push(
                &mut sql,
                &mut args,
                &format!(" AND ({pk}, {sk}) {direction} (?, ?)"),
                &[&after.pk, &after.sk],
            );
        }
    }
    let order = if read.forward { "ASC" } else { "DESC" };
    sql.push_str(&format!(
        " ORDER BY {pk} {order}, {sk} {order}, {item_pk} {order}, {item_sk} {order}"
    ));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
    let mut items = Vec::new();
    let mut bytes = 0i64;
    while let Some(row) = rows.next()? {
        let position = Position {
            pk: row.get(0)?,
            sk: row.get(1)?,
            item_pk: row.get(2)?,
            item_sk: row.get(3)?,
        };
        if let Some((segment, total)) = read.segment
            && segment_of(&position.pk, total) != segment
        {
            continue;
        }
        let size: i64 = row.get(5)?;
        if !items.is_empty() && bytes + size > read.max_bytes {
            return Ok((items, true));
        }
        bytes += size;
        items.push(PageItem {
            position,
            item: row.get(4)?,
            size,
        });
        if read.limit.is_some_and(|limit| items.len() >= limit) {
            return Ok((items, true));
        }
    }
    Ok((items, false))
}

/// Deletes the items of `table` whose time-to-live attribute (a number of epoch seconds) is
/// before `now_secs`, as DynamoDB's TTL does; returns how many went.
pub fn expire_dynamodb_items(
    conn: &mut Connection,
    table: &str,
    attribute: &str,
    now_secs: i64,
) -> Result<usize, StoreError> {
    // A JSON path label in double quotes takes any attribute name without a double quote.
    if attribute.contains('"') {
        return Ok(0);
    }
    let path = format!("$.\"{attribute}\".N");
    let tx = conn.transaction()?;
    tx.execute(
        "DELETE FROM dynamodb_index_entries WHERE table_name = ?1 AND (item_pk, item_sk) IN
         (SELECT pk, sk FROM dynamodb_items
          WHERE table_name = ?1 AND CAST(json_extract(item, ?2) AS REAL) < ?3)",
        params![table, path, now_secs],
    )?;
    let n = tx.execute(
        "DELETE FROM dynamodb_items
         WHERE table_name = ?1 AND CAST(json_extract(item, ?2) AS REAL) < ?3",
        params![table, path, now_secs],
    )?;
    tx.commit()?;
    Ok(n)
}

// Log events.

/// One stored log line, as the CloudWatch Logs service will read it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogEvent {
    pub seq: i64,
    pub log_group: String,
    pub log_stream: String,
    pub tenant: Option<String>,
    pub timestamp_ms: i64,
    pub message: String,
}

/// Log lines of one group (and optionally one stream), oldest first.
pub fn log_events(
    conn: &Connection,
    log_group: &str,
    log_stream: Option<&str>,
) -> Result<Vec<StoredLogEvent>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT seq, log_group, log_stream, tenant, timestamp, message FROM log_events
         WHERE log_group = ?1 AND (?2 IS NULL OR log_stream = ?2) ORDER BY seq",
    )?;
    let events = stmt
        .query_map(params![log_group, log_stream], |row| {
            Ok(StoredLogEvent {
                seq: row.get(0)?,
                log_group: row.get(1)?,
                log_stream: row.get(2)?,
                tenant: row.get(3)?,
                timestamp_ms: row.get(4)?,
                message: row.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(events)
}

/// A log group as CloudWatch Logs describes it. A group exists once CreateLogGroup made it (a
/// row in `log_groups`) or once an execution environment first logged to it, as Lambda creates
/// `/aws/lambda/<function>` itself; such an implicit group dates from its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogGroup {
    pub name: String,
    pub created_ms: i64,
    pub retention_days: Option<i64>,
    /// The KMS key the group was created with.
    pub kms_key_id: Option<String>,
}

/// A log stream: created by CreateLogStream, or implicitly by its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogStream {
    pub name: String,
    pub created_ms: i64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub stored_bytes: i64,
}

/// Which events of one log group a CloudWatch Logs read visits, in (timestamp, seq) order.
#[derive(Debug, Clone)]
pub struct LogEventScan<'a> {
    pub log_group: &'a str,
    /// Only these streams; `None` for every stream of the group.
    pub log_streams: Option<&'a [String]>,
    /// Inclusive lower bound on the timestamp.
    pub start_ms: Option<i64>,
    /// Exclusive upper bound on the timestamp.
    pub end_before_ms: Option<i64>,
    /// The (timestamp, seq) position the scan continues from, not included.
    pub from: Option<(i64, i64)>,
    /// Oldest first when true, newest first otherwise.
    pub forward: bool,
}

fn explicit_log_group(conn: &Connection, name: &str) -> Result<Option<StoredLogGroup>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT g.name, g.created_ms, g.retention_days, k.kms_key_id
             FROM log_groups g LEFT JOIN log_group_keys k ON k.name = g.name
             WHERE g.name = ?1",
            [name],
            |row| {
                Ok(StoredLogGroup {
                    name: row.get(0)?,
                    created_ms: row.get(1)?,
                    retention_days: row.get(2)?,
                    kms_key_id: row.get(3)?,
                })
            },
        )
        .optional()?)
}

/// The group, explicit or implicit, or `None` when it does not exist.
pub fn log_group(conn: &Connection, name: &str) -> Result<Option<StoredLogGroup>, StoreError> {
    if let Some(group) = explicit_log_group(conn, name)? {
        return Ok(Some(group));
    }
    // MIN over the (log_group, timestamp) index is one seek, not a scan.
    let first: Option<i64> = conn.query_row(
        "SELECT MIN(timestamp) FROM log_events WHERE log_group = ?1",
        [name],
        |row| row.get(0),
    )?;
    Ok(first.map(|created_ms| StoredLogGroup {
        name: name.to_string(),
        created_ms,
        retention_days: None,
        kms_key_id: None,
    }))
}

/// Groups in name order whose name starts with `prefix` and sorts after `after`, at most `limit`.
pub fn log_groups(
    conn: &Connection,
    prefix: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredLogGroup>, StoreError> {
    let prefix = prefix.unwrap_or("");
    let mut stmt = conn.prepare_cached(
        "SELECT g.name, g.created_ms, g.retention_days, k.kms_key_id
         FROM log_groups g LEFT JOIN log_group_keys k ON k.name = g.name
         WHERE g.name >= ?1 AND (?2 IS NULL OR g.name > ?2) ORDER BY g.name",
    )?;
    let mut groups = Vec::new();
    let mut rows = stmt.query(params![prefix, after])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        if !name.starts_with(prefix) || groups.len() >= limit {
            break;
        }
        groups.push(StoredLogGroup {
            name,
            created_ms: row.get(1)?,
            retention_days: row.get(2)?,
            kms_key_id: row.get(3)?,
        });
    }
    // Implicit groups: walk the distinct group names of `log_events` one index seek at a time,
    // so that listing costs one lookup per group rather than a scan of every line. The first
    // `limit` implicit groups are enough: the merged page holds at most `limit`.
    let mut first_at = conn.prepare_cached(
        "SELECT log_group FROM log_events WHERE log_group >= ?1 ORDER BY log_group LIMIT 1",
    )?;
    let mut first_after = conn.prepare_cached(
        "SELECT log_group FROM log_events WHERE log_group > ?1 ORDER BY log_group LIMIT 1",
    )?;
    let mut found: Option<String> = match after {
        Some(after) if after >= prefix => first_after
            .query_row([after], |row| row.get(0))
            .optional()?,
        _ => first_at.query_row([prefix], |row| row.get(0)).optional()?,
    };
    let mut implicit = 0;
    while let Some(name) = found {
        if !name.starts_with(prefix) || implicit >= limit {
            break;
        }
        if explicit_log_group(conn, &name)?.is_none()
            && let Some(group) = log_group(conn, &name)?
        {
            groups.push(group);
            implicit += 1;
        }
        found = first_after
            .query_row([&name], |row| row.get(0))
            .optional()?;
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    groups.dedup_by(|a, b| a.name == b.name);
    groups.truncate(limit);
    Ok(groups)
}

/// Returns false, changing nothing, when the group exists (explicitly or implicitly).
pub fn create_log_group(
    conn: &Connection,
    name: &str,
    created_ms: i64,
    kms_key_id: Option<&str>,
) -> Result<bool, StoreError> {
    if log_group(conn, name)?.is_some() {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO log_groups (name, created_ms) VALUES (?1, ?2)",
        params![name, created_ms],
    )?;
    conn.execute("DELETE FROM log_group_keys WHERE name = ?1", [name])?;
    if let Some(key) = kms_key_id {
        conn.execute(
            "INSERT INTO log_group_keys (name, kms_key_id) VALUES (?1, ?2)",
            params![name, key],
        )?;
    }
    Ok(true)
}

/// Deletes a group with its streams and events; returns whether it existed.
pub fn delete_log_group(conn: &mut Connection, name: &str) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let existed = log_group(&tx, name)?.is_some();
    tx.execute("DELETE FROM log_groups WHERE name = ?1", [name])?;
    tx.execute("DELETE FROM log_group_keys WHERE name = ?1", [name])?;
    tx.execute("DELETE FROM log_group_tags WHERE name = ?1", [name])?;
    tx.execute("DELETE FROM log_streams WHERE log_group = ?1", [name])?;
    tx.execute("DELETE FROM log_events WHERE log_group = ?1", [name])?;
    tx.commit()?;
    Ok(existed)
}

/// Sets (or with `None` removes) a group's retention; returns false when the group does not exist.
pub fn set_log_retention(
    conn: &Connection,
    name: &str,
    retention_days: Option<i64>,
) -> Result<bool, StoreError> {
    let Some(group) = log_group(conn, name)? else {
        return Ok(false);
    };
    // An implicit group becomes explicit here, keeping the creation time of its first line.
    conn.execute(
        "INSERT INTO log_groups (name, created_ms, retention_days) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET retention_days = ?3",
        params![name, group.created_ms, retention_days],
    )?;
    Ok(true)
}

/// A group's tags, by key.
pub fn log_group_tags(
    conn: &Connection,
    name: &str,
) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT key, value FROM log_group_tags WHERE name = ?1")?;
    let tags = stmt
        .query_map([name], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(tags)
}

/// Adds or overwrites tags of a group (which the caller checked exists).
pub fn tag_log_group(
    conn: &Connection,
    name: &str,
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<(), StoreError> {
    for (key, value) in tags {
        conn.execute(
            "INSERT INTO log_group_tags (name, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT(name, key) DO UPDATE SET value = ?3",
            params![name, key, value],
        )?;
    }
    Ok(())
}

/// Removes the tags with the given keys from a group; missing keys are ignored.
pub fn untag_log_group(conn: &Connection, name: &str, keys: &[String]) -> Result<(), StoreError> {
    for key in keys {
        conn.execute(
            "DELETE FROM log_group_tags WHERE name = ?1 AND key = ?2",
            params![name, key],
        )?;
    }
    Ok(())
}

/// Every stream of a group (in no particular order) with its first and last event times.
pub fn log_streams(conn: &Connection, log_group: &str) -> Result<Vec<StoredLogStream>, StoreError> {
    let mut streams: std::collections::BTreeMap<String, StoredLogStream> = Default::default();
    let mut stmt = conn.prepare_cached(
        "SELECT log_stream, MIN(timestamp), MAX(timestamp), SUM(length(message))
         FROM log_events WHERE log_group = ?1 GROUP BY log_stream",
    )?;
    let mut rows = stmt.query([log_group])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let first: i64 = row.get(1)?;
        streams.insert(
            name.clone(),
            StoredLogStream {
                name,
                created_ms: first,
                first_event_ms: Some(first),
                last_event_ms: Some(row.get(2)?),
                stored_bytes: row.get(3)?,
            },
        );
    }
    let mut stmt =
        conn.prepare_cached("SELECT log_stream, created_ms FROM log_streams WHERE log_group = ?1")?;
    let mut rows = stmt.query([log_group])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let created_ms: i64 = row.get(1)?;
        streams
            .entry(name.clone())
            .and_modify(|stream| stream.created_ms = created_ms)
            .or_insert(StoredLogStream {
                name,
                created_ms,
                first_event_ms: None,
                last_event_ms: None,
                stored_bytes: 0,
            });
    }
    Ok(streams.into_values().collect())
}

pub fn log_stream_exists(
    conn: &Connection,
    log_group: &str,
    log_stream: &str,
) -> Result<bool, StoreError> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM log_streams WHERE log_group = ?1 AND log_stream = ?2
             UNION ALL
             SELECT 1 FROM log_events WHERE log_group = ?1 AND log_stream = ?2
             LIMIT 1",
            params![log_group, log_stream],
            |row| row.get(0),
        )
        .optional()?;
    Ok(found.is_some())
}

/// Returns false, changing nothing, when the stream exists.
pub fn create_log_stream(
    conn: &Connection,
    log_group: &str,
    log_stream: &str,
    created_ms: i64,
) -> Result<bool, StoreError> {
    if log_stream_exists(conn, log_group, log_stream)? {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO log_streams (log_group, log_stream, created_ms) VALUES (?1, ?2, ?3)",
        params![log_group, log_stream, created_ms],
    )?;
    Ok(true)
}

/// Appends events written through PutLogEvents (they carry no tenant).
pub fn put_log_events(
    conn: &mut Connection,
    log_group: &str,
    log_stream: &str,
    events: &[(i64, String)],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO log_events (log_group, log_stream, tenant, timestamp, message)
             VALUES (?1, ?2, NULL, ?3, ?4)",
        )?;
        for (timestamp, message) in events {
            stmt.execute(params![log_group, log_stream, timestamp, message])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Visits the events `scan` selects in order until `visit` returns false.
pub fn scan_log_events(
    conn: &Connection,
    scan: &LogEventScan<'_>,
    mut visit: impl FnMut(StoredLogEvent) -> bool,
) -> Result<(), StoreError> {
    let (position, order) = if scan.forward {
        ("(timestamp, seq) > (?4, ?5)", "ASC")
    } else {
        ("(timestamp, seq) < (?4, ?5)", "DESC")
    };
    let from = scan.from.unwrap_or(if scan.forward {
        (i64::MIN, i64::MIN)
    } else {
        (i64::MAX, i64::MAX)
    });
    // SQLite seeks the (log_group, timestamp) index on the plain timestamp bounds only, not on
    // the row value; folding the position into them keeps a late page from rescanning the
    // pages before it.
    let mut start = scan.start_ms.unwrap_or(i64::MIN);
    let mut end_before = scan.end_before_ms.unwrap_or(i64::MAX);
    if scan.forward {
        start = start.max(from.0);
    } else {
        end_before = end_before.min(from.0.saturating_add(1));
    }
    let mut args: Vec<rusqlite::types::Value> = vec![
        scan.log_group.to_string().into(),
        start.into(),
        end_before.into(),
        from.0.into(),
        from.1.into(),
    ];
    let mut streams = String::new();
    if let Some(names) = scan.log_streams {
        let placeholders: Vec<String> = (0..names.len())
            .map(|i| format!("?{}", args.len() + i + 1))
            .collect();
        streams = format!(" AND log_stream IN ({})", placeholders.join(", "));
        args.extend(names.iter().map(|name| name.clone().into()));
    }
    let sql = format!(
        "SELECT seq, log_group, log_stream, tenant, timestamp, message FROM log_events
         WHERE log_group = ?1 AND timestamp >= ?2 AND timestamp < ?3 AND {position}{streams}
         ORDER BY timestamp {order}, seq {order}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    while let Some(row) = rows.next()? {
        let event = StoredLogEvent {
            seq: row.get(0)?,
            log_group: row.get(1)?,
            log_stream: row.get(2)?,
            tenant: row.get(3)?,
            timestamp_ms: row.get(4)?,
            message: row.get(5)?,
        };
        if !visit(event) {
            break;
        }
    }
    Ok(())
}

enum LogMessage {
    Event(LogEvent),
    /// Flush what is queued, then answer (used by `flush` and at shutdown).
    Flush(SyncSender<()>),
    Stop,
}

/// How many log lines may wait for the writer before new ones are dropped. An invoke must never
/// wait for the disk, so a burst beyond this loses lines rather than slowing functions down.
const LOG_QUEUE: usize = 65_536;
const LOG_BATCH: usize = 1_024;
/// How long the writer gathers lines before committing them, unless a read is waiting.
const LOG_LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// The [`LogSink`] handed to the runtime: queues lines for the writer thread.
pub struct StoreLogSink {
    tx: SyncSender<LogMessage>,
    dropped: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Set with an unpark of the writer when a flush or stop must not wait out the linger.
    urgent: Arc<AtomicBool>,
    writer_thread: std::thread::Thread,
}

impl StoreLogSink {
    /// Starts the writer thread with its own connection to the database at `path`.
    pub fn start(path: &Path) -> Result<Arc<StoreLogSink>, StoreError> {
        // Log lines are diagnostics, not acknowledged state: NORMAL durability is enough in WAL
        // mode and keeps the writer from competing with control-plane fsyncs.
        let conn = open_connection(path, "NORMAL")?;
        let (tx, rx) = std::sync::mpsc::sync_channel(LOG_QUEUE);
        let urgent = Arc::new(AtomicBool::new(false));
        let writer_urgent = Arc::clone(&urgent);
        let writer = std::thread::Builder::new()
            .name("emulator-log-writer".into())
            .spawn(move || {
                crate::runtime::yield_to_invokes();
                write_logs(conn, rx, &writer_urgent)
            })
            .map_err(|e| StoreError::Task(format!("failed to start the log writer: {e}")))?;
        let writer_thread = writer.thread().clone();
        Ok(Arc::new(StoreLogSink {
            tx,
            dropped: AtomicU64::new(0),
            writer: Mutex::new(Some(writer)),
            urgent,
            writer_thread,
        }))
    }

    /// How many lines were dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every line emitted so far is in the database (blocking).
    pub fn flush(&self) {
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        if self.tx.send(LogMessage::Flush(done_tx)).is_ok() {
            self.hurry();
            let _ = done_rx.recv();
        }
    }

    /// Ends the writer's linger early, after a flush or stop was queued.
    fn hurry(&self) {
        self.urgent.store(true, Ordering::Release);
        self.writer_thread.unpark();
    }

    /// Writes what is queued and stops the writer thread (blocking).
    pub fn close(&self) {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            let _ = self.tx.send(LogMessage::Stop);
            self.hurry();
            let _ = writer.join();
        }
    }
}

impl LogSink for StoreLogSink {
    fn emit(&self, event: LogEvent) {
        match self.tx.try_send(LogMessage::Event(event)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn write_logs(mut conn: Connection, rx: Receiver<LogMessage>, urgent: &AtomicBool) {
    let mut batch: Vec<LogEvent> = Vec::with_capacity(LOG_BATCH);
    let mut backlog = false;
    while let Ok(first) = rx.recv() {
        // One transaction per invoke would cost each invoke a WAL commit on the cores the
        // functions run on; the lines of the next few milliseconds share it instead. The writer
        // sleeps through that time rather than waiting on the queue, so an invoke's lines are
        // queued without waking it (a wake per line is a context switch per line on the
        // invoke's path). A flush (a read of the logs) or a stop ends the sleep at once.
        if !backlog && matches!(first, LogMessage::Event(_)) {
            let deadline = std::time::Instant::now() + LOG_LINGER;
            while !urgent.load(Ordering::Acquire) {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::park_timeout(left);
            }
        }
        urgent.store(false, Ordering::Relaxed);
        let mut waiters = Vec::new();
        let mut stop = false;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                LogMessage::Event(event) => batch.push(event),
                LogMessage::Flush(done) => waiters.push(done),
                LogMessage::Stop => stop = true,
            }
            if batch.len() < LOG_BATCH && !stop {
                next = rx.try_recv().ok();
            }
        }
        backlog = batch.len() >= LOG_BATCH;
        if !batch.is_empty() {
            if let Err(error) = insert_log_batch(&mut conn, &batch) {
                tracing::warn!(%error, lines = batch.len(), "failed to store log lines");
            }
            batch.clear();
        }
        for done in waiters {
            let _ = done.send(());
        }
        if stop {
            break;
        }
    }
}

fn insert_log_batch(conn: &mut Connection, batch: &[LogEvent]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO log_events (log_group, log_stream, tenant, timestamp, message)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for event in batch {
            stmt.execute(params![
                event.log_group,
                event.log_stream,
                event.tenant,
                event.timestamp_ms,
                event.message
            ])?;
        }
    }
    tx.commit()
}
