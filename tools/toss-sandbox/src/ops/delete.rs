//! `DELETE /v1/billing/{billingKey}`.

use crate::errors::ApiError;
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
        Ok(())
    }
}
