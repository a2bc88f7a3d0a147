//! IAM's Query protocol (form-encoded `POST /` with `Action=...`), for the roles a deployer
//! creates: role lifecycle, tags, attached managed policies and inline policies, answered in the
//! XML the IAM SDK parses and validated the way IAM validates.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::clock;
use crate::server::AppState;
use crate::store::{self, StoreError, StoredRole};

const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// One IAM error, rendered as an `<ErrorResponse>`.
#[derive(Debug)]
pub struct IamError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IamError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> IamError {
        IamError {
            status,
            code,
            message: message.into(),
        }
    }

    fn no_such_role(name: &str) -> IamError {
        IamError::new(
            StatusCode::NOT_FOUND,
            "NoSuchEntity",
            format!("The role with name {name} cannot be found."),
        )
    }

    fn validation(message: impl Into<String>) -> IamError {
        IamError::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }
}

impl From<StoreError> for IamError {
    fn from(error: StoreError) -> IamError {
        tracing::error!(%error, "state database failure");
        IamError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceFailure",
            error.to_string(),
        )
    }
}

impl IntoResponse for IamError {
    fn into_response(self) -> Response {
        query_error(XMLNS, self.status, self.code, &self.message)
    }
}

/// The error answer of a Query-protocol service (IAM, STS) in namespace `xmlns`.
pub(crate) fn query_error(xmlns: &str, status: StatusCode, code: &str, message: &str) -> Response {
    let kind = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<ErrorResponse xmlns=\"{xmlns}\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(message),
        uuid::Uuid::new_v4()
    );
    xml_response(status, body)
}

/// An XML answer of a Query-protocol service.
pub(crate) fn xml_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

/// XML text escaping for element content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a policy document the way IAM returns it (RFC 3986: only unreserved
/// characters stay as they are), so any URL decoder restores it exactly.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `<{Action}Response><{Action}Result>{result}</...Result><ResponseMetadata>...`.
fn ok(action: &str, result: Option<String>) -> Response {
    let result = match result {
        Some(inner) => format!("<{action}Result>{inner}</{action}Result>"),
        None => String::new(),
    };
    xml_response(
        StatusCode::OK,
        format!(
            "<{action}Response xmlns=\"{XMLNS}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            uuid::Uuid::new_v4()
        ),
    )
}

type Params = HashMap<String, String>;

/// Handles one form-encoded IAM request body.
pub async fn handle(app: Arc<AppState>, body: &[u8]) -> Response {
    let params: Params = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let action = params.get("Action").cloned().unwrap_or_default();
    let result = match action.as_str() {
        "CreateRole" => create_role(&app, &params).await,
        "GetRole" => get_role(&app, &params).await,
        "DeleteRole" => delete_role(&app, &params).await,
        "TagRole" => tag_role(&app, &params).await,
        "UntagRole" => untag_role(&app, &params).await,
        "ListRoleTags" => list_role_tags(&app, &params).await,
        "ListRoles" => list_roles(&app, &params).await,
        "AttachRolePolicy" => attach_role_policy(&app, &params).await,
        "DetachRolePolicy" => detach_role_policy(&app, &params).await,
        "ListAttachedRolePolicies" => list_attached_role_policies(&app, &params).await,
        "PutRolePolicy" => put_role_policy(&app, &params).await,
        "GetRolePolicy" => get_role_policy(&app, &params).await,
        "DeleteRolePolicy" => delete_role_policy(&app, &params).await,
        "ListRolePolicies" => list_role_policies(&app, &params).await,
        "UpdateAssumeRolePolicy" => update_assume_role_policy(&app, &params).await,
        other => Err(IamError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("Could not find operation {other} for version 2010-05-08"),
        )),
    };
    match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn required<'a>(params: &'a Params, key: &str, field: &str) -> Result<&'a str, IamError> {
    params.get(key).map(String::as_str).ok_or_else(|| {
        IamError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// `[\w+=,.@-]{1,N}`, IAM's pattern for role and policy names.
fn check_name(value: &str, field: &str, max: usize) -> Result<(), IamError> {
    let ok = (1..=max).contains(&value.chars().count())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(IamError::validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length between 1 and {max}"
        )))
    }
}

