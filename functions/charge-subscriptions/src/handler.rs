//! The scheduled event → as-of time → sweep → JSON summary.

use std::time::{Duration, Instant, SystemTime};

use billing::{Billing, Summary, SweepOptions};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use tracing::{error, info, warn};

use crate::capability::Sweep;
use crate::config::Config;
use crate::continuation::Continuer;
use crate::event::{Expected, InvalidEvent, SweepEvent};

/// `B` is what the handlers call (`billing::Billing`; a fake in the in-file tests).
#[derive(Debug)]
pub(crate) struct State<B = Billing> {
    billing: B,
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
}

impl<B> State<B> {
    pub(crate) fn billing(&self) -> &B {
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
            error_message: billing::cause_chain(&e),
        }
    }
}

pub(crate) async fn handle<B: Sweep>(
    state: &State<B>,
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

/// States and contexts for the handlers' in-file tests.
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;

    /// The sweep rule the sample scheduled event names.
    pub(crate) const RULE: &str = "arn:aws:events:ap-northeast-2:123456789012:rule/saju-billing-ChargeSubscriptionsFunctionSweep-1A2B3C4D5E6F";
    /// The settlement rule the sample settlement event names.
    pub(crate) const SETTLEMENT_RULE: &str =
        "arn:aws:events:ap-northeast-2:123456789012:rule/saju-billing-settlement";

    pub(crate) fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
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

    /// A state whose handlers call `billing` (a fake), allowing 3 continuations sent to
    /// Lambda at `lambda_endpoint`.
    pub(crate) fn state<B>(billing: B, lambda_endpoint: &str) -> State<B> {
        let lookup = |name: &str| match name {
            "TOSS_SECRET_KEY" => Some("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R".to_owned()),
            "TABLE_NAME" => Some("subscriptions".to_owned()),
            "SWEEP_RULE_ARN" => Some(RULE.to_owned()),
            "SETTLEMENT_RULE_ARN" => Some(SETTLEMENT_RULE.to_owned()),
            "SWEEP_MAX_CONTINUATIONS" => Some("3".to_owned()),
            _ => None,
        };
        let config = Config::from_lookup(lookup).unwrap();
        State {
            billing,
            concurrency: config.concurrency,
            deadline_margin: config.deadline_margin,
            continuer: Continuer::new(lambda_client(lambda_endpoint)),
            expected: Expected {
                rule_arn: config.rule_arn,
                max_continuations: config.max_continuations,
            },
            settlement_rule: config.settlement_rule_arn,
        }
    }

    /// An invocation's context as Lambda gives it (no real deadline: see `stop_claiming_at`).
    pub(crate) fn event(payload: serde_json::Value) -> LambdaEvent<serde_json::Value> {
        let mut context = lambda_runtime::Context::default();
        context.request_id = "req-1".into();
        context.env_config = Arc::new(lambda_runtime::Config {
            function_name: "charge-subscriptions".into(),
            ..lambda_runtime::Config::default()
        });
        LambdaEvent::new(payload, context)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{self, lambda_client};
    use super::*;
    use crate::capability::fake::{self, Fake};

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

    const LAMBDA_ACCEPTS: &str =
        "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    /// No test below reaches Lambda unless it starts an endpoint.
    const NO_LAMBDA: &str = "http://127.0.0.1:9";

    fn summary(charged: u64, stopped_early: bool) -> Summary {
        Summary {
            as_of: "2026-12-01T00:00:00Z".into(),
            due: 5,
            charged,
            total_charged_krw: charged * 3900,
            stopped_early,
            ..Summary::default()
        }
    }

    fn continuation(n: u32) -> serde_json::Value {
        let mut event = sample();
        event["detail"] = serde_json::json!({ "continuation": n });
        event
    }

    #[tokio::test]
    async fn a_completed_sweep_reports_its_summary_as_the_runs_result() {
        // GIVEN a sweep that charged 3 of 5 due subscriptions
        let fake = Fake::new(false);
        fake.sweep.answer(Ok(summary(3, false)));
        let state = testing::state(fake, NO_LAMBDA);

        // WHEN the schedule invokes the function
        let report = handle(&state, testing::event(sample())).await.unwrap();

        // THEN the result is the summary, flattened, with its place in the chain
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["charged"], 3);
        assert_eq!(json["total_charged_krw"], 11700);
        assert_eq!(json["continuation"], 0);
        assert_eq!(json["continued"], false);
        assert_eq!(json["handover_failed"], false);
        // AND the sweep ran as of the event's time, under the invocation's request id
        assert_eq!(
            state.billing().calls(),
            ["sweep as_of=2026-12-01T00:00:00+00:00 concurrency=16 run_id=sweep-req-1"]
        );
    }

    #[tokio::test]
    async fn a_sweep_stopped_by_its_deadline_hands_the_rest_to_one_next_link_and_says_so() {
        let lambda = Endpoint::start(LAMBDA_ACCEPTS);
        let fake = Fake::new(false);
        fake.sweep.answer(Ok(summary(1, true)));
        let state = testing::state(fake, &lambda.url);

        let report = handle(&state, testing::event(continuation(1)))
            .await
            .unwrap();

        assert_eq!(report.continuation, 1);
        assert!(report.continued);
        assert!(!report.handover_failed);
        assert_eq!(lambda.connections(), 1);
    }

    #[tokio::test]
    async fn a_sweep_stopped_at_the_last_allowed_link_leaves_the_rest_to_the_next_schedule() {
        let lambda = Endpoint::start(LAMBDA_ACCEPTS);
        let fake = Fake::new(false);
        fake.sweep.answer(Ok(summary(1, true)));
        let state = testing::state(fake, &lambda.url);

        let report = handle(&state, testing::event(continuation(3)))
            .await
            .unwrap();

        assert_eq!(report.continuation, 3);
        assert!(!report.continued);
        assert!(!report.handover_failed);
        assert_eq!(lambda.connections(), 0, "no fourth link");
    }

    #[tokio::test]
    async fn a_handover_lambda_refused_is_reported_in_the_result_and_the_run_still_succeeds() {
        let lambda = Endpoint::start(LAMBDA_FAILS);
        let fake = Fake::new(false);
        fake.sweep.answer(Ok(summary(1, true)));
        let state = testing::state(fake, &lambda.url);

        let report = handle(&state, testing::event(sample())).await.unwrap();

        assert!(!report.continued);
        assert!(report.handover_failed);
    }

    #[tokio::test]
    async fn an_incomplete_sweep_hands_its_rest_over_first_and_then_fails_as_sweep_incomplete() {
        let lambda = Endpoint::start(LAMBDA_ACCEPTS);
        let fake = Fake::new(false);
        let mut done = summary(2, true);
        done.errors = 1;
        fake.sweep.answer(Err(billing::Error::SweepIncomplete {
            summary: Box::new(done),
        }));
        let state = testing::state(fake, &lambda.url);

        let result = handle(&state, testing::event(sample())).await;

        assert_eq!(lambda.connections(), 1, "handed over before failing");
        let Err(SweepError::Billing(billing::Error::SweepIncomplete { summary })) = &result else {
            panic!("{result:?}");
        };
        assert_eq!(
            (summary.charged, summary.errors),
            (2, 1),
            "what it did is kept"
        );
        let diagnostic = Diagnostic::from(result.unwrap_err());
        assert_eq!(diagnostic.error_type, "SweepIncomplete");
        assert!(
            diagnostic.error_message.contains("1 errors"),
            "{}",
            diagnostic.error_message
        );
    }

    #[tokio::test]
    async fn every_billing_error_fails_the_sweep_with_its_stable_error_type_and_hands_nothing_over()
    {
        for (error, [sweep, _, _]) in fake::every_error() {
            let lambda = Endpoint::start(LAMBDA_ACCEPTS);
            let fake = Fake::new(false);
            let shown = billing::cause_chain(&error);
            fake.sweep.answer(Err(error));
            let state = testing::state(fake, &lambda.url);

            let failure = handle(&state, testing::event(sample())).await.unwrap_err();

            let diagnostic = Diagnostic::from(failure);
            assert_eq!(diagnostic.error_type, sweep, "{shown}");
            assert_eq!(diagnostic.error_message, shown);
            assert_eq!(lambda.connections(), 0, "{shown}");
        }
    }

    #[tokio::test]
    async fn a_live_key_refuses_a_future_event_time_before_the_sweep_runs_and_a_test_key_takes_it_as_its_clock()
     {
        let mut future = sample();
        future["time"] = serde_json::json!("2099-01-01T00:00:00Z");

        let live = testing::state(Fake::new(true), NO_LAMBDA);
        let refused = handle(&live, testing::event(future.clone()))
            .await
            .unwrap_err();
        assert_eq!(Diagnostic::from(refused).error_type, "InvalidAsOf");
        assert!(live.billing().calls().is_empty());

        let test = testing::state(Fake::new(false), NO_LAMBDA);
        test.billing().sweep.answer(Ok(summary(0, false)));
        handle(&test, testing::event(future)).await.unwrap();
        assert_eq!(
            test.billing().calls(),
            ["sweep as_of=2099-01-01T00:00:00+00:00 concurrency=16 run_id=sweep-req-1"]
        );
    }
}
