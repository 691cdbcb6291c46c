//! The billing use cases against AWS's DynamoDB Local (table from template.yaml) and the
//! stateful Toss sandbox. Every assertion about money is made twice: from our ledger and
//! from the sandbox's own record of what it charged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adversarial;
mod app_review;
mod faults;
mod harness;
mod kms;
mod lifecycle;
mod metrics;
mod refund;
mod refund_faults;
mod refund_review;
mod review;
mod secret;
mod settlement;
