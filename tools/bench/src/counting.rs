//! Counts the DynamoDB requests a client really sends (every transmitted attempt, retries
//! included), per operation, with an SDK interceptor.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_dynamodb::error::BoxError;

/// Requests sent, per operation (`PutItem`, `Query`, `TransactWriteItems`, …).
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RequestCounter {
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // `X-Amz-Target: DynamoDB_20120810.PutItem`
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(operation).or_default() += 1;
        }
        Ok(())
    }
}

/// A client for the DynamoDB-API server at `endpoint` (dummy credentials, the test region),
/// counting its requests into `counter` when given.
pub fn client(endpoint: &str, counter: Option<RequestCounter>) -> Client {
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(testkit::dynamo::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            testkit::dynamo::ACCESS_KEY_ID,
            testkit::dynamo::SECRET_ACCESS_KEY,
            None,
            None,
            "bench",
        ));
    if let Some(counter) = counter {
        config = config.interceptor(counter);
    }
    Client::from_conf(config.build())
}
