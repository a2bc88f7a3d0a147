//! Tenant id rules, as Lambda's Invoke API states them.

use crate::error::TenantIdError;

/// Lambda's maximum tenant id length.
pub const MAX_TENANT_ID: usize = 256;

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ._:/=+-@".contains(c)
}

/// Checks a tenant id against Lambda's rule: 1 to 256 characters of `[a-zA-Z0-9._:/=+\-@ ]`.
/// Tenant ids are outside data: `../x` is valid, so they must never become paths.
pub fn validate_tenant_id(id: &str) -> Result<(), TenantIdError> {
    let len = id.chars().count();
    if len == 0 || len > MAX_TENANT_ID {
        return Err(TenantIdError::Length {
            value: id.to_string(),
            len,
        });
    }
    if let Some(ch) = id.chars().find(|c| !is_allowed(*c)) {
        return Err(TenantIdError::Character {
            value: id.to_string(),
            ch,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lambda_alphabet_including_path_like_ids() {
        for id in ["TX", "tenant-1", "a.b_c:d/e=f+g-h@i j", "../x"] {
            assert_eq!(validate_tenant_id(id), Ok(()), "{id}");
        }
        assert_eq!(validate_tenant_id(&"a".repeat(256)), Ok(()));
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters_naming_the_value() {
        let err = validate_tenant_id("").unwrap_err().to_string();
        assert!(err.contains("\"\"") && err.contains("1 to 256"), "{err}");
        let err = validate_tenant_id(&"a".repeat(257))
            .unwrap_err()
            .to_string();
        assert!(err.contains("257 characters"), "{err}");
        let err = validate_tenant_id("tx\n").unwrap_err().to_string();
        assert!(err.contains("\"tx\\n\"") && err.contains("'\\n'"), "{err}");
        assert!(validate_tenant_id("tx;rm").is_err());
        assert!(validate_tenant_id("é").is_err());
    }
}
