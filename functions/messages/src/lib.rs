//! The routes of the `messages` function: constituents write to their state's congressional
//! offices, and the state's staff read the inbox.
//!
//! - `POST /messages` (public, the state from the `x-tenant-id` header): a JSON body with
//!   `name`, `email`, `district`, `subject` and `body`, validated and size-limited; answers 201
//!   `{state, message: {id, received, ...}}`.
//! - `GET /messages?limit=20&next=...` (staff, the state from the token authorizer): the inbox,
//!   newest first, `{state, messages: [...], next}`; `next` is an opaque token for the next page.
//!
//! Messages are stored one partition per state (the invoke's tenant, never the request's), under
//! sort keys that order them by arrival, so the inbox is one `Query` read backwards.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use represent::{ApiError, TenantData};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub mod store;

pub use store::{DynamoMessages, MessageStore, StoreError};

/// Environment variable holding the messages table's physical name, set by the deployer.
pub const MESSAGES_TABLE_VAR: &str = "MESSAGES_TABLE";
/// The largest request body `POST /messages` accepts, in bytes; larger ones are 413.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Per-field limits, in characters.
pub const MAX_NAME: usize = 100;
pub const MAX_EMAIL: usize = 254;
pub const MAX_SUBJECT: usize = 200;
pub const MAX_BODY: usize = 10_000;
/// The page size of `GET /messages` without `limit`, and the largest one allowed.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// What a constituent sends. Unknown fields are refused, so a misspelt field is an error rather
/// than a message silently missing it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMessage {
    name: Option<String>,
    email: Option<String>,
    district: Option<Value>,
    subject: Option<String>,
    body: Option<String>,
}

/// A stored message, as the inbox shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `{received:013}-{uuid}`: unique, and ordered by arrival.
    pub id: String,
    /// Arrival time, milliseconds since the Unix epoch.
    pub received: u64,
    pub name: String,
    pub email: String,
    /// The congressional district (`0` is an at-large seat).
    pub district: u32,
    pub subject: String,
    pub body: String,
}

/// One page of a state's inbox, newest first; `next` is the id of the last message when more
/// may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub messages: Vec<Message>,
    pub next: Option<String>,
}

/// A request as the routes see it, whichever shape it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Checks a constituent's message against the state it is sent to: every field present and
/// within its limit, an email of the form `local@domain.tld`, and a district of this state.
pub fn validate(
    raw: &[u8],
    state: &TenantData,
    id: String,
    received: u64,
) -> Result<Message, ApiError> {
    if raw.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::new(
            413,
            format!(
                "the message is {} bytes; the limit is {MAX_REQUEST_BYTES} bytes",
                raw.len()
            ),
        ));
    }
    let new: NewMessage = serde_json::from_slice(raw).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be a JSON object with name, email, district, subject and body: {e}"
        ))
    })?;
    let mut problems = Vec::new();
    let name = text_field("name", new.name, MAX_NAME, &mut problems);
    let email = text_field("email", new.email, MAX_EMAIL, &mut problems);
    let subject = text_field("subject", new.subject, MAX_SUBJECT, &mut problems);
    let body = text_field("body", new.body, MAX_BODY, &mut problems);
    if !email.is_empty() && !is_email(&email) {
        problems.push(format!(
            "email {email:?} is not an address of the form name@example.org"
        ));
    }
    let district = match new.district.as_ref().map(district_number) {
        None => {
            problems.push("district is required".to_string());
            0
        }
        Some(None) => {
            problems.push(format!(
                "district must be a district number such as 7 (0 for an at-large seat), got {}",
                new.district.unwrap_or_default()
            ));
            0
        }
        Some(Some(d)) if state.seat(d).is_none() => {
            let mut seats: Vec<u32> = state.file().seats.iter().map(|s| s.district).collect();
            seats.sort_unstable();
            let range = match (seats.first(), seats.last()) {
                (Some(0), _) => "its only seat is at-large, district 0".to_string(),
                (Some(first), Some(last)) => format!("its districts are {first} to {last}"),
                _ => "it has no House seat".to_string(),
            };
            problems.push(format!("{} has no district {d}: {range}", state.name()));
            0
        }
        Some(Some(d)) => d,
    };
    if !problems.is_empty() {
        return Err(ApiError::bad_request(format!(
            "invalid message: {}",
            problems.join("; ")
        )));
    }
    Ok(Message {
        id,
        received,
        name,
        email,
        district,
        subject,
        body,
    })
}

