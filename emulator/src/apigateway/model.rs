//! API Gateway's REST API model as the emulator keeps it: APIs with their resource tree, methods,
//! integrations, authorizers, deployments (frozen copies of the tree) and stages, plus the
//! checks API Gateway applies to path parts, HTTP methods and mapping expressions.
//!
//! The same structs are persisted as one JSON document per API, so adding a field never needs a
//! schema migration; the wire shapes are built separately in `mod.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One REST API and everything under it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestApi {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Seconds since the epoch, as API Gateway's `createdDate`.
    pub created_date: i64,
    pub root_resource_id: String,
    pub tags: BTreeMap<String, String>,
    /// The working copy of the resource tree, by resource id.
    pub resources: BTreeMap<String, Resource>,
    pub authorizers: BTreeMap<String, Authorizer>,
    /// Request validators by id; APIs stored before they were kept have none.
    #[serde(default)]
    pub validators: BTreeMap<String, RequestValidator>,
    /// Oldest first.
    pub deployments: Vec<Deployment>,
    pub stages: BTreeMap<String, Stage>,
    /// The settings CreateRestApi takes; APIs stored before they were kept read back with
    /// API Gateway's defaults.
    #[serde(default)]
    pub settings: ApiSettings,
}

/// What CreateRestApi keeps about how an API is reached.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiSettings {
    pub disable_execute_api_endpoint: bool,
    /// `HEADER` or `AUTHORIZER`.
    pub api_key_source: String,
    /// `EDGE`, `REGIONAL` or `PRIVATE`.
    pub endpoint_types: Vec<String>,
    pub vpc_endpoint_ids: Vec<String>,
    /// The resource policy document, as given.
    pub policy: Option<String>,
    pub binary_media_types: Vec<String>,
}

