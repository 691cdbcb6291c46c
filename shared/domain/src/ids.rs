//! Identifiers that cross a trust boundary, each parsed once into a type that can only hold
//! a valid value. Secrets (`AuthKey`, `BillingKey`) have no `Display` and a masked `Debug`.

use std::fmt;

/// Why a value was refused; never echoes the value itself (it may be a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct IdError {
    pub field: &'static str,
    pub problem: &'static str,
}

fn check(
    field: &'static str,
    value: &str,
    len: std::ops::RangeInclusive<usize>,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError {
            field,
            problem: "is empty",
        });
    }
    if !value.bytes().all(allowed) {
        return Err(IdError {
            field,
            problem: "has characters outside its allowed set",
        });
    }
    if !len.contains(&value.len()) {
        return Err(IdError {
            field,
            problem: "has a length outside its allowed range",
        });
    }
    Ok(())
}

macro_rules! plain_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $len:expr, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check($field, &value, $len, $allowed)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

macro_rules! secret_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $len:expr, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check($field, &value, $len, $allowed)?;
                Ok(Self(value))
            }

            /// The raw value, for the one place that must send or store it.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(***)", stringify!($name))
            }
        }
    };
}

fn customer_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.' | b'@')
}

fn order_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'.' | b'~' | b'+' | b'/')
}

fn printable_ascii(b: u8) -> bool {
    b.is_ascii_graphic()
}

plain_id!(
    /// Toss `customerKey`: `^[A-Za-z0-9\-_=.@]{2,50}$`, the intersection of what the browser
    /// SDK (≤50) and the server API (≤300) accept, so one value works in both.
    CustomerKeyRaw,
    "customerKey",
    2..=50,
    customer_key_char
);

/// Toss `customerKey` (the app's user id). The SDK's guest key `@@ANONYMOUS` is refused:
/// a billing key is bound to its customer, so a shared guest key would mix customers.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerKey(CustomerKeyRaw);

/// Bytes of randomness in a generated customer key (128 bits).
pub const CUSTOMER_KEY_ENTROPY: usize = 16;

impl CustomerKey {
    /// A fresh server-owned customer key, `cus_` and 32 hex digits: unguessable (Toss's
    /// reference calls user ids, e-mails and sequences unsafe) and within Toss's rules.
    pub fn from_entropy(bytes: [u8; CUSTOMER_KEY_ENTROPY]) -> Self {
        Self(CustomerKeyRaw(format!("cus_{}", hex::encode(bytes))))
    }

    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let raw = CustomerKeyRaw::parse(value)?;
        if raw.as_str() == "@@ANONYMOUS" {
            return Err(IdError {
                field: "customerKey",
                problem: "is the SDK's anonymous key",
            });
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomerKey({:?})", self.as_str())
    }
}

plain_id!(
    /// Toss `orderId`: `^[A-Za-z0-9_-]{6,64}$`, unique per merchant.
    OrderId,
    "orderId",
    6..=64,
    order_id_char
);

plain_id!(
    /// `Idempotency-Key` header: at most 300 printable ASCII characters.
    IdempotencyKey,
    "Idempotency-Key",
    1..=300,
    printable_ascii
);

plain_id!(
    /// Toss `paymentKey` (≤200). Not a secret: it identifies a payment for lookups.
    PaymentKey,
    "paymentKey",
    1..=200,
    printable_ascii
);

plain_id!(
    /// Our subscription id: a ULID (26 Crockford base32 characters).
    SubscriptionId,
    "subscriptionId",
    26..=26,
    |b: u8| b.is_ascii_digit() || b.is_ascii_uppercase()
);

secret_id!(
    /// The one-time `authKey` Toss appends to the success redirect (≤300).
    AuthKey,
    "authKey",
    1..=300,
    token_char
);

secret_id!(
    /// A Toss billing key (≤200): together with its customerKey it can charge the card.
    BillingKey,
    "billingKey",
    1..=200,
    token_char
);

