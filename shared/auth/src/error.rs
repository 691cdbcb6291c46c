//! Why a request is not authenticated: one reason for the logs, one [`Failure`] for the answer.
//!
//! No variant holds the token or the header; what a variant does hold (an algorithm name, a
//! kid) comes from the token's header, is not secret, and is cut to a short printable form.

/// Why verification failed. Log it (`error.message = %e`); answer with [`Error::failure`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no Authorization header")]
    MissingHeader,
    #[error("the Authorization header is not `Bearer <jwt>`")]
    MalformedHeader,
    #[error("the bearer token is not a well-formed JWT")]
    MalformedToken,
    #[error("the token's algorithm {alg:?} is not allowed (only RS256 and ES256)")]
    AlgorithmNotAllowed { alg: String },
    #[error("the token names no key (no kid)")]
    MissingKeyId,
    #[error("the issuer's JWKS has no key {kid:?}")]
    UnknownKeyId { kid: String },
    #[error("the token says {alg} but its key {kid:?} is for {key_alg}")]
    KeyMismatch {
        alg: &'static str,
        kid: String,
        key_alg: &'static str,
    },
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's issuer is not the configured issuer")]
    WrongIssuer,
    #[error("the token's audience is not the configured audience")]
    WrongAudience,
    #[error("the token's authorized party (azp) is not an allowed origin")]
    UnauthorizedParty,
    #[error("the token has no {0} claim")]
    MissingClaim(&'static str),
    #[error("the token's {0} claim is ill-formed")]
    InvalidClaim(&'static str),
    /// The issuer's keys could not be had: nothing about the caller's token is known.
    #[error("the issuer's signing keys are unavailable")]
    KeysUnavailable(#[source] JwksError),
}

/// Why the JWKS could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    #[error("the JWKS request failed")]
    Transport(#[source] reqwest::Error),
    #[error("the JWKS URL answered HTTP {0}")]
    Status(u16),
    #[error("the JWKS is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the JWKS is not a JSON key set")]
    Decode(#[source] serde_json::Error),
    /// A fetch failed moments ago; the next try waits for the configured back-off.
    #[error("the last JWKS fetch failed; waiting before the next one")]
    BackingOff,
}

/// What the caller answers. Every failure except an unreachable issuer is the caller's
/// problem: `401` with `WWW-Authenticate: Bearer`.
///
/// **A JWKS outage is `Unavailable` (answer `503` with `Retry-After`), not `401`.** docs/money-rules.md §10.1
/// says failures are `401`, but an outage at the sign-in provider says nothing about the caller's
/// token, and a `401` would say it does: the app's SDK refreshes the session and retries (a retry
/// storm against a provider that is already down), and an app that treats `401` as "signed out"
/// logs paying customers out. A `503` tells the app to try again later and lands in our 5xx
/// alarms, where an issuer outage or a wrong `AUTH_JWKS_URL` belongs, instead of hiding among
/// ordinary `401`s. Either way the request is refused: nothing fails open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Unauthenticated,
    Unavailable,
}

impl Failure {
    /// `401` or `503`.
    pub fn status(self) -> u16 {
        match self {
            Failure::Unauthenticated => 401,
            Failure::Unavailable => 503,
        }
    }

    /// The `code` of the JSON error body.
    pub fn code(self) -> &'static str {
        match self {
            Failure::Unauthenticated => "UNAUTHENTICATED",
            Failure::Unavailable => "AUTH_UNAVAILABLE",
        }
    }

    /// The `message` of the JSON error body: the same for every reason, so an answer does not
    /// tell a prober which check it failed.
    pub fn message(self) -> &'static str {
        match self {
            Failure::Unauthenticated => "a valid bearer token is required",
            Failure::Unavailable => "sign-in cannot be checked right now; try again shortly",
        }
    }
}

impl Error {
    pub fn failure(&self) -> Failure {
        match self {
            Error::KeysUnavailable(_) => Failure::Unavailable,
            _ => Failure::Unauthenticated,
        }
    }

    /// A stable snake_case name of the reason, for a log field or a metric dimension.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::MissingHeader => "missing_header",
            Error::MalformedHeader => "malformed_header",
            Error::MalformedToken => "malformed_token",
            Error::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            Error::MissingKeyId => "missing_kid",
            Error::UnknownKeyId { .. } => "unknown_kid",
            Error::KeyMismatch { .. } => "key_mismatch",
            Error::BadSignature => "bad_signature",
            Error::Expired => "expired",
            Error::NotYetValid => "not_yet_valid",
            Error::WrongIssuer => "wrong_issuer",
            Error::WrongAudience => "wrong_audience",
            Error::UnauthorizedParty => "unauthorized_party",
            Error::MissingClaim(_) => "missing_claim",
            Error::InvalidClaim(_) => "invalid_claim",
            Error::KeysUnavailable(_) => "keys_unavailable",
        }
    }
}

/// A header value fit for a log line: at most 64 characters of `[A-Za-z0-9._-]`, else a marker.
pub(crate) fn printable(value: &str) -> String {
    if value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        value.to_owned()
    } else {
        "<unprintable>".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreachable_issuer_is_unavailable_and_everything_else_is_unauthenticated() {
        assert_eq!(
            Error::KeysUnavailable(JwksError::Status(502)).failure(),
            Failure::Unavailable
        );
        for error in [
            Error::MissingHeader,
            Error::BadSignature,
            Error::Expired,
            Error::UnknownKeyId { kid: "k".into() },
        ] {
            assert_eq!(error.failure(), Failure::Unauthenticated);
            assert_eq!(error.failure().status(), 401);
            assert_eq!(error.failure().code(), "UNAUTHENTICATED");
        }
        assert_eq!(Failure::Unavailable.status(), 503);
    }

    #[test]
    fn a_header_value_that_is_long_or_odd_is_not_copied_into_a_reason() {
        assert_eq!(printable("RS512"), "RS512");
        assert_eq!(printable(&"k".repeat(65)), "<unprintable>");
        assert_eq!(printable("a\nb"), "<unprintable>");
    }
}
