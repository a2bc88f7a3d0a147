//! The staff routes' TOKEN authorizer: API Gateway hands it `Authorization: Bearer <token>`, and
//! it answers which state the caller works for, or refuses.
//!
//! The token is an HS256 JWT (`cargo xtask token --tenant TX` mints one) whose claims are
//! `tenant` (the state), `sub` (who) and `exp` (seconds since the epoch). The signature is checked
//! in constant time before any claim is read; then the expiry, then that the state is one of
//! Represent's. An Allow answer carries `context.tenantId`, which the route maps to the invoke's
//! tenant id, so a staff member can only ever read their own state's inbox.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2_hmac::Sha256;

/// The TOKEN event API Gateway sends.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub authorization_token: String,
    pub method_arn: String,
}

/// The claims a staff token carries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    pub tenant: String,
    pub sub: String,
    pub exp: u64,
}

/// Why a token is refused. API Gateway answers 401 for every one of these but `UnknownState`,
/// which is a Deny (403): the token is genuine, the state is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not `Bearer <header>.<claims>.<signature>` of an HS256 JWT.
    Malformed(&'static str),
    /// The signature is not ours.
    Forged,
    /// `exp` is in the past.
    Expired { exp: u64, now: u64 },
    /// A genuine token naming a state Represent does not serve.
    UnknownState(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(why) => write!(f, "malformed token: {why}"),
            Refusal::Forged => f.write_str("the token's signature does not verify"),
            Refusal::Expired { exp, now } => {
                write!(f, "the token expired {}s ago", now.saturating_sub(*exp))
            }
            Refusal::UnknownState(state) => write!(f, "the token names unknown state `{state}`"),
        }
    }
}

/// Checks a token (with or without its `Bearer ` prefix) against the stage's signing key at time
/// `now` (seconds since the epoch), and returns its claims when it is good.
pub fn verify(token: &str, key: &[u8], now: u64) -> Result<Claims, Refusal> {
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    let malformed = Refusal::Malformed("a JWT has three `.`-separated parts");
    let (signing_input, signature) = token.rsplit_once('.').ok_or(malformed.clone())?;
    let (header, claims) = signing_input.split_once('.').ok_or(malformed.clone())?;
    if claims.contains('.') {
        return Err(malformed);
    }
    let header: Value = decode_json(header).ok_or(Refusal::Malformed("the header is not JSON"))?;
    // The algorithm is fixed, never taken from the token: `none` or RS256 are refused.
    if header["alg"] != "HS256" {
        return Err(Refusal::Malformed("only HS256 tokens are accepted"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Refusal::Malformed("the signature is not base64url"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&signature).map_err(|_| Refusal::Forged)?;
    let claims: Claims = decode_json(claims)
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or(Refusal::Malformed(
            "the claims lack `tenant`, `sub` or a numeric `exp`",
        ))?;
    if claims.exp <= now {
        return Err(Refusal::Expired {
            exp: claims.exp,
            now,
        });
    }
    if !represent::registry::is_known(&claims.tenant) {
        return Err(Refusal::UnknownState(claims.tenant));
    }
    Ok(claims)
}

fn decode_json(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The resource an answer's policy covers: every method of the stage the request came to
/// (`arn:aws:execute-api:{region}:{account}:{api}/{stage}/*`), so that API Gateway's cache of
/// this token's answer serves the caller's other staff routes too.
pub fn stage_resource(method_arn: &str) -> String {
    let mut parts = method_arn.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(api), Some(stage)) => format!("{api}/{stage}/*"),
        _ => method_arn.to_string(),
    }
}

/// The authorizer's answer: an IAM policy for `execute-api:Invoke`, the caller as
/// `principalId`, and the state in `context.tenantId`.
pub fn policy(principal: &str, effect: &str, resource: &str, tenant: Option<&str>) -> Value {
    let mut answer = json!({
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "execute-api:Invoke",
                "Effect": effect,
                "Resource": resource,
            }],
        },
    });
    if let Some(tenant) = tenant {
        answer["context"] = json!({ "tenantId": tenant });
    }
    answer
}

