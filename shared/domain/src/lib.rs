//! The billing domain, free of I/O: identifiers parsed at the edge, integer KRW, the
//! Asia/Seoul period calendar, and the subscription and charge-attempt state machines.
//!
//! Everything here is deterministic given its inputs, so the rules that decide when a
//! customer is charged can be unit-tested without a clock, a database or Toss.

mod attempt;
mod checkout;
mod contact;
mod credits;
mod ids;
mod money;
mod period;
mod plan;
mod refund;
mod subscription;

pub use attempt::record::ChargeAttemptRecord;
pub use attempt::{AttemptKind, AttemptStatus, ChargeAttempt, Lease, PaymentsCursor};
pub use checkout::{CUSTOMER_KEY_ENTROPY, Checkout, CheckoutRefusal, CheckoutState, STATE_ENTROPY};
pub use contact::{ContactError, CustomerName, Email};
pub use credits::{CreditChange, CreditEntry, replay_balance};
pub use ids::{
    AuthKey, BillingKey, CardRef, CustomerKey, IdError, IdempotencyKey, OrderId, PaymentKey,
    SubscriptionId,
};
pub use money::Krw;
pub use period::{SEOUL, kst_day_start, kst_days_after, period_due_at, period_start};
pub use plan::{DunningError, DunningPolicy, Plan, PlanError};
pub use refund::{Refund, RefundBy, RefundStatus};
pub use subscription::record::SubscriptionRecord;
pub use subscription::{
    CancelReason, DeclineKind, Dunning, Hold, NextAction, Status, Subscription,
};
