//! What each kind of invocation needs from `billing::Billing`, so that the handlers' answers
//! (the report, and each error's `error_type`) can be tested in-file against a hand-written
//! fake (no table, no Toss). Each method has `Billing`'s own signature.

use std::future::Future;

use billing::{Error, RefundOutcome, RefundRequest, SettlementReport, Summary, SweepOptions};
use chrono::{DateTime, NaiveDate, Utc};

/// The Toss client, whose key decides whether an event's time may be a test clock.
pub(crate) trait TossKey: Send + Sync {
    fn toss(&self) -> &toss::Client;
}

/// The scheduled renewal sweep. Its future is not declared `Send`: the compiler cannot prove
/// it for `Billing::sweep` (whose stream of pages borrows across a higher-ranked closure), and
/// `lambda_runtime::run` does not ask for it (only `run_concurrent` would).
pub(crate) trait Sweep: TossKey {
    fn sweep(&self, options: &SweepOptions) -> impl Future<Output = Result<Summary, Error>>;
}

/// The daily settlement check against Toss's record.
pub(crate) trait Settlement: TossKey {
    fn settle_day(
        &self,
        day: NaiveDate,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<SettlementReport, Error>> + Send;
}

/// An operator's refund.
pub(crate) trait Refunds: Send + Sync {
    fn refund(
        &self,
        request: &RefundRequest,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<RefundOutcome, Error>> + Send;
}

impl TossKey for billing::Billing {
    fn toss(&self) -> &toss::Client {
        billing::Billing::toss(self)
    }
}

impl Sweep for billing::Billing {
    fn sweep(&self, options: &SweepOptions) -> impl Future<Output = Result<Summary, Error>> {
        billing::Billing::sweep(self, options)
    }
}

impl Settlement for billing::Billing {
    fn settle_day(
        &self,
        day: NaiveDate,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<SettlementReport, Error>> + Send {
        billing::Billing::settle_day(self, day, run_id, now)
    }
}

impl Refunds for billing::Billing {
    fn refund(
        &self,
        request: &RefundRequest,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<RefundOutcome, Error>> + Send {
        billing::Billing::refund(self, request, now)
    }
}

/// A hand-written fake of every capability: each use case answers what the test put in its
/// slot, once, and records what it was given; one without an answer panics.
#[cfg(test)]
pub(crate) mod fake {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;

    use super::*;

    pub(crate) use billing::testing::Slot;

    #[derive(Debug)]
    pub(crate) struct Fake {
        toss: toss::Client,
        pub sweep: Slot<Summary>,
        pub settle_day: Slot<SettlementReport>,
        pub refund: Slot<RefundOutcome>,
        pub calls: Mutex<Vec<String>>,
    }

    impl Fake {
        /// A fake whose Toss client has a test key (`live` false) or a live one: what decides
        /// whether a future event time is accepted. The client is never called.
        pub(crate) fn new(live: bool) -> Self {
            let key = if live {
                "live_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"
            } else {
                "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"
            };
            let lookup = |name: &str| match name {
                "TOSS_SECRET_KEY" => Some(key.to_owned()),
                "TOSS_API_BASE" => Some("http://127.0.0.1:9".to_owned()),
                "TABLE_NAME" => Some("subscriptions".to_owned()),
                _ => None,
            };
            let config = billing::Config::from_lookup(lookup).unwrap();
            Self {
                toss: toss::Client::new(config.toss).unwrap(),
                sweep: Slot::default(),
                settle_day: Slot::default(),
                refund: Slot::default(),
                calls: Mutex::default(),
            }
        }

        pub(crate) fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        fn called(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    impl TossKey for Fake {
        fn toss(&self) -> &toss::Client {
            &self.toss
        }
    }

    impl Sweep for Fake {
        async fn sweep(&self, options: &SweepOptions) -> Result<Summary, Error> {
            self.called(format!(
                "sweep as_of={} concurrency={} run_id={}",
                options.as_of.to_rfc3339(),
                options.concurrency,
                options.run_id
            ));
            self.sweep.take("sweep")
        }
    }

    impl Settlement for Fake {
        async fn settle_day(
            &self,
            day: NaiveDate,
            run_id: &str,
            _now: DateTime<Utc>,
        ) -> Result<SettlementReport, Error> {
            self.called(format!("settle_day {day} {run_id}"));
            self.settle_day.take("settle_day")
        }
    }

    impl Refunds for Fake {
        async fn refund(
            &self,
            request: &RefundRequest,
            _now: DateTime<Utc>,
        ) -> Result<RefundOutcome, Error> {
            self.called(format!(
                "refund {} {:?}",
                request.order_id,
                request.amount.map(domain::Krw::won)
            ));
            self.refund.take("refund")
        }
    }

    /// One of each `billing::Error` a use case can return, with the `error_type` an alarm
    /// matches for it on (sweep, settlement check, operator refund).
    pub(crate) fn every_error() -> Vec<(Error, [&'static str; 3])> {
        let as_of = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        vec![
            (
                Error::OurFault {
                    code: Some(toss::ErrorCode::UnauthorizedKey),
                },
                [
                    "TossRefusedOurRequest",
                    "TossRefusedOurRequest",
                    "TossRefusedOurRequest",
                ],
            ),
            (
                Error::ManyCustomersRefused { refused: 5 },
                ["ManyCustomersRefused", "Internal", "Internal"],
            ),
            (
                Error::TossUnavailable(toss::Error::Timeout {
                    operation: toss::Operation::Charge,
                }),
                ["TossUnavailable", "TossUnavailable", "TossUnavailable"],
            ),
            (
                Error::Store(store::Error::ConditionFailed),
                ["TableUnavailable", "TableUnavailable", "TableUnavailable"],
            ),
            (
                Error::InvalidAsOf { event_time: as_of },
                ["InvalidAsOf", "InvalidAsOf", "Internal"],
            ),
            (
                Error::Internal(billing::Invariant::TossSlotsClosed),
                ["Internal", "Internal", "Internal"],
            ),
            (
                Error::SweepIncomplete {
                    summary: Box::default(),
                },
                ["SweepIncomplete", "Internal", "Internal"],
            ),
        ]
    }
}
