//! The refund ledger.
//!
//! | item            | pk         | sk                                            |
//! |-----------------|------------|-----------------------------------------------|
//! | refund          | `SUB#<id>` | `RFD#<period:010>#<attempt:010>#<n:010>`      |
//! | recorded cancel | `SUB#<id>` | `RFDTX#<Toss transactionKey>`                 |
//! | operator request| `RFDREQ#<request id>` | `RFDREQ`                          |
//!
//! The paid attempt (`CHG#…`) carries `refundable`, what refunds have left of its amount. A
//! refund is claimed in one transaction with a conditional decrement of it, so two racing
//! refunds can never together exceed the payment; a refusal gives the amount back in the
//! same write that records it. Every cancel Toss confirmed is also written as an `RFDTX#`
//! marker created only if new: the same cancel (our own, or one made in Toss's console) is
//! never recorded twice, whoever converges it.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use domain::{
    ChargeAttempt, Krw, OrderId, PaymentKey, Refund, RefundBy, RefundStatus, Subscription,
    SubscriptionId,
};
use serde::{Deserialize, Serialize};

use crate::dynamo::{n, s};
use crate::item::{
    REFUND_PREFIX, attempt_sk, due_pk, due_shard, from_item, subscription_pk, to_item,
};
use crate::{Error, Store, time};

fn refund_sk(period: u32, attempt: u32, number: u32) -> String {
    format!("{REFUND_PREFIX}{period:010}#{attempt:010}#{number:010}")
}

fn refunds_of_attempt_prefix(period: u32, attempt: u32) -> String {
    format!("{REFUND_PREFIX}{period:010}#{attempt:010}#")
}

fn cancel_marker_sk(transaction_key: &str) -> String {
    format!("RFDTX#{transaction_key}")
}

/// An operator's request ids are one namespace for the whole table: an id used for one
/// payment is refused for any other.
fn request_marker_pk(request_id: &str) -> String {
    format!("RFDREQ#{request_id}")
}

const REQUEST_MARKER_SK: &str = "RFDREQ";

/// An operator's refund request, remembered with the refund it claimed: the same request id
/// again is answered from that refund, never claimed twice.
#[derive(Debug, Serialize, Deserialize)]
struct RequestMarkerItem {
    pk: String,
    sk: String,
    subscription_id: String,
    refund_sk: String,
    period: u32,
    attempt: u32,
    number: u32,
    /// What the request asked for (order, amount, policy), to refuse the id reused for
    /// another request.
    fingerprint: String,
    at: String,
}

/// The refund an operator's request id claimed, and what that request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequestRecord {
    pub subscription_id: SubscriptionId,
    pub period: u32,
    pub attempt: u32,
    pub number: u32,
    pub fingerprint: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct RefundItem {
    pk: String,
    sk: String,
    subscription_id: String,
    period: u32,
    attempt: u32,
    order_id: String,
    payment_key: String,
    number: u32,
    amount: u64,
    reason: String,
    by: String,
    status: String,
    #[serde(default)]
    ends_subscription: bool,
    #[serde(default)]
    takes_back_credits: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transaction_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    canceled_at: Option<String>,
    created_at: String,
    updated_at: String,
    /// Only while open: the refund sits in the due index, so that the sweep settles it
    /// (looks it up, sends it again under its own key) even if nobody asks again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_at: Option<String>,
}

/// How long a claimed refund is left to the one sending it before the sweep settles it.
pub const OPEN_REFUND_GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

