//! IAM policy evaluation for calls made with a role's credentials: identity-based policies
//! (inline and attached managed), an optional session policy and trust policies, with Allow and
//! Deny by action and resource, `${aws:PrincipalTag/...}` substitution, and the condition
//! operators tenant-scoped credentials rely on.
//!
//! The emulator evaluates the subset of IAM's logic that tenant isolation depends on: an explicit
//! Deny wins, then an Allow is needed (in the session policy too, when the session has one),
//! otherwise the call is denied. Resource-based policies, permission boundaries and SCPs are not
//! evaluated.

use std::collections::HashMap;

use serde_json::Value;

/// The documents of the AWS managed policies a deployer attaches, so a role holding one is
/// evaluated with what AWS would give it. Any other managed policy grants nothing here.
pub fn managed_policy(arn: &str) -> Option<&'static str> {
    match arn {
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole" => Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
        ),
        "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess" => Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}]}"#,
        ),
        "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess" => Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:BatchGetItem","dynamodb:Describe*","dynamodb:List*","dynamodb:GetItem","dynamodb:Query","dynamodb:Scan","dynamodb:PartiQLSelect"],"Resource":"*"}]}"#,
        ),
        "arn:aws:iam::aws:policy/AdministratorAccess" => Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        ),
        _ => None,
    }
}

/// The request context a condition reads: key (lower-cased, as IAM compares keys) to values.
/// A multi-valued key (`dynamodb:LeadingKeys`, `aws:TagKeys`) holds several.
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: HashMap<String, Vec<String>>,
}

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    pub fn set(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_ascii_lowercase(), values);
    }

    fn get(&self, key: &str) -> Option<&[String]> {
        self.values
            .get(&key.to_ascii_lowercase())
            .map(Vec::as_slice)
    }

    /// The single value of a key, for policy variables.
    fn single(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.first()).map(String::as_str)
    }
}

/// The outcome of evaluating one request against a set of policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No statement allows the request.
    ImplicitDeny,
    /// A Deny statement matches the request.
    ExplicitDeny,
}

/// Who a trust policy is asked about: the calling role's ARN (and its session's) and account.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    pub role_arn: &'a str,
    pub session_arn: &'a str,
    pub account: &'a str,
}

/// Evaluates identity-based policy documents: explicit Deny wins, then any Allow.
pub fn evaluate(documents: &[Value], action: &str, resource: &str, ctx: &Context) -> Decision {
    decide(documents, action, Some(resource), None, ctx)
}

/// Evaluates a role's trust policy for `caller` taking `action` (`sts:AssumeRole`,
/// `sts:TagSession`).
pub fn evaluate_trust(document: &Value, action: &str, caller: &Caller, ctx: &Context) -> Decision {
    decide(
        std::slice::from_ref(document),
        action,
        None,
        Some(caller),
        ctx,
    )
}

fn decide(
    documents: &[Value],
    action: &str,
    resource: Option<&str>,
    caller: Option<&Caller>,
    ctx: &Context,
) -> Decision {
    let mut allowed = false;
    for statement in documents.iter().flat_map(statements) {
        if !statement_applies(statement, action, resource, caller, ctx) {
            continue;
        }
        match statement.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return Decision::ExplicitDeny,
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// A document's statements: `Statement` is an object or an array of them.
fn statements(document: &Value) -> Vec<&Value> {
    match document.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => Vec::new(),
    }
}

/// A string or an array of strings, as policy elements are written.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn statement_applies(
    statement: &Value,
    action: &str,
    resource: Option<&str>,
    caller: Option<&Caller>,
    ctx: &Context,
) -> bool {
    let action_matches = if let Some(actions) = statement.get("Action") {
        strings(Some(actions))
            .iter()
            .any(|pattern| wildcard(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase()))
    } else if let Some(actions) = statement.get("NotAction") {
        !strings(Some(actions))
            .iter()
            .any(|pattern| wildcard(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase()))
    } else {
        false
    };
    if !action_matches {
        return false;
    }
    if let Some(resource) = resource {
        let matches_any = |element: &Value| {
            strings(Some(element)).iter().any(|pattern| {
                substitute(pattern, ctx).is_some_and(|pattern| wildcard(&pattern, resource))
            })
        };
        let resource_matches = if let Some(element) = statement.get("Resource") {
            matches_any(element)
        } else if let Some(element) = statement.get("NotResource") {
            !matches_any(element)
        } else {
            false
        };
        if !resource_matches {
            return false;
        }
    }
    if let Some(caller) = caller
        && !principal_matches(statement.get("Principal"), caller)
    {
        return false;
    }
    match statement.get("Condition") {
        None => true,
        Some(Value::Object(blocks)) => blocks
            .iter()
            .all(|(operator, keys)| condition_holds(operator, keys, ctx)),
        Some(_) => false,
    }
}

