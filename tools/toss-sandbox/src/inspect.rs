//! [`Sandbox::snapshot`]: everything the sandbox holds, as views without secrets.

use chrono::{DateTime, Utc};

use crate::config::key_hint;
use crate::idempotency::{self, RecordState};
use crate::model::kst;
use crate::snapshot::{
    BillingKeyView, ChargeAttemptView, IdempotencyView, MerchantView, PaymentView, Snapshot,
    fingerprint,
};
use crate::state::Sandbox;

impl Sandbox {
    /// The whole state, for tests, the control API and the demo's ledger check.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        let now = state.now();
        let mut merchants: Vec<MerchantView> = state
            .merchants
            .iter()
            .map(|(key, m)| MerchantView {
                mid: m.mid.clone(),
                key_hint: key_hint(key),
                key_kind: m.kind,
                billing_contract: m.billing_contract,
            })
            .collect();
        merchants.sort_by(|a, b| a.mid.cmp(&b.mid));
        let billing_keys = state
            .billing_key_order
            .iter()
            .filter_map(|key| state.billing_keys.get(key).map(|r| (key, r)))
            .map(|(key, r)| {
                let profile = r.card.profile();
                BillingKeyView {
                    mid: state.mid_of(&r.owner),
                    fingerprint: fingerprint(key),
                    customer_key: r.customer_key.clone(),
                    card: r.card,
                    card_type: profile.card_type.to_owned(),
                    owner_type: profile.owner_type.to_owned(),
                    masked_number: profile.masked_number(),
                    issued_at: kst(r.issued_at),
                    deleted: r.deleted_at.is_some(),
                    deleted_at: r.deleted_at.map(kst),
                    approved_charges: r.approved_charges,
                }
            })
            .collect();
        let payments = state
            .payments
            .iter()
            .map(|r| PaymentView {
                mid: state.mid_of(&r.owner),
                payment_key: r.payment.payment_key.clone(),
                order_id: r.payment.order_id.clone(),
                order_name: r.payment.order_name.clone(),
                customer_key: r.customer_key.clone(),
                billing_key_fingerprint: r.billing_key_fingerprint.clone(),
                total_amount: r.payment.total_amount,
                balance_amount: r.payment.balance_amount,
                status: r.payment.status.clone(),
                approved_at: r.payment.approved_at.clone(),
                cancels: r.payment.cancels.as_ref().map_or(0, Vec::len),
            })
            .collect();
        let charge_attempts = state
            .attempts
            .iter()
            .map(|a| ChargeAttemptView {
                mid: state.mid_of(&a.owner),
                order_id: a.order_id.clone(),
                customer_key: a.customer_key.clone(),
                billing_key_fingerprint: a.billing_key_fingerprint.clone(),
                amount: a.amount,
                outcome: a.outcome.clone(),
                at: kst(a.at),
            })
            .collect();
        let mut idempotency: Vec<(DateTime<Utc>, IdempotencyView)> = state
            .idempotency
            .records()
            .map(|(key, record)| {
                (
                    record.created_at,
                    IdempotencyView {
                        mid: record.mid.clone(),
                        method: key.method.clone(),
                        endpoint: record.endpoint,
                        idempotency_key: key.idempotency_key.clone(),
                        in_flight: matches!(record.state, RecordState::InFlight { .. }),
                        status: match &record.state {
                            RecordState::Done(response) => Some(response.status),
                            RecordState::InFlight { .. } => None,
                        },
                        created_at: kst(record.created_at),
                        expires_at: kst(record.created_at + idempotency::retention()),
                        replays: record.replays,
                    },
                )
            })
            .collect();
        idempotency.sort_by_key(|(at, _)| *at);
        Snapshot {
            now: kst(now),
            clock_offset_seconds: state.clock_offset.num_seconds(),
            seed: state.faults.seed,
            merchants,
            billing_keys,
            payments,
            charge_attempts,
            idempotency: idempotency.into_iter().map(|(_, view)| view).collect(),
            counters: state.counters.clone(),
        }
    }
}
