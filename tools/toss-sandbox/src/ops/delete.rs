//! `DELETE /v1/billing/{billingKey}`.

use crate::errors::ApiError;
use crate::outbox::Event;
use crate::state::{Caller, Sandbox};

impl Sandbox {
    /// `DELETE /v1/billing/{billingKey}`
    pub(crate) fn delete_billing_key(
        &self,
        caller: &Caller,
        billing_key: &str,
    ) -> Result<(), ApiError> {
        let mut state = self.lock();
        let now = state.now();
        let record = match state.billing_keys.get_mut(billing_key) {
            Some(r) if r.owner == caller.secret_key => r,
            _ => return Err(ApiError::of("NOT_FOUND_BILLING")),
        };
        if record.deleted_at.is_some() {
            return Err(ApiError::of("ALREADY_REMOVED_BILLING_KEY"));
        }
        record.deleted_at = Some(now);
        state.counters.billing_keys_deleted += 1;
        let webhook = state.webhook(
            &caller.secret_key,
            Event::BillingDeleted {
                billing_key: billing_key.to_owned(),
                reason: Some("삭제 API 요청".to_owned()),
            },
        );
        drop(state);
        self.send_webhook(webhook);
        Ok(())
    }

    /// The billing key deleted by Toss or the card company, not by the merchant: gone for
    /// charges, and `BILLING_DELETED` is sent. False when there is no such live key.
    pub fn delete_billing_key_at_toss(&self, billing_key: &str, reason: Option<&str>) -> bool {
        let mut state = self.lock();
        let now = state.now();
        let Some(record) = state
            .billing_keys
            .get_mut(billing_key)
            .filter(|r| r.deleted_at.is_none())
        else {
            return false;
        };
        record.deleted_at = Some(now);
        let owner = record.owner.clone();
        state.counters.billing_keys_deleted += 1;
        let webhook = state.webhook(
            &owner,
            Event::BillingDeleted {
                billing_key: billing_key.to_owned(),
                reason: reason.map(str::to_owned),
            },
        );
        drop(state);
        self.send_webhook(webhook);
        true
    }
}
