//! The daily settlement check's edge: its own schedule rule (`SETTLEMENT_RULE_ARN`) invokes this
//! function; the event is refused unless it is exactly that rule's "Scheduled Event" (no
//! continuation, an empty `detail`). The run checks the Seoul calendar day before the event's
//! time (`billing::Billing::settle_day`).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use billing::SettlementReport;
use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use tracing::warn;

use crate::capability::Settlement;
use crate::event::{DETAIL_TYPE, SOURCE};
use crate::handler::State;

/// Whether an invocation names the settlement rule (and so is not a sweep).
pub(crate) fn is_settlement(payload: &Value, rule_arn: Option<&str>) -> bool {
    let Some(rule) = rule_arn else { return false };
    matches!(payload.get("resources").and_then(Value::as_array), Some(list) if list.iter().any(|r| r.as_str() == Some(rule)))
}

/// Why an event does not start a settlement check. Never echoes the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidSettlementEvent {
    #[error("the payload is not an EventBridge event")]
    NotEventBridge,
    #[error("source must be \"aws.events\" and detail-type \"Scheduled Event\"")]
    NotScheduled,
    #[error("resources must name exactly this stack's settlement rule (SETTLEMENT_RULE_ARN)")]
    Rule,
    #[error("the event has no time field")]
    NoTime,
    #[error("detail must be an empty object")]
    Detail,
}

