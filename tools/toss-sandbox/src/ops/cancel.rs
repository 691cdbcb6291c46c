//! `POST /v1/payments/{paymentKey}/cancel`: a full or partial refund.

use crate::errors::ApiError;
use crate::model::{Cancel, Payment, kst, vat_split};
use crate::outbox::Event;
use crate::requests::CancelRequest;
use crate::state::{Caller, Sandbox, State, transaction_key};

impl Sandbox {
    /// `POST /v1/payments/{paymentKey}/cancel`
    pub(crate) fn cancel(
        &self,
        caller: &Caller,
        payment_key: &str,
        request: &CancelRequest,
    ) -> Result<Payment, ApiError> {
        let mut state = self.lock();
        let answer = state.cancel(&caller.secret_key, payment_key, request)?;
        let webhook = state.webhook(
            &caller.secret_key,
            Event::PaymentStatusChanged(Box::new(answer.clone())),
        );
        drop(state);
        self.send_webhook(webhook);
        Ok(answer)
    }

    /// A refund made in the merchant console: the API cancel's rules and errors, no
    /// idempotency key, and the `PAYMENT_STATUS_CHANGED` webhook.
    pub fn console_cancel(
        &self,
        payment_key: &str,
        cancel_reason: &str,
        cancel_amount: Option<i64>,
    ) -> Result<Payment, ApiError> {
        let reason_chars = cancel_reason.chars().count();
        if reason_chars == 0 || reason_chars > 200 {
            return Err(ApiError::invalid_request(
                "cancelReason은 1자 이상 200자 이하여야 합니다.",
            ));
        }
        let request = CancelRequest {
            cancel_reason: cancel_reason.to_owned(),
            cancel_amount,
            refundable_amount: None,
        };
        let mut state = self.lock();
        let owner = state
            .payments
            .iter()
            .find(|p| p.payment.payment_key == payment_key)
            .map(|p| p.owner.clone())
            .ok_or_else(|| ApiError::of("NOT_FOUND_PAYMENT"))?;
        let answer = state.cancel(&owner, payment_key, &request)?;
        let webhook = state.webhook(
            &owner,
            Event::PaymentStatusChanged(Box::new(answer.clone())),
        );
        drop(state);
        self.send_webhook(webhook);
        Ok(answer)
    }
}

impl State {
    fn cancel(
        &mut self,
        owner: &str,
        payment_key: &str,
        request: &CancelRequest,
    ) -> Result<Payment, ApiError> {
        let state = self;
        let now = state.now();
        let index = state
            .payment_index(owner, payment_key)
            .ok_or_else(|| ApiError::of("NOT_FOUND_PAYMENT"))?;
        let Some(record) = state.payments.get_mut(index) else {
            return Err(ApiError::of("NOT_FOUND_PAYMENT"));
        };
        let payment = &mut record.payment;
        if payment.status == "CANCELED" {
            return Err(ApiError::of("ALREADY_CANCELED_PAYMENT"));
        }
        let balance = payment.balance_amount;
        if let Some(refundable) = request.refundable_amount
            && refundable != balance
        {
            return Err(ApiError::of("NOT_MATCHES_REFUNDABLE_AMOUNT"));
        }
        let amount = request.cancel_amount.unwrap_or(balance);
        if amount <= 0 || amount > balance {
            return Err(ApiError::of("NOT_CANCELABLE_AMOUNT"));
        }
        if amount < balance && !payment.is_partial_cancelable {
            return Err(ApiError::of("NOT_ALLOWED_PARTIAL_REFUND"));
        }
        let remaining = balance - amount;
        let transaction_key = transaction_key();
        payment.cancels.get_or_insert_with(Vec::new).push(Cancel {
            transaction_key: transaction_key.clone(),
            cancel_reason: request.cancel_reason.clone(),
            tax_exemption_amount: 0,
            canceled_at: kst(now),
            transfer_discount_amount: 0,
            easy_pay_discount_amount: 0,
            receipt_key: None,
            cancel_amount: amount,
            tax_free_amount: 0,
            refundable_amount: remaining,
            card_discount_amount: 0,
            cancel_status: "DONE".to_owned(),
            cancel_request_id: None,
        });
        payment.balance_amount = remaining;
        let (supplied, vat) = vat_split(
            remaining,
            payment.tax_free_amount.min(remaining),
            payment.tax_exemption_amount.min(remaining),
        );
        payment.supplied_amount = supplied;
        payment.vat = vat;
        payment.last_transaction_key = transaction_key;
        payment.status = if remaining == 0 {
            "CANCELED".to_owned()
        } else {
            "PARTIAL_CANCELED".to_owned()
        };
        if remaining == 0
            && let Some(card) = payment.card.as_mut()
        {
            card.acquire_status = "CANCELED".to_owned();
        }
        let answer = payment.clone();
        state.counters.canceled_amount += amount;
        Ok(answer)
    }
}