impl OrderId {
    /// The order id of one charge attempt, derived from (subscription, period, attempt) so a
    /// re-run of the same attempt can only ever reuse it, never invent a new one.
    pub fn for_attempt(subscription: &SubscriptionId, period: u32, attempt: u32) -> Self {
        // 26 + 1 + ≤10 + 1 + ≤10 ≤ 48 characters from [0-9A-Z-]: always valid.
        Self(format!("{subscription}-{period}-{attempt}"))
    }
}

impl IdempotencyKey {
    /// A refund's key, `refund-<orderId>-<n>` (`Refund::key`): at most 80 characters of
    /// `[0-9A-Za-z-]`, always valid.
    pub(crate) fn from_refund(key: &str) -> Self {
        Self(key.to_owned())
    }
}

impl From<&OrderId> for IdempotencyKey {
    /// The charge of an order is sent with the order id as its idempotency key: one key per
    /// logical charge, reused by every retry of it.
    fn from(order_id: &OrderId) -> Self {
        Self(order_id.0.clone())
    }
}

impl BillingKey {
    /// A short, one-way fingerprint of the key: enough to tell two keys apart in the ledger
    /// (which card an attempt charged) without storing the key a second time.
    pub fn fingerprint(&self) -> CardRef {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.expose_secret().as_bytes());
        CardRef(hex::encode(&digest[..8]))
    }
}

/// Which billing key an attempt was sent with: the key's [`BillingKey::fingerprint`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CardRef(String);

impl CardRef {
    /// Reads a stored fingerprint (16 lowercase hex digits).
    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        check("CardRef", &value, 16..=16, |b| {
            b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
        })?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clerk_user_id_is_a_valid_customer_key() {
        assert!(CustomerKey::parse("user_2abcDEFghiJKLmnop").is_ok());
    }

    #[test]
    fn customer_keys_outside_tosss_rules_are_refused() {
        for bad in [
            "",
            "a",
            "has space",
            "한글키",
            "semi;colon",
            &"x".repeat(51),
            "@@ANONYMOUS",
        ] {
            assert!(
                CustomerKey::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(CustomerKey::parse("a-_=.@Z9").is_ok());
    }

    #[test]
    fn order_ids_follow_tosss_charset_and_length() {
        assert!(OrderId::parse("abc12").is_err());
        assert!(OrderId::parse("abc123").is_ok());
        assert!(OrderId::parse("x".repeat(64)).is_ok());
        assert!(OrderId::parse("x".repeat(65)).is_err());
        assert!(OrderId::parse("order.1234").is_err());
    }

    #[test]
    fn an_attempt_order_id_is_valid_and_names_its_period_and_attempt() {
        let sub = SubscriptionId::parse("01JDQ4ZC1V3M5N7P9R2T4W6Y8A").unwrap();
        let id = OrderId::for_attempt(&sub, 12, 3);
        assert_eq!(id.as_str(), "01JDQ4ZC1V3M5N7P9R2T4W6Y8A-12-3");
        assert!(OrderId::parse(id.as_str()).is_ok());
        let longest = OrderId::for_attempt(&sub, u32::MAX, u32::MAX);
        assert!(OrderId::parse(longest.as_str()).is_ok());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let billing = BillingKey::parse("Z_t5vOvQxrj4499PeiJcjen28-V2RyqgYTwN44Rdzk0=").unwrap();
        let auth = AuthKey::parse("bln_4Kd9sLq2").unwrap();
        let shown = format!("{billing:?} {auth:?}");
        assert!(!shown.contains("Z_t5"), "{shown}");
        assert!(!shown.contains("bln_"), "{shown}");
        assert_eq!(shown, "BillingKey(***) AuthKey(***)");
    }

    #[test]
    fn refusing_a_secret_does_not_echo_it() {
        let err = AuthKey::parse("secret value with spaces").unwrap_err();
        assert!(!err.to_string().contains("secret value"), "{err}");
    }

    #[test]
    fn idempotency_keys_over_300_characters_are_refused() {
        assert!(IdempotencyKey::parse("k".repeat(300)).is_ok());
        assert!(IdempotencyKey::parse("k".repeat(301)).is_err());
    }
}
