//! Fault injection: answers a chosen share of control-plane calls the way AWS does on a bad day
//! (throttling in each service's own shape, 500 and 503, Lambda's 409 conflict, a dropped
//! connection, or "lost": the call is applied and its answer dropped), so a deployer's retries,
//! ambiguous creates and convergence can be exercised end to end through real SDK clients.
//!
//! A spec is a comma-separated list (`--faults` or `REPRESENT_EMULATOR_FAULTS`):
//!
//! - `0.2`: a fifth of every control-plane call fails with a transient fault of the default mix
//!   (throttle, 500, 503, conflict, drop);
//! - `lambda:*=0.2`, `apigateway:CreateRestApi=lost`, `iam:Create*=throttle@0.5`: a rule for the
//!   calls its `service:operation` pattern matches (`*` matches any run of characters); its
//!   value is a rate, a kind (always), or `kind@rate`;
//! - `kinds=throttle+lost`: the mix a plain rate draws from;
//! - `seed=7`: the seed the draws come from (0 by default).
//!
//! Rules with a pattern are tried in the order written, the bare rate last. The draw for a call
//! depends only on the seed, the request (method, path, body) and how many times that same
//! request came before, so a run is reproducible even when a client sends calls concurrently.
//! The emulator's own `/_emulator/` endpoints are never faulted, and function invokes (Lambda
//! Invoke and API Gateway's data plane) only by a rule naming the operation without a `*`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What a faulted call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The service's throttling error: Lambda and API Gateway 429 `TooManyRequestsException`,
    /// DynamoDB and CloudWatch Logs 400 `ThrottlingException`, IAM 400 `Throttling`.
    Throttle,
    /// 500 with the service's internal-error code.
    Internal,
    /// 503 `ServiceUnavailable`.
    Unavailable,
    /// Lambda's 409 `ResourceConflictException` (an update in progress) on a call that changes
    /// a function; throttling on reads and in other services.
    Conflict,
    /// The connection is dropped without an answer; nothing is applied.
    Drop,
    /// The call is applied, then the connection is dropped before its answer.
    Lost,
}

impl FaultKind {
    fn parse(text: &str) -> Option<FaultKind> {
        Some(match text {
            "throttle" => FaultKind::Throttle,
            "500" => FaultKind::Internal,
            "503" => FaultKind::Unavailable,
            "conflict" | "409" => FaultKind::Conflict,
            "drop" => FaultKind::Drop,
            "lost" => FaultKind::Lost,
            _ => return None,
        })
    }

    const MIX: [FaultKind; 5] = [
        FaultKind::Throttle,
        FaultKind::Internal,
        FaultKind::Unavailable,
        FaultKind::Conflict,
        FaultKind::Drop,
    ];
}

/// What a rule injects: one kind, or a draw from the spec's mix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Injects {
    Mix,
    Kind(FaultKind),
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    service: String,
    operation: String,
    rate: f64,
    injects: Injects,
}

/// A parsed fault spec (see the module docs for its grammar).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    rules: Vec<Rule>,
    mix: Vec<FaultKind>,
    seed: u64,
}

impl FaultSpec {
    /// Parses a spec such as `0.2,apigateway:CreateRestApi=lost,seed=3`; the error names the
    /// part that is wrong and what is accepted.
    pub fn parse(spec: &str) -> Result<FaultSpec, String> {
        let mut rules = Vec::new();
        let mut bare = None;
        let mut mix = FaultKind::MIX.to_vec();
        let mut seed = 0;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("seed", n)) => {
                    seed = n
                        .parse()
                        .map_err(|_| format!("fault seed `{n}` is not a whole number"))?;
                }
                Some(("kinds", kinds)) => {
                    mix = kinds
                        .split('+')
                        .map(|k| FaultKind::parse(k).ok_or_else(|| unknown_kind(k)))
                        .collect::<Result<_, _>>()?;
                }
                Some((pattern, value)) => {
                    let (service, operation) = pattern.split_once(':').ok_or_else(|| {
                        format!(
                            "fault pattern `{pattern}` is not `service:operation` (like `lambda:*`)"
                        )
                    })?;
                    let (rate, injects) = parse_value(value)?;
                    rules.push(Rule {
                        service: service.to_ascii_lowercase(),
                        operation: operation.to_string(),
                        rate,
                        injects,
                    });
                }
                None => {
                    let (rate, injects) = parse_value(part)?;
                    bare = Some(Rule {
                        service: "*".into(),
                        operation: "*".into(),
                        rate,
                        injects,
                    });
                }
            }
        }
        rules.extend(bare);
        if mix.is_empty() {
            return Err("fault kinds are empty; name at least one kind".into());
        }
        Ok(FaultSpec { rules, mix, seed })
    }

    /// The rule deciding a call, if any.
    fn rule(&self, call: &Call) -> Option<&Rule> {
        self.rules.iter().find(|r| {
            glob(&r.service, &call.service)
                && glob(&r.operation, &call.operation)
                && (!call.data_plane || r.operation == call.operation)
        })
    }
}

