//! STS's Query protocol (`AssumeRole` with session tags, `GetCallerIdentity`), the temporary
//! credentials it mints, and principal attribution: every call's principal is found from the
//! access key id in its SigV4 `Authorization` header (signatures are not checked).
//!
//! A session (credentials from AssumeRole, or an execution environment's) is evaluated against
//! its role's policies; any other key is the developer's and is treated as the account's
//! administrator. Sessions are kept in the store, so AssumeRole credentials outlive a restart.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::iam::{escape, xml_response};
use crate::policy::{self, Caller, Context, Decision};
use crate::runtime::{CredentialSource, EnvCredentials};
use crate::server::AppState;
use crate::store::{self, Store, StoreError, StoredRole};

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// How long an execution environment's credentials last. Lambda refreshes them for running
/// environments; the emulator mints fresh ones for each new environment once a set is past
/// half its life.
const EXECUTION_SESSION_MS: i64 = 12 * 3600 * 1000;

/// A role session: the principal temporary credentials stand for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub account: String,
    pub role_name: String,
    pub role_arn: String,
    pub role_id: String,
    pub session_name: String,
    /// Session tags in the order given; keys are case-insensitive.
    pub tags: Vec<(String, String)>,
    /// Keys of the tags passed on to sessions this session assumes.
    pub transitive_tag_keys: Vec<String>,
    /// The inline session policy, which can only narrow the role's permissions.
    pub session_policy: Option<String>,
    pub expires_ms: i64,
}

impl Session {
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, the ARN IAM names in its errors.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            self.account, self.role_name, self.session_name
        )
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The request context of this session's calls: its principal tags.
    pub fn context(&self) -> Context {
        let mut ctx = Context::new();
        for (key, value) in &self.tags {
            ctx.set(&format!("aws:PrincipalTag/{key}"), vec![value.clone()]);
        }
        ctx.set("aws:PrincipalArn", vec![self.role_arn.clone()]);
        ctx.set(
            "aws:userid",
            vec![format!("{}:{}", self.role_id, self.session_name)],
        );
        ctx
    }
}

/// Who made a call.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The developer's own keys (or none): unrestricted, as an administrator's would be.
    Admin,
    Session(Arc<Session>),
}

