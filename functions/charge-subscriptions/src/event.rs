//! The edge of the sweep: the invocation's payload parsed into a [`SweepEvent`], or refused.
//!
//! Only two things may start a sweep: the stack's own schedule rule (an EventBridge "Scheduled
//! Event" naming that rule in `resources`) and this function's own continuation of such a run
//! (the same event with `detail.continuation` = 1…`SWEEP_MAX_CONTINUATIONS`). Anything else, a
//! test event from the console, another rule pointed at this function, a hand-made continuation
//! past the cap, is refused with `InvalidEvent` before a single read, claim or Toss call: every
//! accepted event can put up to `CHARGE_CONCURRENCY` charges in flight at Toss.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The only `source` a schedule delivers.
pub(crate) const SOURCE: &str = "aws.events";
/// The only `detail-type` a schedule delivers.
pub(crate) const DETAIL_TYPE: &str = "Scheduled Event";
/// The key of `detail` that marks a continuation (the only key `detail` may hold).
pub(crate) const CONTINUATION: &str = "continuation";

/// What the edge compares an event with (from the configuration).
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    /// ARN of the schedule rule of this stack (`SWEEP_RULE_ARN`).
    pub rule_arn: String,
    /// The highest continuation number allowed (`SWEEP_MAX_CONTINUATIONS`).
    pub max_continuations: u32,
}

/// A sweep event that passed the edge: the as-of time and the position in its chain.
#[derive(Debug, Clone)]
pub(crate) struct SweepEvent {
    time: DateTime<Utc>,
    continuation: u32,
    /// The event as delivered, the template of the next link of the chain.
    delivered: EventBridgeEvent<Value>,
}

/// Why an event is not one the sweep runs on. The messages name the rule, never echo the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidEvent {
    #[error("the payload is not an EventBridge event ({0})")]
    NotEventBridge(String),
    #[error("source must be \"aws.events\"")]
    Source,
    #[error("detail-type must be \"Scheduled Event\"")]
    DetailType,
    #[error("resources must name exactly this stack's schedule rule (SWEEP_RULE_ARN)")]
    Rule,
    #[error("the event has no time field; the classic EventBridge schedule always sends one")]
    NoTime,
    #[error("detail must be an object holding nothing but an optional \"continuation\"")]
    Detail,
    #[error("detail.continuation must be a whole number from 1 to {max} (SWEEP_MAX_CONTINUATIONS)")]
    Continuation { max: u32 },
}

impl SweepEvent {
    /// Parses an invocation's payload, refusing anything that is not this stack's schedule or a
    /// continuation of it within the cap.
    pub(crate) fn parse(payload: Value, expected: &Expected) -> Result<Self, InvalidEvent> {
        let delivered: EventBridgeEvent<Value> = serde_json::from_value(payload)
            .map_err(|e| InvalidEvent::NotEventBridge(category(&e)))?;
        if delivered.source != SOURCE {
            return Err(InvalidEvent::Source);
        }
        if delivered.detail_type != DETAIL_TYPE {
            return Err(InvalidEvent::DetailType);
        }
        match delivered.resources.as_deref() {
            Some([rule]) if *rule == expected.rule_arn => {}
            _ => return Err(InvalidEvent::Rule),
        }
        let time = delivered.time.ok_or(InvalidEvent::NoTime)?;
        let continuation = continuation(&delivered.detail, expected.max_continuations)?;
        Ok(Self {
            time,
            continuation,
            delivered,
        })
    }

    /// The as-of time of the run.
    pub(crate) fn time(&self) -> DateTime<Utc> {
        self.time
    }

    /// 0 for the scheduled run, n for its n-th continuation.
    pub(crate) fn continuation(&self) -> u32 {
        self.continuation
    }

    /// The event of the next link (same `time`, same rule, `continuation` + 1), or `None` when
    /// the chain has reached `max` links.
    pub(crate) fn next(&self, max: u32) -> Option<EventBridgeEvent<Value>> {
        let n = self.continuation.checked_add(1).filter(|n| *n <= max)?;
        let mut next = self.delivered.clone();
        let mut detail = serde_json::Map::new();
        detail.insert(CONTINUATION.into(), Value::from(n));
        next.detail = Value::Object(detail);
        Some(next)
    }
}

/// `detail` of a scheduled run is `{}`; of a continuation `{"continuation": n}`, 1 ≤ n ≤ max.
fn continuation(detail: &Value, max: u32) -> Result<u32, InvalidEvent> {
    let Value::Object(detail) = detail else {
        return Err(InvalidEvent::Detail);
    };
    if detail.keys().any(|key| key != CONTINUATION) {
        return Err(InvalidEvent::Detail);
    }
    match detail.get(CONTINUATION) {
        None => Ok(0),
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or(InvalidEvent::Continuation { max }),
    }
}