impl Default for ApiSettings {
    fn default() -> ApiSettings {
        ApiSettings {
            disable_execute_api_endpoint: false,
            api_key_source: "HEADER".into(),
            endpoint_types: vec!["EDGE".into()],
            vpc_endpoint_ids: Vec::new(),
            policy: None,
            binary_media_types: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource {
    pub id: String,
    pub parent_id: Option<String>,
    /// `None` for the root resource.
    pub path_part: Option<String>,
    /// The full path, `/` for the root.
    pub path: String,
    /// By HTTP method (`GET`, ..., `ANY`).
    pub methods: BTreeMap<String, Method>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Method {
    pub http_method: String,
    pub authorization_type: String,
    pub authorizer_id: Option<String>,
    pub api_key_required: bool,
    /// `method.request.{header,querystring,path}.NAME` -> required.
    pub request_parameters: BTreeMap<String, bool>,
    pub integration: Option<Integration>,
    /// The request validator that checks this method's requests, if any.
    #[serde(default)]
    pub request_validator_id: Option<String>,
}

/// What a request validator checks before the integration runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestValidator {
    pub id: String,
    pub name: String,
    pub validate_request_parameters: bool,
    pub validate_request_body: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Integration {
    pub kind: String,
    pub http_method: Option<String>,
    pub uri: Option<String>,
    /// `integration.request.header.NAME` -> a mapping expression.
    pub request_parameters: BTreeMap<String, String>,
    pub passthrough_behavior: String,
    pub timeout_in_millis: i64,
    pub cache_namespace: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Authorizer {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub authorizer_uri: Option<String>,
    pub identity_source: Option<String>,
    pub authorizer_result_ttl_in_seconds: Option<i64>,
}

/// A deployment: what the stages pointing at it serve, frozen at CreateDeployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub description: Option<String>,
    pub created_date: i64,
    pub root_resource_id: String,
    pub resources: BTreeMap<String, Resource>,
    pub authorizers: BTreeMap<String, Authorizer>,
    #[serde(default)]
    pub validators: BTreeMap<String, RequestValidator>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage {
    pub stage_name: String,
    pub deployment_id: String,
    pub description: Option<String>,
    pub created_date: i64,
    pub last_updated_date: i64,
    pub variables: BTreeMap<String, String>,
}

/// The HTTP methods PutMethod accepts.
pub const HTTP_METHODS: &[&str] = &[
    "GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD", "ANY",
];

/// An identifier the way API Gateway makes them: 10 lowercase letters and digits.
pub fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    uuid::Uuid::new_v4().as_bytes()[..10]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// What a path part is, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    Literal,
    /// `{name}`: one segment.
    Variable,
    /// `{name+}`: the rest of the path, at least one segment.
    Greedy,
}

/// Classifies a path part, or `None` when API Gateway would reject it.
pub fn path_part_kind(part: &str) -> Option<PartKind> {
    let is_name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    };
    if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        return match inner.strip_suffix('+') {
            Some(name) if is_name(name) => Some(PartKind::Greedy),
            None if is_name(inner) => Some(PartKind::Variable),
            _ => None,
        };
    }
    let literal_ok = !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:~!$&'()*,;=@".contains(&b));
    literal_ok.then_some(PartKind::Literal)
}

/// The parameter name of a `{name}` or `{name+}` part.
pub fn variable_name(part: &str) -> &str {
    part.trim_start_matches('{')
        .trim_end_matches('}')
        .trim_end_matches('+')
}

/// Checks one integration request parameter mapping the way PutIntegration does: the target is
/// an integration request header, querystring or path parameter, and a `method.request.*` source
/// was declared on the method. Returns the offending expression.
pub fn check_mapping(
    target: &str,
    source: &str,
    declared: &BTreeMap<String, bool>,
) -> Result<(), String> {
    let target_ok = [
        "header.",
        "querystring.",
        "path.",
        "multivalueheader.",
        "multivaluequerystring.",
    ]
    .iter()
    .any(|prefix| {
        target
            .strip_prefix("integration.request.")
            .and_then(|t| t.strip_prefix(prefix))
            .is_some_and(|name| !name.is_empty())
    });
    if !target_ok {
        return Err(target.to_string());
    }
    if source.len() >= 2 && source.starts_with('\'') && source.ends_with('\'') {
        return Ok(());
    }
    if source.starts_with("context.") || source.starts_with("stageVariables.") {
        return Ok(());
    }
    if source.starts_with("method.request.body") {
        return Ok(());
    }
    if let Some(rest) = source.strip_prefix("method.request.") {
        // Multi-value sources read the same declared parameter as their single-value kind.
        let declared_as = rest
            .strip_prefix("multivalueheader.")
            .map(|n| format!("method.request.header.{n}"))
            .or_else(|| {
                rest.strip_prefix("multivaluequerystring.")
                    .map(|n| format!("method.request.querystring.{n}"))
            })
            .unwrap_or_else(|| source.to_string());
        if declared.contains_key(&declared_as) {
            return Ok(());
        }
    }
    Err(source.to_string())
}

/// The resource a request path reaches in `resources` (a deployed tree), with its path
/// parameters. Literal children win over `{name}`, which wins over `{name+}`, as in API Gateway.
pub fn match_path<'a>(
    resources: &'a BTreeMap<String, Resource>,
    root_id: &str,
    segments: &[&str],
) -> Option<(&'a Resource, BTreeMap<String, String>)> {
    let mut children: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for resource in resources.values() {
        if let Some(parent) = &resource.parent_id {
            children.entry(parent.as_str()).or_default().push(resource);
        }
    }
    let root = resources.get(root_id)?;
    let mut params = BTreeMap::new();
    let found = descend(root, segments, &children, &mut params)?;
    Some((found, params))
}

fn descend<'a>(
    at: &'a Resource,
    segments: &[&str],
    children: &BTreeMap<&str, Vec<&'a Resource>>,
    params: &mut BTreeMap<String, String>,
) -> Option<&'a Resource> {
    let Some((first, rest)) = segments.split_first() else {
        return Some(at);
    };
    let kids = children
        .get(at.id.as_str())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let kind_of = |r: &Resource| r.path_part.as_deref().and_then(path_part_kind);
    for wanted in [PartKind::Literal, PartKind::Variable, PartKind::Greedy] {
        for kid in kids.iter().filter(|k| kind_of(k) == Some(wanted)) {
            let part = kid.path_part.as_deref().unwrap_or_default();
            match wanted {
                PartKind::Literal if part != *first => continue,
                PartKind::Literal => {
                    if let Some(found) = descend(kid, rest, children, params) {
                        return Some(found);
                    }
                }
                PartKind::Variable => {
                    let name = variable_name(part).to_string();
                    params.insert(name.clone(), (*first).to_string());
                    if let Some(found) = descend(kid, rest, children, params) {
                        return Some(found);
                    }
                    params.remove(&name);
                }
                PartKind::Greedy => {
                    params.insert(variable_name(part).to_string(), segments.join("/"));
                    return Some(kid);
                }
            }
        }
    }
    None
}

