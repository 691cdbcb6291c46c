//! What a sweep reports.

use serde::Serialize;

/// What a sweep did. Logged and returned as the function's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub as_of: String,
    /// Subscriptions the due index returned.
    pub due: u64,
    pub charged: u64,
    /// Of `charged`, attempts whose outcome was recovered by looking the order up.
    pub reconciled: u64,
    pub declined: u64,
    pub retry_scheduled: u64,
    pub canceled: u64,
    pub unknown_outcome: u64,
    /// Due but claimed by another run, or not actionable yet (e.g. a look-up backing off).
    pub skipped: u64,
    pub billing_keys_deleted: u64,
    /// Held for an operator: Toss refused the customer's data, or its record of a payment is
    /// one no rule may settle alone (see the ledger entry with status `REVIEW`).
    pub held: u64,
    /// Per-subscription failures other than Toss's answers (the table unreachable, say).
    pub errors: u64,
    pub total_charged_krw: u64,
    /// True when the run stopped claiming because its deadline was near.
    pub stopped_early: bool,
    /// Attempts this run left `UNKNOWN` (looked up without an answer, or not due for a look-up
    /// yet). Every unknown attempt is due for a look-up at least every 6 hours, so a daily run
    /// sees each one older than that.
    pub unknown_open: u64,
    /// Age of the oldest of them, in seconds (0 when there is none): over a day means Toss has
    /// not answered for that order for a day; see the README's runbook.
    pub oldest_unknown_age_seconds: u64,
    /// Open refunds this run settled from Toss's record (done or refused).
    pub refunds_settled: u64,
    /// Of those, refunds Toss refused (logged as errors: an operator decides what next).
    pub refunds_refused: u64,
    /// Open refunds Toss still gave no answer for: sent again under their own keys, and due
    /// again at the next run. One that stays open is an operator's (see the README's runbook).
    pub refunds_open: u64,
}
