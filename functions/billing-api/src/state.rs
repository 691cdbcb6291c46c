//! What is built once per cold start and shared by every invocation.

use url::Url;

use crate::config::Config;

/// Built once per cold start and shared by every invocation. `B` is what the routes call
/// (`billing::Billing`; a fake in the routes' in-file tests).
#[derive(Debug)]
pub struct State<B = billing::Billing> {
    pub(crate) billing: B,
    pub(crate) verifier: auth::Verifier,
    pub(crate) app_success_url: Url,
    pub(crate) app_fail_url: Url,
    pub(crate) api_base_url: Option<Url>,
}

impl State {
    /// `sealer` seals billing keys at rest (`billing::kms::sealer`; none for local runs).
    pub fn new(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        sealer: Option<store::Sealer>,
    ) -> Result<Self, lambda_http::Error> {
        let toss = toss::Client::new(config.common.toss)?;
        let mut store = store::Store::new(dynamodb, config.common.table_name);
        if let Some(sealer) = sealer {
            store = store.with_sealer(sealer);
        }
        let billing = billing::Billing::new(toss, store, config.common.settings);
        State::with(
            billing,
            config.auth,
            config.app_success_url,
            config.app_fail_url,
            config.api_base_url,
        )
    }

    /// Opens the DynamoDB, Toss and JWKS connections before the first event. A failure only
    /// costs the first request the time it would have taken anyway.
    pub async fn warm_up(&self) {
        let (_, keys) = tokio::join!(self.billing.warm_up(), self.verifier.prefetch());
        if let Err(e) = keys {
            tracing::warn!(error.message = %e, "could not prefetch the issuer's keys");
        }
    }
}

impl<B> State<B> {
    /// The edge's half of a state (the caller's verifier, the app's URLs) around `billing`.
    fn with(
        billing: B,
        auth: auth::Config,
        app_success_url: Url,
        app_fail_url: Url,
        api_base_url: Option<Url>,
    ) -> Result<Self, lambda_http::Error> {
        Ok(Self {
            billing,
            verifier: auth::Verifier::new(auth)?,
            app_success_url,
            app_fail_url,
            api_base_url,
        })
    }
}

/// A state whose table and Toss are unreachable, trusting `issuer`: for in-file tests of what
/// is decided before either is called.
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The variables of a test state trusting `issuer`.
    pub(crate) fn vars(issuer: &str) -> impl Fn(&str) -> Option<String> + use<> {
        let issuer = issuer.to_owned();
        move |name: &str| match name {
            "TOSS_SECRET_KEY" => Some("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R".to_owned()),
            "TOSS_API_BASE" => Some("http://127.0.0.1:9".to_owned()),
            "TABLE_NAME" => Some("billing".to_owned()),
            "APP_SUCCESS_URL" => Some("https://app.example/billing/done?from=toss".to_owned()),
            "APP_FAIL_URL" => Some("https://app.example/billing/failed".to_owned()),
            "AUTH_ISSUER" => Some(issuer.clone()),
            _ => None,
        }
    }

    pub(crate) fn state(issuer: &str) -> State {
        let config = Config::from_lookup(vars(issuer)).unwrap();
        let aws = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("ap-northeast-2"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        State::new(config, aws_sdk_dynamodb::Client::from_conf(aws), None).unwrap()
    }

    /// A state whose routes call `billing` (a fake), trusting `issuer`'s tokens.
    pub(crate) fn with_billing<B>(billing: B, issuer: &str) -> State<B> {
        let config = Config::from_lookup(vars(issuer)).unwrap();
        State::with(
            billing,
            config.auth,
            config.app_success_url,
            config.app_fail_url,
            config.api_base_url,
        )
        .unwrap()
    }

    /// The settings of a test state (the plan the fakes' answers are shown with).
    pub(crate) fn settings() -> billing::Settings {
        billing::Config::from_lookup(vars("http://127.0.0.1:9"))
            .unwrap()
            .settings
    }
}
