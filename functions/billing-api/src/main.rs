//! `billing-api`: receives Toss's billing-auth redirects behind API Gateway (HTTP API).

mod config;
mod edge;
mod handler;
mod query;

use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = config::Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let state = handler::State::new(config, aws_sdk_dynamodb::Client::new(&aws))?;
    state.warm_up().await;
    // lambda_http::run behind a guard: see edge.rs (its conversion panics on some inputs).
    edge::run(service_fn(|request| handler::handle(&state, request))).await
}