/// What the authorizer answers for `event`: `Ok` with a policy (Allow, or Deny for a genuine
/// token of an unknown state), or `Err` with the refusal, which the function turns into the
/// `Unauthorized` error API Gateway answers 401 for.
pub fn authorize(event: &TokenEvent, key: &[u8], now: u64) -> Result<Value, Refusal> {
    let resource = stage_resource(&event.method_arn);
    match verify(&event.authorization_token, key, now) {
        Ok(claims) => Ok(policy(
            &claims.sub,
            "Allow",
            &resource,
            Some(&claims.tenant),
        )),
        Err(Refusal::UnknownState(state)) => {
            tracing::warn!(state = %state, "a genuine token names an unknown state");
            Ok(policy("unknown", "Deny", &resource, None))
        }
        Err(refusal) => Err(refusal),
    }
}

/// A token for tests: the same HS256 JWT `cargo xtask token` mints.
pub fn mint(key: &[u8], tenant: &str, sub: &str, exp: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims =
        URL_SAFE_NO_PAD.encode(json!({"tenant": tenant, "sub": sub, "exp": exp}).to_string());
    let signing_input = format!("{header}.{claims}");
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a stage's signing key, 32 bytes!";
    const NOW: u64 = 1_800_000_000;
    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:abc123/dev/GET/messages";

    fn event(token: &str) -> TokenEvent {
        TokenEvent {
            kind: "TOKEN".into(),
            authorization_token: format!("Bearer {token}"),
            method_arn: ARN.into(),
        }
    }

    #[test]
    fn a_good_token_is_allowed_with_its_state_in_the_context() {
        let token = mint(KEY, "TX", "staff@tx", NOW + 3600);
        let answer = authorize(&event(&token), KEY, NOW).expect("allowed");
        assert_eq!(answer["principalId"], "staff@tx");
        assert_eq!(answer["context"]["tenantId"], "TX");
        let statement = &answer["policyDocument"]["Statement"][0];
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(
            statement["Resource"],
            "arn:aws:execute-api:us-east-1:000000000000:abc123/dev/*"
        );
    }

    #[test]
    fn forged_expired_and_malformed_tokens_are_unauthorized() {
        let other_key = mint(b"somebody else's key", "TX", "x", NOW + 60);
        assert_eq!(
            authorize(&event(&other_key), KEY, NOW),
            Err(Refusal::Forged)
        );
        // A token whose claims were edited after signing.
        let good = mint(KEY, "TX", "x", NOW + 60);
        let ca_claims = URL_SAFE_NO_PAD.encode(r#"{"tenant":"CA","sub":"x","exp":1900000000}"#);
        let parts: Vec<&str> = good.split('.').collect();
        let edited = format!("{}.{ca_claims}.{}", parts[0], parts[2]);
        assert_eq!(authorize(&event(&edited), KEY, NOW), Err(Refusal::Forged));
        let expired = mint(KEY, "TX", "x", NOW - 1);
        assert!(matches!(
            authorize(&event(&expired), KEY, NOW),
            Err(Refusal::Expired { .. })
        ));
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            parts[1]
        );
        assert!(matches!(
            authorize(&event(&none_alg), KEY, NOW),
            Err(Refusal::Malformed(_))
        ));
        assert!(matches!(
            authorize(&event("not-a-jwt"), KEY, NOW),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn a_genuine_token_of_an_unknown_state_is_denied() {
        let token = mint(KEY, "ZZ", "x", NOW + 60);
        let answer = authorize(&event(&token), KEY, NOW).expect("a policy");
        assert_eq!(answer["policyDocument"]["Statement"][0]["Effect"], "Deny");
        assert_eq!(answer.get("context"), None);
    }
}
