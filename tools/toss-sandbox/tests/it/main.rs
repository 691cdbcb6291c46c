//! End-to-end tests: a spawned sandbox driven over HTTP with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod auth;
mod faults;
mod idempotency;
mod inspection;
mod page;
mod webhooks;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use toss_sandbox::{DOCS_SECRET_KEY, RunningSandbox, SandboxConfig, TestCard};

/// A sandbox plus a client speaking as one secret key.
#[derive(Debug)]
pub struct Env {
    pub sandbox: RunningSandbox,
    pub http: reqwest::Client,
    pub secret_key: String,
}

/// An answer, read fully.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub text: String,
    pub trace_id: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    /// `(status, code)` of an error answer.
    pub fn error(&self) -> (u16, String) {
        (self.status.as_u16(), self.code())
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub fn basic(secret_key: &str) -> String {
    toss_sandbox::basic_header(secret_key)
}

impl Env {
    pub async fn new() -> Env {
        Env::with(SandboxConfig::default()).await
    }

    pub async fn with(config: SandboxConfig) -> Env {
        Env {
            sandbox: toss_sandbox::spawn(config).await.unwrap(),
            http: client(),
            secret_key: DOCS_SECRET_KEY.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("Authorization", basic(&self.secret_key));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let trace_id = response
            .headers()
            .get("x-tosspayments-trace-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        Ok(Answer {
            status,
            text,
            trace_id,
        })
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body), &[])
            .await
            .unwrap()
    }

    pub async fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body), headers)
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, &[])
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None, &[])
            .await
            .unwrap()
    }

    /// Control API call (no auth).
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Mint an authKey through the control API.
    pub async fn mint(&self, customer_key: &str, card: &str) -> String {
        let answer = self
            .control(
                reqwest::Method::POST,
                "/__sandbox/auth-keys",
                json!({ "customerKey": customer_key, "card": card }),
            )
            .await;
        answer["authKey"].as_str().unwrap().to_owned()
    }

    /// Issue a billing key for a customer with a test card.
    pub async fn billing_key(&self, customer_key: &str, card: TestCard) -> String {
        let auth_key = self
            .sandbox
            .sandbox()
            .mint_auth_key(customer_key, card)
            .unwrap();
        let answer = self
            .post(
                "/v1/billing/authorizations/issue",
                json!({ "authKey": auth_key, "customerKey": customer_key }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()["billingKey"].as_str().unwrap().to_owned()
    }

    pub async fn charge(&self, billing_key: &str, customer_key: &str, order_id: &str) -> Answer {
        self.post(
            &format!("/v1/billing/{billing_key}"),
            charge_body(customer_key, order_id, 4900),
        )
        .await
    }

    pub async fn state(&self) -> toss_sandbox::Snapshot {
        let response = self
            .http
            .get(self.url("/__sandbox/state"))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }
}

pub fn charge_body(customer_key: &str, order_id: &str, amount: i64) -> Value {
    json!({
        "customerKey": customer_key,
        "amount": amount,
        "orderId": order_id,
        "orderName": "토스 프라임 구독",
        "customerEmail": "customer@example.com",
        "customerName": "김토스",
    })
}
