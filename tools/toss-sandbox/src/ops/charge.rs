//! `POST /v1/billing/{billingKey}`: charge a billing key, or decline as the test card or a forced
//! decline says.

use crate::cards::ChargeBehaviour;
use crate::errors::ApiError;
use crate::model::{API_VERSION, Payment, PaymentCard, Url, kst, vat_split};
use crate::requests::ChargeRequest;
use crate::snapshot::fingerprint;
use crate::state::{Caller, PaymentRecord, Sandbox, random_digits, transaction_key};

impl Sandbox {
    /// `POST /v1/billing/{billingKey}`
    pub(crate) fn charge(
        &self,
        caller: &Caller,
        billing_key: &str,
        request: &ChargeRequest,
    ) -> Result<Payment, ApiError> {
        let mut state = self.lock();
        let now = state.now();
        let record = match state.billing_keys.get(billing_key) {
            Some(r) if r.owner == caller.secret_key && r.deleted_at.is_none() => r.clone(),
            _ => return Err(ApiError::of("INVALID_BILL_KEY_REQUEST")),
        };
        if record.customer_key != request.customer_key {
            return Err(ApiError::of("NOT_MATCHES_CUSTOMER_KEY"));
        }
        if state
            .order_index(&caller.secret_key, &request.order_id)
            .is_some()
        {
            return Err(ApiError::of("DUPLICATED_ORDER_ID"));
        }
        let profile = record.card.profile();
        let decline = state
            .take_decline(&request.customer_key)
            .or_else(|| match profile.charge {
                ChargeBehaviour::Approve => None,
                ChargeBehaviour::Decline(code) => Some(ApiError::of(code)),
                ChargeBehaviour::DeclineAfterFirst(code) => {
                    (record.approved_charges > 0).then(|| ApiError::of(code))
                }
            });
        if let Some(error) = decline {
            state.counters.declined_charges += 1;
            state.record_attempt(&caller.secret_key, billing_key, request, &error.code, now);
            return Err(error);
        }

        let payment_key = state.new_payment_key(now);
        let transaction_key = transaction_key();
        let (supplied_amount, vat) = vat_split(
            request.amount,
            request.tax_free_amount,
            request.tax_exemption_amount,
        );
        let payment = Payment {
            m_id: caller.mid.clone(),
            version: API_VERSION.to_owned(),
            payment_key: payment_key.clone(),
            status: "DONE".to_owned(),
            last_transaction_key: transaction_key.clone(),
            order_id: request.order_id.clone(),
            order_name: request.order_name.clone(),
            requested_at: kst(now),
            approved_at: Some(kst(now)),
            use_escrow: false,
            culture_expense: false,
            card: Some(PaymentCard {
                issuer_code: profile.issuer_code.to_owned(),
                acquirer_code: profile.acquirer_code.to_owned(),
                number: profile.masked_number(),
                installment_plan_months: request.installment_months,
                is_interest_free: false,
                interest_payer: None,
                approve_no: random_digits(8),
                use_card_point: false,
                card_type: profile.card_type.to_owned(),
                owner_type: profile.owner_type.to_owned(),
                acquire_status: "READY".to_owned(),
                amount: request.amount,
            }),
            virtual_account: None,
            transfer: None,
            mobile_phone: None,
            gift_certificate: None,
            cash_receipt: None,
            cash_receipts: None,
            discount: None,
            cancels: None,
            secret: None,
            kind: "BILLING".to_owned(),
            easy_pay: None,
            country: "KR".to_owned(),
            failure: None,
            is_partial_cancelable: request.tax_exemption_amount == 0,
            receipt: Some(Url {
                url: format!(
                    "https://dashboard-sandbox.tosspayments.com/receipt/redirection?transactionId={transaction_key}&ref=PX"
                ),
            }),
            checkout: Some(Url {
                url: format!("https://api.tosspayments.com/v1/payments/{payment_key}/checkout"),
            }),
            currency: "KRW".to_owned(),
            total_amount: request.amount,
            balance_amount: request.amount,
            supplied_amount,
            vat,
            tax_free_amount: request.tax_free_amount,
            tax_exemption_amount: request.tax_exemption_amount,
            metadata: None,
            method: Some("카드".to_owned()),
        };
        if let Some(entry) = state.billing_keys.get_mut(billing_key) {
            entry.approved_charges += 1;
        }
        state.payments.push(PaymentRecord {
            owner: caller.secret_key.clone(),
            customer_key: request.customer_key.clone(),
            billing_key_fingerprint: fingerprint(billing_key),
            payment: payment.clone(),
        });
        state.counters.done_charges += 1;
        state.counters.approved_amount += request.amount;
        state.record_attempt(&caller.secret_key, billing_key, request, "DONE", now);
        Ok(payment)
    }
}
