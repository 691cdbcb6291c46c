//! The credits ledger: every change of a subscription's balance is an entry the app could
//! audit (issue 11). A paid period grants the plan's credits; without rollover the unused
//! credits of the previous period expire in the same write; a consumption spends some; ending
//! a subscription expires what is left; a refund may take a period's credits back.
//!
//! Entries are deltas: the balance on the subscription is their running sum, so an entry
//! written without reading the balance (a consumption under contention) is still exact.

use chrono::{DateTime, Utc};

/// Which way an entry moved the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditChange {
    /// A paid period's allowance.
    Grant,
    /// Unused credits that lapsed: at a new period without rollover, or when the
    /// subscription ended.
    Expire,
    /// Spent by the app (`POST /v1/credits/consume`).
    Consume,
    /// Taken back with a refunded period.
    Revoke,
}

impl CreditChange {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditChange::Grant => "GRANT",
            CreditChange::Expire => "EXPIRE",
            CreditChange::Consume => "CONSUME",
            CreditChange::Revoke => "REVOKE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "GRANT" => CreditChange::Grant,
            "EXPIRE" => CreditChange::Expire,
            "CONSUME" => CreditChange::Consume,
            "REVOKE" => CreditChange::Revoke,
            _ => return None,
        })
    }

    /// The signed effect of `amount` on the balance.
    pub fn signed(self, amount: u64) -> i128 {
        match self {
            CreditChange::Grant => i128::from(amount),
            _ => -i128::from(amount),
        }
    }
}

/// One change of the balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditEntry {
    pub change: CreditChange,
    /// Always positive; [`CreditChange::signed`] gives the direction.
    pub amount: u64,
    /// The balance right after this entry, when the writer knew it (every entry but a
    /// consumption, which is written without reading the balance).
    pub balance: Option<u64>,
    /// The period the entry belongs to, when it belongs to one.
    pub period: Option<u32>,
    /// What caused it: `period-<n>` for period changes, the hashed idempotency key of a
    /// consumption, the refund's id for a revocation.
    pub reference: String,
    pub at: DateTime<Utc>,
}

impl CreditEntry {
    /// Unique within its subscription, and in time order.
    pub fn id(&self) -> String {
        format!(
            "{}#{}#{}",
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.change.as_str(),
            self.reference
        )
    }
}

/// The balance the entries add up to, from zero; `None` if they add up to less than zero
/// (which the ledger must never show). Entries written in the same millisecond have no order
/// between them, so only the sum is checked.
pub fn replay_balance<'a>(entries: impl IntoIterator<Item = &'a CreditEntry>) -> Option<u64> {
    let balance: i128 = entries.into_iter().map(|e| e.change.signed(e.amount)).sum();
    u64::try_from(balance).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(change: CreditChange, amount: u64) -> CreditEntry {
        CreditEntry {
            change,
            amount,
            balance: None,
            period: Some(0),
            reference: "period-0".into(),
            at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_entries_add_up_to_the_balance_and_a_negative_sum_is_caught() {
        let ok = [
            entry(CreditChange::Grant, 30),
            entry(CreditChange::Consume, 10),
            entry(CreditChange::Expire, 20),
            entry(CreditChange::Grant, 30),
            entry(CreditChange::Revoke, 5),
        ];
        assert_eq!(replay_balance(&ok), Some(25));
        let overdraft = [
            entry(CreditChange::Grant, 1),
            entry(CreditChange::Consume, 2),
        ];
        assert_eq!(replay_balance(&overdraft), None);
    }

    #[test]
    fn every_change_reads_back_from_its_name() {
        for c in [
            CreditChange::Grant,
            CreditChange::Expire,
            CreditChange::Consume,
            CreditChange::Revoke,
        ] {
            assert_eq!(CreditChange::parse(c.as_str()), Some(c));
        }
        assert_eq!(CreditChange::parse("grant"), None);
    }
}
