//! `billing-api` as a library: the axum router the Lambda runs (`main.rs` only wires it to the
//! runtime), so tests drive the same routes in-process.
//!
//! - `GET /billing/success`, `GET /billing/fail`: Toss's billing-auth redirects (product §6);
//! - `/v1/*`: the app's API, for a caller with a verified bearer token (product §10);
//! - `POST /toss/webhooks`: Toss's webhooks, public, nothing in them believed (product §11).

mod account;
mod capability;
mod config;
mod error;
mod extract;
mod handler;
pub mod query;
mod routes;
mod state;
mod webhook;

pub use config::Config;
pub use error::ApiError;
pub use extract::Caller;
pub use handler::{app, handle};
pub use state::State;