/// The sessions the emulator knows, in memory in front of the store.
pub struct Sessions {
    store: Arc<Store>,
    account: String,
    /// Access key id -> its session, or `None` for a key known to be the developer's.
    known: Mutex<HashMap<String, Option<Arc<Session>>>>,
    /// (role ARN, function) -> the session execution environments of that function get.
    execution: Mutex<HashMap<(String, String), Arc<Session>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sessions {
    pub fn new(store: Arc<Store>, account: impl Into<String>) -> Sessions {
        Sessions {
            store,
            account: account.into(),
            known: Mutex::new(HashMap::new()),
            execution: Mutex::new(HashMap::new()),
        }
    }

    /// The principal of a request, from the access key id in its `Authorization` header.
    pub async fn principal(&self, headers: &HeaderMap) -> Result<Principal, StoreError> {
        let Some(key) = access_key_id(headers) else {
            return Ok(Principal::Admin);
        };
        let cached = lock(&self.known).get(&key).cloned();
        let session = match cached {
            Some(found) => found,
            None => {
                let lookup = key.clone();
                let found = self
                    .store
                    .call(move |conn| load_session(conn, &lookup))
                    .await?
                    .map(Arc::new);
                lock(&self.known).insert(key, found.clone());
                found
            }
        };
        Ok(session.map_or(Principal::Admin, Principal::Session))
    }

    async fn remember(&self, session: Session) -> Result<Arc<Session>, StoreError> {
        let stored = session.clone();
        self.store
            .call(move |conn| save_session(conn, &stored))
            .await?;
        let session = Arc::new(session);
        lock(&self.known).insert(session.access_key_id.clone(), Some(Arc::clone(&session)));
        Ok(session)
    }

    /// A session of `role` for the environments of `function`, reused while it has more than
    /// half its life left.
    async fn execution_session(&self, role_arn: &str, function: &str) -> Option<Arc<Session>> {
        let key = (role_arn.to_string(), function.to_string());
        let now = clock::now_millis();
        if let Some(session) = lock(&self.execution).get(&key)
            && session.expires_ms - now > EXECUTION_SESSION_MS / 2
        {
            return Some(Arc::clone(session));
        }
        let name = role_name_of(role_arn, &self.account)?.to_string();
        let role = self
            .store
            .call(move |conn| store::get_role(conn, &name))
            .await
            .ok()??;
        let session = mint(
            &self.account,
            &role,
            function,
            Vec::new(),
            Vec::new(),
            None,
            now + EXECUTION_SESSION_MS,
        );
        let session = self.remember(session).await.ok()?;
        lock(&self.execution).insert(key, Arc::clone(&session));
        Some(session)
    }
}

impl CredentialSource for Sessions {
    fn credentials<'a>(
        &'a self,
        role: &'a str,
        function: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<EnvCredentials>> + Send + 'a>>
    {
        Box::pin(async move {
            let session = self.execution_session(role, function).await?;
            Some(EnvCredentials {
                access_key_id: session.access_key_id.clone(),
                secret_access_key: session.secret_access_key.clone(),
                session_token: session.session_token.clone(),
            })
        })
    }
}

/// The access key id of a SigV4 `Authorization` header:
/// `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, ...`.
pub fn access_key_id(headers: &HeaderMap) -> Option<String> {
    credential_scope(headers).map(|(key, _)| key)
}

/// The access key id and service of a request's SigV4 credential scope.
pub fn credential_scope(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = value.split_once("Credential=")?.1;
    let credential = credential.split([',', ' ']).next()?;
    let mut parts = credential.split('/');
    let key = parts.next()?.to_string();
    let service = parts.nth(2)?.to_string();
    (!key.is_empty()).then_some((key, service))
}

/// Whether a form-encoded `POST /` is for STS rather than IAM: by the credential scope's
/// service, else by the action (both services share the Query protocol).
pub fn is_sts(headers: &HeaderMap, body: &[u8]) -> bool {
    if let Some((_, service)) = credential_scope(headers) {
        return service == "sts";
    }
    form_urlencoded::parse(body)
        .any(|(k, v)| k == "Action" && matches!(&*v, "AssumeRole" | "GetCallerIdentity"))
}

/// `arn:aws:iam::ACCOUNT:role/[path/]NAME` -> `NAME`, for this emulator's account.
fn role_name_of<'a>(arn: &'a str, account: &str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (arn_account, path) = rest.split_once(":role/")?;
    (arn_account == account).then(|| path.rsplit('/').next())?
}

fn random_text(alphabet: &[u8], len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let random = uuid::Uuid::new_v4().as_u128();
        for i in 0..(128 / 6) {
            if out.len() == len {
                break;
            }
            out.push(alphabet[((random >> (i * 6)) & 63) as usize % alphabet.len()] as char);
        }
    }
    out
}

fn mint(
    account: &str,
    role: &StoredRole,
    session_name: &str,
    tags: Vec<(String, String)>,
    transitive_tag_keys: Vec<String>,
    session_policy: Option<String>,
    expires_ms: i64,
) -> Session {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    Session {
        access_key_id: format!("ASIA{}", random_text(UPPER, 16)),
        secret_access_key: random_text(SECRET, 40),
        session_token: format!("IQoJb3JpZ2luX2Vj{}", random_text(SECRET, 300)),
        account: account.to_string(),
        role_name: role.name.clone(),
        role_arn: role.arn.clone(),
        role_id: role.role_id.clone(),
        session_name: session_name.to_string(),
        tags,
        transitive_tag_keys,
        session_policy,
        expires_ms,
    }
}

pub fn save_session(conn: &Connection, session: &Session) -> Result<(), StoreError> {
    let text = serde_json::to_string(session).map_err(|source| StoreError::Encode {
        what: "STS session",
        name: session.access_key_id.clone(),
        source,
    })?;
    conn.execute(
        "INSERT OR REPLACE INTO sts_sessions (access_key_id, session, expires_ms)
         VALUES (?1, ?2, ?3)",
        params![session.access_key_id, text, session.expires_ms],
    )?;
    Ok(())
}

pub fn load_session(conn: &Connection, key: &str) -> Result<Option<Session>, StoreError> {
    let text: Option<String> = conn
        .query_row(
            "SELECT session FROM sts_sessions WHERE access_key_id = ?1",
            [key],
            |row| row.get(0),
        )
        .optional()?;
    text.map(|text| {
        serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
            what: "STS session",
            name: key.to_string(),
            source,
        })
    })
    .transpose()
}

