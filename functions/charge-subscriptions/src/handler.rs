//! The scheduled event → as-of time → sweep → JSON summary.

use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use billing::{Billing, Summary, SweepOptions};
use lambda_runtime::{Diagnostic, LambdaEvent};
use tracing::error;

use crate::config::Config;

#[derive(Debug)]
pub(crate) struct State {
    billing: Billing,
    concurrency: usize,
    deadline_margin: Duration,
}

impl State {
    pub(crate) fn new(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Result<Self, lambda_runtime::Error> {
        let toss = toss::Client::new(config.common.toss)?;
        let store = store::Store::new(dynamodb, config.common.table_name);
        Ok(Self {
            billing: Billing::new(toss, store, config.common.settings),
            concurrency: config.concurrency,
            deadline_margin: config.deadline_margin,
        })
    }
}

/// Why a run failed; `error_type` is stable so alarms can match on it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SweepError {
    #[error("the event has no time field; the classic EventBridge schedule always sends one")]
    NoEventTime,
    #[error(transparent)]
    Billing(#[from] billing::Error),
}

impl From<SweepError> for Diagnostic {
    fn from(e: SweepError) -> Self {
        let error_type = match &e {
            SweepError::NoEventTime => "InvalidEvent",
            SweepError::Billing(billing::Error::OurFault { .. }) => "TossRefusedOurRequest",
            SweepError::Billing(billing::Error::TossUnavailable(_)) => "TossUnavailable",
            SweepError::Billing(billing::Error::Store(_)) => "TableUnavailable",
            SweepError::Billing(billing::Error::InvalidAsOf(_)) => "InvalidAsOf",
            SweepError::Billing(billing::Error::Internal(_)) => "Internal",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

pub(crate) async fn handle(
    state: &State,
    event: LambdaEvent<EventBridgeEvent<serde_json::Value>>,
) -> Result<Summary, SweepError> {
    let time = event.payload.time.ok_or(SweepError::NoEventTime)?;
    let as_of =
        billing::as_of_from_event(time, state.billing.toss().key_mode(), chrono::Utc::now())?;
    let remaining = event
        .context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let options = SweepOptions {
        as_of,
        concurrency: state.concurrency,
        stop_claiming_at: Some(Instant::now() + remaining.saturating_sub(state.deadline_margin)),
        run_id: format!("sweep-{}", event.context.request_id),
        page_size: 100,
    };
    let summary = state
        .billing
        .sweep(&options)
        .await
        .inspect_err(|e| error!(error = %e, "sweep failed"))?;
    if summary.errors > 0 {
        // Per-subscription failures (the table unreachable, say) are retried by running the
        // whole sweep again: every step is idempotent. Report them as a failed run.
        error!(?summary, "sweep finished with errors");
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_scheduled_event_carries_the_time_the_sweep_charges_up_to() {
        let event: EventBridgeEvent<serde_json::Value> = serde_json::from_str(include_str!(
            "../../../events/charge-subscriptions.scheduled.json"
        ))
        .unwrap();
        assert_eq!(event.detail_type, "Scheduled Event");
        assert_eq!(
            event.time.unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
    }

    #[test]
    fn our_faults_surface_with_a_stable_error_type_for_alarms() {
        let d: Diagnostic = SweepError::Billing(billing::Error::OurFault {
            code: "UNAUTHORIZED_KEY".into(),
        })
        .into();
        assert_eq!(d.error_type, "TossRefusedOurRequest");
        assert!(d.error_message.contains("UNAUTHORIZED_KEY"));
    }
}
