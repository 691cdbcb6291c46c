//! Scale past one invocation: a sweep that stops claiming because its deadline is near hands
//! the rest of the same as-of time to a fresh invocation of this function (an asynchronous
//! self-invoke), so the remainder does not wait for tomorrow's schedule.
//!
//! It can never double-charge: the continuation runs the very same sweep, and every step of
//! it is claim-guarded and idempotent (a conditional-create claim per attempt, the order id as
//! Toss's idempotency key). The chain is bounded by a counter carried in the event's `detail`.
//!
//! One chain per schedule, never two: an `Invoke` that fails may still have been queued (the call
//! timed out or the connection dropped after Lambda accepted it). If that failure failed the run,
//! Lambda's async retry would run the sweep again and hand the rest over a second time, and both
//! links would go on continuing themselves. So the handover is sent exactly once per run (no SDK
//! retries, see [`Continuer::invoke`]) and its failure never fails the run: the handler logs it and
//! reports `handover_failed`; whatever was not handed over waits for the next schedule, which
//! finds it in the due index. Reserved concurrency (1 by default) runs whatever links do exist one
//! after another. What is left is Lambda's own at-least-once delivery of an async event: a link
//! delivered twice runs twice, one after the other, and the second finds its work claimed; both
//! stop at the same SWEEP_MAX_CONTINUATIONS. Ruling that out too needs a claim per (as-of time,
//! link) in the table.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;

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

    /// Sends the next link once. The SDK's own retries are off for this call: a retried
    /// `Invoke` after a lost answer would queue the same link twice, i.e. a second chain.
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
            .customize()
            .config_override(
                aws_sdk_lambda::Config::builder().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| error(Box::new(e)))?;
        Ok(())
    }
}
