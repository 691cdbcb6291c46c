//! `GET /v1/payments/{paymentKey}` and `GET /v1/payments/orders/{orderId}`.

use crate::errors::ApiError;
use crate::model::Payment;
use crate::state::{Caller, Sandbox};

impl Sandbox {
    /// `GET /v1/payments/{paymentKey}`
    pub(crate) fn payment(&self, caller: &Caller, payment_key: &str) -> Result<Payment, ApiError> {
        let state = self.lock();
        state
            .payment_index(&caller.secret_key, payment_key)
            .and_then(|i| state.payments.get(i))
            .map(|r| r.payment.clone())
            .ok_or_else(|| ApiError::of("NOT_FOUND_PAYMENT"))
    }

    /// `GET /v1/payments/orders/{orderId}`
    pub(crate) fn payment_by_order_id(
        &self,
        caller: &Caller,
        order_id: &str,
    ) -> Result<Payment, ApiError> {
        let state = self.lock();
        state
            .order_index(&caller.secret_key, order_id)
            .and_then(|i| state.payments.get(i))
            .map(|r| r.payment.clone())
            .ok_or_else(|| ApiError::of("NOT_FOUND_PAYMENT"))
    }
}
