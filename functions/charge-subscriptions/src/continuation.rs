//! Scale past one invocation: a sweep that stops claiming because its deadline is near hands
//! the rest of the same as-of time to a fresh invocation of this function (an asynchronous
//! self-invoke), so the remainder does not wait for tomorrow's schedule.
//!
//! It can never double-charge: the continuation runs the very same sweep, and every step of
//! it is claim-guarded and idempotent (a conditional-create claim per attempt, the order id as
//! Toss's idempotency key). The chain is bounded by a counter carried in the event's `detail`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;

/// The event's position in a chain: 0 for the scheduled run, n for its n-th continuation.
pub(crate) fn number(event: &EventBridgeEvent<Value>) -> u32 {
    event
        .detail
        .get("continuation")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

/// The event for the next link of the chain (same `time`, so the same as-of), or `None` when
/// the chain has reached `max` links.
pub(crate) fn next(event: &EventBridgeEvent<Value>, max: u32) -> Option<EventBridgeEvent<Value>> {
    let n = number(event).checked_add(1).filter(|n| *n <= max)?;
    let mut next = event.clone();
    let mut detail = match &event.detail {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    detail.insert("continuation".into(), Value::from(n));
    next.detail = Value::Object(detail);
    Some(next)
}

#[derive(Debug, thiserror::Error)]
#[error("could not invoke {function} to continue the sweep")]
pub(crate) struct Error {
    function: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Invokes this function asynchronously (`InvocationType::Event`).
#[derive(Debug, Clone)]
pub(crate) struct Continuer {
    client: aws_sdk_lambda::Client,
}

impl Continuer {
    pub(crate) fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }

    pub(crate) async fn invoke(
        &self,
        function: &str,
        event: &EventBridgeEvent<Value>,
    ) -> Result<(), Error> {
        let error = |source: Box<dyn std::error::Error + Send + Sync>| Error {
            function: function.to_owned(),
            source,
        };
        let payload = serde_json::to_vec(event).map_err(|e| error(Box::new(e)))?;
        self.client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| error(Box::new(e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduled() -> EventBridgeEvent<Value> {
        serde_json::from_str(include_str!(
            "../../../events/charge-subscriptions.scheduled.json"
        ))
        .unwrap()
    }

    #[test]
    fn a_continuation_keeps_the_as_of_time_and_counts_its_links_up_to_the_bound() {
        let first = scheduled();
        assert_eq!(number(&first), 0);

        let second = next(&first, 2).unwrap();
        assert_eq!(second.time, first.time, "the same as-of time");
        assert_eq!(second.detail_type, "Scheduled Event");
        assert_eq!(number(&second), 1);

        let third = next(&second, 2).unwrap();
        assert_eq!(number(&third), 2);
        assert!(next(&third, 2).is_none(), "the chain stops at the bound");
        assert!(next(&first, 0).is_none(), "0 turns continuations off");
    }

    #[test]
    fn a_continuation_event_round_trips_through_json() {
        let event = next(&scheduled(), 5).unwrap();
        let back: EventBridgeEvent<Value> =
            serde_json::from_slice(&serde_json::to_vec(&event).unwrap()).unwrap();
        assert_eq!(number(&back), 1);
        assert_eq!(back.time, event.time);
    }
}