fn role_name(params: &Params) -> Result<&str, IamError> {
    let name = required(params, "RoleName", "roleName")?;
    check_name(name, "roleName", 64)?;
    Ok(name)
}

fn check_policy_document(document: &str) -> Result<(), IamError> {
    match serde_json::from_str::<serde_json::Value>(document) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(IamError::new(
            StatusCode::BAD_REQUEST,
            "MalformedPolicyDocument",
            "This policy contains invalid Json",
        )),
    }
}

/// IAM's most tags on a role, and most keys in one UntagRole.
const MAX_TAGS: usize = 50;

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`: the characters IAM allows in tag keys and values.
fn is_tag_text(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

const TAG_PATTERN: &str =
    "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+";

/// `Tags.member.N.Key` / `Tags.member.N.Value` pairs, in N order, checked as IAM checks them:
/// at most 50, keys of 1 to 128 and values of at most 256 allowed characters, and no key twice
/// (keys are case-insensitive).
fn tags_param(params: &Params, prefix: &str) -> Result<Vec<(String, String)>, IamError> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for n in 1.. {
        let Some(key) = params.get(&format!("{prefix}.member.{n}.Key")) else {
            break;
        };
        let value = params
            .get(&format!("{prefix}.member.{n}.Value"))
            .cloned()
            .unwrap_or_default();
        let constraint = |value: &str, field: &str, constraint: &str| {
            IamError::validation(format!(
                "1 validation error detected: Value '{value}' at 'tags.{n}.member.{field}' failed to satisfy constraint: {constraint}"
            ))
        };
        if key.is_empty() {
            return Err(constraint(
                key,
                "key",
                "Member must have length greater than or equal to 1",
            ));
        }
        if key.chars().count() > 128 {
            return Err(constraint(
                key,
                "key",
                "Member must have length less than or equal to 128",
            ));
        }
        if !is_tag_text(key) {
            return Err(constraint(key, "key", TAG_PATTERN));
        }
        if value.chars().count() > 256 {
            return Err(constraint(
                &value,
                "value",
                "Member must have length less than or equal to 256",
            ));
        }
        if !is_tag_text(&value) {
            return Err(constraint(
                &value,
                "value",
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
            ));
        }
        tags.push((key.clone(), value));
    }
    if tags.len() > MAX_TAGS {
        let rendered: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        return Err(IamError::validation(format!(
            "1 validation error detected: Value '[{}]' at 'tags' failed to satisfy constraint: Member must have length less than or equal to {MAX_TAGS}",
            rendered.join(", ")
        )));
    }
    for (i, (key, _)) in tags.iter().enumerate() {
        if tags[..i].iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return Err(IamError::new(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
    }
    Ok(tags)
}

/// IAM's `MaxItems` (1 to 1000, 100 by default) and `Marker` (here, the offset of the next
/// item) of a listing.
fn paging(params: &Params) -> Result<(usize, usize), IamError> {
    let max_items = match params.get("MaxItems") {
        None => 100,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n as usize,
            Ok(n) if n < 1 => {
                return Err(IamError::validation(format!(
                    "1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1"
                )));
            }
            _ => {
                return Err(IamError::validation(format!(
                    "1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 1000"
                )));
            }
        },
    };
    let start = match params.get("Marker") {
        None => 0,
        Some(marker) => marker
            .parse::<usize>()
            .map_err(|_| IamError::validation("Invalid Marker."))?,
    };
    Ok((max_items, start))
}

/// One page of `items` and its `IsTruncated`/`Marker` trailer.
fn page<T>(items: &[T], (max_items, start): (usize, usize)) -> (&[T], String) {
    let start = start.min(items.len());
    let end = (start + max_items).min(items.len());
    let trailer = if end < items.len() {
        format!("<IsTruncated>true</IsTruncated><Marker>{end}</Marker>")
    } else {
        "<IsTruncated>false</IsTruncated>".to_string()
    };
    (&items[start..end], trailer)
}

fn tags_xml(tags: &[(String, String)]) -> String {
    let mut out = String::from("<Tags>");
    for (key, value) in tags {
        let _ = write!(
            out,
            "<member><Key>{}</Key><Value>{}</Value></member>",
            escape(key),
            escape(value)
        );
    }
    out.push_str("</Tags>");
    out
}

fn role_xml(role: &StoredRole) -> String {
    let mut out = format!(
        "<Role><Path>{}</Path><RoleName>{}</RoleName><RoleId>{}</RoleId><Arn>{}</Arn><CreateDate>{}</CreateDate><AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument>",
        escape(&role.path),
        escape(&role.name),
        escape(&role.role_id),
        escape(&role.arn),
        escape(&role.create_date),
        url_encode(&role.assume_role_policy),
    );
    if let Some(description) = &role.description {
        let _ = write!(out, "<Description>{}</Description>", escape(description));
    }
    let _ = write!(
        out,
        "<MaxSessionDuration>{}</MaxSessionDuration>",
        role.max_session_duration
    );
    if !role.tags.is_empty() {
        out.push_str(&tags_xml(&role.tags));
    }
    out.push_str("<RoleLastUsed/></Role>");
    out
}

/// A role id in IAM's shape: `AROA` and 17 upper-case letters and digits.
fn new_role_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let random = uuid::Uuid::new_v4().as_u128();
    let suffix: String = (0..17)
        .map(|i| ALPHABET[((random >> (i * 5)) & 31) as usize] as char)
        .collect();
    format!("AROA{suffix}")
}

async fn existing_role(app: &AppState, name: &str) -> Result<StoredRole, IamError> {
    let lookup = name.to_string();
    app.store
        .call(move |conn| store::get_role(conn, &lookup))
        .await?
        .ok_or_else(|| IamError::no_such_role(name))
}

async fn create_role(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let name = role_name(params)?.to_string();
    let document = required(
        params,
        "AssumeRolePolicyDocument",
        "assumeRolePolicyDocument",
    )?;
    let path = params.get("Path").cloned().unwrap_or_else(|| "/".into());
    let path_ok = path == "/"
        || (path.len() <= 512
            && path.starts_with('/')
            && path.ends_with('/')
            && path.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    if !path_ok {
        return Err(IamError::validation(format!(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters. Value: {path}"
        )));
    }
    let description = params.get("Description").cloned();
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 1000)
    {
        return Err(IamError::validation(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000",
        ));
    }
    let max_session_duration = match params.get("MaxSessionDuration") {
        None => 3600,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (3600..=43_200).contains(&n) => n,
            _ => {
                return Err(IamError::validation(format!(
                    "1 validation error detected: Value '{raw}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"
                )));
            }
        },
    };
    check_policy_document(document)?;
    let tags = tags_param(params, "Tags")?;
    let role = StoredRole {
        arn: format!("arn:aws:iam::{}:role{path}{name}", app.config.account_id),
        name: name.clone(),
        role_id: new_role_id(),
        path,
        assume_role_policy: document.to_string(),
        description,
        max_session_duration,
        create_date: clock::iso8601(clock::now_millis()),
        tags,
    };
    let inserted = role.clone();
    let created = app
        .store
        .call(move |conn| {
            if store::get_role(conn, &inserted.name)?.is_some() {
                return Ok(false);
            }
            store::insert_role(conn, &inserted)?;
            Ok(true)
        })
        .await?;
    if !created {
        return Err(IamError::new(
            StatusCode::CONFLICT,
            "EntityAlreadyExists",
            format!("Role with name {name} already exists."),
        ));
    }
    Ok(ok("CreateRole", Some(role_xml(&role))))
}

async fn get_role(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let role = existing_role(app, role_name(params)?).await?;
    Ok(ok("GetRole", Some(role_xml(&role))))
}

async fn delete_role(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let name = role_name(params)?;
    let role = existing_role(app, name).await?;
    let stored = role.name.clone();
    let outcome = app
        .store
        .call(move |conn| {
            if !store::attached_policies(conn, &stored)?.is_empty() {
                return Ok(Some(
                    "Cannot delete entity, must detach all policies first.",
                ));
            }
            if !store::inline_policy_names(conn, &stored)?.is_empty() {
                return Ok(Some("Cannot delete entity, must delete policies first."));
            }
            store::delete_role(conn, &stored)?;
            Ok(None)
        })
        .await?;
    match outcome {
        Some(message) => Err(IamError::new(
            StatusCode::CONFLICT,
            "DeleteConflict",
            message,
        )),
        None => Ok(ok("DeleteRole", None)),
    }
}

async fn tag_role(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let name = role_name(params)?;
    let new_tags = tags_param(params, "Tags")?;
    let mut role = existing_role(app, name).await?;
    for (key, value) in new_tags {
        // IAM tag keys are case-insensitive: a retagged key replaces the old spelling.
        match role
            .tags
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(&key))
        {
            Some(existing) => *existing = (key, value),
            None => role.tags.push((key, value)),
        }
    }
    if role.tags.len() > MAX_TAGS {
        return Err(IamError::new(
            StatusCode::BAD_REQUEST,
            "LimitExceeded",
            "The number of tags has reached the maximum limit.",
        ));
    }
    app.store
        .call(move |conn| store::set_role_tags(conn, &role.name, &role.tags))
        .await?;
    Ok(ok("TagRole", None))
}

async fn untag_role(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let name = role_name(params)?;
    let mut keys = Vec::new();
    for n in 1.. {
        match params.get(&format!("TagKeys.member.{n}")) {
            Some(key) => keys.push(key.clone()),
            None => break,
        }
    }
    if keys.len() > MAX_TAGS {
        return Err(IamError::validation(format!(
            "1 validation error detected: Value '[{}]' at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to {MAX_TAGS}",
            keys.join(", ")
        )));
    }
    let mut role = existing_role(app, name).await?;
    role.tags
        .retain(|(k, _)| !keys.iter().any(|key| key.eq_ignore_ascii_case(k)));
    app.store
        .call(move |conn| store::set_role_tags(conn, &role.name, &role.tags))
        .await?;
    Ok(ok("UntagRole", None))
}

async fn list_role_tags(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let paging = paging(params)?;
    let role = existing_role(app, role_name(params)?).await?;
    let (tags, trailer) = page(&role.tags, paging);
    let mut xml = tags_xml(tags);
    xml.push_str(&trailer);
    Ok(ok("ListRoleTags", Some(xml)))
}

/// ListRoles, in name order, filtered by `PathPrefix`. As IAM's, the listing leaves out the
/// roles' tags.
async fn list_roles(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let paging = paging(params)?;
    let prefix = params
        .get("PathPrefix")
        .cloned()
        .unwrap_or_else(|| "/".into());
    if !prefix.starts_with('/') || prefix.len() > 512 {
        return Err(IamError::validation(format!(
            "1 validation error detected: Value '{prefix}' at 'pathPrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*"
        )));
    }
    let roles = app.store.call(|conn| store::list_roles(conn)).await?;
    let roles: Vec<StoredRole> = roles
        .into_iter()
        .filter(|r| r.path.starts_with(&prefix))
        .map(|mut r| {
            r.tags.clear();
            r
        })
        .collect();
    let (roles, trailer) = page(&roles, paging);
    let mut xml = String::from("<Roles>");
    for role in roles {
        let rendered = role_xml(role);
        let inner = rendered
            .strip_prefix("<Role>")
            .and_then(|r| r.strip_suffix("</Role>"))
            .unwrap_or(&rendered);
        let _ = write!(xml, "<member>{inner}</member>");
    }
    xml.push_str("</Roles>");
    xml.push_str(&trailer);
    Ok(ok("ListRoles", Some(xml)))
}

fn policy_arn(params: &Params) -> Result<&str, IamError> {
    let arn = required(params, "PolicyArn", "policyArn")?;
    let valid = arn
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":policy/"))
        .is_some_and(|(account, path)| {
            (account == "aws"
                || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())))
                && !path.is_empty()
        });
    if valid {
        Ok(arn)
    } else {
        Err(IamError::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!("ARN {arn} is not valid."),
        ))
    }
}

async fn attach_role_policy(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let name = role_name(params)?;
    let arn = policy_arn(params)?.to_string();
    let role = existing_role(app, name).await?;
    app.store
        .call(move |conn| store::attach_policy(conn, &role.name, &arn))
        .await?;
    Ok(ok("AttachRolePolicy", None))
}

async fn detach_role_policy(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let name = role_name(params)?;
    let arn = policy_arn(params)?.to_string();
    let role = existing_role(app, name).await?;
    let detached_arn = arn.clone();
    let detached = app
        .store
        .call(move |conn| store::detach_policy(conn, &role.name, &detached_arn))
        .await?;
    if detached {
        Ok(ok("DetachRolePolicy", None))
    } else {
        Err(IamError::new(
            StatusCode::NOT_FOUND,
            "NoSuchEntity",
            format!("Policy {arn} was not found."),
        ))
    }
}

async fn list_attached_role_policies(
    app: &AppState,
    params: &Params,
) -> Result<Response, IamError> {
    let role = existing_role(app, role_name(params)?).await?;
    let arns = app
        .store
        .call(move |conn| store::attached_policies(conn, &role.name))
        .await?;
    let mut out = String::from("<AttachedPolicies>");
    for arn in &arns {
        let policy_name = arn.rsplit('/').next().unwrap_or(arn);
        let _ = write!(
            out,
            "<member><PolicyName>{}</PolicyName><PolicyArn>{}</PolicyArn></member>",
            escape(policy_name),
            escape(arn)
        );
    }
    out.push_str("</AttachedPolicies><IsTruncated>false</IsTruncated>");
    Ok(ok("ListAttachedRolePolicies", Some(out)))
}

fn policy_name(params: &Params) -> Result<&str, IamError> {
    let name = required(params, "PolicyName", "policyName")?;
    check_name(name, "policyName", 128)?;
    Ok(name)
}

async fn put_role_policy(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let name = role_name(params)?;
    let policy = policy_name(params)?.to_string();
    let document = required(params, "PolicyDocument", "policyDocument")?.to_string();
    check_policy_document(&document)?;
    let role = existing_role(app, name).await?;
    app.store
        .call(move |conn| store::put_inline_policy(conn, &role.name, &policy, &document))
        .await?;
    Ok(ok("PutRolePolicy", None))
}

fn no_such_policy(policy: &str) -> IamError {
    IamError::new(
        StatusCode::NOT_FOUND,
        "NoSuchEntity",
        format!("The role policy with name {policy} cannot be found."),
    )
}

async fn get_role_policy(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let name = role_name(params)?;
    let policy = policy_name(params)?.to_string();
    let role = existing_role(app, name).await?;
    let role_name = role.name.clone();
    let lookup = policy.clone();
    let document = app
        .store
        .call(move |conn| store::inline_policy(conn, &role_name, &lookup))
        .await?
        .ok_or_else(|| no_such_policy(&policy))?;
    Ok(ok(
        "GetRolePolicy",
        Some(format!(
            "<RoleName>{}</RoleName><PolicyName>{}</PolicyName><PolicyDocument>{}</PolicyDocument>",
            escape(&role.name),
            escape(&policy),
            url_encode(&document)
        )),
    ))
}

async fn delete_role_policy(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let name = role_name(params)?;
    let policy = policy_name(params)?.to_string();
    let role = existing_role(app, name).await?;
    let lookup = policy.clone();
    let deleted = app
        .store
        .call(move |conn| store::delete_inline_policy(conn, &role.name, &lookup))
        .await?;
    if deleted {
        Ok(ok("DeleteRolePolicy", None))
    } else {
        Err(no_such_policy(&policy))
    }
}

async fn update_assume_role_policy(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let name = role_name(params)?;
    let document = required(params, "PolicyDocument", "policyDocument")?.to_string();
    check_policy_document(&document)?;
    let role = existing_role(app, name).await?;
    app.store
        .call(move |conn| store::set_assume_role_policy(conn, &role.name, &document))
        .await?;
    Ok(ok("UpdateAssumeRolePolicy", None))
}

async fn list_role_policies(app: &AppState, params: &Params) -> Result<Response, IamError> {
    let role = existing_role(app, role_name(params)?).await?;
    let names = app
        .store
        .call(move |conn| store::inline_policy_names(conn, &role.name))
        .await?;
    let mut out = String::from("<PolicyNames>");
    for name in &names {
        let _ = write!(out, "<member>{}</member>", escape(name));
    }
    out.push_str("</PolicyNames><IsTruncated>false</IsTruncated>");
    Ok(ok("ListRolePolicies", Some(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_are_percent_encoded_like_iam() {
        assert_eq!(
            url_encode(r#"{"a": "b+c"}"#),
            "%7B%22a%22%3A%20%22b%2Bc%22%7D"
        );
    }

    #[test]
    fn role_ids_look_like_iam_role_ids() {
        let id = new_role_id();
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AROA"));
    }
}
