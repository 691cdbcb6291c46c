//! The ledger's paid entries by day, for the daily settlement check: every `DONE` attempt
//! carries `settled_day` (the Seoul calendar day it was approved on, `YYYY-MM-DD`; written by
//! `item.rs`) and is in the
//! sparse `settled` index under it. Nothing else is in that index.

use chrono::NaiveDate;
use domain::ChargeAttempt;

use crate::dynamo::s;
use crate::item::{AttemptItem, from_item};
use crate::{Error, Store};

/// Name of the sparse index of paid attempts by day.
pub const SETTLED_INDEX: &str = "settled";

impl Store {
    /// Every `DONE` attempt approved on the Seoul calendar day `day`, page by page (the index
    /// is eventually consistent: an entry written a moment ago may be missing).
    pub async fn paid_on(&self, day: NaiveDate) -> Result<Vec<ChargeAttempt>, Error> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SETTLED_INDEX)
            .key_condition_expression("settled_day = :day")
            .expression_attribute_values(":day", s(day.format("%Y-%m-%d").to_string()));
        self.all_items(query)
            .await?
            .into_iter()
            .map(|item| from_item::<AttemptItem>(item)?.try_into())
            .collect()
    }
}