/// IAM's `ArnLike`: `*` matches any run of characters (slashes included), `?` exactly one.
pub fn arn_like(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // Iterative glob matching with one backtrack point, linear in practice.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(id: &str, parent: Option<&str>, part: Option<&str>) -> Resource {
        Resource {
            id: id.into(),
            parent_id: parent.map(Into::into),
            path_part: part.map(Into::into),
            path: String::new(),
            methods: BTreeMap::new(),
        }
    }

    fn tree() -> BTreeMap<String, Resource> {
        [
            resource("root", None, None),
            resource("states", Some("root"), Some("states")),
            resource("state", Some("states"), Some("{state}")),
            resource("counties", Some("state"), Some("counties")),
            resource("special", Some("states"), Some("special")),
            resource("proxy", Some("root"), Some("{proxy+}")),
        ]
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect()
    }

    fn reach(path: &[&str]) -> Option<(String, BTreeMap<String, String>)> {
        let tree = tree();
        match_path(&tree, "root", path).map(|(r, p)| (r.id.clone(), p))
    }

    #[test]
    fn literals_win_over_variables_and_variables_over_greedy() {
        assert_eq!(reach(&[]).unwrap().0, "root");
        assert_eq!(reach(&["states", "special"]).unwrap().0, "special");
        let (id, params) = reach(&["states", "TX"]).unwrap();
        assert_eq!((id.as_str(), params["state"].as_str()), ("state", "TX"));
        assert_eq!(reach(&["states", "CA", "counties"]).unwrap().0, "counties");
        let (id, params) = reach(&["states", "CA", "other"]).unwrap();
        assert_eq!(
            (id.as_str(), params["proxy"].as_str()),
            ("proxy", "states/CA/other")
        );
    }

    #[test]
    fn path_parts_follow_api_gateway_rules() {
        assert_eq!(path_part_kind("states"), Some(PartKind::Literal));
        assert_eq!(path_part_kind("{state}"), Some(PartKind::Variable));
        assert_eq!(path_part_kind("{proxy+}"), Some(PartKind::Greedy));
        assert_eq!(path_part_kind("a/b"), None);
        assert_eq!(path_part_kind("{}"), None);
        assert_eq!(path_part_kind(""), None);
    }

    #[test]
    fn arn_like_wildcards_span_slashes() {
        let arn = "arn:aws:execute-api:us-east-1:000000000000:abc/prod/GET/states/TX";
        assert!(arn_like(
            "arn:aws:execute-api:us-east-1:000000000000:abc/*",
            arn
        ));
        assert!(arn_like("arn:aws:execute-api:*:*:abc/*/GET/states/*", arn));
        assert!(!arn_like(
            "arn:aws:execute-api:us-east-1:000000000000:abc/*/POST/*",
            arn
        ));
        assert!(!arn_like(
            "arn:aws:execute-api:us-east-1:000000000000:xyz/*",
            arn
        ));
    }

    #[test]
    fn mappings_need_a_declared_method_parameter() {
        let declared: BTreeMap<String, bool> =
            [("method.request.header.x-tenant-id".to_string(), true)].into();
        let target = "integration.request.header.X-Amz-Tenant-Id";
        assert!(check_mapping(target, "method.request.header.x-tenant-id", &declared).is_ok());
        assert!(check_mapping(target, "'static'", &declared).is_ok());
        assert!(check_mapping(target, "context.authorizer.tenant", &declared).is_ok());
        assert!(check_mapping(target, "method.request.querystring.tenant", &declared).is_err());
        assert!(check_mapping("tenant", "'x'", &declared).is_err());
    }
}