impl From<&Refund> for RefundItem {
    fn from(r: &Refund) -> Self {
        Self {
            pk: subscription_pk(&r.subscription_id),
            sk: refund_sk(r.period, r.attempt, r.number),
            subscription_id: r.subscription_id.to_string(),
            period: r.period,
            attempt: r.attempt,
            order_id: r.order_id.to_string(),
            payment_key: r.payment_key.to_string(),
            number: r.number,
            amount: r.amount.won(),
            reason: r.reason.clone(),
            by: r.by.as_stored(),
            status: r.status.as_str().to_owned(),
            ends_subscription: r.ends_subscription,
            takes_back_credits: r.takes_back_credits,
            refused_code: match &r.status {
                RefundStatus::Refused { code } => Some(code.clone()),
                _ => None,
            },
            transaction_key: r.transaction_key.clone(),
            canceled_at: r.canceled_at.map(time::format),
            created_at: time::format(r.created_at),
            updated_at: time::format(r.updated_at),
            due_pk: r
                .status
                .is_open()
                .then(|| due_pk(due_shard(&r.subscription_id))),
            due_at: match r.status {
                RefundStatus::Claimed => Some(time::format(r.updated_at + OPEN_REFUND_GRACE)),
                RefundStatus::Unknown => Some(time::format(r.updated_at)),
                _ => None,
            },
        }
    }
}

impl TryFrom<RefundItem> for Refund {
    type Error = Error;

    fn try_from(item: RefundItem) -> Result<Self, Error> {
        let key = format!("{}/{}", item.pk, item.sk);
        let bad = |field: &str| Error::corrupt(key.clone(), format!("{field} is invalid"));
        let ts = |field: &str, v: &str| time::parse(v).ok_or_else(|| bad(field));
        let status = match item.status.as_str() {
            "CLAIMED" => RefundStatus::Claimed,
            "UNKNOWN" => RefundStatus::Unknown,
            "DONE" => RefundStatus::Done,
            "REFUSED" => RefundStatus::Refused {
                code: item.refused_code.unwrap_or_default(),
            },
            _ => return Err(bad("status")),
        };
        Ok(Refund {
            subscription_id: SubscriptionId::parse(item.subscription_id)
                .map_err(|_| bad("subscription_id"))?,
            period: item.period,
            attempt: item.attempt,
            order_id: OrderId::parse(item.order_id).map_err(|_| bad("order_id"))?,
            payment_key: PaymentKey::parse(item.payment_key).map_err(|_| bad("payment_key"))?,
            number: item.number,
            amount: Krw::new(item.amount),
            reason: item.reason,
            by: RefundBy::parse(&item.by).ok_or_else(|| bad("by"))?,
            status,
            ends_subscription: item.ends_subscription,
            takes_back_credits: item.takes_back_credits,
            transaction_key: item.transaction_key,
            canceled_at: item
                .canceled_at
                .as_deref()
                .map(|v| ts("canceled_at", v))
                .transpose()?,
            created_at: ts("created_at", &item.created_at)?,
            updated_at: ts("updated_at", &item.updated_at)?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CancelMarkerItem {
    pk: String,
    sk: String,
    refund_sk: String,
    at: String,
}

/// What a refund's claim (or the record of a cancel found at Toss) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundWrite {
    Written,
    /// The payment is not paid, or what is left of it is less than the amount.
    OverBalance,
    /// Another refund took this number first (read the refunds again and take the next).
    NumberTaken,
    /// The cancel (its transactionKey) is in the ledger already.
    AlreadyRecorded,
    /// The subscription changed since it was read (a consumption, say): read it again.
    SubscriptionChanged,
    /// The refund was settled by someone else meanwhile.
    NotOpen,
    /// Another transaction touched the same items at the same instant: try again.
    Conflict,
    /// The operator's request id was used before (see [`Store::refund_request`]).
    RequestSeen,
}

impl Store {
    fn put_refund(&self, refund: &Refund, condition: RefundCondition) -> Result<Put, Error> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&RefundItem::from(refund))?));
        match condition {
            RefundCondition::New => put.condition_expression("attribute_not_exists(pk)"),
            RefundCondition::Open => put
                .condition_expression("#status IN (:claimed, :unknown)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":claimed", s("CLAIMED"))
                .expression_attribute_values(":unknown", s("UNKNOWN")),
        }
        .build()
        .map_err(|e| Error::corrupt("(refund put)", e.to_string()))
    }

