//! The app's side of the walk: signed-in calls of billing-api's app API, what an answer must
//! hold, and the checkout through the sandbox's card window as the browser follows it.

use anyhow::{Context, bail, ensure};
use auth_issuer::TokenRequest;
use chrono::{DateTime, Utc};
use domain::CustomerKey;
use reqwest::Method;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};

use super::{Customer, Walk};
use crate::config::CLIENT_KEY;

/// A request of the app API, and how the timeline names it.
#[derive(Debug, Clone)]
pub(super) struct Call {
    method: Method,
    path: String,
    idempotency_key: Option<&'static str>,
    body: Option<Value>,
    what: String,
}

impl Call {
    fn new(method: Method, path: String) -> Self {
        Self {
            what: format!("{method} {path}"),
            method,
            path,
            idempotency_key: None,
            body: None,
        }
    }

    /// `GET /v1/subscription`: whether the customer is Pro, and the rest the app shows.
    pub(super) fn subscription() -> Self {
        Self::new(Method::GET, "/v1/subscription".to_owned())
    }

    /// `POST /v1/credits/consume {"amount": n}` under an Idempotency-Key.
    pub(super) fn consume(key: &'static str, amount: u64) -> Self {
        Self {
            idempotency_key: Some(key),
            body: Some(json!({ "amount": amount })),
            ..Self::new(Method::POST, "/v1/credits/consume".to_owned())
        }
        .shown_as(&format!("POST /v1/credits/consume {amount}"))
    }

    /// `POST /v1/subscription/cancel` with no body: cancel at period end.
    pub(super) fn cancel() -> Self {
        Self::new(Method::POST, "/v1/subscription/cancel".to_owned())
    }

    /// `POST /v1/subscription/cancel {"mode":"withdraw"}` (청약철회).
    pub(super) fn withdraw() -> Self {
        Self {
            body: Some(json!({ "mode": "withdraw" })),
            ..Self::cancel()
        }
        .shown_as("POST /v1/subscription/cancel withdraw")
    }

    pub(super) fn resume() -> Self {
        Self::new(Method::POST, "/v1/subscription/resume".to_owned())
    }

    /// `GET /v1/payments` in pages of five, from `cursor` if given.
    pub(super) fn payments(cursor: Option<&str>) -> Self {
        let path = match cursor {
            Some(cursor) => format!("/v1/payments?limit=5&cursor={cursor}"),
            None => "/v1/payments?limit=5".to_owned(),
        };
        Self::new(Method::GET, path)
    }

    fn checkout() -> Self {
        Self::new(Method::POST, "/v1/checkout".to_owned())
    }

    /// The same request under another name on the timeline.
    pub(super) fn shown_as(self, what: &str) -> Self {
        Self {
            what: what.to_owned(),
            ..self
        }
    }

    pub(super) fn what(&self) -> &str {
        &self.what
    }
}

/// An answer of the app API: its status and JSON body.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) json: Value,
}

/// What an answer must hold: its HTTP status and some fields, each named by a JSON pointer
/// (`""` is the whole body). A missing field reads as null, as indexing a `Value` does.
#[derive(Debug, Clone)]
pub(super) struct Want {
    status: u16,
    fields: Vec<(&'static str, Field)>,
}

#[derive(Debug, Clone)]
enum Field {
    Is(Value),
    /// An RFC 3339 time, compared as an instant (the API may write it in any offset).
    At(DateTime<Utc>),
}

impl Want {
    pub(super) fn status(status: u16) -> Self {
        Self {
            status,
            fields: Vec::new(),
        }
    }

    pub(super) fn ok() -> Self {
        Self::status(200)
    }

    /// A refusal: the status and the error's code.
    pub(super) fn refused(status: u16, code: &str) -> Self {
        Self::status(status).with("/error/code", code)
    }

    pub(super) fn body(self, body: Value) -> Self {
        self.with("", body)
    }

    pub(super) fn with(mut self, pointer: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((pointer, Field::Is(value.into())));
        self
    }

    pub(super) fn at(mut self, pointer: &'static str, time: DateTime<Utc>) -> Self {
        self.fields.push((pointer, Field::At(time)));
        self
    }

    fn held_by(&self, answer: &Answer) -> bool {
        answer.status == self.status
            && self.fields.iter().all(|(pointer, field)| {
                let found = answer.json.pointer(pointer).unwrap_or(&Value::Null);
                match field {
                    Field::Is(value) => found == value,
                    Field::At(time) => rfc3339(found) == Some(*time),
                }
            })
    }

