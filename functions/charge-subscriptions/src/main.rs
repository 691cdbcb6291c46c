//! `charge-subscriptions`: the scheduled renewal sweep, and the daily settlement check on its
//! own schedule.

mod admin;
mod capability;
mod config;
mod continuation;
mod event;
mod handler;
mod invocation;
mod settlement;

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = aws_config::load_from_env().await;
    let config = config::Config::from_env(&aws).await?;
    let metrics =
        billing::metrics::install(&config.common.metrics_namespace, "charge-subscriptions")?;
    let sealer = billing::kms::sealer(&config.common, || aws_sdk_kms::Client::new(&aws)).await?;
    let state = handler::State::new(
        config,
        aws_sdk_dynamodb::Client::new(&aws),
        aws_sdk_lambda::Client::new(&aws),
        sealer,
    )?;
    state.warm_up().await;
    run(service_fn(|event| async {
        let result = invocation::invoke(&state, event).await;
        billing::metrics::flush(metrics);
        result
    }))
    .await
}
