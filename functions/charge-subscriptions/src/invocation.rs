//! One invocation: a settlement check when the event names the settlement rule, a sweep
//! otherwise (each refuses an event that is not exactly its schedule's), with its metrics.

use std::time::Instant;

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

use crate::admin::{self, AdminError, AdminReport};
use crate::capability::{Refunds, Settlement, Sweep};
use crate::handler::{self, Report, State, SweepError};
use crate::settlement::{self, SettlementError};

/// The function's result: a sweep's report or a settlement check's.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Output {
    Sweep(Report),
    Settlement(billing::SettlementReport),
    Admin(AdminReport),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    Sweep(SweepError),
    #[error(transparent)]
    Settlement(SettlementError),
    #[error(transparent)]
    Admin(AdminError),
}

impl From<Failure> for Diagnostic {
    fn from(e: Failure) -> Self {
        match e {
            Failure::Sweep(e) => e.into(),
            Failure::Settlement(e) => e.into(),
            Failure::Admin(e) => e.into(),
        }
    }
}

pub(crate) async fn invoke<B: Sweep + Settlement + Refunds>(
    state: &State<B>,
    event: LambdaEvent<Value>,
) -> Result<Output, Failure> {
    if admin::is_admin(&event.payload) {
        return admin::handle(state, event.payload)
            .await
            .map(Output::Admin)
            .map_err(Failure::Admin);
    }
    if settlement::is_settlement(&event.payload, state.settlement_rule()) {
        return settlement::handle(state, event)
            .await
            .map(Output::Settlement)
            .map_err(Failure::Settlement);
    }
    let started = Instant::now();
    let result = handler::handle(state, event).await;
    handler::record_metrics(&result, started.elapsed());
    result.map(Output::Sweep).map_err(Failure::Sweep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::fake::Fake;
    use crate::handler::testing;

    fn sample(name: &str) -> Value {
        let json = match name {
            "refund" => include_str!("../../../events/charge-subscriptions.refund.json"),
            "settlement" => include_str!("../../../events/charge-subscriptions.settlement.json"),
            _ => include_str!("../../../events/charge-subscriptions.scheduled.json"),
        };
        serde_json::from_str(json).unwrap()
    }

    #[tokio::test]
    async fn each_event_reaches_only_the_use_case_it_names() {
        // The fake panics if a use case it has no answer for is called.
        let admin = testing::state(Fake::new(false), "http://127.0.0.1:9");
        admin
            .billing()
            .refund
            .answer(Ok(billing::RefundOutcome::NoSuchPayment));
        let output = invoke(&admin, testing::event(sample("refund")))
            .await
            .unwrap();
        assert!(matches!(output, Output::Admin(_)), "{output:?}");

        let settlement = testing::state(Fake::new(false), "http://127.0.0.1:9");
        settlement
            .billing()
            .settle_day
            .answer(Ok(billing::SettlementReport::default()));
        let output = invoke(&settlement, testing::event(sample("settlement")))
            .await
            .unwrap();
        assert!(matches!(output, Output::Settlement(_)), "{output:?}");

        let sweep = testing::state(Fake::new(false), "http://127.0.0.1:9");
        sweep
            .billing()
            .sweep
            .answer(Ok(billing::Summary::default()));
        let output = invoke(&sweep, testing::event(sample("scheduled")))
            .await
            .unwrap();
        assert!(matches!(output, Output::Sweep(_)), "{output:?}");
    }
}
