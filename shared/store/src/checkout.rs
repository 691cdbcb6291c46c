//! The user → customer key pointer and started checkouts (product §10.2).
//!
//! | item     | pk                     | sk         |
//! |----------|------------------------|------------|
//! | user     | `USER#<user id>`       | `USER`     |
//! | checkout | `CHECKOUT#<sha256>`    | `CHECKOUT` |
//!
//! A checkout item expires by DynamoDB TTL (`expires_at`, epoch seconds) a day after its
//! 30 minutes are over; until TTL removes it, `expires_at` is what the condition checks.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use domain::{Checkout, CustomerKey, Subscription, SubscriptionId};
use serde::{Deserialize, Serialize};

use crate::dynamo::{n, s};
use crate::item::{from_item, to_item};
use crate::{Error, Store, time};

const USER_SK: &str = "USER";
const CHECKOUT_SK: &str = "CHECKOUT";

fn user_pk(user_id: &str) -> String {
    format!("USER#{user_id}")
}

fn checkout_pk(state_hash: &str) -> String {
    format!("CHECKOUT#{state_hash}")
}

#[derive(Debug, Serialize, Deserialize)]
struct UserItem {
    pk: String,
    sk: String,
    customer_key: String,
    created_at: String,
    /// The user's latest subscription, set in the transaction that starts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscription_id: Option<String>,
    /// Every subscription the user started, oldest first (appended in the same transaction);
    /// a user item written before this list existed has only `subscription_id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    subscription_ids: Vec<String>,
}

/// What the table knows about a signed-in user: one read for the pointer, one for the
/// subscription.
#[derive(Debug, Clone, Default)]
pub struct UserView {
    pub customer_key: Option<CustomerKey>,
    pub subscription: Option<Subscription>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckoutItem {
    pk: String,
    sk: String,
    user_id: String,
    customer_key: String,
    created_at: String,
    /// Epoch seconds: the end of the checkout's life (conditions compare with it).
    valid_until: i64,
    /// Epoch seconds: DynamoDB TTL deletes the item after this.
    expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_key_hash: Option<String>,
}

/// Checkout items stay a day past their validity before TTL removes them (for support).
const CHECKOUT_TTL_GRACE_SECONDS: i64 = 24 * 3600;

impl Store {
    /// The customer key this user was given, if any.
    pub async fn user_customer_key(&self, user_id: &str) -> Result<Option<CustomerKey>, Error> {
        let Some(item) = self.get(user_pk(user_id), USER_SK).await? else {
            return Ok(None);
        };
        let user: UserItem = from_item(item)?;
        CustomerKey::parse(user.customer_key)
            .map(Some)
            .map_err(|_| Error::corrupt(user.pk, "customer_key is invalid"))
    }