/// Whether a trust statement's `Principal` names the caller: `*`, its account (id or root ARN),
/// its role or its session.
fn principal_matches(principal: Option<&Value>, caller: &Caller) -> bool {
    let root = format!("arn:aws:iam::{}:root", caller.account);
    let names_caller = |name: &&str| {
        *name == "*"
            || *name == caller.account
            || *name == root
            || *name == caller.role_arn
            || *name == caller.session_arn
    };
    match principal {
        Some(Value::String(s)) => s == "*",
        Some(Value::Object(map)) => strings(map.get("AWS")).iter().any(names_caller),
        _ => false,
    }
}

/// Replaces `${key}` policy variables with the request's values (`${*}`, `${?}` and `${$}` are
/// the escaped characters). `None` when a variable has no value: the element then matches
/// nothing, as in IAM.
fn substitute(text: &str, ctx: &Context) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let key = &after[..end];
        match key {
            "*" | "?" | "$" => out.push_str(key),
            key => out.push_str(ctx.single(key)?),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// `*` matches any run of characters, `?` any one character.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// How a condition operator compares one request value with one policy value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Equals,
    EqualsIgnoreCase,
    Like,
    Bool,
}

/// One condition block entry, `"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [...]}`:
/// every key in it must hold.
fn condition_holds(operator: &str, keys: &Value, ctx: &Context) -> bool {
    let (set, operator) = match operator.split_once(':') {
        Some((set @ ("ForAllValues" | "ForAnyValue"), rest)) => (Some(set), rest),
        _ => (None, operator),
    };
    let (operator, if_exists) = match operator.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    let Value::Object(keys) = keys else {
        return false;
    };
    keys.iter().all(|(key, wanted)| {
        let wanted: Vec<Option<String>> = strings(Some(wanted))
            .into_iter()
            .map(|w| substitute(w, ctx))
            .collect();
        let present = ctx.get(key);
        if operator == "Null" {
            let is_null = present.is_none_or(<[String]>::is_empty);
            return wanted.iter().flatten().any(|w| (w == "true") == is_null);
        }
        let (compare, negated) = match operator {
            "StringEquals" | "ArnEquals" => (Compare::Equals, false),
            "StringNotEquals" | "ArnNotEquals" => (Compare::Equals, true),
            "StringEqualsIgnoreCase" => (Compare::EqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (Compare::EqualsIgnoreCase, true),
            "StringLike" | "ArnLike" => (Compare::Like, false),
            "StringNotLike" | "ArnNotLike" => (Compare::Like, true),
            "Bool" => (Compare::Bool, false),
            // An operator the emulator does not know never holds: a policy relying on it
            // grants nothing rather than too much.
            _ => return false,
        };
        let one = |value: &str| {
            let matched = wanted.iter().flatten().any(|w| match compare {
                Compare::Equals => w == value,
                Compare::EqualsIgnoreCase => w.eq_ignore_ascii_case(value),
                Compare::Like => wildcard(w, value),
                Compare::Bool => w.eq_ignore_ascii_case(value),
            });
            matched != negated
        };
        match (set, present) {
            // IAM: ForAllValues holds when the key is missing or empty.
            (Some("ForAllValues"), None) => true,
            (Some("ForAllValues"), Some(values)) => values.iter().all(|v| one(v)),
            (Some(_), None) => false,
            (Some(_), Some(values)) => values.iter().any(|v| one(v)),
            (None, None) => if_exists || negated,
            (None, Some(values)) => values.iter().any(|v| one(v)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant_policy() -> Value {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                "Resource": "arn:aws:dynamodb:*:*:table/represent-dev-data",
                "Condition": {"ForAllValues:StringEquals": {
                    "dynamodb:LeadingKeys": ["${aws:PrincipalTag/tenant}"]
                }}
            }]
        })
    }

    fn ctx(tenant: Option<&str>, keys: &[&str]) -> Context {
        let mut ctx = Context::new();
        if let Some(tenant) = tenant {
            ctx.set("aws:PrincipalTag/tenant", vec![tenant.to_string()]);
        }
        ctx.set(
            "dynamodb:LeadingKeys",
            keys.iter().map(|k| k.to_string()).collect(),
        );
        ctx
    }

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/represent-dev-data";

    #[test]
    fn leading_keys_must_equal_the_principal_tag() {
        let policy = [tenant_policy()];
        let query = "dynamodb:Query";
        assert_eq!(
            evaluate(&policy, query, TABLE, &ctx(Some("TX"), &["TX"])),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&policy, query, TABLE, &ctx(Some("TX"), &["CA"])),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(&policy, query, TABLE, &ctx(Some("TX"), &["TX", "CA"])),
            Decision::ImplicitDeny
        );
        // No tag: the variable has no value and the condition cannot hold.
        assert_eq!(
            evaluate(&policy, query, TABLE, &ctx(None, &["TX"])),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(
                &policy,
                "dynamodb:PutItem",
                TABLE,
                &ctx(Some("TX"), &["TX"])
            ),
            Decision::ImplicitDeny
        );
        let other = "arn:aws:dynamodb:us-east-1:000000000000:table/other";
        assert_eq!(
            evaluate(&policy, query, other, &ctx(Some("TX"), &["TX"])),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn an_explicit_deny_wins_over_an_allow() {
        let deny = serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "dynamodb:Query", "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:PrincipalTag/tenant": "TX"}}}
        ]});
        let policy = [deny];
        let c = ctx(Some("CA"), &["CA"]);
        assert_eq!(
            evaluate(&policy, "dynamodb:Query", TABLE, &c),
            Decision::ExplicitDeny
        );
        assert_eq!(
            evaluate(&policy, "dynamodb:GetItem", TABLE, &c),
            Decision::Allow
        );
    }

    #[test]
    fn wildcards_match_like_iam() {
        assert!(wildcard("dynamodb:*", "dynamodb:query"));
        assert!(wildcard(
            "arn:aws:dynamodb:*:*:table/t",
            "arn:aws:dynamodb:us-east-1:1:table/t"
        ));
        assert!(!wildcard(
            "arn:aws:dynamodb:*:*:table/t",
            "arn:aws:dynamodb:us-east-1:1:table/t2"
        ));
        assert!(wildcard("a?c*", "abcdef"));
        assert!(!wildcard("a?c", "ac"));
    }

    #[test]
    fn trust_policies_name_the_caller_role_or_account() {
        let trust = serde_json::json!({"Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::000000000000:role/exec"},
            "Action": ["sts:AssumeRole", "sts:TagSession"]
        }]});
        let caller = Caller {
            role_arn: "arn:aws:iam::000000000000:role/exec",
            session_arn: "arn:aws:sts::000000000000:assumed-role/exec/f",
            account: "000000000000",
        };
        let other = Caller {
            role_arn: "arn:aws:iam::000000000000:role/other",
            session_arn: "arn:aws:sts::000000000000:assumed-role/other/f",
            account: "000000000000",
        };
        let c = Context::new();
        assert_eq!(
            evaluate_trust(&trust, "sts:AssumeRole", &caller, &c),
            Decision::Allow
        );
        assert_eq!(
            evaluate_trust(&trust, "sts:TagSession", &caller, &c),
            Decision::Allow
        );
        assert_eq!(
            evaluate_trust(&trust, "sts:AssumeRole", &other, &c),
            Decision::ImplicitDeny
        );
    }
}
