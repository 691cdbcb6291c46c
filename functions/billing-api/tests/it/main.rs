//! The function's router in-process against DynamoDB Local and the local OIDC issuer (a real
//! JWKS): what the app's API answers and what it leaves in the table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
mod app_review;
mod bad_input;
mod checkout;
mod state;
mod webhook;
mod withdrawal;

use auth_issuer::{IssuerConfig, RunningIssuer, TokenRequest};
use axum::Router;
use lambda_http::Body;
use lambda_http::http::{Method, Request};
use toss_sandbox::{RunningSandbox, SandboxConfig, TestCard};

pub(crate) const API_BASE: &str = "https://api.app.example";
pub(crate) const APP_DONE: &str = "https://app.example/billing/done";
pub(crate) const APP_FAILED: &str = "https://app.example/billing/failed";

pub(crate) struct Api {
    pub(crate) app: Router,
    pub(crate) issuer: RunningIssuer,
    pub(crate) sandbox: RunningSandbox,
    pub(crate) store: store::Store,
    /// The same table and sandbox as the function, for running the sweep.
    pub(crate) billing: billing::Billing,
    pub(crate) dynamodb: aws_sdk_dynamodb::Client,
    pub(crate) table: String,
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: lambda_http::http::HeaderMap,
    pub(crate) json: serde_json::Value,
}

impl Api {
    pub(crate) async fn new() -> Self {
        let (dynamodb, table) = testkit::dynamo::fresh_table().await.unwrap();
        let issuer = auth_issuer::spawn(IssuerConfig::default()).await.unwrap();
        let sandbox = toss_sandbox::spawn(SandboxConfig::default()).await.unwrap();
        let issuer_url = issuer.issuer_url().to_owned();
        let sandbox_url = sandbox.base_url();
        let table_name = table.clone();
        let vars = move |name: &str| match name {
            "TOSS_SECRET_KEY" => Some(toss_sandbox::DOCS_SECRET_KEY.to_owned()),
            "TOSS_API_BASE" => Some(sandbox_url.clone()),
            "TABLE_NAME" => Some(table_name.clone()),
            "APP_SUCCESS_URL" => Some("https://app.example/billing/done".to_owned()),
            "APP_FAIL_URL" => Some("https://app.example/billing/failed".to_owned()),
            "AUTH_ISSUER" => Some(issuer_url.clone()),
            "API_BASE_URL" => Some(API_BASE.to_owned()),
            "PLAN_AMOUNT" => Some("3900".to_owned()),
            "PLAN_CREDITS" => Some("30".to_owned()),
            _ => None,
        };
        let common = billing::Config::from_lookup(&vars).unwrap();
        let store = store::Store::new(dynamodb.clone(), table.clone());
        let billing = billing::Billing::new(
            toss::Client::new(common.toss).unwrap(),
            store.clone(),
            common.settings,
        );
        let config = billing_api::Config::from_lookup(vars).unwrap();
        let state = billing_api::State::new(config, dynamodb.clone(), None).unwrap();
        Self {
            app: billing_api::app(state),
            issuer,
            sandbox,
            store,
            billing,
            dynamodb,
            table,
        }
    }

    /// `POST /v1/checkout` as `user`: (customer key, success URL's path and query).
    pub(crate) async fn checkout(&self, user: &str) -> (String, String) {
        let answer = self
            .call(Method::POST, "/v1/checkout", Some(&self.token(user)))
            .await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        let url = url::Url::parse(answer.json["successUrl"].as_str().unwrap()).unwrap();
        (
            answer.json["customerKey"].as_str().unwrap().to_owned(),
            format!("{}?{}", url.path(), url.query().unwrap()),
        )
    }

    /// A `GET` the browser makes (a Toss redirect): the `Location` it is sent to.
    pub(crate) async fn redirect(&self, path: &str) -> String {
        let request = Request::builder().uri(path).body(Body::Empty).unwrap();
        let response = billing_api::handle(&self.app, request).await.unwrap();
        assert_eq!(response.status(), 302, "{path}");
        response.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Checkout, Toss's card window with `card`, and the success redirect: where the browser
    /// lands, and the user's customer key.
    pub(crate) async fn subscribe_with(&self, user: &str, card: TestCard) -> (String, String) {
        let (customer_key, success) = self.checkout(user).await;
        let auth_key = self
            .sandbox
            .sandbox()
            .mint_auth_key(&customer_key, card)
            .unwrap();
        let landing = self
            .redirect(&format!(
                "{success}&customerKey={customer_key}&authKey={auth_key}"
            ))
            .await;
        (landing, customer_key)
    }

    /// `user` subscribed with a good card; returns its customer key.
    pub(crate) async fn subscribe(&self, user: &str) -> String {
        let (landing, key) = self.subscribe_with(user, TestCard::Ok).await;
        assert_eq!(landing, APP_DONE);
        key
    }

    pub(crate) async fn subscription(&self, user: &str) -> domain::Subscription {
        self.store
            .user_view(user)
            .await
            .unwrap()
            .subscription
            .unwrap()
    }

    /// Runs the renewal sweep as of `as_of` (the scheduled function's use case).
    pub(crate) async fn sweep(&self, as_of: chrono::DateTime<chrono::Utc>) -> billing::Summary {
        self.sandbox
            .sandbox()
            .set_clock_offset(as_of - chrono::Utc::now());
        self.billing
            .sweep(&billing::SweepOptions {
                as_of,
                concurrency: 4,
                stop_claiming_at: None,
                run_id: format!("test-{}", ulid::Ulid::new()),
                page_size: 25,
            })
            .await
            .unwrap()
    }

    /// A request with headers and a body, as the app would send it.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = body.map_or(Body::Empty, Body::Binary);
        Self::answer(
            billing_api::handle(&self.app, request.body(body).unwrap())
                .await
                .unwrap(),
        )
        .await
    }

    /// `POST /v1/credits/consume` with a JSON body.
    pub(crate) async fn consume(&self, token: &str, key: &str, body: &str) -> Answer {
        self.send(
            Method::POST,
            "/v1/credits/consume",
            Some(token),
            &[
                ("idempotency-key", key),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes().to_vec()),
        )
        .await
    }

    pub(crate) fn token(&self, user: &str) -> String {
        self.issuer
            .issuer()
            .mint(&TokenRequest::for_user(user))
            .unwrap()
    }

    pub(crate) async fn call(&self, method: Method, path: &str, bearer: Option<&str>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = billing_api::handle(&self.app, request.body(Body::Empty).unwrap())
            .await
            .unwrap();
        Self::answer(response).await
    }

    async fn answer(response: axum::response::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Answer {
            status,
            headers,
            json,
        }
    }

    /// Every item in the table (tests write little).
    pub(crate) async fn items(&self) -> usize {
        self.dump().await.len()
    }

    /// The whole table, sorted, as text: to show that a refused request changed nothing.
    pub(crate) async fn dump(&self) -> Vec<String> {
        let out = self
            .dynamodb
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap();
        let mut items: Vec<String> = out
            .items()
            .iter()
            .map(|item| {
                let mut fields: Vec<_> = item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                fields.sort();
                fields.join(" ")
            })
            .collect();
        items.sort();
        items
    }
}