/// The identity-based policies of a role: its inline documents and the attached AWS managed
/// policies the emulator knows. Documents that do not parse grant nothing.
pub fn identity_policies(
    conn: &Connection,
    role: &str,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let mut documents = Vec::new();
    for name in store::inline_policy_names(conn, role)? {
        if let Some(text) = store::inline_policy(conn, role, &name)?
            && let Ok(doc) = serde_json::from_str(&text)
        {
            documents.push(doc);
        }
    }
    for arn in store::attached_policies(conn, role)? {
        if let Some(text) = policy::managed_policy(&arn)
            && let Ok(doc) = serde_json::from_str(text)
        {
            documents.push(doc);
        }
    }
    Ok(documents)
}

/// What a session may do: its role's policies, narrowed by its session policy.
#[derive(Debug)]
pub struct Permissions {
    identity: Vec<serde_json::Value>,
    session: Option<serde_json::Value>,
}

impl Permissions {
    pub fn load(conn: &Connection, session: &Session) -> Result<Permissions, StoreError> {
        Ok(Permissions {
            identity: identity_policies(conn, &session.role_name)?,
            session: session
                .session_policy
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
        })
    }

    /// The decision and, when denied, the end of IAM's sentence saying why.
    pub fn decide(&self, action: &str, resource: &str, ctx: &Context) -> (Decision, &'static str) {
        match policy::evaluate(&self.identity, action, resource, ctx) {
            Decision::ExplicitDeny => (
                Decision::ExplicitDeny,
                "with an explicit deny in an identity-based policy",
            ),
            Decision::ImplicitDeny => (
                Decision::ImplicitDeny,
                "because no identity-based policy allows the",
            ),
            Decision::Allow => match &self.session {
                None => (Decision::Allow, ""),
                Some(doc) => {
                    match policy::evaluate(std::slice::from_ref(doc), action, resource, ctx) {
                        Decision::Allow => (Decision::Allow, ""),
                        Decision::ExplicitDeny => (
                            Decision::ExplicitDeny,
                            "with an explicit deny in a session policy",
                        ),
                        Decision::ImplicitDeny => (
                            Decision::ImplicitDeny,
                            "because no session policy allows the",
                        ),
                    }
                }
            },
        }
    }
}

/// IAM's refusal sentence: `User: ARN is not authorized to perform: ACTION on resource: RES
/// because no identity-based policy allows the ACTION action` (or `with an explicit deny ...`).
pub fn denial_message(principal: &str, action: &str, resource: &str, why: &str) -> String {
    if why.ends_with(" the") {
        format!(
            "User: {principal} is not authorized to perform: {action} on resource: {resource} {why} {action} action"
        )
    } else {
        format!(
            "User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"
        )
    }
}

/// One STS error, rendered as an `<ErrorResponse>`.
#[derive(Debug)]
struct StsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl StsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> StsError {
        StsError {
            status,
            code,
            message: message.into(),
        }
    }

    fn access_denied(message: String) -> StsError {
        StsError::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    fn validation(message: impl Into<String>) -> StsError {
        StsError::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }
}

impl From<StoreError> for StsError {
    fn from(error: StoreError) -> StsError {
        tracing::error!(%error, "state database failure");
        StsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            error.to_string(),
        )
    }
}

impl IntoResponse for StsError {
    fn into_response(self) -> Response {
        crate::iam::query_error(XMLNS, self.status, self.code, &self.message)
    }
}

fn ok(action: &str, result: String) -> Response {
    xml_response(
        StatusCode::OK,
        format!(
            "<{action}Response xmlns=\"{XMLNS}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            uuid::Uuid::new_v4()
        ),
    )
}

type Params = HashMap<String, String>;

/// Handles one form-encoded STS request.
pub async fn handle(app: Arc<AppState>, headers: &HeaderMap, body: &[u8]) -> Response {
    let params: Params = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let action = params.get("Action").cloned().unwrap_or_default();
    let result = match app.sessions.principal(headers).await {
        Err(error) => Err(StsError::from(error)),
        Ok(Principal::Session(s)) if s.expires_ms <= clock::now_millis() => Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "ExpiredToken",
            "The security token included in the request is expired",
        )),
        Ok(caller) => match action.as_str() {
            "AssumeRole" => assume_role(&app, &caller, &params).await,
            "GetCallerIdentity" => Ok(caller_identity(&app, &caller)),
            other => Err(StsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!("Could not find operation {other} for version 2011-06-15"),
            )),
        },
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn caller_identity(app: &AppState, caller: &Principal) -> Response {
    let account = &app.config.account_id;
    let (arn, user_id) = match caller {
        Principal::Admin => (format!("arn:aws:iam::{account}:root"), account.clone()),
        Principal::Session(s) => (s.arn(), format!("{}:{}", s.role_id, s.session_name)),
    };
    ok(
        "GetCallerIdentity",
        format!(
            "<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>",
            escape(&arn),
            escape(&user_id),
            escape(account)
        ),
    )
}

