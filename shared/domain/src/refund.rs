//! One refund: the ledger entry written before Toss's cancel API is called and completed after,
//! mirroring a charge attempt. Its idempotency key is derived from the entry, so every retry or
//! look-up of one refund speaks of the same cancel.

use chrono::{DateTime, Utc};

use crate::{IdempotencyKey, Krw, OrderId, PaymentKey, SubscriptionId};

/// Who asked for the money back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundBy {
    /// An operator, through the IAM-protected admin event.
    Operator { name: String },
    /// The subscriber, through a statutory withdrawal (청약철회).
    Withdrawal,
    /// Someone in Toss's console: found at Toss, recorded here afterwards.
    TossConsole,
    /// The engine itself: a charge Toss approved for a subscription that had ended meanwhile
    /// (a full refund landed while its renewal was in flight) is given back in full.
    System,
}

impl RefundBy {
    /// The stored form: `operator:<name>`, `withdrawal`, `toss_console`, `system`.
    pub fn as_stored(&self) -> String {
        match self {
            Self::Operator { name } => format!("operator:{name}"),
            Self::Withdrawal => "withdrawal".to_owned(),
            Self::TossConsole => "toss_console".to_owned(),
            Self::System => "system".to_owned(),
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "withdrawal" => Some(Self::Withdrawal),
            "toss_console" => Some(Self::TossConsole),
            "system" => Some(Self::System),
            other => other.strip_prefix("operator:").map(|name| Self::Operator {
                name: name.to_owned(),
            }),
        }
    }
}

/// Where a refund stands. `Claimed` and `Unknown` hold their amount against the payment's
/// refundable balance until Toss's own record settles them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStatus {
    /// Written to the ledger; the cancel may or may not have reached Toss.
    Claimed,
    /// Sent, but the answer was lost or inconclusive: looked up by paymentKey, never re-sent
    /// under another key.
    Unknown,
    /// Toss cancelled it (its `cancels[]` holds our `transaction_key`).
    Done,
    /// Toss refused it: no money moved, and the amount is free again.
    Refused { code: String },
}

