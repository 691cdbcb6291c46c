//! `billing-api`: Toss's billing-auth redirects and the app's API behind API Gateway (HTTP API).

mod edge;

use billing_api::{Config, State};
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let aws = aws_config::load_from_env().await;
    let config = Config::from_env(&aws).await?;
    let metrics = billing::metrics::install(&config.common.metrics_namespace, "billing-api")?;
    let sealer = billing::kms::sealer(&config.common, || aws_sdk_kms::Client::new(&aws)).await?;
    let state = State::new(config, aws_sdk_dynamodb::Client::new(&aws), sealer)?;
    state.warm_up().await;
    let app = billing_api::app(state);
    // lambda_http::run behind a guard: see edge.rs (its conversion panics on some inputs).
    edge::run(service_fn(|request| {
        let app = &app;
        async move {
            let response = billing_api::handle(app, request).await;
            billing::metrics::flush(metrics);
            response
        }
    }))
    .await
}
