/// Why a use case stopped. Per-customer outcomes (declines, unknown results) are not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Toss refused a request for a reason on our side: wrong or revoked secret key, no
    /// billing contract, a request Toss considers invalid. Nothing was charged and no
    /// subscription was changed; a human must fix the configuration.
    /// `code` is Toss's error code; `None` when its answer carried none (a bare 401, an
    /// unreadable body) or our own client configuration was refused before sending.
    #[error(
        "Toss refused our request with {}; check TOSS_SECRET_KEY, the billing contract and the plan configuration",
        code.as_ref().map_or("no error code", toss::ErrorCode::as_str)
    )]
    OurFault { code: Option<toss::ErrorCode> },
    /// Toss refused the data of so many customers in one run that the cause is more likely
    /// ours (a plan or request change) than theirs; the run stopped.
    #[error(
        "Toss refused the data of {refused} customers in one run; check the plan configuration before the next run"
    )]
    ManyCustomersRefused { refused: u64 },
    /// Toss could not be reached before any work started.
    #[error("Toss is unreachable")]
    TossUnavailable(#[source] toss::Error),
    #[error("the table could not be read or written")]
    Store(#[from] store::Error),
    /// The sweep finished, but some due subscriptions could not be processed (the table
    /// failed, an item did not parse). Everything else was done; running it again is safe.
    #[error("the sweep finished with {} errors", summary.errors)]
    SweepIncomplete {
        summary: Box<crate::summary::Summary>,
    },
    /// The sweep's as-of time is more than 5 minutes in the future with a live key (only test
    /// keys accept a test clock).
    #[error(
        "the event time {event_time} is more than 5 minutes in the future; only test keys accept a test clock"
    )]
    InvalidAsOf {
        event_time: chrono::DateTime<chrono::Utc>,
    },
    /// Our own code or data broke a rule it keeps: a bug or a damaged item, never the
    /// customer's doing and never Toss's.
    #[error(transparent)]
    Internal(#[from] Invariant),
}

/// The rules our own code and data keep; each breach names what it found (the text an operator
/// reads next to the `Internal` error type).
#[derive(Debug, thiserror::Error)]
pub enum Invariant {
    /// A value we build ourselves (an order id, an idempotency key, a ULID) failed its own
    /// validation.
    #[error("a {what} we built failed its own validation")]
    BuiltValue {
        what: &'static str,
        #[source]
        source: domain::IdError,
    },
    #[error("the sweep's Toss slots were closed while it ran")]
    TossSlotsClosed,
    /// The ledger's last attempt is final but the subscription does not show it.
    #[error("subscription {subscription} does not reflect its final attempt {order_id}")]
    LedgerDisagrees {
        subscription: domain::SubscriptionId,
        order_id: domain::OrderId,
    },
    /// A conditional write kept losing to other writers.
    #[error("{0} could not be written after retries: it kept changing under us")]
    KeptConflicting(Contended),
    #[error("refund request {request} has no refund numbered {number} on {order_id}")]
    RequestWithoutRefund {
        request: String,
        order_id: domain::OrderId,
        number: u32,
    },
    #[error("ledger entries of {0} have no subscription")]
    SubscriptionMissing(domain::SubscriptionId),
    #[error("paid attempt {0} has no paymentKey")]
    PaidWithoutPaymentKey(domain::OrderId),
    #[error("Toss's transactions of {day} did not end after {pages} pages")]
    TransactionsUnbounded {
        day: chrono::NaiveDate,
        pages: usize,
    },
}

/// The writes that retry on a version conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contended {
    RefundClaim,
    RefusedRefund,
    DoneRefund,
}

impl std::fmt::Display for Contended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Contended::RefundClaim => "a refund claim",
            Contended::RefusedRefund => "a refused refund",
            Contended::DoneRefund => "a done refund",
        })
    }
}

/// A Toss failure that ends a whole run (the sweep's preflight, the settlement check, a
/// webhook): Toss refusing our request (or the data we sent) stops it as our fault; anything
/// else is Toss unavailable.
pub(crate) fn toss_failure(e: toss::Error) -> Error {
    match e.class() {
        toss::ErrorClass::OurFault | toss::ErrorClass::CustomerData => Error::OurFault {
            code: e.error_code().cloned(),
        },
        _ => Error::TossUnavailable(e),
    }
}

/// An error and each of its causes, outermost first, joined by `: ` (what a log line shows
/// instead of the error's `Debug`).
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_chain_names_every_cause_outermost_first() {
        let inner = store::Error::ConditionFailed;
        let outer = Error::Store(inner);
        assert_eq!(
            cause_chain(&outer),
            format!(
                "the table could not be read or written: {}",
                store::Error::ConditionFailed
            )
        );
    }
}