/// serde's complaint without the input it may quote.
fn category(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        return format!("missing field {field}");
    }
    match e.classify() {
        serde_json::error::Category::Data => "a field has the wrong type or value".into(),
        _ => "not a JSON object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULE: &str = "arn:aws:events:ap-northeast-2:123456789012:rule/saju-billing-ChargeSubscriptionsFunctionSweep-1A2B3C4D5E6F";

    fn expected() -> Expected {
        Expected {
            rule_arn: RULE.into(),
            max_continuations: 3,
        }
    }

    fn sample() -> Value {
        serde_json::from_str(include_str!(
            "../../../events/charge-subscriptions.scheduled.json"
        ))
        .unwrap()
    }

    fn with(change: impl FnOnce(&mut Value)) -> Value {
        let mut event = sample();
        change(&mut event);
        event
    }

    #[test]
    fn the_sample_scheduled_event_is_the_first_link_of_a_chain_at_its_time() {
        let event = SweepEvent::parse(sample(), &expected()).unwrap();

        assert_eq!(event.time().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(event.continuation(), 0);
    }

    #[test]
    fn every_event_that_is_not_this_stacks_schedule_is_refused_with_the_rule_it_breaks() {
        let cases: Vec<(&str, Value, InvalidEvent)> = vec![
            (
                "a string",
                json!("run"),
                InvalidEvent::NotEventBridge("a field has the wrong type or value".into()),
            ),
            (
                "an empty object",
                json!({}),
                InvalidEvent::NotEventBridge("missing field detail-type".into()),
            ),
            (
                "another source",
                with(|e| e["source"] = json!("my.app")),
                InvalidEvent::Source,
            ),
            (
                "another detail-type",
                with(|e| e["detail-type"] = json!("Object Created")),
                InvalidEvent::DetailType,
            ),
            (
                "another rule",
                with(|e| {
                    e["resources"] =
                        json!(["arn:aws:events:ap-northeast-2:123456789012:rule/other"])
                }),
                InvalidEvent::Rule,
            ),
            (
                "no resources",
                with(|e| {
                    e.as_object_mut()
                        .unwrap()
                        .remove("resources")
                        .map(drop)
                        .unwrap()
                }),
                InvalidEvent::Rule,
            ),
            (
                "the rule twice",
                with(|e| e["resources"] = json!([RULE, RULE])),
                InvalidEvent::Rule,
            ),
            (
                "no time",
                with(|e| e.as_object_mut().unwrap().remove("time").map(drop).unwrap()),
                InvalidEvent::NoTime,
            ),
            (
                "a malformed time",
                with(|e| e["time"] = json!("tomorrow")),
                InvalidEvent::NotEventBridge("a field has the wrong type or value".into()),
            ),
            (
                "detail not an object",
                with(|e| e["detail"] = json!([])),
                InvalidEvent::Detail,
            ),
            (
                "detail with another key",
                with(|e| e["detail"] = json!({"as_of": "2030-01-01"})),
                InvalidEvent::Detail,
            ),
            (
                "continuation 0",
                with(|e| e["detail"] = json!({"continuation": 0})),
                InvalidEvent::Continuation { max: 3 },
            ),
            (
                "continuation past the cap",
                with(|e| e["detail"] = json!({"continuation": 4})),
                InvalidEvent::Continuation { max: 3 },
            ),
            (
                "continuation negative",
                with(|e| e["detail"] = json!({"continuation": -1})),
                InvalidEvent::Continuation { max: 3 },
            ),
            (
                "continuation fractional",
                with(|e| e["detail"] = json!({"continuation": 1.5})),
                InvalidEvent::Continuation { max: 3 },
            ),
            (
                "continuation as a string",
                with(|e| e["detail"] = json!({"continuation": "1"})),
                InvalidEvent::Continuation { max: 3 },
            ),
            (
                "continuation past u32",
                with(|e| e["detail"] = json!({"continuation": 4_294_967_297u64})),
                InvalidEvent::Continuation { max: 3 },
            ),
        ];

        for (case, payload, refusal) in cases {
            assert_eq!(
                SweepEvent::parse(payload, &expected()).unwrap_err(),
                refusal,
                "{case}"
            );
        }
    }

    #[test]
    fn a_continuation_keeps_the_time_and_the_rule_and_counts_its_links_up_to_the_cap() {
        let first = SweepEvent::parse(sample(), &expected()).unwrap();

        let second = SweepEvent::parse(
            serde_json::to_value(first.next(3).unwrap()).unwrap(),
            &expected(),
        )
        .unwrap();
        let third = SweepEvent::parse(
            serde_json::to_value(second.next(3).unwrap()).unwrap(),
            &expected(),
        )
        .unwrap();

        assert_eq!((second.continuation(), third.continuation()), (1, 2));
        assert_eq!(third.time(), first.time(), "the same as-of time");
        assert!(third.next(2).is_none(), "the chain stops at the cap");
        assert!(first.next(0).is_none(), "0 turns continuations off");
    }
}