    fn describe(&self) -> String {
        let mut out = self.status.to_string();
        for (i, (pointer, field)) in self.fields.iter().enumerate() {
            out.push_str(if i == 0 { " with " } else { ", " });
            let value = match field {
                Field::Is(value) => value.to_string(),
                Field::At(time) => time.to_rfc3339(),
            };
            if pointer.is_empty() {
                out.push_str(&format!("the body {value}"));
            } else {
                out.push_str(&format!("{pointer} = {value}"));
            }
        }
        out
    }
}

/// An RFC 3339 time from the API.
fn rfc3339(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl Walk<'_> {
    /// A fresh session token for the customer, as the app's `getToken()` would give.
    fn token(&self, who: Customer) -> anyhow::Result<String> {
        self.stack
            .issuer
            .issuer()
            .mint(&TokenRequest::for_user(who.user_id))
            .with_context(|| format!("mint a session token for {}", who.name))
    }

    /// `call` on billing-api as `who` (bearer token; never printed), its answer checked against
    /// `want`.
    pub(super) async fn call(
        &self,
        who: Customer,
        call: Call,
        want: Want,
    ) -> anyhow::Result<Answer> {
        let Call {
            method,
            path,
            idempotency_key,
            body,
            what,
        } = call;
        let url = format!("{}{path}", self.stack.urls().billing_api);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.token(who)?);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path} as {}", who.name))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .with_context(|| format!("read the answer to {method} {path}"))?;
        let json = serde_json::from_str(&text).with_context(|| {
            format!(
                "{method} {path} as {} answered {status} with no JSON: {text}\n(function logs: {})",
                who.name,
                self.stack.urls().function_logs
            )
        })?;
        let answer = Answer { status, json };
        ensure!(
            want.held_by(&answer),
            "{what} as {} should answer {}; it answered {} {}",
            who.name,
            want.describe(),
            answer.status,
            answer.json
        );
        Ok(answer)
    }

    /// `POST /v1/checkout` as `who`: the customer key (the same on every checkout of one user)
    /// and the success and fail URLs carrying the checkout's state.
    async fn checkout(&mut self, who: Customer) -> anyhow::Result<Checkout> {
        let answer = self.call(who, Call::checkout(), Want::status(201)).await?;
        let field = |name: &str| {
            answer.json[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("the checkout answer has no {name}"))
        };
        let checkout = Checkout {
            customer_key: field("customerKey")?,
            success_url: field("successUrl")?,
            fail_url: field("failUrl")?,
        };
        let api = self.stack.urls().billing_api;
        for (url, route) in [
            (&checkout.success_url, "/billing/success?state="),
            (&checkout.fail_url, "/billing/fail?state="),
        ] {
            ensure!(
                url.starts_with(&format!("{api}{route}")),
                "the checkout's URLs should be billing-api's {route}…, got {}",
                redacted(url)
            );
        }
        let key = CustomerKey::parse(&checkout.customer_key)
            .context("the checkout's customer key does not fit Toss's rules")?;
        ensure!(
            !checkout.customer_key.contains(who.user_id),
            "the customer key must not be derived from the user id"
        );
        if let Some(known) = self.keys.get(who.name) {
            ensure!(
                known == &key,
                "{}'s second checkout answered another customer key",
                who.name
            );
        }
        self.keys.insert(who.name, key);
        Ok(checkout)
    }

    /// The customer's key, known since their first checkout.
    pub(super) fn key(&self, who: Customer) -> anyhow::Result<&CustomerKey> {
        self.keys
            .get(who.name)
            .with_context(|| format!("{} has not checked out yet", who.name))
    }

    /// What the app and the browser do: a checkout, the card window (the sandbox page, submitted
    /// with `card`) → billing-api's redirect → the app. Returns where the customer lands.
    pub(super) async fn register(&mut self, who: Customer, card: &str) -> anyhow::Result<String> {
        let checkout = self.checkout(who).await?;
        let urls = self.stack.urls();
        let page = url::Url::parse_with_params(
            &format!("{}/billing-auth/submit", urls.sandbox),
            [
                ("clientKey", CLIENT_KEY),
                ("customerKey", checkout.customer_key.as_str()),
                ("successUrl", &checkout.success_url),
                ("failUrl", &checkout.fail_url),
                ("card", card),
            ],
        )?;
        let to_billing_api = self.redirect(page.as_str(), who).await?;
        ensure!(
            to_billing_api.starts_with(&urls.billing_api),
            "the card window should send {} to billing-api, sent to {}",
            who.name,
            redacted(&to_billing_api)
        );
        let landing = self.redirect(&to_billing_api, who).await?;
        // The app page the customer sees (signed in: the app's session cookie).
        let response = self
            .http
            .get(&landing)
            .header(COOKIE, crate::app::session_cookie(who.user_id))
            .send()
            .await
            .with_context(|| format!("GET {}", redacted(&landing)))?;
        ensure!(
            response.status().is_success(),
            "the app answered {} for {}",
            response.status(),
            redacted(&landing)
        );
        Ok(landing)
    }

    async fn redirect(&self, url: &str, who: Customer) -> anyhow::Result<String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {}", redacted(url)))?;
        if response.status().as_u16() != 302 {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            bail!(
                "expected a 302 for {}'s registration at {}, got {status}: {body}\n(function logs: {})",
                who.name,
                redacted(url),
                self.stack.urls().function_logs
            );
        }
        response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .context("a 302 without Location")
    }
}

/// What `POST /v1/checkout` answered: what the front end hands to the card window.
#[derive(Debug, Clone)]
struct Checkout {
    customer_key: String,
    success_url: String,
    fail_url: String,
}

/// A URL without its query string: the checkout's state and Toss's authKey travel there, and
/// neither belongs in the output.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let had_query = parsed.query().is_some();
            parsed.set_query(None);
            parsed.set_fragment(None);
            if had_query {
                format!("{parsed}?…")
            } else {
                parsed.to_string()
            }
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}