impl RefundStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Claimed => "CLAIMED",
            Self::Unknown => "UNKNOWN",
            Self::Done => "DONE",
            Self::Refused { .. } => "REFUSED",
        }
    }

    /// Whether the refund still waits for Toss's word.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Claimed | Self::Unknown)
    }

    /// Whether its amount counts against the refundable balance.
    pub fn holds_balance(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub subscription_id: SubscriptionId,
    /// The paid attempt this refund gives money back from.
    pub period: u32,
    pub attempt: u32,
    pub order_id: OrderId,
    pub payment_key: PaymentKey,
    /// The refund's number among the attempt's refunds, from 1.
    pub number: u32,
    pub amount: Krw,
    pub reason: String,
    pub by: RefundBy,
    pub status: RefundStatus,
    /// Decided when it was claimed: once the money is back, the subscription ends now.
    pub ends_subscription: bool,
    /// Decided when it was claimed: once the money is back, the period's unused credits are
    /// taken back.
    pub takes_back_credits: bool,
    /// Toss's id of the cancel, once it is known.
    pub transaction_key: Option<String>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Toss caps `cancelReason` at 200 characters; the key we append takes at most 62 of them.
const REASON_CHARS: usize = 120;

impl Refund {
    /// A refund claimed now, before Toss is called.
    #[allow(clippy::too_many_arguments)]
    pub fn claim(
        subscription_id: SubscriptionId,
        period: u32,
        attempt: u32,
        payment_key: PaymentKey,
        number: u32,
        amount: Krw,
        reason: &str,
        by: RefundBy,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            order_id: OrderId::for_attempt(&subscription_id, period, attempt),
            subscription_id,
            period,
            attempt,
            payment_key,
            number,
            amount,
            reason: reason.chars().take(REASON_CHARS).collect(),
            by,
            status: RefundStatus::Claimed,
            ends_subscription: false,
            takes_back_credits: false,
            transaction_key: None,
            canceled_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// `refund-<orderId>-<n>`: sent as the cancel's `Idempotency-Key` and inside its reason.
    pub fn key(&self) -> String {
        format!("refund-{}-{}", self.order_id, self.number)
    }

    pub fn idempotency_key(&self) -> IdempotencyKey {
        IdempotencyKey::from_refund(&self.key())
    }

    /// The `cancelReason` sent to Toss: the reason, then the refund's key in brackets, so that
    /// Toss's record of the cancel names the ledger entry it belongs to.
    pub fn cancel_reason(&self) -> String {
        format!("{} [{}]", self.reason, self.key())
    }

    /// Whether a cancel reason Toss recorded names this refund.
    pub fn is_named_in(&self, cancel_reason: &str) -> bool {
        cancel_reason.ends_with(&format!("[{}]", self.key()))
    }

    pub fn mark_done(
        &mut self,
        transaction_key: String,
        canceled_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        self.status = RefundStatus::Done;
        self.transaction_key = Some(transaction_key);
        self.canceled_at = Some(canceled_at);
        self.updated_at = now;
    }

    pub fn mark_unknown(&mut self, now: DateTime<Utc>) {
        self.status = RefundStatus::Unknown;
        self.updated_at = now;
    }

    pub fn mark_refused(&mut self, code: &str, now: DateTime<Utc>) {
        self.status = RefundStatus::Refused {
            code: code.chars().take(64).collect(),
        };
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refund() -> Refund {
        Refund::claim(
            SubscriptionId::parse("01JDQ4ZC1V3M5N7P9R2T4W6Y8A").unwrap(),
            2,
            1,
            PaymentKey::parse("tviva20261201").unwrap(),
            3,
            Krw::new(1000),
            "고객 요청",
            RefundBy::Operator {
                name: "jisoo".into(),
            },
            DateTime::<Utc>::UNIX_EPOCH,
        )
    }

    #[test]
    fn a_refund_is_keyed_by_its_payment_and_number_and_names_itself_in_its_cancel_reason() {
        let r = refund();
        assert_eq!(r.key(), "refund-01JDQ4ZC1V3M5N7P9R2T4W6Y8A-2-1-3");
        assert_eq!(r.idempotency_key().as_str(), r.key());
        assert_eq!(
            r.cancel_reason(),
            "고객 요청 [refund-01JDQ4ZC1V3M5N7P9R2T4W6Y8A-2-1-3]"
        );
        assert!(r.is_named_in(&r.cancel_reason()));
        assert!(!r.is_named_in("고객 요청"));
        let mut other = r.clone();
        other.number = 13;
        assert!(!r.is_named_in(&other.cancel_reason()));
    }

    #[test]
    fn the_longest_cancel_reason_fits_toss_s_limit() {
        let mut r = refund();
        r.order_id = OrderId::for_attempt(&r.subscription_id, u32::MAX, u32::MAX);
        r.number = u32::MAX;
        let long = Refund::claim(
            r.subscription_id.clone(),
            u32::MAX,
            u32::MAX,
            r.payment_key.clone(),
            u32::MAX,
            Krw::new(1),
            &"가".repeat(500),
            RefundBy::Withdrawal,
            DateTime::<Utc>::UNIX_EPOCH,
        );
        assert!(long.cancel_reason().chars().count() <= 200);
    }

    #[test]
    fn only_a_refused_refund_frees_its_amount_and_who_round_trips() {
        let mut r = refund();
        assert!(r.status.holds_balance() && r.status.is_open());
        r.mark_unknown(DateTime::<Utc>::UNIX_EPOCH);
        assert!(r.status.holds_balance() && r.status.is_open());
        r.mark_refused("NOT_CANCELABLE_AMOUNT", DateTime::<Utc>::UNIX_EPOCH);
        assert!(!r.status.holds_balance() && !r.status.is_open());
        for by in [
            RefundBy::Withdrawal,
            RefundBy::TossConsole,
            RefundBy::System,
            RefundBy::Operator { name: "a:b".into() },
        ] {
            assert_eq!(RefundBy::parse(&by.as_stored()), Some(by));
        }
    }
}
