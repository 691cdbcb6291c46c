//! A typed client for the Toss Payments REST API, limited to what card subscriptions need:
//! issue a billing key, charge it, look payments up, cancel, and delete the key.
//!
//! Every failure carries an [`ErrorClass`] from one reviewed table ([`class`]), so callers
//! decide "decline", "new card needed", "reconcile" or "our bug" without reading codes.
//! Secrets (the secret key, billing keys, authKeys) never appear in `Debug`, `Display` or logs.

mod billing;
pub mod class;
mod client;
mod code;
mod config;
mod de;
mod error;
mod path;
mod payment;
mod transactions;

pub use billing::{Billing, BillingCard};
pub use class::ErrorClass;
pub use client::Client;
pub use code::{ErrorCode, Operation};
pub use config::{
    Config, DEFAULT_CHARGE_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, KeyMode,
    MIN_LIVE_CHARGE_TIMEOUT,
};
pub use error::Error;
pub use payment::{ChargeRequest, Failure, Payment, PaymentCancel, PaymentCard, PaymentStatus};
pub use transactions::{DATE_FORMAT as TRANSACTIONS_DATE_FORMAT, Transaction, TransactionQuery};

#[cfg(test)]
mod tests {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn error<T: std::error::Error + Send + Sync + 'static>() {}

    #[test]
    fn the_client_can_be_shared_across_tasks_and_errors_can_be_boxed() {
        shareable::<crate::Client>();
        shareable::<crate::Config>();
        error::<crate::Error>();
    }
}