/// The event's time, if the event is the settlement rule's schedule.
pub(crate) fn parse(
    payload: Value,
    rule_arn: &str,
) -> Result<DateTime<Utc>, InvalidSettlementEvent> {
    let event: EventBridgeEvent<Value> =
        serde_json::from_value(payload).map_err(|_| InvalidSettlementEvent::NotEventBridge)?;
    if event.source != SOURCE || event.detail_type != DETAIL_TYPE {
        return Err(InvalidSettlementEvent::NotScheduled);
    }
    match event.resources.as_deref() {
        Some([rule]) if rule == rule_arn => {}
        _ => return Err(InvalidSettlementEvent::Rule),
    }
    if !matches!(&event.detail, Value::Object(map) if map.is_empty()) {
        return Err(InvalidSettlementEvent::Detail);
    }
    event.time.ok_or(InvalidSettlementEvent::NoTime)
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SettlementError {
    #[error("refused: {0}")]
    InvalidEvent(#[from] InvalidSettlementEvent),
    #[error(transparent)]
    Billing(#[from] billing::Error),
}

impl From<SettlementError> for Diagnostic {
    fn from(e: SettlementError) -> Self {
        let error_type = match &e {
            SettlementError::InvalidEvent(_) => "InvalidEvent",
            SettlementError::Billing(billing::Error::OurFault { .. }) => "TossRefusedOurRequest",
            SettlementError::Billing(billing::Error::TossUnavailable(_)) => "TossUnavailable",
            SettlementError::Billing(billing::Error::Store(_)) => "TableUnavailable",
            SettlementError::Billing(billing::Error::InvalidAsOf { .. }) => "InvalidAsOf",
            SettlementError::Billing(_) => "Internal",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: billing::cause_chain(&e),
        }
    }
}

pub(crate) async fn handle<B: Settlement>(
    state: &State<B>,
    event: LambdaEvent<Value>,
) -> Result<SettlementReport, SettlementError> {
    let LambdaEvent { payload, context } = event;
    let rule = state.settlement_rule().unwrap_or_default();
    let time = parse(payload, rule).inspect_err(
        |e| warn!(error = %e, "refused an event that is not this stack's settlement schedule"),
    )?;
    let billing = state.billing();
    let at = billing::as_of_from_event(time, billing.toss().key_mode(), Utc::now())?;
    let day = billing::previous_kst_day(at);
    let run_id = format!("settle-{}", context.request_id);
    let report = billing.settle_day(day, &run_id, at.max(Utc::now())).await?;
    billing::metrics::settlement(&report);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::fake::{self, Fake};
    use crate::handler::testing;
    use serde_json::json;

    const RULE: &str = "arn:aws:events:ap-northeast-2:123456789012:rule/stack-settlement";

    fn event(rule: &str, detail: Value) -> Value {
        json!({
            "version": "0", "id": "3f7a3c1e-9f77-4a8b-9d59-5f5c2f2f6a10",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-12-01T18:00:00Z",
            "region": "ap-northeast-2", "resources": [rule], "detail": detail
        })
    }

    #[test]
    fn only_the_settlement_rule_schedule_starts_a_check() {
        assert_eq!(
            parse(event(RULE, json!({})), RULE).unwrap().to_rfc3339(),
            "2026-12-01T18:00:00+00:00"
        );
        assert_eq!(
            parse(
                event(
                    "arn:aws:events:ap-northeast-2:123456789012:rule/other",
                    json!({})
                ),
                RULE
            ),
            Err(InvalidSettlementEvent::Rule)
        );
        assert_eq!(
            parse(event(RULE, json!({"continuation": 1})), RULE),
            Err(InvalidSettlementEvent::Detail)
        );
        let mut manual = event(RULE, json!({}));
        manual["source"] = json!("console.test");
        assert_eq!(
            parse(manual, RULE),
            Err(InvalidSettlementEvent::NotScheduled)
        );
        assert_eq!(
            parse(json!([1, 2]), RULE),
            Err(InvalidSettlementEvent::NotEventBridge)
        );
    }

    #[test]
    fn the_sample_settlement_event_starts_a_check_of_the_previous_seoul_day() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../../events/charge-subscriptions.settlement.json"
        ))
        .unwrap();
        let rule = "arn:aws:events:ap-northeast-2:123456789012:rule/saju-billing-settlement";

        let time = parse(sample.clone(), rule).unwrap();

        assert!(is_settlement(&sample, Some(rule)));
        assert_eq!(
            billing::previous_kst_day(time).to_string(),
            "2026-12-01",
            "03:00 KST on Dec 2 checks Dec 1"
        );
    }

    #[test]
    fn an_event_is_a_settlement_only_when_a_settlement_rule_is_configured_and_named() {
        assert!(is_settlement(&event(RULE, json!({})), Some(RULE)));
        assert!(!is_settlement(&event(RULE, json!({})), None));
        assert!(!is_settlement(
            &event(
                "arn:aws:events:ap-northeast-2:123456789012:rule/stack-sweep",
                json!({})
            ),
            Some(RULE)
        ));
    }

    fn sample() -> Value {
        serde_json::from_str(include_str!(
            "../../../events/charge-subscriptions.settlement.json"
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn a_settlement_check_answers_what_billing_found_for_the_previous_seoul_day() {
        // GIVEN a check that found one approval Toss has and the ledger matches
        let fake = Fake::new(false);
        let found = SettlementReport {
            day: "2026-12-01".into(),
            toss_approvals: 1,
            ledger_paid: 1,
            matched: 1,
            ..SettlementReport::default()
        };
        fake.settle_day.answer(Ok(found.clone()));
        let state = testing::state(fake, "http://127.0.0.1:9");

        // WHEN the settlement rule invokes the function (03:00 KST on Dec 2)
        let report = handle(&state, testing::event(sample())).await.unwrap();

        // THEN the result is the report, for Dec 1, under the invocation's request id
        assert_eq!(report, found);
        assert_eq!(
            state.billing().calls(),
            ["settle_day 2026-12-01 settle-req-1"]
        );
    }

    #[tokio::test]
    async fn every_billing_error_fails_the_settlement_check_with_its_stable_error_type() {
        for (error, [_, settlement, _]) in fake::every_error() {
            let fake = Fake::new(false);
            let shown = billing::cause_chain(&error);
            fake.settle_day.answer(Err(error));
            let state = testing::state(fake, "http://127.0.0.1:9");

            let failure = handle(&state, testing::event(sample())).await.unwrap_err();

            let diagnostic = Diagnostic::from(failure);
            assert_eq!(diagnostic.error_type, settlement, "{shown}");
            assert_eq!(diagnostic.error_message, shown);
        }
    }

    #[tokio::test]
    async fn an_event_that_is_not_the_settlement_schedule_fails_as_invalid_event_without_a_check() {
        let mut manual = sample();
        manual["detail"] = json!({"day": "2026-11-30"});
        let state = testing::state(Fake::new(false), "http://127.0.0.1:9");

        let failure = handle(&state, testing::event(manual)).await.unwrap_err();

        assert_eq!(Diagnostic::from(failure).error_type, "InvalidEvent");
        assert!(state.billing().calls().is_empty());
    }
}
