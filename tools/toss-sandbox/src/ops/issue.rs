//! `POST /v1/billing/authorizations/issue`: an authKey from the card window becomes a billing key.

use chrono::Duration;

use crate::errors::ApiError;
use crate::model::{Billing, BillingCard, kst};
use crate::state::{BillingKeyRecord, Caller, Sandbox};

impl Sandbox {
    /// `POST /v1/billing/authorizations/issue`
    pub(crate) fn issue(
        &self,
        caller: &Caller,
        auth_key: &str,
        customer_key: &str,
    ) -> Result<Billing, ApiError> {
        let mut state = self.lock();
        let now = state.now();
        let ttl = Duration::seconds(state.config.auth_key_ttl_seconds);
        let record = state
            .auth_keys
            .get(auth_key)
            .cloned()
            .ok_or_else(|| ApiError::of("NOT_FOUND_BILLING"))?;
        if record.used {
            return Err(ApiError::with_message(
                "INVALID_BILLING_AUTH",
                "이미 사용된 빌링 인증입니다.",
            ));
        }
        if now > record.created_at + ttl {
            return Err(ApiError::with_message(
                "INVALID_BILLING_AUTH",
                "만료된 빌링 인증입니다.",
            ));
        }
        if record.customer_key != customer_key {
            return Err(ApiError::of("NOT_MATCHES_CUSTOMER_KEY"));
        }
        let profile = record.card.profile();
        if let Some(code) = profile.registration_error {
            if let Some(entry) = state.auth_keys.get_mut(auth_key) {
                entry.used = true;
            }
            return Err(ApiError::of(code));
        }
        let billing_key = state.new_billing_key();
        if let Some(entry) = state.auth_keys.get_mut(auth_key) {
            entry.used = true;
        }
        state.billing_keys.insert(
            billing_key.clone(),
            BillingKeyRecord {
                owner: caller.secret_key.clone(),
                customer_key: customer_key.to_owned(),
                card: record.card,
                issued_at: now,
                deleted_at: None,
                approved_charges: 0,
            },
        );
        state.billing_key_order.push(billing_key.clone());
        state.counters.billing_keys_issued += 1;
        Ok(Billing {
            m_id: caller.mid.clone(),
            customer_key: customer_key.to_owned(),
            authenticated_at: kst(now),
            method: "카드".to_owned(),
            billing_key,
            card: BillingCard {
                issuer_code: profile.issuer_code.to_owned(),
                acquirer_code: profile.acquirer_code.to_owned(),
                number: profile.masked_number(),
                card_type: profile.card_type.to_owned(),
                owner_type: profile.owner_type.to_owned(),
            },
            card_company: profile.company.to_owned(),
            card_number: profile.masked_number(),
        })
    }
}
