//! `Authorization: Bearer <jwt>`, strictly.

use crate::error::Error;

/// Longest token accepted. Clerk session tokens are about 1 KB; custom claims stay far below.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The token of an `Authorization` header value: the scheme `Bearer` in any case, exactly one
/// space, then a token of JWT characters only (base64url and `.`), nothing before or after.
pub fn bearer_token(header: &[u8]) -> Result<&str, Error> {
    let Some(space) = header.iter().position(|&b| b == b' ') else {
        return Err(Error::MalformedHeader);
    };
    let (scheme, token) = (&header[..space], &header[space + 1..]);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(Error::MalformedHeader);
    }
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES || !token.iter().all(|&b| is_jwt_byte(b)) {
        return Err(Error::MalformedHeader);
    }
    std::str::from_utf8(token).map_err(|_| Error::MalformedHeader)
}

pub(crate) fn is_jwt_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_comes_back_unchanged() {
        for header in [
            "Bearer a.b.c",
            "bearer a.b.c",
            "BEARER a.b.c",
            "bEaReR a.b.c",
        ] {
            assert_eq!(bearer_token(header.as_bytes()).unwrap(), "a.b.c");
        }
    }

    #[test]
    fn anything_but_one_space_and_jwt_characters_is_a_malformed_header() {
        for header in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer  a.b.c",
            "Bearer\ta.b.c",
            " Bearer a.b.c",
            "Bearer a.b.c ",
            "Bearer a.b.c\n",
            "Bearer a.b c",
            "Bearer a+b/c=",
            "Basic dXNlcjpwYXNz",
            "Token a.b.c",
            "Bearera.b.c",
            "Bearer \"a.b.c\"",
        ] {
            assert!(
                matches!(bearer_token(header.as_bytes()), Err(Error::MalformedHeader)),
                "{header:?}"
            );
        }
        assert!(matches!(
            bearer_token(b"Bearer a.\xff.c"),
            Err(Error::MalformedHeader)
        ));
    }

    #[test]
    fn a_token_over_the_size_limit_is_refused() {
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(matches!(
            bearer_token(long.as_bytes()),
            Err(Error::MalformedHeader)
        ));
        let limit = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES));
        assert!(bearer_token(limit.as_bytes()).is_ok());
    }
}
