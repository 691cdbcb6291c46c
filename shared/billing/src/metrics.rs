//! What the functions report to CloudWatch (product §12), through the `metrics` facade: the
//! functions install a CloudWatch Embedded Metric Format recorder and flush it after every
//! invocation; without one (tests, tools) every call here is a no-op.
//!
//! Dimensions: the recorder adds `Service` (the function); `Outcome` splits charges and
//! registrations. Nothing is ever dimensioned by customer, subscription or order: a dimension
//! value is a new metric, and ids do not belong in CloudWatch. The alarms in template.yaml
//! name these metrics; the README's runbook says what each means.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

use crate::summary::Summary;

/// Charges settled by a sweep, by `Outcome` (`charged`, `declined`, `unknown`, `held`).
pub const CHARGES: &str = "Charges";
/// KRW charged by a sweep (integer won).
pub const CHARGED_KRW: &str = "ChargedKrw";
/// Attempts a sweep left `UNKNOWN`.
pub const UNKNOWN_ATTEMPTS: &str = "UnknownAttempts";
/// Age of the oldest of them (seconds; 0 when there is none).
pub const OLDEST_UNKNOWN_AGE: &str = "OldestUnknownAttemptAgeSeconds";
/// How long a sweep invocation ran (seconds).
pub const SWEEP_DURATION: &str = "SweepDurationSeconds";
/// 1 per sweep invocation that completed without error: the heartbeat the
/// "no completed sweep in 26 hours" alarm watches.
pub const SWEEP_COMPLETED: &str = "SweepCompleted";
/// Registration redirects by `Outcome` (`subscribed`, `card_replaced`, `failed`, `pending`).
pub const REGISTRATIONS: &str = "Registrations";
/// Credits consumed through the app's API.
pub const CREDITS_CONSUMED: &str = "CreditsConsumed";
/// Payments the daily settlement check compared (Toss's approvals plus our `DONE` entries).
pub const SETTLEMENT_CHECKED: &str = "SettlementChecked";
/// Disagreements between Toss and the ledger the check could not repair.
pub const SETTLEMENT_MISMATCHES: &str = "SettlementMismatches";
/// Disagreements the check repaired (an `UNKNOWN` attempt Toss has `DONE`, settled).
pub const SETTLEMENT_REPAIRED: &str = "SettlementRepaired";

/// Toss webhook deliveries, by `EventType` and `Outcome` (a `Convergence` name, `duplicate`,
/// `in_progress`, `invalid` or `error`).
pub const TOSS_WEBHOOKS: &str = "TossWebhooks";

/// The dimension splitting charges and registrations.
pub const OUTCOME: &str = "Outcome";
/// The dimension splitting webhooks: Toss's event type (`OTHER` for types not acted on).
pub const EVENT_TYPE: &str = "EventType";

/// Units for every metric above; call once after installing the recorder.
pub fn describe() {
    for name in [
        CHARGES,
        UNKNOWN_ATTEMPTS,
        SWEEP_COMPLETED,
        REGISTRATIONS,
        CREDITS_CONSUMED,
        SETTLEMENT_CHECKED,
        SETTLEMENT_MISMATCHES,
        SETTLEMENT_REPAIRED,
        TOSS_WEBHOOKS,
    ] {
        describe_counter!(name, Unit::Count, "");
    }
    describe_histogram!(OLDEST_UNKNOWN_AGE, Unit::Seconds, "");
    describe_histogram!(SWEEP_DURATION, Unit::Seconds, "");
}

/// One sweep invocation's figures, from its summary. Per-run values are histograms (one value
/// per run), so a warm container never re-sends the previous run's values.
pub fn sweep(summary: &Summary, duration: Duration, completed: bool) {
    for (outcome, n) in [
        ("charged", summary.charged),
        ("declined", summary.declined),
        ("unknown", summary.unknown_outcome),
        ("held", summary.held),
    ] {
        counter!(CHARGES, OUTCOME => outcome).increment(n);
    }
    counter!(CHARGED_KRW).increment(summary.total_charged_krw);
    counter!(UNKNOWN_ATTEMPTS).increment(summary.unknown_open);
    histogram!(OLDEST_UNKNOWN_AGE).record(summary.oldest_unknown_age_seconds as f64);
    histogram!(SWEEP_DURATION).record(duration.as_secs_f64());
    if completed {
        counter!(SWEEP_COMPLETED).increment(1);
    }
}

/// A sweep invocation that failed: its duration only (the failure itself is Lambda's `Errors`).
pub fn sweep_failed(duration: Duration) {
    histogram!(SWEEP_DURATION).record(duration.as_secs_f64());
}

/// One registration redirect's outcome.
pub fn registration(outcome: &crate::RegistrationOutcome) {
    let outcome = match outcome {
        crate::RegistrationOutcome::Subscribed { .. } => "subscribed",
        crate::RegistrationOutcome::CardReplaced { .. } => "card_replaced",
        crate::RegistrationOutcome::Failed { .. } => "failed",
        crate::RegistrationOutcome::Pending { .. } => "pending",
    };
    counter!(REGISTRATIONS, OUTCOME => outcome).increment(1);
}

/// Credits consumed through the app's API (one call per successful, non-replayed consumption).
pub fn credits_consumed(n: u64) {
    counter!(CREDITS_CONSUMED).increment(n);
}

/// A registration that failed on our side (the table or a bug; Toss's refusals are `failed`).
pub fn registration_error() {
    counter!(REGISTRATIONS, OUTCOME => "error").increment(1);
}

/// The recorder of a function: CloudWatch Embedded Metric Format documents in `namespace`,
/// every metric carrying the dimension `Service` = `service`. Installed once per process as
/// the global recorder; [`flush`] writes what was recorded since the last flush.
pub type Collector = metrics_cloudwatch_embedded::Collector;

/// Installs the process's recorder (once, in `main`).
pub fn install(
    namespace: &str,
    service: &'static str,
) -> Result<&'static Collector, Box<dyn std::error::Error + Send + Sync>> {
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace.to_owned())
        .with_dimension("Service", service)
        .init()?;
    describe();
    Ok(collector)
}

/// Writes the metrics recorded since the last flush to stdout, where Lambda hands them to
/// CloudWatch Logs, which extracts the metrics. A failed write is logged, never fatal.
pub fn flush(collector: &Collector) {
    if let Err(e) = collector.flush(std::io::stdout().lock()) {
        tracing::warn!(error = %e, "could not write the metrics");
    }
}

/// One settlement check's figures.
pub fn settlement(report: &crate::SettlementReport) {
    counter!(SETTLEMENT_CHECKED).increment(report.toss_approvals + report.ledger_paid);
    counter!(SETTLEMENT_REPAIRED).increment(report.repaired);
    counter!(SETTLEMENT_MISMATCHES).increment(report.mismatches.len() as u64);
}

/// One webhook delivery: its event type and what came of it.
pub fn webhook(event_type: &'static str, outcome: &'static str) {
    counter!(TOSS_WEBHOOKS, EVENT_TYPE => event_type, OUTCOME => outcome).increment(1);
}
