//! Who the verified token says is calling.

use std::fmt;

/// The sign-in provider's user id (the token's `sub`), checked once: 1 to 255 bytes of visible
/// ASCII (no spaces or control characters). Clerk's `user_…`, Auth0's `provider|id`, Cognito's
/// and Supabase's UUIDs all fit.
///
/// It lives here because only a verified token produces one; if other crates come to need it
/// without this one, it belongs in `shared/domain` next to the other identifiers.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

/// Why a value is not a [`UserId`]; never echoes the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUserId {
    #[error("user id is empty")]
    Empty,
    #[error("user id is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("user id has characters other than visible ASCII")]
    Charset,
}

impl UserId {
    pub const MAX_LEN: usize = 255;

    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidUserId> {
        let value = value.into();
        if value.is_empty() {
            return Err(InvalidUserId::Empty);
        }
        if value.len() > Self::MAX_LEN {
            return Err(InvalidUserId::TooLong { max: Self::MAX_LEN });
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidUserId::Charset);
        }
        Ok(UserId(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The caller of an authenticated route, as the verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: UserId,
}

impl AuthUser {
    pub fn new(user_id: UserId) -> Self {
        AuthUser { user_id }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_of_the_common_providers_are_user_ids() {
        for id in [
            "user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "google-oauth2|103547991597142817347",
            "6f1c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f",
        ] {
            assert_eq!(UserId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn an_empty_a_too_long_or_a_spaced_id_is_refused() {
        assert_eq!(UserId::parse(""), Err(InvalidUserId::Empty));
        assert_eq!(
            UserId::parse("u".repeat(256)),
            Err(InvalidUserId::TooLong { max: 255 })
        );
        assert!(UserId::parse("u".repeat(255)).is_ok());
        for bad in ["user 1", "user\n1", "user\u{0}", "usér"] {
            assert_eq!(UserId::parse(bad), Err(InvalidUserId::Charset), "{bad:?}");
        }
    }
}
