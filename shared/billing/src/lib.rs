//! The billing use cases both functions share: registering a card from Toss's billing-auth
//! redirect (and charging the first month), and the renewal sweep. Both go through one
//! charge engine: claim an attempt in the ledger, charge Toss with the attempt's order id as
//! the idempotency key, and record the outcome together with the subscription change.
//!
//! Money rules enforced here (docs/money-rules.md §4):
//! - an attempt's order id is derived from (subscription, period, attempt), created before
//!   Toss is called, and reused by every retry or look-up of that attempt;
//! - an unknown outcome is reconciled by order id, never marked failed, never re-charged
//!   under a new order id;
//! - a period and its credits are granted only in the same write that records `DONE`;
//! - the amount comes from the configured plan;
//! - a refusal on our side (key, contract, request) stops the work and changes no
//!   subscription.

pub mod config;

/// A crash point for the fault-injection suite; compiles to nothing without `failpoints`.
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        crate::failpoint::hit($name).await;
    };
}

mod account;
mod checkout;
mod engine;
mod error;
#[cfg(feature = "failpoints")]
pub mod failpoint;
pub mod kms;
pub mod metrics;
mod outcome;
mod refund;
mod register;
pub mod secret;
mod settlement;
mod summary;
mod sweep;
#[cfg(feature = "test-util")]
pub mod testing;
mod webhook;
mod withdrawal;

pub use account::{ChangeOutcome, ConsumeOutcome, ConsumeRequest, PaymentsPage};
pub use checkout::StartedCheckout;
pub use config::{Config, ConfigError};
pub use engine::{Billing, Settings};
pub use error::{Contended, Error, Invariant, cause_chain};
pub use refund::{Converged, RefundOutcome, RefundRequest, RequestId};
pub use register::{FailureCode, Registration, RegistrationOutcome};
pub use settlement::{Mismatch, MismatchKind, SettlementReport, previous_kst_day};
pub use summary::Summary;
pub use sweep::{SweepOptions, as_of_from_event};
pub use webhook::{Convergence, TransmissionId, WebhookEvent, WebhookOutcome};
pub use withdrawal::{WithdrawOutcome, Withdrawable, withdrawable};
