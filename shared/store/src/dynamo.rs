use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use domain::{ChargeAttempt, CustomerKey, OrderId, Subscription, SubscriptionId};

use crate::item::{
    ATTEMPT_PREFIX, AttemptItem, CUSTOMER_SK, CustomerItem, Item, REDIRECT_SK, RedirectItem,
    SUBSCRIPTION_SK, SubscriptionItem, attempt_period_prefix, attempt_sk, customer_pk, due_pk,
    from_item, item_key, redirect_pk, refund_attempt_of, subscription_pk, to_item,
};
use crate::seal::{Sealer, is_sealed};
use crate::{DUE_INDEX, DUE_SHARDS, Error, RedirectRecord, SealError, time};

/// The repository. Cheap to clone; build it once per cold start.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// Seals billing keys at rest; `None` stores them as they are (local runs).
    sealer: Option<Arc<Sealer>>,
}

/// Where a page of the due index ends, to start the next one from.
pub type Cursor = HashMap<String, AttributeValue>;

/// One page of due work from one shard of the due index.
#[derive(Debug)]
pub struct DuePage {
    /// Each due item: one malformed key (hand-edited, or written by a bug) is an `Err` naming
    /// it, and does not hide the rest of the page or of the shard. The index holds keys only;
    /// read the item itself (consistently) before acting on it.
    pub ids: Vec<Result<Due, Error>>,
    /// Pass back to [`Store::due_page`] for the next page; `None` at the end of the shard.
    pub next: Option<Cursor>,
}

/// What the due index says needs the sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// A subscription to charge, end, or clean up.
    Subscription(SubscriptionId),
    /// A refund of this paid attempt that Toss has not answered (or that was claimed and
    /// never sent): settle the attempt's open refunds.
    Refunds {
        subscription: SubscriptionId,
        order_id: OrderId,
    },
}

impl Due {
    /// The subscription the item belongs to.
    pub fn subscription_id(&self) -> SubscriptionId {
        match self {
            Due::Subscription(id) => id.clone(),
            Due::Refunds { subscription, .. } => subscription.clone(),
        }
    }
}

fn due_of(item: &HashMap<String, AttributeValue>) -> Result<Due, Error> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    let id = text("pk")
        .and_then(|pk| pk.strip_prefix("SUB#"))
        .and_then(|id| SubscriptionId::parse(id).ok());
    let due = match (id, text("sk")) {
        (Some(id), Some(SUBSCRIPTION_SK)) => Some(Due::Subscription(id)),
        (Some(id), Some(sk)) => refund_attempt_of(sk).map(|(period, attempt)| Due::Refunds {
            order_id: OrderId::for_attempt(&id, period, attempt),
            subscription: id,
        }),
        _ => None,
    };
    due.ok_or_else(|| Error::corrupt(item_key(item), "not a subscription's or a refund's key"))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Attempt states a worker may still write to (any final state is immutable).
