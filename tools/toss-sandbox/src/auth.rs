//! `Authorization: Basic base64(secretKey + ":")` (docs/toss-api.md §1).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::errors::ApiError;

/// The secret key from the Authorization header.
///
/// - no header → `401 UNAUTHORIZED_KEY`
/// - not `Basic`, not base64, not UTF-8, or no `:` → `400 INCORRECT_BASIC_AUTH_FORMAT`
///
/// Whether the key is known is the caller's business. A UTF-8 BOM is kept, so a key read
/// from a file with a BOM is an unknown key, as it would be at Toss.
pub fn secret_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::of("UNAUTHORIZED_KEY"));
    };
    let malformed = || ApiError::of("INCORRECT_BASIC_AUTH_FORMAT");
    let value = value.to_str().map_err(|_| malformed())?.trim();
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (user, _password) = decoded.split_once(':').ok_or_else(malformed)?;
    if user.is_empty() {
        return Err(ApiError::of("UNAUTHORIZED_KEY"));
    }
    Ok(user.to_owned())
}

/// The header value a client should send for a key.
pub fn basic_header(secret_key: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{secret_key}:")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
        );
        headers
    }

    fn code(result: Result<String, ApiError>) -> String {
        result.err().map(|e| e.code).unwrap_or_default()
    }

    #[test]
    fn a_well_formed_header_yields_the_secret_key() {
        let key = secret_key(&headers(&basic_header("test_sk_abc")));
        assert_eq!(key.ok().as_deref(), Some("test_sk_abc"));
    }

    #[test]
    fn a_key_encoded_without_the_colon_is_an_incorrect_format() {
        let value = format!("Basic {}", STANDARD.encode("test_sk_abc"));
        assert_eq!(
            code(secret_key(&headers(&value))),
            "INCORRECT_BASIC_AUTH_FORMAT"
        );
    }

    #[test]
    fn a_missing_header_is_an_unauthorized_key() {
        assert_eq!(code(secret_key(&HeaderMap::new())), "UNAUTHORIZED_KEY");
    }

    #[test]
    fn a_bearer_token_or_broken_base64_is_an_incorrect_format() {
        assert_eq!(
            code(secret_key(&headers("Bearer abc"))),
            "INCORRECT_BASIC_AUTH_FORMAT"
        );
        assert_eq!(
            code(secret_key(&headers("Basic %%%"))),
            "INCORRECT_BASIC_AUTH_FORMAT"
        );
    }
}
