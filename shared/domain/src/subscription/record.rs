//! The stored shape of a subscription: what the store reads back from its item and writes
//! out. Building a [`Subscription`] from a record is restoring one that was saved, not a
//! transition; only the store (and tests that need a state no transition reaches) do it.

use chrono::{DateTime, Utc};

use super::{CancelReason, Dunning, Hold, Status, Subscription};
use crate::{BillingKey, CustomerKey, CustomerName, Email, SubscriptionId};

/// Every stored field of a [`Subscription`] (its unwritten credit entries are not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub id: SubscriptionId,
    pub customer_key: CustomerKey,
    pub status: Status,
    /// `None` once deleted at Toss.
    pub billing_key: Option<BillingKey>,
    /// Keys this subscription used before and that still exist at Toss: deleted by the sweep
    /// until Toss confirms (a replaced card's key, say).
    pub retired_billing_keys: Vec<BillingKey>,
    /// Masked as Toss returns it (`43301234****123*`).
    pub card_number_masked: Option<String>,
    /// The card company's name (`현대`) as Toss gave it, or its issuer code when Toss no
    /// longer sends names.
    pub card_company: Option<String>,
    pub customer_email: Option<Email>,
    pub customer_name: Option<CustomerName>,
    /// The moment of the first successful charge: every period is computed from it.
    pub anchor: Option<DateTime<Utc>>,
    /// The period the next charge is for (0 = the first month).
    pub next_period: u32,
    /// Attempts already applied to this subscription for `next_period`.
    pub attempts: u32,
    /// When the sweep should next act; `None` when there is nothing to do.
    pub next_charge_at: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    /// The credits balance: the current period's allowance (plus carried-over credits with
    /// rollover) less what was consumed. Only ever changed together with a [`CreditEntry`](crate::CreditEntry).
    pub credits: u64,
    /// Credits consumed since the current period was granted (a statutory withdrawal needs
    /// none used).
    pub credits_used_in_period: u64,
    pub cancel_at_period_end: bool,
    /// The key of a statutory withdrawal's refund that Toss has not answered yet. While it is
    /// set no credit can be spent and no renewal claimed; the subscription ends (and its
    /// credits are taken back) only once Toss says the money is back, and nothing changes if
    /// Toss refuses (see `billing::withdrawal`).
    pub withdrawal: Option<String>,
    pub dunning: Option<Dunning>,
    /// Set while an operator must look (see [`Hold`]).
    pub hold: Option<Hold>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<CancelReason>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped on every write.
    pub version: u64,
}

impl Subscription {
    /// The subscription a record describes, with no credit entries waiting to be written.
    pub fn restore(record: SubscriptionRecord) -> Self {
        let SubscriptionRecord {
            id,
            customer_key,
            status,
            billing_key,
            retired_billing_keys,
            card_number_masked,
            card_company,
            customer_email,
            customer_name,
            anchor,
            next_period,
            attempts,
            next_charge_at,
            current_period_end,
            credits,
            credits_used_in_period,
            cancel_at_period_end,
            withdrawal,
            dunning,
            hold,
            canceled_at,
            cancel_reason,
            created_at,
            updated_at,
            version,
        } = record;
        Self {
            id,
            customer_key,
            status,
            billing_key,
            retired_billing_keys,
            card_number_masked,
            card_company,
            customer_email,
            customer_name,
            anchor,
            next_period,
            attempts,
            next_charge_at,
            current_period_end,
            credits,
            credits_used_in_period,
            cancel_at_period_end,
            withdrawal,
            dunning,
            hold,
            canceled_at,
            cancel_reason,
            created_at,
            updated_at,
            version,
            pending_credits: Vec::new(),
        }
    }

    /// The stored fields, for writing the item (or for a test to start from).
    pub fn to_record(&self) -> SubscriptionRecord {
        SubscriptionRecord {
            id: self.id.clone(),
            customer_key: self.customer_key.clone(),
            status: self.status,
            billing_key: self.billing_key.clone(),
            retired_billing_keys: self.retired_billing_keys.clone(),
            card_number_masked: self.card_number_masked.clone(),
            card_company: self.card_company.clone(),
            customer_email: self.customer_email.clone(),
            customer_name: self.customer_name.clone(),
            anchor: self.anchor,
            next_period: self.next_period,
            attempts: self.attempts,
            next_charge_at: self.next_charge_at,
            current_period_end: self.current_period_end,
            credits: self.credits,
            credits_used_in_period: self.credits_used_in_period,
            cancel_at_period_end: self.cancel_at_period_end,
            withdrawal: self.withdrawal.clone(),
            dunning: self.dunning.clone(),
            hold: self.hold.clone(),
            canceled_at: self.canceled_at,
            cancel_reason: self.cancel_reason,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }

    /// After the store wrote it: the version it now has, and no credit entries left to write.
    pub fn saved(&mut self) {
        self.version += 1;
        self.pending_credits.clear();
    }
}
