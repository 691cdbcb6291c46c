//! Integration tests: the client against a local mock of the Toss API.

// Helpers in `support` are test code too; clippy's in-tests allowance only sees `#[test]` fns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cancel;
mod charge;
mod delete;
mod failures;
mod issue;
mod lookup;
mod secrets;
mod support;
