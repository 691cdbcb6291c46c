//! The money invariants (docs/money-rules.md §4) under faults, proved by breaking things on purpose:
//! hundreds of subscriptions against DynamoDB Local (table from template.yaml) and the stateful
//! Toss sandbox, with every check made twice: from the sandbox's own record of money movement and
//! from the table. Every log line the suite produces (in-process at debug, every worker process,
//! every function under `cargo lambda watch`) is scanned for secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash;
mod input;
mod model;
mod scenarios;
mod world;
