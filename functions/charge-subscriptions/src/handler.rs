//! The scheduled event → as-of time → sweep → JSON summary.

use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use billing::{Billing, Summary, SweepOptions};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::continuation::{self, Continuer};

#[derive(Debug)]
pub(crate) struct State {
    billing: Billing,
    concurrency: usize,
    deadline_margin: Duration,
    continuer: Continuer,
    max_continuations: u32,
}

impl State {
    /// Opens the DynamoDB and Toss connections before the first event (see `Billing::warm_up`).
    pub(crate) async fn warm_up(&self) {
        self.billing.warm_up().await;
    }
}

impl State {
    pub(crate) fn new(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        lambda: aws_sdk_lambda::Client,
    ) -> Result<Self, lambda_runtime::Error> {
        let toss = toss::Client::new(config.common.toss)?;
        let store = store::Store::new(dynamodb, config.common.table_name);
        Ok(Self {
            billing: Billing::new(toss, store, config.common.settings),
            concurrency: config.concurrency,
            deadline_margin: config.deadline_margin,
            continuer: Continuer::new(lambda),
            max_continuations: config.max_continuations,
        })
    }
}

/// The function's result: the sweep's summary, and where this run sits in a chain.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    #[serde(flatten)]
    pub summary: Summary,
    /// 0 for the scheduled run, n for its n-th continuation.
    pub continuation: u32,
    /// Whether this run handed the rest to a new invocation.
    pub continued: bool,
}

/// Why a run failed; `error_type` is stable so alarms can match on it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SweepError {
    #[error("the event has no time field; the classic EventBridge schedule always sends one")]
    NoEventTime,
    #[error(transparent)]
    Billing(#[from] billing::Error),
    /// The run stopped early and could not hand over; Lambda's retry of this event re-runs the
    /// sweep (idempotent), which continues the work.
    #[error(transparent)]
    Continuation(#[from] continuation::Error),
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
            SweepError::Billing(billing::Error::SweepIncomplete { .. }) => "SweepIncomplete",
            SweepError::Continuation(_) => "ContinuationFailed",
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
) -> Result<Report, SweepError> {
    let time = event.payload.time.ok_or(SweepError::NoEventTime)?;
    let as_of =
        billing::as_of_from_event(time, state.billing.toss().key_mode(), chrono::Utc::now())?;
    let stop_claiming_at = stop_claiming_at(event.context.deadline(), state.deadline_margin);
    let options = SweepOptions {
        as_of,
        concurrency: state.concurrency,
        stop_claiming_at,
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
    let position = continuation::number(&event.payload);
    let mut continued = false;
    if summary.stopped_early {
        match continuation::next(&event.payload, state.max_continuations) {
            Some(next) => {
                let function = if event.context.invoked_function_arn.is_empty() {
                    event.context.env_config.function_name.as_str()
                } else {
                    event.context.invoked_function_arn.as_str()
                };
                state.continuer.invoke(function, &next).await.inspect_err(
                    |e| error!(error = %e, cause = ?e, "could not hand the rest of the sweep over"),
                )?;
                info!(
                    continuation = position + 1,
                    "deadline near: the rest of this sweep continues in a new invocation"
                );
                continued = true;
            }
            None => warn!(
                continuation = position,
                max = state.max_continuations,
                "deadline near and SWEEP_MAX_CONTINUATIONS reached: the rest waits for the next schedule"
            ),
        }
    }
    Ok(Report {
        summary,
        continuation: position,
        continued,
    })
}

/// When to stop claiming: the invocation's deadline minus the margin. A deadline already in
/// the past at the start is not a real one (Lambda never sends it; local emulators send a
/// placeholder), so the run goes on without one rather than claiming nothing.
fn stop_claiming_at(deadline: SystemTime, margin: Duration) -> Option<Instant> {
    match deadline.duration_since(SystemTime::now()) {
        Ok(remaining) if !remaining.is_zero() => {
            if remaining <= margin {
                warn!(
                    remaining_ms = remaining.as_millis() as u64,
                    margin_ms = margin.as_millis() as u64,
                    "less time left than DEADLINE_MARGIN_SECONDS: nothing will be claimed; raise the function timeout"
                );
            }
            Some(Instant::now() + remaining.saturating_sub(margin))
        }
        _ => {
            warn!(
                "the runtime's deadline is already past (a local emulator?); running without one"
            );
            None
        }
    }
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
    fn a_real_deadline_leaves_the_margin_free_and_a_placeholder_deadline_is_ignored() {
        let margin = Duration::from_secs(90);
        let in_15_min = SystemTime::now() + Duration::from_secs(900);
        let stop = stop_claiming_at(in_15_min, margin).unwrap();
        let left = stop.duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(800) && left <= Duration::from_secs(810),
            "{left:?}"
        );
        // cargo lambda's emulator sends 600000 ms since the epoch.
        let placeholder = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(stop_claiming_at(placeholder, margin), None);
        // Less time than the margin: stop at once.
        let soon = stop_claiming_at(SystemTime::now() + Duration::from_secs(30), margin).unwrap();
        assert!(soon <= Instant::now());
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
