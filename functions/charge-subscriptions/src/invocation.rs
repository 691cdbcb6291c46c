//! One invocation: a settlement check when the event names the settlement rule, a sweep
//! otherwise (each refuses an event that is not exactly its schedule's), with its metrics.

use std::time::Instant;

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

use crate::admin::{self, AdminError, AdminReport};
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

pub(crate) async fn invoke(state: &State, event: LambdaEvent<Value>) -> Result<Output, Failure> {
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
