//! A checkout binds Toss's billing-auth redirect to the signed-in user who started it
//! (product §10.2): the user's server-owned customer key, and a single-use `state` that the
//! success and fail URLs carry. Randomness comes from the caller, so this stays pure.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::{CustomerKey, IdError};

pub use crate::ids::CUSTOMER_KEY_ENTROPY;

/// Bytes of randomness in a checkout state (256 bits).
pub const STATE_ENTROPY: usize = 32;

/// The single-use `state` of one checkout: 64 hex digits. Secret until used (whoever holds it
/// can finish that checkout), so no `Display` and a masked `Debug`; the table keeps its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckoutState(String);

impl CheckoutState {
    pub fn from_entropy(bytes: [u8; STATE_ENTROPY]) -> Self {
        Self(hex::encode(bytes))
    }

    pub fn parse(value: &str) -> Result<Self, IdError> {
        let ok = value.len() == STATE_ENTROPY * 2
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError {
                field: "state",
                problem: "is not a checkout state",
            })
        }
    }

    /// The value for the success and fail URLs.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// What the table stores and looks the checkout up by (SHA-256, hex).
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for CheckoutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckoutState(***)")
    }
}

/// One started checkout, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// [`CheckoutState::hash`] of its state.
    pub state_hash: String,
    /// The signed-in user (the token's `sub`) who started it.
    pub user_id: String,
    pub customer_key: CustomerKey,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Hash of the first authKey a success redirect brought with this state: the state is
    /// then spent for any other authKey, while a reload of the same redirect still works.
    pub auth_key_hash: Option<String>,
}

/// Why a success redirect is refused before Toss is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutRefusal {
    /// `INVALID_STATE`: missing, unknown, expired, or used with another authKey.
    InvalidState,
    /// `CUSTOMER_MISMATCH`: the redirect's customerKey is not the checkout's.
    CustomerMismatch,
}

impl CheckoutRefusal {
    pub fn code(self) -> &'static str {
        match self {
            CheckoutRefusal::InvalidState => "INVALID_STATE",
            CheckoutRefusal::CustomerMismatch => "CUSTOMER_MISMATCH",
        }
    }
}

impl Checkout {
    /// How long a started checkout can be finished.
    pub const LIFETIME: Duration = Duration::minutes(30);

    pub fn start(
        state: &CheckoutState,
        user_id: impl Into<String>,
        customer_key: CustomerKey,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            state_hash: state.hash(),
            user_id: user_id.into(),
            customer_key,
            created_at: now,
            expires_at: now + Self::LIFETIME,
            auth_key_hash: None,
        }
    }

    /// Whether a success redirect bringing `customer_key` and an authKey hashing to
    /// `auth_key_hash` may go on to Toss at `now`.
    pub fn admits(
        &self,
        customer_key: &CustomerKey,
        auth_key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CheckoutRefusal> {
        if now >= self.expires_at {
            return Err(CheckoutRefusal::InvalidState);
        }
        if self
            .auth_key_hash
            .as_deref()
            .is_some_and(|bound| bound != auth_key_hash)
        {
            return Err(CheckoutRefusal::InvalidState);
        }
        if &self.customer_key != customer_key {
            return Err(CheckoutRefusal::CustomerMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T05:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_generated_customer_key_fits_tosss_rules_and_differs_with_its_entropy() {
        let a = CustomerKey::from_entropy([0xab; CUSTOMER_KEY_ENTROPY]);
        let b = CustomerKey::from_entropy([0x01; CUSTOMER_KEY_ENTROPY]);
        assert_eq!(a.as_str(), format!("cus_{}", "ab".repeat(16)));
        assert_ne!(a, b);
        assert!(CustomerKey::parse(a.as_str()).is_ok());
        assert!(a.as_str().len() <= 50);
    }

    #[test]
    fn a_state_round_trips_hashes_stably_and_never_prints() {
        let state = CheckoutState::from_entropy([7; STATE_ENTROPY]);
        let parsed = CheckoutState::parse(state.expose_secret()).unwrap();
        assert_eq!(parsed.hash(), state.hash());
        assert_ne!(state.hash(), state.expose_secret());
        assert!(!format!("{state:?}").contains(state.expose_secret()));
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)] {
            assert!(CheckoutState::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_checkout_admits_its_own_customer_until_it_expires_and_only_its_first_auth_key() {
        let key = CustomerKey::from_entropy([1; 16]);
        let other = CustomerKey::from_entropy([2; 16]);
        let state = CheckoutState::from_entropy([3; 32]);
        let fresh = Checkout::start(&state, "user_a", key.clone(), t0());
        let bound = Checkout {
            auth_key_hash: Some("h1".into()),
            ..fresh.clone()
        };
        let later = |m| t0() + Duration::minutes(m);
        let cases = [
            (&fresh, &key, "h1", later(0), Ok(())),
            (&fresh, &key, "h1", later(29), Ok(())),
            (
                &fresh,
                &key,
                "h1",
                later(30),
                Err(CheckoutRefusal::InvalidState),
            ),
            (
                &fresh,
                &other,
                "h1",
                later(1),
                Err(CheckoutRefusal::CustomerMismatch),
            ),
            (&bound, &key, "h1", later(1), Ok(())),
            (
                &bound,
                &key,
                "h2",
                later(1),
                Err(CheckoutRefusal::InvalidState),
            ),
            (
                &bound,
                &other,
                "h2",
                later(1),
                Err(CheckoutRefusal::InvalidState),
            ),
        ];
        for (i, (checkout, customer, hash, now, expected)) in cases.into_iter().enumerate() {
            assert_eq!(checkout.admits(customer, hash, now), expected, "case {i}");
        }
    }
}