    fn put_cancel_marker(&self, refund: &Refund, transaction_key: &str) -> Result<Put, Error> {
        let marker = CancelMarkerItem {
            pk: subscription_pk(&refund.subscription_id),
            sk: cancel_marker_sk(transaction_key),
            refund_sk: refund_sk(refund.period, refund.attempt, refund.number),
            at: time::format(refund.updated_at),
        };
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&marker)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::corrupt("(cancel marker put)", e.to_string()))
    }

    /// Takes `amount` from the paid attempt's refundable balance, only if it is paid and enough
    /// is left (`total` is the attempt's amount, the balance before any refund).
    fn hold_balance(&self, refund: &Refund, total: Krw) -> Result<Update, Error> {
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(subscription_pk(&refund.subscription_id)))
            .key("sk", s(attempt_sk(refund.period, refund.attempt)))
            .update_expression("SET refundable = if_not_exists(refundable, :total) - :amount")
            .condition_expression(
                "#status = :done AND amount = :total AND (attribute_not_exists(refundable) OR refundable >= :amount)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s("DONE"))
            .expression_attribute_values(":total", n(total.won()))
            .expression_attribute_values(":amount", n(refund.amount.won()))
            .build()
            .map_err(|e| Error::corrupt("(refundable update)", e.to_string()))
    }

    fn release_balance(&self, refund: &Refund) -> Result<Update, Error> {
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(subscription_pk(&refund.subscription_id)))
            .key("sk", s(attempt_sk(refund.period, refund.attempt)))
            .update_expression("SET refundable = refundable + :amount")
            .condition_expression("attribute_exists(refundable)")
            .expression_attribute_values(":amount", n(refund.amount.won()))
            .build()
            .map_err(|e| Error::corrupt("(refundable update)", e.to_string()))
    }

    /// Every refund of one paid attempt, by number.
    pub async fn refunds_of(
        &self,
        id: &SubscriptionId,
        period: u32,
        attempt: u32,
    ) -> Result<Vec<Refund>, Error> {
        self.query_refunds(id, &refunds_of_attempt_prefix(period, attempt))
            .await
    }

    /// Every refund of a subscription, oldest payment first.
    pub async fn refunds(&self, id: &SubscriptionId) -> Result<Vec<Refund>, Error> {
        self.query_refunds(id, REFUND_PREFIX).await
    }

    async fn query_refunds(&self, id: &SubscriptionId, prefix: &str) -> Result<Vec<Refund>, Error> {
        self.items_under(subscription_pk(id), prefix)
            .await?
            .into_iter()
            .map(|item| from_item::<RefundItem>(item)?.try_into())
            .collect()
    }

    /// The claim of a new refund: its amount held against the payment's refundable balance,
    /// and its entry created only if its number is new.
    fn claim_items(&self, refund: &Refund, total: Krw) -> Result<[TransactWriteItem; 2], Error> {
        Ok([
            TransactWriteItem::builder()
                .update(self.hold_balance(refund, total)?)
                .build(),
            TransactWriteItem::builder()
                .put(self.put_refund(refund, RefundCondition::New)?)
                .build(),
        ])
    }

    /// Claims a new refund (see the module's documentation). `with` is the subscription with
    /// the changes that must happen in the same write (a withdrawal's lock, set before Toss is
    /// called so that no credit can be spent meanwhile).
    pub async fn claim_refund(
        &self,
        refund: &Refund,
        total: Krw,
        with: Option<&mut Subscription>,
    ) -> Result<RefundWrite, Error> {
        let mut items = self.claim_items(refund, total)?.to_vec();
        self.write_refund(&mut items, with, |i| match i {
            0 => RefundWrite::OverBalance,
            1 => RefundWrite::NumberTaken,
            _ => RefundWrite::SubscriptionChanged,
        })
        .await
    }

    /// Claims a new refund for an operator's request `request_id` in the same transaction as
    /// its marker: a request id already used claims nothing (`RequestSeen`).
    pub async fn claim_requested_refund(
        &self,
        refund: &Refund,
        total: Krw,
        request_id: &str,
        fingerprint: &str,
    ) -> Result<RefundWrite, Error> {
        let marker = RequestMarkerItem {
            pk: request_marker_pk(request_id),
            sk: REQUEST_MARKER_SK.to_owned(),
            subscription_id: refund.subscription_id.to_string(),
            refund_sk: refund_sk(refund.period, refund.attempt, refund.number),
            period: refund.period,
            attempt: refund.attempt,
            number: refund.number,
            fingerprint: fingerprint.to_owned(),
            at: time::format(refund.created_at),
        };
        let marker = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&marker)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::corrupt("(refund request put)", e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().put(marker).build()];
        items.extend(self.claim_items(refund, total)?);
        self.write_refund(&mut items, None, |i| match i {
            0 => RefundWrite::RequestSeen,
            1 => RefundWrite::OverBalance,
            _ => RefundWrite::NumberTaken,
        })
        .await
    }

    /// Whether Toss's cancel `transaction_key` is in the refund ledger.
    pub async fn cancel_recorded(
        &self,
        id: &SubscriptionId,
        transaction_key: &str,
    ) -> Result<bool, Error> {
        Ok(self
            .get(subscription_pk(id), &cancel_marker_sk(transaction_key))
            .await?
            .is_some())
    }

    /// Records a charge Toss approved for a subscription that had ended meanwhile, together
    /// with the claimed refund of all of it (the entry's `refundable` already held), under our
    /// lease: both or neither.
    pub async fn record_attempt_given_back(
        &self,
        attempt: &ChargeAttempt,
        owner: &str,
        refund: &Refund,
    ) -> Result<(), Error> {
        self.transact_items(vec![
            TransactWriteItem::builder()
                .put(self.put_owned_attempt(attempt, owner)?)
                .build(),
            TransactWriteItem::builder()
                .put(self.put_refund(refund, RefundCondition::New)?)
                .build(),
        ])
        .await
    }

    /// The refund an operator's request id claimed, if it was used.
    pub async fn refund_request(
        &self,
        request_id: &str,
    ) -> Result<Option<RefundRequestRecord>, Error> {
        let Some(item) = self
            .get(request_marker_pk(request_id), REQUEST_MARKER_SK)
            .await?
        else {
            return Ok(None);
        };
        let item: RequestMarkerItem = from_item(item)?;
        let key = format!("{}/{}", item.pk, item.sk);
        Ok(Some(RefundRequestRecord {
            subscription_id: SubscriptionId::parse(item.subscription_id)
                .map_err(|_| Error::corrupt(key, "subscription_id is invalid"))?,
            period: item.period,
            attempt: item.attempt,
            number: item.number,
            fingerprint: item.fingerprint,
        }))
    }

    /// Records a cancel found at Toss that no ledger entry names (a refund made in Toss's
    /// console): a new `DONE` refund, its balance, its marker, and the subscription's changes.
    pub async fn record_found_refund(
        &self,
        refund: &Refund,
        total: Krw,
        sub: Option<&mut Subscription>,
    ) -> Result<RefundWrite, Error> {
        let tx = refund.transaction_key.as_deref().unwrap_or_default();
        let mut items = vec![
            TransactWriteItem::builder()
                .put(self.put_cancel_marker(refund, tx)?)
                .build(),
            TransactWriteItem::builder()
                .update(self.hold_balance(refund, total)?)
                .build(),
            TransactWriteItem::builder()
                .put(self.put_refund(refund, RefundCondition::New)?)
                .build(),
        ];
        self.write_refund(&mut items, sub, |i| match i {
            0 => RefundWrite::AlreadyRecorded,
            1 => RefundWrite::OverBalance,
            2 => RefundWrite::NumberTaken,
            _ => RefundWrite::SubscriptionChanged,
        })
        .await
    }

    /// Settles an open refund: `Done` (with its marker and the subscription's changes),
    /// `Refused` (its amount given back), or `Unknown` (left open).
    pub async fn settle_refund(
        &self,
        refund: &Refund,
        sub: Option<&mut Subscription>,
    ) -> Result<RefundWrite, Error> {
        let mut items = vec![
            TransactWriteItem::builder()
                .put(self.put_refund(refund, RefundCondition::Open)?)
                .build(),
        ];
        match &refund.status {
            RefundStatus::Done => {
                let tx = refund.transaction_key.as_deref().unwrap_or_default();
                items.push(
                    TransactWriteItem::builder()
                        .put(self.put_cancel_marker(refund, tx)?)
                        .build(),
                );
            }
            RefundStatus::Refused { .. } => items.push(
                TransactWriteItem::builder()
                    .update(self.release_balance(refund)?)
                    .build(),
            ),
            RefundStatus::Claimed | RefundStatus::Unknown => {}
        }
        self.write_refund(&mut items, sub, |i| match i {
            0 => RefundWrite::NotOpen,
            1 if refund.status == RefundStatus::Done => RefundWrite::AlreadyRecorded,
            1 => RefundWrite::NotOpen,
            _ => RefundWrite::SubscriptionChanged,
        })
        .await
    }

    async fn write_refund(
        &self,
        items: &mut Vec<TransactWriteItem>,
        sub: Option<&mut Subscription>,
        failed: impl Fn(usize) -> RefundWrite,
    ) -> Result<RefundWrite, Error> {
        if let Some(sub) = &sub {
            items.push(
                TransactWriteItem::builder()
                    .put(self.put_subscription(sub)?)
                    .build(),
            );
            for put in self.put_new_credit_entries(sub)? {
                items.push(TransactWriteItem::builder().put(put).build());
            }
        }
        match self.transact_items(std::mem::take(items)).await {
            Ok(()) => {
                if let Some(sub) = sub {
                    sub.saved();
                }
                Ok(RefundWrite::Written)
            }
            Err(Error::TransactionCanceled { reasons }) => {
                if let Some(i) = reasons
                    .iter()
                    .position(|r| r.as_deref() == Some("ConditionalCheckFailed"))
                {
                    Ok(failed(i))
                } else if reasons.iter().flatten().any(|r| r == "TransactionConflict") {
                    Ok(RefundWrite::Conflict)
                } else {
                    Err(Error::TransactionCanceled { reasons })
                }
            }
            Err(e) => Err(e),
        }
    }
}

enum RefundCondition {
    New,
    Open,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    #[test]
    fn a_refund_round_trips_through_its_item_and_sorts_under_its_payment() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let mut r = Refund::claim(
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
            at,
        );
        for status in [
            RefundStatus::Claimed,
            RefundStatus::Refused {
                code: "NOT_CANCELABLE_AMOUNT".into(),
            },
        ] {
            r.status = status;
            let item = to_item(&RefundItem::from(&r)).unwrap();
            let back: Refund = from_item::<RefundItem>(item).unwrap().try_into().unwrap();
            assert_eq!(back, r);
        }
        r.mark_done("tx-1".into(), at, at);
        let item = to_item(&RefundItem::from(&r)).unwrap();
        assert!(
            item["sk"]
                .as_s()
                .unwrap()
                .starts_with(&refunds_of_attempt_prefix(2, 1))
        );
        let back: Refund = from_item::<RefundItem>(item).unwrap().try_into().unwrap();
        assert_eq!(back, r);
        assert!(refund_sk(2, 1, 10) > refund_sk(2, 1, 9));
        assert!(!cancel_marker_sk("x").starts_with(REFUND_PREFIX));
    }
}