fn required<'a>(params: &'a Params, key: &str, field: &str) -> Result<&'a str, StsError> {
    params.get(key).map(String::as_str).ok_or_else(|| {
        StsError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`: the characters STS allows in session tag keys and values.
fn is_tag_text(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// `Tags.member.N.Key`/`.Value` as STS checks them: at most 50, keys of 1 to 128 and values of
/// at most 256 allowed characters, no key twice (case-insensitive).
fn session_tags(params: &Params) -> Result<Vec<(String, String)>, StsError> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for n in 1.. {
        let Some(key) = params.get(&format!("Tags.member.{n}.Key")) else {
            break;
        };
        let value = params
            .get(&format!("Tags.member.{n}.Value"))
            .cloned()
            .unwrap_or_default();
        let bad = |value: &str, field: &str, constraint: &str| {
            StsError::validation(format!(
                "1 validation error detected: Value '{value}' at 'tags.{n}.member.{field}' failed to satisfy constraint: {constraint}"
            ))
        };
        if key.is_empty() || key.chars().count() > 128 {
            return Err(bad(key, "key", "Member must have length between 1 and 128"));
        }
        if !is_tag_text(key) {
            return Err(bad(
                key,
                "key",
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
            ));
        }
        if value.chars().count() > 256 {
            return Err(bad(
                &value,
                "value",
                "Member must have length less than or equal to 256",
            ));
        }
        if !is_tag_text(&value) {
            return Err(bad(
                &value,
                "value",
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
            ));
        }
        if tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return Err(StsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValue",
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
        tags.push((key.clone(), value));
    }
    if tags.len() > 50 {
        return Err(StsError::validation(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50",
        ));
    }
    Ok(tags)
}

async fn assume_role(
    app: &AppState,
    caller: &Principal,
    params: &Params,
) -> Result<Response, StsError> {
    let account = app.config.account_id.clone();
    let role_arn = required(params, "RoleArn", "roleArn")?.to_string();
    let session_name = required(params, "RoleSessionName", "roleSessionName")?.to_string();
    let name_ok = (2..=64).contains(&session_name.chars().count())
        && session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !name_ok {
        return Err(StsError::validation(format!(
            "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"
        )));
    }
    let mut tags = session_tags(params)?;
    let mut transitive: Vec<String> = (1..)
        .map_while(|n| {
            params
                .get(&format!("TransitiveTagKeys.member.{n}"))
                .cloned()
        })
        .collect();
    if let Some(key) = transitive
        .iter()
        .find(|k| !tags.iter().any(|(t, _)| t.eq_ignore_ascii_case(k)))
    {
        return Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValue",
            format!(
                "The specified transitive tag key must be included in the requested tags: {key}"
            ),
        ));
    }
    let session_policy = params.get("Policy").cloned();
    if let Some(doc) = &session_policy
        && serde_json::from_str::<serde_json::Value>(doc).is_err()
    {
        return Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "MalformedPolicyDocument",
            "The policy is not in the valid JSON format.",
        ));
    }

    // Tags a session marked transitive pass on to the sessions it assumes and cannot be
    // changed there.
    if let Principal::Session(parent) = caller {
        for key in &parent.transitive_tag_keys {
            let Some(value) = parent.tag(key) else {
                continue;
            };
            if tags.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
                return Err(StsError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValue",
                    format!(
                        "One of the specified transitive tag keys can't be set because it conflicts with a transitive tag key from the calling session: {key}"
                    ),
                ));
            }
            tags.push((key.clone(), value.to_string()));
            transitive.push(key.clone());
        }
    }

    let caller_arn = match caller {
        Principal::Admin => format!("arn:aws:iam::{account}:root"),
        Principal::Session(s) => s.arn(),
    };
    let denied = || {
        StsError::access_denied(format!(
            "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        ))
    };
    let Some(name) = role_name_of(&role_arn, &account) else {
        return Err(denied());
    };
    let lookup = name.to_string();
    let caller_session = match caller {
        Principal::Session(s) => Some(Arc::clone(s)),
        Principal::Admin => None,
    };
    let checked_tags = tags.clone();
    let checked_arn = role_arn.clone();
    let outcome = app
        .store
        .call(move |conn| {
            let Some(role) = store::get_role(conn, &lookup)? else {
                return Ok(None);
            };
            let Some(caller) = caller_session else {
                return Ok(Some((role, Ok(()))));
            };
            let allowed = may_assume(conn, &caller, &role, &checked_arn, &checked_tags)?;
            Ok(Some((role, allowed)))
        })
        .await?;
    let role = match outcome {
        None => return Err(denied()),
        Some((_, Err(action))) => {
            return Err(StsError::access_denied(format!(
                "User: {caller_arn} is not authorized to perform: {action} on resource: {role_arn}"
            )));
        }
        Some((role, Ok(()))) => role,
    };

    let duration = match params.get("DurationSeconds") {
        None => 3600,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (900..=43_200).contains(&n) => n,
            _ => {
                return Err(StsError::validation(format!(
                    "1 validation error detected: Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
                )));
            }
        },
    };
    if duration > role.max_session_duration {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    let expires_ms = clock::now_millis() + duration * 1000;
    let session = mint(
        &account,
        &role,
        &session_name,
        tags,
        transitive,
        session_policy,
        expires_ms,
    );
    let session = app.sessions.remember(session).await?;
    let mut out = String::new();
    let _ = write!(
        out,
        "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser><PackedPolicySize>{}</PackedPolicySize>",
        session.access_key_id,
        escape(&session.secret_access_key),
        escape(&session.session_token),
        clock::iso8601(session.expires_ms),
        escape(&format!("{}:{}", session.role_id, session.session_name)),
        escape(&session.arn()),
        session.tags.len().min(100),
    );
    Ok(ok("AssumeRole", out))
}

/// Whether a session may assume `role` with `tags`: the role's trust policy must name the
/// caller's role (or account) for `sts:AssumeRole`, and for `sts:TagSession` when tags are
/// given, and the caller's own policies must allow the same actions on the role. `Err` names
/// the action refused.
fn may_assume(
    conn: &Connection,
    caller: &Session,
    role: &StoredRole,
    role_arn: &str,
    tags: &[(String, String)],
) -> Result<Result<(), &'static str>, StoreError> {
    let trust: serde_json::Value =
        serde_json::from_str(&role.assume_role_policy).unwrap_or(serde_json::Value::Null);
    let mut ctx = caller.context();
    for (key, value) in tags {
        ctx.set(&format!("aws:RequestTag/{key}"), vec![value.clone()]);
    }
    ctx.set("aws:TagKeys", tags.iter().map(|(k, _)| k.clone()).collect());
    let session_arn = caller.arn();
    let who = Caller {
        role_arn: &caller.role_arn,
        session_arn: &session_arn,
        account: &caller.account,
    };
    let permissions = Permissions::load(conn, caller)?;
    let mut actions = vec!["sts:AssumeRole"];
    if !tags.is_empty() {
        actions.push("sts:TagSession");
    }
    for action in actions {
        if policy::evaluate_trust(&trust, action, &who, &ctx) != Decision::Allow {
            return Ok(Err(action));
        }
        if permissions.decide(action, role_arn, &ctx).0 != Decision::Allow {
            return Ok(Err(action));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_scope_names_key_and_service() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            axum::http::HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261201/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        assert_eq!(
            credential_scope(&headers),
            Some(("ASIAEXAMPLE".to_string(), "sts".to_string()))
        );
        assert!(is_sts(&headers, b"Action=GetRole"));
        assert!(is_sts(
            &HeaderMap::new(),
            b"Action=AssumeRole&Version=2011-06-15"
        ));
        assert!(!is_sts(
            &HeaderMap::new(),
            b"Action=GetRole&Version=2010-05-08"
        ));
    }

    #[test]
    fn role_names_come_from_arns_of_this_account() {
        let account = "000000000000";
        assert_eq!(
            role_name_of("arn:aws:iam::000000000000:role/app/x", account),
            Some("x")
        );
        assert_eq!(
            role_name_of("arn:aws:iam::111111111111:role/x", account),
            None
        );
    }
}
