//! The two shapes of request a Represent function accepts and answers: API Gateway REST proxy
//! events (payload version 1.0) and direct invokes (`{"path": "/representatives", "query":
//! {"district": "7"}}`), both reduced to one `Request` and answered from one `Answer`.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Value, json};

/// Which shape the request came in, and so which shape the answer goes back in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// An API Gateway REST API proxy event; answered with a proxy response.
    ApiGateway,
    /// A direct `Invoke`; answered with the JSON body itself.
    Direct,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Form::ApiGateway => "apigateway",
            Form::Direct => "direct",
        }
    }
}

/// A request, whichever shape it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub form: Form,
    /// The HTTP method; `GET` for direct invokes, which only read.
    pub method: String,
    /// The path without trailing slash (`/counties/48201`).
    pub path: String,
    /// Query parameters; the first value wins when API Gateway passes several.
    pub query: BTreeMap<String, String>,
}

impl Request {
    /// A query parameter, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

/// An error answer: an HTTP status and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, message)
    }

    /// The body of an error answer: `{"error": {"status": 404, "message": "..."}}`.
    pub fn body(&self) -> Value {
        json!({"error": {"status": self.status, "message": self.message}})
    }
}

/// What a route answers: a JSON body, or an error.
pub type Answer = Result<Value, ApiError>;

/// The direct-invoke request shape. Unknown fields are refused so that a typo (`"querry"`) is an
/// error rather than a silently different answer.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectRequest {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    query: BTreeMap<String, QueryValue>,
}

/// Direct invokes are typed by hand, so `{"district": 7}` is as good as `{"district": "7"}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum QueryValue {
    Text(String),
    Number(serde_json::Number),
}

impl QueryValue {
    fn into_string(self) -> String {
        match self {
            QueryValue::Text(s) => s,
            QueryValue::Number(n) => n.to_string(),
        }
    }
}

/// Which shape `payload` has. API Gateway proxy events always carry `httpMethod` and
/// `requestContext`; a direct invoke has neither.
pub fn form_of(payload: &Value) -> Form {
    match payload {
        Value::Object(map)
            if map.contains_key("httpMethod") || map.contains_key("requestContext") =>
        {
            Form::ApiGateway
        }
        _ => Form::Direct,
    }
}

/// Reads a request of either shape. `default_path` is the route of an empty direct invoke (`{}`
/// or `null`), so that `cargo xtask invoke` without a payload gets the function's main answer.
pub fn parse(payload: &Value, default_path: &str) -> Result<Request, (Form, ApiError)> {
    let form = form_of(payload);
    match form {
        Form::ApiGateway => {
            let event: ApiGatewayProxyRequest =
                serde_json::from_value(payload.clone()).map_err(|e| {
                    (
                        form,
                        ApiError::bad_request(format!("invalid API Gateway proxy event: {e}")),
                    )
                })?;
            let path = event
                .path
                .or(event.request_context.resource_path)
                .unwrap_or_else(|| default_path.to_string());
            let mut query = BTreeMap::new();
            for (name, value) in event.query_string_parameters.iter() {
                query
                    .entry(name.to_string())
                    .or_insert_with(|| value.to_string());
            }
            Ok(Request {
                form,
                method: event.http_method.as_str().to_string(),
                path: normalize(&path),
                query,
            })
        }
        Form::Direct => {
            let direct: DirectRequest = if payload.is_null() {
                DirectRequest::default()
            } else {
                serde_json::from_value(payload.clone()).map_err(|e| {
                    (
                        form,
                        ApiError::bad_request(format!(
                            "invalid direct invoke: {e}; its form is {{\"path\": \"{default_path}\", \"query\": {{...}}}}"
                        )),
                    )
                })?
            };
            Ok(Request {
                form,
                method: "GET".to_string(),
                path: normalize(direct.path.as_deref().unwrap_or(default_path)),
                query: direct
                    .query
                    .into_iter()
                    .map(|(k, v)| (k, v.into_string()))
                    .collect(),
            })
        }
    }
}

/// `/counties/` and `/counties` are the same route.
fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// The HTTP status of an answer.
pub fn status_of(answer: &Answer) -> u16 {
    match answer {
        Ok(_) => 200,
        Err(e) => e.status,
    }
}

/// Renders an answer in the shape of the request: a proxy response for API Gateway, the JSON
/// body itself (errors as `{"error": {...}}`) for a direct invoke.
pub fn render(form: Form, answer: Answer) -> Value {
    let status = status_of(&answer);
    let body = match answer {
        Ok(body) => body,
        Err(e) => e.body(),
    };
    match form {
        Form::Direct => body,
        Form::ApiGateway => {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let mut response = ApiGatewayProxyResponse::default();
            response.status_code = i64::from(status);
            response.headers = headers;
            response.body = Some(Body::Text(body.to_string()));
            // A proxy response is a plain struct of strings and numbers.
            serde_json::to_value(response).expect("a proxy response serializes")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apigw(path: &str, query: Value) -> Value {
        json!({
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": "GET",
            "headers": {"Accept": "application/json"},
            "multiValueHeaders": {"Accept": ["application/json"]},
            "queryStringParameters": query,
            "multiValueQueryStringParameters": null,
            "pathParameters": {"proxy": path.trim_start_matches('/')},
            "stageVariables": null,
            "requestContext": {
                "accountId": "000000000000",
                "resourceId": "abc123",
                "stage": "dev",
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "resourcePath": "/{proxy+}",
                "httpMethod": "GET",
                "apiId": "1234567890",
                "protocol": "HTTP/1.1",
                "identity": {"sourceIp": "127.0.0.1"}
            },
            "body": null,
            "isBase64Encoded": false
        })
    }

    #[test]
    fn an_api_gateway_event_is_recognised_and_read() {
        let payload = apigw("/representatives/", json!({"district": "7"}));
        let request = parse(&payload, "/representatives").expect("parses");
        assert_eq!(request.form, Form::ApiGateway);
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/representatives");
        assert_eq!(request.param("district"), Some("7"));
    }

    #[test]
    fn a_direct_invoke_is_read_with_defaults() {
        let request = parse(&json!({}), "/counties").expect("parses");
        assert_eq!(request.form, Form::Direct);
        assert_eq!(request.path, "/counties");
        let request = parse(&Value::Null, "/counties").expect("parses");
        assert_eq!(request.path, "/counties");
        let request = parse(
            &json!({"path": "/representatives", "query": {"district": 7}}),
            "/representatives",
        )
        .expect("parses");
        assert_eq!(request.param("district"), Some("7"));
    }

    #[test]
    fn a_misspelt_direct_invoke_is_a_bad_request() {
        let (form, error) = parse(&json!({"querry": {}}), "/counties").unwrap_err();
        assert_eq!(form, Form::Direct);
        assert_eq!(error.status, 400);
        assert!(error.message.contains("querry"), "{}", error.message);
    }

    #[test]
    fn answers_take_the_shape_of_the_request() {
        let direct = render(Form::Direct, Err(ApiError::not_found("no route for `/x`")));
        assert_eq!(
            direct,
            json!({"error": {"status": 404, "message": "no route for `/x`"}})
        );
        let proxy = render(Form::ApiGateway, Ok(json!({"a": 1})));
        assert_eq!(proxy["statusCode"], 200);
        assert_eq!(proxy["headers"]["content-type"], "application/json");
        assert_eq!(proxy["body"], "{\"a\":1}");
    }
}
