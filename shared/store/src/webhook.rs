//! What the Toss webhook route keeps: which deliveries it has handled, and the sparse `card`
//! index that finds a subscription by the fingerprint of the billing key Toss names.
//!
//! | item             | pk                           | sk        |
//! |------------------|------------------------------|-----------|
//! | webhook delivery | `WEBHOOK#<transmission id>`  | `WEBHOOK` |
//!
//! A delivery is claimed before it is processed (a conditional create holding a short lease)
//! and marked done after; one that failed is released so that Toss's retry of it is processed
//! again, and one whose worker died is taken over once its lease has run out. DynamoDB TTL
//! (`expires_at`) removes the item after [`WEBHOOK_TTL_DAYS`], well after Toss's last retry
//! (about 3 days 19 hours after the first delivery).

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::Put;
use chrono::{DateTime, Duration, Utc};
use domain::{CardRef, SubscriptionId};
use serde::{Deserialize, Serialize};

use crate::dynamo::s;
use crate::item::{from_item, to_item};
use crate::{Error, Store, time};

/// Name of the sparse index of subscriptions by their current key's fingerprint.
pub const CARD_INDEX: &str = "card";

/// How long a handled delivery is remembered.
pub const WEBHOOK_TTL_DAYS: i64 = 7;

const WEBHOOK_SK: &str = "WEBHOOK";
const PROCESSING: &str = "processing";
const DONE: &str = "done";

fn webhook_pk(transmission_id: &str) -> String {
    format!("WEBHOOK#{transmission_id}")
}

#[derive(Debug, Serialize, Deserialize)]
struct WebhookItem {
    pk: String,
    sk: String,
    state: String,
    owner: String,
    event_type: String,
    lease_until: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    expires_at: i64,
}

/// Whether this worker may process a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookClaim {
    /// Ours until `lease` runs out: process it, then [`Store::finish_webhook`] or
    /// [`Store::release_webhook`].
    Claimed,
    /// Processed before (`outcome` as recorded then).
    Done { outcome: Option<String> },
    /// Another worker is processing it right now.
    InProgress,
}

impl Store {
    /// Claims the delivery `transmission_id` for `owner` until `now + lease`.
    pub async fn claim_webhook(
        &self,
        transmission_id: &str,
        event_type: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<WebhookClaim, Error> {
        let item = WebhookItem {
            pk: webhook_pk(transmission_id),
            sk: WEBHOOK_SK.to_owned(),
            state: PROCESSING.to_owned(),
            owner: owner.to_owned(),
            event_type: event_type.to_owned(),
            lease_until: time::format(now + lease),
            outcome: None,
            expires_at: (now + Duration::days(WEBHOOK_TTL_DAYS)).timestamp(),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)?))
            .condition_expression(
                "attribute_not_exists(pk) OR (#state = :processing AND lease_until <= :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":processing", s(PROCESSING))
            .expression_attribute_values(":now", s(time::format(now)))
            .build()
            .map_err(|e| Error::corrupt("(webhook put)", e.to_string()))?;
        match self.put(put).await {
            Ok(()) => Ok(WebhookClaim::Claimed),
            Err(Error::ConditionFailed) => {
                let Some(item) = self.get(webhook_pk(transmission_id), WEBHOOK_SK).await? else {
                    // Released between our write and this read: Toss will send it again.
                    return Ok(WebhookClaim::InProgress);
                };
                let item: WebhookItem = from_item(item)?;
                Ok(if item.state == DONE {
                    WebhookClaim::Done {
                        outcome: item.outcome,
                    }
                } else {
                    WebhookClaim::InProgress
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Marks a delivery `owner` claimed as processed, with what came of it.
    pub async fn finish_webhook(
        &self,
        transmission_id: &str,
        event_type: &str,
        owner: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let item = WebhookItem {
            pk: webhook_pk(transmission_id),
            sk: WEBHOOK_SK.to_owned(),
            state: DONE.to_owned(),
            owner: owner.to_owned(),
            event_type: event_type.to_owned(),
            lease_until: time::format(now),
            outcome: Some(outcome.to_owned()),
            expires_at: (now + Duration::days(WEBHOOK_TTL_DAYS)).timestamp(),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)?))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .build()
            .map_err(|e| Error::corrupt("(webhook put)", e.to_string()))?;
        self.put(put).await
    }

    /// Forgets a delivery `owner` claimed and could not process, so that its retry is
    /// processed from the start.
    pub async fn release_webhook(&self, transmission_id: &str, owner: &str) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(webhook_pk(transmission_id)))
            .key("sk", s(WEBHOOK_SK))
            .condition_expression("#owner = :owner AND #state = :processing")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":processing", s(PROCESSING))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match e.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => Error::ConditionFailed,
                _ => Error::service("DeleteItem", e),
            })
    }

    /// The subscriptions whose current billing key has the fingerprint `card` (the index is
    /// eventually consistent, and a fingerprint may in theory be shared: the caller reads each
    /// one and compares the key itself).
    pub async fn subscriptions_with_card(
        &self,
        card: &CardRef,
    ) -> Result<Vec<SubscriptionId>, Error> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CARD_INDEX)
            .key_condition_expression("card_fp = :card")
            .expression_attribute_values(":card", s(card.as_str()));
        self.all_items(query)
            .await?
            .into_iter()
            .map(|item| {
                let pk = item
                    .get("pk")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                pk.strip_prefix("SUB#")
                    .and_then(|id| SubscriptionId::parse(id).ok())
                    .ok_or_else(|| {
                        Error::corrupt(pk.clone(), "not a subscription in the card index")
                    })
            })
            .collect()
    }
}
