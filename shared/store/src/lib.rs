//! DynamoDB repository: subscriptions, the payment ledger (one item per charge attempt),
//! the sparse `due` index the sweep reads, and the record of processed billing-auth
//! redirects.
//!
//! Single-table layout (`pk`, `sk`):
//!
//! | item            | pk                  | sk                          |
//! |-----------------|---------------------|-----------------------------|
//! | subscription    | `SUB#<id>`          | `SUB`                       |
//! | charge attempt  | `SUB#<id>`          | `CHG#<period:010>#<n:010>`  |
//! | customer        | `CUS#<customerKey>` | `CUS`                       |
//! | auth redirect   | `AUTH#<sha256>`     | `AUTH`                      |
//! | user            | `USER#<user id>`    | `USER`                      |
//! | checkout        | `CHECKOUT#<sha256>` | `CHECKOUT`                  |
//! | credit entry    | `SUB#<id>`          | `CRD#<at>#<change>#<ref>`   |
//! | idempotency key | `USER#<user id>`    | `IDEM#<sha256>`             |
//! | refund          | `SUB#<id>`          | `RFD#<period>#<n>#<refund>` |
//! | recorded cancel | `SUB#<id>`          | `RFDTX#<transactionKey>`    |
//! | refund request  | `RFDREQ#<op's id>`  | `RFDREQ`                    |
//! | webhook delivery| `WEBHOOK#<id>`      | `WEBHOOK`                   |
//!
//! A subscription is in the `due` index (`due_pk`, `due_at`) only while the sweep has
//! something to do with it, and a refund only while it is open (Toss has not answered); `due_pk` spreads those items over [`DUE_SHARDS`] partitions from
//! day one, so the read rate is never capped by one hot partition and the shard count never
//! needs a migration.

mod checkout;
mod credits;
mod dynamo;
mod error;
mod item;
mod refund;
mod seal;
mod settled;
mod time;
mod webhook;

pub use checkout::UserView;
pub use credits::{ConsumeWrite, Consumption, IDEMPOTENCY_TTL_HOURS, IdempotencyRecord};
pub use dynamo::{Cursor, Due, DuePage, Store};
pub use error::Error;
pub use item::RedirectRecord;
pub use refund::{OPEN_REFUND_GRACE, RefundRequestRecord, RefundWrite};
pub use seal::{DataKey, KeyFuture, KeyService, SealError, Sealer, is_sealed};
pub use settled::SETTLED_INDEX;
pub use webhook::{CARD_INDEX, WEBHOOK_TTL_DAYS, WebhookClaim};

/// Name of the global secondary index of due subscriptions. It projects keys only (no billing
/// key, e-mail or card number is copied into it): the sweep reads each subscription itself.
pub const DUE_INDEX: &str = "due_keys";

/// Partitions of the due index. Fixed: changing it would strand items in old shards.
pub const DUE_SHARDS: u32 = 16;