const OPEN_STATUSES: [&str; 2] = ["PENDING", "UNKNOWN"];

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            sealer: None,
        }
    }

    /// Seals every billing key this store writes, and opens sealed ones it reads.
    #[must_use]
    pub fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = Some(Arc::new(sealer));
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One cheap read of a key that never exists, made during a cold start's init so the first
    /// real request does not pay for resolving credentials and opening the TLS connection.
    pub async fn warm_up(&self) -> Result<(), Error> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("WARMUP"))
            .key("sk", s("WARMUP"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Error::service("GetItem", e))
    }

    // ---- reads -------------------------------------------------------------------------

    pub(crate) async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::service("GetItem", e))?;
        Ok(out.item)
    }

    pub async fn subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>, Error> {
        match self.get(subscription_pk(id), SUBSCRIPTION_SK).await? {
            Some(item) => {
                let mut item = from_item::<SubscriptionItem>(item)?;
                self.open_keys(&mut item).await?;
                Ok(Some(item.try_into()?))
            }
            None => Ok(None),
        }
    }

    /// The customer's current (most recent) subscription, whatever its status.
    pub async fn customer_subscription(
        &self,
        customer: &CustomerKey,
    ) -> Result<Option<Subscription>, Error> {
        let Some(item) = self.get(customer_pk(customer), CUSTOMER_SK).await? else {
            return Ok(None);
        };
        let pointer: CustomerItem = from_item(item)?;
        let id = SubscriptionId::parse(pointer.subscription_id).map_err(|_| {
            Error::corrupt(
                format!("{}/{}", pointer.pk, pointer.sk),
                "subscription_id is invalid",
            )
        })?;
        self.subscription(&id).await
    }

    pub async fn attempt(
        &self,
        id: &SubscriptionId,
        period: u32,
        attempt: u32,
    ) -> Result<Option<ChargeAttempt>, Error> {
        match self
            .get(subscription_pk(id), &attempt_sk(period, attempt))
            .await?
        {
            Some(item) => Ok(Some(from_item::<AttemptItem>(item)?.try_into()?)),
            None => Ok(None),
        }
    }

    /// Every attempt of one period, oldest first.
    pub async fn attempts_for_period(
        &self,
        id: &SubscriptionId,
        period: u32,
    ) -> Result<Vec<ChargeAttempt>, Error> {
        self.query_attempts(id, &attempt_period_prefix(period))
            .await
    }

    /// The latest attempt of one period, if any.
    pub async fn last_attempt(
        &self,
        id: &SubscriptionId,
        period: u32,
    ) -> Result<Option<ChargeAttempt>, Error> {
        Ok(self.attempts_for_period(id, period).await?.pop())
    }

    /// The whole ledger of a subscription, oldest first.
    pub async fn ledger(&self, id: &SubscriptionId) -> Result<Vec<ChargeAttempt>, Error> {
        self.query_attempts(id, ATTEMPT_PREFIX).await
    }

    /// Up to `limit` ledger entries, newest first, starting after `(period, attempt)`; the
    /// second value is where the next page starts, `None` after the last entry.
    pub async fn attempts_page(
        &self,
        id: &SubscriptionId,
        limit: u32,
        after: Option<(u32, u32)>,
    ) -> Result<(Vec<ChargeAttempt>, Option<(u32, u32)>), Error> {
        let pk = subscription_pk(id);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk.clone()))
            .expression_attribute_values(":prefix", s(ATTEMPT_PREFIX))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000));
        if let Some((period, attempt)) = after {
            query = query
                .exclusive_start_key("pk", s(pk))
                .exclusive_start_key("sk", s(attempt_sk(period, attempt)));
        }
        let out = query.send().await.map_err(|e| Error::service("Query", e))?;
        let mut attempts = Vec::new();
        for item in out.items.unwrap_or_default() {
            let attempt: ChargeAttempt = from_item::<AttemptItem>(item)?.try_into()?;
            attempts.push(attempt);
        }
        let next = out
            .last_evaluated_key
            .is_some()
            .then(|| attempts.last().map(|a| (a.period(), a.attempt())))
            .flatten();
        Ok((attempts, next))
    }

    async fn query_attempts(
        &self,
        id: &SubscriptionId,
        prefix: &str,
    ) -> Result<Vec<ChargeAttempt>, Error> {
        self.items_under(subscription_pk(id), prefix)
            .await?
            .into_iter()
            .map(|item| from_item::<AttemptItem>(item)?.try_into())
            .collect()
    }

    /// Every item of partition `pk` whose sort key starts with `prefix`, strongly consistent.
    pub(crate) async fn items_under(&self, pk: String, prefix: &str) -> Result<Vec<Item>, Error> {
        self.all_items(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true),
        )
        .await
    }

    /// Every item a query finds, page after page.
    pub(crate) async fn all_items(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, Error> {
        let mut pages = query.into_paginator().items().send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            out.push(item.map_err(|e| Error::service("Query", e))?);
        }
        Ok(out)
    }

    pub async fn redirect(&self, auth_key_hash: &str) -> Result<Option<RedirectRecord>, Error> {
        match self.get(redirect_pk(auth_key_hash), REDIRECT_SK).await? {
            Some(item) => Ok(Some(
                from_item::<RedirectItem>(item)?.into_record(auth_key_hash)?,
            )),
            None => Ok(None),
        }
    }

    /// One page of work due at or before `as_of` from one shard of the due index.
    /// The index is eventually consistent: callers read each subscription and re-check with
    /// conditional writes.
    pub async fn due_page(
        &self,
        shard: u32,
        as_of: DateTime<Utc>,
        start: Option<Cursor>,
        limit: i32,
    ) -> Result<DuePage, Error> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("due_pk = :shard AND due_at <= :as_of")
            .expression_attribute_values(":shard", s(due_pk(shard)))
            .expression_attribute_values(":as_of", s(time::format(as_of)))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| Error::service("Query", e))?;
        let ids = out.items.unwrap_or_default().iter().map(due_of).collect();
        Ok(DuePage {
            ids,
            next: out.last_evaluated_key,
        })
    }

    /// Shards of the due index, for callers that page through all of them.
    pub fn due_shards(&self) -> std::ops::Range<u32> {
        0..DUE_SHARDS
    }

    // ---- billing keys at rest ------------------------------------------------------------

    /// Seals the item's billing keys (current and retired) when a sealer is configured.
    fn seal_keys(&self, item: &mut SubscriptionItem) -> Result<(), Error> {
        let Some(sealer) = &self.sealer else {
            return Ok(());
        };
        let id = item.id.clone();
        let sealed = |key: &mut String| -> Result<(), Error> {
            *key = sealer
                .seal(&id, key)
                .map_err(|source| sealed_error(&id, source))?;
            Ok(())
        };
        if let Some(key) = item.billing_key.as_mut() {
            sealed(key)?;
        }
        item.retired_billing_keys.iter_mut().try_for_each(sealed)
    }

    /// Opens the item's sealed billing keys; plaintext ones (written before sealing was
    /// turned on, or by a local run) are read as they are.
    async fn open_keys(&self, item: &mut SubscriptionItem) -> Result<(), Error> {
        let id = item.id.clone();
        let keys = item
            .billing_key
            .iter_mut()
            .chain(item.retired_billing_keys.iter_mut());
        for key in keys.filter(|key| is_sealed(key)) {
            let Some(sealer) = &self.sealer else {
                return Err(sealed_error(
                    &id,
                    SealError::Unreadable("sealed, but this store has no key service"),
                ));
            };
            *key = sealer
                .open(&id, key)
                .await
                .map_err(|source| sealed_error(&id, source))?;
        }
        Ok(())
    }

    // ---- writes ------------------------------------------------------------------------

    pub(crate) fn put_subscription(&self, sub: &Subscription) -> Result<Put, Error> {
        let mut item = SubscriptionItem::new(sub, sub.version() + 1);
        self.seal_keys(&mut item)?;
        let item = to_item(&item)?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = if sub.version() == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(sub.version()))
        };
        put.build()
            .map_err(|e| Error::corrupt("(subscription put)", e.to_string()))
    }

    fn put_new_attempt(&self, attempt: &ChargeAttempt) -> Result<Put, Error> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&AttemptItem::from(attempt))?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::corrupt("(attempt put)", e.to_string()))
    }

    /// Overwrites an open attempt, only while `owner` holds its lease.
    pub(crate) fn put_owned_attempt(
        &self,
        attempt: &ChargeAttempt,
        owner: &str,
    ) -> Result<Put, Error> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&AttemptItem::from(attempt))?))
            .condition_expression("#status IN (:pending, :unknown) AND lease_owner = :owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(OPEN_STATUSES[0]))
            .expression_attribute_values(":unknown", s(OPEN_STATUSES[1]))
            .expression_attribute_values(":owner", s(owner))
            .build()
            .map_err(|e| Error::corrupt("(attempt put)", e.to_string()))
    }

    fn put_new_redirect(&self, record: &RedirectRecord) -> Result<Put, Error> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&RedirectItem::from(record))?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::corrupt("(redirect put)", e.to_string()))
    }

    async fn transact(&self, puts: Vec<Put>) -> Result<(), Error> {
        self.transact_items(
            puts.into_iter()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .collect(),
        )
        .await
    }

    pub(crate) async fn transact_items(&self, items: Vec<TransactWriteItem>) -> Result<(), Error> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            .map_err(transaction_error)
    }

    pub(crate) async fn put(&self, put: Put) -> Result<(), Error> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression);
        if let Some(names) = put.expression_attribute_names {
            req = req.set_expression_attribute_names(Some(names));
        }
        if let Some(values) = put.expression_attribute_values {
            req = req.set_expression_attribute_values(Some(values));
        }
        req.send().await.map(|_| ()).map_err(put_error)
    }

    /// Starts a new subscription for its customer together with its first charge attempt and
    /// the redirect that caused it, all or nothing. `replaces` is the customer's current
    /// subscription (which must be canceled), if there is one: if another subscription was
    /// started meanwhile, nothing is written.
    pub async fn start_subscription(
        &self,
        sub: &mut Subscription,
        user_id: &str,
        replaces: Option<&SubscriptionId>,
        first_attempt: &ChargeAttempt,
        redirect: &RedirectRecord,
    ) -> Result<(), Error> {
        let pointer = CustomerItem {
            pk: customer_pk(sub.customer_key()),
            sk: CUSTOMER_SK.to_owned(),
            customer_key: sub.customer_key().to_string(),
            subscription_id: sub.id().to_string(),
            updated_at: time::format(sub.created_at()),
        };
        let pointer = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&pointer)?));
        let pointer = match replaces {
            None => pointer.condition_expression("attribute_not_exists(pk)"),
            Some(old) => pointer
                .condition_expression("subscription_id = :old")
                .expression_attribute_values(":old", s(old.to_string())),
        }
        .build()
        .map_err(|e| Error::corrupt("(customer put)", e.to_string()))?;
        let mut items: Vec<TransactWriteItem> = vec![
            self.put_subscription(sub)?,
            pointer,
            self.put_new_attempt(first_attempt)?,
            self.put_new_redirect(redirect)?,
        ]
        .into_iter()
        .map(|p| TransactWriteItem::builder().put(p).build())
        .collect();
        items.push(self.point_user_to(
            user_id,
            sub.customer_key(),
            sub.id(),
            replaces,
            sub.created_at(),
        )?);
        self.transact_items(items).await?;
        sub.saved();
        Ok(())
    }

    /// Saves a changed subscription (e.g. a replaced card) together with the redirect that
    /// changed it and, if it is charged at once, the claimed attempt; all or nothing.
    pub async fn update_from_redirect(
        &self,
        sub: &mut Subscription,
        attempt: Option<&ChargeAttempt>,
        redirect: &RedirectRecord,
    ) -> Result<(), Error> {
        let mut puts = vec![
            self.put_subscription(sub)?,
            self.put_new_redirect(redirect)?,
        ];
        if let Some(a) = attempt {
            puts.push(self.put_new_attempt(a)?);
        }
        puts.extend(self.put_new_credit_entries(sub)?);
        self.transact(puts).await?;
        sub.saved();
        Ok(())
    }

    /// Records a redirect that failed before touching any subscription.
    pub async fn record_redirect(&self, redirect: &RedirectRecord) -> Result<(), Error> {
        self.put(self.put_new_redirect(redirect)?).await
    }

    /// Saves a subscription if nobody changed it since it was read (optimistic locking).
    pub async fn save_subscription(&self, sub: &mut Subscription) -> Result<(), Error> {
        let mut puts = vec![self.put_subscription(sub)?];
        puts.extend(self.put_new_credit_entries(sub)?);
        if puts.len() == 1 {
            self.put(puts.remove(0)).await?;
        } else {
            self.transact(puts).await?;
        }
        sub.saved();
        Ok(())
    }

    /// Claims a new attempt for `sub` as the caller read it: the conditional create is the
    /// lock, and in the same transaction the subscription must still be in the status it was
    /// read in, for the same period, with no cancel at period end and no statutory withdrawal
    /// waiting for Toss's answer. A conflict means the
    /// attempt exists already (another worker claimed it, or an earlier run left it) or the
    /// subscription changed since it was read (a cancel saved in between): nothing is written.
    /// Credits consumed meanwhile (they bump the version) do not stop a renewal.
    pub async fn claim_attempt(
        &self,
        attempt: &ChargeAttempt,
        sub: &Subscription,
    ) -> Result<(), Error> {
        let still_chargeable = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(subscription_pk(sub.id())))
            .key("sk", s(SUBSCRIPTION_SK))
            .condition_expression(
                "#status = :status AND next_period = :period AND cancel_at_period_end = :false \
                 AND attribute_not_exists(withdrawal)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(sub.status().as_str()))
            .expression_attribute_values(":period", n(u64::from(attempt.period())))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .build()
            .map_err(|e| Error::corrupt("(subscription check)", e.to_string()))?;
        self.transact_items(vec![
            TransactWriteItem::builder()
                .put(self.put_new_attempt(attempt)?)
                .build(),
            TransactWriteItem::builder()
                .condition_check(still_chargeable)
                .build(),
        ])
        .await
    }

    /// Writes a new open attempt without looking at its subscription: for test fixtures and
    /// seeding tools that plant a ledger state. Use cases claim through [`Self::claim_attempt`].
    pub async fn insert_attempt(&self, attempt: &ChargeAttempt) -> Result<(), Error> {
        self.put(self.put_new_attempt(attempt)?).await
    }

    /// Saves a change the customer asked for (a cancel) unless, since `sub` and its period's
    /// last attempt were read, a charge was claimed in the next attempt slot (`attempt`): the
    /// slot must still be empty in the same transaction. With [`Self::claim_attempt`]'s own
    /// check this leaves no window in which a cancel is accepted and a renewal still charged.
    pub async fn save_subscription_unless_claimed(
        &self,
        sub: &mut Subscription,
        attempt: u32,
    ) -> Result<(), Error> {
        let slot_empty = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(subscription_pk(sub.id())))
            .key("sk", s(attempt_sk(sub.next_period(), attempt)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::corrupt("(attempt check)", e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder()
                .put(self.put_subscription(sub)?)
                .build(),
            TransactWriteItem::builder()
                .condition_check(slot_empty)
                .build(),
        ];
        items.extend(
            self.put_new_credit_entries(sub)?
                .into_iter()
                .map(|p| TransactWriteItem::builder().put(p).build()),
        );
        self.transact_items(items).await?;
        sub.saved();
        Ok(())
    }

    /// Takes over an open attempt whose lease has expired (or never existed) at `now`,
    /// writing `attempt` (carrying the new lease). Only one of several racing workers wins.
    pub async fn take_over_attempt(
        &self,
        attempt: &ChargeAttempt,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&AttemptItem::from(attempt))?))
            .condition_expression(
                "#status IN (:pending, :unknown) AND (attribute_not_exists(lease_until) OR lease_until <= :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(OPEN_STATUSES[0]))
            .expression_attribute_values(":unknown", s(OPEN_STATUSES[1]))
            .expression_attribute_values(":now", s(time::format(now)))
            .build()
            .map_err(|e| Error::corrupt("(attempt put)", e.to_string()))?;
        self.put(put).await
    }

    /// Updates an open attempt we hold the lease on, leaving the subscription alone (an
    /// unknown outcome, or a refusal on our side).
    pub async fn save_attempt(&self, attempt: &ChargeAttempt, owner: &str) -> Result<(), Error> {
        self.put(self.put_owned_attempt(attempt, owner)?).await
    }

    /// Writes a charge's outcome: the ledger entry and the subscription change together, or
    /// neither. Fails if we lost the lease or the subscription changed since it was read.
    pub async fn record_outcome(
        &self,
        sub: &mut Subscription,
        attempt: &ChargeAttempt,
        owner: &str,
    ) -> Result<(), Error> {
        let mut puts = vec![
            self.put_owned_attempt(attempt, owner)?,
            self.put_subscription(sub)?,
        ];
        puts.extend(self.put_new_credit_entries(sub)?);
        self.transact(puts).await?;
        sub.saved();
        Ok(())
    }
}

fn sealed_error(id: &str, source: SealError) -> Error {
    Error::Sealed {
        key: format!("SUB#{id}/{SUBSCRIPTION_SK}"),
        source,
    }
}

fn put_error(err: SdkError<PutItemError>) -> Error {
    match err.as_service_error() {
        Some(PutItemError::ConditionalCheckFailedException(_)) => Error::ConditionFailed,
        _ => Error::service("PutItem", err),
    }
}

fn transaction_error(err: SdkError<TransactWriteItemsError>) -> Error {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            Error::TransactionCanceled {
                reasons: e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().filter(|c| *c != "None").map(ToOwned::to_owned))
                    .collect(),
            }
        }
        _ => Error::service("TransactWriteItems", err),
    }
}