fn unknown_kind(kind: &str) -> String {
    format!("fault kind `{kind}` is unknown; use throttle, 500, 503, conflict, drop or lost")
}

fn parse_value(value: &str) -> Result<(f64, Injects), String> {
    let (kind, rate) = match value.split_once('@') {
        Some((kind, rate)) => (Some(kind), Some(rate)),
        None if value.parse::<f64>().is_ok() => (None, Some(value)),
        None => (Some(value), None),
    };
    let rate = match rate {
        Some(r) => r
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| format!("fault rate `{r}` is not a number from 0 to 1"))?,
        None => 1.0,
    };
    let injects = match kind {
        Some(k) => Injects::Kind(FaultKind::parse(k).ok_or_else(|| unknown_kind(k))?),
        None => Injects::Mix,
    };
    Ok((rate, injects))
}

/// `*` matches any run of characters; matching ignores ASCII case.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    let mut parts = p.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = t.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The fault layer's state: the spec and how often each distinct request was seen.
#[derive(Debug)]
pub struct Faults {
    spec: FaultSpec,
    seen: Mutex<HashMap<u64, u64>>,
}

impl Faults {
    pub fn new(spec: FaultSpec) -> Arc<Faults> {
        Arc::new(Faults {
            spec,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// The fault for this call, if the draw says so.
    fn draw(&self, call: &Call, request_hash: u64) -> Option<FaultKind> {
        let rule = self.spec.rule(call)?;
        let occurrence = {
            let mut seen = self.seen.lock().expect("fault counters");
            let n = seen.entry(request_hash).or_insert(0);
            *n += 1;
            *n
        };
        let bits = splitmix(self.spec.seed ^ splitmix(request_hash ^ splitmix(occurrence)));
        let unit = (bits >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= rule.rate {
            return None;
        }
        Some(match rule.injects {
            Injects::Kind(kind) => kind,
            Injects::Mix => self.spec.mix[(splitmix(bits) % self.spec.mix.len() as u64) as usize],
        })
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The service and operation a request calls.
#[derive(Debug, PartialEq, Eq)]
struct Call {
    service: String,
    operation: String,
    /// A function invoke (Lambda Invoke, API Gateway's data plane).
    data_plane: bool,
}

fn identify(method: &Method, path: &str, target: Option<&str>, body: &[u8]) -> Option<Call> {
    if path.starts_with("/_emulator/") {
        return None;
    }
    if let Some(target) = target {
        let (prefix, operation) = target.split_once('.')?;
        let service = match prefix {
            "DynamoDB_20120810" => "dynamodb".to_string(),
            "Logs_20140328" => "logs".to_string(),
            "AmazonSSM" => "ssm".to_string(),
            other => other
                .split('_')
                .next()
                .unwrap_or(other)
                .to_ascii_lowercase(),
        };
        return Some(call(&service, operation, false));
    }
    if method == Method::POST && path == "/" {
        let mut action = None;
        let mut version = None;
        for (k, v) in form_urlencoded::parse(body) {
            match k.as_ref() {
                "Action" => action = Some(v.into_owned()),
                "Version" => version = Some(v.into_owned()),
                _ => {}
            }
        }
        let service = if version.as_deref() == Some("2011-06-15") {
            "sts"
        } else {
            "iam"
        };
        return Some(call(service, &action?, false));
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["2015-03-31", "functions", rest @ ..] => Some(lambda_call(method, rest)),
        ["2017-03-31", "tags", ..] => {
            Some(call("lambda", tag_operation(method, "ListTags"), false))
        }
        ["restapis", rest @ ..] => Some(gateway_call(method, rest)),
        ["tags", ..] => Some(call("apigateway", tag_operation(method, "GetTags"), false)),
        _ => None,
    }
}

fn call(service: &str, operation: &str, data_plane: bool) -> Call {
    Call {
        service: service.to_string(),
        operation: operation.to_string(),
        data_plane,
    }
}

fn tag_operation(method: &Method, read: &'static str) -> &'static str {
    match *method {
        Method::GET => read,
        Method::DELETE => "UntagResource",
        _ => "TagResource",
    }
}

fn lambda_call(method: &Method, rest: &[&str]) -> Call {
    let m = method.clone();
    let operation = match (rest, m) {
        ([] | [""], Method::POST) => "CreateFunction",
        ([] | [""], _) => "ListFunctions",
        ([_], Method::DELETE) => "DeleteFunction",
        ([_], _) => "GetFunction",
        ([_, "configuration"], Method::GET) => "GetFunctionConfiguration",
        ([_, "configuration"], _) => "UpdateFunctionConfiguration",
        ([_, "code"], _) => "UpdateFunctionCode",
        ([_, "policy"], Method::POST) => "AddPermission",
        ([_, "policy"], _) => "GetPolicy",
        ([_, "policy", _], _) => "RemovePermission",
        ([_, "invocations"], _) => return call("lambda", "Invoke", true),
        _ => "Unknown",
    };
    call("lambda", operation, false)
}

/// API Gateway's operations follow its resource paths: `POST` on a collection creates one,
/// `GET` lists, and on one item `GET`, `PUT`, `PATCH` and `DELETE` get, put, update and delete it.
fn gateway_call(method: &Method, rest: &[&str]) -> Call {
    if rest.get(2) == Some(&"_user_request_") {
        return call("apigateway", "Invoke", true);
    }
    const NOUNS: &[(&str, &str, &str)] = &[
        ("restapis", "RestApi", "RestApis"),
        ("resources", "Resource", "Resources"),
        ("methods", "Method", "Methods"),
        ("integration", "Integration", "Integration"),
        ("deployments", "Deployment", "Deployments"),
        ("stages", "Stage", "Stages"),
        ("authorizers", "Authorizer", "Authorizers"),
        ("requestvalidators", "RequestValidator", "RequestValidators"),
        ("models", "Model", "Models"),
    ];
    let mut segments = vec!["restapis"];
    segments.extend_from_slice(rest);
    // The last noun decides; whether an id follows it says collection or item.
    let Some(at) = segments
        .iter()
        .rposition(|s| NOUNS.iter().any(|(n, _, _)| n == s))
    else {
        return call("apigateway", "Unknown", false);
    };
    let (_, one, many) = NOUNS
        .iter()
        .find(|(n, _, _)| *n == segments[at])
        .expect("found above");
    let item = at + 1 < segments.len() || *one == "Integration";
    let operation = match (method.clone(), item) {
        (Method::POST, false) => format!("Create{one}"),
        (Method::GET, false) => format!("Get{many}"),
        (Method::GET, true) => format!("Get{one}"),
        (Method::PUT, true) => format!("Put{one}"),
        (Method::PATCH, true) => format!("Update{one}"),
        (Method::DELETE, true) => format!("Delete{one}"),
        (Method::POST, true) if *one == "Resource" => "CreateResource".to_string(),
        _ => "Unknown".to_string(),
    };
    call("apigateway", &operation, false)
}

/// The router layer: decides each call's fault before (or, for `lost`, after) the handler.
pub async fn layer(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, crate::server::BODY_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let call = identify(&parts.method, parts.uri.path(), target, &body);
    let hash = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        parts.method.as_str().hash(&mut h);
        parts.uri.hash(&mut h);
        body.hash(&mut h);
        h.finish()
    };
    let fault = call.as_ref().and_then(|c| faults.draw(c, hash));
    let request = Request::from_parts(parts, Body::from(body));
    match (fault, call) {
        (None, _) | (_, None) => next.run(request).await,
        (Some(FaultKind::Lost), Some(_)) => {
            let _applied = next.run(request).await;
            dropped()
        }
        (Some(FaultKind::Drop), Some(_)) => dropped(),
        (Some(kind), Some(call)) => error(kind, &call),
    }
}

/// An answer whose body fails after its head: the connection is cut mid-answer, so the client
/// cannot know whether the call was applied.
fn dropped() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault injection dropped the connection",
        ))
    });
    Response::new(Body::from_stream(failing))
}

/// The service's own error answer for an injected fault.
fn error(kind: FaultKind, call: &Call) -> Response {
    let service = call.service.as_str();
    // Lambda answers 409 only to calls that change a function; a read is throttled instead.
    let reads = ["Get", "List"];
    let kind = match kind {
        FaultKind::Conflict if reads.iter().any(|r| call.operation.starts_with(r)) => {
            FaultKind::Throttle
        }
        other => other,
    };
    let (status, code, message) = match (kind, service) {
        (FaultKind::Conflict, "lambda") => (
            StatusCode::CONFLICT,
            "ResourceConflictException",
            "The operation cannot be performed at this time. An update is in progress for resource (injected fault).",
        ),
        (FaultKind::Throttle | FaultKind::Conflict, "lambda" | "apigateway") => (
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            "Rate exceeded (injected fault).",
        ),
        (FaultKind::Throttle | FaultKind::Conflict, "iam" | "sts") => (
            StatusCode::BAD_REQUEST,
            "Throttling",
            "Rate exceeded (injected fault).",
        ),
        (FaultKind::Throttle | FaultKind::Conflict, _) => (
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded (injected fault).",
        ),
        (FaultKind::Internal, "lambda") => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            "An internal error occurred (injected fault).",
        ),
        (FaultKind::Internal, "iam" | "sts") => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceFailure",
            "An internal error occurred (injected fault).",
        ),
        (FaultKind::Internal, _) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "An internal error occurred (injected fault).",
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "The service is unavailable (injected fault).",
        ),
    };
    let mut response = match service {
        "iam" | "sts" => {
            let kind = if status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            let body = format!(
                "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                uuid::Uuid::new_v4()
            );
            let mut r = (status, body).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
            r
        }
        "lambda" | "apigateway" => {
            let body = serde_json::json!({ "message": message }).to_string();
            let mut r = (status, body).into_response();
            r.headers_mut()
                .insert("x-amzn-ErrorType", HeaderValue::from_static(code));
            r
        }
        _ => {
            let body = serde_json::json!({ "__type": code, "message": message }).to_string();
            let mut r = (status, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-amz-json-1.0"),
            );
            r
        }
    };
    if service == "lambda" || service == "apigateway" {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_name_the_part() {
        let spec = FaultSpec::parse("0.2,apigateway:CreateRestApi=lost,iam:*=throttle@0.5,seed=9")
            .expect("parses");
        assert_eq!(spec.seed, 9);
        assert_eq!(spec.rules.len(), 3);
        assert_eq!(spec.rules[0].injects, Injects::Kind(FaultKind::Lost));
        assert_eq!(spec.rules[1].rate, 0.5);
        assert_eq!(spec.rules[2].service, "*");
        let err = FaultSpec::parse("lambda:*=1.5").expect_err("rate out of range");
        assert!(err.contains("`1.5`"), "{err}");
        let err = FaultSpec::parse("boom").expect_err("unknown kind");
        assert!(err.contains("`boom`"), "{err}");
    }

    #[test]
    fn operations_are_named_as_the_sdk_names_them() {
        let op = |m: Method, p: &str| identify(&m, p, None, b"").map(|c| c.operation);
        assert_eq!(
            op(Method::POST, "/restapis").as_deref(),
            Some("CreateRestApi")
        );
        assert_eq!(
            op(Method::POST, "/restapis/a/deployments").as_deref(),
            Some("CreateDeployment")
        );
        assert_eq!(
            op(
                Method::PUT,
                "/restapis/a/resources/r/methods/GET/integration"
            )
            .as_deref(),
            Some("PutIntegration")
        );
        assert_eq!(
            op(Method::POST, "/2015-03-31/functions/f/policy").as_deref(),
            Some("AddPermission")
        );
        assert_eq!(op(Method::GET, "/_emulator/status"), None);
        let iam = identify(
            &Method::POST,
            "/",
            None,
            b"Action=CreateRole&Version=2010-05-08",
        );
        assert_eq!(
            iam.map(|c| (c.service, c.operation)),
            Some(("iam".into(), "CreateRole".into()))
        );
    }

    #[test]
    fn invokes_are_faulted_only_when_named() {
        let invoke = call("lambda", "Invoke", true);
        assert!(FaultSpec::parse("1").unwrap().rule(&invoke).is_none());
        assert!(
            FaultSpec::parse("lambda:*=1")
                .unwrap()
                .rule(&invoke)
                .is_none()
        );
        assert!(
            FaultSpec::parse("lambda:Invoke=1")
                .unwrap()
                .rule(&invoke)
                .is_some()
        );
    }

    #[test]
    fn draws_repeat_for_the_same_seed_and_differ_across_seeds() {
        let c = call("lambda", "GetFunction", false);
        let run = |seed: u64| {
            let f = Faults::new(FaultSpec::parse(&format!("0.5,seed={seed}")).unwrap());
            (0..64)
                .map(|i| f.draw(&c, i % 8).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let hits = run(3).iter().filter(|h| **h).count();
        assert!((16..=48).contains(&hits), "{hits} of 64 at rate 0.5");
    }

    #[test]
    fn globs_match_prefixes_suffixes_and_everything() {
        assert!(glob("*", "anything"));
        assert!(glob("Create*", "createrestapi"));
        assert!(glob("*Api", "CreateRestApi"));
        assert!(!glob("Create*", "DeleteRestApi"));
        assert!(glob("GetFunction", "GetFunction"));
        assert!(!glob("GetFunction", "GetFunctionConfiguration"));
    }
}
