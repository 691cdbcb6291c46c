//! Wire types: the exact shape of each item in the table, converted to and from the domain at
//! this edge. Optional attributes are omitted rather than stored as NULL (a NULL `due_pk`
//! would break the sparse index).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::{
    AttemptKind, AttemptStatus, BillingKey, CancelReason, CardRef, ChargeAttempt,
    ChargeAttemptRecord, CustomerKey, CustomerName, Dunning, Email, Hold, Krw, Lease, OrderId,
    PaymentKey, Status, Subscription, SubscriptionId, SubscriptionRecord,
};
use serde::{Deserialize, Serialize};

use crate::{DUE_SHARDS, Error, time};

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn subscription_pk(id: &SubscriptionId) -> String {
    format!("SUB#{id}")
}
pub(crate) const SUBSCRIPTION_SK: &str = "SUB";
pub(crate) fn customer_pk(key: &CustomerKey) -> String {
    format!("CUS#{key}")
}
pub(crate) const CUSTOMER_SK: &str = "CUS";
pub(crate) fn attempt_sk(period: u32, attempt: u32) -> String {
    format!("CHG#{period:010}#{attempt:010}")
}
pub(crate) fn attempt_period_prefix(period: u32) -> String {
    format!("CHG#{period:010}#")
}
pub(crate) const ATTEMPT_PREFIX: &str = "CHG#";
pub(crate) fn redirect_pk(auth_key_hash: &str) -> String {
    format!("AUTH#{auth_key_hash}")
}
pub(crate) const REDIRECT_SK: &str = "AUTH";

/// Due-index partition of a subscription: a stable FNV-1a hash of its id.
pub(crate) fn due_shard(id: &SubscriptionId) -> u32 {
    let hash = id.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash % DUE_SHARDS
}

pub(crate) fn due_pk(shard: u32) -> String {
    format!("DUE#{shard:02}")
}

/// Sort-key prefix of refunds (refund.rs): `RFD#<period:010>#<attempt:010>#<n:010>`.
pub(crate) const REFUND_PREFIX: &str = "RFD#";

/// The paid attempt a refund's sort key belongs to: `(period, attempt)`.
pub(crate) fn refund_attempt_of(sk: &str) -> Option<(u32, u32)> {
    let mut parts = sk.strip_prefix(REFUND_PREFIX)?.split('#');
    let period = parts.next()?.parse().ok()?;
    let attempt = parts.next()?.parse().ok()?;
    Some((period, attempt))
}

pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, Error> {
    serde_dynamo::to_item(value).map_err(|e| Error::corrupt("(new item)", e.to_string()))
}

pub(crate) fn from_item<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, Error> {
    let key = item_key(&item);
    serde_dynamo::from_item(item).map_err(|e| Error::corrupt(key, e.to_string()))
}

pub(crate) fn item_key(item: &Item) -> String {
    let s = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    format!("{}/{}", s("pk"), s("sk"))
}

fn ts(t: DateTime<Utc>) -> String {
    time::format(t)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(time::format)
}

fn parse_ts(key: &str, field: &str, s: &str) -> Result<DateTime<Utc>, Error> {
    time::parse(s).ok_or_else(|| Error::corrupt(key, format!("{field} is not a timestamp")))
}

fn parse_opt_ts(key: &str, field: &str, s: Option<&str>) -> Result<Option<DateTime<Utc>>, Error> {
    s.map(|s| parse_ts(key, field, s)).transpose()
}

