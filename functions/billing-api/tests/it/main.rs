//! The function's router in-process against DynamoDB Local and the local OIDC issuer (a real
//! JWKS): what the app's API answers and what it leaves in the table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod checkout;

use auth_issuer::{IssuerConfig, RunningIssuer, TokenRequest};
use axum::Router;
use lambda_http::Body;
use lambda_http::http::{Method, Request};

pub(crate) const API_BASE: &str = "https://api.app.example";

pub(crate) struct Api {
    pub(crate) app: Router,
    pub(crate) issuer: RunningIssuer,
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
        let issuer_url = issuer.issuer_url().to_owned();
        let table_name = table.clone();
        let vars = move |name: &str| match name {
            "TOSS_SECRET_KEY" => Some(toss_sandbox::DOCS_SECRET_KEY.to_owned()),
            "TOSS_API_BASE" => Some("http://127.0.0.1:9".to_owned()),
            "TABLE_NAME" => Some(table_name.clone()),
            "APP_SUCCESS_URL" => Some("https://app.example/billing/done".to_owned()),
            "APP_FAIL_URL" => Some("https://app.example/billing/failed".to_owned()),
            "AUTH_ISSUER" => Some(issuer_url.clone()),
            "API_BASE_URL" => Some(API_BASE.to_owned()),
            "PLAN_AMOUNT" => Some("3900".to_owned()),
            "PLAN_CREDITS" => Some("30".to_owned()),
            _ => None,
        };
        let config = billing_api::Config::from_lookup(vars).unwrap();
        let state = billing_api::State::new(config, dynamodb.clone()).unwrap();
        Self {
            app: billing_api::app(state),
            issuer,
            dynamodb,
            table,
        }
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
        let out = self
            .dynamodb
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap();
        out.items().len()
    }
}
