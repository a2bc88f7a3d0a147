//! The routes of the `counties` function: a state's counties and county-equivalents.
//!
//! - `GET /counties`: `{state, counties: [{fips, name}]}`, sorted by FIPS (empty for territories).
//! - `GET /counties/{fips}`: `{state, county: {fips, name}}` for a 5-digit FIPS of this state.

use represent::{Answer, ApiError, Function, Request, TenantData, state_json};
use serde_json::json;

/// The function as the shared invoke path runs it.
pub static FUNCTION: Function = Function {
    name: "counties",
    default_path: "/counties",
    route,
};

/// Answers one request for the tenant whose data this is.
pub fn route(request: &Request, data: &TenantData) -> Answer {
    let file = data.file();
    let state = state_json(data);
    let rest = request.path.strip_prefix("/counties");
    match rest {
        Some("") => Ok(json!({"state": state, "counties": file.counties})),
        Some(rest) if rest.starts_with('/') && !rest[1..].contains('/') => {
            let fips = &rest[1..];
            if !(fips.len() == 5 && fips.bytes().all(|b| b.is_ascii_digit())) {
                return Err(ApiError::bad_request(format!(
                    "county FIPS must be 5 digits, got {fips:?}"
                )));
            }
            // An environment serves one state: a county of another state is simply not here,
            // and the answer says so without looking further.
            if !fips.starts_with(&file.fips) {
                return Err(ApiError::not_found(format!(
                    "county {fips} is not in {}: this environment serves {} only",
                    data.name(),
                    data.name()
                )));
            }
            let county = data.county(fips).ok_or_else(|| {
                ApiError::not_found(format!("{} has no county {fips}", data.name()))
            })?;
            Ok(json!({"state": state, "county": county}))
        }
        _ => Err(ApiError::not_found(format!(
            "no route for `{}`: this function answers /counties and /counties/{{fips}}",
            request.path
        ))),
    }
}