fn bad(key: &str, field: &str) -> Error {
    Error::corrupt(key, format!("{field} is invalid"))
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SubscriptionItem {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub customer_key: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_billing_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_number_masked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    pub next_period: u32,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_charge_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<String>,
    pub credits: u64,
    #[serde(default)]
    pub credits_used_in_period: u64,
    pub cancel_at_period_end: bool,
    /// A pending statutory withdrawal's refund key. Consumption and the renewal claim are
    /// conditioned on its absence (credits.rs, dynamo.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dunning_started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dunning_failed_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dunning_card_unusable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dunning_last_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canceled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    /// The current billing key's one-way fingerprint, only while there is one: the sparse
    /// `card` index (webhook.rs) finds a subscription by a key Toss names, without the raw
    /// key stored anywhere else. Derived on every write; never read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_fp: Option<String>,
}

impl SubscriptionItem {
    /// The item for `sub` as it will be stored at `version`.
    pub(crate) fn new(sub: &Subscription, version: u64) -> Self {
        let due_at = sub.due_at();
        let card_fp = sub
            .billing_key()
            .map(|k| k.fingerprint().as_str().to_owned());
        let due_pk = due_at.map(|_| due_pk(due_shard(sub.id())));
        let sub = sub.to_record();
        Self {
            pk: subscription_pk(&sub.id),
            sk: SUBSCRIPTION_SK.to_owned(),
            id: sub.id.to_string(),
            customer_key: sub.customer_key.to_string(),
            status: sub.status.as_str().to_owned(),
            billing_key: sub
                .billing_key
                .as_ref()
                .map(|k| k.expose_secret().to_owned()),
            retired_billing_keys: sub
                .retired_billing_keys
                .iter()
                .map(|k| k.expose_secret().to_owned())
                .collect(),
            card_number_masked: sub.card_number_masked.clone(),
            card_company: sub.card_company.clone(),
            customer_email: sub.customer_email.as_ref().map(|e| e.as_str().to_owned()),
            customer_name: sub.customer_name.as_ref().map(|n| n.as_str().to_owned()),
            anchor: opt_ts(sub.anchor),
            next_period: sub.next_period,
            attempts: sub.attempts,
            next_charge_at: opt_ts(sub.next_charge_at),
            current_period_end: opt_ts(sub.current_period_end),
            credits: sub.credits,
            credits_used_in_period: sub.credits_used_in_period,
            cancel_at_period_end: sub.cancel_at_period_end,
            withdrawal: sub.withdrawal.clone(),
            dunning_started_at: sub.dunning.as_ref().map(|d| ts(d.started_at)),
            dunning_failed_attempts: sub.dunning.as_ref().map(|d| d.failed_attempts),
            dunning_card_unusable: sub.dunning.as_ref().map(|d| d.card_unusable),
            dunning_last_code: sub.dunning.as_ref().map(|d| d.last_code.clone()),
            hold_code: sub.hold.as_ref().map(|h| h.code.clone()),
            hold_order_id: sub
                .hold
                .as_ref()
                .and_then(|h| h.order_id.as_ref())
                .map(ToString::to_string),
            hold_since: sub.hold.as_ref().map(|h| ts(h.since)),
            canceled_at: opt_ts(sub.canceled_at),
            cancel_reason: sub.cancel_reason.map(|r| r.as_str().to_owned()),
            created_at: ts(sub.created_at),
            updated_at: ts(sub.updated_at),
            version,
            due_pk,
            due_at: opt_ts(due_at),
            card_fp,
        }
    }
}

impl TryFrom<SubscriptionItem> for Subscription {
    type Error = Error;

    fn try_from(item: SubscriptionItem) -> Result<Self, Error> {
        let key = format!("{}/{}", item.pk, item.sk);
        let k = key.as_str();
        let dunning = match (
            item.dunning_started_at.as_deref(),
            item.dunning_failed_attempts,
        ) {
            (Some(started), Some(failed)) => Some(Dunning {
                started_at: parse_ts(k, "dunning_started_at", started)?,
                failed_attempts: failed,
                card_unusable: item.dunning_card_unusable.unwrap_or(false),
                last_code: item.dunning_last_code.unwrap_or_default(),
            }),
            _ => None,
        };
        let hold = match (item.hold_code, item.hold_since.as_deref()) {
            (Some(code), Some(since)) => Some(Hold {
                code,
                order_id: item
                    .hold_order_id
                    .map(OrderId::parse)
                    .transpose()
                    .map_err(|_| bad(k, "hold_order_id"))?,
                since: parse_ts(k, "hold_since", since)?,
            }),
            _ => None,
        };
        Ok(Subscription::restore(SubscriptionRecord {
            id: SubscriptionId::parse(item.id).map_err(|_| bad(k, "id"))?,
            customer_key: CustomerKey::parse(item.customer_key)
                .map_err(|_| bad(k, "customer_key"))?,
            status: Status::parse(&item.status).ok_or_else(|| bad(k, "status"))?,
            billing_key: item
                .billing_key
                .map(BillingKey::parse)
                .transpose()
                .map_err(|_| bad(k, "billing_key"))?,
            retired_billing_keys: item
                .retired_billing_keys
                .into_iter()
                .map(BillingKey::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| bad(k, "retired_billing_keys"))?,
            card_number_masked: item.card_number_masked,
            card_company: item.card_company,
            customer_email: item
                .customer_email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|_| bad(k, "customer_email"))?,
            customer_name: item
                .customer_name
                .as_deref()
                .map(CustomerName::parse)
                .transpose()
                .map_err(|_| bad(k, "customer_name"))?,
            anchor: parse_opt_ts(k, "anchor", item.anchor.as_deref())?,
            next_period: item.next_period,
            attempts: item.attempts,
            next_charge_at: parse_opt_ts(k, "next_charge_at", item.next_charge_at.as_deref())?,
            current_period_end: parse_opt_ts(
                k,
                "current_period_end",
                item.current_period_end.as_deref(),
            )?,
            credits: item.credits,
            credits_used_in_period: item.credits_used_in_period,
            cancel_at_period_end: item.cancel_at_period_end,
            withdrawal: item.withdrawal,
            dunning,
            hold,
            canceled_at: parse_opt_ts(k, "canceled_at", item.canceled_at.as_deref())?,
            cancel_reason: item
                .cancel_reason
                .as_deref()
                .map(|r| CancelReason::parse(r).ok_or_else(|| bad(k, "cancel_reason")))
                .transpose()?,
            created_at: parse_ts(k, "created_at", &item.created_at)?,
            updated_at: parse_ts(k, "updated_at", &item.updated_at)?,
            version: item.version,
        }))
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AttemptItem {
    pub pk: String,
    pub sk: String,
    pub subscription_id: String,
    pub customer_key: String,
    pub period: u32,
    pub attempt: u32,
    pub order_id: String,
    pub amount: u64,
    /// What refunds have left of `amount` (written only by a refund's claim or release;
    /// absent until the first refund).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refundable: Option<u64>,
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_url: Option<String>,
    /// `DONE` only: the Seoul day it was paid on, the key of the sparse `settled` index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_day: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub reconcile_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_reconcile_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The Seoul day a paid attempt counts on (approval time, else its last update), the key of the
/// `settled` index; `None` for every attempt that is not `DONE`.
fn settled_day(attempt: &ChargeAttempt) -> Option<String> {
    (attempt.status() == domain::AttemptStatus::Done).then(|| {
        attempt
            .approved_at()
            .unwrap_or(attempt.updated_at())
            .with_timezone(&domain::SEOUL)
            .date_naive()
            .format("%Y-%m-%d")
            .to_string()
    })
}

impl From<&ChargeAttempt> for AttemptItem {
    fn from(a: &ChargeAttempt) -> Self {
        let settled_day = settled_day(a);
        let a = a.to_record();
        Self {
            pk: subscription_pk(&a.subscription_id),
            sk: attempt_sk(a.period, a.attempt),
            subscription_id: a.subscription_id.to_string(),
            customer_key: a.customer_key.to_string(),
            period: a.period,
            attempt: a.attempt,
            order_id: a.order_id.to_string(),
            amount: a.amount.won(),
            refundable: (a.refunded.won() > 0)
                .then(|| a.amount.won().saturating_sub(a.refunded.won())),
            kind: a.kind.as_str().to_owned(),
            status: a.status.as_str().to_owned(),
            card: a.card.as_ref().map(|c| c.as_str().to_owned()),
            lease_owner: a.lease.as_ref().map(|l| l.owner.clone()),
            lease_until: a.lease.as_ref().map(|l| ts(l.until)),
            payment_key: a.payment_key.as_ref().map(ToString::to_string),
            approved_at: opt_ts(a.approved_at),
            receipt_url: a.receipt_url.clone(),
            settled_day,
            error_code: a.error_code.clone(),
            error_message: a.error_message.clone(),
            reconcile_count: a.reconcile_count,
            next_reconcile_at: opt_ts(a.next_reconcile_at),
            created_at: ts(a.created_at),
            updated_at: ts(a.updated_at),
        }
    }
}

impl TryFrom<AttemptItem> for ChargeAttempt {
    type Error = Error;

    fn try_from(item: AttemptItem) -> Result<Self, Error> {
        let key = format!("{}/{}", item.pk, item.sk);
        let k = key.as_str();
        let lease = match (item.lease_owner, item.lease_until.as_deref()) {
            (Some(owner), Some(until)) => Some(Lease {
                owner,
                until: parse_ts(k, "lease_until", until)?,
            }),
            _ => None,
        };
        Ok(ChargeAttempt::restore(ChargeAttemptRecord {
            subscription_id: SubscriptionId::parse(item.subscription_id)
                .map_err(|_| bad(k, "subscription_id"))?,
            customer_key: CustomerKey::parse(item.customer_key)
                .map_err(|_| bad(k, "customer_key"))?,
            period: item.period,
            attempt: item.attempt,
            order_id: OrderId::parse(item.order_id).map_err(|_| bad(k, "order_id"))?,
            amount: Krw::new(item.amount),
            refunded: Krw::new(
                item.amount
                    .saturating_sub(item.refundable.unwrap_or(item.amount)),
            ),
            kind: AttemptKind::parse(&item.kind).ok_or_else(|| bad(k, "kind"))?,
            status: AttemptStatus::parse(&item.status).ok_or_else(|| bad(k, "status"))?,
            card: item
                .card
                .map(CardRef::parse)
                .transpose()
                .map_err(|_| bad(k, "card"))?,
            lease,
            payment_key: item
                .payment_key
                .map(PaymentKey::parse)
                .transpose()
                .map_err(|_| bad(k, "payment_key"))?,
            approved_at: parse_opt_ts(k, "approved_at", item.approved_at.as_deref())?,
            receipt_url: item.receipt_url,
            error_code: item.error_code,
            error_message: item.error_message,
            reconcile_count: item.reconcile_count,
            next_reconcile_at: parse_opt_ts(
                k,
                "next_reconcile_at",
                item.next_reconcile_at.as_deref(),
            )?,
            created_at: parse_ts(k, "created_at", &item.created_at)?,
            updated_at: parse_ts(k, "updated_at", &item.updated_at)?,
        }))
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CustomerItem {
    pub pk: String,
    pub sk: String,
    pub customer_key: String,
    pub subscription_id: String,
    pub updated_at: String,
}

/// What one billing-auth redirect (one `authKey`) led to, so that loading the same URL again
/// lands on the same result without calling Toss. Keyed by a hash: the authKey is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRecord {
    pub auth_key_hash: String,
    pub customer_key: CustomerKey,
    pub subscription_id: Option<SubscriptionId>,
    /// The charge this redirect started, if any.
    pub order_id: Option<(u32, u32)>,
    /// Set when the redirect failed before a subscription was touched (e.g. card rejected).
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Redirect records expire after 30 days (DynamoDB TTL on `expires_at`).
const REDIRECT_TTL_DAYS: i64 = 30;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RedirectItem {
    pub pk: String,
    pub sk: String,
    pub customer_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge_period: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge_attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    pub created_at: String,
    pub expires_at: i64,
}

impl From<&RedirectRecord> for RedirectItem {
    fn from(r: &RedirectRecord) -> Self {
        Self {
            pk: redirect_pk(&r.auth_key_hash),
            sk: REDIRECT_SK.to_owned(),
            customer_key: r.customer_key.to_string(),
            subscription_id: r.subscription_id.as_ref().map(ToString::to_string),
            charge_period: r.order_id.map(|(p, _)| p),
            charge_attempt: r.order_id.map(|(_, a)| a),
            failure_code: r.failure_code.clone(),
            created_at: ts(r.created_at),
            expires_at: (r.created_at + chrono::Duration::days(REDIRECT_TTL_DAYS)).timestamp(),
        }
    }
}

impl RedirectItem {
    pub(crate) fn into_record(self, auth_key_hash: &str) -> Result<RedirectRecord, Error> {
        let key = format!("{}/{}", self.pk, self.sk);
        let k = key.as_str();
        Ok(RedirectRecord {
            auth_key_hash: auth_key_hash.to_owned(),
            customer_key: CustomerKey::parse(self.customer_key)
                .map_err(|_| bad(k, "customer_key"))?,
            subscription_id: self
                .subscription_id
                .map(SubscriptionId::parse)
                .transpose()
                .map_err(|_| bad(k, "subscription_id"))?,
            order_id: self.charge_period.zip(self.charge_attempt),
            failure_code: self.failure_code,
            created_at: parse_ts(k, "created_at", &self.created_at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Plan;

    fn kst(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sub() -> Subscription {
        let mut s = Subscription::new(
            SubscriptionId::parse("01JDQ4ZC1V3M5N7P9R2T4W6Y8A").unwrap(),
            CustomerKey::parse("user_2abc").unwrap(),
            BillingKey::parse("Z_t5vOvQxrj4499PeiJcjen28-V2RyqgYTwN44Rdzk0=").unwrap(),
            Some("43301234****123*".into()),
            kst("2026-01-31T10:00:00+09:00"),
        );
        s.apply_success(
            0,
            kst("2026-01-31T10:00:01+09:00"),
            &Plan::new(Krw::new(3900), "Pro", 30).unwrap(),
        );
        s
    }

    #[test]
    fn a_subscription_round_trips_through_its_dynamodb_item() {
        // Unwritten credit entries are not part of the item (the store writes them alongside).
        let s = Subscription::restore(sub().to_record());
        let item = to_item(&SubscriptionItem::new(&s, s.version())).unwrap();
        let back: Subscription = from_item::<SubscriptionItem>(item)
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_live_subscription_carries_due_index_keys_and_a_finished_one_does_not() {
        let mut s = sub();
        let item = to_item(&SubscriptionItem::new(&s, 1)).unwrap();
        assert!(item["due_pk"].as_s().unwrap().starts_with("DUE#"));
        assert_eq!(item["due_at"].as_s().unwrap(), "2026-02-27T15:00:00.000Z");
        s.cancel(CancelReason::PeriodEnd, kst("2026-02-28T09:00:00+09:00"));
        s.billing_key_deleted(kst("2026-02-28T09:00:00+09:00"));
        let item = to_item(&SubscriptionItem::new(&s, 2)).unwrap();
        assert!(!item.contains_key("due_pk"), "no NULL placeholder either");
        assert!(!item.contains_key("due_at"));
        assert!(!item.contains_key("billing_key"));
    }

    #[test]
    fn only_a_paid_attempt_carries_the_seoul_day_it_was_paid_on() {
        let s = sub();
        let claimed_at = kst("2026-12-01T08:59:00+09:00");
        let mut a = ChargeAttempt::claim(
            s.id().clone(),
            s.customer_key().clone(),
            1,
            0,
            Krw::new(3900),
            AttemptKind::Renewal,
            Lease {
                owner: "run-1".into(),
                until: claimed_at + chrono::Duration::minutes(5),
            },
            claimed_at,
        );
        let open = to_item(&AttemptItem::from(&a)).unwrap();
        // 23:30 UTC on Nov 30 is 08:30 KST on Dec 1: the Seoul day counts. Recorded a day
        // later, so the day cannot come from the write's own time.
        a.mark_done(
            domain::PaymentKey::parse("tviva_fake_payment_key_0001").unwrap(),
            kst("2026-12-01T08:30:00+09:00"),
            kst("2026-12-02T10:00:00+09:00"),
        );
        let paid = to_item(&AttemptItem::from(&a)).unwrap();

        assert!(
            !open.contains_key("settled_day"),
            "not in the settled index"
        );
        assert_eq!(paid["settled_day"].as_s().unwrap(), "2026-12-01");
    }

    #[test]
    fn an_attempt_round_trips_through_its_dynamodb_item_and_sorts_by_period_then_attempt() {
        let s = sub();
        let now = kst("2026-02-28T09:00:00+09:00");
        let mut a = ChargeAttempt::claim(
            s.id().clone(),
            s.customer_key().clone(),
            1,
            2,
            Krw::new(3900),
            AttemptKind::Retry,
            Lease {
                owner: "run-1".into(),
                until: now + chrono::Duration::minutes(5),
            },
            now,
        );
        a.mark_unknown(
            "FAILED_INTERNAL_SYSTEM_PROCESSING",
            "잠시 후 다시 시도해주세요",
            now,
        );
        let item = to_item(&AttemptItem::from(&a)).unwrap();
        let back: ChargeAttempt = from_item::<AttemptItem>(item).unwrap().try_into().unwrap();
        assert_eq!(back, a);
        assert!(attempt_sk(1, 10) > attempt_sk(1, 9));
        assert!(attempt_sk(2, 1) > attempt_sk(1, 99));
    }

    #[test]
    fn due_shards_are_stable_and_spread_over_all_partitions() {
        let ids: Vec<_> = (0..2000)
            .map(|i| SubscriptionId::parse(format!("01JDQ4ZC1V3M5N7P9R2T{i:06}")).unwrap())
            .collect();
        let mut counts = [0u32; DUE_SHARDS as usize];
        for id in &ids {
            counts[due_shard(id) as usize] += 1;
            assert_eq!(due_shard(id), due_shard(&id.clone()));
        }
        assert!(counts.iter().all(|c| *c > 60), "{counts:?}");
    }

    #[test]
    fn a_malformed_item_is_a_typed_error_naming_its_key_not_a_panic() {
        let s = sub();
        let mut item = to_item(&SubscriptionItem::new(&s, 1)).unwrap();
        item.insert("status".into(), AttributeValue::S("paused".into()));
        let err = Subscription::try_from(from_item::<SubscriptionItem>(item).unwrap()).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }));
        assert!(
            err.to_string()
                .contains("SUB#01JDQ4ZC1V3M5N7P9R2T4W6Y8A/SUB"),
            "{err}"
        );
    }
}
