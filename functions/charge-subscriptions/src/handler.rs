//! The scheduled event → as-of time → sweep → JSON summary.

use std::time::{Duration, Instant, SystemTime};

use billing::{Billing, Summary, SweepOptions};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::continuation::Continuer;
use crate::event::{Expected, InvalidEvent, SweepEvent};

#[derive(Debug)]
pub(crate) struct State {
    billing: Billing,
    concurrency: usize,
    deadline_margin: Duration,
    continuer: Continuer,
    expected: Expected,
    /// The daily settlement check's schedule rule (`SETTLEMENT_RULE_ARN`), if configured.
    settlement_rule: Option<String>,
}

impl State {
    /// Opens the DynamoDB and Toss connections before the first event (see `Billing::warm_up`).
    pub(crate) async fn warm_up(&self) {
        self.billing.warm_up().await;
    }

    pub(crate) fn billing(&self) -> &Billing {
        &self.billing
    }

    pub(crate) fn settlement_rule(&self) -> Option<&str> {
        self.settlement_rule.as_deref()
    }
}

impl State {
    pub(crate) fn new(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        lambda: aws_sdk_lambda::Client,
        sealer: Option<store::Sealer>,
    ) -> Result<Self, lambda_runtime::Error> {
        let toss = toss::Client::new(config.common.toss)?;
        let mut store = store::Store::new(dynamodb, config.common.table_name);
        if let Some(sealer) = sealer {
            store = store.with_sealer(sealer);
        }
        Ok(Self {
            billing: Billing::new(toss, store, config.common.settings),
            concurrency: config.concurrency,
            deadline_margin: config.deadline_margin,
            continuer: Continuer::new(lambda),
            expected: Expected {
                rule_arn: config.rule_arn,
                max_continuations: config.max_continuations,
            },
            settlement_rule: config.settlement_rule_arn,
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
    /// Whether handing the rest over failed (it may still have been queued; see continuation.rs).
    /// The run still succeeds, so that Lambda does not retry it into a second chain.
    pub handover_failed: bool,
}

/// Why a run failed; `error_type` is stable so alarms can match on it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SweepError {
    /// Not this stack's schedule nor a continuation of it: refused before any work.
    #[error("refused: {0}")]
    InvalidEvent(#[from] InvalidEvent),
    #[error(transparent)]
    Billing(#[from] billing::Error),
}

impl From<SweepError> for Diagnostic {
    fn from(e: SweepError) -> Self {
        let error_type = match &e {
            SweepError::InvalidEvent(_) => "InvalidEvent",
            SweepError::Billing(billing::Error::OurFault { .. }) => "TossRefusedOurRequest",
            SweepError::Billing(billing::Error::ManyCustomersRefused { .. }) => {
                "ManyCustomersRefused"
            }
            SweepError::Billing(billing::Error::TossUnavailable(_)) => "TossUnavailable",
            SweepError::Billing(billing::Error::Store(_)) => "TableUnavailable",
            SweepError::Billing(billing::Error::InvalidAsOf { .. }) => "InvalidAsOf",
            SweepError::Billing(billing::Error::Internal(_)) => "Internal",
            SweepError::Billing(billing::Error::SweepIncomplete { .. }) => "SweepIncomplete",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

pub(crate) async fn handle(
    state: &State,
    event: LambdaEvent<serde_json::Value>,
) -> Result<Report, SweepError> {
    let LambdaEvent { payload, context } = event;
    let sweep_event = SweepEvent::parse(payload, &state.expected)
        .inspect_err(|e| warn!(error = %e, "refused an event that is not this stack's schedule"))?;
    let as_of = billing::as_of_from_event(
        sweep_event.time(),
        state.billing.toss().key_mode(),
        chrono::Utc::now(),
    )?;
    let stop_claiming_at = stop_claiming_at(context.deadline(), state.deadline_margin);
    let options = SweepOptions {
        as_of,
        concurrency: state.concurrency,
        stop_claiming_at,
        run_id: format!("sweep-{}", context.request_id),
        page_size: 100,
    };
    // A run that finished with some subscriptions unprocessed (a malformed item, say) still
    // hands the rest over before it reports its failure: one bad item must not cut a large
    // sweep down to Lambda's two retries.
    let (summary, incomplete) = match state.billing.sweep(&options).await {
        Ok(summary) => (summary, false),
        Err(billing::Error::SweepIncomplete { summary }) => (*summary, true),
        Err(e) => {
            error!(error = %e, "sweep failed");
            return Err(e.into());
        }
    };
    let position = sweep_event.continuation();
    let max = state.expected.max_continuations;
    let mut handover = Handover::NotNeeded;
    if summary.stopped_early {
        handover = match sweep_event.next(max) {
            // By name, not by the invoked ARN: the IAM policy allows exactly the unqualified
            // function, and a qualified ARN (`:$LATEST`, an alias) would be refused.
            Some(next) => {
                hand_over(&state.continuer, &context.env_config.function_name, &next).await
            }
            None => {
                warn!(
                    continuation = position,
                    max,
                    "deadline near and SWEEP_MAX_CONTINUATIONS reached: the rest waits for the next schedule"
                );
                Handover::NotNeeded
            }
        };
    }
    if incomplete {
        error!(
            ?summary,
            continued = handover == Handover::Sent,
            "sweep finished with errors"
        );
        return Err(billing::Error::SweepIncomplete {
            summary: Box::new(summary),
        }
        .into());
    }
    Ok(Report {
        summary,
        continuation: position,
        continued: handover == Handover::Sent,
        handover_failed: handover == Handover::Failed,
    })
}

/// The run's metrics (billing::metrics): a completed run's summary and the heartbeat; a run
/// that finished with some subscriptions unprocessed still reports what it charged.
pub(crate) fn record_metrics(result: &Result<Report, SweepError>, elapsed: Duration) {
    match result {
        Ok(report) => billing::metrics::sweep(&report.summary, elapsed, true),
        Err(SweepError::Billing(billing::Error::SweepIncomplete { summary })) => {
            billing::metrics::sweep(summary, elapsed, false)
        }
        Err(_) => billing::metrics::sweep_failed(elapsed),
    }
}

/// What became of the rest of a run cut short by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handover {
    NotNeeded,
    Sent,
    /// The invoke failed, and may or may not have been queued. Never turned into a failed run
    /// (Lambda would retry it and hand over again: two chains); the rest waits for the next
    /// schedule unless the link was queued after all.
    Failed,
}

async fn hand_over(
    continuer: &Continuer,
    function: &str,
    next: &aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value>,
) -> Handover {
    match continuer.invoke(function, next).await {
        Ok(()) => {
            info!(
                continuation = next.detail["continuation"].as_u64(),
                "deadline near: the rest of this sweep continues in a new invocation"
            );
            Handover::Sent
        }
        Err(e) => {
            error!(
                error = %billing::cause_chain(&e),
                "could not hand the rest of the sweep over (it may still have been queued); not \
                 retried, so that no second chain starts: what is left waits for the next schedule"
            );
            Handover::Failed
        }
    }
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
        let event: aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value> =
            serde_json::from_str(include_str!(
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
            code: Some(toss::ErrorCode::UnauthorizedKey),
        })
        .into();
        assert_eq!(d.error_type, "TossRefusedOurRequest");
        assert!(d.error_message.contains("UNAUTHORIZED_KEY"));
    }

    /// A loopback listener that counts connections and answers every request with `answer`:
    /// the DynamoDB, Toss and Lambda endpoints of a test, to prove which of them were reached.
    struct Endpoint {
        url: String,
        connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Endpoint {
        fn start(answer: &'static str) -> Self {
            use std::io::{Read, Write};
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = connections.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut buf = [0u8; 65536];
                    let _ = stream.read(&mut buf);
                    let _ = stream.write_all(answer.as_bytes());
                }
            });
            Self { url, connections }
        }

        fn connections(&self) -> usize {
            self.connections.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    const LAMBDA_FAILS: &str = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\nx-amzn-errortype: ServiceException\r\ncontent-length: 40\r\nconnection: close\r\n\r\n{\"Type\":\"Service\",\"message\":\"boom!!!\"}";

    fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::Config::builder()
                .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
                .region(aws_sdk_lambda::config::Region::new("ap-northeast-2"))
                .endpoint_url(endpoint)
                .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .build(),
        )
    }

    fn state(endpoint: &str) -> State {
        let lookup = |name: &str| match name {
            "TOSS_SECRET_KEY" => Some("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R".to_owned()),
            "TOSS_API_BASE" => Some(endpoint.to_owned()),
            "TABLE_NAME" => Some("subscriptions".to_owned()),
            "SWEEP_RULE_ARN" => Some(RULE.to_owned()),
            "SWEEP_MAX_CONTINUATIONS" => Some("3".to_owned()),
            _ => None,
        };
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("ap-northeast-2"))
                .endpoint_url(endpoint)
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .build(),
        );
        State::new(
            Config::from_lookup(lookup).unwrap(),
            dynamodb,
            lambda_client(endpoint),
            None,
        )
        .unwrap()
    }

    const RULE: &str = "arn:aws:events:ap-northeast-2:123456789012:rule/saju-billing-ChargeSubscriptionsFunctionSweep-1A2B3C4D5E6F";

    fn sample() -> serde_json::Value {
        serde_json::from_str(include_str!(
            "../../../events/charge-subscriptions.scheduled.json"
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn the_handler_refuses_every_event_that_is_not_its_schedule_before_any_read_or_toss_call()
    {
        // GIVEN a sweep whose table, Toss and Lambda endpoints all count connections
        let endpoint = Endpoint::start(LAMBDA_FAILS);
        let state = state(&endpoint.url);
        let mut cases = Vec::new();
        for (field, value) in [
            ("source", serde_json::json!("my.app")),
            ("detail-type", serde_json::json!("Object Created")),
            (
                "resources",
                serde_json::json!(["arn:aws:events:ap-northeast-2:123456789012:rule/other"]),
            ),
            ("time", serde_json::Value::Null),
            ("detail", serde_json::json!({"continuation": 4})),
            ("detail", serde_json::json!({"continuation": "1"})),
            (
                "detail",
                serde_json::json!({"as_of": "2030-01-01T00:00:00Z"}),
            ),
        ] {
            let mut event = sample();
            event[field] = value;
            cases.push((field.to_string(), event));
        }
        cases.push(("an empty object".into(), serde_json::json!({})));
        cases.push(("a string".into(), serde_json::json!("run the sweep")));

        for (case, payload) in cases {
            // WHEN it is invoked with an event that is not its schedule
            let refusal = handle(
                &state,
                LambdaEvent::new(payload, lambda_runtime::Context::default()),
            )
            .await
            .unwrap_err();

            // THEN it is refused as InvalidEvent
            let diagnostic = Diagnostic::from(refusal);
            assert_eq!(
                diagnostic.error_type, "InvalidEvent",
                "{case}: {}",
                diagnostic.error_message
            );
        }
        // AND nothing was read, claimed or sent to Toss
        assert_eq!(endpoint.connections(), 0, "an endpoint was reached");
    }

    #[tokio::test]
    async fn a_failed_handover_is_sent_once_and_does_not_fail_the_run() {
        // GIVEN Lambda's Invoke API answering a retryable 500: the link may or may not be queued
        let lambda = Endpoint::start(LAMBDA_FAILS);
        let continuer = Continuer::new(lambda_client(&lambda.url));
        let first = crate::event::SweepEvent::parse(
            sample(),
            &Expected {
                rule_arn: RULE.into(),
                max_continuations: 3,
            },
        )
        .unwrap();

        // WHEN the run hands its rest over
        let handover = hand_over(&continuer, "charge-subscriptions", &first.next(3).unwrap()).await;

        // THEN it is reported, not raised (a failed run would be retried into a second chain),
        // AND Invoke was called exactly once (the SDK's retries would queue the link again)
        assert_eq!(handover, Handover::Failed);
        assert_eq!(lambda.connections(), 1);
    }
}
