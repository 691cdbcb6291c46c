//! Starting a checkout (product §10.2): the signed-in user's server-owned customer key, made
//! on the first checkout and reused after, and a fresh single-use state for Toss's redirect.

use chrono::{DateTime, Utc};
use domain::{CUSTOMER_KEY_ENTROPY, Checkout, CheckoutState, CustomerKey, Plan, STATE_ENTROPY};
use tracing::info;

use crate::{Billing, Error};

/// What the app needs to open Toss's card window for this user.
#[derive(Debug, Clone)]
pub struct StartedCheckout {
    pub customer_key: CustomerKey,
    /// Goes into the success and fail URLs; only its hash is stored.
    pub state: CheckoutState,
    pub expires_at: DateTime<Utc>,
    pub plan: Plan,
}

impl Billing {
    /// Starts a checkout for `user_id` (the verified token's subject). At most three table
    /// requests: read the user's key, create it on a first checkout, store the state.
    pub async fn start_checkout(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<StartedCheckout, Error> {
        let customer_key = match self.store.user_customer_key(user_id).await? {
            Some(key) => key,
            None => {
                let fresh = CustomerKey::from_entropy(rand::random::<[u8; CUSTOMER_KEY_ENTROPY]>());
                self.store
                    .ensure_user_customer_key(user_id, &fresh, now)
                    .await?
            }
        };
        let state = CheckoutState::from_entropy(rand::random::<[u8; STATE_ENTROPY]>());
        let checkout = Checkout::start(&state, user_id, customer_key.clone(), now);
        self.store.create_checkout(&checkout).await?;
        info!(customer = %customer_key, "checkout started");
        Ok(StartedCheckout {
            customer_key,
            state,
            expires_at: checkout.expires_at,
            plan: self.settings.plan.clone(),
        })
    }
}
