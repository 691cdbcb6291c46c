//! The operations the emulated API performs on the state, one file each: issue a billing
//! key, charge it, look a payment up, cancel it, delete the key, list the transactions of a window. Each is an `impl Sandbox` block
//! called by `routes.rs` once the request pipeline has authenticated and validated the call.

mod cancel;
mod charge;
mod delete;
mod issue;
mod lookup;
pub(crate) mod transactions;