/// A required text field, trimmed; a problem is recorded when it is missing, empty or too long.
fn text_field(
    field: &str,
    value: Option<String>,
    max: usize,
    problems: &mut Vec<String>,
) -> String {
    let value = value.map(|v| v.trim().to_string()).unwrap_or_default();
    let length = value.chars().count();
    if value.is_empty() {
        problems.push(format!("{field} is required"));
    } else if length > max {
        problems.push(format!(
            "{field} is {length} characters; the limit is {max}"
        ));
    }
    value
}

/// `7`, `"7"` and `"at-large"` (0) name a district.
fn district_number(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) if s.eq_ignore_ascii_case("at-large") => Some(0),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.is_empty()
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
        && labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'))
}

/// The opaque `next` token of a page: the id of its last message, base64url-encoded. It names a
/// place in the inbox only: the partition always comes from the invoke's tenant.
pub fn encode_next(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// The message id a `next` token stands for, if it is one this function made.
pub fn decode_next(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let id = String::from_utf8(bytes).ok()?;
    is_message_id(&id).then_some(id)
}

/// A new message id: the arrival time, zero-padded so ids sort by it, and a random part.
pub fn message_id(received: u64, random: &str) -> String {
    format!("{received:013}-{random}")
}

/// Whether `id` has the shape [`message_id`] gives.
pub fn is_message_id(id: &str) -> bool {
    let Some((time, random)) = id.split_once('-') else {
        return false;
    };
    time.len() == 13
        && time.bytes().all(|b| b.is_ascii_digit())
        && !random.is_empty()
        && random.len() <= 64
        && random.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// The state's page size and starting point from the query string.
fn page_request(request: &Request) -> Result<(u32, Option<String>), ApiError> {
    let limit = match request.param("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be a number from 1 to {MAX_LIMIT}, got {text:?}"
                )));
            }
        },
    };
    let after = match request.param("next") {
        None => None,
        Some(token) => Some(decode_next(token).ok_or_else(|| {
            ApiError::bad_request(
                "next is not a token this inbox gave: pass the `next` of the previous page as is",
            )
        })?),
    };
    Ok((limit, after))
}

