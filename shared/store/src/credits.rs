//! The credits ledger and idempotent consumption (issue 11).
//!
//! | item              | pk                | sk                                   |
//! |-------------------|-------------------|--------------------------------------|
//! | credit entry      | `SUB#<id>`        | `CRD#<at>#<change>#<reference>`      |
//! | idempotency key   | `USER#<user id>`  | `IDEM#<sha256 of the key>`           |
//!
//! A consumption is one transaction of three writes: the subscription's balance goes down only
//! if it stays at or above zero and the subscription may be used, the idempotency record is
//! created only if the key is new, and the ledger entry is created. Either all three happen or
//! none: concurrent consumptions never overspend, and a key is never spent twice.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use domain::{CreditChange, CreditEntry, Status, Subscription, SubscriptionId};
use serde::{Deserialize, Serialize};

use crate::dynamo::{n, s};
use crate::item::{SUBSCRIPTION_SK, from_item, subscription_pk, to_item};
use crate::{Error, Store, time};

const CREDIT_PREFIX: &str = "CRD#";

/// How long a consumption's idempotency key is remembered (DynamoDB TTL removes it after).
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

fn credit_sk(entry: &CreditEntry) -> String {
    format!("{CREDIT_PREFIX}{}", entry.id())
}

fn idempotency_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

fn idempotency_sk(key_hash: &str) -> String {
    format!("IDEM#{key_hash}")
}

#[derive(Debug, Serialize, Deserialize)]
struct CreditItem {
    pk: String,
    sk: String,
    change: String,
    amount: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    balance: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<u32>,
    reference: String,
    at: String,
}

impl CreditItem {
    fn new(id: &SubscriptionId, entry: &CreditEntry) -> Self {
        Self {
            pk: subscription_pk(id),
            sk: credit_sk(entry),
            change: entry.change.as_str().to_owned(),
            amount: entry.amount,
            balance: entry.balance,
            period: entry.period,
            reference: entry.reference.clone(),
            at: time::format(entry.at),
        }
    }

    fn into_entry(self) -> Result<CreditEntry, Error> {
        let key = format!("{}/{}", self.pk, self.sk);
        Ok(CreditEntry {
            change: CreditChange::parse(&self.change)
                .ok_or_else(|| Error::corrupt(key.clone(), "change is unknown"))?,
            amount: self.amount,
            balance: self.balance,
            period: self.period,
            reference: self.reference,
            at: time::parse(&self.at)
                .ok_or_else(|| Error::corrupt(key, "at is not a timestamp"))?,
        })
    }
}

/// A remembered consumption: what was asked, and the answer given the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// SHA-256 of the request as the edge canonicalised it: another body under the same key
    /// is refused.
    pub request_hash: String,
    /// The subscription it spent from (none for a refusal without a subscription).
    pub subscription_id: Option<SubscriptionId>,
    pub amount: u64,
    /// The first answer (status and body), once it was written.
    pub answer: Option<(u16, String)>,
    /// The first request was refused: its code and, for a lack of credits, the balance then.
    pub refusal: Option<(String, Option<u64>)>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct IdempotencyItem {
    pk: String,
    sk: String,
    request_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscription_id: Option<String>,
    amount: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused_credits: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer_body: Option<String>,
    created_at: String,
    /// Epoch seconds: DynamoDB TTL deletes the item after this.
    expires_at: i64,
}

/// One consumption to write.
#[derive(Debug, Clone)]
pub struct Consumption<'a> {
    pub user_id: &'a str,
    pub subscription_id: &'a SubscriptionId,
    /// SHA-256 of the `Idempotency-Key` header (the key itself is never stored).
    pub key_hash: &'a str,
    pub request_hash: &'a str,
    pub amount: u64,
    pub at: DateTime<Utc>,
}

/// What the consumption's transaction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumeWrite {
    /// The balance went down by the amount, the key is recorded, the entry written.
    Consumed,
    /// The key was used before: nothing changed; read its record to answer.
    KeyUsed,
    /// The subscription refused it (not enough credits, or not usable): nothing changed; read
    /// the subscription to say which.
    Refused,
    /// Another transaction on the subscription ran at the same instant: nothing changed; try
    /// again shortly.
    Conflict,
}