    /// Gives the user `candidate` as its customer key unless it already has one; returns the
    /// key the user has now. The conditional create makes two first checkouts at once agree.
    pub async fn ensure_user_customer_key(
        &self,
        user_id: &str,
        candidate: &CustomerKey,
        now: DateTime<Utc>,
    ) -> Result<CustomerKey, Error> {
        let item = UserItem {
            pk: user_pk(user_id),
            sk: USER_SK.to_owned(),
            customer_key: candidate.to_string(),
            created_at: time::format(now),
            subscription_id: None,
            subscription_ids: Vec::new(),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::corrupt("(user put)", e.to_string()))?;
        match self.put(put).await {
            Ok(()) => Ok(candidate.clone()),
            Err(Error::ConditionFailed) => {
                self.user_customer_key(user_id).await?.ok_or_else(|| {
                    Error::corrupt(user_pk(user_id), "vanished after a create conflict")
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The user's customer key and latest subscription, if any.
    pub async fn user_view(&self, user_id: &str) -> Result<UserView, Error> {
        let Some(item) = self.get(user_pk(user_id), USER_SK).await? else {
            return Ok(UserView::default());
        };
        let user: UserItem = from_item(item)?;
        let customer_key = CustomerKey::parse(user.customer_key)
            .map_err(|_| Error::corrupt(user.pk.clone(), "customer_key is invalid"))?;
        let subscription = match user.subscription_id {
            Some(id) => {
                let id = SubscriptionId::parse(id)
                    .map_err(|_| Error::corrupt(user.pk.clone(), "subscription_id is invalid"))?;
                self.subscription(&id).await?
            }
            None => None,
        };
        Ok(UserView {
            customer_key: Some(customer_key),
            subscription,
        })
    }

    /// Every subscription the user started, oldest first (one read). Subscriptions started
    /// before the user item kept the list are not in it, except the latest.
    pub async fn user_subscription_ids(&self, user_id: &str) -> Result<Vec<SubscriptionId>, Error> {
        let Some(item) = self.get(user_pk(user_id), USER_SK).await? else {
            return Ok(Vec::new());
        };
        let user: UserItem = from_item(item)?;
        let mut ids = user.subscription_ids;
        if let Some(latest) = user.subscription_id
            && !ids.contains(&latest)
        {
            ids.push(latest);
        }
        ids.into_iter()
            .map(|id| {
                SubscriptionId::parse(id)
                    .map_err(|_| Error::corrupt(user.pk.clone(), "subscription_ids is invalid"))
            })
            .collect()
    }

    /// The write that points the user at a subscription it just started (in that start's
    /// transaction) and appends it to the user's list. It never moves a user to another
    /// customer key. `replaces` is the subscription it follows: a user item written before the
    /// list existed starts its list with it, so that subscription's payments stay listed.
    pub(crate) fn point_user_to(
        &self,
        user_id: &str,
        customer_key: &CustomerKey,
        id: &SubscriptionId,
        replaces: Option<&SubscriptionId>,
        at: DateTime<Utc>,
    ) -> Result<TransactWriteItem, Error> {
        let before: Vec<AttributeValue> =
            replaces.map(|old| s(old.to_string())).into_iter().collect();
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(user_pk(user_id)))
            .key("sk", s(USER_SK))
            .update_expression(
                "SET customer_key = :ck, subscription_id = :id, \
                 subscription_ids = list_append(if_not_exists(subscription_ids, :none), :ids), \
                 created_at = if_not_exists(created_at, :at)",
            )
            .condition_expression("attribute_not_exists(pk) OR customer_key = :ck")
            .expression_attribute_values(":ck", s(customer_key.to_string()))
            .expression_attribute_values(":id", s(id.to_string()))
            .expression_attribute_values(":none", AttributeValue::L(before))
            .expression_attribute_values(":ids", AttributeValue::L(vec![s(id.to_string())]))
            .expression_attribute_values(":at", s(time::format(at)))
            .build()
            .map_err(|e| Error::corrupt("(user update)", e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Stores a started checkout; its state hash must be new.
    pub async fn create_checkout(&self, checkout: &Checkout) -> Result<(), Error> {
        let item = CheckoutItem {
            pk: checkout_pk(&checkout.state_hash),
            sk: CHECKOUT_SK.to_owned(),
            user_id: checkout.user_id.clone(),
            customer_key: checkout.customer_key.to_string(),
            created_at: time::format(checkout.created_at),
            valid_until: checkout.expires_at.timestamp(),
            expires_at: checkout.expires_at.timestamp() + CHECKOUT_TTL_GRACE_SECONDS,
            auth_key_hash: checkout.auth_key_hash.clone(),
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::corrupt("(checkout put)", e.to_string()))?;
        self.put(put).await
    }

    /// The checkout whose state hashes to `state_hash`, expired or not.
    pub async fn checkout(&self, state_hash: &str) -> Result<Option<Checkout>, Error> {
        let Some(item) = self.get(checkout_pk(state_hash), CHECKOUT_SK).await? else {
            return Ok(None);
        };
        let item: CheckoutItem = from_item(item)?;
        let key = item.pk.clone();
        let at = |secs: i64| {
            DateTime::<Utc>::from_timestamp(secs, 0)
                .ok_or_else(|| Error::corrupt(key.clone(), "valid_until is out of range"))
        };
        Ok(Some(Checkout {
            state_hash: state_hash.to_owned(),
            customer_key: CustomerKey::parse(item.customer_key)
                .map_err(|_| Error::corrupt(key.clone(), "customer_key is invalid"))?,
            created_at: time::parse(&item.created_at)
                .ok_or_else(|| Error::corrupt(key.clone(), "created_at is not a timestamp"))?,
            expires_at: at(item.valid_until)?,
            user_id: item.user_id,
            auth_key_hash: item.auth_key_hash,
        }))
    }

    /// Spends the checkout on the authKey hashing to `auth_key_hash`: succeeds when the
    /// checkout exists, is still valid at `now`, and is unbound or bound to that same authKey
    /// (a reload); `ConditionFailed` otherwise, and nothing changes.
    pub async fn bind_checkout(
        &self,
        state_hash: &str,
        auth_key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(checkout_pk(state_hash)))
            .key("sk", s(CHECKOUT_SK))
            .update_expression("SET auth_key_hash = :h")
            .condition_expression(
                "attribute_exists(pk) AND valid_until > :now \
                 AND (attribute_not_exists(auth_key_hash) OR auth_key_hash = :h)",
            )
            .expression_attribute_values(":h", s(auth_key_hash))
            .expression_attribute_values(":now", n(u64::try_from(now.timestamp()).unwrap_or(0)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Error::ConditionFailed,
                _ => Error::service("UpdateItem", e),
            })
    }
}