/// Answers one request for `state`, the invoke's tenant. `now` and `random` make the new
/// message's id, so tests can choose them.
pub async fn route<S: MessageStore>(
    request: &Request,
    state: &TenantData,
    store: &S,
    now: u64,
    random: &str,
) -> Result<(u16, Value), ApiError> {
    let state_json = represent::state_json(state);
    if request.path != "/messages" {
        return Err(ApiError::not_found(format!(
            "no route for `{}`: this function answers /messages",
            request.path
        )));
    }
    match request.method.as_str() {
        "POST" => {
            let message = validate(&request.body, state, message_id(now, random), now)?;
            store.put(state.id(), &message).await.map_err(|e| {
                tracing::error!(tenantId = state.id(), error = %e, "failed to store a message");
                ApiError::new(500, "the message could not be stored; please try again")
            })?;
            Ok((201, json!({"state": state_json, "message": message})))
        }
        "GET" | "HEAD" => {
            let (limit, after) = page_request(request)?;
            let page = store
                .page(state.id(), limit, after.as_deref())
                .await
                .map_err(|e| {
                    tracing::error!(tenantId = state.id(), error = %e, "failed to read the inbox");
                    ApiError::new(500, "the inbox could not be read; please try again")
                })?;
            Ok((
                200,
                json!({
                    "state": state_json,
                    "messages": page.messages,
                    "next": page.next.as_deref().map(encode_next),
                }),
            ))
        }
        other => Err(ApiError::new(
            405,
            format!("method {other} is not allowed on /messages: use POST to write, GET to read"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use represent::tenant::TenantFile;

    use super::*;

    fn state(id: &str) -> TenantData {
        let path = format!("{}/../../tenants/{id}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("committed tenant file");
        TenantData::new(serde_json::from_str::<TenantFile>(&text).expect("parses"))
    }

    /// Messages in memory, by (state, id).
    #[derive(Default)]
    struct Memory(Mutex<Vec<(String, Message)>>);

    impl MessageStore for Memory {
        async fn put(&self, tenant: &str, message: &Message) -> Result<(), StoreError> {
            self.0
                .lock()
                .unwrap()
                .push((tenant.to_string(), message.clone()));
            Ok(())
        }

        async fn page(
            &self,
            tenant: &str,
            limit: u32,
            after: Option<&str>,
        ) -> Result<Page, StoreError> {
            let mut mine: Vec<Message> = self
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, m)| t == tenant && after.is_none_or(|a| m.id.as_str() < a))
                .map(|(_, m)| m.clone())
                .collect();
            mine.sort_by(|a, b| b.id.cmp(&a.id));
            let more = mine.len() > limit as usize;
            mine.truncate(limit as usize);
            let next = more.then(|| mine.last().map(|m| m.id.clone())).flatten();
            Ok(Page {
                messages: mine,
                next,
            })
        }
    }

    fn post(body: Value) -> Request {
        Request {
            method: "POST".into(),
            path: "/messages".into(),
            query: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    fn get(query: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            path: "/messages".into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
        }
    }

    fn letter(subject: &str) -> Value {
        json!({"name": "Ada", "email": "ada@example.org", "district": 7,
               "subject": subject, "body": "Please fund the library."})
    }

    #[tokio::test]
    async fn a_valid_message_is_stored_in_its_state_and_read_back_newest_first() {
        let tx = state("TX");
        let store = Memory::default();
        for (i, subject) in ["first", "second", "third"].iter().enumerate() {
            let (status, answer) =
                route(&post(letter(subject)), &tx, &store, 1_000 + i as u64, "a1")
                    .await
                    .expect("accepted");
            assert_eq!(status, 201);
            assert_eq!(answer["message"]["subject"], *subject);
        }
        let (_, page) = route(&get(&[("limit", "2")]), &tx, &store, 0, "")
            .await
            .expect("inbox");
        let subjects: Vec<&Value> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["subject"])
            .collect();
        assert_eq!(subjects, [&json!("third"), &json!("second")]);
        let next = page["next"].as_str().expect("a next token").to_string();
        let (_, last) = route(&get(&[("next", &next)]), &tx, &store, 0, "")
            .await
            .expect("second page");
        assert_eq!(last["messages"].as_array().unwrap().len(), 1);
        assert_eq!(last["messages"][0]["subject"], "first");
        assert_eq!(last["next"], Value::Null);
        // Another state's inbox is empty whatever the token.
        let (_, ca) = route(&get(&[("next", &next)]), &state("CA"), &store, 0, "")
            .await
            .expect("CA inbox");
        assert_eq!(ca["messages"], json!([]));
    }

    #[tokio::test]
    async fn invalid_messages_get_every_problem_in_one_answer() {
        let tx = state("TX");
        let store = Memory::default();
        let error = route(
            &post(
                json!({"name": " ", "email": "not-an-address", "district": 99,
                         "subject": "x".repeat(MAX_SUBJECT + 1), "body": "hi"}),
            ),
            &tx,
            &store,
            1,
            "a",
        )
        .await
        .unwrap_err();
        assert_eq!(error.status, 400);
        for part in [
            "name is required",
            "not an address",
            "Texas has no district 99",
            "subject is 201 characters",
        ] {
            assert!(error.message.contains(part), "{part}: {}", error.message);
        }
        let error = route(&post(json!({"nmae": "Ada"})), &tx, &store, 1, "a")
            .await
            .unwrap_err();
        assert!(error.message.contains("nmae"), "{}", error.message);
        let huge = letter(&"y".repeat(MAX_REQUEST_BYTES));
        let error = route(&post(huge), &tx, &store, 1, "a").await.unwrap_err();
        assert_eq!(error.status, 413);
        assert!(
            store.0.lock().unwrap().is_empty(),
            "nothing refused is stored"
        );
    }

    #[test]
    fn at_large_states_take_district_zero() {
        let wy = state("WY");
        let mut body = letter("s");
        body["district"] = json!("at-large");
        let message = validate(
            body.to_string().as_bytes(),
            &wy,
            "0000000000001-a".into(),
            1,
        )
        .expect("at-large is district 0");
        assert_eq!(message.district, 0);
        body["district"] = json!(1);
        let error = validate(
            body.to_string().as_bytes(),
            &wy,
            "0000000000001-a".into(),
            1,
        )
        .unwrap_err();
        assert!(error.message.contains("at-large"), "{}", error.message);
    }

    #[tokio::test]
    async fn a_next_token_that_was_not_given_is_refused() {
        let store = Memory::default();
        for token in ["", "not base64!", &URL_SAFE_NO_PAD.encode("TX#1")] {
            let error = route(&get(&[("next", token)]), &state("TX"), &store, 0, "")
                .await
                .unwrap_err();
            assert_eq!(error.status, 400, "{token}");
        }
        let error = route(&get(&[("limit", "0")]), &state("TX"), &store, 0, "")
            .await
            .unwrap_err();
        assert!(error.message.contains("limit"), "{}", error.message);
    }

    #[test]
    fn addresses_are_checked_for_their_shape() {
        assert!(is_email("a.b+c@mail.example.org"));
        for bad in [
            "a@b",
            "@b.org",
            "a b@c.org",
            "a@b..org",
            "a@@b.org",
            "a@b.org@c.org",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