impl Store {
    /// Puts for the credit entries a subscription change made (see
    /// [`Subscription::pending_credits`]); each is new or the transaction fails.
    pub(crate) fn put_new_credit_entries(&self, sub: &Subscription) -> Result<Vec<Put>, Error> {
        sub.pending_credits()
            .iter()
            .map(|entry| {
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(to_item(&CreditItem::new(sub.id(), entry))?))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(|e| Error::corrupt("(credit put)", e.to_string()))
            })
            .collect()
    }

    /// Every credit entry of a subscription, oldest first.
    pub async fn credit_entries(&self, id: &SubscriptionId) -> Result<Vec<CreditEntry>, Error> {
        self.items_under(subscription_pk(id), CREDIT_PREFIX)
            .await?
            .into_iter()
            .map(|item| from_item::<CreditItem>(item)?.into_entry())
            .collect()
    }

    /// Spends `amount` credits of a usable subscription under an idempotency key, all or
    /// nothing (see the module's documentation).
    pub async fn consume_credits(&self, c: &Consumption<'_>) -> Result<ConsumeWrite, Error> {
        let entry = CreditEntry {
            change: CreditChange::Consume,
            amount: c.amount,
            balance: None,
            period: None,
            reference: c.key_hash.chars().take(32).collect(),
            at: c.at,
        };
        let spend = Update::builder()
            .table_name(&self.table)
            .key("pk", s(subscription_pk(c.subscription_id)))
            .key("sk", s(SUBSCRIPTION_SK))
            .update_expression(
                "SET credits = credits - :n, credits_used_in_period = \
                 if_not_exists(credits_used_in_period, :zero) + :n, version = version + :one, \
                 updated_at = :at",
            )
            .condition_expression(
                "attribute_exists(pk) AND #status IN (:active, :past_due) AND credits >= :n \
                 AND attribute_not_exists(withdrawal)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":n", n(c.amount))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", s(time::format(c.at)))
            .expression_attribute_values(":active", s(Status::Active.as_str()))
            .expression_attribute_values(":past_due", s(Status::PastDue.as_str()))
            .build()
            .map_err(|e| Error::corrupt("(consume update)", e.to_string()))?;
        let record = IdempotencyItem {
            pk: idempotency_pk(c.user_id),
            sk: idempotency_sk(c.key_hash),
            request_hash: c.request_hash.to_owned(),
            subscription_id: Some(c.subscription_id.to_string()),
            amount: c.amount,
            refused: None,
            refused_credits: None,
            answer_status: None,
            answer_body: None,
            created_at: time::format(c.at),
            expires_at: c.at.timestamp() + IDEMPOTENCY_TTL_HOURS * 3600,
        };
        let record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::corrupt("(idempotency put)", e.to_string()))?;
        let entry = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&CreditItem::new(c.subscription_id, &entry))?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::corrupt("(credit put)", e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().update(spend).build(),
            TransactWriteItem::builder().put(record).build(),
            TransactWriteItem::builder().put(entry).build(),
        ];
        match self.transact_items(items).await {
            Ok(()) => Ok(ConsumeWrite::Consumed),
            Err(Error::TransactionCanceled { reasons }) => {
                let reason = |i: usize| reasons.get(i).and_then(Option::as_deref);
                if reason(1) == Some("ConditionalCheckFailed") {
                    Ok(ConsumeWrite::KeyUsed)
                } else if reason(0) == Some("ConditionalCheckFailed") {
                    Ok(ConsumeWrite::Refused)
                } else if reasons.iter().flatten().any(|r| r == "TransactionConflict") {
                    Ok(ConsumeWrite::Conflict)
                } else {
                    Err(Error::TransactionCanceled { reasons })
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The record of an idempotency key this user used, if it is still remembered.
    pub async fn idempotency_record(
        &self,
        user_id: &str,
        key_hash: &str,
    ) -> Result<Option<IdempotencyRecord>, Error> {
        let Some(item) = self
            .get(idempotency_pk(user_id), &idempotency_sk(key_hash))
            .await?
        else {
            return Ok(None);
        };
        let item: IdempotencyItem = from_item(item)?;
        let key = format!("{}/{}", item.pk, item.sk);
        Ok(Some(IdempotencyRecord {
            request_hash: item.request_hash,
            subscription_id: item
                .subscription_id
                .map(SubscriptionId::parse)
                .transpose()
                .map_err(|_| Error::corrupt(key.clone(), "subscription_id is invalid"))?,
            amount: item.amount,
            answer: item.answer_status.zip(item.answer_body),
            refusal: item.refused.map(|code| (code, item.refused_credits)),
            created_at: time::parse(&item.created_at)
                .ok_or_else(|| Error::corrupt(key, "created_at is not a timestamp"))?,
        }))
    }

    /// Remembers that the first request under a key was refused (`code`, and the balance
    /// `credits` for a lack of them), so that a retry gets the same answer instead of spending
    /// later. `false` when the key was recorded first by another request.
    pub async fn remember_refusal(
        &self,
        user_id: &str,
        key_hash: &str,
        request_hash: &str,
        (code, credits): (&str, Option<u64>),
        amount: u64,
        at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let record = IdempotencyItem {
            pk: idempotency_pk(user_id),
            sk: idempotency_sk(key_hash),
            request_hash: request_hash.to_owned(),
            subscription_id: None,
            amount,
            refused: Some(code.to_owned()),
            refused_credits: credits,
            answer_status: None,
            answer_body: None,
            created_at: time::format(at),
            expires_at: at.timestamp() + IDEMPOTENCY_TTL_HOURS * 3600,
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::corrupt("(idempotency put)", e.to_string()))?;
        match self.put(put).await {
            Ok(()) => Ok(true),
            Err(Error::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Keeps the first answer given for a key, so that a replay repeats it; a second writer
    /// (a concurrent replay) leaves the first answer in place.
    pub async fn remember_answer(
        &self,
        user_id: &str,
        key_hash: &str,
        status: u16,
        body: &str,
    ) -> Result<(), Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(idempotency_pk(user_id)))
            .key("sk", s(idempotency_sk(key_hash)))
            .update_expression("SET answer_status = :st, answer_body = :b")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(answer_status)")
            .expression_attribute_values(":st", n(u64::from(status)))
            .expression_attribute_values(":b", s(body))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_),
                ) => Ok(()),
                _ => Err(Error::service("UpdateItem", e)),
            },
        }
    }
}
