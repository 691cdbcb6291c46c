//! What can go wrong talking to Toss; the operations and codes it names are in `code.rs`.
//!
//! Nothing here ever holds the secret key, a billing key or an authKey: `Display`, `Debug` and
//! the source chain are safe to log.

use crate::class::{self, ErrorClass};
use crate::code::{ErrorCode, Operation};

/// A failed call to Toss.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Toss answered with an error object `{code, message}`.
    #[error("Toss refused {operation} with HTTP {status} {code}: {message}")]
    Api {
        operation: Operation,
        status: u16,
        code: ErrorCode,
        message: String,
        /// The `X-TossPayments-Trace-Id` response header, for support tickets.
        trace_id: Option<String>,
    },
    /// No complete answer within the timeout: Toss may or may not have acted.
    #[error("Toss did not answer {operation} in time; the outcome is unknown")]
    Timeout { operation: Operation },
    /// The connection failed (refused, reset, dropped mid-body). Even a refused connection is
    /// treated as "outcome unknown": being conservative costs one lookup.
    #[error("transport error during Toss {operation}; the outcome is unknown")]
    Transport {
        operation: Operation,
        /// Stripped of its URL, which can contain a billing key.
        #[source]
        source: reqwest::Error,
    },
    /// The body was not the JSON we expected: malformed, truncated, or an error without `code`.
    #[error("could not decode Toss's HTTP {status} answer to {operation}")]
    Decode {
        operation: Operation,
        status: u16,
        /// At most 200 characters of the body; empty when the body may hold a billing key.
        body_snippet: String,
        #[source]
        source: serde_json::Error,
    },
    /// The client was configured with something unusable (never echoes the secret).
    #[error("invalid Toss client configuration: {0}")]
    InvalidConfig(String),
}

impl Error {
    /// What the caller should do about this error: the one reviewed table in [`crate::class`].
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Api {
                operation, code, ..
            } => class::class_of_code(*operation, code),
            Error::Decode { status, .. } => class::class_without_code(*status),
            Error::Timeout { .. } | Error::Transport { .. } => ErrorClass::OutcomeUnknown,
            Error::InvalidConfig(_) => ErrorClass::OurFault,
        }
    }

    /// Toss's error code, when Toss sent one.
    pub fn code(&self) -> Option<&str> {
        self.error_code().map(ErrorCode::as_str)
    }

    /// Toss's error code as the client knows it, when Toss sent one.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when the request may have taken effect or was already done: reconcile (look the
    /// order up), then retry with the same `Idempotency-Key` and order id.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::OutcomeUnknown | ErrorClass::AlreadyProcessed
        )
    }

    /// The operation that failed (`None` for configuration errors).
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Error::Api { operation, .. }
            | Error::Timeout { operation }
            | Error::Transport { operation, .. }
            | Error::Decode { operation, .. } => Some(*operation),
            Error::InvalidConfig(_) => None,
        }
    }

    /// The HTTP status, when Toss answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }
}
