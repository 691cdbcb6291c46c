/// Why a use case stopped. Per-customer outcomes (declines, unknown results) are not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Toss refused a request for a reason on our side: wrong or revoked secret key, no
    /// billing contract, a request Toss considers invalid. Nothing was charged and no
    /// subscription was changed; a human must fix the configuration.
    #[error(
        "Toss refused our request with {code}; check TOSS_SECRET_KEY, the billing contract and the plan configuration"
    )]
    OurFault { code: String },
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
    /// A value we construct ourselves failed its own validation: a bug.
    #[error("internal invariant broken: {0}")]
    Internal(String),
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
